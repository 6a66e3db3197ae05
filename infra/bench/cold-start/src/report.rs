//! Percentiles and the printed tables, with each figure beside hello-lambda's and the targets of
//! issue 14 (item 2).

use std::fmt::Write as _;
use std::time::Duration;

use crate::bench::{Figures, HELLO, Subject};

/// Init median at most this many times hello-lambda's.
pub const INIT_RATIO_TARGET: f64 = 1.5;
/// Init after an idle second at most this many times hello-lambda's.
pub const IDLE_RATIO_TARGET: f64 = 2.0;
/// Peak RSS, MiB.
pub const RSS_TARGET_MIB: f64 = 32.0;

/// The nearest-rank percentile `p` (0–100) of `samples`.
pub fn percentile(samples: &[Duration], p: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "—".to_owned(), |d| format!("{:.2}", d.as_secs_f64() * 1000.0))
}

fn ratio(value: Option<Duration>, base: Option<Duration>) -> Option<f64> {
    let (value, base) = (value?, base?);
    (!base.is_zero()).then(|| value.as_secs_f64() / base.as_secs_f64())
}

fn times(r: Option<f64>) -> String {
    r.map_or_else(|| "—".to_owned(), |r| format!("{r:.2}×"))
}

fn mark(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "PASS",
        Some(false) => "over",
        None => "—",
    }
}

fn mib(kib: Option<u64>) -> Option<f64> {
    kib.map(|k| k as f64 / 1024.0)
}

/// A plain-text table, columns padded to their widest cell (numbers right-aligned).
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            let numeric = i > 0 && cell.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '—');
            if i > 0 {
                out.push_str("  ");
            }
            if numeric {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(header.iter().map(|h| (*h).to_owned()).collect());
    out.push('\n');
    out.push_str(&line(widths.iter().map(|w| "-".repeat(*w)).collect()));
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.clone()));
    }
    out
}

pub struct Context<'a> {
    pub build: &'a str,
    pub runs: usize,
    pub idle_runs: usize,
    pub idle: Duration,
    pub warm: usize,
    /// The direct GetItem's samples (or why there are none).
    pub get_item: Result<Vec<Duration>, String>,
}

pub fn render(subjects: &[Subject], figures: &[Figures], ctx: &Context<'_>) -> String {
    let hello = subjects
        .iter()
        .zip(figures)
        .find(|(s, _)| s.name == HELLO)
        .map(|(_, f)| f);
    let hello_init = hello.and_then(|f| percentile(&f.init, 50.0));
    let hello_idle = hello.and_then(|f| percentile(&f.idle_init, 50.0));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Cold starts of {} binaries. init: spawn to the first GET /next, over {} fresh processes; \
         after idle: init after {:?} of nothing, {} times; first and warm: wall time of the first \
         and the next {} invocations on one more process (p99 by nearest rank: with 50 samples, \
         the slowest); peak RSS: its VmHWM just before the kill.\n",
        ctx.build, ctx.runs, ctx.idle, ctx.idle_runs, ctx.warm
    );

    let mut rows = Vec::new();
    for (s, f) in subjects.iter().zip(figures) {
        let init = percentile(&f.init, 50.0);
        let idle = percentile(&f.idle_init, 50.0);
        let init_ratio = ratio(init, hello_init);
        let idle_ratio = ratio(idle, hello_idle);
        let rss = mib(f.peak_rss_kib);
        let is_hello = s.name == HELLO;
        let targets = if is_hello {
            "(yardstick)".to_owned()
        } else {
            format!(
                "init {} · idle {} · RSS {}",
                mark(init_ratio.map(|r| r <= INIT_RATIO_TARGET)),
                mark(idle_ratio.map(|r| r <= IDLE_RATIO_TARGET)),
                mark(rss.map(|m| m <= RSS_TARGET_MIB)),
            )
        };
        rows.push(vec![
            s.name.clone(),
            ms(init),
            ms(percentile(&f.init, 90.0)),
            times(init_ratio),
            ms(idle),
            times(idle_ratio),
            rss.map_or_else(|| "—".to_owned(), |m| format!("{m:.1}")),
            targets,
        ]);
    }
    out.push_str(&table(
        &[
            "function",
            "init p50 ms",
            "init p90 ms",
            "× hello",
            "after idle p50 ms",
            "× hello",
            "peak RSS MB",
            "targets (≤1.5× · ≤2× · ≤32 MB)",
        ],
        &rows,
    ));
    out.push_str("\n\n");

    let mut rows = Vec::new();
    for (s, f) in subjects.iter().zip(figures) {
        let event = s.event.as_ref().map_or("—", |e| e.label.as_str());
        rows.push(vec![
            s.name.clone(),
            event.to_owned(),
            ms(f.first),
            ms(percentile(&f.warm, 50.0)),
            ms(percentile(&f.warm, 99.0)),
            f.answer.clone(),
        ]);
    }
    out.push_str(&table(
        &[
            "function",
            "event",
            "first invocation ms",
            "warm p50 ms",
            "warm p99 ms",
            "answer",
        ],
        &rows,
    ));
    out.push_str("\n\n");

    let intake = subjects
        .iter()
        .zip(figures)
        .find(|(s, _)| s.name == "PresaleIntakeFunction")
        .map(|(_, f)| f);
    match (&ctx.get_item, intake) {
        (Ok(samples), Some(f)) if !f.warm.is_empty() => {
            let (fn50, fn99) = (percentile(&f.warm, 50.0), percentile(&f.warm, 99.0));
            let (db50, db99) = (percentile(samples, 50.0), percentile(samples, 99.0));
            let share = |db: Option<Duration>, whole: Option<Duration>| ratio(db, whole).map(|r| r * 100.0);
            let p99_share = share(db99, fn99);
            let _ = writeln!(
                out,
                "warm GET /presales/{{id}}: function p50 {} ms, p99 {} ms; its one DynamoDB GetItem \
                 (consistent, {} calls from here with the SDK) p50 {} ms, p99 {} ms: the call is {:.0}% \
                 of the p50 and {:.0}% of the p99 → {} (dominated: ≥ 50% of the p99)",
                ms(fn50),
                ms(fn99),
                samples.len(),
                ms(db50),
                ms(db99),
                share(db50, fn50).unwrap_or(0.0),
                p99_share.unwrap_or(0.0),
                mark(p99_share.map(|s| s >= 50.0)),
            );
        }
        (Err(e), _) => {
            let _ = writeln!(out, "direct GetItem not measured: {e}");
        }
        _ => {
            let _ = writeln!(out, "GET /presales/{{id}} was not measured warm");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=50).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Some(Duration::from_millis(25)));
        assert_eq!(percentile(&samples, 90.0), Some(Duration::from_millis(45)));
        assert_eq!(percentile(&samples, 99.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["a", "bb"],
            &[vec!["x".into(), "1.00".into()], vec!["yyy".into(), "10.00".into()]],
        );
        assert_eq!(t, "a    bb\n---  -----\nx     1.00\nyyy  10.00");
    }
}
