//! The SQS handler with in-memory adapters: batch semantics (partial failures), test events,
//! unrecognized keys, redeliveries, and the order of arrival of recording and pre-sale.

use crate::ingest::{Ingest, Processed};
use crate::source::MemorySource;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use backoffice_domain::audit::{Actor, AuditEntry, GENESIS_HASH};
use backoffice_domain::catalog::CampaignCatalog;
use backoffice_domain::presale::{PresaleId, PresaleStatus};
use backoffice_domain::testing::{FixedClock, campaign_catalog, registered_presale};
use backoffice_store::config::MemoryCampaignDirectory;
use backoffice_store::presales::MemoryPresaleStore;
use backoffice_store::presales::{AuditRead, PresaleGet, PresaleWrite, RecordingVersions};
use recording_analysis::AnalysisConfig;
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;

/// The instant every test of this module runs at.
const NOW: OffsetDateTime = datetime!(2026-11-23 15:30 UTC);

type TestIngest = Ingest<MemoryPresaleStore, MemoryCampaignDirectory, MemorySource, FixedClock>;

const BUCKET: &str = "recordings";
const KEY: &str = "calls/acme/c1/2026/11/23/call-1.wav";

fn catalog() -> CampaignCatalog {
    campaign_catalog("c1", "acme")
}

fn ingest() -> TestIngest {
    Ingest {
        presales: MemoryPresaleStore::new(),
        campaigns: MemoryCampaignDirectory::with([catalog()]),
        source: MemorySource::default(),
        clock: FixedClock::at(NOW),
        analysis: AnalysisConfig::default(),
        max_object_bytes: crate::ingest::DEFAULT_MAX_OBJECT_BYTES,
    }
}

/// A deadline far enough away for any batch of these tests.
fn later() -> OffsetDateTime {
    NOW + time::Duration::minutes(5)
}

async fn register_presale(ingest: &TestIngest, call_id: &str) -> PresaleId {
    let presale = registered_presale(&catalog(), call_id, Some("2026-11-23T10:00:00-05:00"), NOW);
    let audit = AuditEntry::presale(&presale, NOW, &Actor::new("agent-7", "agent"), "CREATED").seal(GENESIS_HASH);
    ingest.presales.create(&presale, &audit).await.expect("created");
    presale.id
}

/// 70 s of 8 kHz mono PCM: alternating 2 s of noise bursts and 2 s of a quiet line.
fn recording(seed: u32) -> Vec<u8> {
    let mut state = 0x9E37_79B9u32 ^ seed;
    let samples: Vec<i16> = (0..8000 * 70)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let n = f64::from(state) / f64::from(u32::MAX) * 2.0 - 1.0;
            let talking = (i / 16000) % 2 == 0 && (i % 2000) < 1200;
            (n * if talking { 8000.0 } else { 20.0 }) as i16
        })
        .collect();
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut out = Vec::new();
    for part in [
        &b"RIFF"[..],
        &(36 + data.len() as u32).to_le_bytes(),
        b"WAVEfmt ",
        &16u32.to_le_bytes(),
        &1u16.to_le_bytes(),
        &1u16.to_le_bytes(),
    ] {
        out.extend_from_slice(part);
    }
    for part in [
        &8000u32.to_le_bytes()[..],
        &16000u32.to_le_bytes(),
        &2u16.to_le_bytes(),
        &16u16.to_le_bytes(),
        b"data",
        &(data.len() as u32).to_le_bytes(),
    ] {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&data);
    out
}

fn notification(key: &str) -> String {
    json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": key.replace('/', "%2F"), "size": 1}}}]})
    .to_string()
}

fn batch(bodies: &[(&str, String)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = bodies
        .iter()
        .map(|(id, body)| {
            let mut message = SqsMessage::default();
            message.message_id = Some((*id).to_owned());
            message.body = Some(body.clone());
            message
        })
        .collect();
    event
}

#[tokio::test]
async fn only_the_bad_message_of_a_batch_fails() {
    let ingest = ingest();
    let id = register_presale(&ingest, "call-1").await;
    ingest.source.put(BUCKET, KEY, recording(1), &[("agent-id", "agent-7")]);
    let event = batch(&[
        (
            "m-test",
            json!({"Service": "Amazon S3", "Event": "s3:TestEvent"}).to_string(),
        ),
        ("m-poison", "this is not an S3 notification".into()),
        ("m-good", notification(KEY)),
        ("m-unrecognized", notification("calls/acme/whatever.wav")),
        ("m-gone", notification("calls/acme/c1/2026/11/23/deleted.wav")),
    ]);
    let response = ingest.handle(event, later()).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["m-poison"]);
    let presale = ingest.presales.get(&id).await.expect("get").expect("exists").presale;
    assert_eq!(presale.status, PresaleStatus::ReadyForReview);
    assert!(presale.risk_score.is_some());
}

#[tokio::test]
async fn redeliveries_change_nothing() {
    let ingest = ingest();
    let id = register_presale(&ingest, "call-1").await;
    ingest.source.put(BUCKET, KEY, recording(1), &[]);
    let first = ingest.process_message(&notification(KEY)).await.expect("processed");
    assert!(matches!(first.as_slice(), [Processed::Attached { .. }]), "{first:?}");
    let version = ingest
        .presales
        .get(&id)
        .await
        .expect("get")
        .expect("exists")
        .presale
        .version;
    let again = ingest.process_message(&notification(KEY)).await.expect("processed");
    assert_eq!(again, vec![Processed::AlreadyAttached]);
    let stored = ingest.presales.get(&id).await.expect("get").expect("exists");
    assert_eq!(stored.presale.version, version);
    assert_eq!(ingest.presales.audit_trail(&id).await.expect("trail").len(), 2);
    assert_eq!(
        ingest
            .presales
            .recordings("acme", "call-1")
            .await
            .expect("versions")
            .len(),
        1
    );
}

#[tokio::test]
async fn recordings_wait_for_their_presale_and_new_bytes_replace() {
    let ingest = ingest();
    ingest.source.put(BUCKET, KEY, recording(1), &[]);
    assert_eq!(
        ingest.process_message(&notification(KEY)).await.expect("processed"),
        vec![Processed::Waiting { duplicate: false }]
    );
    let id = register_presale(&ingest, "call-1").await;
    ingest.source.put(BUCKET, KEY, recording(2), &[]);
    let replaced = ingest.process_message(&notification(KEY)).await.expect("processed");
    // The pre-sale was registered without intake's hook here, so this binds the newest version.
    assert!(
        matches!(replaced.as_slice(), [Processed::Attached { .. }]),
        "{replaced:?}"
    );
    ingest.source.put(BUCKET, KEY, recording(3), &[]);
    let third = ingest.process_message(&notification(KEY)).await.expect("processed");
    assert!(matches!(third.as_slice(), [Processed::Replaced { .. }]), "{third:?}");
    let trail = ingest.presales.audit_trail(&id).await.expect("trail");
    let actions: Vec<&str> = trail.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, vec!["CREATED", "RECORDING_ATTACHED", "RECORDING_REPLACED"]);
    assert_eq!(
        ingest
            .presales
            .recordings("acme", "call-1")
            .await
            .expect("versions")
            .len(),
        3
    );
}

#[tokio::test]
async fn garbage_is_a_finding_not_a_retry() {
    let ingest = ingest();
    let id = register_presale(&ingest, "call-1").await;
    ingest
        .source
        .put(BUCKET, KEY, b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk".to_vec(), &[]);
    let response = ingest.handle(batch(&[("m-1", notification(KEY))]), later()).await;
    assert!(response.batch_item_failures.is_empty());
    let presale = ingest.presales.get(&id).await.expect("get").expect("exists").presale;
    let codes: Vec<&str> = presale.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(codes, vec!["RECORDING_UNREADABLE"]);
}

#[tokio::test]
async fn a_recording_is_checked_with_its_presales_campaign_and_a_key_naming_another_is_a_finding() {
    // c1 (the pre-sale's campaign) wants calls of ten minutes; c2 would accept this one.
    let mut strict = catalog();
    strict.campaign.checks.min_duration_secs = 600;
    let ingest = Ingest {
        campaigns: MemoryCampaignDirectory::with([strict.clone(), campaign_catalog("c2", "acme")]),
        ..ingest()
    };
    let presale = registered_presale(&strict, "call-9", Some("2026-11-23T10:00:00-05:00"), NOW);
    let audit = AuditEntry::presale(&presale, NOW, &Actor::new("agent-7", "agent"), "CREATED").seal(GENESIS_HASH);
    ingest.presales.create(&presale, &audit).await.expect("created");
    // The dialer filed the call under c2.
    let key = "calls/acme/c2/2026/11/23/call-9.wav";
    ingest.source.put(BUCKET, key, recording(9), &[]);
    let done = ingest.process_message(&notification(key)).await.expect("processed");
    assert!(matches!(done.as_slice(), [Processed::Attached { .. }]), "{done:?}");
    let stored = ingest.presales.get(&presale.id).await.expect("get").expect("stored");
    let codes: Vec<&str> = stored.presale.findings.iter().map(|f| f.code.as_str()).collect();
    assert!(codes.contains(&"RECORDING_KEY_MISMATCH"), "{codes:?}");
    assert!(
        codes.contains(&"TOO_SHORT"),
        "checked with c1's thresholds, not c2's: {codes:?}"
    );
}

#[tokio::test]
async fn an_object_above_the_size_limit_is_a_finding_not_a_timeout() {
    let ingest = Ingest {
        max_object_bytes: 1000,
        ..ingest()
    };
    let id = register_presale(&ingest, "call-1").await;
    ingest.source.put(BUCKET, KEY, recording(1), &[]);
    let done = ingest.process_message(&notification(KEY)).await.expect("processed");
    assert!(matches!(done.as_slice(), [Processed::Attached { .. }]), "{done:?}");
    let stored = ingest.presales.get(&id).await.expect("get").expect("stored");
    let unreadable = stored
        .presale
        .findings
        .iter()
        .find(|f| f.code == "RECORDING_UNREADABLE")
        .expect("a blocking finding");
    assert!(
        unreadable.evidence["reason"]
            .as_str()
            .is_some_and(|r| r.contains("above the 1000-byte limit")),
        "{:?}",
        unreadable.evidence
    );
    // Redelivered, the same object is recognised as already bound.
    let again = ingest.process_message(&notification(KEY)).await.expect("processed");
    assert_eq!(again, vec![Processed::AlreadyAttached]);
}

#[tokio::test]
async fn a_batch_stops_starting_messages_before_the_deadline() {
    let ingest = ingest();
    register_presale(&ingest, "call-1").await;
    ingest.source.put(BUCKET, KEY, recording(1), &[]);
    // Ten seconds left: less than one message's margin.
    let response = ingest
        .handle(
            batch(&[("m-1", notification(KEY)), ("m-2", notification(KEY))]),
            NOW + time::Duration::seconds(10),
        )
        .await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["m-1", "m-2"], "both come back later, untouched");
    assert!(
        ingest
            .presales
            .recordings("acme", "call-1")
            .await
            .expect("versions")
            .is_empty()
    );
}

#[tokio::test]
async fn the_sweep_binds_a_recording_whose_registration_binding_failed() {
    let ingest = ingest();
    // The recording arrives first and waits.
    ingest.source.put(BUCKET, KEY, recording(1), &[]);
    let waited = ingest.process_message(&notification(KEY)).await.expect("processed");
    assert_eq!(waited, vec![Processed::Waiting { duplicate: false }]);
    // The pre-sale is registered, but its own binding never ran (the second write failed).
    let id = register_presale(&ingest, "call-1").await;
    let report = ingest.bind_waiting(later()).await.expect("swept");
    assert_eq!((report.bound, report.still_waiting), (1, 0));
    let stored = ingest.presales.get(&id).await.expect("get").expect("stored");
    assert_eq!(stored.presale.status, PresaleStatus::ReadyForReview);
    // Its note is cleared: the next sweep has nothing to do.
    assert_eq!(ingest.bind_waiting(later()).await.expect("swept"), Default::default());
    // A recording whose pre-sale never comes keeps waiting.
    let orphan = "calls/acme/c1/2026/11/23/call-2.wav";
    ingest.source.put(BUCKET, orphan, recording(2), &[]);
    ingest.process_message(&notification(orphan)).await.expect("processed");
    let report = ingest.bind_waiting(later()).await.expect("swept");
    assert_eq!((report.bound, report.still_waiting), (0, 1));
}
