//! The wire format of everything the back office stores or sends: instants as RFC 3339
//! (`2026-11-23T15:00:00Z`), calendar dates as `2026-12-25`, local times as `14:00`, weekdays
//! as `MONDAY`, independent of the `time` crate's serde defaults (whose form for a date is
//! `[2026, 359]`); and the envelope events travel in, with its version.

pub use time::serde::rfc3339 as instant;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, Time, Weekday};

const DATE: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");
const HH_MM: &[BorrowedFormatItem<'static>] = format_description!("[hour]:[minute]");
const HH_MM_SS: &[BorrowedFormatItem<'static>] = format_description!("[hour]:[minute]:[second]");

fn format_date(date: &Date) -> Result<String, time::error::Format> {
    date.format(DATE)
}

fn parse_date(raw: &str) -> Result<Date, String> {
    Date::parse(raw, DATE).map_err(|_| format!("expected a date like \"2026-12-25\", got {raw:?}"))
}

pub mod date {
    use super::*;

    pub fn serialize<S: Serializer>(date: &Date, serializer: S) -> Result<S::Ok, S::Error> {
        format_date(date)
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Date, D::Error> {
        parse_date(&String::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

pub mod date_option {
    use super::*;

    pub fn serialize<S: Serializer>(date: &Option<Date>, serializer: S) -> Result<S::Ok, S::Error> {
        match date {
            Some(date) => super::date::serialize(date, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Date>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|raw| parse_date(&raw).map_err(D::Error::custom))
            .transpose()
    }
}

pub mod dates {
    use super::*;

    pub fn serialize<S: Serializer>(dates: &[Date], serializer: S) -> Result<S::Ok, S::Error> {
        let texts = dates
            .iter()
            .map(format_date)
            .collect::<Result<Vec<_>, _>>()
            .map_err(serde::ser::Error::custom)?;
        texts.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Date>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|raw| parse_date(raw).map_err(D::Error::custom))
            .collect()
    }
}

pub mod clock {
    use super::*;

    pub fn serialize<S: Serializer>(time: &Time, serializer: S) -> Result<S::Ok, S::Error> {
        let format = if time.second() == 0 { HH_MM } else { HH_MM_SS };
        time.format(format)
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Time, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Time::parse(&raw, HH_MM)
            .or_else(|_| Time::parse(&raw, HH_MM_SS))
            .map_err(|_| D::Error::custom(format!("expected a local time like \"14:00\", got {raw:?}")))
    }
}

pub mod weekdays {
    use super::*;

    const DAYS: [(Weekday, &str); 7] = [
        (Weekday::Monday, "MONDAY"),
        (Weekday::Tuesday, "TUESDAY"),
        (Weekday::Wednesday, "WEDNESDAY"),
        (Weekday::Thursday, "THURSDAY"),
        (Weekday::Friday, "FRIDAY"),
        (Weekday::Saturday, "SATURDAY"),
        (Weekday::Sunday, "SUNDAY"),
    ];

    pub fn serialize<S: Serializer>(days: &[Weekday], serializer: S) -> Result<S::Ok, S::Error> {
        let names: Vec<&str> = days
            .iter()
            .filter_map(|d| DAYS.iter().find(|(w, _)| w == d).map(|(_, n)| *n))
            .collect();
        names.serialize(serializer)
    }

    /// Any case ("MONDAY", "Monday").
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Weekday>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|raw| {
                DAYS.iter()
                    .find(|(_, name)| name.eq_ignore_ascii_case(raw.trim()))
                    .map(|(day, _)| *day)
                    .ok_or_else(|| {
                        D::Error::custom(format!("expected a weekday in English such as \"MONDAY\", got {raw:?}"))
                    })
            })
            .collect()
    }
}

/// The envelope's version this code writes and reads. An envelope without one is version 1
/// (written before the field existed); a newer one is refused, not guessed at.
pub const ENVELOPE_VERSION: u32 = 1;

fn first_version() -> u32 {
    1
}

/// The JSON envelope every event travels in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default = "first_version")]
    pub version: u32,
    #[serde(with = "instant")]
    pub occurred_at: time::OffsetDateTime,
    /// Joins the logs of one pre-sale across functions; absent only on hand-made messages.
    #[serde(default)]
    pub correlation_id: Option<String>,
    pub body: T,
}

/// Why a message is not an event this consumer can act on (a poison message: retrying cannot
/// help, the dead-letter queue keeps it for a person).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("not an event envelope: {0}")]
    NotAnEnvelope(String),
    #[error("unexpected event type {0}")]
    UnexpectedType(String),
    #[error("envelope version {0} is newer than this consumer reads")]
    UnknownVersion(u32),
    #[error("unreadable {kind}: {detail}")]
    Body { kind: String, detail: String },
}

/// `event` in its envelope, as JSON text.
pub fn seal<E: crate::events::Event>(
    event: &E,
    message_id: &str,
    correlation_id: &str,
    at: time::OffsetDateTime,
) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Envelope {
        kind: E::TYPE.to_owned(),
        id: message_id.to_owned(),
        version: ENVELOPE_VERSION,
        occurred_at: at,
        correlation_id: Some(correlation_id.to_owned()),
        body: event,
    })
}

/// Open an envelope that must carry an `E`.
pub fn open<E: crate::events::Event>(raw: &str) -> Result<Envelope<E>, WireError> {
    let envelope: Envelope<serde_json::Value> =
        serde_json::from_str(raw).map_err(|e| WireError::NotAnEnvelope(e.to_string()))?;
    if envelope.kind != E::TYPE {
        return Err(WireError::UnexpectedType(envelope.kind));
    }
    if envelope.version > ENVELOPE_VERSION {
        return Err(WireError::UnknownVersion(envelope.version));
    }
    let body = serde_json::from_value(envelope.body).map_err(|e| WireError::Body {
        kind: E::TYPE.to_owned(),
        detail: e.to_string(),
    })?;
    Ok(Envelope {
        kind: envelope.kind,
        id: envelope.id,
        version: envelope.version,
        occurred_at: envelope.occurred_at,
        correlation_id: envelope.correlation_id,
        body,
    })
}

/// The `type` of a raw message, if it is an envelope: how a consumer of a queue carrying
/// several events picks the one to open.
pub fn peek_type(raw: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(rename = "type")]
        kind: String,
    }
    Some(serde_json::from_str::<Peek>(raw).ok()?.kind)
}

/// The correlation id of a raw message, if it is an envelope that has one: read before the
/// message is opened, so that even a poison message's log line carries it.
pub fn peek_correlation_id(raw: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Peek {
        correlation_id: Option<String>,
    }
    serde_json::from_str::<Peek>(raw).ok()?.correlation_id
}
