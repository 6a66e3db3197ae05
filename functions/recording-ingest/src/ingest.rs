//! The SQS handler: one S3 notification per message, each processed on its own so that one bad
//! message never fails or repeats its batch-mates (`ReportBatchItemFailures`).

use std::io::Read;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use backoffice_domain::Clock;
use backoffice_domain::recording::{AudioFacts, Peaks, Recording, RecordingKey, RecordingMetadata, TimeSpan};
use backoffice_store::StoreError;
use backoffice_store::config::CampaignDirectory;
use backoffice_store::presales::{
    self, AttachOutcome, CallLookup, CustomerHistoryLookup, PresaleGet, PresaleWrite, RecordingVersions,
    WaitingRecordings,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::event::{self, CreatedObject, Parsed};
use crate::source::{RecordingSource, SourceError};
use recording_analysis::{self as analysis, AnalysisConfig};

pub struct Ingest<P, C, S, K> {
    pub presales: P,
    pub campaigns: C,
    pub source: S,
    pub clock: K,
    pub analysis: AnalysisConfig,
    /// Objects above this size are not downloaded: their pre-sale gets a blocking finding.
    pub max_object_bytes: u64,
}

/// The default of `RECORDING_MAX_BYTES`: far above any call (six hours of 8 kHz stereo PCM is
/// under 700 MB), far below what one invocation can stream in its time.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 512 * 1024 * 1024;

/// No new message is started this close to the invocation's deadline: one recording's
/// download and analysis fits in it.
pub const MESSAGE_MARGIN: time::Duration = time::Duration::seconds(20);

/// Days of waiting-recording notes the sweep looks at (today and the two before).
pub const WAITING_DAYS: i64 = 3;

/// What one sweep of waiting recordings did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BindReport {
    pub bound: usize,
    pub still_waiting: usize,
    pub stopped_early: bool,
}

/// Why a message must come back (or, after the queue's maxReceiveCount, go to the DLQ).
#[derive(Debug, thiserror::Error)]
pub enum RetryableError {
    #[error("not an S3 notification: {0}")]
    Poison(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("analysis task failed: {0}")]
    Task(String),
}

/// What happened to one object, for logs and tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Processed {
    Unrecognized(String),
    Gone,
    Waiting { duplicate: bool },
    Attached { risk_score: Option<u8> },
    Replaced { risk_score: Option<u8> },
    AlreadyAttached,
    Decided,
}

impl<P, C, S, K> Ingest<P, C, S, K>
where
    P: PresaleGet + PresaleWrite + CallLookup + RecordingVersions + CustomerHistoryLookup + WaitingRecordings,
    C: CampaignDirectory,
    S: RecordingSource,
    K: Clock,
{
    /// One batch, message by message, starting none within [`MESSAGE_MARGIN`] of `deadline`.
    pub async fn handle(&self, event: SqsEvent, deadline: OffsetDateTime) -> SqsBatchResponse {
        backoffice_edge::queue::each_message_in_time(
            event,
            || self.clock.now() + MESSAGE_MARGIN >= deadline,
            |body| async move { self.process_message(&body).await },
        )
        .await
    }

    /// Bind recordings that arrived before their pre-sale and are still unbound because the
    /// registration's own binding failed (scheduled). Notes of calls bound meanwhile are
    /// cleared; calls with no pre-sale yet keep waiting.
    pub async fn bind_waiting(&self, deadline: OffsetDateTime) -> Result<BindReport, RetryableError> {
        let mut report = BindReport::default();
        let today = self.clock.now().date();
        for back in 0..WAITING_DAYS {
            let Some(day) = today.checked_sub(time::Duration::days(back)) else {
                continue;
            };
            for (client_id, call_id) in self.presales.waiting(day, 100).await? {
                if self.clock.now() + MESSAGE_MARGIN >= deadline {
                    report.stopped_early = true;
                    return Ok(report);
                }
                let Some(presale_id) = self.presales.find_by_call(&client_id, &call_id).await? else {
                    report.still_waiting += 1;
                    continue;
                };
                let newest = self.presales.recordings(&client_id, &call_id).await?.into_iter().next();
                if let Some(recording) = newest {
                    let outcome = presales::attach(
                        &self.presales,
                        &self.campaigns,
                        &presale_id,
                        &recording,
                        presales::Version::Stored,
                        self.clock.now(),
                    )
                    .await?;
                    if let AttachOutcome::Attached(_) | AttachOutcome::Replaced(_) = outcome {
                        tracing::warn!(presale_id = %presale_id, "waiting recording bound by the sweep");
                        report.bound += 1;
                    }
                }
                self.presales.clear_waiting(&client_id, &call_id, day).await?;
            }
        }
        tracing::info!(
            bound = report.bound,
            still_waiting = report.still_waiting,
            "waiting recordings swept"
        );
        Ok(report)
    }

    pub async fn process_message(&self, body: &str) -> Result<Vec<Processed>, RetryableError> {
        match event::parse(body) {
            Ok(Parsed::TestEvent) => {
                tracing::info!("s3:TestEvent skipped");
                Ok(vec![])
            }
            Ok(Parsed::Objects(objects)) => {
                let mut done = Vec::with_capacity(objects.len());
                for object in objects {
                    done.push(self.process_object(&object).await?);
                }
                Ok(done)
            }
            // Kept (failed → DLQ after the redrive count) rather than dropped: someone must look.
            Err(e) => Err(RetryableError::Poison(e.0)),
        }
    }

    async fn process_object(&self, object: &CreatedObject) -> Result<Processed, RetryableError> {
        let now = self.clock.now();
        let key = match RecordingKey::parse(&object.key) {
            Ok(key) => key,
            Err(invalid) => {
                tracing::warn!(key = %object.key, reason = %invalid.detail, "unrecognized recording key");
                self.presales
                    .record_unrecognized(
                        &object.bucket,
                        &object.key,
                        object.version_id.as_deref(),
                        &invalid.detail,
                        now,
                    )
                    .await?;
                return Ok(Processed::Unrecognized(invalid.detail));
            }
        };
        let recording = match self.read(object, &key, now).await {
            Ok(recording) => recording,
            Err(RetryableError::Source(SourceError::NotFound)) => {
                tracing::warn!(key = %object.key, "object is gone; nothing to analyze");
                return Ok(Processed::Gone);
            }
            Err(e) => return Err(e),
        };
        // A recording bound at once is stored by the binding's own transaction; one that waits
        // for its pre-sale (or is not bound) is stored on its own.
        let presale_id = match self.presales.find_by_call(&key.client_id, &key.call_id).await? {
            Some(id) => id,
            None => {
                let new = self.store(&recording).await?;
                // Noted on the call, where the registration finds it, and for the sweep, should
                // the registration's binding fail.
                if self.presales.mark_waiting(&key.client_id, &key.call_id, now).await? {
                    return Ok(Processed::Waiting { duplicate: !new });
                }
                // Registered since it was looked for.
                let Some(id) = self.presales.find_by_call(&key.client_id, &key.call_id).await? else {
                    return Ok(Processed::Waiting { duplicate: !new });
                };
                id
            }
        };
        // Checked with the pre-sale's own campaign, whatever campaign the key names.
        let outcome = presales::attach(
            &self.presales,
            &self.campaigns,
            &presale_id,
            &recording,
            presales::Version::New,
            now,
        )
        .await?;
        // Not bound, so not stored by a binding: kept as a version of the call all the same.
        let stored_apart = match outcome {
            AttachOutcome::Decided(_) | AttachOutcome::NoPresale => Some(self.store(&recording).await?),
            _ => None,
        };
        if let AttachOutcome::Attached(p) | AttachOutcome::Replaced(p) = &outcome {
            // From here on this message's log lines join the pre-sale's, from intake onwards.
            tracing::Span::current().record("correlation_id", p.correlation_id());
        }
        tracing::info!(presale_id = %presale_id, outcome = ?outcome_name(&outcome), "recording bound");
        metrics::counter!("RecordingsBound", "Outcome" => outcome_name(&outcome)).increment(1);
        Ok(match outcome {
            AttachOutcome::Attached(p) => Processed::Attached {
                risk_score: p.risk_score,
            },
            AttachOutcome::Replaced(p) => Processed::Replaced {
                risk_score: p.risk_score,
            },
            AttachOutcome::AlreadyAttached => Processed::AlreadyAttached,
            AttachOutcome::Decided(_) => Processed::Decided,
            AttachOutcome::NoPresale => Processed::Waiting {
                duplicate: stored_apart == Some(false),
            },
        })
    }

    /// Store a version of the call's recording on its own; false when these bytes were stored
    /// already.
    async fn store(&self, recording: &Recording) -> Result<bool, RetryableError> {
        let new = self.presales.put_recording(recording).await?;
        tracing::info!(call_id = %recording.call_id, sha256 = %recording.sha256, new, unreadable = recording.unreadable.is_some(), "recording stored");
        Ok(new)
    }

    /// Stream the object through the analyzer on a blocking thread. A file that does not decode
    /// is a result (UNREADABLE), not an error: its bytes are hashed in a second pass.
    async fn read(
        &self,
        object: &CreatedObject,
        key: &RecordingKey,
        now: OffsetDateTime,
    ) -> Result<Recording, RetryableError> {
        let opened = self
            .source
            .open(&object.bucket, &object.key, object.version_id.as_deref())
            .await?;
        let metadata = metadata_of(&opened.metadata);
        let version_id = opened.version_id.clone().or_else(|| object.version_id.clone());
        if let Some(size) = opened.size.or(object.size).filter(|size| *size > self.max_object_bytes) {
            // Not downloaded: it could not be analyzed within the invocation's time. Its id
            // stands for this object version, not for its bytes' hash.
            tracing::warn!(key = %object.key, size, limit = self.max_object_bytes, "recording above the size limit");
            let identity = format!(
                "{}/{}#{}#{size}",
                object.bucket,
                object.key,
                version_id.as_deref().unwrap_or("-")
            );
            return Ok(Recording {
                client_id: key.client_id.clone(),
                campaign_id: key.campaign_id.clone(),
                call_id: key.call_id.clone(),
                bucket: object.bucket.clone(),
                key: object.key.clone(),
                version_id,
                sha256: format!("oversize-{}", hex::encode(Sha256::digest(identity.as_bytes()))),
                bytes: size,
                received_at: now,
                metadata,
                audio: None,
                peaks: None,
                unreadable: Some(format!(
                    "the object is {size} bytes, above the {}-byte limit: not analyzed",
                    self.max_object_bytes
                )),
            });
        }
        let config = self.analysis.clone();
        let extension = key.extension.clone();
        let analysed =
            tokio::task::spawn_blocking(move || analysis::analyze(opened.reader, Some(&extension), &config)).await;
        let (audio, peaks, unreadable, sha256, bytes) = match analysed {
            Ok(Ok(a)) => {
                let span = |s: &analysis::Span| TimeSpan {
                    start_ms: s.start_ms,
                    end_ms: s.end_ms,
                };
                let facts = AudioFacts {
                    container: a.container,
                    codec: a.codec,
                    sample_rate: a.sample_rate,
                    channels: a.channels,
                    duration_ms: a.duration_ms,
                    speech_ratio: a.speech_ratio,
                    longest_silence_ms: a.longest_silence_ms,
                    clipping_ratio: a.clipping_ratio,
                    rms_dbfs: a.rms_dbfs,
                    peak_dbfs: a.peak_dbfs,
                    channel_talk_ms: a.channel_talk_ms,
                    truncated: a.truncated,
                    silences: a.silences.iter().map(span).collect(),
                    customer_quiet: a.customer_quiet.iter().map(span).collect(),
                };
                let peaks = Peaks {
                    seconds_per_peak: a.waveform.seconds_per_peak,
                    values: a.waveform.values,
                };
                (Some(facts), Some(peaks), None, a.sha256, a.bytes)
            }
            // The stream broke: that says nothing about the file. Retry the message.
            Ok(Err(analysis::AnalysisError::Io(e))) => return Err(RetryableError::Source(SourceError::Unavailable(e))),
            Ok(Err(e)) => {
                let (sha256, bytes) = self.hash(object, version_id.as_deref()).await?;
                (None, None, Some(e.to_string()), sha256, bytes)
            }
            Err(join) => {
                // A panic inside the decoder must not loop forever: the file is unreadable.
                tracing::error!(key = %object.key, error = %join, "analyzer task failed");
                let (sha256, bytes) = self.hash(object, version_id.as_deref()).await?;
                (
                    None,
                    None,
                    Some("the decoder failed on this file".into()),
                    sha256,
                    bytes,
                )
            }
        };
        Ok(Recording {
            client_id: key.client_id.clone(),
            campaign_id: key.campaign_id.clone(),
            call_id: key.call_id.clone(),
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            version_id,
            sha256,
            bytes,
            received_at: now,
            metadata,
            audio,
            unreadable,
            peaks,
        })
    }

    async fn hash(&self, object: &CreatedObject, version_id: Option<&str>) -> Result<(String, u64), RetryableError> {
        let opened = self.source.open(&object.bucket, &object.key, version_id).await?;
        tokio::task::spawn_blocking(move || hash_stream(opened.reader))
            .await
            .map_err(|e| RetryableError::Task(e.to_string()))?
            .map_err(|e| RetryableError::Source(SourceError::Unavailable(e.to_string())))
    }
}

fn outcome_name(outcome: &AttachOutcome) -> &'static str {
    match outcome {
        AttachOutcome::Attached(_) => "attached",
        AttachOutcome::Replaced(_) => "replaced",
        AttachOutcome::AlreadyAttached => "already-attached",
        AttachOutcome::Decided(_) => "decided",
        AttachOutcome::NoPresale => "no-presale",
    }
}

fn hash_stream(mut reader: impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Dialer metadata: `agent-id`, `call-start` (RFC 3339), `dialer`. A malformed call start is
/// ignored (and logged) rather than failing the recording.
fn metadata_of(raw: &std::collections::HashMap<String, String>) -> RecordingMetadata {
    let text = |name: &str| raw.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let call_started_at = text("call-start").and_then(|v| {
        OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
            .inspect_err(|_| tracing::warn!("ignoring call-start metadata that is not RFC 3339"))
            .ok()
    });
    RecordingMetadata {
        agent_id: text("agent-id"),
        call_started_at,
        dialer: text("dialer"),
    }
}
