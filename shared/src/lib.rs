//! Shared library of the call-center back office: the domain (free of AWS types), the store
//! ports and their DynamoDB adapters, the HTTP edge, configuration and telemetry.

pub mod aws;
pub mod config;
pub mod documents;
pub mod domain;
pub mod http;
pub mod mail;
pub mod outbox;
pub mod queue;
pub mod recordings;
pub mod store;
pub mod telemetry;
pub mod testing;

pub use time::OffsetDateTime;

/// The clock, injectable so handlers are tested at fixed instants.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}
