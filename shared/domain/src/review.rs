//! The back office's review: validators claim pre-sales with a lease, and decide. Segregation
//! of duties is a rule of the domain, not of the token: whoever registered a pre-sale never
//! claims or decides it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::presale::{CorrectionRequest, Presale, PresaleAction, PresaleStatus};
use super::recording::{Recording, Severity};
use super::validation::{Errors, FieldError, Invalid};

/// A validator's hold on a pre-sale. Expired leases count as no claim at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub validator_id: String,
    #[serde(with = "crate::wire::instant")]
    pub claimed_at: OffsetDateTime,
    #[serde(with = "crate::wire::instant")]
    pub lease_until: OffsetDateTime,
}

impl Claim {
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.lease_until > now
    }
}

/// Reasons a validator may give, as a catalog (stable codes, Spanish labels for the screens).
pub const REJECT_REASONS: &[(&str, &str)] = &[
    ("DATA_MISMATCH", "Los datos no coinciden con la grabación"),
    ("NO_CONSENT", "No se escucha la aceptación del cliente"),
    ("NOT_ACCOUNT_HOLDER", "El cliente no es el titular"),
    ("DUPLICATE", "Venta duplicada"),
    ("RECORDING_UNUSABLE", "Grabación ausente o inutilizable"),
    ("OTHER", "Otro (con comentario)"),
];

/// What a returned pre-sale must fix.
pub const RETURN_REASONS: &[(&str, &str)] = &[
    ("CUSTOMER_DATA", "Corregir datos del cliente"),
    ("ADDRESS", "Corregir la dirección"),
    ("ITEMS", "Corregir productos o cantidades"),
    ("RECORDING", "Subir la grabación correcta"),
    ("OTHER", "Otro (con comentario)"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionKind {
    Approve,
    Reject,
    Return,
}

/// `POST /presales/{id}/review`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionDraft {
    pub decision: DecisionKind,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default)]
    pub comment: Option<String>,
    /// Required to approve over a blocking finding.
    #[serde(default)]
    pub override_reason: Option<String>,
    /// The version the validator looked at; a decision on anything else is stale.
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub kind: DecisionKind,
    pub by: String,
    #[serde(with = "crate::wire::instant")]
    pub at: OffsetDateTime,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
    /// Seconds from READY_FOR_REVIEW to this decision.
    pub review_secs: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("the agent who registered a pre-sale cannot review it")]
    OwnSale,
    #[error("the pre-sale is {0}, not READY_FOR_REVIEW")]
    NotReviewable(PresaleStatus),
    #[error("claim the pre-sale first (POST /reviews/next); decisions need a live claim")]
    NotClaimed,
    #[error("another validator holds the claim until {0}")]
    ClaimedByOther(String),
    #[error("the pre-sale changed (version {current}, you saw {seen})")]
    Stale { current: u64, seen: u64 },
    #[error("invalid decision")]
    Invalid(Vec<FieldError>),
}

fn text(raw: Option<&str>, max: usize) -> Option<String> {
    raw.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.chars().take(max).collect())
}

/// Can `validator` claim this pre-sale now?
pub fn check_claimable(presale: &Presale, validator: &str, now: OffsetDateTime) -> Result<(), ReviewError> {
    if presale.agent_id == validator {
        return Err(ReviewError::OwnSale);
    }
    if presale.status != PresaleStatus::ReadyForReview {
        return Err(ReviewError::NotReviewable(presale.status));
    }
    match &presale.claim {
        Some(claim) if claim.is_live(now) && claim.validator_id != validator => {
            Err(ReviewError::ClaimedByOther(claim.lease_until.to_string()))
        }
        _ => Ok(()),
    }
}

/// Take (or renew) the claim; bumps the version like every state change.
pub fn claim(
    presale: &mut Presale,
    validator: &str,
    now: OffsetDateTime,
    lease: time::Duration,
) -> Result<(), ReviewError> {
    check_claimable(presale, validator, now)?;
    presale.claim = Some(Claim {
        validator_id: validator.to_owned(),
        claimed_at: now,
        lease_until: now + lease,
    });
    presale.version += 1;
    presale.updated_at = now;
    Ok(())
}

/// Give a live claim back.
pub fn release(presale: &mut Presale, validator: &str, now: OffsetDateTime) -> Result<(), ReviewError> {
    match &presale.claim {
        Some(claim) if claim.is_live(now) && claim.validator_id == validator => {
            presale.claim = None;
            presale.version += 1;
            presale.updated_at = now;
            Ok(())
        }
        Some(claim) if claim.is_live(now) => Err(ReviewError::ClaimedByOther(claim.lease_until.to_string())),
        _ => Err(ReviewError::NotClaimed),
    }
}

/// Validate and apply a decision. Returns the status before it.
pub fn decide(
    presale: &mut Presale,
    draft: &DecisionDraft,
    validator: &str,
    now: OffsetDateTime,
) -> Result<PresaleStatus, ReviewError> {
    if presale.agent_id == validator {
        return Err(ReviewError::OwnSale);
    }
    if presale.status != PresaleStatus::ReadyForReview {
        return Err(ReviewError::NotReviewable(presale.status));
    }
    match &presale.claim {
        Some(claim) if claim.is_live(now) && claim.validator_id == validator => {}
        Some(claim) if claim.is_live(now) => return Err(ReviewError::ClaimedByOther(claim.lease_until.to_string())),
        _ => return Err(ReviewError::NotClaimed),
    }
    if draft.version != presale.version {
        return Err(ReviewError::Stale {
            current: presale.version,
            seen: draft.version,
        });
    }
    let mut errors = Errors::new();
    let comment = text(draft.comment.as_deref(), 1000);
    let override_reason = text(draft.override_reason.as_deref(), 1000);
    let catalog = match draft.decision {
        DecisionKind::Approve => &[][..],
        DecisionKind::Reject => REJECT_REASONS,
        DecisionKind::Return => RETURN_REASONS,
    };
    for (i, reason) in draft.reasons.iter().enumerate() {
        if draft.reasons[..i].contains(reason) {
            errors.push(
                Invalid::new("duplicate_reason", format!("reason {reason:?} is listed twice"))
                    .at(format!("reasons[{i}]")),
            );
            continue;
        }
        if !catalog.iter().any(|(code, _)| code == reason) {
            let accepted: Vec<&str> = catalog.iter().map(|(c, _)| *c).collect();
            let detail = if accepted.is_empty() {
                "an approval takes no reasons".to_owned()
            } else {
                format!("unknown reason {reason:?}; accepted: {}", accepted.join(", "))
            };
            errors.push(Invalid::new("unknown_reason", detail).at(format!("reasons[{i}]")));
        }
    }
    if draft.decision != DecisionKind::Approve && draft.reasons.is_empty() {
        errors.push(Invalid::new("required", "say why: at least one reason from the catalog").at("reasons"));
    }
    if draft.reasons.iter().any(|r| r == "OTHER") && comment.is_none() {
        errors.push(Invalid::new("required", "reason OTHER needs a comment").at("comment"));
    }
    let blocking: Vec<&str> = presale
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Blocking)
        .map(|f| f.code.as_str())
        .collect();
    if draft.decision == DecisionKind::Approve && !blocking.is_empty() && override_reason.is_none() {
        errors.push(
            Invalid::new(
                "override_required",
                format!(
                    "approving over blocking findings ({}) needs an override_reason",
                    blocking.join(", ")
                ),
            )
            .at("override_reason"),
        );
    }
    if draft.decision != DecisionKind::Approve && override_reason.is_some() {
        errors.push(Invalid::new("not_applicable", "override_reason is only for approvals").at("override_reason"));
    }
    errors.finish().map_err(ReviewError::Invalid)?;
    let action = match draft.decision {
        DecisionKind::Approve => PresaleAction::Approve,
        DecisionKind::Reject => PresaleAction::Reject,
        DecisionKind::Return => PresaleAction::RequestCorrection,
    };
    let ready_at = presale.ready_at.unwrap_or(presale.updated_at);
    let from = presale
        .transition(action, now)
        .map_err(|e| ReviewError::NotReviewable(e.from))?;
    presale.claim = None;
    if draft.decision == DecisionKind::Return {
        presale.correction = Some(CorrectionRequest {
            reasons: draft.reasons.clone(),
            comment: comment.clone(),
            requested_by: validator.to_owned(),
            requested_at: now,
        });
        presale.ready_at = None;
    }
    presale.decision = Some(Decision {
        kind: draft.decision,
        by: validator.to_owned(),
        at: now,
        reasons: draft.reasons.clone(),
        comment,
        override_reason,
        review_secs: (now - ready_at).whole_seconds().max(0),
    });
    Ok(from)
}

/// Renew the caller's live claim so that it runs `lease` from `now`, without a new version (a
/// decision on the version the validator saw stays valid). A lease with more than half of
/// `lease` still to run is left as it is (`Ok(false)`): a screen may ask every minute, and the
/// pre-sale and its audit trail change at most about twice per lease.
pub fn renew(
    presale: &mut Presale,
    validator: &str,
    now: OffsetDateTime,
    lease: time::Duration,
) -> Result<bool, ReviewError> {
    if presale.status != PresaleStatus::ReadyForReview {
        return Err(ReviewError::NotReviewable(presale.status));
    }
    match &mut presale.claim {
        Some(claim) if claim.is_live(now) && claim.validator_id == validator => {
            if claim.lease_until - now > lease / 2 {
                return Ok(false);
            }
            claim.lease_until = now + lease;
            Ok(true)
        }
        Some(claim) if claim.is_live(now) => Err(ReviewError::ClaimedByOther(claim.lease_until.to_string())),
        _ => Err(ReviewError::NotClaimed),
    }
}

/// The longest one playback may say it lasted: the longest recording the analyzer reads.
pub const MAX_LISTENED_MS: u64 = 6 * 3600 * 1000;

/// `POST /presales/{id}/playbacks`: someone listened to a version of the pre-sale's recording.
/// `playback_id` is the client's id of that listening, so a retried request records it once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybackDraft {
    pub playback_id: String,
    /// The version played, by its bytes' hash…
    #[serde(default)]
    pub sha256: Option<String>,
    /// …or by its S3 version id.
    #[serde(default)]
    pub version_id: Option<String>,
    #[serde(with = "crate::wire::instant")]
    pub started_at: OffsetDateTime,
    pub listened_ms: u64,
}

impl PlaybackDraft {
    /// The recording version played, among the call's `versions`, if the draft is valid.
    pub fn check<'a>(&self, versions: &'a [Recording], now: OffsetDateTime) -> Result<&'a Recording, Vec<FieldError>> {
        let mut errors = Errors::new();
        let id_ok = (8..=64).contains(&self.playback_id.len())
            && self
                .playback_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
        if !id_ok {
            errors.push(Invalid::new("invalid_id", "8-64 letters, digits, '-' or '_' (e.g. a UUID)").at("playback_id"));
        }
        let played = match (&self.sha256, &self.version_id) {
            (None, None) => {
                errors.push(Invalid::new("required", "name the version played: sha256 or version_id").at("sha256"));
                None
            }
            (sha256, version_id) => {
                let found = versions.iter().find(|v| {
                    sha256.as_ref().is_none_or(|h| *h == v.sha256)
                        && version_id.as_ref().is_none_or(|id| v.version_id.as_ref() == Some(id))
                });
                if found.is_none() {
                    let field = if sha256.is_some() { "sha256" } else { "version_id" };
                    errors.push(Invalid::new("unknown_version", "no such version of this call's recording").at(field));
                }
                found
            }
        };
        // A browser's clock a few minutes off is tolerated; a playback in the future, or longer
        // than the time since it started, is not.
        let slack = time::Duration::minutes(5);
        if self.started_at > now + slack {
            errors.push(Invalid::new("in_future", "started_at is in the future").at("started_at"));
        }
        let elapsed_ms = u64::try_from((now + slack - self.started_at).whole_milliseconds()).unwrap_or(0);
        if self.listened_ms > MAX_LISTENED_MS || self.listened_ms > elapsed_ms {
            errors.push(
                Invalid::new("too_long", "longer than the time since started_at (or than 6 hours)").at("listened_ms"),
            );
        }
        errors.finish()?;
        played.ok_or_else(|| vec![Invalid::new("unknown_version", "no such version").at("sha256")])
    }
}

#[cfg(test)]
mod tests;
