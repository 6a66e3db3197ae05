//! Structured JSON logs (one object per line, as CloudWatch Logs Insights reads them).
//!
//! Personal data never goes into a log: document numbers, phones and e-mails have masking
//! `Debug` implementations, and handlers log ids, never customers.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

static COLD: AtomicBool = AtomicBool::new(true);

/// Install the JSON subscriber; `RUST_LOG` (default `info`) filters. Safe to call twice.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .try_init();
}

/// True for the first invocation of this process only (a cold start).
pub fn take_cold_start() -> bool {
    COLD.swap(false, Ordering::Relaxed)
}
