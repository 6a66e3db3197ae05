use std::sync::Arc;

use backoffice_domain::events::KpiDayRequested;
use backoffice_domain::kpi::Sale;
use backoffice_domain::testing::{self, FixedClock, campaign_catalog};
use backoffice_domain::tipification::{Channel, Contact, Family};
use backoffice_edge::http::Invocation;
use backoffice_edge::testing::{ApiEvent, MemoryPublisher, Reply};
use backoffice_store::config::MemoryCampaignDirectory;
use backoffice_store::kpis::{KpiReports as _, MemoryKpiStore};
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::{date, datetime};

use super::*;
use crate::exports::MemoryExports;

type Subject = Reports<MemoryKpiStore, MemoryCampaignDirectory, FixedClock>;

struct Harness {
    reports: Subject,
    publisher: Arc<MemoryPublisher>,
    exports: Arc<MemoryExports>,
}

/// 2026-12-01 03:00 in Lima: the 30th of November has ended.
const NOW: OffsetDateTime = datetime!(2026-12-01 08:00 UTC);

fn harness() -> Harness {
    let publisher = Arc::new(MemoryPublisher::default());
    let exports = Arc::new(MemoryExports::default());
    let mut catalog = campaign_catalog("c1", "acme");
    catalog.campaign.base_records = Some(1_000);
    Harness {
        reports: Reports {
            store: MemoryKpiStore::default(),
            campaigns: MemoryCampaignDirectory::with([catalog, campaign_catalog("other", "globex")]),
            exports: exports.clone(),
            publisher: publisher.clone(),
            clock: FixedClock::at(NOW),
            settings: Settings::default(),
        },
        publisher,
        exports,
    }
}

/// A call with timing (240 s talk, 30 hold, 30 wrap-up) under catalog `catalog_version`.
fn contact(id: &str, agent: &str, family: Family, started_at: OffsetDateTime, catalog_version: u32) -> Contact {
    Contact {
        catalog_version,
        talk_seconds: Some(240),
        hold_seconds: Some(30),
        wrap_seconds: Some(30),
        ..testing::contact(id, agent, Channel::Call, family, started_at)
    }
}

fn sale(id: &str, sold_at: OffsetDateTime, verified: bool) -> Sale {
    Sale {
        presale_id: id.into(),
        client_id: "acme".into(),
        campaign_id: "c1".into(),
        agent_id: "ana".into(),
        sold_at,
        verified,
    }
}

/// The 30th in Lima: three contacts of ana (one at 23:30, already the 1st in UTC), one of
/// bruno, two pre-sales of which one is verified.
fn seed_day(h: &Harness) {
    let store = &h.reports.store;
    for c in [
        contact("k1", "ana", Family::Effective, datetime!(2026-11-30 10:00 -5), 1),
        contact("k2", "ana", Family::NonEffective, datetime!(2026-11-30 15:00 -5), 2),
        contact("k3", "ana", Family::Effective, datetime!(2026-11-30 23:30 -5), 2),
        contact("k4", "bruno", Family::NoContact, datetime!(2026-11-30 11:00 -5), 1),
    ] {
        store.add_contact(c).expect("added");
    }
    store
        .add_sale(
            sale("p1", datetime!(2026-11-30 10:02 -5), true),
            datetime!(2026-11-30 10:10 -5),
        )
        .expect("added");
    store
        .add_sale(
            sale("p2", datetime!(2026-11-30 23:35 -5), false),
            datetime!(2026-12-01 00:05 -5),
        )
        .expect("added");
}

fn day_request(day: Date, forced: bool) -> KpiDayRequested {
    KpiDayRequested {
        campaign_id: "c1".into(),
        day,
        forced,
        reason: "test".into(),
    }
}

async fn get(h: &Harness, role: &str, query: &[(&str, &str)], csv: bool) -> Reply {
    let mut event = ApiEvent::new("GET /reports/kpis").who("u-1", role, "acme");
    for (name, value) in query {
        event = event.query(name, value);
    }
    if csv {
        event = event.header("accept", "text/csv");
    }
    h.reports
        .handle(event.build(), &Invocation::ending_after(NOW, 30))
        .await
        .into()
}

#[tokio::test]
async fn the_tick_asks_for_the_day_that_ended_and_then_only_for_days_that_changed() {
    let h = harness();
    seed_day(&h);
    let report = h.reports.tick(&TickRequest::default()).await.expect("a tick");
    let asked: Vec<(String, Date, String)> = report
        .requested
        .iter()
        .map(|r| (r.campaign_id.clone(), r.day, r.reason.clone()))
        .collect();
    assert_eq!(asked, vec![("c1".into(), date!(2026 - 11 - 30), "day_ended".into())]);
    assert_eq!(h.publisher.sent().len(), 1);

    // Computed: the next tick has nothing to ask for.
    let outcome = h.reports.process(&h.publisher.sent()[0].body).await.expect("computed");
    assert_eq!(outcome, DayOutcome::Computed { rows: 3 });
    assert!(
        h.reports
            .tick(&TickRequest::default())
            .await
            .expect("a tick")
            .requested
            .is_empty()
    );

    // A late contact re-opens its day; a verification decided today re-opens the sale's day.
    h.reports
        .store
        .add_contact(contact(
            "k5",
            "bruno",
            Family::Effective,
            datetime!(2026-11-30 20:00 -5),
            2,
        ))
        .expect("added");
    let report = h.reports.tick(&TickRequest::default()).await.expect("a tick");
    assert_eq!(report.requested[0].reason, "late_contacts");
    h.reports
        .compute(&day_request(date!(2026 - 11 - 30), false))
        .await
        .expect("computed");
    h.reports
        .store
        .add_decision("c1", date!(2026 - 12 - 01), date!(2026 - 11 - 30))
        .expect("added");
    let report = h.reports.tick(&TickRequest::default()).await.expect("a tick");
    assert_eq!(report.requested[0].reason, "verifications");
    h.reports
        .compute(&day_request(date!(2026 - 11 - 30), false))
        .await
        .expect("computed");
    assert!(
        h.reports
            .tick(&TickRequest::default())
            .await
            .expect("a tick")
            .requested
            .is_empty()
    );
}

#[tokio::test]
async fn a_day_is_computed_once_per_change_and_exported_to_its_partition() {
    let h = harness();
    seed_day(&h);
    let day = date!(2026 - 11 - 30);
    assert_eq!(
        h.reports.compute(&day_request(day, false)).await.expect("computed"),
        DayOutcome::Computed { rows: 3 }
    );
    assert_eq!(
        h.reports.compute(&day_request(day, false)).await.expect("a redelivery"),
        DayOutcome::Unchanged
    );
    assert_eq!(
        h.reports.compute(&day_request(day, true)).await.expect("forced"),
        DayOutcome::Computed { rows: 3 }
    );
    let (keys, all_parquet) = {
        let files = h.exports.files.lock().expect("files");
        let keys: Vec<String> = files.keys().cloned().collect();
        (keys, files.values().all(|f| f.starts_with(b"PAR1")))
    };
    assert_eq!(
        keys,
        vec!["reports/kpis/client=acme/campaign=c1/dt=2026-11-30/kpis.parquet"]
    );
    assert!(all_parquet);

    let rows = h.reports.store.rows("c1", day, day).await.expect("rows");
    let total = rows.iter().find(|r| r.agent_id.is_none()).expect("the day's total");
    // 23:30 in Lima counts on the 30th; the pre-sale registered after midnight too.
    assert_eq!(
        (total.counts.attempts, total.counts.contacts, total.counts.effective),
        (4, 3, 2)
    );
    assert_eq!((total.counts.presales, total.counts.verified_sales), (2, 1));
    assert_eq!(total.catalog_versions, vec![1, 2]);
    assert_eq!(total.base_records, Some(1_000));
}

#[tokio::test]
async fn a_wrong_message_fails_alone_and_an_unknown_campaign_is_not_configured() {
    let h = harness();
    assert!(matches!(h.reports.process("{}").await, Err(ReportError::Unreadable(_))));
    let mut request = day_request(date!(2026 - 11 - 30), false);
    request.campaign_id = "nope".into();
    assert!(matches!(
        h.reports.compute(&request).await,
        Err(ReportError::NotConfigured(_))
    ));
}

#[tokio::test]
async fn supervisors_read_the_rows_grouped_as_json_or_csv_and_nobody_else_does() {
    let h = harness();
    seed_day(&h);
    h.reports
        .compute(&day_request(date!(2026 - 11 - 30), false))
        .await
        .expect("computed");
    let query = [
        ("campaign", "c1"),
        ("from", "2026-11-29"),
        ("to", "2026-11-30"),
        ("group_by", "agent"),
    ];

    let reply = get(&h, "supervisor", &query, false).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["days_without_report"], serde_json::json!(["2026-11-29"]));
    let rows = reply.body["rows"].as_array().expect("rows");
    let ana = rows.iter().find(|r| r["agent_id"] == "ana").expect("ana's row");
    assert_eq!(ana["counts"]["attempts"], 3);
    assert_eq!(ana["rates"]["effective_rate"], "0.6667");
    let bruno = rows.iter().find(|r| r["agent_id"] == "bruno").expect("bruno's row");
    // Bruno reached nobody: no effective rate rather than 0.
    assert_eq!(bruno["rates"]["effective_rate"], Value::Null);

    let csv = get(&h, "admin", &query, true).await;
    assert_eq!(csv.status, 200);
    assert!(csv.text.starts_with("\u{feff}day,agent_id,channel,attempts"));
    assert!(
        csv.text.contains("\r\n2026-11-30,ana,,3,3,2,1,0,2,1,3,"),
        "{}",
        csv.text
    );

    let day = get(
        &h,
        "supervisor",
        &[("campaign", "c1"), ("from", "2026-11-30"), ("to", "2026-11-30")],
        false,
    )
    .await;
    let total = &day.body["rows"][0];
    assert_eq!(total["counts"]["attempts"], 4);
    assert_eq!(total["rates"]["verification_pass_rate"], "0.5000");
    assert_eq!(total["rates"]["penetration"], "0.0010");

    assert_eq!(get(&h, "agent", &query, false).await.status, 403);
    assert_eq!(get(&h, "supervisor", &[("campaign", "other")], false).await.status, 404);
    let bad = get(&h, "supervisor", &[("campaign", "c1"), ("group_by", "week")], false).await;
    assert_eq!(
        (bad.status, bad.body["field"].as_str()),
        (400, Some("group_by")),
        "{}",
        bad.text
    );
    let reversed = get(
        &h,
        "supervisor",
        &[("campaign", "c1"), ("from", "2026-11-30"), ("to", "2026-11-01")],
        false,
    )
    .await;
    assert_eq!(reversed.status, 400);
    assert_eq!(
        get(&h, "supervisor", &[("from", "2026-11-30")], false).await.status,
        400
    );
}

#[tokio::test]
async fn admins_rebuild_ended_days_only() {
    let h = harness();
    let rebuild = |role: &str, from: &str, to: &str| {
        ApiEvent::new("POST /reports/kpis/rebuild")
            .who("u-1", role, "acme")
            .query("campaign", "c1")
            .query("from", from)
            .query("to", to)
            .build()
    };
    let invocation = Invocation::ending_after(NOW, 30);
    let reply: Reply = h
        .reports
        .handle(rebuild("admin", "2026-11-28", "2026-11-30"), &invocation)
        .await
        .into();
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(
        reply.body["days"],
        serde_json::json!(["2026-11-28", "2026-11-29", "2026-11-30"])
    );
    let sent = h.publisher.sent_json();
    assert_eq!(sent.len(), 3);
    assert!(
        sent.iter()
            .all(|m| m["body"]["forced"] == true && m["type"] == "KpiDayRequested")
    );

    let today: Reply = h
        .reports
        .handle(rebuild("admin", "2026-11-30", "2026-12-01"), &invocation)
        .await
        .into();
    assert_eq!((today.status, today.body["field"].as_str()), (400, Some("to")));
    let supervisor: Reply = h
        .reports
        .handle(rebuild("supervisor", "2026-11-30", "2026-11-30"), &invocation)
        .await
        .into();
    assert_eq!(supervisor.status, 403);
}
