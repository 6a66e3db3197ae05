//! contact-tipify: every contact gets a disposition; every customer has one history across
//! channels; dialers ask whether a customer may be contacted now.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use backoffice_domain::Clock;
use backoffice_domain::catalog::CampaignCatalog;
use backoffice_domain::presale::PresaleId;
use backoffice_domain::principal::{Principal, Role};
use backoffice_domain::tipification::callback::{self, Callback, Cancel, CancelRefused};
use backoffice_domain::tipification::{
    self, Catalog, Contact, ContactContext, ContactDraft, CustomerKey, LinkedPresale, Node,
};
use backoffice_domain::validation::Invalid;
use backoffice_edge::http::request::DEFAULT_BODY_LIMIT;
use backoffice_edge::http::{ApiError, ApiRequest, ApiResponse, Invocation, respond};
use backoffice_store::config::CampaignDirectory;
use backoffice_store::contacts::{CallbackList, CallbackQuery, CallbackStore, ContactStore, Recorded};
use backoffice_store::presales::PresaleGet;
use backoffice_store::{ConflictKind, StoreError};
use serde_json::{Value, json};
use time::OffsetDateTime;

pub const ROUTES: &[&str] = &[
    "POST /contacts",
    "GET /customers/{key}/contacts",
    "GET /customers/{key}/contactability",
    "GET /campaigns/{id}/dispositions",
    "PUT /campaigns/{id}/dispositions",
    "GET /campaigns/{id}/contact-counters",
    "GET /callbacks",
    "POST /callbacks/{id}/cancel",
];

pub struct Tipify<S, C, P, K> {
    pub contacts: S,
    pub campaigns: C,
    pub presales: P,
    pub clock: K,
}

/// `POST /callbacks/{id}/cancel`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelDraft {
    reason: String,
}

/// Attempts at a write whose condition (the customer's pending callback) changed since it was
/// read, before the caller is told to retry.
const CALLBACK_ATTEMPTS: usize = 5;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogDraft {
    nodes: Vec<Node>,
    /// The version the admin edited; publishing over a newer one is a conflict.
    #[serde(default)]
    based_on_version: Option<u32>,
}

fn parse_time(raw: &str, field: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).map_err(|_| ApiError::InvalidParameter {
        field: field.into(),
        detail: format!("{field} is an RFC 3339 timestamp"),
    })
}

fn rfc3339(at: OffsetDateTime) -> Result<String, ApiError> {
    at.format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// `limit`: 1 to 100, 25 when absent.
fn page_limit(request: &ApiRequest) -> Result<u32, ApiError> {
    match request.query_param("limit")? {
        None => Ok(25),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::InvalidParameter {
                field: "limit".into(),
                detail: "limit is 1 to 100".into(),
            }),
    }
}

impl<S, C, P, K> Tipify<S, C, P, K>
where
    S: ContactStore + CallbackStore,
    C: CampaignDirectory,
    P: PresaleGet,
    K: Clock,
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
            "POST /contacts" => self.create(request, &principal).await,
            "GET /customers/{key}/contacts" => self.history(request, &principal).await,
            "GET /customers/{key}/contactability" => self.contactability(request, &principal).await,
            "GET /campaigns/{id}/dispositions" => self.get_catalog(request, &principal).await,
            "PUT /campaigns/{id}/dispositions" => self.put_catalog(request, &principal).await,
            "GET /campaigns/{id}/contact-counters" => self.counters(request, &principal).await,
            "GET /callbacks" => self.callbacks(request, &principal).await,
            "POST /callbacks/{id}/cancel" => self.cancel_callback(request, &principal).await,
            other => Err(ApiError::NotFound(format!("no route {other}"))),
        }
    }

    /// The campaign if the caller acts for its client; another client's campaign reads as none.
    async fn campaign(&self, campaign_id: &str, principal: &Principal) -> Result<Option<CampaignCatalog>, ApiError> {
        Ok(self
            .campaigns
            .catalog(campaign_id)
            .await?
            .filter(|c| principal.acts_for(&c.campaign.client_id)))
    }

    async fn campaign_or_404(&self, request: &ApiRequest, principal: &Principal) -> Result<CampaignCatalog, ApiError> {
        let id = request.path_param("id")?;
        self.campaign(id, principal)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no campaign {id}")))
    }

    /// The active catalog, or the one that ships with the project (version 0).
    async fn active_catalog(&self, campaign_id: &str) -> Result<Catalog, ApiError> {
        Ok(self
            .contacts
            .active_catalog(campaign_id)
            .await?
            .unwrap_or_else(|| Catalog {
                version: 0,
                nodes: tipification::default_nodes(),
            }))
    }

    async fn create(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        if !principal.is(Role::Agent) {
            return Err(ApiError::Forbidden("contacts are tipified by agents".into()));
        }
        let draft: ContactDraft = request.json_body(DEFAULT_BODY_LIMIT)?;
        let campaign = self
            .campaign(draft.campaign_id.trim(), principal)
            .await?
            .ok_or_else(|| {
                ApiError::Validation(vec![
                    Invalid::new(
                        "unknown_campaign",
                        format!("no campaign {:?} for your clients", draft.campaign_id),
                    )
                    .at("campaign_id"),
                ])
            })?;
        let catalog = self.active_catalog(&campaign.campaign.campaign_id).await?;
        let linked_presale = match draft.presale_id.as_deref().map(PresaleId::parse) {
            Some(Ok(id)) => self
                .presales
                .get(&id)
                .await?
                .map(|s| s.presale)
                .filter(|p| p.client_id == campaign.campaign.client_id)
                .map(|p| {
                    let document = p.customer.document.clone();
                    let mut keys = vec![
                        format!("phone:{}", p.customer.phone.as_str()),
                        format!("doc:{}:{}", document.kind(), document.number()),
                    ];
                    keys.extend(p.customer.email.as_ref().map(|e| format!("email:{}", e.as_str())));
                    LinkedPresale {
                        campaign_id: p.campaign_id,
                        agent_id: p.agent_id,
                        customer_keys: keys.iter().filter_map(|k| CustomerKey::parse(k).ok()).collect(),
                    }
                }),
            _ => None,
        };
        let now = self.clock.now();
        let ctx = ContactContext {
            id: uuid::Uuid::now_v7().to_string(),
            client_id: campaign.campaign.client_id.clone(),
            agent_id: principal.user_id.clone(),
            catalog: &catalog,
            linked_presale,
            zone: &campaign.campaign.timezone,
            now,
        };
        let contact = tipification::record(&draft, ctx).map_err(ApiError::Validation)?;
        match self.record_with_callbacks(&contact).await? {
            Recorded::Created => {
                tracing::info!(contact_id = %contact.id, campaign_id = %contact.campaign_id, disposition = %contact.disposition.code, "contact tipified");
                Ok(ApiResponse::json(201, &contact).header("location", format!("/contacts/{}", contact.id)))
            }
            // A resend of the same interaction: the first record, unchanged.
            Recorded::Duplicate(existing) => {
                Ok(ApiResponse::json(200, &existing).header("idempotent-replayed", "true"))
            }
        }
    }

    /// Record `contact` with what it does to its customer's pending callback in the campaign
    /// (complete it, supersede it, or schedule the first). The write is conditioned on the
    /// pending callback: first on there being none (most customers have none, so most contacts
    /// cost no read), and if that, or what was read, no longer holds, on what is read now.
    async fn record_with_callbacks(&self, contact: &Contact) -> Result<Recorded, ApiError> {
        let mut pending: Option<Callback> = None;
        for attempt in 0..CALLBACK_ATTEMPTS {
            if attempt > 0 {
                pending = self
                    .contacts
                    .pending_callback(&contact.client_id, contact.customer_key.as_str(), &contact.campaign_id)
                    .await?;
            }
            let changes = callback::on_contact(pending.as_ref(), contact, contact.recorded_at);
            match self.contacts.record(contact, &changes).await {
                Err(StoreError::Conflict(ConflictKind::StaleVersion)) => continue,
                Err(e) => return Err(e.into()),
                Ok(recorded) => {
                    if let (Recorded::Created, Some(closed)) = (&recorded, &changes.closed) {
                        tracing::info!(callback_id = %closed.id, status = %closed.status, contact_id = %contact.id, "callback closed by a contact");
                    }
                    return Ok(recorded);
                }
            }
        }
        Err(ApiError::Unavailable(
            "the customer's callbacks kept changing while this contact was recorded; resend it (it is safe)".into(),
        ))
    }

    fn customer_key(request: &ApiRequest) -> Result<CustomerKey, ApiError> {
        let raw = request.path_param("key")?;
        CustomerKey::parse(raw).map_err(|e| ApiError::InvalidParameter {
            field: "key".into(),
            detail: e.detail,
        })
    }

    /// The single client a read is about: the one asked for, or the caller's only one.
    fn client(request: &ApiRequest, principal: &Principal) -> Result<String, ApiError> {
        match (request.query_param("client")?, principal.clients.as_slice()) {
            (Some(client), _) if principal.acts_for(client) => Ok(client.to_owned()),
            (Some(client), _) => Err(ApiError::NotFound(format!("no client {client}"))),
            (None, [only]) => Ok(only.clone()),
            (None, []) => Err(ApiError::Forbidden("the token names no client".into())),
            (None, _) => Err(ApiError::InvalidParameter {
                field: "client".into(),
                detail: "you act for several clients: say which".into(),
            }),
        }
    }

    async fn history(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        request.only_query_params(&["client", "limit", "cursor"])?;
        let key = Self::customer_key(request)?;
        let client = Self::client(request, principal)?;
        let limit = page_limit(request)?;
        let page = self
            .contacts
            .history(&client, key.as_str(), limit, request.query_param("cursor")?)
            .await?;
        let mut items = Vec::with_capacity(page.items.len());
        for contact in page.items {
            let presale_status = match contact.presale_id.as_deref().map(PresaleId::parse) {
                Some(Ok(id)) => self.presales.get(&id).await?.map(|s| s.presale.status),
                _ => None,
            };
            let mut value = serde_json::to_value(&contact).map_err(|e| ApiError::Internal(e.to_string()))?;
            value["presale_status"] = json!(presale_status);
            items.push(value);
        }
        Ok(ApiResponse::json(
            200,
            &json!({"customer_key": key, "items": items, "next_cursor": page.next_cursor}),
        ))
    }

    async fn contactability(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        request.only_query_params(&["campaign"])?;
        let key = Self::customer_key(request)?;
        let campaign_id = request
            .query_param("campaign")?
            .ok_or_else(|| ApiError::InvalidParameter {
                field: "campaign".into(),
                detail: "campaign is required".into(),
            })?;
        let campaign = self
            .campaign(campaign_id, principal)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no campaign {campaign_id}")))?;
        let now = self.clock.now();
        let state = self
            .contacts
            .customer_state(
                &campaign.campaign.client_id,
                key.as_str(),
                campaign_id,
                campaign.campaign.timezone.local_date(now),
            )
            .await?;
        let answer = tipification::contactability(
            state.do_not_contact.as_deref(),
            state.attempts_today,
            i64::from(campaign.campaign.max_attempts_per_day),
            state.next_callback,
            now,
        );
        Ok(ApiResponse::json(200, &answer))
    }

    async fn get_catalog(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        let campaign = self.campaign_or_404(request, principal).await?;
        let catalog = self.active_catalog(&campaign.campaign.campaign_id).await?;
        Ok(ApiResponse::json(200, &catalog))
    }

    async fn put_catalog(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        if !principal.is(Role::Admin) {
            return Err(ApiError::Forbidden("only admins replace a disposition catalog".into()));
        }
        let campaign = self.campaign_or_404(request, principal).await?;
        let draft: CatalogDraft = request.json_body(DEFAULT_BODY_LIMIT)?;
        tipification::validate_catalog(&draft.nodes).map_err(ApiError::Validation)?;
        let current = self
            .contacts
            .active_catalog(&campaign.campaign.campaign_id)
            .await?
            .map(|c| c.version);
        if draft
            .based_on_version
            .is_some_and(|v| Some(v) != current && !(v == 0 && current.is_none()))
        {
            return Err(ApiError::Conflict {
                slug: "stale-version",
                detail: "the catalog changed since you read it".into(),
                current: Some(json!({"version": current.unwrap_or(0)})),
            });
        }
        match self
            .contacts
            .publish_catalog(&campaign.campaign.campaign_id, &draft.nodes, current, self.clock.now())
            .await
        {
            Ok(catalog) => Ok(ApiResponse::json(200, &catalog)),
            Err(StoreError::Conflict(_)) => Err(ApiError::Conflict {
                slug: "stale-version",
                detail: "another catalog was published meanwhile".into(),
                current: None,
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn counters(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        if !principal.is_any(&[Role::Supervisor, Role::Admin]) {
            return Err(ApiError::Forbidden("contact counters are for supervisors".into()));
        }
        request.only_query_params(&["day"])?;
        let campaign = self.campaign_or_404(request, principal).await?;
        let today = campaign.campaign.timezone.local_date(self.clock.now());
        let day = request.date_param("day")?.unwrap_or(today);
        let rows = self.contacts.counters(&campaign.campaign.campaign_id, day).await?;
        let total = rows
            .iter()
            .find(|r| r.sk == "TOTAL")
            .map(|r| json!(r.values))
            .unwrap_or_else(|| json!({}));
        let agents: Vec<Value> = rows
            .iter()
            .filter_map(|r| {
                r.sk.strip_prefix("AGENT#")
                    .map(|a| json!({"agent_id": a, "counters": r.values}))
            })
            .collect();
        Ok(ApiResponse::json(
            200,
            &json!({"campaign_id": campaign.campaign.campaign_id, "day": day.to_string(), "total": total, "agents": agents}),
        ))
    }

    /// Scheduled callbacks, soonest due first, a page at a time: an agent's due list (agents
    /// see their own), or with `campaign` every agent's in the campaign (supervisors, admins),
    /// and with `overdue=true` those whose due time has passed.
    async fn callbacks(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        request.only_query_params(&[
            "agent",
            "due_before",
            "client",
            "campaign",
            "overdue",
            "limit",
            "cursor",
        ])?;
        let limit = page_limit(request)?;
        let cursor = request.query_param("cursor")?.map(str::to_owned);
        let overdue = match request.query_param("overdue")? {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(ApiError::InvalidParameter {
                    field: "overdue".into(),
                    detail: "overdue is true or false".into(),
                });
            }
        };
        let due_before = request
            .query_param("due_before")?
            .map(|raw| parse_time(raw, "due_before"))
            .transpose()?;
        let now = self.clock.now();
        let campaign_id = request.query_param("campaign")?;
        if overdue || campaign_id.is_some() {
            if !principal.is_any(&[Role::Supervisor, Role::Admin]) {
                return Err(ApiError::Forbidden(
                    "a campaign's callbacks are for supervisors and admins; agents list their own".into(),
                ));
            }
            let campaign_id = campaign_id.ok_or_else(|| ApiError::InvalidParameter {
                field: "campaign".into(),
                detail: "overdue callbacks are listed per campaign: say which".into(),
            })?;
            if request.query_param("agent")?.is_some() {
                return Err(ApiError::InvalidParameter {
                    field: "agent".into(),
                    detail: "a campaign's list shows every agent's callbacks: leave out agent or campaign".into(),
                });
            }
            if overdue && due_before.is_some() {
                return Err(ApiError::InvalidParameter {
                    field: "due_before".into(),
                    detail: "overdue callbacks are those due before now: leave out due_before".into(),
                });
            }
            let client = request.query_param("client")?;
            let campaign = self
                .campaign(campaign_id, principal)
                .await?
                .filter(|c| client.is_none_or(|client| client == c.campaign.client_id))
                .ok_or_else(|| ApiError::NotFound(format!("no campaign {campaign_id}")))?;
            // Overdue: due strictly before now.
            let due = if overdue {
                Some(now - time::Duration::nanoseconds(1))
            } else {
                due_before
            };
            let page = self
                .contacts
                .callbacks(&CallbackQuery {
                    list: CallbackList::Campaign {
                        campaign_id: campaign.campaign.campaign_id.clone(),
                    },
                    due_before: due,
                    limit,
                    cursor,
                })
                .await?;
            return Ok(ApiResponse::json(
                200,
                &json!({
                    "campaign_id": campaign.campaign.campaign_id,
                    "overdue": overdue,
                    "due_before": due.map(rfc3339).transpose()?,
                    "items": page.items,
                    "next_cursor": page.next_cursor,
                }),
            ));
        }
        let agent = request.query_param("agent")?.unwrap_or(&principal.user_id).to_owned();
        if agent.is_empty() || agent.len() > 128 {
            return Err(ApiError::InvalidParameter {
                field: "agent".into(),
                detail: "agent is a user id, 1 to 128 characters".into(),
            });
        }
        if principal.is(Role::Agent) && agent != principal.user_id {
            return Err(ApiError::Forbidden("agents see their own callbacks".into()));
        }
        let client = Self::client(request, principal)?;
        let due_before = due_before.unwrap_or(now);
        let page = self
            .contacts
            .callbacks(&CallbackQuery {
                list: CallbackList::Agent {
                    client_id: client,
                    agent_id: agent.clone(),
                },
                due_before: Some(due_before),
                limit,
                cursor,
            })
            .await?;
        Ok(ApiResponse::json(
            200,
            &json!({
                "agent_id": agent,
                "due_before": rfc3339(due_before)?,
                "items": page.items,
                "next_cursor": page.next_cursor,
            }),
        ))
    }

    /// `POST /callbacks/{id}/cancel`: its agent, or a supervisor or admin of its client, with a
    /// reason. Cancelling a cancelled callback again answers it unchanged.
    async fn cancel_callback(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        if !callback::may_cancel(principal) {
            return Err(ApiError::Forbidden(
                "callbacks are cancelled by their agent, a supervisor or an admin".into(),
            ));
        }
        let id = request.path_param("id")?;
        let visible = |found: Option<Callback>| {
            found
                .filter(|c| callback::visible_to(principal, c))
                .ok_or_else(|| ApiError::NotFound(format!("no callback {id}")))
        };
        let mut current = visible(self.contacts.callback(id).await?)?;
        let draft: CancelDraft = request.json_body(DEFAULT_BODY_LIMIT)?;
        for _ in 0..CALLBACK_ATTEMPTS {
            match current.cancel(&principal.user_id, &draft.reason, self.clock.now()) {
                Ok(Cancel::Cancelled(cancelled)) => match self.contacts.close_callback(&cancelled).await {
                    Ok(()) => {
                        tracing::info!(callback_id = %cancelled.id, "callback cancelled");
                        return Ok(ApiResponse::json(200, &cancelled));
                    }
                    // A contact or another cancellation got there first: decide again on what it left.
                    Err(StoreError::Conflict(_)) => current = visible(self.contacts.callback(id).await?)?,
                    Err(e) => return Err(e.into()),
                },
                Ok(Cancel::AlreadyCancelled) => {
                    return Ok(ApiResponse::json(200, &current).header("idempotent-replayed", "true"));
                }
                Err(CancelRefused::Reason(error)) => return Err(ApiError::Validation(vec![error])),
                Err(refused @ CancelRefused::Closed(_)) => {
                    return Err(ApiError::Conflict {
                        slug: "callback-closed",
                        detail: refused.to_string(),
                        current: Some(json!({"id": current.id, "status": current.status, "closed": current.closed})),
                    });
                }
            }
        }
        Err(ApiError::Unavailable(
            "the customer's callbacks kept changing; retry the cancellation".into(),
        ))
    }
}

#[cfg(test)]
mod tests;
