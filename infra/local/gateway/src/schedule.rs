//! The template's `Schedule`/`ScheduleV2` events, run on their rate expressions as EventBridge
//! Scheduler would: every period the function is invoked with an empty JSON object (a
//! ScheduleV2 target without `Input`). Cron expressions are not run locally; the admin endpoint
//! (`POST /_local/functions/{id}/invoke`) invokes any function on demand.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The period of `rate(value unit)`; `None` for cron and anything else.
pub fn rate(expression: &str) -> Option<Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (value, unit) = inner.trim().split_once(char::is_whitespace)?;
    let value: u64 = value.parse().ok().filter(|v| *v > 0)?;
    // EventBridge wants the singular for 1 and the plural otherwise.
    let seconds = match (unit.trim(), value) {
        ("minute", 1) | ("minutes", 2..) => 60,
        ("hour", 1) | ("hours", 2..) => 3_600,
        ("day", 1) | ("days", 2..) => 86_400,
        _ => return None,
    };
    value.checked_mul(seconds).map(Duration::from_secs)
}

/// Invoke `function` every `period` (first after one period, like a new schedule) until `stop`
/// turns true. A tick that comes while the previous invocation still runs is skipped, as a
/// function's own concurrency would absorb it.
pub fn spawn<F, Fut>(function: String, period: Duration, mut stop: watch::Receiver<bool>, invoke: F) -> JoinHandle<()>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let stopped = tokio::select! {
                _ = ticks.tick() => false,
                _ = stop.wait_for(|stopped| *stopped) => true,
            };
            if stopped {
                return;
            }
            invoke(function.clone()).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn rate_expressions_as_eventbridge_writes_them() {
        assert_eq!(rate("rate(1 minute)"), Some(Duration::from_secs(60)));
        assert_eq!(rate(" rate(5 minutes) "), Some(Duration::from_secs(300)));
        assert_eq!(rate("rate(2 hours)"), Some(Duration::from_secs(7_200)));
        assert_eq!(rate("rate(1 day)"), Some(Duration::from_secs(86_400)));
        for refused in [
            "rate(1 minutes)",
            "rate(5 minute)",
            "rate(0 minutes)",
            "cron(0 6 1 * ? *)",
            "rate(x days)",
            "",
        ] {
            assert_eq!(rate(refused), None, "{refused}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_schedule_invokes_its_function_once_per_period_until_stopped() {
        let calls = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = watch::channel(false);
        let counter = calls.clone();
        let task = spawn(
            "OutboxSweep".into(),
            Duration::from_secs(60),
            stopped,
            move |function| {
                let counter = counter.clone();
                async move {
                    assert_eq!(function, "OutboxSweep");
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            },
        );
        tokio::time::sleep(Duration::from_secs(59)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing before the first period");
        tokio::time::sleep(Duration::from_secs(62)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "at 60 s and 120 s");
        let _ = stop.send(true);
        task.await.expect("the schedule stops");
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "and never again");
    }
}
