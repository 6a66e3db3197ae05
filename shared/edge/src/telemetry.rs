//! Structured JSON logs (one object per line, as CloudWatch Logs Insights reads them), and
//! metrics as CloudWatch Embedded Metric Format documents on stdout (one per invocation, which
//! CloudWatch Logs turns into metrics without an API call; ADR 0019).
//!
//! Personal data never goes into a log: document numbers, phones and e-mails have masking
//! `Debug` implementations, and handlers log ids, never customers.
//!
//! Traces: on Lambda, spans also become X-Ray subsegments carrying the correlation id
//! ([`crate::xray`]).

use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::xray::{self, XrayLayer};

static COLD: AtomicBool = AtomicBool::new(true);
/// The cold start as the metrics count it (the logs take theirs from [`take_cold_start`]).
static COLD_METRIC: AtomicBool = AtomicBool::new(true);

/// Install the JSON subscriber. The level is `RUST_LOG` when set (a developer's filter), else
/// the function's `LoggingConfig.ApplicationLogLevel` as Lambda passes it
/// (`AWS_LAMBDA_LOG_LEVEL`), else `info`. With `AWS_XRAY_DAEMON_ADDRESS` (on Lambda), spans
/// also go to X-Ray, whatever the log level: each output filters on its own. Safe to call twice.
///
/// `RUST_LOG` takes `target=level` directives (`presale_intake=debug,info`), read by
/// [`Targets`] rather than `EnvFilter`: no span-field filters, and no regex engine in every
/// function's package (ADR 0020).
pub fn init() {
    let filter = log_filter(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
    );
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_filter(filter);
    let (traces, refused) = match XrayLayer::from_env() {
        Ok(layer) => (layer, None),
        Err(e) => (None, Some(e)),
    };
    let traces = traces.map(|layer| layer.with_filter(filter_fn(xray::reads).with_max_level_hint(LevelFilter::DEBUG)));
    let installed = tracing_subscriber::registry().with(logs).with(traces).try_init();
    if let (Ok(()), Some(e)) = (installed, refused) {
        tracing::warn!(error = %e, "no X-Ray subsegments: spans are only logged");
    }
}

/// What the logs let through: `rust_log`'s directives when they parse, else Lambda's level.
pub fn log_filter(rust_log: Option<&str>, lambda_level: Option<&str>) -> Targets {
    rust_log
        .map(str::trim)
        .filter(|directives| !directives.is_empty())
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| {
            Targets::new().with_default(
                level_of_lambda(lambda_level)
                    .parse::<LevelFilter>()
                    .unwrap_or(LevelFilter::INFO),
            )
        })
}

/// Lambda's log levels as `tracing` directives (`FATAL` has no equivalent: `error`).
pub fn level_of_lambda(level: Option<&str>) -> &'static str {
    match level.map(str::trim).map(str::to_ascii_uppercase).as_deref() {
        Some("TRACE") => "trace",
        Some("DEBUG") => "debug",
        Some("WARN") => "warn",
        Some("ERROR" | "FATAL") => "error",
        _ => "info",
    }
}

/// The metrics of one function: `metrics::counter!` anywhere in it records into this
/// process's collector; [`Metrics::flush`] after each invocation writes them as one EMF
/// document (namespace `METRICS_NAMESPACE`, dimension `Function`) and starts again from zero.
pub struct Metrics {
    collector: Option<&'static metrics_cloudwatch_embedded::Collector>,
}

impl Metrics {
    /// The collector for `function` (its binary name, stable across stages). Without
    /// `METRICS_NAMESPACE`, or when a collector is installed already, metrics are not recorded.
    pub fn init(function: &'static str) -> Metrics {
        let collector = std::env::var("METRICS_NAMESPACE").ok().and_then(|namespace| {
            metrics_cloudwatch_embedded::Builder::new()
                .cloudwatch_namespace(namespace)
                .with_dimension("Function", function)
                .init()
                .map_err(|e| tracing::warn!(error = %e, "metrics not recorded"))
                .ok()
        });
        if collector.is_some() {
            metrics::describe_histogram!(
                "RequestDuration",
                metrics::Unit::Milliseconds,
                "HTTP request, arrival to answer, by route"
            );
        }
        Metrics { collector }
    }

    /// Run one invocation's `work`, then [`Metrics::flush`] whatever it returned.
    pub async fn around<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let out = work.await;
        self.flush();
        out
    }

    /// Count this invocation (and the process's first as a cold start), then write what the
    /// invocation recorded to stdout as one EMF line.
    pub fn flush(&self) {
        let Some(collector) = self.collector else { return };
        if COLD_METRIC.swap(false, Ordering::Relaxed) {
            metrics::counter!("ColdStart").increment(1);
        }
        metrics::counter!("Invocations").increment(1);
        let mut out = std::io::stdout().lock();
        if let Err(e) = collector.flush(&mut out) {
            tracing::warn!(error = %e, "metrics not written");
        }
    }
}

/// True for the first invocation of this process only (a cold start).
pub fn take_cold_start() -> bool {
    COLD.swap(false, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambdas_log_levels_become_tracing_directives() {
        let cases = [
            (Some("DEBUG"), "debug"),
            (Some("warn"), "warn"),
            (Some("FATAL"), "error"),
            (Some("ERROR"), "error"),
            (Some("TRACE"), "trace"),
            (Some("INFO"), "info"),
            (Some("nonsense"), "info"),
            (None, "info"),
        ];
        for (level, directive) in cases {
            assert_eq!(level_of_lambda(level), directive, "{level:?}");
        }
    }

    #[test]
    fn rust_log_directives_win_over_lambdas_level_unless_they_do_not_parse() {
        use tracing::Level;
        let developer = log_filter(Some("presale_intake=debug,warn"), Some("ERROR"));
        assert!(developer.would_enable("presale_intake::handler", &Level::DEBUG));
        assert!(developer.would_enable("aws_smithy_runtime", &Level::WARN));
        assert!(!developer.would_enable("aws_smithy_runtime", &Level::INFO));

        let lambda = log_filter(None, Some("DEBUG"));
        assert!(lambda.would_enable("presale_intake", &Level::DEBUG));
        assert!(!lambda.would_enable("presale_intake", &Level::TRACE));

        for broken in [Some("=nonsense=,="), Some("  ")] {
            let fallback = log_filter(broken, Some("WARN"));
            assert!(fallback.would_enable("any", &Level::WARN), "{broken:?}");
            assert!(!fallback.would_enable("any", &Level::INFO), "{broken:?}");
        }
    }
}
