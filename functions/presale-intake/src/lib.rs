//! presale-intake: agents register pre-sales; everyone with access reads and lists them; an
//! agent corrects a pre-sale the back office returned.
//!
//! Routes (declared in infra/template.yaml and docs/openapi.yaml):
//! `POST /presales`, `GET /presales`, `GET /presales/{id}`, `PATCH /presales/{id}`.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use backoffice_domain::Clock;
use backoffice_domain::audit::{AuditEntry, GENESIS_HASH};
use backoffice_domain::presale::{
    self, CorrectionDraft, Presale, PresaleAction, PresaleDraft, PresaleId, PresaleStatus, Registration,
};
use backoffice_domain::principal::{Principal, Role};
use backoffice_domain::validation::Invalid;
use backoffice_edge::http::idempotency;
use backoffice_edge::http::request::DEFAULT_BODY_LIMIT;
use backoffice_edge::http::{ApiError, ApiRequest, ApiResponse, Invocation, respond};
use backoffice_store::config::CampaignDirectory;
use backoffice_store::idempotency::IdempotencyStore;
use backoffice_store::presales::{
    self, AttachOutcome, CallLookup, CustomerHistoryLookup, PresaleGet, PresaleList, PresaleQuery, PresaleWrite,
    RecordingVersions, StoredPresale,
};
use backoffice_store::{ConflictKind, StoreError};
use serde_json::json;

/// Every route this function serves; a test checks them against the template and the OpenAPI
/// document.
pub const ROUTES: &[&str] = &[
    "POST /presales",
    "GET /presales",
    "GET /presales/{id}",
    "PATCH /presales/{id}",
];

pub const DEFAULT_PAGE_SIZE: u32 = 25;
pub const MAX_PAGE_SIZE: u32 = 100;

/// The function's dependencies, built once at init and shared by every invocation.
pub struct Intake<P, C, I, K> {
    pub presales: P,
    pub campaigns: C,
    pub idempotency: I,
    pub clock: K,
}

impl<P, C, I, K> Intake<P, C, I, K>
where
    P: PresaleGet + PresaleWrite + PresaleList + CallLookup + RecordingVersions + CustomerHistoryLookup,
    C: CampaignDirectory,
    I: IdempotencyStore,
    K: Clock,
{
    pub async fn handle(&self, event: ApiGatewayV2httpRequest, invocation: &Invocation) -> ApiGatewayV2httpResponse {
        respond(event, invocation, async |request: &ApiRequest| {
            self.route(request, invocation).await
        })
        .await
    }

    async fn route(&self, request: &ApiRequest, invocation: &Invocation) -> Result<ApiResponse, ApiError> {
        let principal = request.principal()?;
        match request.route_key.as_str() {
            "POST /presales" => self.create(request, &principal, invocation).await,
            "GET /presales" => self.list(request, &principal).await,
            "GET /presales/{id}" => self.get(request, &principal).await,
            "PATCH /presales/{id}" => self.correct(request, &principal).await,
            other => Err(ApiError::NotFound(format!("no route {other}"))),
        }
    }

    async fn create(
        &self,
        request: &ApiRequest,
        principal: &Principal,
        invocation: &Invocation,
    ) -> Result<ApiResponse, ApiError> {
        if !principal.is(Role::Agent) {
            return Err(ApiError::Forbidden("only agents register pre-sales".into()));
        }
        let now = self.clock.now();
        idempotency::run(
            &self.idempotency,
            request,
            principal,
            now,
            invocation.deadline,
            async || {
                let draft: PresaleDraft = request.json_body(DEFAULT_BODY_LIMIT)?;
                let catalog = self
                    .campaigns
                    .catalog(draft.campaign_id.trim())
                    .await?
                    // Another tenant's campaign reads exactly like a missing one.
                    .filter(|c| principal.acts_for(&c.campaign.client_id))
                    .ok_or_else(|| {
                        ApiError::Validation(vec![
                            Invalid::new(
                                "unknown_campaign",
                                format!("no campaign {:?} for your clients", draft.campaign_id),
                            )
                            .at("campaign_id"),
                        ])
                    })?;
                if !catalog.campaign.active {
                    return Err(ApiError::Validation(vec![
                        Invalid::new("inactive_campaign", "the campaign is closed to new sales").at("campaign_id"),
                    ]));
                }
                let who = Registration {
                    id: PresaleId::generate(),
                    agent_id: principal.user_id.clone(),
                    now,
                    correlation_id: Some(request.correlation_id().to_owned()),
                };
                let presale = presale::register(&draft, &catalog, who).map_err(ApiError::Validation)?;
                let audit = AuditEntry::presale(&presale, now, &principal.actor(), "CREATED")
                    .details(json!({"campaign_id": presale.campaign_id, "call_id": presale.call_id}))
                    .seal(GENESIS_HASH);
                let recording_waits = match self.presales.create(&presale, &audit).await {
                    Ok(waits) => waits,
                    Err(StoreError::Conflict(ConflictKind::DuplicateCallId)) => {
                        let existing = self
                            .presales
                            .find_by_call(&presale.client_id, &presale.call_id)
                            .await
                            .ok()
                            .flatten();
                        return Err(ApiError::Conflict {
                            slug: "duplicate-call-id",
                            detail: format!("call {} already has a pre-sale", presale.call_id),
                            current: existing.map(|id| json!({"presale_id": id})),
                        });
                    }
                    Err(e) => return Err(e.into()),
                };
                tracing::info!(presale_id = %presale.id, campaign_id = %presale.campaign_id, "pre-sale registered");
                metrics::counter!("PresalesRegistered").increment(1);
                // Only a call whose recording came first is looked up (the usual order, the
                // pre-sale first, reads nothing more).
                let presale = if recording_waits {
                    self.attach_waiting_recording(presale, now).await
                } else {
                    presale
                };
                Ok(presale_response(201, &presale).header("location", format!("/presales/{}", presale.id)))
            },
        )
        .await
    }

    /// A dialer may upload the recording before the agent registers the sale: bind the newest
    /// one now. A failure here leaves the pre-sale registered and PENDING_RECORDING (the
    /// recording stays stored by call id), so the client still gets its 201.
    async fn attach_waiting_recording(&self, presale: Presale, now: time::OffsetDateTime) -> Presale {
        let waiting = match self.presales.recordings(&presale.client_id, &presale.call_id).await {
            Ok(versions) => versions.into_iter().next(),
            Err(e) => {
                tracing::error!(presale_id = %presale.id, error = %e, "could not look for a waiting recording");
                None
            }
        };
        let Some(recording) = waiting else { return presale };
        match presales::attach(
            &self.presales,
            &self.campaigns,
            &presale.id,
            &recording,
            presales::Version::Stored,
            now,
        )
        .await
        {
            Ok(AttachOutcome::Attached(attached)) => {
                tracing::info!(presale_id = %attached.id, risk_score = ?attached.risk_score, "waiting recording attached");
                attached
            }
            Ok(other) => {
                tracing::warn!(presale_id = %presale.id, outcome = ?other, "waiting recording not attached");
                presale
            }
            Err(e) => {
                tracing::error!(presale_id = %presale.id, error = %e, "could not attach the waiting recording");
                presale
            }
        }
    }

    /// The pre-sale if this caller may see it. Anything else, including another client's
    /// record or another agent's, is a 404: existence is not disclosed.
    async fn visible(&self, request: &ApiRequest, principal: &Principal) -> Result<StoredPresale, ApiError> {
        let raw = request.path_param("id")?;
        let not_found = || ApiError::NotFound(format!("no pre-sale {raw}"));
        let id = PresaleId::parse(raw).map_err(|_| not_found())?;
        let stored = self.presales.get(&id).await?.ok_or_else(not_found)?;
        let presale = &stored.presale;
        let own_or_not_agent = !principal.is(Role::Agent) || presale.agent_id == principal.user_id;
        if principal.acts_for(&presale.client_id) && own_or_not_agent {
            Ok(stored)
        } else {
            Err(not_found())
        }
    }

    async fn get(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        let stored = self.visible(request, principal).await?;
        Ok(presale_response(200, &stored.presale))
    }

    async fn list(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        request.only_query_params(&["campaign", "status", "stale", "limit", "cursor"])?;
        let campaign_id = request
            .query_param("campaign")?
            .ok_or_else(|| ApiError::InvalidParameter {
                field: "campaign".into(),
                detail: "campaign is required: pre-sales are listed per campaign".into(),
            })?;
        let status = request
            .query_param("status")?
            .map(PresaleStatus::parse)
            .transpose()
            .map_err(|e| ApiError::InvalidParameter {
                field: "status".into(),
                detail: e.detail,
            })?;
        let limit = match request.query_param("limit")? {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                .ok_or_else(|| ApiError::InvalidParameter {
                    field: "limit".into(),
                    detail: format!("limit is a whole number from 1 to {MAX_PAGE_SIZE}"),
                })?,
        };
        let stale = match request.query_param("stale")? {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(ApiError::InvalidParameter {
                    field: "stale".into(),
                    detail: "stale is true or false".into(),
                });
            }
        };
        if stale && !principal.is_any(&[Role::Supervisor, Role::Admin]) {
            return Err(ApiError::Forbidden("stale pre-sales are listed for supervisors".into()));
        }
        if stale && status.is_some_and(|s| s != PresaleStatus::PendingRecording) {
            return Err(ApiError::InvalidParameter {
                field: "status".into(),
                detail: "stale pre-sales are those still PENDING_RECORDING".into(),
            });
        }
        let Some(catalog) = self
            .campaigns
            .catalog(campaign_id)
            .await?
            .filter(|c| principal.acts_for(&c.campaign.client_id))
        else {
            return Err(ApiError::NotFound(format!("no campaign {campaign_id}")));
        };
        // Still without a recording after the campaign's allowance: a sale with no call.
        let (status, created_before) = if stale {
            let wait = time::Duration::minutes(catalog.campaign.checks.max_recording_wait_minutes);
            (Some(PresaleStatus::PendingRecording), Some(self.clock.now() - wait))
        } else {
            (status, None)
        };
        let query = PresaleQuery {
            campaign_id: campaign_id.to_owned(),
            status,
            agent_id: principal.is(Role::Agent).then(|| principal.user_id.clone()),
            created_before,
            limit,
            cursor: request.query_param("cursor")?.map(str::to_owned),
        };
        let page = self.presales.list(&query).await?;
        Ok(ApiResponse::json(
            200,
            &json!({"items": page.items, "next_cursor": page.next_cursor}),
        ))
    }

    async fn correct(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        if !principal.is(Role::Agent) {
            return Err(ApiError::Forbidden(
                "only the agent who registered a pre-sale corrects it".into(),
            ));
        }
        let StoredPresale {
            mut presale,
            audit_head,
        } = self.visible(request, principal).await?;
        if let Some(expected) = request.header("if-match")
            && expected.trim().trim_start_matches("W/").trim_matches('"') != presale.version.to_string()
        {
            return Err(ApiError::PreconditionFailed(format!(
                "the pre-sale is at version {}, not {expected}",
                presale.version
            )));
        }
        if presale.status != PresaleStatus::NeedsCorrection {
            return Err(state_conflict(
                &presale,
                "only a pre-sale returned for correction (NEEDS_CORRECTION) can be changed",
            ));
        }
        let draft: CorrectionDraft = request.json_body(DEFAULT_BODY_LIMIT)?;
        let catalog = self.campaigns.catalog(&presale.campaign_id).await?.ok_or_else(|| {
            ApiError::Internal(format!(
                "campaign {} of pre-sale {} has no configuration",
                presale.campaign_id, presale.id
            ))
        })?;
        presale::apply_correction(&mut presale, &draft, &catalog).map_err(ApiError::Validation)?;
        let (expected_version, expected_status) = (presale.version, presale.status);
        let now = self.clock.now();
        let from = presale
            .transition(PresaleAction::SubmitCorrection, now)
            .map_err(|e| state_conflict(&presale, &e.to_string()))?;
        let requested = presale.correction.take();
        // The corrected customer and items are checked again, as on arrival: a new document
        // may be a duplicate purchase, a new name may conflict with the phone's history.
        if let Some(bound) = presale.recording.clone() {
            let versions = self.presales.recordings(&presale.client_id, &presale.call_id).await?;
            match versions.iter().find(|r| r.sha256 == bound.sha256) {
                Some(recording) => {
                    presales::recheck(&self.presales, &mut presale, recording, &catalog.campaign.checks).await?
                }
                None => tracing::error!(presale_id = %presale.id, "the bound recording is not stored; findings kept"),
            }
        }
        let codes: Vec<String> = presale.findings.iter().map(|f| f.code.clone()).collect();
        let changed: Vec<&str> = [
            ("customer", draft.customer.is_some()),
            ("items", draft.items.is_some()),
            ("notes", draft.notes.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, sent)| sent.then_some(name))
        .collect();
        let audit = AuditEntry::presale(&presale, now, &principal.actor(), "CORRECTED")
            .from_status(from)
            .reasons(requested.map(|r| r.reasons).unwrap_or_default())
            .details(json!({"changed": changed, "findings": codes, "risk_score": presale.risk_score}))
            .seal(&audit_head);
        match self
            .presales
            .save(&presale, expected_version, expected_status, &audit)
            .await
        {
            Ok(()) => Ok(presale_response(200, &presale)),
            Err(StoreError::Conflict(_)) => {
                let current = self
                    .presales
                    .get(&presale.id)
                    .await
                    .ok()
                    .flatten()
                    .map(|s| s.presale)
                    .unwrap_or(presale);
                Err(state_conflict(
                    &current,
                    "the pre-sale changed while you were correcting it; reload and retry",
                ))
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn presale_response(status: u16, presale: &Presale) -> ApiResponse {
    ApiResponse::json(status, presale).header("etag", format!("\"{}\"", presale.version))
}

fn state_conflict(presale: &Presale, detail: &str) -> ApiError {
    ApiError::Conflict {
        slug: "invalid-state",
        detail: detail.to_owned(),
        current: Some(json!({"status": presale.status, "version": presale.version})),
    }
}

#[cfg(test)]
mod tests;
