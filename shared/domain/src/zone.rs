//! A campaign's time zone, and the campaign-local day of an instant. "A day" in this back office
//! (attempt caps, counters, reports) is the campaign's local day, computed from its IANA zone
//! with the time-zone database compiled in — never a fixed offset, never the caller's offset.

use time::{Date, Month, OffsetDateTime};

use crate::validation::Invalid;

#[derive(Debug, Clone)]
pub struct CampaignZone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl CampaignZone {
    /// An IANA zone name such as `America/Lima`.
    pub fn parse(name: &str) -> Result<Self, Invalid> {
        let name = name.trim();
        let tz = jiff::tz::TimeZone::get(name).map_err(|_| {
            Invalid::new(
                "unknown_timezone",
                format!("{name:?} is not an IANA time zone (e.g. America/Lima)"),
            )
        })?;
        Ok(Self {
            name: name.to_owned(),
            tz,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The local calendar day of `at` in this zone.
    pub fn local_date(&self, at: OffsetDateTime) -> Date {
        let local = jiff::Timestamp::from_nanosecond(at.unix_timestamp_nanos())
            .map(|ts| self.tz.to_datetime(ts).date())
            .ok()
            .and_then(|d| {
                let month = Month::try_from(u8::try_from(d.month()).ok()?).ok()?;
                Date::from_calendar_date(i32::from(d.year()), month, u8::try_from(d.day()).ok()?).ok()
            });
        // Both libraries cover years -9999..=9999: outside that, the UTC date is all there is.
        local.unwrap_or_else(|| at.date())
    }
}

impl PartialEq for CampaignZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn lima_evenings_belong_to_lima_s_day() {
        let lima = CampaignZone::parse("America/Lima").expect("a zone");
        // 19:00 to 23:59 in Lima are already tomorrow in UTC.
        for at in [
            datetime!(2026-11-30 19:00 -5),
            datetime!(2026-11-30 23:59:59 -5),
            datetime!(2026-12-01 04:30 UTC),
        ] {
            assert_eq!(lima.local_date(at), date!(2026 - 11 - 30), "{at}");
        }
        assert_eq!(lima.local_date(datetime!(2026-12-01 00:00 -5)), date!(2026 - 12 - 01));
        // The caller's offset does not matter, only the instant.
        assert_eq!(lima.local_date(datetime!(2026-12-01 10:00 +9)), date!(2026 - 11 - 30));
    }

    #[test]
    fn zones_with_daylight_saving_follow_it() {
        let madrid = CampaignZone::parse("Europe/Madrid").expect("a zone");
        // 23:30 UTC is 00:30 the next day in summer (UTC+2) but 23:30+1 → 00:30 in winter too:
        // 22:30 UTC shows the difference.
        assert_eq!(
            madrid.local_date(datetime!(2026-07-15 22:30 UTC)),
            date!(2026 - 07 - 16)
        );
        assert_eq!(
            madrid.local_date(datetime!(2026-01-15 22:30 UTC)),
            date!(2026 - 01 - 15)
        );
    }

    #[test]
    fn unknown_zones_are_refused() {
        assert_eq!(
            CampaignZone::parse("Lima/Peru").map_err(|e| e.code),
            Err("unknown_timezone")
        );
        assert_eq!(
            CampaignZone::parse("-05:00").map_err(|e| e.code),
            Err("unknown_timezone")
        );
    }
}
