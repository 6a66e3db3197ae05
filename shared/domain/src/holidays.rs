//! Public holidays computed for any year, so a calendar never "runs out" the way a typed list
//! of dates does.
//!
//! Peru (feriados nacionales, Decreto Legislativo 713 and the laws that added days since):
//! 1 January; Holy Thursday and Good Friday (Easter-based); 1 May; 7 June (Batalla de Arica y
//! Día de la Bandera, from 2024); 29 June; 23 July (Fuerza Aérea del Perú, from 2023); 28 and 29
//! July; 6 August (Batalla de Junín, from 2022); 30 August; 8 October; 1 November; 8 December;
//! 9 December (Batalla de Ayacucho, from 2022); 25 December. Days the government declares
//! non-working for one year (días no laborables) are not law-fixed: campaigns add them as their
//! own holidays.

use serde::{Deserialize, Serialize};
use time::{Date, Duration, Month};

/// Whose public holidays a calendar keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PublicHolidays {
    /// Peru's national holidays.
    #[serde(rename = "PE")]
    Peru,
}

/// (month, day, first year it was a holiday).
const PERU_FIXED: &[(Month, u8, i32)] = &[
    (Month::January, 1, i32::MIN),
    (Month::May, 1, i32::MIN),
    (Month::June, 7, 2024),
    (Month::June, 29, i32::MIN),
    (Month::July, 23, 2023),
    (Month::July, 28, i32::MIN),
    (Month::July, 29, i32::MIN),
    (Month::August, 6, 2022),
    (Month::August, 30, i32::MIN),
    (Month::October, 8, i32::MIN),
    (Month::November, 1, i32::MIN),
    (Month::December, 8, i32::MIN),
    (Month::December, 9, 2022),
    (Month::December, 25, i32::MIN),
];

impl PublicHolidays {
    pub fn is_holiday(self, date: Date) -> bool {
        match self {
            PublicHolidays::Peru => {
                let fixed = PERU_FIXED
                    .iter()
                    .any(|&(month, day, since)| date.year() >= since && date.month() == month && date.day() == day);
                fixed
                    || easter_sunday(date.year())
                        .is_some_and(|easter| date == easter - Duration::days(3) || date == easter - Duration::days(2))
            }
        }
    }

    /// Every holiday of `year`, in order.
    pub fn of_year(self, year: i32) -> Vec<Date> {
        let Ok(first) = Date::from_ordinal_date(year, 1) else {
            return Vec::new();
        };
        std::iter::successors(Some(first), |d| d.next_day().filter(|n| n.year() == year))
            .filter(|d| self.is_holiday(*d))
            .collect()
    }
}

/// Easter Sunday of the Gregorian calendar (the anonymous algorithm: Meeus, Jones, Butcher).
pub fn easter_sunday(year: i32) -> Option<Date> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::Weekday;
    use time::macros::date;

    use super::*;

    #[test]
    fn easter_matches_published_dates() {
        for (year, expected) in [
            (2024, date!(2024 - 03 - 31)),
            (2025, date!(2025 - 04 - 20)),
            (2026, date!(2026 - 04 - 05)),
            (2027, date!(2027 - 03 - 28)),
            (2028, date!(2028 - 04 - 16)),
            (2038, date!(2038 - 04 - 25)),
            (2285, date!(2285 - 03 - 22)),
        ] {
            assert_eq!(easter_sunday(year), Some(expected), "{year}");
        }
    }

    #[test]
    fn peru_2027_has_its_sixteen_holidays() {
        let days = PublicHolidays::Peru.of_year(2027);
        assert_eq!(days.len(), 16, "{days:?}");
        for holy in [
            date!(2027 - 03 - 25),
            date!(2027 - 03 - 26),
            date!(2027 - 12 - 09),
            date!(2027 - 06 - 07),
        ] {
            assert!(days.contains(&holy), "{holy}");
        }
        assert!(
            !PublicHolidays::Peru.is_holiday(date!(2027 - 03 - 28)),
            "Easter Sunday is a Sunday, not a feriado"
        );
        // Days added by law apply from their first year only.
        assert!(!PublicHolidays::Peru.is_holiday(date!(2021 - 12 - 09)));
        assert!(!PublicHolidays::Peru.is_holiday(date!(2023 - 06 - 07)));
    }

    proptest! {
        #[test]
        fn easter_is_a_sunday_between_march_22_and_april_25(year in 1583i32..4000) {
            let easter = easter_sunday(year).expect("a date");
            prop_assert_eq!(easter.weekday(), Weekday::Sunday);
            let earliest = Date::from_calendar_date(year, Month::March, 22).expect("date");
            let latest = Date::from_calendar_date(year, Month::April, 25).expect("date");
            prop_assert!(earliest <= easter && easter <= latest);
        }
    }
}
