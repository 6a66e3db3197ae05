//! The edges every back-office function shares: how events and requests come in (the HTTP and
//! SQS edges), how they go out (the outbox relay to SQS, SESv2 mail), and what every `main.rs`
//! builds once at init (AWS clients, configuration, telemetry: logs, metrics, X-Ray traces).
//! Business rules live in `backoffice-domain`, persistence in `backoffice-store`.

pub mod aws;
pub mod config;
pub mod http;
pub mod https;
pub mod mail;
pub mod queue;
pub mod relay;
pub mod schedule;
pub mod secrets;
pub mod telemetry;
pub mod xray;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
