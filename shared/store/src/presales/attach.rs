//! Binding a recording to its pre-sale and running the automatic checks: used by
//! recording-ingest when the recording arrives, and by presale-intake when the pre-sale does.

use serde_json::json;
use time::OffsetDateTime;

use super::{CustomerHistoryLookup, Effects, PresaleGet, PresaleWrite};
use crate::config::CampaignDirectory;
use crate::{ConflictKind, StoreError};
use backoffice_domain::audit::{Actor, AuditEntry};
use backoffice_domain::presale::{Presale, PresaleAction, PresaleId, PresaleStatus};
use backoffice_domain::recording::{CheckThresholds, Recording, RecordingRef, run_checks};

/// Who writes these audit records.
pub const ACTOR: &str = "recording-ingest";

#[derive(Debug, Clone, PartialEq)]
pub enum AttachOutcome {
    /// First recording: PENDING_RECORDING → READY_FOR_REVIEW with findings and a score.
    Attached(Presale),
    /// Different bytes for a pre-sale still under review: the new version is bound and re-checked.
    Replaced(Presale),
    /// This exact recording is already bound (a redelivery).
    AlreadyAttached,
    /// The pre-sale is decided; its decision stays bound to the recording it was made on.
    Decided(PresaleStatus),
    NoPresale,
}

/// Whether the recording version being bound is stored yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Stored before (a recording that waited for its pre-sale).
    Stored,
    /// Not stored yet: stored by the binding's own transaction (one write less than storing it
    /// first, issue 14). A binding that does not happen (a redelivery, a decided pre-sale, no
    /// pre-sale) stores nothing: the caller stores it then.
    New,
}

/// The check thresholds of a campaign (the defaults when it has no configuration).
pub async fn thresholds_of<C: CampaignDirectory + ?Sized>(
    campaigns: &C,
    campaign_id: &str,
) -> Result<CheckThresholds, StoreError> {
    Ok(campaigns
        .catalog(campaign_id)
        .await?
        .map(|c| c.campaign.checks)
        .unwrap_or_default())
}

/// Run every automatic check on the pre-sale as it is now (customer, items, recording) and
/// set its findings and risk score: on attachment, and again after an agent's correction.
pub async fn recheck<S: CustomerHistoryLookup + ?Sized>(
    store: &S,
    presale: &mut Presale,
    recording: &Recording,
    thresholds: &CheckThresholds,
) -> Result<(), StoreError> {
    let history = store.customer_history(presale).await?;
    let outcome = run_checks(presale, recording, thresholds, &history);
    presale.findings = outcome.findings;
    presale.risk_score = Some(outcome.risk_score);
    Ok(())
}

/// Attach `recording` to the pre-sale, checked with the thresholds of the pre-sale's own
/// campaign (never the campaign named in the object's key), conditionally on the version read,
/// retrying a few times if a concurrent change wins the race.
pub async fn attach<S, C>(
    store: &S,
    campaigns: &C,
    presale_id: &PresaleId,
    recording: &Recording,
    version: Version,
    now: OffsetDateTime,
) -> Result<AttachOutcome, StoreError>
where
    S: PresaleGet + PresaleWrite + CustomerHistoryLookup + ?Sized,
    C: CampaignDirectory + ?Sized,
{
    let mut thresholds: Option<(String, CheckThresholds)> = None;
    for _ in 0..3 {
        let Some(stored) = store.get(presale_id).await? else {
            return Ok(AttachOutcome::NoPresale);
        };
        let mut presale = stored.presale;
        if presale.recording.as_ref().is_some_and(|r| r.sha256 == recording.sha256) {
            return Ok(AttachOutcome::AlreadyAttached);
        }
        let (expected_version, expected_status) = (presale.version, presale.status);
        let action = match presale.status {
            PresaleStatus::PendingRecording => {
                presale
                    .transition(PresaleAction::AttachRecording, now)
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                "RECORDING_ATTACHED"
            }
            PresaleStatus::ReadyForReview | PresaleStatus::NeedsCorrection => {
                presale.version += 1;
                presale.updated_at = now;
                "RECORDING_REPLACED"
            }
            decided @ (PresaleStatus::Approved | PresaleStatus::Rejected) => {
                return Ok(AttachOutcome::Decided(decided));
            }
        };
        let checks = match &thresholds {
            Some((campaign, checks)) if *campaign == presale.campaign_id => checks.clone(),
            _ => {
                let checks = thresholds_of(campaigns, &presale.campaign_id).await?;
                thresholds = Some((presale.campaign_id.clone(), checks.clone()));
                checks
            }
        };
        recheck(store, &mut presale, recording, &checks).await?;
        presale.recording = Some(RecordingRef {
            bucket: recording.bucket.clone(),
            key: recording.key.clone(),
            version_id: recording.version_id.clone(),
            sha256: recording.sha256.clone(),
            duration_ms: recording.audio.as_ref().map(|a| a.duration_ms).unwrap_or(0),
            attached_at: now,
        });
        let codes: Vec<&str> = presale.findings.iter().map(|f| f.code.as_str()).collect();
        let audit = AuditEntry::presale(&presale, now, &Actor::system(ACTOR), action)
            .from_status(expected_status)
            .reasons(codes.iter().map(|c| (*c).to_owned()).collect())
            .details(json!({
                "key": recording.key, "version_id": recording.version_id, "sha256": recording.sha256,
                "risk_score": presale.risk_score,
            }))
            .seal(&stored.audit_head);
        let effects = Effects {
            recording: (version == Version::New).then(|| recording.clone()),
            ..Effects::default()
        };
        match store
            .save_with(&presale, expected_version, expected_status, &audit, &effects)
            .await
        {
            Ok(()) if action == "RECORDING_ATTACHED" => return Ok(AttachOutcome::Attached(presale)),
            Ok(()) => return Ok(AttachOutcome::Replaced(presale)),
            Err(StoreError::Conflict(ConflictKind::StaleVersion)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict(ConflictKind::StaleVersion))
}
