//! Handler tests with in-memory adapters, a controllable clock and a publisher that can fail.

use async_trait::async_trait;
use backoffice_domain::audit::{Actor, GENESIS_HASH};
use backoffice_domain::catalog::CampaignCatalog;
use backoffice_domain::presale::PresaleAction;
use backoffice_domain::recording::{Finding, Severity};
use backoffice_domain::testing::{FixedClock, campaign_catalog, registered_presale};
use backoffice_edge::testing::{ApiEvent, MemoryPublisher, Reply};
use backoffice_store::anchors::MemoryAuditAnchors;
use backoffice_store::config::MemoryCampaignDirectory;
use backoffice_store::presales::MemoryPresaleStore;
use time::macros::datetime;

use super::*;
use crate::ports::PortError;

struct Links;

#[async_trait]
impl RecordingLinks for Links {
    async fn playback_url(
        &self,
        bucket: &str,
        key: &str,
        _v: Option<&str>,
        _ttl: Duration,
    ) -> Result<String, PortError> {
        Ok(format!("https://s3.example/{bucket}/{key}?signed"))
    }
}

type TestReview =
    Review<MemoryPresaleStore, MemoryCampaignDirectory, Links, MemoryPublisher, FixedClock, MemoryAuditAnchors>;

fn catalog() -> CampaignCatalog {
    campaign_catalog("c1", "acme")
}

fn service() -> TestReview {
    Review {
        presales: MemoryPresaleStore::new(),
        campaigns: MemoryCampaignDirectory::with([catalog()]),
        links: Links,
        publisher: MemoryPublisher::default(),
        clock: FixedClock::at(datetime!(2026-11-23 16:00 UTC)),
        lease: time::Duration::minutes(10),
        anchors: MemoryAuditAnchors::default(),
    }
}

/// A pre-sale of agent-7, READY_FOR_REVIEW with the given risk and findings.
async fn ready(s: &TestReview, call_id: &str, risk: u8, blocking: bool) -> String {
    let now = s.clock.now() - time::Duration::minutes(30);
    let mut p = registered_presale(&catalog(), call_id, None, now);
    let created = AuditEntry::presale(&p, now, &Actor::new("agent-7", "agent"), "CREATED").seal(GENESIS_HASH);
    s.presales.create(&p, &created).await.expect("create");
    p.transition(PresaleAction::AttachRecording, now).expect("attach");
    p.risk_score = Some(risk);
    if blocking {
        p.findings.push(Finding {
            code: "AGENT_MISMATCH".into(),
            severity: Severity::Blocking,
            message: "x".into(),
            evidence: json!({}),
        });
    }
    let attached = AuditEntry::presale(&p, now, &Actor::system("recording-ingest"), "RECORDING_ATTACHED")
        .from_status(PresaleStatus::PendingRecording)
        .seal(&created.hash);
    s.presales
        .save(&p, 1, PresaleStatus::PendingRecording, &attached)
        .await
        .expect("attach");
    p.id.to_string()
}

async fn call(
    s: &TestReview,
    route: &str,
    id: Option<&str>,
    who: (&str, &str),
    body: Option<Value>,
    query: &[(&str, &str)],
) -> (u16, Value) {
    let mut event = ApiEvent::new(route).who(who.0, who.1, "acme");
    if let Some(id) = id {
        event = event.param("id", id);
    }
    for (name, value) in query {
        event = event.query(name, value);
    }
    if let Some(body) = body {
        event = event.json(&body);
    }
    let reply = Reply::from(
        s.handle(event.build(), &Invocation::ending_after(s.clock.now(), 10))
            .await,
    );
    (reply.status, reply.body)
}

const VAL1: (&str, &str) = ("val-1", "validator");
const VAL2: (&str, &str) = ("val-2", "validator");

fn slug(body: &Value) -> &str {
    body["type"]
        .as_str()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

#[tokio::test]
async fn claims_highest_risk_first_then_oldest_and_never_twice() {
    let s = service();
    let low = ready(&s, "c-low", 10, false).await;
    let high = ready(&s, "c-high", 80, false).await;
    let (status, first) = call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
    assert_eq!((status, first["presale"]["id"].as_str()), (200, Some(high.as_str())));
    let (_, again) = call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
    assert_eq!(
        again["presale"]["id"].as_str(),
        Some(high.as_str()),
        "asking again returns the held claim"
    );
    let (_, second) = call(&s, "POST /reviews/next", None, VAL2, None, &[]).await;
    assert_eq!(second["presale"]["id"].as_str(), Some(low.as_str()));
    let (status, _) = call(&s, "POST /reviews/next", None, ("val-3", "validator"), None, &[]).await;
    assert_eq!(status, 204, "nothing left");
    // The lease expires: the item returns to the queue.
    s.clock.advance(time::Duration::minutes(11));
    let (_, reclaimed) = call(&s, "POST /reviews/next", None, ("val-3", "validator"), None, &[]).await;
    assert_eq!(reclaimed["presale"]["id"].as_str(), Some(high.as_str()));
}

#[tokio::test]
async fn claimed_items_never_hide_waiting_ones_from_the_26th_validator() {
    let s = service();
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(ready(&s, &format!("c-{n}"), 50, false).await);
    }
    let mut claimed = std::collections::BTreeSet::new();
    for v in 1..=30 {
        let (status, body) = call(
            &s,
            "POST /reviews/next",
            None,
            (&format!("val-{v}"), "validator"),
            None,
            &[],
        )
        .await;
        assert_eq!(status, 200, "validator {v} gets work while work waits: {body}");
        assert!(claimed.insert(body["presale"]["id"].as_str().unwrap_or_default().to_owned()));
    }
    assert_eq!(claimed, ids.into_iter().collect(), "each pre-sale claimed exactly once");
    let (status, _) = call(&s, "POST /reviews/next", None, ("val-31", "validator"), None, &[]).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn a_validator_holds_one_claim_at_a_time() {
    let s = service();
    let first = ready(&s, "c-1", 50, false).await;
    let second = ready(&s, "c-2", 40, false).await;
    let (_, held) = call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
    assert_eq!(held["presale"]["id"].as_str(), Some(first.as_str()));
    // Whatever the queue holds, asking again never takes a second pre-sale.
    for _ in 0..3 {
        let (_, again) = call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
        assert_eq!(again["presale"]["id"].as_str(), Some(first.as_str()));
    }
    let second_claim = s
        .presales
        .get(&PresaleId::parse(&second).expect("id"))
        .await
        .expect("get");
    assert!(
        second_claim.expect("stored").presale.claim.is_none(),
        "the other one still waits"
    );

    // A store-level second claim is refused in the same transaction as the claim.
    let stored = s
        .presales
        .get(&PresaleId::parse(&second).expect("id"))
        .await
        .expect("get")
        .expect("stored");
    let mut p = stored.presale.clone();
    let now = s.clock.now();
    review::claim(&mut p, "val-1", now, time::Duration::minutes(10)).expect("claimable");
    let audit = AuditEntry::presale(&p, now, &Actor::new("val-1", "validator"), "CLAIMED").seal(&stored.audit_head);
    let effects = Effects {
        claim: Some(ClaimLock::Take {
            validator_id: "val-1".into(),
            presale_id: p.id.clone(),
            lease_until: now + time::Duration::minutes(10),
            now,
            replacing: None,
        }),
        ..Effects::default()
    };
    let refused = s
        .presales
        .save_with(
            &p,
            stored.presale.version,
            PresaleStatus::ReadyForReview,
            &audit,
            &effects,
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(ConflictKind::ValidatorBusy))),
        "{refused:?}"
    );

    // Released, the validator may take the next one.
    let (status, _) = call(&s, "POST /reviews/{id}/release", Some(&first), VAL1, None, &[]).await;
    assert_eq!(status, 200);
    let (_, next) = call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
    assert_eq!(
        next["presale"]["id"].as_str(),
        Some(first.as_str()),
        "the released one is first again"
    );
    // Decided, too.
    let version = next["presale"]["version"].as_u64().expect("version");
    let (status, body) = call(
        &s,
        "POST /presales/{id}/review",
        Some(&first),
        VAL1,
        Some(json!({"decision": "approve", "version": version})),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, after) = call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
    assert_eq!(after["presale"]["id"].as_str(), Some(second.as_str()));
}

#[tokio::test]
async fn the_agent_never_claims_or_decides_their_own_sale() {
    let s = service();
    let id = ready(&s, "c1", 50, false).await;
    let (status, _) = call(&s, "POST /reviews/next", None, ("agent-7", "validator"), None, &[]).await;
    assert_eq!(
        status, 204,
        "an agent holding a validator token gets nothing of their own"
    );
    let (status, body) = call(
        &s,
        "POST /presales/{id}/review",
        Some(&id),
        ("agent-7", "validator"),
        Some(json!({"decision": "approve", "version": 3})),
        &[],
    )
    .await;
    assert_eq!((status, slug(&body)), (403, "forbidden"));
    let (status, _) = call(&s, "POST /reviews/next", None, ("sup-1", "supervisor"), None, &[]).await;
    assert_eq!(status, 403, "supervisors read, validators decide");
}

#[tokio::test]
async fn decisions_are_conditional_and_approval_emits_one_sale_even_if_the_send_fails() {
    let s = service();
    let id = ready(&s, "c1", 50, true).await;
    let (status, body) = call(
        &s,
        "POST /presales/{id}/review",
        Some(&id),
        VAL1,
        Some(json!({"decision": "approve", "version": 2})),
        &[],
    )
    .await;
    assert_eq!((status, slug(&body)), (409, "not-claimed"));
    let (_, claimed) = call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
    let version = claimed["presale"]["version"].as_u64().expect("version");
    let (status, body) = call(
        &s,
        "POST /presales/{id}/review",
        Some(&id),
        VAL2,
        Some(json!({"decision": "approve", "version": version})),
        &[],
    )
    .await;
    assert_eq!((status, slug(&body)), (409, "claimed-by-other"));
    let (status, body) = call(
        &s,
        "POST /presales/{id}/review",
        Some(&id),
        VAL1,
        Some(json!({"decision": "approve", "version": version})),
        &[],
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("override_reason")));
    let (status, body) = call(
        &s,
        "POST /presales/{id}/review",
        Some(&id),
        VAL1,
        Some(json!({"decision": "approve", "version": version - 1, "override_reason": "ok"})),
        &[],
    )
    .await;
    assert_eq!((status, slug(&body)), (409, "stale-version"));

    s.publisher.set_down(true);
    let approve =
        json!({"decision": "approve", "version": version, "override_reason": "confirmado por llamada de control"});
    let (status, body) = call(
        &s,
        "POST /presales/{id}/review",
        Some(&id),
        VAL1,
        Some(approve.clone()),
        &[],
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("APPROVED")));
    assert!(s.publisher.sent().is_empty(), "the queue was down");
    let (status, body) = call(&s, "POST /presales/{id}/review", Some(&id), VAL1, Some(approve), &[]).await;
    assert_eq!(
        (status, slug(&body)),
        (409, "invalid-state"),
        "a repeated decision has no second effect"
    );
    let deadline = || s.clock.now() + time::Duration::minutes(15);
    assert_eq!(
        s.sweep(deadline()).await.expect("sweep"),
        SweepReport {
            failed: 1,
            ..SweepReport::default()
        }
    );
    s.publisher.set_down(false);
    assert_eq!(
        s.sweep(deadline()).await.expect("sweep"),
        SweepReport::default(),
        "a failed message waits for its retry time"
    );
    s.clock.advance(time::Duration::minutes(1));
    assert_eq!(
        s.sweep(deadline()).await.expect("sweep"),
        SweepReport {
            sent: 1,
            ..SweepReport::default()
        }
    );
    s.clock.advance(time::Duration::hours(2));
    assert_eq!(
        s.sweep(deadline()).await.expect("sweep"),
        SweepReport::default(),
        "sent once, not again"
    );
    let sent = s.publisher.sent_json();
    assert_eq!(sent.len(), 1);
    let envelope = &sent[0];
    assert_eq!(envelope["type"], "SaleConfirmed");
    // The sale carries the registration's correlation id (here none was given: the pre-sale's
    // id), never the validator's request id.
    assert_eq!(envelope["correlation_id"], json!(id));
    assert_eq!(envelope["body"]["sale_id"], json!(format!("S-{id}")));
    assert_eq!(
        envelope["body"]["total"],
        json!({"amount": "149.90", "currency": "PEN"})
    );

    let (status, audit) = call(
        &s,
        "GET /presales/{id}/audit",
        Some(&id),
        ("sup-1", "supervisor"),
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let actions: Vec<&str> = audit["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(actions, vec!["CREATED", "RECORDING_ATTACHED", "CLAIMED", "APPROVED"]);
    assert_eq!(audit["verification"]["verified"], true);
    // The decision's head was anchored outside the table, and the audit checked it.
    let anchors = s.anchors.anchors(&id).await.expect("anchors");
    assert_eq!(
        (anchors.len(), anchors[0].seq, audit["verification"]["anchors"].as_u64()),
        (1, Some(4), Some(1))
    );
    assert_eq!(json!(anchors[0].hash), audit["records"][3]["hash"]);
}

#[tokio::test]
async fn reject_and_return_need_catalog_reasons_and_feed_the_metrics() {
    let s = service();
    let a = ready(&s, "c1", 50, false).await;
    let b = ready(&s, "c2", 40, false).await;
    let (_, claimed) = call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
    let v = claimed["presale"]["version"].as_u64().expect("v");
    let (status, body) = call(
        &s,
        "POST /presales/{id}/review",
        Some(&a),
        VAL1,
        Some(json!({"decision": "reject", "version": v, "reasons": ["NOPE"]})),
        &[],
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("reasons[0]")));
    let (status, _) = call(
        &s,
        "POST /presales/{id}/review",
        Some(&a),
        VAL1,
        Some(json!({"decision": "reject", "version": v, "reasons": ["NO_CONSENT"]})),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let (_, claimed) = call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
    assert_eq!(claimed["presale"]["id"].as_str(), Some(b.as_str()));
    let v = claimed["presale"]["version"].as_u64().expect("v");
    let (status, body) = call(
        &s,
        "POST /presales/{id}/review",
        Some(&b),
        VAL1,
        Some(json!({"decision": "return", "version": v, "reasons": ["ADDRESS"], "comment": "falta el número"})),
        &[],
    )
    .await;
    assert_eq!(
        (
            status,
            body["status"].as_str(),
            body["correction"]["reasons"][0].as_str()
        ),
        (200, Some("NEEDS_CORRECTION"), Some("ADDRESS"))
    );
    let (status, metrics) = call(
        &s,
        "GET /reviews/metrics",
        None,
        ("sup-1", "supervisor"),
        None,
        &[("campaign", "c1")],
    )
    .await;
    assert_eq!(status, 200, "{metrics}");
    assert_eq!(
        (
            metrics["reviewed"].as_i64(),
            metrics["rejected"].as_i64(),
            metrics["returned"].as_i64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(metrics["rejected_by_reason"]["NO_CONSENT"], 1);
    assert_eq!(metrics["time_to_decision"]["median"], "<= 1800 s");
    assert_eq!(metrics["agents"][0]["approval_rate"], 0.0);
    let (status, _) = call(&s, "GET /reviews/metrics", None, VAL1, None, &[("campaign", "c1")]).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn release_gives_the_claim_back_and_the_view_has_a_playback_link() {
    let s = service();
    let id = ready(&s, "c1", 50, false).await;
    let (status, _) = call(&s, "POST /reviews/{id}/release", Some(&id), VAL1, None, &[]).await;
    assert_eq!(status, 409, "nothing to release");
    call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
    let (status, _) = call(&s, "POST /reviews/{id}/release", Some(&id), VAL2, None, &[]).await;
    assert_eq!(status, 409, "only the holder releases");
    let (status, body) = call(&s, "POST /reviews/{id}/release", Some(&id), VAL1, None, &[]).await;
    assert_eq!((status, body.get("claim")), (200, None));
    let (_, next) = call(&s, "POST /reviews/next", None, VAL2, None, &[]).await;
    assert_eq!(next["presale"]["id"].as_str(), Some(id.as_str()));
    let (status, view) = call(
        &s,
        "GET /presales/{id}/review-view",
        Some(&id),
        ("sup-1", "supervisor"),
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(view["reasons"]["reject"].as_array().map(Vec::len), Some(6));
    let (status, _) = call(
        &s,
        "GET /presales/{id}/review-view",
        Some("not-a-uuid"),
        VAL1,
        None,
        &[],
    )
    .await;
    assert_eq!(status, 404);
}

/// Issue 12: a decision at 21:00 in Lima (02:00 UTC the next day) counts for Lima's day, and
/// the metrics' default day is Lima's today.
#[tokio::test]
async fn a_lima_evening_decision_counts_for_limas_day() {
    let s = service();
    s.clock.set(datetime!(2026-11-24 01:30 UTC));
    let id = ready(&s, "c-evening", 10, false).await;
    s.clock.set(datetime!(2026-11-24 02:00 UTC));
    let (_, claimed) = call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
    let v = claimed["presale"]["version"].as_u64().expect("v");
    let decision = json!({"decision": "reject", "version": v, "reasons": ["NO_CONSENT"]});
    let (status, _) = call(&s, "POST /presales/{id}/review", Some(&id), VAL1, Some(decision), &[]).await;
    assert_eq!(status, 200);
    let metrics = |query: &'static [(&'static str, &'static str)]| {
        let s = &s;
        async move {
            call(s, "GET /reviews/metrics", None, ("sup-1", "supervisor"), None, query)
                .await
                .1
        }
    };
    let today = metrics(&[("campaign", "c1")]).await;
    assert_eq!(
        (today["day"].as_str(), today["reviewed"].as_i64()),
        (Some("2026-11-23"), Some(1)),
        "{today}"
    );
    let utc_day = metrics(&[("campaign", "c1"), ("day", "2026-11-24")]).await;
    assert_eq!(utc_day["reviewed"].as_i64(), Some(0), "{utc_day}");
}
