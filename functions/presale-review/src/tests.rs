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

/// The claim item is read only when the claim's transaction says the validator holds one:
/// an item naming a pre-sale whose claim ended elsewhere is replaced by the next claim.
#[tokio::test]
async fn a_claim_item_naming_an_ended_claim_is_replaced_by_the_next_claim() {
    let s = service();
    let low = ready(&s, "c-low", 10, false).await;
    let high = ready(&s, "c-high", 80, false).await;
    let (_, first) = call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
    assert_eq!(first["presale"]["id"].as_str(), Some(high.as_str()));
    // The claim ends without its item being freed (decided by another writer).
    let id = PresaleId::parse(&high).expect("id");
    let mut stored = s.presales.get(&id).await.expect("read").expect("stored");
    stored.presale.claim = None;
    stored.presale.status = PresaleStatus::Approved;
    s.presales.put_raw(stored);
    let (status, next) = call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
    assert_eq!((status, next["presale"]["id"].as_str()), (200, Some(low.as_str())));
    let held = s.presales.held_claim("val-1").await.expect("read").expect("held");
    assert_eq!(held.presale_id.as_str(), low);
    // Holding that one, asking with an empty queue returns it, not a 204.
    let (status, again) = call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
    assert_eq!((status, again["presale"]["id"].as_str()), (200, Some(low.as_str())));
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
    assert_eq!(
        metrics["agents"][0]["approval_rate"], "0.0000",
        "exact, as every published rate"
    );
    // The validator's throughput: both decisions were theirs.
    assert_eq!(
        (
            metrics["validators"][0]["validator_id"].as_str(),
            metrics["validators"][0]["decided"].as_i64(),
            metrics["validators"][0]["approved"].as_i64()
        ),
        (Some(VAL1.0), Some(2), Some(0))
    );
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

/// A pre-sale ready for review, bound to the newer of two versions of its call's recording.
async fn ready_with_versions(s: &TestReview) -> (String, Vec<Recording>) {
    let id = ready(s, "c-rec", 50, false).await;
    let pid = PresaleId::parse(&id).expect("id");
    let stored = s.presales.get(&pid).await.expect("get").expect("stored");
    let mut p = stored.presale.clone();
    let received = s.clock.now() - time::Duration::minutes(40);
    let mut old = backoffice_domain::testing::clean_recording("acme", "c1", &p.call_id, received);
    old.sha256 = "0".repeat(64);
    old.version_id = Some("v1".into());
    old.peaks = None;
    let mut new =
        backoffice_domain::testing::clean_recording("acme", "c1", &p.call_id, received + time::Duration::minutes(5));
    new.version_id = Some("v2".into());
    for r in [&old, &new] {
        assert!(s.presales.put_recording(r).await.expect("put"));
    }
    p.recording = Some(backoffice_domain::recording::RecordingRef {
        bucket: new.bucket.clone(),
        key: new.key.clone(),
        version_id: new.version_id.clone(),
        sha256: new.sha256.clone(),
        duration_ms: 120_000,
        attached_at: received,
    });
    p.version += 1;
    let audit = AuditEntry::presale(&p, received, &Actor::system("recording-ingest"), "RECORDING_REPLACED")
        .seal(&stored.audit_head);
    s.presales
        .save(&p, p.version - 1, p.status, &audit)
        .await
        .expect("bind");
    (id, vec![new, old])
}

#[tokio::test]
async fn the_review_view_has_the_waveform_the_marks_and_every_version() {
    let s = service();
    let (id, versions) = ready_with_versions(&s).await;
    call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
    let (status, view) = call(&s, "GET /presales/{id}/review-view", Some(&id), VAL1, None, &[]).await;
    assert_eq!(status, 200, "{view}");
    let recording = &view["recording"];
    assert_eq!(recording["sha256"], versions[0].sha256.as_str());
    assert_eq!(recording["version_id"], "v2");
    assert_eq!(recording["duration_ms"], 120_000);
    assert_eq!(recording["peaks"]["seconds_per_peak"], 0.1);
    assert_eq!(recording["peaks"]["values"].as_array().map(Vec::len), Some(1200));
    assert_eq!(recording["peaks"]["values"][255], 255);
    assert_eq!(
        recording["marks"],
        json!([{"kind": "silence", "start_s": 61.0, "end_s": 64.0}])
    );
    assert_eq!(recording["received_at"], "2026-11-23T15:25:00Z");
    assert_eq!(view["other_versions"], 1);
    assert_eq!(
        view["versions"],
        json!([
            {"version_id": "v2", "sha256": versions[0].sha256, "received_at": "2026-11-23T15:25:00Z",
             "bytes": 1_920_044, "duration_ms": 120_000, "unreadable": false, "bound": true,
             "playback_url": format!("https://s3.example/recordings/{}?signed", versions[0].key)},
            {"version_id": "v1", "sha256": "0".repeat(64), "received_at": "2026-11-23T15:20:00Z",
             "bytes": 1_920_044, "duration_ms": 120_000, "unreadable": false, "bound": false,
             "playback_url": format!("https://s3.example/recordings/{}?signed", versions[1].key)},
        ])
    );
    assert_eq!(view["lease_until"], "2026-11-23T16:10:00Z");
}

fn played(playback_id: &str, sha256: &str, listened_ms: u64) -> Value {
    json!({"playback_id": playback_id, "sha256": sha256, "started_at": "2026-11-23T15:58:00Z", "listened_ms": listened_ms})
}

#[tokio::test]
async fn a_playback_is_a_note_in_the_audit_once_and_never_a_new_version() {
    let s = service();
    let (id, versions) = ready_with_versions(&s).await;
    let (_, claimed) = call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
    let version = claimed["presale"]["version"].as_u64().expect("version");
    let body = played("play-0001-aaaa", &versions[1].sha256, 30_000);
    let (status, first) = call(
        &s,
        "POST /presales/{id}/playbacks",
        Some(&id),
        VAL1,
        Some(body.clone()),
        &[],
    )
    .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        (first["version_id"].as_str(), first["note"].as_u64()),
        (Some("v1"), Some(1))
    );
    // The retry of the same request records nothing more; another id is another playback.
    let (status, again) = call(&s, "POST /presales/{id}/playbacks", Some(&id), VAL1, Some(body), &[]).await;
    assert_eq!((status, &again), (200, &first));
    let (status, _) = call(
        &s,
        "POST /presales/{id}/playbacks",
        Some(&id),
        ("sup-1", "supervisor"),
        Some(played("play-0002-bbbb", &versions[0].sha256, 90_000)),
        &[],
    )
    .await;
    assert_eq!(status, 201);
    let (status, reused) = call(
        &s,
        "POST /presales/{id}/playbacks",
        Some(&id),
        VAL1,
        Some(played("play-0001-aaaa", &versions[1].sha256, 31_000)),
        &[],
    )
    .await;
    assert_eq!(
        (status, reused["errors"][0]["field"].as_str()),
        (422, Some("playback_id"))
    );
    let (status, unknown) = call(
        &s,
        "POST /presales/{id}/playbacks",
        Some(&id),
        VAL1,
        Some(played("play-0003-cccc", &"f".repeat(64), 1_000)),
        &[],
    )
    .await;
    assert_eq!((status, unknown["errors"][0]["field"].as_str()), (422, Some("sha256")));
    let (status, _) = call(
        &s,
        "POST /presales/{id}/playbacks",
        Some(&id),
        ("agent-7", "agent"),
        Some(played("play-0004-dddd", &versions[0].sha256, 1_000)),
        &[],
    )
    .await;
    assert_eq!(status, 403);
    // Two notes, the chain verifies, and the decision on the version claimed still goes through.
    let (_, audit) = call(&s, "GET /presales/{id}/audit", Some(&id), VAL1, None, &[]).await;
    let plays: Vec<&Value> = audit["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["action"] == "PLAYED")
        .collect();
    assert_eq!(plays.len(), 2);
    assert_eq!(
        (plays[0]["actor"].as_str(), plays[0]["details"]["listened_ms"].as_u64()),
        (Some("val-1"), Some(30_000))
    );
    assert_eq!(
        (plays[1]["seq"].as_u64(), plays[1]["note"].as_u64()),
        (Some(version), Some(2))
    );
    assert_eq!(audit["verification"]["verified"], true, "{}", audit["verification"]);
    let (status, decided) = call(
        &s,
        "POST /presales/{id}/review",
        Some(&id),
        VAL1,
        Some(json!({"decision": "approve", "version": version})),
        &[],
    )
    .await;
    assert_eq!(
        (status, decided["status"].as_str()),
        (200, Some("APPROVED")),
        "{decided}"
    );
    let (_, audit) = call(&s, "GET /presales/{id}/audit", Some(&id), VAL1, None, &[]).await;
    assert_eq!(audit["verification"]["verified"], true, "{}", audit["verification"]);
}

#[tokio::test]
async fn the_lease_is_renewed_past_half_by_its_holder_without_a_new_version() {
    let s = service();
    let id = ready(&s, "c-renew", 50, false).await;
    let (status, refused) = call(&s, "POST /reviews/{id}/renew", Some(&id), VAL1, None, &[]).await;
    assert_eq!((status, slug(&refused)), (409, "not-claimed"));
    let (_, claimed) = call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
    let version = claimed["presale"]["version"].as_u64().expect("version");
    assert_eq!(claimed["lease_until"], "2026-11-23T16:10:00Z");
    s.clock.advance(time::Duration::minutes(1));
    let (status, fresh) = call(&s, "POST /reviews/{id}/renew", Some(&id), VAL1, None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        fresh,
        json!({"presale_id": id, "version": version, "lease_until": "2026-11-23T16:10:00Z", "renewed": false})
    );
    s.clock.advance(time::Duration::minutes(5));
    let (status, renewed) = call(&s, "POST /reviews/{id}/renew", Some(&id), VAL1, None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        (renewed["lease_until"].as_str(), renewed["renewed"].as_bool()),
        (Some("2026-11-23T16:16:00Z"), Some(true))
    );
    let (status, other) = call(&s, "POST /reviews/{id}/renew", Some(&id), VAL2, None, &[]).await;
    assert_eq!(
        (status, slug(&other), other["current"]["claimed_by"].as_str()),
        (409, "claimed-by-other", Some("val-1"))
    );
    // Past the old lease end the claim still holds: nobody else gets it.
    s.clock.advance(time::Duration::minutes(5));
    let (status, _) = call(&s, "POST /reviews/next", None, VAL2, None, &[]).await;
    assert_eq!(status, 204);
    let held = s.presales.held_claim("val-1").await.expect("read").expect("held");
    assert_eq!(held.lease_until, datetime!(2026-11-23 16:16 UTC));
    let (_, audit) = call(&s, "GET /presales/{id}/audit", Some(&id), VAL1, None, &[]).await;
    let renewals = audit["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["action"] == "LEASE_RENEWED")
        .count();
    assert_eq!((renewals, &audit["verification"]["verified"]), (1, &json!(true)));
    let (status, decided) = call(
        &s,
        "POST /presales/{id}/review",
        Some(&id),
        VAL1,
        Some(json!({"decision": "approve", "version": version})),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    // A decision on a version someone else decided says who did, and when.
    let (status, stale) = call(&s, "POST /reviews/{id}/renew", Some(&id), VAL1, None, &[]).await;
    assert_eq!((status, slug(&stale)), (409, "invalid-state"));
    assert_eq!(stale["current"]["decided_by"], "val-1");
    assert_eq!(stale["current"]["decision"], "approve");
    assert_eq!(stale["current"]["decided_at"], "2026-11-23T16:11:00Z");
}

#[tokio::test]
async fn a_decision_raced_by_a_playback_note_is_made_on_the_new_head_not_refused() {
    let s = service();
    let id = ready(&s, "c-race", 50, false).await;
    let (_, claimed) = call(&s, "POST /reviews/next", None, VAL1, None, &[]).await;
    let version = claimed["presale"]["version"].as_u64().expect("version");
    // A playback commits between the decision's read and its write.
    let stored = s
        .presales
        .get(&PresaleId::parse(&id).expect("id"))
        .await
        .expect("get")
        .expect("stored");
    let note = AuditEntry::presale_note(
        &stored.presale,
        1,
        s.clock.now(),
        &Actor::new("sup-1", "supervisor"),
        "PLAYED",
    )
    .details(json!({"listened_ms": 5_000}))
    .seal(&stored.audit_head);
    s.presales.note_before_next_save(note);
    let (status, decided) = call(
        &s,
        "POST /presales/{id}/review",
        Some(&id),
        VAL1,
        Some(json!({"decision": "approve", "version": version})),
        &[],
    )
    .await;
    assert_eq!(
        (status, decided["status"].as_str()),
        (200, Some("APPROVED")),
        "{decided}"
    );
    let (_, audit) = call(&s, "GET /presales/{id}/audit", Some(&id), VAL1, None, &[]).await;
    let actions: Vec<&str> = audit["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(actions[actions.len() - 2..], ["PLAYED", "APPROVED"]);
    assert_eq!(audit["verification"]["verified"], true, "{}", audit["verification"]);
}
