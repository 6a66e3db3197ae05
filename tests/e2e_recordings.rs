//! Recordings end to end: a dialer uploads with the plain S3 API; S3's notification reaches
//! recording-ingest through the queue (provisioned from the template); the function streams
//! the object, analyzes it, binds it to its pre-sale and runs the automatic checks.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;

use aws_sdk_s3::primitives::ByteStream;
use e2e_tests::{Caller, Reply, TestEnv, caller, env, unique};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SAMPLE_RATE: u32 = 8000;

/// A stereo 16-bit PCM WAV: agent on the left, customer on the right, taking turns in
/// speech-like bursts (syllables of noise) over a quiet line, as a dialer records a call.
fn call_wav(seconds: u32, seed: u32) -> Vec<u8> {
    let frames = SAMPLE_RATE * seconds;
    let mut samples: Vec<i16> = Vec::with_capacity(frames as usize * 2);
    let mut state = 0x2545_f491u32 ^ seed;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state as f64 / u32::MAX as f64) * 2.0 - 1.0
    };
    for i in 0..frames {
        let t = f64::from(i) / f64::from(SAMPLE_RATE);
        let turn = (t / 4.0) as u32 % 2; // 4 s turns: agent, customer, agent…
        let syllable = (t * 4.0).fract() < 0.6; // 150 ms voiced, 100 ms gap
        let voice = |active: bool, n: f64| if active && syllable { n * 9000.0 } else { n * 20.0 };
        let left = voice(turn == 0, noise());
        let right = voice(turn == 1, noise());
        samples.push(left as i16);
        samples.push(right as i16);
    }
    wav(2, &samples)
}

fn wav(channels: u16, samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(SAMPLE_RATE * u32::from(channels) * 2).to_le_bytes());
    out.extend_from_slice(&(channels * 2).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

struct Scene {
    env: TestEnv,
    client: String,
    campaign: String,
    agent: Caller,
    supervisor: Caller,
    bucket: String,
}

async fn scene() -> Scene {
    let env = env().await;
    let client = unique("cli");
    let campaign = unique("camp");
    env.seed_campaign(&client, &campaign).await;
    let bucket = env.resource("RecordingsBucket").reference.clone();
    Scene {
        agent: caller("agent-7", "agent", &[&client]),
        supervisor: caller("sup-1", "supervisor", &[&client]),
        env,
        client,
        campaign,
        bucket,
    }
}

impl Scene {
    fn key(&self, call_id: &str) -> String {
        let today = time::OffsetDateTime::now_utc().date();
        format!(
            "calls/{}/{}/{}/{:02}/{:02}/{call_id}.wav",
            self.client,
            self.campaign,
            today.year(),
            u8::from(today.month()),
            today.day()
        )
    }

    async fn create(&self, call_id: &str) -> Reply {
        let body = json!({
            "campaign_id": self.campaign,
            "call_id": call_id,
            "call_started_at": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).expect("format"),
            "customer": {
                // A different customer each time: the same document buying the same SKU again
                // is itself a finding (DUPLICATE_PURCHASE).
                "document": {"type": "DNI", "number": format!("{:08}", rand_digits() % 100_000_000)},
                "full_name": "María Quispe Huamán",
                "phone": format!("+5198{:07}", rand_digits()),
                "address": {"line1": "Av. Arequipa 1234", "district": "Lince", "province": "Lima", "region": "Lima"}
            },
            "items": [{"sku": "FIB-300", "quantity": 1}]
        });
        let reply = self
            .env
            .send(self.env.as_caller(&self.agent, "POST", "/presales").json(&body))
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        reply
    }

    async fn upload(&self, key: &str, bytes: Vec<u8>, agent: Option<&str>) {
        let mut put = self
            .env
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .metadata("dialer", "vicidial-7");
        if let Some(agent) = agent {
            put = put.metadata("agent-id", agent);
        }
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format");
        put.metadata("call-start", now)
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload {key}: {e:?}"));
    }

    async fn presale(&self, id: &str) -> Value {
        let reply = self
            .env
            .send(self.env.as_caller(&self.supervisor, "GET", &format!("/presales/{id}")))
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body
    }

    /// Poll until `done` holds for the pre-sale (the pipeline is asynchronous by nature).
    async fn wait_for(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let presale = self.presale(id).await;
            if done(&presale) {
                return presale;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}: {presale}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn audit_len(&self, id: &str) -> usize {
        self.env
            .partition("PresalesTable", &format!("PRESALE#{id}"))
            .await
            .iter()
            .filter(|i| {
                i.get("sk")
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|s| s.starts_with("AUDIT#"))
            })
            .count()
    }

    /// The item of a per-day partition (`{prefix}#{UTC day}`, a day from `since` to today)
    /// whose string attribute `field` is `value`.
    async fn filed_since(
        &self,
        prefix: &str,
        since: time::Date,
        field: &str,
        value: &str,
    ) -> Option<HashMap<String, AttributeValue>> {
        for day in days_since(since) {
            let items = self.env.partition("PresalesTable", &format!("{prefix}#{day}")).await;
            if let Some(item) = items
                .into_iter()
                .find(|item| item.get(field).and_then(|v| v.as_s().ok()).map(String::as_str) == Some(value))
            {
                return Some(item);
            }
        }
        None
    }
}

/// Every UTC day from `first` to today: the days on which something the pipeline did since
/// `first` can be filed (it files by the UTC date of its own clock, as the test's clock reads).
fn days_since(first: time::Date) -> Vec<time::Date> {
    let today = time::OffsetDateTime::now_utc().date();
    std::iter::successors(Some(first), |day| day.next_day().filter(|next| *next <= today)).collect()
}

fn rand_digits() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32 % 10_000_000
}

fn codes(presale: &Value) -> Vec<String> {
    presale["findings"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["code"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn an_upload_is_analyzed_attached_and_checked_and_duplicates_change_nothing() {
    let s = scene().await;
    let call_id = unique("call");
    let created = s.create(&call_id).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let bytes = call_wav(90, 1);
    let digest = sha256(&bytes);
    s.upload(&s.key(&call_id), bytes.clone(), Some("agent-7")).await;

    let ready = s
        .wait_for(&id, "READY_FOR_REVIEW", |p| p["status"] == "READY_FOR_REVIEW")
        .await;
    assert_eq!(ready["recording"]["sha256"], json!(digest));
    assert_eq!(ready["recording"]["key"], json!(s.key(&call_id)));
    let duration = ready["recording"]["duration_ms"].as_u64().expect("duration");
    assert!((89_000..=91_000).contains(&duration), "duration {duration}");
    let found = codes(&ready);
    for blocking in [
        "RECORDING_UNREADABLE",
        "TOO_SHORT",
        "LOW_CUSTOMER_TALK",
        "AGENT_MISMATCH",
        "OUTSIDE_CALL_WINDOW",
    ] {
        assert!(!found.contains(&blocking.to_owned()), "{blocking} in {found:?}");
    }
    assert!(ready["risk_score"].as_u64().is_some_and(|r| r < 40), "{ready}");
    let version = ready["version"].as_u64();
    let audits = s.audit_len(&id).await;
    assert_eq!(audits, 2, "CREATED, RECORDING_ATTACHED");

    // The same bytes again (a re-upload, or S3/SQS redelivery): nothing changes.
    s.upload(&s.key(&call_id), bytes, Some("agent-7")).await;
    s.env.drain("RecordingsQueue").await;
    let after = s.presale(&id).await;
    assert_eq!((after["version"].as_u64(), s.audit_len(&id).await), (version, audits));

    // Different bytes under the same key: a new version, bound and re-checked, and audited.
    let replacement = call_wav(95, 2);
    let new_digest = sha256(&replacement);
    s.upload(&s.key(&call_id), replacement, Some("agent-7")).await;
    let replaced = s
        .wait_for(&id, "the new version", |p| {
            p["recording"]["sha256"] == json!(new_digest)
        })
        .await;
    assert_eq!(replaced["status"], "READY_FOR_REVIEW");
    assert_eq!(replaced["version"].as_u64(), version.map(|v| v + 1));
    assert_eq!(s.audit_len(&id).await, audits + 1);
    let versions = s
        .env
        .partition("PresalesTable", &format!("RECORDING#{}#{call_id}", s.client))
        .await;
    assert_eq!(versions.len(), 2, "both versions are kept");
}

#[tokio::test]
async fn a_recording_that_arrives_first_waits_for_its_presale() {
    let s = scene().await;
    let call_id = unique("call");
    s.upload(&s.key(&call_id), call_wav(70, 3), Some("agent-7")).await;
    let started = Instant::now();
    while s
        .env
        .partition("PresalesTable", &format!("RECORDING#{}#{call_id}", s.client))
        .await
        .is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the recording was never stored"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let created = s.create(&call_id).await;
    assert_eq!(created.body["status"], "READY_FOR_REVIEW", "{}", created.body);
    assert!(created.body["recording"]["sha256"].is_string());
}

#[tokio::test]
async fn bad_files_and_mismatches_become_findings_not_retries() {
    let s = scene().await;
    // Random bytes with a .wav name.
    let garbage_call = unique("call");
    let garbage = s.create(&garbage_call).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let noise: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    s.upload(&s.key(&garbage_call), noise, Some("agent-7")).await;
    // A short call recorded by another agent.
    let short_call = unique("call");
    let short = s.create(&short_call).await.body["id"].as_str().expect("id").to_owned();
    s.upload(&s.key(&short_call), call_wav(12, 4), Some("agent-99")).await;
    // An empty object.
    let empty_call = unique("call");
    let empty = s.create(&empty_call).await.body["id"].as_str().expect("id").to_owned();
    s.upload(&s.key(&empty_call), Vec::new(), None).await;

    let unreadable = s
        .wait_for(&garbage, "an UNREADABLE finding", |p| p["status"] == "READY_FOR_REVIEW")
        .await;
    assert_eq!(codes(&unreadable), vec!["RECORDING_UNREADABLE"]);
    assert_eq!(unreadable["findings"][0]["severity"], "blocking");
    assert!(unreadable["risk_score"].as_u64().is_some_and(|r| r >= 40));
    let short = s
        .wait_for(&short, "checks", |p| p["status"] == "READY_FOR_REVIEW")
        .await;
    let found = codes(&short);
    assert!(
        found.contains(&"TOO_SHORT".to_owned()) && found.contains(&"AGENT_MISMATCH".to_owned()),
        "{found:?}"
    );
    let empty = s
        .wait_for(&empty, "checks", |p| p["status"] == "READY_FOR_REVIEW")
        .await;
    assert_eq!(codes(&empty), vec!["RECORDING_UNREADABLE"]);
}

#[tokio::test]
async fn keys_off_the_convention_are_recorded_as_unrecognized() {
    let s = scene().await;
    let key = format!("calls/{}/not-a-date/{}.wav", s.client, unique("x"));
    let uploaded_on = time::OffsetDateTime::now_utc().date();
    s.upload(&key, call_wav(1, 5), None).await;
    let started = Instant::now();
    loop {
        // Filed under the UTC day ingest processed it, which may be after midnight.
        if let Some(item) = s.filed_since("UNRECOGNIZED", uploaded_on, "key", &key).await {
            let reason = item
                .get("reason")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            assert!(reason.contains("path segments"), "{reason}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no UNRECOGNIZED record for {key}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The registration's own binding of a waiting recording failed (here: the pre-sale is written
/// straight to the table, as if the second write never happened). The scheduled sweep binds
/// it; until then, the pre-sale is listed as stale for supervisors once past its allowance.
#[tokio::test]
async fn a_waiting_recording_is_bound_by_the_sweep_and_stale_presales_are_listed() {
    use backoffice_domain::audit::{Actor, AuditEntry, GENESIS_HASH};
    use backoffice_domain::testing::{campaign_catalog, registered_presale};
    use backoffice_store::presales::{DynamoPresaleStore, PresaleWrite};

    let s = scene().await;
    let call_id = unique("call");
    let uploaded_on = time::OffsetDateTime::now_utc().date();
    s.upload(&s.key(&call_id), call_wav(70, 5), Some("agent-7")).await;
    let started = Instant::now();
    loop {
        // Noted under the UTC day ingest processed it, which may be after midnight.
        if s.filed_since("WAITING", uploaded_on, "call_id", &call_id)
            .await
            .is_some()
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the recording was never noted as waiting"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The marks expire (DynamoDB's TTL, 90 days) should the pre-sale never come.
    let call = s
        .env
        .partition("PresalesTable", &format!("CALL#{}#{call_id}", s.client))
        .await;
    let expires_in_days = |item: &HashMap<String, AttributeValue>| {
        let at: i64 = item.get("expires_at")?.as_n().ok()?.parse().ok()?;
        Some((at - time::OffsetDateTime::now_utc().unix_timestamp()) / 86_400)
    };
    let kept_90_days = |item: Option<&HashMap<String, AttributeValue>>| {
        item.and_then(expires_in_days).is_some_and(|d| (88..=90).contains(&d))
    };
    assert!(kept_90_days(call.first()), "{call:?}");
    let entry = s.filed_since("WAITING", uploaded_on, "call_id", &call_id).await;
    assert!(kept_90_days(entry.as_ref()), "{entry:?}");
    // Registered two hours ago, and never bound.
    let store = DynamoPresaleStore::new(s.env.dynamodb.clone(), s.env.table("PresalesTable"));
    let at = time::OffsetDateTime::now_utc() - time::Duration::hours(2);
    let presale = registered_presale(&campaign_catalog(&s.campaign, &s.client), &call_id, None, at);
    let audit = AuditEntry::presale(&presale, at, &Actor::new("agent-7", "agent"), "CREATED").seal(GENESIS_HASH);
    store.create(&presale, &audit).await.expect("create");
    let id = presale.id.to_string();
    // The pre-sale took the call: its item no longer expires.
    let call = s
        .env
        .partition("PresalesTable", &format!("CALL#{}#{call_id}", s.client))
        .await;
    assert!(
        call.first()
            .is_some_and(|item| item.contains_key("presale_id") && !item.contains_key("expires_at")),
        "{call:?}"
    );

    let stale = s
        .env
        .send(s.env.as_caller(
            &s.supervisor,
            "GET",
            &format!("/presales?campaign={}&stale=true", s.campaign),
        ))
        .await;
    assert_eq!(stale.status, 200, "{:?}", stale.body);
    assert!(
        stale.body["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|p| p["id"] == id.as_str())),
        "a sale with no call after an hour is listed: {:?}",
        stale.body
    );

    let sweep = s
        .env
        .send(
            s.env
                .request("POST", "/_local/functions/RecordingIngestFunction/invoke")
                .json(&json!({"source": "aws.scheduler"})),
        )
        .await;
    assert_eq!(sweep.status, 200, "{:?}", sweep.body);
    assert!(sweep.body["bound"].as_u64().is_some_and(|n| n >= 1), "{:?}", sweep.body);
    let bound = s.presale(&id).await;
    assert_eq!(bound["status"], "READY_FOR_REVIEW", "{bound}");
    let listed_again = s
        .env
        .send(s.env.as_caller(
            &s.supervisor,
            "GET",
            &format!("/presales?campaign={}&stale=true", s.campaign),
        ))
        .await;
    assert!(
        listed_again.body["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|p| p["id"] != id.as_str())),
        "bound, no longer stale"
    );
}

/// Agent 0–10 s, nobody 10–22 s, customer 22–32 s (stereo, as `call_wav` speaks).
fn call_with_pause_wav() -> Vec<u8> {
    let mut state = 0x1234_5678u32;
    let mut samples: Vec<i16> = Vec::new();
    for i in 0..SAMPLE_RATE * 32 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state as f64 / u32::MAX as f64) * 2.0 - 1.0;
        let t = f64::from(i) / f64::from(SAMPLE_RATE);
        let syllable = (t * 4.0).fract() < 0.6;
        let voice = |active: bool| if active && syllable { n * 9000.0 } else { n * 20.0 };
        samples.push(voice(t < 10.0) as i16);
        samples.push(voice(t >= 22.0) as i16);
    }
    wav(2, &samples)
}

/// Issue 18: the waveform and the quiet stretches are measured at ingest, stored with the
/// recording version (not on the pre-sale), and the review view returns them.
#[tokio::test]
async fn the_waveform_and_time_marks_are_stored_with_the_version_and_shown_in_the_review_view() {
    let s = scene().await;
    let call_id = unique("call");
    let id = s.create(&call_id).await.body["id"].as_str().expect("id").to_owned();
    s.upload(&s.key(&call_id), call_with_pause_wav(), Some("agent-7")).await;
    s.wait_for(&id, "READY_FOR_REVIEW", |p| p["status"] == "READY_FOR_REVIEW")
        .await;

    // In the table: one byte a peak, a binary attribute of the version's item.
    let items = s
        .env
        .partition("PresalesTable", &format!("RECORDING#{}#{call_id}", s.client))
        .await;
    let peaks = items[0]
        .get("peaks")
        .and_then(|p| p.as_m().ok())
        .expect("the version's item has its peaks");
    let values = peaks.get("values").and_then(|v| v.as_b().ok()).expect("binary values");
    assert_eq!(values.as_ref().len(), 640, "32 s in 50 ms buckets");
    let presale_item = s.env.partition("PresalesTable", &format!("PRESALE#{id}")).await;
    assert!(
        presale_item.iter().all(|i| !i.contains_key("peaks")),
        "the pre-sale itself stays small"
    );

    let view = s
        .env
        .send(
            s.env
                .as_caller(&s.supervisor, "GET", &format!("/presales/{id}/review-view")),
        )
        .await;
    assert_eq!(view.status, 200, "{:?}", view.body);
    let recording = &view.body["recording"];
    assert_eq!(recording["peaks"]["seconds_per_peak"], json!(0.05));
    let shown = recording["peaks"]["values"].as_array().expect("values");
    assert_eq!(shown.len(), 640);
    let at = |s: usize| shown[s * 20].as_u64().expect("0-255");
    assert!(
        at(5) > 40 && at(27) > 40 && at(16) < 5,
        "{} {} {}",
        at(5),
        at(27),
        at(16)
    );
    let marks = recording["marks"].as_array().expect("marks");
    let span = |kind: &str| {
        marks
            .iter()
            .find(|m| m["kind"] == kind)
            .map(|m| {
                (
                    m["start_s"].as_f64().unwrap_or(-1.0),
                    m["end_s"].as_f64().unwrap_or(-1.0),
                )
            })
            .unwrap_or_else(|| panic!("no {kind} mark in {marks:?}"))
    };
    let (start, end) = span("silence");
    assert!(
        (9.9..=10.5).contains(&start) && (21.9..=22.3).contains(&end),
        "{start} {end}"
    );
    let (start, end) = span("customer_quiet");
    assert!(start == 0.0 && (21.9..=22.3).contains(&end), "{start} {end}");
    assert_eq!(view.body["versions"].as_array().map(Vec::len), Some(1));
    assert_eq!(view.body["versions"][0]["bound"], true);
    assert_eq!(view.body["versions"][0]["sha256"], recording["sha256"]);
}
