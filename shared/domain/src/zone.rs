//! A campaign's time zone, and the campaign-local day of an instant. "A day" in this back office
//! (attempt caps, counters, reports) is the campaign's local day, computed from its IANA zone
//! with the time-zone database compiled in — never a fixed offset, never the caller's offset.
//!
//! [`LocalTime`] is how a configuration that may predate zones (a fulfillment calendar, a
//! billing profile) names its local time: its zone, or the fixed offset it was written with.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Month, OffsetDateTime, UtcOffset};

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

    /// `at` on this zone's wall clock: the same instant, at the offset the zone had then
    /// (daylight saving included), so `.date()` and `.time()` are the local day and time.
    /// `None` only at the ends of the calendar (years beyond ±9999 at that offset).
    pub fn local_datetime(&self, at: OffsetDateTime) -> Option<OffsetDateTime> {
        let ts = jiff::Timestamp::from_nanosecond(at.unix_timestamp_nanos()).ok()?;
        let offset = UtcOffset::from_whole_seconds(self.tz.to_offset(ts).seconds()).ok()?;
        at.checked_to_offset(offset)
    }

    /// The first instant of the local `day` in this zone (later than midnight only where a
    /// clock change skips it). `None` only at the ends of the calendar.
    pub fn start_of(&self, day: Date) -> Option<OffsetDateTime> {
        let civil = jiff::civil::Date::new(
            i16::try_from(day.year()).ok()?,
            i8::try_from(u8::from(day.month())).ok()?,
            i8::try_from(day.day()).ok()?,
        )
        .ok()?;
        // "Compatible": a skipped midnight resolves to the first moment after the gap.
        let start = self.tz.to_ambiguous_timestamp(civil.at(0, 0, 0, 0)).compatible().ok()?;
        OffsetDateTime::from_unix_timestamp_nanos(start.as_nanosecond()).ok()
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

impl Eq for CampaignZone {}

/// In configuration JSON a zone is its name; an unknown name fails to read, it is not UTC.
impl Serialize for CampaignZone {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for CampaignZone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::parse(&name).map_err(|e| serde::de::Error::custom(e.detail))
    }
}

/// Offsets a legacy configuration may carry: the real world's, UTC−12:00 to UTC+14:00.
const OFFSET_MINUTES: std::ops::RangeInclusive<i16> = -720..=840;

/// Where a configuration's local time comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalTime {
    Zone(CampaignZone),
    /// Deprecated: configuration written before zones carried `utc_offset_minutes`. Exact only
    /// for a zone without daylight saving time (Peru); kept so those items still read the same.
    FixedOffset(UtcOffset),
}

impl LocalTime {
    /// From a configuration's `timezone` and its deprecated `utc_offset_minutes`: the zone wins
    /// when both are there; neither is an error, never a silent UTC.
    pub fn from_config(timezone: Option<&CampaignZone>, utc_offset_minutes: Option<i16>) -> Result<Self, Invalid> {
        match (timezone, utc_offset_minutes) {
            (Some(zone), _) => Ok(Self::Zone(zone.clone())),
            (None, Some(minutes)) => OFFSET_MINUTES
                .contains(&minutes)
                .then(|| UtcOffset::from_whole_seconds(i32::from(minutes) * 60).ok())
                .flatten()
                .map(Self::FixedOffset)
                .ok_or_else(|| {
                    Invalid::new(
                        "offset_out_of_range",
                        format!("utc_offset_minutes {minutes} is outside -720..=840"),
                    )
                }),
            (None, None) => Err(Invalid::new(
                "no_timezone",
                "no timezone (an IANA zone such as \"America/Lima\")",
            )),
        }
    }

    /// `at` on the local wall clock (see [`CampaignZone::local_datetime`]); `None` only at the
    /// ends of the calendar.
    pub fn local(&self, at: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Self::Zone(zone) => zone.local_datetime(at),
            Self::FixedOffset(offset) => at.checked_to_offset(*offset),
        }
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
    fn a_local_day_starts_at_its_zone_s_midnight_or_the_first_moment_after_a_skipped_one() {
        let lima = CampaignZone::parse("America/Lima").expect("a zone");
        assert_eq!(
            lima.start_of(date!(2026 - 11 - 30)),
            Some(datetime!(2026-11-30 05:00 UTC))
        );
        // Santiago's clocks went from 00:00 to 01:00 on 2026-09-06: that day starts at 01:00 -3.
        let santiago = CampaignZone::parse("America/Santiago").expect("a zone");
        assert_eq!(
            santiago.start_of(date!(2026 - 09 - 06)),
            Some(datetime!(2026-09-06 04:00 UTC))
        );
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
    fn local_datetime_is_the_wall_clock_with_daylight_saving() {
        let lima = CampaignZone::parse("America/Lima").expect("a zone");
        let local = lima.local_datetime(datetime!(2026-12-01 03:30 UTC)).expect("in range");
        assert_eq!(
            (local.date(), local.time()),
            (date!(2026 - 11 - 30), time::macros::time!(22:30))
        );
        assert_eq!(local, datetime!(2026-12-01 03:30 UTC), "the same instant");

        // Santiago is UTC−3 in its summer (January) and UTC−4 in its winter (July): the same
        // UTC time is an hour apart on its clock.
        let santiago = CampaignZone::parse("America/Santiago").expect("a zone");
        let summer = santiago
            .local_datetime(datetime!(2026-01-15 17:30 UTC))
            .expect("in range");
        let winter = santiago
            .local_datetime(datetime!(2026-07-15 17:30 UTC))
            .expect("in range");
        assert_eq!(summer.time(), time::macros::time!(14:30));
        assert_eq!(winter.time(), time::macros::time!(13:30));
        assert_eq!((summer.offset().whole_hours(), winter.offset().whole_hours()), (-3, -4));

        // New York's clocks go forward on 2026-03-08 at 02:00 local (07:00 UTC).
        let new_york = CampaignZone::parse("America/New_York").expect("a zone");
        let before = new_york
            .local_datetime(datetime!(2026-03-08 06:59 UTC))
            .expect("in range");
        let after = new_york
            .local_datetime(datetime!(2026-03-08 07:00 UTC))
            .expect("in range");
        assert_eq!(
            (before.time(), after.time()),
            (time::macros::time!(01:59), time::macros::time!(03:00))
        );

        // The end of time is None, not a panic; local_date falls back to the UTC date there.
        assert_eq!(lima.local_datetime(datetime!(-9999-01-01 00:00 UTC)), None);
        assert_eq!(
            lima.local_date(datetime!(-9999-01-01 00:00 UTC)),
            date!(-9999 - 01 - 01)
        );
    }

    #[test]
    fn local_time_prefers_the_zone_and_still_reads_an_offset() {
        let santiago = CampaignZone::parse("America/Santiago").expect("a zone");
        // Both present: the zone wins (UTC−3 in January, not the −240 written beside it).
        let both = LocalTime::from_config(Some(&santiago), Some(-240)).expect("valid");
        assert_eq!(both, LocalTime::Zone(santiago.clone()));
        let at = datetime!(2026-01-15 17:30 UTC);
        assert_eq!(both.local(at).map(|l| l.time()), Some(time::macros::time!(14:30)));

        // Only an offset (configuration written before zones): as before, a fixed offset.
        let legacy = LocalTime::from_config(None, Some(-300)).expect("valid");
        assert_eq!(legacy, LocalTime::FixedOffset(time::macros::offset!(-5)));
        assert_eq!(
            legacy.local(datetime!(2026-12-01 03:30 UTC)).map(|l| l.date()),
            Some(date!(2026 - 11 - 30))
        );
        assert_eq!(LocalTime::from_config(None, Some(840)).map(|_| ()), Ok(()));

        for (zone, minutes, code) in [
            (None, None, "no_timezone"),
            (None, Some(26 * 60), "offset_out_of_range"),
            (None, Some(-721), "offset_out_of_range"),
            (None, Some(i16::MAX), "offset_out_of_range"),
        ] {
            assert_eq!(
                LocalTime::from_config(zone, minutes).map_err(|e| e.code),
                Err(code),
                "{minutes:?}"
            );
        }
    }

    #[test]
    fn zones_read_and_write_as_their_name() {
        let lima: CampaignZone = serde_json::from_value(serde_json::json!(" America/Lima ")).expect("a zone");
        assert_eq!(lima.name(), "America/Lima");
        assert_eq!(
            serde_json::to_value(&lima).ok(),
            Some(serde_json::json!("America/Lima"))
        );
        let error = serde_json::from_value::<CampaignZone>(serde_json::json!("Lima/Peru")).map(|_| ());
        assert!(error.is_err_and(|e| e.to_string().contains("not an IANA time zone")));
        assert!(serde_json::from_value::<CampaignZone>(serde_json::json!(-300)).is_err());
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
