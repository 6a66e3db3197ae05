//! Validator metrics kept as the work happens: every decision adds to per-day, per-campaign
//! counters in the same transaction (no scans at read time). Review times go into a histogram,
//! from which the median and p90 are read as bucket bounds.

use std::collections::BTreeMap;

use backoffice_domain::kpi::{self, Ratio};
use backoffice_domain::presale::Presale;
use backoffice_domain::review::DecisionKind;
use backoffice_store::counters::{CounterDelta, CounterRow};
use serde_json::{Value, json};
use time::Date;

/// Upper bounds (seconds) of the review-time histogram buckets; a last bucket holds the rest.
pub const BUCKETS: [i64; 12] = [30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14_400, 28_800, 86_400];

/// The `REVIEW` item's per-validator counters: decisions, approvals, seconds of review.
const VALIDATOR_DECIDED: &str = "validator_decided:";
const VALIDATOR_APPROVED: &str = "validator_approved:";
const VALIDATOR_SECS: &str = "validator_secs:";

/// Days are the campaign's local days.
pub fn pk(campaign: &str, day: Date) -> String {
    format!("METRICS#{campaign}#{day}")
}

fn bucket_name(secs: i64) -> String {
    match BUCKETS.iter().find(|&&b| secs <= b) {
        Some(b) => format!("t_le_{b}"),
        None => "t_gt_86400".into(),
    }
}

/// What a decision adds to the metrics of `day` (the campaign-local day it was taken). The
/// `REVIEW` item also counts decisions per sale day (`sold_{yyyymmdd}`): the KPI reports re-open
/// the day a decided pre-sale was sold on (`backoffice_store::kpis`).
pub fn decision_counters(presale: &Presale, day: Date, sale_day: Date) -> Vec<CounterDelta> {
    let Some(decision) = &presale.decision else {
        return vec![];
    };
    let key = pk(&presale.campaign_id, day);
    let outcome = match decision.kind {
        DecisionKind::Approve => "approved",
        DecisionKind::Reject => "rejected",
        DecisionKind::Return => "returned",
    };
    let mut review = vec![
        ("reviewed".to_owned(), 1),
        (outcome.to_owned(), 1),
        (bucket_name(decision.review_secs), 1),
        (backoffice_store::kpis::decisions_counter(sale_day), 1),
    ];
    if decision.kind == DecisionKind::Reject {
        review.extend(decision.reasons.iter().map(|r| (format!("reject_{r}"), 1)));
    }
    let approved = i64::from(decision.kind == DecisionKind::Approve);
    // The validator's throughput on the same item: no write more per decision (issue 14).
    review.extend([
        (format!("{VALIDATOR_DECIDED}{}", decision.by), 1),
        (format!("{VALIDATOR_APPROVED}{}", decision.by), approved),
        (format!("{VALIDATOR_SECS}{}", decision.by), decision.review_secs.max(0)),
    ]);
    vec![
        CounterDelta {
            pk: key.clone(),
            sk: "REVIEW".into(),
            increments: review,
        },
        CounterDelta {
            pk: key,
            sk: format!("AGENT#{}", presale.agent_id),
            increments: vec![("decided".into(), 1), ("approved".into(), approved)],
        },
    ]
}

/// The bound of the bucket where the `q`-quantile falls.
fn quantile(histogram: &[(String, i64)], total: i64, q: f64) -> Option<String> {
    if total == 0 {
        return None;
    }
    let target = (total as f64 * q).ceil().max(1.0) as i64;
    let mut seen = 0;
    for (name, count) in histogram {
        seen += count;
        if seen >= target {
            return Some(name.replace("t_le_", "<= ").replace("t_gt_", "> ") + " s");
        }
    }
    None
}

pub fn summary(campaign: &str, day: Date, rows: &[CounterRow]) -> Value {
    let empty = BTreeMap::new();
    let review = rows
        .iter()
        .find(|r| r.sk == "REVIEW")
        .map(|r| &r.values)
        .unwrap_or(&empty);
    let get = |name: &str| review.get(name).copied().unwrap_or(0);
    let histogram: Vec<(String, i64)> = BUCKETS
        .iter()
        .map(|b| format!("t_le_{b}"))
        .chain(["t_gt_86400".to_owned()])
        .map(|name| {
            let count = review.get(&name).copied().unwrap_or(0);
            (name, count)
        })
        .collect();
    let reviewed = get("reviewed");
    let by_reason: BTreeMap<&str, i64> = review
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("reject_").map(|r| (r, *v)))
        .collect();
    let agents: Vec<Value> = rows
        .iter()
        .filter_map(|r| r.sk.strip_prefix("AGENT#").map(|agent| (agent, &r.values)))
        .map(|(agent, values)| {
            let decided = values.get("decided").copied().unwrap_or(0);
            let approved = values.get("approved").copied().unwrap_or(0);
            json!({"agent_id": agent, "decided": decided, "approved": approved, "approval_rate": rate(approved, decided)})
        })
        .collect();
    // Most decisions first: the day's throughput per validator.
    let mut validators: Vec<(&str, i64)> = review
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(VALIDATOR_DECIDED).map(|id| (id, *v)))
        .collect();
    validators.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let validators: Vec<Value> = validators
        .into_iter()
        .map(|(id, decided)| {
            let approved = review.get(&format!("{VALIDATOR_APPROVED}{id}")).copied().unwrap_or(0);
            let secs = review.get(&format!("{VALIDATOR_SECS}{id}")).copied().unwrap_or(0);
            let decided_u = u64::try_from(decided).unwrap_or(0);
            json!({
                "validator_id": id, "decided": decided, "approved": approved,
                "approval_rate": rate(approved, decided),
                "average_review_secs": Ratio::new(u64::try_from(secs).unwrap_or(0), decided_u).map(|r| r.to_fixed(1)),
            })
        })
        .collect();
    json!({
        "campaign_id": campaign,
        "day": day.to_string(),
        "reviewed": reviewed,
        "approved": get("approved"),
        "rejected": get("rejected"),
        "rejected_by_reason": by_reason,
        "returned": get("returned"),
        "time_to_decision": {
            "median": quantile(&histogram, reviewed, 0.5),
            "p90": quantile(&histogram, reviewed, 0.9),
            "histogram": histogram.iter().filter(|(_, c)| *c > 0).map(|(n, c)| json!({"bucket": n, "count": c})).collect::<Vec<_>>(),
        },
        "agents": agents,
        "validators": validators,
    })
}

/// Exact, as every published rate (ADR 0025): a decimal string, null when nothing was decided
/// (unknown, not 0).
fn rate(approved: i64, decided: i64) -> Option<String> {
    Ratio::new(
        u64::try_from(approved).unwrap_or(0),
        u64::try_from(decided).unwrap_or(0),
    )
    .map(|r| r.to_fixed(kpi::DECIMALS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_from_the_histogram() {
        let rows = vec![CounterRow {
            sk: "REVIEW".into(),
            values: [
                ("reviewed", 10),
                ("approved", 7),
                ("rejected", 2),
                ("returned", 1),
                ("reject_NO_CONSENT", 2),
                ("t_le_60", 5),
                ("t_le_300", 4),
                ("t_le_3600", 1),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        }];
        let s = summary("c1", time::macros::date!(2026 - 11 - 23), &rows);
        assert_eq!(s["time_to_decision"]["median"], "<= 60 s");
        assert_eq!(s["time_to_decision"]["p90"], "<= 300 s");
        assert_eq!(s["rejected_by_reason"]["NO_CONSENT"], 2);
        assert_eq!(bucket_name(0), "t_le_30");
        assert_eq!(bucket_name(100_000), "t_gt_86400");
    }

    #[test]
    fn each_validators_throughput_approval_rate_and_review_time() {
        let values = [
            ("reviewed", 4),
            ("validator_decided:val-2", 1),
            ("validator_approved:val-2", 0),
            ("validator_secs:val-2", 40),
            ("validator_decided:val-1", 3),
            ("validator_approved:val-1", 2),
            ("validator_secs:val-1", 301),
        ];
        let rows = vec![CounterRow {
            sk: "REVIEW".into(),
            values: values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }];
        let s = summary("c1", time::macros::date!(2026 - 11 - 23), &rows);
        assert_eq!(
            s["validators"],
            json!([
                {"validator_id": "val-1", "decided": 3, "approved": 2, "approval_rate": "0.6667", "average_review_secs": "100.3"},
                {"validator_id": "val-2", "decided": 1, "approved": 0, "approval_rate": "0.0000", "average_review_secs": "40.0"},
            ])
        );
    }
}
