//! client-billing: each month, each client company is billed for what the operation verifiably
//! did in its campaigns, priced by its contract (ADR 0027) and closed once (ADR 0028).
//!
//! - `POST /billing/runs?client=&month=YYYY-MM` (admins) and the schedule on the 1st close a
//!   month that has ended: its billable events (verified sales by approval day, effective
//!   contacts and talk time by contact day, late ones recorded since the previous close, and
//!   reversals of billed sales no longer approved) priced, the evidence CSV written beside the
//!   client's documents, the run stored. A month closed already answers as stored.
//! - `GET /billing/runs?client=` (finance, admins): the closed runs; `GET /billing/runs/{id}`
//!   (`{client}-{YYYY-MM}`): one, with a 15-minute link to its evidence, or, for a month not
//!   closed yet, a preview computed now.
//! - A closed run that charged anything asks invoice-issue for the call center's invoice
//!   (`ServiceInvoiceRequested`, request id = the run id, ADR 0028); until that invoice exists,
//!   closing the month again (`POST`, the schedule) sends the request again.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use backoffice_domain::Clock;
use backoffice_domain::client_billing::{
    self, BillableEvent, BillableKind, BilledItem, Contract, MonthPricing, PricingError, ReversalCredit,
};
use backoffice_domain::credit_note::CreditNoteReason;
use backoffice_domain::events::{CreditNoteRequested, OutboxMessage, SaleId, ServiceInvoiceRequested, ServiceLine};
use backoffice_domain::presale::{PresaleId, PresaleStatus};
use backoffice_domain::principal::{Principal, Role};
use backoffice_domain::sales_register::Period;
use backoffice_domain::tipification::Family;
use backoffice_domain::zone::CampaignZone;
use backoffice_edge::http::{ApiError, ApiRequest, ApiResponse, Invocation, respond};
use backoffice_edge::relay::{PublishError, Publisher};
use backoffice_edge::schedule;
use backoffice_store::billing::{BilledSale, BillingRuns, ClosedRun, run_id};
use backoffice_store::config::{ClientDirectory, ContractAdmin, ContractDirectory, ContractWrite, StoredContract};
use backoffice_store::credit_notes::CreditNoteStore;
use backoffice_store::invoices::InvoiceStore;
use backoffice_store::kpis::KpiInputs;
use backoffice_store::payments::PaymentLedger;
use backoffice_store::presales::PresaleBatch;
use backoffice_store::reconciliation::ApprovedSales;
use backoffice_store::register::RegisterFiles;
use backoffice_store::{ConflictKind, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::{Date, Duration, OffsetDateTime};

pub const ROUTES: &[&str] = &[
    "POST /billing/runs",
    "GET /billing/runs",
    "GET /billing/runs/{id}",
    "GET /clients/{id}/contract",
    "PUT /clients/{id}/contract",
];

/// How long before its month's start a pre-sale approved in the month may have been registered.
const REGISTRATION_WINDOW: Duration = Duration::days(120);
/// How many months after the run that billed it a sale is still reversed when it is rejected
/// or its invoice credited; later, finance credits by hand (ADR 0028).
const REVERSAL_MONTHS: i32 = 3;
/// How long the evidence link works.
const LINK_TTL: StdDuration = StdDuration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("{0}")]
    Refused(String),
    #[error("client {0} has no contract")]
    NoContract(String),
    #[error(transparent)]
    Pricing(#[from] PricingError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the invoice request was not sent: {0}")]
    Publish(#[from] PublishError),
    #[error("the invoice request cannot be sealed: {0}")]
    Seal(#[from] serde_json::Error),
}

impl From<BillingError> for ApiError {
    fn from(error: BillingError) -> Self {
        match error {
            BillingError::Refused(detail) => ApiError::InvalidParameter {
                field: "month".into(),
                detail,
            },
            BillingError::NoContract(client) => ApiError::NotFound(format!("client {client} has no contract")),
            BillingError::Pricing(e) => ApiError::InvalidBody {
                field: "contract".into(),
                detail: format!("the client's contract cannot price this month: {e}"),
            },
            BillingError::Store(e) => e.into(),
            BillingError::Publish(_) | BillingError::Seal(_) => ApiError::Internal(error.to_string()),
        }
    }
}

/// The schedule's `{}` closes last month for every client with a contract; `client_id` and
/// `month` narrow a run started by hand.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub month: Option<String>,
}

impl CloseRequest {
    /// The schedule's event or a hand-written one (`backoffice_edge::schedule::request`).
    pub fn from_event(payload: &Value) -> Result<CloseRequest, BillingError> {
        schedule::request(payload).map_err(|e| BillingError::Refused(e.to_string()))
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CloseReport {
    pub closed: Vec<String>,
    pub already_closed: Vec<String>,
    pub failed: Vec<String>,
}

pub struct Billing<R, K, A, P, D, C, I, Q> {
    pub runs: R,
    /// The contacts of a campaign-day (the KPI day attempts).
    pub contacts: K,
    pub approved: A,
    pub presales: P,
    pub directory: D,
    /// The invoices bucket: evidence CSVs beside the client's documents.
    pub files: Arc<dyn RegisterFiles>,
    pub clock: C,
    /// The call center's zone: its months.
    pub zone: CampaignZone,
    /// The invoices table: whether a run's invoice exists, and its status.
    pub invoices: I,
    /// The billing queue: the runs' invoice requests.
    pub publisher: Q,
    /// The call center's own client id: its billing profile is the seller of the runs' invoices.
    pub call_center_id: String,
}

impl<R, K, A, P, D, C, I, Q> Billing<R, K, A, P, D, C, I, Q>
where
    R: BillingRuns,
    K: KpiInputs,
    A: ApprovedSales,
    P: PresaleBatch,
    D: ContractDirectory + ContractAdmin + ClientDirectory,
    C: Clock,
    I: InvoiceStore + CreditNoteStore + PaymentLedger,
    Q: Publisher,
{
    fn this_month(&self) -> Period {
        Period::containing(self.zone.local_date(self.clock.now()))
    }

    // ----- the schedule -----------------------------------------------------------------------

    /// Close last month (or the request's) for every client with a contract; one client's
    /// failure is logged and does not stop the others. The schedule runs it daily: on the 1st it
    /// closes the month, later a client whose close failed is closed once fixed, and runs closed
    /// already send again the invoice or credit notes they still owe (ADR 0028).
    pub async fn close_all(&self, request: &CloseRequest) -> Result<CloseReport, BillingError> {
        let month = match &request.month {
            Some(raw) => Period::parse(raw).map_err(|e| BillingError::Refused(e.to_string()))?,
            None => previous(self.this_month()),
        };
        let clients = match &request.client_id {
            Some(id) => vec![id.clone()],
            None => self.directory.clients().await?,
        };
        let mut report = CloseReport::default();
        for client_id in clients {
            if self.directory.contract(&client_id).await?.is_none() {
                continue;
            }
            match self.close_run(&client_id, month).await {
                Ok((run, true)) => report.closed.push(run.id()),
                // Closed before: only what it still owes was sent again.
                Ok((run, false)) => report.already_closed.push(run.id()),
                Err(error) => {
                    tracing::error!(client_id, %month, error_kind = "billing_run_failed", %error, "the month could not be closed");
                    report.failed.push(run_id(&client_id, &month.to_string()));
                }
            }
        }
        metrics::counter!("BillingRunsClosed").increment(report.closed.len() as u64);
        Ok(report)
    }

    // ----- one run ----------------------------------------------------------------------------

    /// Close `month` for `client_id`: priced from what is recorded now, stored once.
    pub async fn close(&self, client_id: &str, month: Period) -> Result<ClosedRun, BillingError> {
        self.close_run(client_id, month).await.map(|(run, _)| run)
    }

    /// [`Billing::close`], and whether this call closed it (`false`: it was closed before).
    async fn close_run(&self, client_id: &str, month: Period) -> Result<(ClosedRun, bool), BillingError> {
        let runs = self.runs.runs(client_id).await?;
        if let Some(run) = runs.iter().find(|r| r.month == month.to_string()) {
            self.request_invoice(run).await;
            return Ok((run.clone(), false));
        }
        if month >= self.this_month() {
            return Err(BillingError::Refused(format!(
                "{month} has not ended: only ended months are closed (a preview is at GET /billing/runs/{})",
                run_id(client_id, &month.to_string())
            )));
        }
        let previous_run = runs.last();
        if let Some(last) = previous_run {
            let expected = next(Period::parse(&last.month).map_err(|e| StoreError::Corrupt(e.to_string()))?);
            if month != expected {
                return Err(BillingError::Refused(format!(
                    "months close in order: {expected} is the next one for {client_id}"
                )));
            }
        }
        let contract = self.contract(client_id).await?;
        let now = self.clock.now();
        let (pricing, reversed) = self
            .price(client_id, &contract, month, previous_run.map(|r| r.closed_at), now)
            .await?;
        // Each reversed sale is credited on the invoice of the run that billed it.
        let (credits, uncredited) = client_billing::reversal_credits(&reversed, |billed_in| {
            runs.iter()
                .find(|r| r.month == billed_in.to_string())
                .map(|r| &r.pricing)
        })?;
        if !uncredited.is_empty() {
            tracing::error!(client_id, %month, ?uncredited, error_kind = "billing_reversal_uncredited", "reversed items billed on no single invoice line: credit them by hand");
        }
        let csv = client_billing::evidence_csv(&pricing)?;
        let evidence_key = format!("billing/{client_id}/{month}/evidencia-{client_id}-{month}.csv");
        self.files
            .put_register(&evidence_key, csv.into_bytes(), "client-billing")
            .await?;
        let mut sales: Vec<BilledSale> = pricing
            .billed
            .iter()
            .filter(|item| item.event.kind == BillableKind::VerifiedSale)
            .map(|item| BilledSale {
                item: item.clone(),
                reversed_in: None,
            })
            .collect();
        sales.extend(reversed.into_iter().map(|item| BilledSale {
            item,
            reversed_in: Some(month.to_string()),
        }));
        // Named before the close: a stored run that charged anything is owed its invoice.
        let invoice_request = (pricing.charges.amount_minor() > 0).then(|| run_id(client_id, &month.to_string()));
        let run = ClosedRun {
            client_id: client_id.to_owned(),
            month: month.to_string(),
            closed_at: now,
            pricing,
            evidence_key,
            invoice_request,
            credits,
        };
        let (run, closed_now) = match self.runs.close(&run, &sales).await {
            Ok(()) => {
                tracing::info!(client_id, %month, charges = %run.pricing.charges, "billing run closed");
                (run, true)
            }
            // Closed meanwhile by another caller: theirs is the run.
            Err(StoreError::Conflict(ConflictKind::AlreadyExists)) => (
                self.runs
                    .runs(client_id)
                    .await?
                    .into_iter()
                    .find(|r| r.month == month.to_string())
                    .ok_or(BillingError::Store(StoreError::Conflict(ConflictKind::AlreadyExists)))?,
                false,
            ),
            Err(e) => return Err(e.into()),
        };
        self.request_invoice(&run).await;
        Ok((run, closed_now))
    }

    /// Ask for the run's invoice and its credit notes unless they exist already. A failure is
    /// logged, not returned: the run is closed, and closing it again sends them again.
    async fn request_invoice(&self, run: &ClosedRun) {
        if let Err(error) = self.send_invoice_request(run).await {
            tracing::error!(run_id = %run.id(), error_kind = "billing_invoice_request_failed", %error, "the run's invoice was not requested; closing it again retries");
        }
        for credit in &run.credits {
            if let Err(error) = self.send_credit_request(run, credit).await {
                tracing::error!(run_id = %run.id(), billed_in = %credit.billed_in, error_kind = "billing_invoice_request_failed", %error, "the run's credit note was not requested; closing it again retries");
            }
        }
    }

    /// The credit note on the invoice of the run that billed `credit`'s sales, unless it exists.
    async fn send_credit_request(&self, run: &ClosedRun, credit: &ReversalCredit) -> Result<(), BillingError> {
        let request_id = run.credit_request(credit);
        if self
            .invoices
            .credit_note_for_request(&self.call_center_id, &request_id)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let credited_run = run_id(&run.client_id, &credit.billed_in.to_string());
        let Some(invoice_id) = self.invoices.invoice_for_run(&credited_run).await? else {
            return Err(BillingError::Refused(format!(
                "run {credited_run} has no invoice yet: its credit waits for it"
            )));
        };
        let sales = credit.keys.len();
        let request = CreditNoteRequested {
            request_id: request_id.clone(),
            client_id: self.call_center_id.clone(),
            invoice_id,
            // A verified sale billed and then rejected or returned: the service is worth less.
            reason: CreditNoteReason::ValueDecrease,
            description: format!(
                "Reversión de {sales} venta{} verificada{} facturada{} en {} (corrida {})",
                plural(sales),
                plural(sales),
                plural(sales),
                credit.billed_in,
                run.id()
            ),
            lines: credit.lines.clone(),
            requested_by: "client-billing".into(),
        };
        let message = OutboxMessage::seal(&request, &request_id, self.clock.now())?;
        self.publisher.publish(&message).await?;
        tracing::info!(run_id = %run.id(), request_id, "the run's credit note requested");
        Ok(())
    }

    async fn send_invoice_request(&self, run: &ClosedRun) -> Result<(), BillingError> {
        let Some(request_id) = &run.invoice_request else {
            return Ok(());
        };
        if self.invoices.invoice_for_run(request_id).await?.is_some() {
            return Ok(());
        }
        let lines = run
            .pricing
            .invoice_charges()?
            .into_iter()
            .map(|charge| ServiceLine {
                description: charge.description,
                quantity: charge.quantity,
                unit_price: charge.unit_price,
            })
            .collect();
        let request = ServiceInvoiceRequested {
            request_id: request_id.clone(),
            seller_id: self.call_center_id.clone(),
            client_id: run.client_id.clone(),
            month: run.month.clone(),
            evidence_key: run.evidence_key.clone(),
            payment_terms_days: run.pricing.payment_terms_days,
            lines,
        };
        let message = OutboxMessage::seal(&request, request_id, self.clock.now())?;
        self.publisher.publish(&message).await?;
        tracing::info!(run_id = %request_id, "the run's invoice requested");
        Ok(())
    }

    /// The run's invoice once issued: its number and where SUNAT left it.
    async fn invoice_json(&self, run: &ClosedRun) -> Result<Value, StoreError> {
        let Some(request_id) = &run.invoice_request else {
            return Ok(Value::Null);
        };
        let Some(invoice_id) = self.invoices.invoice_for_run(request_id).await? else {
            return Ok(Value::Null);
        };
        let stored = self.invoices.load(&self.call_center_id, &invoice_id).await?;
        let status = stored
            .as_ref()
            .and_then(|s| s.electronic.as_ref())
            .map(|e| e.status.as_str())
            .unwrap_or("ISSUED");
        let emailed = stored.as_ref().is_some_and(|s| s.email.is_some());
        let totals = stored.as_ref().map(|s| s.invoice.totals);
        let amount = |f: fn(&backoffice_domain::invoice::Totals) -> backoffice_domain::money::Money| {
            totals.as_ref().map(|t| f(t).to_decimal_string())
        };
        Ok(json!({
            "id": invoice_id, "issuer": self.call_center_id, "status": status, "emailed": emailed,
            "subtotal": amount(|t| t.subtotal), "tax": amount(|t| t.tax), "total": amount(|t| t.total),
        }))
    }

    async fn contract(&self, client_id: &str) -> Result<Contract, BillingError> {
        self.directory
            .contract(client_id)
            .await?
            .ok_or_else(|| BillingError::NoContract(client_id.to_owned()))
    }

    /// The month priced as of `until`: its events recorded before `until`, the late ones
    /// recorded since `previous_close`, and reversals of billed sales no longer approved (which
    /// it returns, to be marked).
    async fn price(
        &self,
        client_id: &str,
        contract: &Contract,
        month: Period,
        previous_close: Option<OffsetDateTime>,
        until: OffsetDateTime,
    ) -> Result<(MonthPricing, Vec<BilledItem>), BillingError> {
        // Late events can only come from the month before, and only once a run closed it.
        let late_from = previous_close.map(|_| previous(month).first_day());
        let first_day = late_from.unwrap_or(month.first_day());
        let belongs = |day: Date, recorded: OffsetDateTime| {
            recorded < until
                && (month.contains(day)
                    || (day >= first_day && day < month.first_day() && previous_close.is_some_and(|c| recorded >= c)))
        };
        let campaigns: BTreeSet<&String> = contract.versions.iter().flat_map(|v| v.campaigns.keys()).collect();
        let mut events = Vec::new();
        for campaign_id in &campaigns {
            let mut day = first_day;
            while day <= month.last_day() {
                for contact in self.contacts.attempts(campaign_id, day).await? {
                    if contact.client_id != client_id || !belongs(day, contact.recorded_at) {
                        continue;
                    }
                    let event = |kind, key: String, quantity| BillableEvent {
                        key,
                        kind,
                        client_id: client_id.to_owned(),
                        campaign_id: contact.campaign_id.clone(),
                        day,
                        presale_id: contact.presale_id.clone(),
                        sale_id: None,
                        contact_id: Some(contact.id.clone()),
                        agent_id: contact.agent_id.clone(),
                        sku_family: None,
                        quantity,
                    };
                    let terms = contract.version_on(day).and_then(|v| v.campaigns.get(*campaign_id));
                    if contact.disposition.family == Family::Effective
                        && terms.is_some_and(|t| t.effective_contact.is_some())
                    {
                        events.push(event(
                            BillableKind::EffectiveContact,
                            format!("CONTACT#{}", contact.id),
                            1,
                        ));
                    }
                    let talk = u64::from(contact.talk_seconds.unwrap_or(0));
                    if talk > 0 && terms.is_some_and(|t| t.talk_hour.is_some()) {
                        events.push(event(BillableKind::TalkTime, format!("TALK#{}", contact.id), talk));
                    }
                }
                let Some(next_day) = day.next_day() else { break };
                day = next_day;
            }
        }
        // Verified sales, by approval day.
        let window_start = self.zone.start_of(first_day).unwrap_or(until) - REGISTRATION_WINDOW;
        let approved: Vec<PresaleId> = self
            .approved
            .approved_created_between(window_start, until)
            .await?
            .into_iter()
            .filter(|sale| sale.client_id == client_id && campaigns.contains(&sale.campaign_id))
            .filter(|sale| belongs(self.zone.local_date(sale.approved_at), sale.approved_at))
            .map(|sale| sale.presale_id)
            .collect();
        for presale in self.presales.presales(&approved).await? {
            let Some(decision) = presale
                .decision
                .as_ref()
                .filter(|_| presale.status == PresaleStatus::Approved)
            else {
                continue;
            };
            events.push(BillableEvent {
                key: format!("SALE#{}", presale.id),
                kind: BillableKind::VerifiedSale,
                client_id: client_id.to_owned(),
                campaign_id: presale.campaign_id.clone(),
                day: self.zone.local_date(decision.at),
                presale_id: Some(presale.id.to_string()),
                sale_id: Some(SaleId::of(&presale.id).as_str().to_owned()),
                contact_id: None,
                agent_id: presale.agent_id.clone(),
                // Priced by the SKU of its first line (ADR 0028).
                sku_family: presale.items.first().map(|item| item.sku.clone()),
                quantity: 1,
            });
        }
        // Billed sales no longer approved, or whose sales invoice was credited in full (a return),
        // are reversed, once, for a few months after the run that billed them.
        let oldest = (0..REVERSAL_MONTHS).fold(month, |m, _| previous(m));
        let billed: Vec<(BilledItem, PresaleId)> = self
            .runs
            .billed_sales(client_id)
            .await?
            .into_iter()
            .filter(|sale| sale.reversed_in.is_none() && sale.item.month >= oldest)
            .filter_map(|sale| {
                let id = sale
                    .item
                    .event
                    .presale_id
                    .as_deref()
                    .and_then(|id| PresaleId::parse(id).ok())?;
                Some((sale.item, id))
            })
            .collect();
        let ids: Vec<PresaleId> = billed.iter().map(|(_, id)| id.clone()).collect();
        let still_approved: BTreeSet<PresaleId> = self
            .presales
            .presales(&ids)
            .await?
            .into_iter()
            .filter(|p| p.status == PresaleStatus::Approved)
            .map(|p| p.id)
            .collect();
        let mut reversed = Vec::new();
        for (item, id) in billed {
            if !still_approved.contains(&id) || self.credited_in_full(client_id, &id).await? {
                reversed.push(item);
            }
        }
        let pricing = client_billing::price_month(contract, month, &events, &reversed)?;
        Ok((pricing, reversed))
    }

    /// Whether the sale's own invoice was credited in full (the customer returned it).
    async fn credited_in_full(&self, client_id: &str, presale: &PresaleId) -> Result<bool, StoreError> {
        let Some(invoice_id) = self.invoices.invoice_for_sale(&SaleId::of(presale)).await? else {
            return Ok(false);
        };
        Ok(self
            .invoices
            .account(client_id, &invoice_id)
            .await?
            .is_some_and(|a| a.account.total_minor > 0 && a.account.credited_minor >= a.account.total_minor))
    }

    // ----- HTTP -------------------------------------------------------------------------------

    pub async fn handle(&self, event: ApiGatewayV2httpRequest, invocation: &Invocation) -> ApiGatewayV2httpResponse {
        respond(event, invocation, async |request: &ApiRequest| {
            self.route(request).await
        })
        .await
    }

    async fn route(&self, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let principal = request.principal()?;
        match request.route_key.as_str() {
            "POST /billing/runs" => self.post_run(request, &principal).await,
            "GET /billing/runs" => self.list(request, &principal).await,
            "GET /billing/runs/{id}" => self.read(request, &principal).await,
            "GET /clients/{id}/contract" => self.get_contract(request, &principal).await,
            "PUT /clients/{id}/contract" => self.put_contract(request, &principal).await,
            other => Err(ApiError::NotFound(format!("no route {other}"))),
        }
    }

    /// The client the caller asks about: `client`, or the only one its token lists.
    fn client<'a>(&self, request: &'a ApiRequest, principal: &'a Principal) -> Result<&'a str, ApiError> {
        let client = match request.query_param("client")? {
            Some(client) => client,
            None => match principal.clients.as_slice() {
                [only] => only.as_str(),
                _ => {
                    return Err(ApiError::InvalidParameter {
                        field: "client".into(),
                        detail: "client is required when your token lists several clients".into(),
                    });
                }
            },
        };
        if !principal.acts_for(client) {
            return Err(ApiError::NotFound(format!("no client {client}")));
        }
        Ok(client)
    }

    async fn post_run(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        if !principal.is(Role::Admin) {
            return Err(ApiError::Forbidden("closing a billing month is for admins".into()));
        }
        request.only_query_params(&["client", "month"])?;
        let client = self.client(request, principal)?;
        let raw = request
            .query_param("month")?
            .ok_or_else(|| ApiError::InvalidParameter {
                field: "month".into(),
                detail: "month is required, YYYY-MM".into(),
            })?;
        let month = Period::parse(raw).map_err(|e| ApiError::InvalidParameter {
            field: "month".into(),
            detail: e.to_string(),
        })?;
        let (run, closed_now) = self.close_run(client, month).await?;
        let status = if closed_now { 201 } else { 200 };
        Ok(ApiResponse::json(status, &self.run_json(&run).await?))
    }

    async fn list(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        if !principal.is_any(&[Role::Finance, Role::Admin]) {
            return Err(ApiError::Forbidden("billing runs are for finance and admins".into()));
        }
        request.only_query_params(&["client"])?;
        let client = self.client(request, principal)?;
        let runs: Vec<Value> = self
            .runs
            .runs(client)
            .await?
            .iter()
            .rev()
            .map(|run| summary(run, "CLOSED"))
            .collect();
        let current = run_id(client, &self.this_month().to_string());
        Ok(ApiResponse::json(
            200,
            &json!({"client": client, "runs": runs, "preview": current}),
        ))
    }

    async fn read(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        if !principal.is_any(&[Role::Finance, Role::Admin]) {
            return Err(ApiError::Forbidden("billing runs are for finance and admins".into()));
        }
        request.only_query_params(&[])?;
        let id = request.path_param("id")?;
        let unknown = || ApiError::NotFound(format!("no billing run {id}"));
        // `{client}-{YYYY-MM}`: the month is the last seven characters.
        let split = id
            .len()
            .checked_sub(8)
            .filter(|at| id.get(*at..*at + 1) == Some("-"))
            .ok_or_else(unknown)?;
        let (client, month) = (&id[..split], &id[split + 1..]);
        let month = Period::parse(month).map_err(|_| unknown())?;
        if !principal.acts_for(client) {
            return Err(unknown());
        }
        if let Some(run) = self
            .runs
            .runs(client)
            .await?
            .into_iter()
            .find(|r| r.month == month.to_string())
        {
            return Ok(ApiResponse::json(200, &self.run_json(&run).await?));
        }
        // Not closed: what it would bill if it closed now.
        let contract = self.directory.contract(client).await?.ok_or_else(unknown)?;
        let runs = self.runs.runs(client).await?;
        let previous_close = runs
            .iter()
            .find(|r| r.month == previous(month).to_string())
            .map(|r| r.closed_at);
        let (pricing, _) = self
            .price(client, &contract, month, previous_close, self.clock.now())
            .await
            .map_err(ApiError::from)?;
        Ok(ApiResponse::json(
            200,
            &json!({
                "id": id, "client": client, "month": month.to_string(), "status": "PREVIEW",
                "as_of": instant(self.clock.now()),
                "currency": pricing.currency.code(), "charges": pricing.charges.to_decimal_string(),
                "reversals": pricing.reversals.to_decimal_string(), "total": pricing.total.to_decimal_string(),
                "lines": pricing.lines, "unpriced": pricing.unpriced.len(), "events": pricing.evidence.len(),
            }),
        ))
    }

    // ----- contracts --------------------------------------------------------------------------

    /// The path's client, if the caller acts for it; otherwise it does not exist for them.
    async fn contract_client<'a>(
        &self,
        request: &'a ApiRequest,
        principal: &Principal,
    ) -> Result<(&'a str, Option<StoredContract>), ApiError> {
        let client = request.path_param("id")?;
        let unknown = || ApiError::NotFound(format!("no client {client}"));
        if !principal.acts_for(client) {
            return Err(unknown());
        }
        match self.directory.stored_contract(client).await? {
            (false, _) => Err(unknown()),
            (true, stored) => Ok((client, stored)),
        }
    }

    async fn get_contract(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        if !principal.is_any(&[Role::Finance, Role::Admin]) {
            return Err(ApiError::Forbidden("contracts are for finance and admins".into()));
        }
        request.only_query_params(&[])?;
        let (client, stored) = self.contract_client(request, principal).await?;
        let stored = stored.ok_or_else(|| ApiError::NotFound(format!("client {client} has no contract")))?;
        Ok(contract_response(200, &stored))
    }

    /// Replace a client's contract (admins): valid, at the revision read (`If-Match`; none for
    /// the first, or one written before revisions), and leaving every version that priced a
    /// closed month as it was (`Contract::amends`).
    async fn put_contract(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        if !principal.is(Role::Admin) {
            return Err(ApiError::Forbidden("changing a contract is for admins".into()));
        }
        request.only_query_params(&[])?;
        let (client, stored) = self.contract_client(request, principal).await?;
        let current = stored.as_ref().map_or(0, |s| s.revision);
        if let Some(expected) = request.header("if-match") {
            let expected = expected.trim().trim_start_matches("W/").trim_matches('"');
            if expected != current.to_string() {
                return Err(ApiError::PreconditionFailed(format!(
                    "the contract is at revision {current}, not {expected}: read it again"
                )));
            }
        } else if stored.as_ref().is_some_and(|s| s.revision > 0) {
            return Err(ApiError::PreconditionFailed(format!(
                "send If-Match with the revision you read (the contract is at revision {current})"
            )));
        }
        let mut contract: Contract = request.json_body(backoffice_edge::http::request::DEFAULT_BODY_LIMIT)?;
        if contract.client_id.trim().is_empty() {
            contract.client_id = client.to_owned();
        }
        if contract.client_id != client {
            return Err(ApiError::InvalidBody {
                field: "client_id".into(),
                detail: format!("this is {client}'s contract, not {}'s", contract.client_id),
            });
        }
        contract.validate().map_err(ApiError::Validation)?;
        if let Some(stored) = &stored {
            let billed_through = self
                .runs
                .runs(client)
                .await?
                .last()
                .and_then(|run| Period::parse(&run.month).ok())
                .map(|month| month.last_day());
            contract
                .amends(&stored.contract, billed_through)
                .map_err(ApiError::Validation)?;
        }
        match self.directory.put_contract(&contract, current).await? {
            ContractWrite::Written(revision) => {
                tracing::info!(client_id = client, revision, by = %principal.user_id, "contract replaced");
                let status = if stored.is_some() { 200 } else { 201 };
                Ok(contract_response(status, &StoredContract { contract, revision }))
            }
            ContractWrite::Stale => Err(ApiError::PreconditionFailed(
                "the contract changed meanwhile: read it again".into(),
            )),
            ContractWrite::NoClient => Err(ApiError::NotFound(format!("no client {client}"))),
        }
    }

    async fn run_json(&self, run: &ClosedRun) -> Result<Value, ApiError> {
        let mut body = summary(run, "CLOSED");
        body["lines"] = json!(run.pricing.lines);
        body["unpriced"] = json!(run.pricing.unpriced);
        body["evidence_url"] = json!(
            self.files
                .download_url(&run.evidence_key, &format!("evidencia-{}.csv", run.id()), LINK_TTL)
                .await?
        );
        body["evidence_expires_in"] = json!(LINK_TTL.as_secs());
        body["invoice"] = self.invoice_json(run).await?;
        let mut credits = Vec::with_capacity(run.credits.len());
        for credit in &run.credits {
            credits.push(self.credit_json(run, credit).await?);
        }
        body["credits"] = Value::Array(credits);
        Ok(body)
    }

    /// A credit the run owes, and its note once issued.
    async fn credit_json(&self, run: &ClosedRun, credit: &ReversalCredit) -> Result<Value, StoreError> {
        let request_id = run.credit_request(credit);
        let note = match self
            .invoices
            .credit_note_for_request(&self.call_center_id, &request_id)
            .await?
        {
            Some((invoice_id, note_id)) => {
                let stored = self
                    .invoices
                    .load_credit_note(&self.call_center_id, &invoice_id, &note_id)
                    .await?;
                let status = stored
                    .as_ref()
                    .and_then(|s| s.electronic.as_ref())
                    .map(|e| e.status.as_str())
                    .unwrap_or("ISSUED");
                json!({
                    "id": note_id, "invoice_id": invoice_id, "status": status,
                    "emailed": stored.as_ref().is_some_and(|s| s.email.is_some()),
                    "subtotal": stored.as_ref().map(|s| s.note.totals.subtotal.to_decimal_string()),
                    "tax": stored.as_ref().map(|s| s.note.totals.tax.to_decimal_string()),
                    "total": stored.as_ref().map(|s| s.note.totals.total.to_decimal_string()),
                })
            }
            None => Value::Null,
        };
        Ok(json!({
            "request_id": request_id,
            "credited_run": run_id(&run.client_id, &credit.billed_in.to_string()),
            "amount": credit.amount.to_decimal_string(),
            "lines": credit.lines,
            "sales": credit.keys,
            "credit_note": note,
        }))
    }
}

fn summary(run: &ClosedRun, status: &str) -> Value {
    let p = &run.pricing;
    json!({
        "id": run.id(), "client": run.client_id, "month": run.month, "status": status,
        "closed_at": instant(run.closed_at),
        "currency": p.currency.code(), "charges": p.charges.to_decimal_string(),
        "reversals": p.reversals.to_decimal_string(), "total": p.total.to_decimal_string(),
        "events": p.evidence.len(), "evidence_key": run.evidence_key,
        "invoice_request": run.invoice_request,
    })
}

/// The contract and its revision, also as the ETag a replacement names in `If-Match`.
fn contract_response(status: u16, stored: &StoredContract) -> ApiResponse {
    ApiResponse::json(
        status,
        &json!({"client_id": stored.contract.client_id, "revision": stored.revision, "contract": stored.contract}),
    )
    .header("etag", format!("\"{}\"", stored.revision))
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

fn instant(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

fn previous(month: Period) -> Period {
    Period::containing(month.first_day().previous_day().unwrap_or(month.first_day()))
}

fn next(month: Period) -> Period {
    Period::containing(month.last_day().next_day().unwrap_or(month.last_day()))
}

#[cfg(test)]
mod tests;
