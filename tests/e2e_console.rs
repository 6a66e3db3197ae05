//! The console in a real browser (issue 18): the data is set up through the real API and S3 — a
//! pre-sale whose recording went through the end-to-end ingest (with a long silence and a quiet
//! customer, so it has findings and marks), another one left waiting, and contacts on two past
//! campaign-local days with a KPI rebuild — then `tests/browser/console.test.mjs` drives Debian's
//! Chromium (playwright-core) through the stack's `/console`: a validator signs in, claims,
//! listens, and approves with the keyboard; an agent cannot reach the review screens; the
//! supervisor's charts show the days' numbers; axe-core on every screen; screenshots in
//! `target/console-screenshots/`. Back here, the API must say APPROVED and the audit must show
//! the playback (PLAYED).
//!
//! Against a running stack: `BACKOFFICE_STACK=$PWD/.local/<profile>/stack.json cargo test -p
//! e2e-tests --test e2e_console -- --nocapture`. Outside `infra/local/test` (which installs
//! Chromium and runs `npm ci` in tests/browser), it is skipped when Chromium is not installed.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration as StdDuration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use e2e_tests::desk::{Desk, desk};
use e2e_tests::{Caller, caller, repo_root, unique};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::{Date, Duration, OffsetDateTime, UtcOffset};

const LIMA: UtcOffset = match UtcOffset::from_hms(-5, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("a valid offset"),
};

/// The KPIs the supervisor's charts draw.
const CHARTED: [&str; 5] = [
    "contact_rate",
    "effective_rate",
    "presale_conversion",
    "verification_pass_rate",
    "aht_seconds",
];

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn chromium() -> Option<PathBuf> {
    let candidates = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from));
    candidates.into_iter().find(|p| p.is_file())
}

/// A stereo 16-bit 8 kHz WAV: each `(from_s, to_s, channel)` span has that channel speaking,
/// everything else is near silence (`recording_analysis::testing::scripted_wav`).
fn wav(seconds: u32, speech: &[(u32, u32, usize)]) -> Vec<u8> {
    recording_analysis::testing::scripted_wav(seconds, 0xbb72_8d28, speech)
}

/// Register a pre-sale and upload `versions` one after the other as its call's recording (the
/// same key, as a dialer that uploads again does); wait until the ingest made it
/// READY_FOR_REVIEW on the last one. Returns (id, call id).
async fn recorded_presale(d: &Desk, versions: &[Vec<u8>]) -> (String, String) {
    let call_id = unique("call");
    let body = d.presale_body(&call_id, OffsetDateTime::now_utc());
    let created = d
        .env
        .send(d.env.as_caller(&d.agent, "POST", "/presales").json(&body))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let key = d.recording_key(&call_id);
    for bytes in versions {
        let sha = hex::encode(Sha256::digest(bytes));
        d.env
            .s3
            .put_object()
            .bucket(d.env.resource("RecordingsBucket").reference.clone())
            .key(&key)
            .body(ByteStream::from(bytes.clone()))
            .metadata("agent-id", &d.agent.sub)
            .send()
            .await
            .expect("upload the recording");
        let started = Instant::now();
        loop {
            let read = d
                .env
                .send(d.env.as_caller(&d.agent, "GET", &format!("/presales/{id}")))
                .await;
            if read.body["status"] == "READY_FOR_REVIEW" && read.body["recording"]["sha256"] == sha.as_str() {
                break;
            }
            assert!(
                started.elapsed() < StdDuration::from_secs(60),
                "never READY_FOR_REVIEW on {sha}: {:?}",
                read.body
            );
            tokio::time::sleep(StdDuration::from_millis(250)).await;
        }
    }
    (id, call_id)
}

/// One contact of the day: (disposition, family letter, hour, (talk, hold, wrap)).
type Planned = (&'static str, char, u8, Option<(u32, u32, u32)>);

async fn post_contacts(d: &Desk, day: Date, planned: &[Planned]) {
    for (i, (code, _, hour, timing)) in planned.iter().enumerate() {
        let at = day.with_hms(*hour, 10, 0).expect("a time").assume_offset(LIMA);
        let mut body = json!({
            "channel": "call", "direction": "outbound", "external_id": format!("ext-{day}-{i}"),
            "customer_key": format!("phone:+5199{:07}", uuid::Uuid::new_v4().as_u128() % 10_000_000),
            "campaign_id": d.campaign, "disposition": code,
            "started_at": rfc3339(at), "ended_at": rfc3339(at + Duration::minutes(6)),
        });
        if let Some((talk, hold, wrap)) = timing {
            body["talk_seconds"] = json!(talk);
            body["hold_seconds"] = json!(hold);
            body["wrap_seconds"] = json!(wrap);
        }
        let reply = d
            .env
            .send(d.env.as_caller(&d.agent, "POST", "/contacts").json(&body))
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
    }
}

/// The KPI report of `from..=to` once every day shows its `attempts`.
async fn kpis_once_rebuilt(d: &Desk, supervisor: &Caller, from: Date, to: Date, attempts: &[(Date, u64)]) -> Value {
    let path = format!("/reports/kpis?campaign={}&from={from}&to={to}&group_by=day", d.campaign);
    let started = Instant::now();
    loop {
        let reply = d.env.send(d.env.as_caller(supervisor, "GET", &path)).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let rows = reply.body["rows"].as_array().cloned().unwrap_or_default();
        let complete = attempts.iter().all(|(day, n)| {
            rows.iter()
                .any(|r| r["day"] == day.to_string() && r["counts"]["attempts"] == *n)
        });
        if complete {
            return reply.body;
        }
        assert!(
            started.elapsed() < StdDuration::from_secs(90),
            "the rebuilt report never showed {attempts:?}: {}",
            reply.body
        );
        tokio::time::sleep(StdDuration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_review_and_supervisors_read_kpis_in_a_real_browser() {
    let required = std::env::var_os("CONSOLE_BROWSER_REQUIRED").is_some_and(|v| v == "1");
    let Some(chromium) = chromium() else {
        assert!(
            !required,
            "Chromium is not installed, but infra/local/test requires the browser test (lib.sh DEBIAN_PACKAGES installs it)"
        );
        eprintln!(
            "SKIPPED e2e_console: no Chromium at /usr/bin/chromium (set CHROMIUM=…, or run infra/local/test, which installs it)"
        );
        return;
    };
    let browser_dir = repo_root().join("tests/browser");
    if !browser_dir.join("node_modules/playwright-core").is_dir() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&browser_dir)
            .status()
            .expect("npm runs (Node.js is needed for the browser test)");
        assert!(status.success(), "npm ci in tests/browser failed");
    }

    let d = desk().await;
    let supervisor = caller("sup-1", "supervisor", &[&d.client]);
    let admin = caller("admin-1", "admin", &[&d.client]);
    let validator = d.validator("val-1");

    // The pre-sale to review: a first upload of 70 s, replaced by the dialer with 64 s where the
    // customer speaks only 4–10 s and nobody speaks 30–54 s (the version under review).
    let first = e2e_tests::desk::wav(70, 70);
    let recording = wav(64, &[(0, 4, 0), (4, 10, 1), (10, 30, 0), (54, 64, 0)]);
    let (id, call_id) = recorded_presale(&d, &[first.clone(), recording]).await;
    // Two clean ones, of lower risk: the next claim (decided meanwhile in "another tab": a
    // stale decision) and one that stays waiting in the queue.
    let (second, _) = d.ready_presale(75).await;
    d.ready_presale(75).await;

    let view = d
        .env
        .send(
            d.env
                .as_caller(&supervisor, "GET", &format!("/presales/{id}/review-view")),
        )
        .await;
    assert_eq!(view.status, 200, "{:?}", view.body);
    let findings: Vec<Value> = view.body["presale"]["findings"].as_array().cloned().unwrap_or_default();
    let codes: Vec<&str> = findings.iter().filter_map(|f| f["code"].as_str()).collect();
    assert!(
        codes.contains(&"LOW_CUSTOMER_TALK") && codes.contains(&"LONG_SILENCE"),
        "the recording has the findings the screen must show: {codes:?}"
    );
    let needs_override = findings.iter().any(|f| f["severity"] == "blocking");
    let duration_ms = view.body["recording"]["audio"]["duration_ms"]
        .as_u64()
        .expect("the analysis' duration");
    let marks: Vec<Value> = view.body["recording"]["marks"].as_array().cloned().unwrap_or_default();
    let mark_kinds: Vec<&str> = marks.iter().filter_map(|m| m["kind"].as_str()).collect();
    let first_sha = hex::encode(Sha256::digest(&first));
    let other = view.body["versions"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["sha256"] == first_sha.as_str()))
        .cloned()
        .unwrap_or_else(|| panic!("the first upload is another version: {}", view.body["versions"]));
    assert_eq!(other["bound"], false, "{other}");
    assert!(
        !mark_kinds.is_empty(),
        "the review view has the findings' time marks: {}",
        view.body["recording"]
    );

    // Two past campaign-local days of contacts, computed by a rebuild.
    let today = OffsetDateTime::now_utc().to_offset(LIMA).date();
    let day1 = today - Duration::days(2);
    let day2 = today - Duration::days(1);
    let plan1: [Planned; 3] = [
        ("NOT_INTERESTED", 'E', 9, Some((100, 0, 10))),
        ("NO_ANSWER", 'N', 10, None),
        ("BUSY", 'N', 11, None),
    ];
    let plan2: [Planned; 4] = [
        ("NOT_INTERESTED", 'E', 9, Some((120, 10, 30))),
        ("MOVED", 'X', 10, Some((30, 0, 5))),
        ("NO_ANSWER", 'N', 11, None),
        ("NOT_INTERESTED", 'E', 15, Some((200, 0, 20))),
    ];
    post_contacts(&d, day1, &plan1).await;
    post_contacts(&d, day2, &plan2).await;
    let rebuild = d
        .post(
            &admin,
            &format!("/reports/kpis/rebuild?campaign={}&from={day1}&to={day2}", d.campaign),
            None,
        )
        .await;
    assert_eq!(rebuild.status, 202, "{:?}", rebuild.body);
    let report = kpis_once_rebuilt(&d, &supervisor, day1, day2, &[(day1, 3), (day2, 4)]).await;
    let mut expected = Map::new();
    for row in report["rows"].as_array().into_iter().flatten() {
        let rates: Map<String, Value> = CHARTED
            .iter()
            .map(|k| ((*k).to_owned(), row["rates"][*k].clone()))
            .collect();
        expected.insert(row["day"].as_str().unwrap_or_default().to_owned(), Value::Object(rates));
    }
    assert_eq!(expected.len(), 2, "{report}");

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let shots = target.join("console-screenshots");
    let case = json!({
        "console_url": format!("{}/console", d.env.info.api_url.trim_end_matches('/')),
        "allowed_origins": [d.env.info.endpoint_url.trim_end_matches('/')],
        "chromium": chromium,
        "screenshot_dir": shots,
        "client": d.client, "campaign": d.campaign,
        "validator": validator.sub, "agent": d.agent.sub, "supervisor": supervisor.sub,
        "presale_id": id, "recording_key_fragment": call_id,
        "second_presale_id": second, "returned_label": "devuelta al agente",
        "duration_ms": duration_ms,
        "finding_codes": codes, "risk_score": view.body["presale"]["risk_score"],
        "needs_override": needs_override,
        "mark_kinds": mark_kinds, "first_mark_start_s": marks[0]["start_s"],
        "other_version_sha256": first_sha, "other_version_duration_ms": other["duration_ms"],
        "kpi_from": day1.to_string(), "kpi_to": day2.to_string(), "kpi_expected": expected,
        "metrics_day": today.to_string(),
        "queue_size": 1, "reviewed_today": 2,
    });
    let output = Command::new("node")
        .arg(browser_dir.join("console.test.mjs"))
        .env("CONSOLE_CASE", case.to_string())
        .current_dir(repo_root())
        .output()
        .expect("node runs the browser script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    let result: Value = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_else(|| panic!("the browser script printed no RESULT line:\n{stdout}"));
    eprintln!(
        "console: first load {} KB transferred ({} responses); review screen interactive {} ms after its load (median of 3: {}), {} ms after the claim; audio {} s; {} ms played; screenshots in {}",
        result["first_load"]["kb"],
        result["first_load"]["files"].as_array().map_or(0, Vec::len),
        result["review_load_to_interactive_ms"],
        result["review_load_samples_ms"],
        result["review_claim_to_interactive_ms"],
        result["audio_duration_s"],
        result["played_ms"],
        shots.display()
    );
    eprintln!("axe-core: {}", result["axe"]);
    if let Some(summary) = stdout.lines().find(|l| l.starts_with("console browser test:")) {
        eprintln!("{summary}");
    }
    assert!(
        output.status.success() && result["ok"] == true,
        "the browser test failed: {:#}",
        result["failures"]
    );

    // What the browser did, as the API tells it.
    let read = d
        .env
        .send(d.env.as_caller(&supervisor, "GET", &format!("/presales/{id}")))
        .await;
    assert_eq!(read.body["status"], "APPROVED", "{:?}", read.body);
    let audit = d
        .env
        .send(d.env.as_caller(&supervisor, "GET", &format!("/presales/{id}/audit")))
        .await;
    assert_eq!(audit.status, 200, "{:?}", audit.body);
    let records = audit.body["records"].as_array().cloned().unwrap_or_default();
    let played: Vec<&Value> = records.iter().filter(|r| r["action"] == "PLAYED").collect();
    assert!(
        played.iter().any(|r| r["actor"] == validator.sub.as_str()
            && r["details"]["listened_ms"].as_u64().is_some_and(|ms| ms >= 1000)),
        "the audit shows the validator's playback: {records:#?}"
    );
    let approved = records
        .iter()
        .find(|r| r["action"] == "APPROVED")
        .expect("an APPROVED record");
    assert_eq!(approved["actor"], validator.sub.as_str());
    assert!(
        approved["details"]["override_reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("Escuchado")),
        "the override reason typed in the browser: {approved}"
    );
    assert_eq!(
        audit.body["verification"]["verified"], true,
        "{}",
        audit.body["verification"]
    );
}
