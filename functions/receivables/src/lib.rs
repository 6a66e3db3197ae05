//! receivables: what finance reads and records of the invoices. `GET /invoices` lists a
//! client's invoices, newest first, a page at a time, filtered by issue date, series, buyer,
//! SUNAT status (the rejected and still-pending documents finance must act on) and e-mail
//! status; as JSON, or as CSV that opens in Excel (`Accept: text/csv`).
//! `POST /invoices/{id}/payments` records a payment: partial ones leave the invoice
//! PARTIALLY_PAID, the last one PAID; an overpayment, another currency or a payment on an
//! invoice nothing is owed on is a 422 naming the field (Idempotency-Key honoured; one
//! reference per method is one payment).
//!
//! Finance, supervisors and admins of the client read; finance and admins record. Another
//! client's invoices read as an unknown client.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use backoffice_domain::Clock;
use backoffice_domain::electronic::ElectronicStatus;
use backoffice_domain::principal::{Principal, Role};
use backoffice_domain::receivable::{Payment, PaymentRequest};
use backoffice_edge::http::idempotency;
use backoffice_edge::http::request::DEFAULT_BODY_LIMIT;
use backoffice_edge::http::{ApiError, ApiRequest, ApiResponse, Invocation, respond};
use backoffice_store::Page;
use backoffice_store::accounts::AccountsView;
use backoffice_store::idempotency::IdempotencyStore;
use backoffice_store::ledger::{EmailStatus, InvoiceLedger, InvoiceQuery, InvoiceSummary};
use backoffice_store::payments::{InvoiceAccount, PaymentLedger, PaymentOutcome};
use serde_json::json;
use std::sync::Arc;

use accounts::DocumentLinks;
use backoffice_domain::zone::CampaignZone;
use backoffice_edge::relay::Publisher;

pub mod accounts;
/// The sales register export (its own handler: main.rs routes its ROUTES to it).
pub mod register;

pub const ROUTES: &[&str] = &[
    "GET /invoices",
    "GET /invoices/{id}",
    "POST /invoices/{id}/payments",
    "POST /invoices/{id}/credit-notes",
    "GET /receivables/aging",
    "POST /receivables/sales-register",
    "GET /receivables/sales-register",
];

/// Reads of the account before a payment gives up to a busy invoice (each lost race means
/// another payment or credit note landed in between).
const PAYMENT_ATTEMPTS: usize = 3;

const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 100;

pub struct Receivables<L, I, C> {
    pub ledger: L,
    pub idempotency: I,
    pub clock: C,
    /// Links to invoices' PDFs and XMLs.
    pub links: Arc<dyn DocumentLinks>,
    /// The billing queue, for credit-note requests.
    pub publisher: Arc<dyn Publisher>,
    /// Where "today" is (due dates, overdue, the ageing's default date).
    pub zone: CampaignZone,
}

impl<L: InvoiceLedger + PaymentLedger + AccountsView, I: IdempotencyStore, C: Clock> Receivables<L, I, C> {
    pub async fn handle(&self, event: ApiGatewayV2httpRequest, invocation: &Invocation) -> ApiGatewayV2httpResponse {
        respond(event, invocation, async |request: &ApiRequest| {
            self.route(request, invocation).await
        })
        .await
    }

    async fn route(&self, request: &ApiRequest, invocation: &Invocation) -> Result<ApiResponse, ApiError> {
        match request.route_key.as_str() {
            "GET /invoices" => self.list(request, &request.principal()?).await,
            "POST /invoices/{id}/payments" => self.pay(request, &request.principal()?, invocation).await,
            "GET /invoices/{id}" => self.read(request, &request.principal()?).await,
            "POST /invoices/{id}/credit-notes" => self.credit(request, &request.principal()?, invocation).await,
            "GET /receivables/aging" => self.aging(request, &request.principal()?).await,
            other => Err(ApiError::NotFound(format!("no route {other}"))),
        }
    }

    async fn pay(
        &self,
        request: &ApiRequest,
        principal: &Principal,
        invocation: &Invocation,
    ) -> Result<ApiResponse, ApiError> {
        if !principal.is_any(&[Role::Finance, Role::Admin]) {
            return Err(ApiError::Forbidden(
                "payments are recorded by finance and admins".into(),
            ));
        }
        request.only_query_params(&["client"])?;
        let client_id = client_of(request, principal)?;
        let invoice_id = request.path_param("id")?.to_owned();
        let now = self.clock.now();
        idempotency::run(&self.idempotency, request, principal, now, invocation.deadline, async || {
            let body: PaymentRequest = request.json_body(DEFAULT_BODY_LIMIT)?;
            let payment = Payment::from_request(&body, &principal.user_id, now).map_err(ApiError::Validation)?;
            for _ in 0..PAYMENT_ATTEMPTS {
                let Some(InvoiceAccount { invoice, account }) = self.ledger.account(&client_id, &invoice_id).await?
                else {
                    return Err(ApiError::NotFound(format!("no invoice {invoice_id}")));
                };
                let after = account.pay(&payment.amount).map_err(|e| ApiError::Validation(vec![e]))?;
                match self
                    .ledger
                    .record_payment(&client_id, &invoice_id, &payment, &account, &after)
                    .await?
                {
                    PaymentOutcome::Recorded => {
                        // The audit line: who recorded which payment on which invoice, when.
                        tracing::info!(
                            invoice_id = %invoice.invoice_id, client_id = %client_id, recorded_by = %principal.user_id,
                            amount = %payment.amount, method = ?payment.method, reference = %payment.reference,
                            status = ?after.status(), "payment recorded"
                        );
                        metrics::counter!("PaymentsRecorded").increment(1);
                        return Ok(ApiResponse::json(
                            201,
                            &json!({
                                "invoice_id": invoice.invoice_id,
                                "payment": payment,
                                "collection_status": after.status(),
                                "total": invoice.totals.total,
                                "credited": backoffice_domain::money::Money::from_minor(after.credited_minor, after.currency),
                                "paid": backoffice_domain::money::Money::from_minor(after.paid_minor, after.currency),
                                "outstanding": after.outstanding(),
                            }),
                        ));
                    }
                    PaymentOutcome::AlreadyRecorded(existing) => {
                        return Err(ApiError::Conflict {
                            slug: "payment-already-recorded",
                            detail: format!(
                                "a {:?} payment with reference {} is recorded on this invoice already",
                                existing.method, existing.reference
                            ),
                            current: Some(json!({ "payment": existing })),
                        });
                    }
                    PaymentOutcome::Stale => continue,
                }
            }
            Err(ApiError::Conflict {
                slug: "invoice-busy",
                detail: "other payments or credit notes kept changing this invoice; try again".into(),
                current: None,
            })
        })
        .await
    }

    async fn read(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        accounts::may_read(principal)?;
        request.only_query_params(&["client"])?;
        let client_id = client_of(request, principal)?;
        let invoice_id = request.path_param("id")?;
        let Some(file) = self.ledger.invoice_file(&client_id, invoice_id).await? else {
            return Err(ApiError::NotFound(format!("no invoice {invoice_id}")));
        };
        let mut body = accounts::file_json(&file);
        // A missing link is not worth failing the read: the rest is what finance came for.
        let link = async |key: Option<&str>| match key {
            Some(key) => match self.links.link(key, accounts::LINK_TTL).await {
                Ok(url) => Some(url),
                Err(e) => {
                    tracing::warn!(error = %e, key, "could not presign an invoice document");
                    None
                }
            },
            None => None,
        };
        let pdf = link(file.stored.pdf.as_ref().map(|p| p.key.as_str())).await;
        let xml = link(file.stored.electronic.as_ref().map(|e| e.xml_key.as_str())).await;
        body["links"] = json!({"pdf": pdf, "xml": xml, "expires_in_seconds": accounts::LINK_TTL.as_secs()});
        // Each credit note's own documents, linked the same way.
        for (index, note) in file.credit_notes.iter().enumerate() {
            let pdf = link(note.pdf.as_ref().map(|p| p.key.as_str())).await;
            let xml = link(note.electronic.as_ref().map(|e| e.xml_key.as_str())).await;
            body["credit_notes"][index]["links"] = json!({"pdf": pdf, "xml": xml});
        }
        Ok(ApiResponse::json(200, &body))
    }

    async fn credit(
        &self,
        request: &ApiRequest,
        principal: &Principal,
        invocation: &Invocation,
    ) -> Result<ApiResponse, ApiError> {
        accounts::may_credit(principal)?;
        request.only_query_params(&["client"])?;
        let client_id = client_of(request, principal)?;
        let invoice_id = request.path_param("id")?.to_owned();
        // The request's identity is its Idempotency-Key: a retried request asks for the same
        // note, and invoice-issue issues at most one per request.
        let Some(key) = request.header(idempotency::HEADER) else {
            return Err(ApiError::InvalidParameter {
                field: idempotency::HEADER.into(),
                detail: "a credit note is asked for with an Idempotency-Key header".into(),
            });
        };
        let request_id = format!("api-{}-{}", principal.user_id, key);
        let now = self.clock.now();
        idempotency::run(
            &self.idempotency,
            request,
            principal,
            now,
            invocation.deadline,
            async || {
                let body: accounts::CreditNoteBody = request.json_body(DEFAULT_BODY_LIMIT)?;
                let Some(file) = self.ledger.invoice_file(&client_id, &invoice_id).await? else {
                    return Err(ApiError::NotFound(format!("no invoice {invoice_id}")));
                };
                let credit = accounts::credit_request(&file, &body, &request_id, &principal.user_id, now)?;
                let message = backoffice_domain::events::OutboxMessage::seal(&credit, request.correlation_id(), now)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                self.publisher
                    .publish(&message)
                    .await
                    .map_err(|e| ApiError::Unavailable(format!("the billing queue is unavailable: {e}")))?;
                tracing::info!(
                    invoice_id = %invoice_id, client_id = %client_id, requested_by = %principal.user_id,
                    request_id = %request_id, reason = ?credit.reason, "credit note requested"
                );
                Ok(ApiResponse::json(
                    202,
                    &json!({
                        "request_id": request_id,
                        "invoice_id": invoice_id,
                        "status": "REQUESTED",
                        "detail": "invoice-issue numbers, signs and submits the note; it shows on GET /invoices/{id}",
                    }),
                )
                .header("location", format!("/invoices/{invoice_id}")))
            },
        )
        .await
    }

    async fn aging(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        accounts::may_read(principal)?;
        request.only_query_params(&["client", "as_of", "buyers"])?;
        let client_id = client_of(request, principal)?;
        let buyers = match request.query_param("buyers")? {
            None => accounts::DEFAULT_BUYERS,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=accounts::MAX_BUYERS).contains(n))
                .ok_or_else(|| ApiError::InvalidParameter {
                    field: "buyers".into(),
                    detail: format!("buyers is a whole number from 1 to {}", accounts::MAX_BUYERS),
                })?,
        };
        let today = self.zone.local_date(self.clock.now());
        let as_of = request.date_param("as_of")?.unwrap_or(today);
        if as_of > today {
            return Err(ApiError::InvalidParameter {
                field: "as_of".into(),
                detail: format!("as_of is today ({today}) or earlier"),
            });
        }
        let open = self.ledger.open_invoices(&client_id, as_of).await?;
        let ageing = accounts::ageing(&open, as_of);
        Ok(ApiResponse::json(
            200,
            &accounts::ageing_json(&client_id, as_of, &ageing, open.len(), buyers),
        ))
    }

    async fn list(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        if !principal.is_any(&[Role::Finance, Role::Supervisor, Role::Admin]) {
            return Err(ApiError::Forbidden(
                "invoices are listed for finance, supervisors and admins".into(),
            ));
        }
        request.only_query_params(&[
            "client",
            "from",
            "to",
            "series",
            "electronic_status",
            "email_status",
            "buyer_document",
            "overdue",
            "limit",
            "cursor",
        ])?;
        let client_id = client_of(request, principal)?;
        let invalid = |field: &str, detail: &str| ApiError::InvalidParameter {
            field: field.into(),
            detail: detail.into(),
        };
        let (from, to) = (request.date_param("from")?, request.date_param("to")?);
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err(invalid("to", "to is on or after from"));
        }
        let electronic_status = request
            .query_param("electronic_status")?
            .map(|raw| {
                parse_electronic(raw).ok_or_else(|| {
                    invalid(
                        "electronic_status",
                        "electronic_status is PENDING_SUBMISSION, ACCEPTED, OBSERVED or REJECTED",
                    )
                })
            })
            .transpose()?;
        let email_status = request
            .query_param("email_status")?
            .map(|raw| {
                EmailStatus::parse(raw).ok_or_else(|| {
                    invalid(
                        "email_status",
                        "email_status is PENDING, SENT, PARKED, BOUNCED or COMPLAINED",
                    )
                })
            })
            .transpose()?;
        let series = request
            .query_param("series")?
            .map(|raw| {
                let well_formed = raw.len() == 4 && raw.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
                well_formed
                    .then(|| raw.to_owned())
                    .ok_or_else(|| invalid("series", "a series is 4 upper-case letters or digits (F001, B001)"))
            })
            .transpose()?;
        let buyer_document = request
            .query_param("buyer_document")?
            .map(|raw| {
                let number: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '.')).collect();
                (!number.is_empty() && number.len() <= 20 && number.chars().all(|c| c.is_ascii_alphanumeric()))
                    .then(|| number.to_ascii_uppercase())
                    .ok_or_else(|| invalid("buyer_document", "a document number is letters and digits"))
            })
            .transpose()?;
        let limit = match request.query_param("limit")? {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                .ok_or_else(|| invalid("limit", "limit is a whole number from 1 to 100"))?,
        };
        match request.query_param("overdue")? {
            None | Some("false") => {}
            Some("true") => {
                // Past due and still owed: the open index, by due date (other filters do not
                // combine with it).
                for other in [
                    "from",
                    "to",
                    "series",
                    "electronic_status",
                    "email_status",
                    "buyer_document",
                ] {
                    if request.query_param(other)?.is_some() {
                        return Err(invalid(
                            other,
                            "overdue=true lists every overdue invoice: leave out other filters",
                        ));
                    }
                }
                let today = self.zone.local_date(self.clock.now());
                let cursor = request.query_param("cursor")?;
                let page = self.ledger.overdue(&client_id, today, limit, cursor).await?;
                return Ok(self.page_response(request, &client_id, page));
            }
            Some(_) => return Err(invalid("overdue", "overdue is true or false")),
        }
        let query = InvoiceQuery {
            client_id,
            issued_from: from,
            issued_to: to,
            series,
            electronic_status,
            email_status,
            buyer_document,
            limit,
            cursor: request.query_param("cursor")?.map(str::to_owned),
        };
        let page = self.ledger.invoices(&query).await?;
        Ok(self.page_response(request, &query.client_id, page))
    }

    /// A page of the listing as JSON, or as CSV (`Accept: text/csv`) with the cursor in a header.
    fn page_response(&self, request: &ApiRequest, client_id: &str, page: Page<InvoiceSummary>) -> ApiResponse {
        if request.wants_csv() {
            let rows: Vec<Vec<String>> = page.items.iter().map(csv_row).collect();
            let mut response = ApiResponse::csv(200, &CSV_HEADER, &rows, &format!("invoices-{client_id}.csv"));
            if let Some(cursor) = &page.next_cursor {
                response = response.header("x-next-cursor", cursor.clone());
            }
            return response;
        }
        ApiResponse::json(
            200,
            &json!({"client": client_id, "items": page.items, "next_cursor": page.next_cursor}),
        )
    }
}

/// The client the request is about: `?client=`, or the token's only client; another client's
/// reads as unknown (every receivables route, the sales register's too).
pub fn client_of(request: &ApiRequest, principal: &Principal) -> Result<String, ApiError> {
    let client_id = match (request.query_param("client")?, principal.clients.as_slice()) {
        (Some(client), _) => client.to_owned(),
        (None, [only]) => only.clone(),
        (None, _) => {
            return Err(ApiError::InvalidParameter {
                field: "client".into(),
                detail: "client is required: your token lists several clients".into(),
            });
        }
    };
    if principal.acts_for(&client_id) {
        Ok(client_id)
    } else {
        Err(ApiError::NotFound(format!("no client {client_id}")))
    }
}

fn parse_electronic(raw: &str) -> Option<ElectronicStatus> {
    [
        ElectronicStatus::PendingSubmission,
        ElectronicStatus::Accepted,
        ElectronicStatus::Observed,
        ElectronicStatus::Rejected,
    ]
    .into_iter()
    .find(|s| s.as_str() == raw)
}

const CSV_HEADER: [&str; 16] = [
    "invoice_id",
    "kind",
    "issue_date",
    "due_date",
    "buyer_document_type",
    "buyer_document",
    "buyer_name",
    "currency",
    "taxable",
    "igv",
    "total",
    "credited",
    "electronic_status",
    "sunat_code",
    "sunat_description",
    "email_status",
];

/// Amounts as decimals with a dot (`204.88`), as Excel and Power BI read them.
fn csv_row(invoice: &InvoiceSummary) -> Vec<String> {
    let amount = |m: &backoffice_domain::money::Money| m.to_decimal_string();
    let enum_text = |v: serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    vec![
        invoice.invoice_id.clone(),
        enum_text(json!(invoice.kind)),
        invoice.issue_date.to_string(),
        invoice.due_date.to_string(),
        invoice.buyer.document.kind().as_str().to_owned(),
        invoice.buyer.document.number().to_owned(),
        invoice.buyer.name.clone(),
        invoice.currency.code().to_owned(),
        amount(&invoice.totals.subtotal),
        amount(&invoice.totals.tax),
        amount(&invoice.totals.total),
        amount(&invoice.credited),
        invoice.electronic_status.as_str().to_owned(),
        invoice.sunat_code.map(|c| c.to_string()).unwrap_or_default(),
        invoice.sunat_description.clone().unwrap_or_default(),
        enum_text(json!(invoice.email_status)),
    ]
}

#[cfg(test)]
mod tests;
