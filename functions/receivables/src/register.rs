//! The sales register for accounting (Registro de Ventas e Ingresos, SUNAT format 14.1): one
//! client's month of facturas, boletas and credit notes as a CSV for Excel, kept in the invoices
//! bucket and downloaded through a presigned link.
//!
//! - `POST /receivables/sales-register?client=…&month=YYYY-MM` generates the file from the
//!   month's documents (again, if it exists: the register follows SUNAT's answers, and the
//!   bucket keeps earlier generations as versions), answers 201 with its key, row counts,
//!   exact totals per currency, the documents left out (rejected by SUNAT, or not answered
//!   yet: `complete` is false while any is pending) and a link valid for 15 minutes.
//! - `GET` of the same path answers a fresh link to the file generated last, or 404.
//!
//! Finance and admins of the client only; another client reads as an unknown one. A month is
//! `YYYY-MM` (else a 400 naming `month`, as the listing's malformed parameters), not after the
//! current one in Lima (else a 422 naming `month`).

use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use backoffice_domain::Clock;
use backoffice_domain::principal::{Principal, Role};
use backoffice_domain::sales_register::{Period, SalesRegister, file_name};
use backoffice_domain::validation::Invalid;
use backoffice_domain::zone::CampaignZone;
use backoffice_edge::http::{ApiError, ApiRequest, ApiResponse, Invocation, respond};
use backoffice_store::register::{RegisterFiles, RegisterSource, register_key};
use serde_json::json;

use crate::client_of;

pub const ROUTES: &[&str] = &["POST /receivables/sales-register", "GET /receivables/sales-register"];

/// How long a download link works: long enough to click, short enough not to be passed around.
pub const LINK_TTL: Duration = Duration::from_secs(15 * 60);

pub struct SalesRegisterApi<S, F, C> {
    pub source: S,
    pub files: F,
    pub clock: C,
    /// Whose calendar says which month is the current one (America/Lima).
    pub zone: CampaignZone,
}

impl<S: RegisterSource, F: RegisterFiles, C: Clock> SalesRegisterApi<S, F, C> {
    pub async fn handle(&self, event: ApiGatewayV2httpRequest, invocation: &Invocation) -> ApiGatewayV2httpResponse {
        respond(event, invocation, async |request: &ApiRequest| {
            self.route(request).await
        })
        .await
    }

    async fn route(&self, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
        match request.route_key.as_str() {
            "POST /receivables/sales-register" => self.generate(request, &request.principal()?).await,
            "GET /receivables/sales-register" => self.existing(request, &request.principal()?).await,
            other => Err(ApiError::NotFound(format!("no route {other}"))),
        }
    }

    /// The client and month asked for, once the caller may have them.
    fn target(&self, request: &ApiRequest, principal: &Principal) -> Result<(String, Period), ApiError> {
        if !principal.is_any(&[Role::Finance, Role::Admin]) {
            return Err(ApiError::Forbidden(
                "the sales register is for finance and admins".into(),
            ));
        }
        request.only_query_params(&["client", "month"])?;
        let client_id = client_of(request, principal)?;
        let invalid = |detail: String| ApiError::InvalidParameter {
            field: "month".into(),
            detail,
        };
        let raw = request
            .query_param("month")?
            .ok_or_else(|| invalid("month is required: the register's month, YYYY-MM".into()))?;
        let period = Period::parse(raw).map_err(|e| invalid(e.to_string()))?;
        let current = Period::containing(self.zone.local_date(self.clock.now()));
        // Well-formed but not allowed: a 422 (a malformed month is a 400, like any parameter).
        if period > current {
            return Err(ApiError::Validation(vec![
                Invalid::new(
                    "month_not_begun",
                    format!("{period} has not begun: the latest register is {current}'s"),
                )
                .at("month"),
            ]));
        }
        Ok((client_id, period))
    }

    async fn generate(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        let (client_id, period) = self.target(request, principal)?;
        let documents = self
            .source
            .register_documents(&client_id, period.first_day(), period.last_day())
            .await?;
        let register = SalesRegister::build(period, documents);
        let csv = register
            .to_csv()
            .map_err(|e| ApiError::Internal(format!("sales register of {client_id} for {period}: {e}")))?;
        let totals = register
            .totals()
            .map_err(|e| ApiError::Internal(format!("sales register of {client_id} for {period}: {e}")))?;
        let key = register_key(&client_id, period);
        let size = csv.len();
        self.files.put_register(&key, csv, &principal.user_id).await?;
        let url = self
            .files
            .download_url(&key, &download_name(&client_id, period), LINK_TTL)
            .await?;
        let counts = register.counts();
        tracing::info!(
            client_id = %client_id, month = %period, generated_by = %principal.user_id, rows = counts.total,
            excluded = register.excluded.len(), key = %key, "sales register generated"
        );
        metrics::counter!("SalesRegistersGenerated").increment(1);
        Ok(ApiResponse::json(
            201,
            &json!({
                "client": client_id,
                "month": period.to_string(),
                "key": key,
                "file_name": file_name(&client_id, period),
                "size": size,
                "download_url": url,
                "expires_in": LINK_TTL.as_secs(),
                "rows": counts,
                "totals": totals,
                "excluded": register.excluded,
                "complete": register.excluded.iter().all(|e| e.electronic_status.is_final()),
            }),
        )
        .header(
            "location",
            format!("/receivables/sales-register?client={client_id}&month={period}"),
        ))
    }

    async fn existing(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        let (client_id, period) = self.target(request, principal)?;
        let key = register_key(&client_id, period);
        let Some(file) = self.files.register_file(&key).await? else {
            return Err(ApiError::NotFound(format!(
                "no sales register of {client_id} for {period} yet: POST generates it"
            )));
        };
        let url = self
            .files
            .download_url(&key, &download_name(&client_id, period), LINK_TTL)
            .await?;
        let generated_at = file
            .generated_at
            .and_then(|at| at.format(&time::format_description::well_known::Rfc3339).ok());
        Ok(ApiResponse::json(
            200,
            &json!({
                "client": client_id,
                "month": period.to_string(),
                "key": key,
                "file_name": file_name(&client_id, period),
                "size": file.size,
                "generated_at": generated_at,
                "generated_by": file.generated_by,
                "download_url": url,
                "expires_in": LINK_TTL.as_secs(),
            }),
        ))
    }
}

/// The name the browser saves the file as: the file name with anything a header or a file
/// system could trip on replaced.
fn download_name(client_id: &str, period: Period) -> String {
    file_name(client_id, period)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "register_tests.rs"]
mod tests;
