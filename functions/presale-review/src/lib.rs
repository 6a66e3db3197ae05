//! presale-review: the back office decides which pre-sales become sales.
//!
//! Routes: `POST /reviews/next`, `POST /reviews/{id}/release`, `POST /reviews/{id}/renew`,
//! `GET /presales/{id}/review-view`, `POST /presales/{id}/review`, `POST /presales/{id}/playbacks`,
//! `GET /presales/{id}/audit`, `GET /reviews/metrics`; and a scheduled sweep that re-sends
//! outbox messages whose first send failed.

pub mod metrics;
pub mod ports;

use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use backoffice_domain::Clock;
use backoffice_domain::audit::{Anchor, AuditEntry, AuditRecord, verify_chain_state_and_anchors};
use backoffice_domain::events::SaleConfirmed;
use backoffice_domain::presale::{Presale, PresaleId, PresaleStatus};
use backoffice_domain::principal::{Principal, Role};
use backoffice_domain::recording::{AudioFacts, Recording};
use backoffice_domain::review::{
    self, DecisionDraft, DecisionKind, PlaybackDraft, REJECT_REASONS, RETURN_REASONS, ReviewError,
};
use backoffice_domain::validation::Invalid;
use backoffice_edge::http::request::DEFAULT_BODY_LIMIT;
use backoffice_edge::http::{ApiError, ApiRequest, ApiResponse, Invocation, respond};
use backoffice_store::anchors::AuditAnchors;
use backoffice_store::config::CampaignDirectory;
use backoffice_store::counters::Counters;
use backoffice_store::outbox::{Outbox, OutboxMessage};
use backoffice_store::presales::{
    AuditNotes, AuditRead, ClaimLock, Effects, NoteEffect, PresaleGet, PresaleWrite, QueueEntry, RecordingVersions,
    ReviewQueue, StoredPresale,
};
use backoffice_store::{ConflictKind, StoreError};
use serde_json::{Value, json};
use time::OffsetDateTime;

use backoffice_edge::relay::{self, Publisher, SweepReport};

use crate::ports::RecordingLinks;

pub const ROUTES: &[&str] = &[
    "POST /reviews/next",
    "POST /reviews/{id}/release",
    "POST /reviews/{id}/renew",
    "GET /reviews/metrics",
    "GET /presales/{id}/review-view",
    "POST /presales/{id}/review",
    "POST /presales/{id}/playbacks",
    "GET /presales/{id}/audit",
];

/// How many times a note is re-read and re-chained when another note or change won the race.
const NOTE_ATTEMPTS: usize = 3;

/// How long a playback link lives: long enough to listen, short enough not to be shared.
pub const PLAYBACK_TTL: Duration = Duration::from_secs(5 * 60);

pub struct Review<P, C, L, Q, K, A> {
    pub presales: P,
    pub campaigns: C,
    pub links: L,
    pub publisher: Q,
    pub clock: K,
    pub lease: time::Duration,
    /// Where decided chains' heads are anchored (S3 with Object Lock).
    pub anchors: A,
}

impl<P, C, L, Q, K, A> Review<P, C, L, Q, K, A>
where
    P: PresaleGet + PresaleWrite + ReviewQueue + RecordingVersions + AuditRead + AuditNotes + Outbox + Counters,
    C: CampaignDirectory,
    L: RecordingLinks,
    Q: Publisher,
    K: Clock,
    A: AuditAnchors,
{
    pub async fn handle(&self, event: ApiGatewayV2httpRequest, invocation: &Invocation) -> ApiGatewayV2httpResponse {
        respond(event, invocation, async |request: &ApiRequest| {
            self.route(request).await
        })
        .await
    }

    async fn route(&self, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let principal = request.principal()?;
        match request.route_key.as_str() {
            "POST /reviews/next" => self.next(&principal).await,
            "POST /reviews/{id}/release" => self.release(request, &principal).await,
            "POST /reviews/{id}/renew" => self.renew(request, &principal).await,
            "POST /presales/{id}/playbacks" => self.playback(request, &principal).await,
            "GET /reviews/metrics" => self.metrics(request, &principal).await,
            "GET /presales/{id}/review-view" => self.review_view(request, &principal).await,
            "POST /presales/{id}/review" => self.decide(request, &principal).await,
            "GET /presales/{id}/audit" => self.audit(request, &principal).await,
            other => Err(ApiError::NotFound(format!("no route {other}"))),
        }
    }

    fn require(principal: &Principal, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if principal.is_any(roles) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{what} is for {}",
                roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
            )))
        }
    }

    /// The pre-sale if the caller acts for its client; otherwise it does not exist for them.
    async fn load(&self, request: &ApiRequest, principal: &Principal) -> Result<StoredPresale, ApiError> {
        let raw = request.path_param("id")?;
        let not_found = || ApiError::NotFound(format!("no pre-sale {raw}"));
        let id = PresaleId::parse(raw).map_err(|_| not_found())?;
        let stored = self.presales.get(&id).await?.ok_or_else(not_found)?;
        if principal.acts_for(&stored.presale.client_id) {
            Ok(stored)
        } else {
            Err(not_found())
        }
    }

    /// The audit entry of a change the principal made to the pre-sale from status `from`.
    fn audit_entry(
        presale: &Presale,
        principal: &Principal,
        action: &str,
        from: PresaleStatus,
        now: OffsetDateTime,
    ) -> AuditEntry {
        AuditEntry::presale(presale, now, &principal.actor(), action).from_status(from)
    }

    async fn next(&self, principal: &Principal) -> Result<ApiResponse, ApiError> {
        Self::require(principal, &[Role::Validator], "claiming reviews")?;
        let now = self.clock.now();
        let mut candidates = Vec::new();
        for client in &principal.clients {
            candidates.extend(self.presales.review_queue(client, now, 25).await?);
        }
        candidates.sort_by_key(QueueEntry::priority);
        // One claim per validator, but the validator's claim item is not read first: most
        // validators asking hold none, and the claim's own transaction is conditioned on that
        // item (issue 14: one read less per claim). Only when it says otherwise is it read.
        match self.claim_first(principal, &candidates, now, None).await? {
            Claim::Taken(presale) => return Ok(claimed_response(&presale)),
            Claim::NoneLeft => {
                // Asking again with an empty queue still gets the pre-sale already held.
                return match self.held(principal, now).await? {
                    (Some(held), _) => Ok(claimed_response(&held)),
                    (None, _) => Ok(ApiResponse::new(204, String::new())),
                };
            }
            Claim::ValidatorBusy => {}
        }
        let (held, ended) = self.held(principal, now).await?;
        if let Some(held) = held {
            return Ok(claimed_response(&held));
        }
        // The claim item names a claim that has ended (decided, returned, or of a client the
        // validator no longer acts for): a new claim replaces it.
        match self.claim_first(principal, &candidates, now, ended).await? {
            Claim::Taken(presale) => Ok(claimed_response(&presale)),
            Claim::NoneLeft => Ok(ApiResponse::new(204, String::new())),
            // The same validator took a claim from another screen meanwhile: that one stands.
            Claim::ValidatorBusy => match self.held(principal, now).await? {
                (Some(held), _) => Ok(claimed_response(&held)),
                (None, _) => Err(ApiError::Conflict {
                    slug: "claim-held",
                    detail: "you already hold a claim on another pre-sale; decide or release it first".into(),
                    current: None,
                }),
            },
        }
    }

    /// Claim the first of `candidates` (in priority order) that is still claimable, taking the
    /// validator's claim item unless it holds another claim than `replacing`.
    async fn claim_first(
        &self,
        principal: &Principal,
        candidates: &[QueueEntry],
        now: OffsetDateTime,
        replacing: Option<PresaleId>,
    ) -> Result<Claim, ApiError> {
        for entry in candidates {
            // Read the head itself: the queue index is eventually consistent, the claim must not be.
            let Some(stored) = self.presales.get(&entry.presale_id).await? else {
                continue;
            };
            let candidate = &stored.presale;
            let mut presale = candidate.clone();
            if review::claim(&mut presale, &principal.user_id, now, self.lease).is_err() {
                continue;
            }
            let lease_until = now + self.lease;
            let audit = Self::audit_entry(&presale, principal, "CLAIMED", candidate.status, now)
                .details(json!({"lease_until": lease_until.to_string()}))
                .seal(&stored.audit_head);
            let effects = Effects {
                claim: Some(ClaimLock::Take {
                    validator_id: principal.user_id.clone(),
                    presale_id: presale.id.clone(),
                    lease_until,
                    now,
                    replacing: replacing.clone(),
                }),
                ..Effects::default()
            };
            match self
                .presales
                .save_with(&presale, candidate.version, candidate.status, &audit, &effects)
                .await
            {
                Ok(()) => return Ok(Claim::Taken(Box::new(presale))),
                Err(StoreError::Conflict(ConflictKind::ValidatorBusy)) => return Ok(Claim::ValidatorBusy),
                // Someone else won this one: try the next.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Claim::NoneLeft)
    }

    /// The pre-sale the validator holds a live claim on, if any; otherwise the pre-sale their
    /// claim item still names although that claim has ended (decided, returned, or the
    /// validator lost access to its client), so that a new claim may replace it.
    async fn held(
        &self,
        principal: &Principal,
        now: OffsetDateTime,
    ) -> Result<(Option<Presale>, Option<PresaleId>), ApiError> {
        let Some(held) = self.presales.held_claim(&principal.user_id).await? else {
            return Ok((None, None));
        };
        if held.lease_until <= now {
            return Ok((None, None));
        }
        if let Some(stored) = self.presales.get(&held.presale_id).await? {
            let presale = stored.presale;
            let live = presale.status == PresaleStatus::ReadyForReview
                && principal.acts_for(&presale.client_id)
                && presale
                    .claim
                    .as_ref()
                    .is_some_and(|c| c.validator_id == principal.user_id && c.is_live(now));
            if live {
                return Ok((Some(presale), None));
            }
        }
        Ok((None, Some(held.presale_id)))
    }

    async fn release(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        Self::require(principal, &[Role::Validator], "releasing a claim")?;
        let StoredPresale {
            mut presale,
            audit_head,
        } = self.load(request, principal).await?;
        let now = self.clock.now();
        let (version, status) = (presale.version, presale.status);
        review::release(&mut presale, &principal.user_id, now).map_err(|e| review_error(e, &presale))?;
        let audit = Self::audit_entry(&presale, principal, "RELEASED", status, now).seal(&audit_head);
        let effects = Effects {
            claim: Some(ClaimLock::Free {
                validator_id: principal.user_id.clone(),
                presale_id: presale.id.clone(),
            }),
            ..Effects::default()
        };
        self.save_or_conflict(&presale, version, status, &audit, &effects)
            .await?;
        Ok(ApiResponse::json(200, &presale))
    }

    /// The campaign-local day of `now`: the day a decision counts for in the metrics.
    /// The campaign-local days of `now` (the decision) and of the pre-sale's sale (the KPI
    /// reports' day it counts on, `kpi::Sale::sold_at`).
    async fn campaign_days(
        &self,
        presale: &Presale,
        now: OffsetDateTime,
    ) -> Result<(time::Date, time::Date), ApiError> {
        let sold_at = backoffice_domain::kpi::Sale::from_presale(presale).sold_at;
        match self.campaigns.catalog(&presale.campaign_id).await? {
            Some(catalog) => Ok((
                catalog.campaign.timezone.local_date(now),
                catalog.campaign.timezone.local_date(sold_at),
            )),
            None => {
                tracing::warn!(
                    campaign_id = presale.campaign_id,
                    "the pre-sale's campaign has no configuration: metrics count the UTC day"
                );
                Ok((now.date(), sold_at.to_offset(time::UtcOffset::UTC).date()))
            }
        }
    }

    async fn save_or_conflict(
        &self,
        presale: &Presale,
        version: u64,
        status: PresaleStatus,
        audit: &backoffice_domain::audit::AuditRecord,
        effects: &Effects,
    ) -> Result<(), ApiError> {
        match self.presales.save_with(presale, version, status, audit, effects).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(_)) => {
                let current = self.presales.get(&presale.id).await.ok().flatten().map(|s| s.presale);
                Err(ApiError::Conflict {
                    slug: "stale-version",
                    detail: "the pre-sale changed meanwhile; nothing was applied".into(),
                    current: current.as_ref().map(current_state),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn review_view(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        Self::require(
            principal,
            &[Role::Validator, Role::Supervisor, Role::Admin],
            "the review view",
        )?;
        let stored = self.load(request, principal).await?;
        let presale = &stored.presale;
        let versions = self.presales.recordings(&presale.client_id, &presale.call_id).await?;
        let bound = presale
            .recording
            .as_ref()
            .and_then(|r| versions.iter().find(|v| v.sha256 == r.sha256));
        // Every version can be played (and its playback recorded), not only the bound one.
        let mut listed = Vec::with_capacity(versions.len());
        for v in &versions {
            let url = match self
                .links
                .playback_url(&v.bucket, &v.key, v.version_id.as_deref(), PLAYBACK_TTL)
                .await
            {
                Ok(url) => Some(url),
                Err(e) => {
                    tracing::warn!(error = %e, "could not presign a recording version");
                    None
                }
            };
            listed.push(version_view(v, bound, url));
        }
        let now = self.clock.now();
        let lease_until = presale
            .claim
            .as_ref()
            .filter(|c| c.is_live(now))
            .map(|c| rfc3339(c.lease_until));
        let playback = match &presale.recording {
            Some(r) => match self
                .links
                .playback_url(&r.bucket, &r.key, r.version_id.as_deref(), PLAYBACK_TTL)
                .await
            {
                Ok(url) => json!({"url": url, "expires_in_secs": PLAYBACK_TTL.as_secs()}),
                Err(e) => {
                    tracing::warn!(error = %e, "could not presign the recording");
                    Value::Null
                }
            },
            None => Value::Null,
        };
        Ok(ApiResponse::json(
            200,
            &json!({
                "presale": presale,
                "recording": bound.map(recording_view),
                "other_versions": versions.len().saturating_sub(usize::from(bound.is_some())),
                "versions": listed,
                "lease_until": lease_until,
                "playback": playback,
                "reasons": {"reject": catalog(REJECT_REASONS), "return": catalog(RETURN_REASONS)},
            }),
        ))
    }

    /// The chain's next note after the head the pre-sale was read with: `None` when the trail
    /// has moved on since (re-read and try again).
    async fn next_note(&self, stored: &StoredPresale) -> Result<Option<u32>, ApiError> {
        let trail = self.presales.audit_trail(&stored.presale.id).await?;
        Ok(match trail.last() {
            Some(last) if last.hash != stored.audit_head => None,
            Some(last) if last.seq == stored.presale.version => Some(last.note + 1),
            _ => Some(1),
        })
    }

    /// Extend the caller's live claim (the console asks every minute while the review screen is
    /// open). It writes only past half the lease (`review::renew`), so the audit trail gets a
    /// `LEASE_RENEWED` note at most about twice per lease, and never a new version.
    async fn renew(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        Self::require(principal, &[Role::Validator], "renewing a claim")?;
        for _ in 0..NOTE_ATTEMPTS {
            let stored = self.load(request, principal).await?;
            let mut presale = stored.presale.clone();
            let now = self.clock.now();
            let renewed = review::renew(&mut presale, &principal.user_id, now, self.lease)
                .map_err(|e| review_error(e, &presale))?;
            let lease_until = presale.claim.as_ref().map(|c| c.lease_until).unwrap_or(now);
            let answer = |renewed: bool| {
                ApiResponse::json(
                    200,
                    &json!({"presale_id": presale.id, "version": presale.version,
                            "lease_until": rfc3339(lease_until), "renewed": renewed}),
                )
            };
            if !renewed {
                return Ok(answer(false));
            }
            let Some(note) = self.next_note(&stored).await? else {
                continue;
            };
            let audit = AuditEntry::presale_note(&presale, note, now, &principal.actor(), "LEASE_RENEWED")
                .details(json!({"lease_until": rfc3339(lease_until)}))
                .seal(&stored.audit_head);
            let effect = NoteEffect::Renewal {
                validator_id: principal.user_id.clone(),
                lease_until,
            };
            match self.presales.append_note(&presale, &audit, &effect).await {
                Ok(()) => return Ok(answer(true)),
                Err(StoreError::Conflict(ConflictKind::ValidatorBusy)) => {
                    return Err(review_error(ReviewError::NotClaimed, &stored.presale));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(busy())
    }

    /// Record that someone listened to a version of the recording (QC): a `PLAYED` note on the
    /// audit chain, once per `playback_id`, without a new version of the pre-sale.
    async fn playback(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        Self::require(
            principal,
            &[Role::Validator, Role::Supervisor, Role::Admin],
            "recording playbacks",
        )?;
        let first = self.load(request, principal).await?;
        let draft: PlaybackDraft = request.json_body(DEFAULT_BODY_LIMIT)?;
        let id = first.presale.id.clone();
        if let Some(done) = self.presales.playback_note(&id, &draft.playback_id).await? {
            return replayed(&done, &draft, principal);
        }
        let versions = self
            .presales
            .recordings(&first.presale.client_id, &first.presale.call_id)
            .await?;
        let now = self.clock.now();
        let played = draft.check(&versions, now).map_err(ApiError::Validation)?;
        let details = json!({
            "playback_id": draft.playback_id,
            "sha256": played.sha256,
            "version_id": played.version_id,
            "started_at": rfc3339(draft.started_at),
            "listened_ms": draft.listened_ms,
        });
        let effect = NoteEffect::Playback {
            playback_id: draft.playback_id.clone(),
        };
        let mut stored = first;
        for _ in 0..NOTE_ATTEMPTS {
            if let Some(note) = self.next_note(&stored).await? {
                let audit = AuditEntry::presale_note(&stored.presale, note, now, &principal.actor(), "PLAYED")
                    .details(details.clone())
                    .seal(&stored.audit_head);
                match self.presales.append_note(&stored.presale, &audit, &effect).await {
                    Ok(()) => {
                        tracing::info!(presale_id = %id, listened_ms = draft.listened_ms, "playback recorded");
                        return Ok(ApiResponse::json(201, &playback_view(&audit)));
                    }
                    // The same playback, sent twice at once: the other request recorded it.
                    Err(StoreError::Conflict(ConflictKind::AlreadyExists)) => {
                        if let Some(done) = self.presales.playback_note(&id, &draft.playback_id).await? {
                            return replayed(&done, &draft, principal);
                        }
                    }
                    Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            stored = self.load(request, principal).await?;
        }
        Err(busy())
    }

    async fn decide(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        Self::require(principal, &[Role::Validator], "deciding on pre-sales")?;
        let draft: DecisionDraft = request.json_body(DEFAULT_BODY_LIMIT)?;
        for _ in 0..NOTE_ATTEMPTS {
            if let Some(decided) = self.decide_once(request, principal, &draft).await? {
                return Ok(decided);
            }
        }
        Err(busy())
    }

    /// One attempt at a decision; `None` when only a note (a playback, a renewal) moved the
    /// chain's head since the read: the decision is still on the version the validator saw, so
    /// it is made again on the new head rather than refused as stale.
    async fn decide_once(
        &self,
        request: &ApiRequest,
        principal: &Principal,
        draft: &DecisionDraft,
    ) -> Result<Option<ApiResponse>, ApiError> {
        let StoredPresale {
            mut presale,
            audit_head,
        } = self.load(request, principal).await?;
        let now = self.clock.now();
        let (version, status) = (presale.version, presale.status);
        review::decide(&mut presale, draft, &principal.user_id, now).map_err(|e| review_error(e, &presale))?;
        let decision = presale.decision.clone();
        let (action, mut details) = match draft.decision {
            DecisionKind::Approve => ("APPROVED", json!({})),
            DecisionKind::Reject => ("REJECTED", json!({})),
            DecisionKind::Return => ("RETURNED", json!({})),
        };
        if let Some(d) = &decision {
            details = json!({"comment": d.comment, "override_reason": d.override_reason, "review_secs": d.review_secs});
        }
        let audit = Self::audit_entry(&presale, principal, action, status, now)
            .reasons(draft.reasons.clone())
            .details(details)
            .seal(&audit_head);
        // The sale carries the correlation id of the agent's registration, not this request's:
        // one id joins the pre-sale's logs from intake to the invoice.
        let outbox = match draft.decision {
            DecisionKind::Approve => Some(
                OutboxMessage::seal(
                    &SaleConfirmed::from_approved(&presale, &principal.user_id, now),
                    presale.correlation_id(),
                    now,
                )
                .map_err(|e| ApiError::Internal(format!("cannot seal SaleConfirmed: {e}")))?,
            ),
            _ => None,
        };
        let effects = Effects {
            outbox: outbox.clone(),
            counters: {
                let (day, sale_day) = self.campaign_days(&presale, now).await?;
                metrics::decision_counters(&presale, day, sale_day)
            },
            claim: Some(ClaimLock::Free {
                validator_id: principal.user_id.clone(),
                presale_id: presale.id.clone(),
            }),
            recording: None,
        };
        match self
            .presales
            .save_with(&presale, version, status, &audit, &effects)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(ConflictKind::StaleVersion)) => {
                let current = self.presales.get(&presale.id).await?;
                if let Some(current) = &current
                    && (current.presale.version, current.presale.status) == (version, status)
                    && current.audit_head != audit_head
                {
                    tracing::info!(presale_id = %presale.id, "a note moved the audit head meanwhile: deciding again on it");
                    return Ok(None);
                }
                return Err(ApiError::Conflict {
                    slug: "stale-version",
                    detail: "the pre-sale changed meanwhile; nothing was applied".into(),
                    current: current.as_ref().map(|c| current_state(&c.presale)),
                });
            }
            Err(StoreError::Conflict(_)) => {
                let current = self.presales.get(&presale.id).await.ok().flatten();
                return Err(ApiError::Conflict {
                    slug: "stale-version",
                    detail: "the pre-sale changed meanwhile; nothing was applied".into(),
                    current: current.as_ref().map(|c| current_state(&c.presale)),
                });
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(presale_id = %presale.id, decision = action, "pre-sale decided");
        ::metrics::counter!("Decisions", "Decision" => action).increment(1);
        self.anchor(&audit).await;
        if let Some(message) = outbox {
            // Committed already: a failed send is retried by the sweep, never lost.
            relay::send(&self.presales, &self.publisher, &message).await;
        }
        Ok(Some(ApiResponse::json(200, &presale)))
    }

    /// Anchor a decided chain's head outside the table. The decision is committed already, so a
    /// failure does not undo it: it is logged for the alarm (`AuditAnchorFailed`), and the audit
    /// route shows how many anchors it checked.
    async fn anchor(&self, audit: &AuditRecord) {
        if let Err(e) = self.anchors.anchor(&Anchor::of(audit, self.clock.now())).await {
            // The alarm's metric filter matches `error_kind`.
            tracing::error!(presale_id = %audit.subject, seq = audit.seq, error = %e, error_kind = "audit_anchor_failed", "audit head not anchored");
        }
    }

    /// Re-send every outbox message still pending (scheduled every minute).
    pub async fn sweep(&self, deadline: OffsetDateTime) -> Result<SweepReport, StoreError> {
        relay::sweep(&self.presales, &self.publisher, &self.clock, deadline).await
    }

    async fn audit(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        Self::require(
            principal,
            &[Role::Validator, Role::Supervisor, Role::Admin],
            "the audit trail",
        )?;
        let stored = self.load(request, principal).await?;
        let records = self.presales.audit_trail(&stored.presale.id).await?;
        let anchors = self.anchors.anchors(stored.presale.id.as_str()).await?;
        let verification =
            verify_chain_state_and_anchors(&records, Some(&stored.audit_head), &stored.presale, &anchors);
        Ok(ApiResponse::json(
            200,
            &json!({"presale_id": stored.presale.id, "records": records, "verification": verification}),
        ))
    }

    async fn metrics(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        Self::require(principal, &[Role::Supervisor, Role::Admin], "review metrics")?;
        request.only_query_params(&["campaign", "day"])?;
        let campaign = request
            .query_param("campaign")?
            .ok_or_else(|| ApiError::InvalidParameter {
                field: "campaign".into(),
                detail: "campaign is required".into(),
            })?;
        let catalog = self
            .campaigns
            .catalog(campaign)
            .await?
            .filter(|c| principal.acts_for(&c.campaign.client_id))
            .ok_or_else(|| ApiError::NotFound(format!("no campaign {campaign}")))?;
        let today = catalog.campaign.timezone.local_date(self.clock.now());
        let day = request.date_param("day")?.unwrap_or(today);
        let rows = self.presales.counters(&metrics::pk(campaign, day)).await?;
        Ok(ApiResponse::json(200, &metrics::summary(campaign, day, &rows)))
    }
}

fn catalog(entries: &[(&str, &str)]) -> Vec<Value> {
    entries
        .iter()
        .map(|(code, label)| json!({"code": code, "label": label}))
        .collect()
}

/// What an attempt to claim from the queue came to.
enum Claim {
    Taken(Box<Presale>),
    /// The validator's claim item holds another live (or unknown) claim.
    ValidatorBusy,
    /// No candidate could be claimed.
    NoneLeft,
}

fn claimed_response(presale: &Presale) -> ApiResponse {
    ApiResponse::json(
        200,
        &json!({"presale": presale, "lease_until": presale.claim.as_ref().map(|c| rfc3339(c.lease_until))}),
    )
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// What a 409 tells the screen about the pre-sale as it is now: enough to say what changed
/// (decided by whom, claimed by whom, until when) without another request.
fn current_state(presale: &Presale) -> Value {
    json!({
        "status": presale.status,
        "version": presale.version,
        "claimed_by": presale.claim.as_ref().map(|c| c.validator_id.clone()),
        "lease_until": presale.claim.as_ref().map(|c| rfc3339(c.lease_until)),
        "decision": presale.decision.as_ref().map(|d| d.kind),
        "decided_by": presale.decision.as_ref().map(|d| d.by.clone()),
        "decided_at": presale.decision.as_ref().map(|d| rfc3339(d.at)),
    })
}

fn busy() -> ApiError {
    ApiError::Conflict {
        slug: "busy",
        detail: "the pre-sale kept changing while this was recorded; try again".into(),
        current: None,
    }
}

/// Time marks of the findings, in seconds: silences (LONG_SILENCE) and stretches without the
/// customer's voice (LOW_CUSTOMER_TALK), in time order.
fn marks(audio: &AudioFacts) -> Vec<Value> {
    let secs = |ms: u64| ms as f64 / 1000.0;
    let mut marks: Vec<(u64, Value)> = audio
        .silences
        .iter()
        .map(|s| (s.start_ms, "silence", s))
        .chain(audio.customer_quiet.iter().map(|s| (s.start_ms, "customer_quiet", s)))
        .map(|(start, kind, s)| {
            (
                start,
                json!({"kind": kind, "start_s": secs(s.start_ms), "end_s": secs(s.end_ms)}),
            )
        })
        .collect();
    marks.sort_by_key(|(start, _)| *start);
    marks.into_iter().map(|(_, mark)| mark).collect()
}

/// The bound recording version: its analysis, waveform and time marks.
fn recording_view(r: &Recording) -> Value {
    json!({
        "sha256": r.sha256,
        "version_id": r.version_id,
        "duration_ms": r.audio.as_ref().map(|a| a.duration_ms),
        "audio": r.audio,
        "metadata": r.metadata,
        "unreadable": r.unreadable,
        "bytes": r.bytes,
        "received_at": rfc3339(r.received_at),
        "peaks": r.peaks,
        "marks": r.audio.as_ref().map(marks).unwrap_or_default(),
    })
}

/// One version of the call's recording, as the list of versions shows it.
fn version_view(v: &Recording, bound: Option<&Recording>, playback_url: Option<String>) -> Value {
    json!({
        "version_id": v.version_id,
        "sha256": v.sha256,
        "received_at": rfc3339(v.received_at),
        "bytes": v.bytes,
        "duration_ms": v.audio.as_ref().map(|a| a.duration_ms),
        "unreadable": v.unreadable.is_some(),
        "bound": bound.is_some_and(|b| b.sha256 == v.sha256),
        "playback_url": playback_url,
    })
}

/// A recorded playback, as its note says it.
fn playback_view(note: &AuditRecord) -> Value {
    let d = &note.details;
    json!({
        "playback_id": d["playback_id"],
        "presale_id": note.subject,
        "sha256": d["sha256"],
        "version_id": d["version_id"],
        "started_at": d["started_at"],
        "listened_ms": d["listened_ms"],
        "actor": note.actor,
        "recorded_at": rfc3339(note.at),
        "seq": note.seq,
        "note": note.note,
    })
}

/// A playback id sent again: the first answer if it is the same playback, else a 422.
fn replayed(done: &AuditRecord, draft: &PlaybackDraft, principal: &Principal) -> Result<ApiResponse, ApiError> {
    let d = &done.details;
    let same = done.actor == principal.user_id
        && d["started_at"].as_str() == Some(rfc3339(draft.started_at).as_str())
        && d["listened_ms"].as_u64() == Some(draft.listened_ms)
        && draft.sha256.as_deref().is_none_or(|h| d["sha256"].as_str() == Some(h))
        && draft
            .version_id
            .as_deref()
            .is_none_or(|v| d["version_id"].as_str() == Some(v));
    if same {
        Ok(ApiResponse::json(200, &playback_view(done)))
    } else {
        Err(ApiError::Validation(vec![
            Invalid::new(
                "reused",
                "this playback_id was recorded with other data; use a new id per playback",
            )
            .at("playback_id"),
        ]))
    }
}

fn review_error(error: ReviewError, presale: &Presale) -> ApiError {
    let current = Some(current_state(presale));
    match error {
        ReviewError::OwnSale => {
            ApiError::Forbidden("segregation of duties: the agent who registered a pre-sale never reviews it".into())
        }
        ReviewError::Invalid(errors) => ApiError::Validation(errors),
        ReviewError::NotReviewable(_) => ApiError::Conflict {
            slug: "invalid-state",
            detail: error.to_string(),
            current,
        },
        ReviewError::NotClaimed => ApiError::Conflict {
            slug: "not-claimed",
            detail: error.to_string(),
            current,
        },
        ReviewError::ClaimedByOther(_) => ApiError::Conflict {
            slug: "claimed-by-other",
            detail: error.to_string(),
            current,
        },
        ReviewError::Stale { .. } => ApiError::Conflict {
            slug: "stale-version",
            detail: error.to_string(),
            current,
        },
    }
}

#[cfg(test)]
mod tests;
