//! Call recordings: the key convention dialers upload under, what the analysis measured, and
//! the automatic checks that tell a validator, before listening, whether the recording can
//! prove the sale (findings plus a 0–100 risk score that orders the review queue).

use serde::{Deserialize, Serialize};
use serde_json::json;
use time::{Date, Month, OffsetDateTime};

use super::presale::Presale;
use super::validation::Invalid;

/// Audio containers the analyzer reads.
pub const EXTENSIONS: [&str; 5] = ["wav", "mp3", "flac", "ogg", "oga"];

/// `calls/{client}/{campaign}/{yyyy}/{mm}/{dd}/{call_id}.{ext}`, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingKey {
    pub client_id: String,
    pub campaign_id: String,
    pub date: Date,
    pub call_id: String,
    pub extension: String,
}

fn segment_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

impl RecordingKey {
    pub fn parse(key: &str) -> Result<RecordingKey, Invalid> {
        let expected = "expected calls/{client}/{campaign}/{yyyy}/{mm}/{dd}/{call_id}.{ext}";
        let parts: Vec<&str> = key.split('/').collect();
        let [prefix, client, campaign, yyyy, mm, dd, file] = parts.as_slice() else {
            return Err(Invalid::new(
                "unrecognized_key",
                format!("{} path segments; {expected}", parts.len()),
            ));
        };
        if *prefix != "calls" {
            return Err(Invalid::new(
                "unrecognized_key",
                format!("not under calls/; {expected}"),
            ));
        }
        if !segment_ok(client) || !segment_ok(campaign) {
            return Err(Invalid::new(
                "unrecognized_key",
                "client and campaign are 1-64 letters, digits, '-', '_', '.', ':'",
            ));
        }
        let date = match (
            yyyy.parse::<i32>(),
            mm.parse::<u8>().ok().and_then(|m| Month::try_from(m).ok()),
            dd.parse::<u8>(),
        ) {
            (Ok(y), Some(m), Ok(d)) if yyyy.len() == 4 && mm.len() == 2 && dd.len() == 2 => {
                Date::from_calendar_date(y, m, d)
                    .map_err(|_| Invalid::new("unrecognized_key", format!("{yyyy}/{mm}/{dd} is not a calendar date")))?
            }
            _ => {
                return Err(Invalid::new(
                    "unrecognized_key",
                    format!("date segments must be yyyy/mm/dd; {expected}"),
                ));
            }
        };
        let Some((call_id, extension)) = file.rsplit_once('.') else {
            return Err(Invalid::new(
                "unrecognized_key",
                format!("the file name has no extension; {expected}"),
            ));
        };
        let extension = extension.to_ascii_lowercase();
        if !EXTENSIONS.contains(&extension.as_str()) {
            return Err(Invalid::new(
                "unsupported_extension",
                format!(
                    ".{extension} is not a supported recording format ({})",
                    EXTENSIONS.join(", ")
                ),
            ));
        }
        if !segment_ok(call_id) {
            return Err(Invalid::new(
                "unrecognized_key",
                "the call id is 1-64 letters, digits, '-', '_', '.', ':'",
            ));
        }
        Ok(RecordingKey {
            client_id: (*client).into(),
            campaign_id: (*campaign).into(),
            date,
            call_id: call_id.into(),
            extension,
        })
    }
}

/// Optional object metadata a dialer sets (`x-amz-meta-agent-id`, `-call-start`, `-dialer`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(
        default,
        with = "crate::wire::instant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub call_started_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialer: Option<String>,
}

/// What the analyzer measured (a copy of its figures, so the domain does not depend on it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioFacts {
    pub container: String,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    pub duration_ms: u64,
    pub speech_ratio: f64,
    pub longest_silence_ms: u64,
    pub clipping_ratio: f64,
    pub rms_dbfs: f64,
    pub peak_dbfs: f64,
    /// Per channel; for stereo, left is the agent and right the customer.
    pub channel_talk_ms: Vec<u64>,
    pub truncated: bool,
    /// The longest silences (nobody speaking), in time order: where a validator looks first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub silences: Vec<TimeSpan>,
    /// Stereo: the longest stretches without the customer's voice, in time order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub customer_quiet: Vec<TimeSpan>,
}

/// A stretch of a recording, in milliseconds from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSpan {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// The waveform of a recording version as the review screen draws it: the loudest sample of
/// each bucket of `seconds_per_peak`, 0–255 (at most a few thousand values, computed at ingest
/// so that nobody downloads the audio to draw it). Stored as bytes (a binary attribute in
/// DynamoDB, one byte a peak); JSON shows a list of numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peaks {
    pub seconds_per_peak: f64,
    #[serde(with = "peak_bytes")]
    pub values: Vec<u8>,
}

/// `Vec<u8>` as serde bytes: a binary value where the format has one (DynamoDB's B), a list of
/// numbers in JSON; read back from either.
mod peak_bytes {
    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(values: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(values)
    }

    struct Bytes;

    impl<'de> Visitor<'de> for Bytes {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("bytes or a list of 0-255")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(8192));
            while let Some(v) = seq.next_element::<u8>()? {
                out.push(v);
            }
            Ok(out)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_byte_buf(Bytes)
    }
}

/// One stored version of a call's recording, bound to exact bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    pub client_id: String,
    pub campaign_id: String,
    pub call_id: String,
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub sha256: String,
    pub bytes: u64,
    #[serde(with = "crate::wire::instant")]
    pub received_at: OffsetDateTime,
    pub metadata: RecordingMetadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<AudioFacts>,
    /// Why the audio could not be analyzed, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// The waveform, with the analysis (not on the pre-sale: its writes stay small).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peaks: Option<Peaks>,
}

/// The recording a pre-sale is bound to: one exact object, never "the closest in time".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingRef {
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub sha256: String,
    pub duration_ms: u64,
    #[serde(with = "crate::wire::instant")]
    pub attached_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Blocking,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub code: String,
    pub severity: Severity,
    pub message: String,
    pub evidence: serde_json::Value,
}

/// Per-campaign thresholds; every field has a default a call center would start from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckThresholds {
    pub min_duration_secs: u64,
    pub min_speech_ratio: f64,
    pub min_customer_talk_secs: u64,
    pub max_silence_secs: u64,
    pub max_clipping_ratio: f64,
    /// How far the recording's call start may be from the pre-sale's.
    pub call_window_minutes: i64,
    pub duplicate_window_days: i64,
    /// A pre-sale still without its recording this long after registration is listed for
    /// supervisors: a sale with no call is a fraud signal.
    pub max_recording_wait_minutes: i64,
}

impl Default for CheckThresholds {
    fn default() -> Self {
        Self {
            min_duration_secs: 60,
            min_speech_ratio: 0.30,
            min_customer_talk_secs: 10,
            max_silence_secs: 20,
            max_clipping_ratio: 0.01,
            call_window_minutes: 120,
            duplicate_window_days: 30,
            max_recording_wait_minutes: 60,
        }
    }
}

/// Other pre-sales of the same client that matter to fraud checks.
#[derive(Debug, Clone, Default)]
pub struct CustomerHistory {
    pub same_document: Vec<Presale>,
    pub same_phone: Vec<Presale>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckOutcome {
    pub findings: Vec<Finding>,
    pub risk_score: u8,
}

fn finding(code: &str, severity: Severity, message: String, evidence: serde_json::Value) -> Finding {
    Finding {
        code: code.into(),
        severity,
        message,
        evidence,
    }
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Run every automatic check of a pre-sale against its recording.
pub fn run_checks(
    presale: &Presale,
    recording: &Recording,
    thresholds: &CheckThresholds,
    history: &CustomerHistory,
) -> CheckOutcome {
    let mut findings = Vec::new();
    // The pre-sale is found by client and call id; the key's campaign is the dialer's word.
    if recording.campaign_id != presale.campaign_id || recording.client_id != presale.client_id {
        findings.push(finding(
            "RECORDING_KEY_MISMATCH",
            Severity::Blocking,
            "the recording was filed under another client or campaign than the pre-sale's".into(),
            json!({"key": recording.key, "key_client": recording.client_id, "key_campaign": recording.campaign_id,
                   "presale_client": presale.client_id, "presale_campaign": presale.campaign_id}),
        ));
    }
    match (&recording.audio, &recording.unreadable) {
        (Some(audio), None) if audio.duration_ms > 0 => audio_checks(audio, thresholds, &mut findings),
        (_, reason) => findings.push(finding(
            "RECORDING_UNREADABLE",
            Severity::Blocking,
            "the recording could not be decoded; it cannot prove the sale".into(),
            json!({"reason": reason.clone().unwrap_or_else(|| "no audio decoded".into()), "bytes": recording.bytes}),
        )),
    }
    let reference = presale.call_started_at.unwrap_or(presale.created_at);
    if let Some(started) = recording.metadata.call_started_at {
        let gap = (started - reference).whole_minutes().abs();
        if gap > thresholds.call_window_minutes {
            findings.push(finding(
                "OUTSIDE_CALL_WINDOW",
                Severity::Blocking,
                format!("the recorded call started {gap} min away from the pre-sale's call (limit {} min)", thresholds.call_window_minutes),
                json!({"recording_call_start": started.to_string(), "presale_call_start": reference.to_string(), "gap_minutes": gap}),
            ));
        }
    }
    if let Some(agent) = recording
        .metadata
        .agent_id
        .as_deref()
        .filter(|a| *a != presale.agent_id)
    {
        findings.push(finding(
            "AGENT_MISMATCH",
            Severity::Blocking,
            "the dialer says another agent made this call".into(),
            json!({"recording_agent": agent, "presale_agent": presale.agent_id}),
        ));
    }
    let window = time::Duration::days(thresholds.duplicate_window_days);
    let skus: Vec<&str> = presale.items.iter().map(|i| i.sku.as_str()).collect();
    let duplicates: Vec<serde_json::Value> = history
        .same_document
        .iter()
        .filter(|other| other.id != presale.id && other.campaign_id == presale.campaign_id)
        .filter(|other| (presale.created_at - other.created_at).abs() <= window)
        .filter_map(|other| {
            let shared: Vec<&str> = other
                .items
                .iter()
                .map(|i| i.sku.as_str())
                .filter(|s| skus.contains(s))
                .collect();
            (!shared.is_empty()).then(|| json!({"presale_id": other.id, "skus": shared, "status": other.status}))
        })
        .collect();
    if !duplicates.is_empty() {
        findings.push(finding(
            "DUPLICATE_PURCHASE",
            Severity::Warning,
            format!(
                "the same customer document bought the same product within {} days",
                thresholds.duplicate_window_days
            ),
            json!({"others": duplicates}),
        ));
    }
    let normalize = |name: &str| name.to_lowercase();
    let other_names: Vec<String> = history
        .same_phone
        .iter()
        .filter(|other| {
            other.id != presale.id && normalize(&other.customer.full_name) != normalize(&presale.customer.full_name)
        })
        .map(|other| other.customer.full_name.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !other_names.is_empty() {
        findings.push(finding(
            "PHONE_NAME_CONFLICT",
            Severity::Warning,
            "the same phone number was registered under other customer names".into(),
            json!({"other_names": other_names}),
        ));
    }
    let risk_score = risk_score(&findings);
    CheckOutcome { findings, risk_score }
}

fn audio_checks(audio: &AudioFacts, t: &CheckThresholds, findings: &mut Vec<Finding>) {
    if audio.truncated {
        findings.push(finding(
            "RECORDING_TRUNCATED",
            Severity::Blocking,
            "the recording ends abruptly (truncated or corrupt); part of the call may be missing".into(),
            json!({"decoded_ms": audio.duration_ms}),
        ));
    }
    if audio.duration_ms < t.min_duration_secs * 1000 {
        findings.push(finding(
            "TOO_SHORT",
            Severity::Blocking,
            format!(
                "{:.1} s of audio; the campaign needs at least {} s",
                secs(audio.duration_ms),
                t.min_duration_secs
            ),
            json!({"duration_ms": audio.duration_ms, "min_secs": t.min_duration_secs}),
        ));
    }
    if audio.speech_ratio < t.min_speech_ratio {
        findings.push(finding(
            "LOW_SPEECH",
            Severity::Warning,
            format!(
                "speech in {:.0}% of the recording (expected at least {:.0}%)",
                audio.speech_ratio * 100.0,
                t.min_speech_ratio * 100.0
            ),
            json!({"speech_ratio": audio.speech_ratio}),
        ));
    }
    // Stereo dialers put the customer on the right channel: without their voice, consent
    // cannot have been heard.
    if let [_, customer] = audio.channel_talk_ms.as_slice()
        && *customer < t.min_customer_talk_secs * 1000
    {
        findings.push(finding(
            "LOW_CUSTOMER_TALK",
            Severity::Blocking,
            format!(
                "the customer speaks {:.1} s (at least {} s needed to hear consent)",
                secs(*customer),
                t.min_customer_talk_secs
            ),
            json!({"customer_talk_ms": customer, "agent_talk_ms": audio.channel_talk_ms[0]}),
        ));
    }
    if audio.longest_silence_ms > t.max_silence_secs * 1000 {
        findings.push(finding(
            "LONG_SILENCE",
            Severity::Warning,
            format!(
                "a silence of {:.1} s (more than {} s): the call may have been edited or put on hold",
                secs(audio.longest_silence_ms),
                t.max_silence_secs
            ),
            json!({"longest_silence_ms": audio.longest_silence_ms}),
        ));
    }
    if audio.clipping_ratio > t.max_clipping_ratio {
        findings.push(finding(
            "CLIPPING",
            Severity::Warning,
            format!(
                "{:.2}% of samples are clipped; parts may be hard to understand",
                audio.clipping_ratio * 100.0
            ),
            json!({"clipping_ratio": audio.clipping_ratio, "peak_dbfs": audio.peak_dbfs}),
        ));
    }
}

/// Blocking findings weigh 40, warnings 15, capped at 100: one blocking problem outranks any
/// number of clean recordings, two outrank a single one.
pub fn risk_score(findings: &[Finding]) -> u8 {
    let total: u32 = findings
        .iter()
        .map(|f| if f.severity == Severity::Blocking { 40 } else { 15 })
        .sum();
    u8::try_from(total.min(100)).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn keys_follow_the_convention() {
        let key = RecordingKey::parse("calls/acme/acme-fibra/2026/11/23/call-0001.WAV").expect("valid");
        assert_eq!(
            (
                key.client_id.as_str(),
                key.campaign_id.as_str(),
                key.date,
                key.call_id.as_str(),
                key.extension.as_str()
            ),
            ("acme", "acme-fibra", date!(2026 - 11 - 23), "call-0001", "wav")
        );
        for (bad, code) in [
            ("calls/acme/acme-fibra/2026/11/23/call.wav/x", "unrecognized_key"),
            ("recordings/acme/c/2026/11/23/c.wav", "unrecognized_key"),
            ("calls/acme/c/2026/13/23/c.wav", "unrecognized_key"),
            ("calls/acme/c/2026/02/30/c.wav", "unrecognized_key"),
            ("calls/acme/c/26/11/23/c.wav", "unrecognized_key"),
            ("calls/acme/c/2026/11/23/c", "unrecognized_key"),
            ("calls/acme/c/2026/11/23/c.txt", "unsupported_extension"),
            ("calls/ac me/c/2026/11/23/c.wav", "unrecognized_key"),
            ("calls/acme/c/2026/11/23/.wav", "unrecognized_key"),
        ] {
            assert_eq!(RecordingKey::parse(bad).map_err(|e| e.code), Err(code), "{bad}");
        }
    }

    fn presale() -> Presale {
        crate::testing::registered_presale(
            &crate::testing::campaign_catalog("c1", "acme"),
            "call-1",
            Some("2026-11-23T10:00:00-05:00"),
            datetime!(2026-11-23 15:30 UTC),
        )
    }

    fn good_audio() -> AudioFacts {
        AudioFacts {
            container: "wav".into(),
            codec: "pcm_s16le".into(),
            sample_rate: 8000,
            channels: 2,
            duration_ms: 180_000,
            speech_ratio: 0.7,
            longest_silence_ms: 3_000,
            clipping_ratio: 0.0,
            rms_dbfs: -20.0,
            peak_dbfs: -3.0,
            channel_talk_ms: vec![90_000, 40_000],
            truncated: false,
            silences: Vec::new(),
            customer_quiet: Vec::new(),
        }
    }

    fn recording(audio: Option<AudioFacts>) -> Recording {
        Recording {
            client_id: "acme".into(),
            campaign_id: "c1".into(),
            call_id: "call-1".into(),
            bucket: "b".into(),
            key: "calls/acme/c1/2026/11/23/call-1.wav".into(),
            version_id: None,
            sha256: "ab".repeat(32),
            bytes: 1000,
            received_at: datetime!(2026-11-23 15:40 UTC),
            metadata: RecordingMetadata {
                agent_id: Some("agent-7".into()),
                call_started_at: Some(datetime!(2026-11-23 15:05 UTC)),
                dialer: None,
            },
            unreadable: if audio.is_none() {
                Some("random bytes".into())
            } else {
                None
            },
            audio,
            peaks: None,
        }
    }

    #[test]
    fn a_recording_filed_under_another_campaign_is_a_blocking_finding() {
        let mut filed = recording(Some(good_audio()));
        filed.campaign_id = "c2".into();
        let outcome = run_checks(
            &presale(),
            &filed,
            &CheckThresholds::default(),
            &CustomerHistory::default(),
        );
        assert_eq!(codes(&outcome), vec!["RECORDING_KEY_MISMATCH"]);
        assert_eq!(outcome.findings[0].severity, Severity::Blocking);
    }

    fn codes(outcome: &CheckOutcome) -> Vec<&str> {
        outcome.findings.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn peaks_are_bytes_where_the_format_has_them_and_numbers_in_json() {
        let peaks = Peaks {
            seconds_per_peak: 0.05,
            values: vec![0, 7, 255],
        };
        let text = serde_json::to_value(&peaks).expect("serializes");
        assert_eq!(text, json!({"seconds_per_peak": 0.05, "values": [0, 7, 255]}));
        assert_eq!(serde_json::from_value::<Peaks>(text).expect("reads back"), peaks);
        assert!(serde_json::from_value::<Peaks>(json!({"seconds_per_peak": 1, "values": [256]})).is_err());
        // A recording stored before peaks existed reads back without them.
        let mut stored = serde_json::to_value(recording(Some(good_audio()))).expect("serializes");
        stored.as_object_mut().expect("object").remove("peaks");
        let read: Recording = serde_json::from_value(stored).expect("reads");
        assert_eq!((read.peaks, read.audio.map(|a| a.silences)), (None, Some(Vec::new())));
    }

    #[test]
    fn a_clean_recording_has_no_findings() {
        let outcome = run_checks(
            &presale(),
            &recording(Some(good_audio())),
            &CheckThresholds::default(),
            &CustomerHistory::default(),
        );
        assert_eq!((codes(&outcome), outcome.risk_score), (vec![], 0));
    }

    #[test]
    fn every_audio_problem_is_found() {
        let audio = AudioFacts {
            duration_ms: 30_000,
            speech_ratio: 0.1,
            longest_silence_ms: 25_000,
            clipping_ratio: 0.05,
            channel_talk_ms: vec![20_000, 2_000],
            truncated: true,
            ..good_audio()
        };
        let outcome = run_checks(
            &presale(),
            &recording(Some(audio)),
            &CheckThresholds::default(),
            &CustomerHistory::default(),
        );
        assert_eq!(
            codes(&outcome),
            vec![
                "RECORDING_TRUNCATED",
                "TOO_SHORT",
                "LOW_SPEECH",
                "LOW_CUSTOMER_TALK",
                "LONG_SILENCE",
                "CLIPPING"
            ]
        );
        assert_eq!(outcome.risk_score, 100);
        let unreadable = run_checks(
            &presale(),
            &recording(None),
            &CheckThresholds::default(),
            &CustomerHistory::default(),
        );
        assert_eq!(
            (codes(&unreadable), unreadable.risk_score),
            (vec!["RECORDING_UNREADABLE"], 40)
        );
        assert_eq!(unreadable.findings[0].severity, Severity::Blocking);
    }

    #[test]
    fn thresholds_are_per_campaign() {
        let strict = CheckThresholds {
            min_duration_secs: 300,
            ..CheckThresholds::default()
        };
        let outcome = run_checks(
            &presale(),
            &recording(Some(good_audio())),
            &strict,
            &CustomerHistory::default(),
        );
        assert_eq!(codes(&outcome), vec!["TOO_SHORT"]);
        assert!(
            serde_json::from_value::<CheckThresholds>(json!({"min_duration_secs": 30}))
                .is_ok_and(|t| t.min_speech_ratio == 0.30)
        );
        assert!(serde_json::from_value::<CheckThresholds>(json!({"min_duraton_secs": 30})).is_err());
    }

    #[test]
    fn metadata_and_history_checks() {
        let mut rec = recording(Some(good_audio()));
        rec.metadata.agent_id = Some("agent-9".into());
        rec.metadata.call_started_at = Some(datetime!(2026-11-23 22:00 UTC));
        let me = presale();
        let mut earlier = presale();
        earlier.created_at -= time::Duration::days(3);
        let mut namesake = presale();
        namesake.customer.full_name = "Otro Nombre".into();
        let history = CustomerHistory {
            same_document: vec![me.clone(), earlier],
            same_phone: vec![me.clone(), namesake],
        };
        let outcome = run_checks(&me, &rec, &CheckThresholds::default(), &history);
        assert_eq!(
            codes(&outcome),
            vec![
                "OUTSIDE_CALL_WINDOW",
                "AGENT_MISMATCH",
                "DUPLICATE_PURCHASE",
                "PHONE_NAME_CONFLICT"
            ]
        );
        assert_eq!(outcome.risk_score, 100);
        assert_eq!(outcome.findings[3].evidence["other_names"], json!(["Otro Nombre"]));
    }
}
