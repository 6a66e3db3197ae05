//! The glue every HTTP function shares: invocation metadata, logging, error rendering.

use std::time::Instant;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use time::OffsetDateTime;
use tracing::Instrument;

use super::{ApiError, ApiRequest, ApiResponse};

/// What the handlers need to know about the invocation they run in.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    /// When Lambda will stop this invocation; idempotency locks never outlive it.
    pub deadline: OffsetDateTime,
}

impl Invocation {
    pub fn from_context(context: &lambda_runtime::Context) -> Self {
        let deadline_ms = i128::from(context.deadline);
        let deadline = OffsetDateTime::from_unix_timestamp_nanos(deadline_ms * 1_000_000)
            .unwrap_or_else(|_| OffsetDateTime::now_utc() + time::Duration::seconds(30));
        Self {
            request_id: context.request_id.clone(),
            deadline,
        }
    }

    /// For tests: an invocation that ends `seconds` after `now`.
    pub fn ending_after(now: OffsetDateTime, seconds: i64) -> Self {
        Self {
            request_id: "test-request".into(),
            deadline: now + time::Duration::seconds(seconds),
        }
    }
}

/// Run one API request: parse, route, turn errors into problem+json, and log one line with the
/// outcome (ids and status only: never bodies, which carry personal data).
pub async fn respond<F>(event: ApiGatewayV2httpRequest, invocation: &Invocation, route: F) -> ApiGatewayV2httpResponse
where
    F: AsyncFnOnce(&ApiRequest) -> Result<ApiResponse, ApiError>,
{
    let started = Instant::now();
    let request = ApiRequest::from_apigw(event);
    let correlation_id = request.correlation_id().to_owned();
    let span = tracing::info_span!(
        "request",
        aws_request_id = %invocation.request_id,
        api_request_id = %request.request_id,
        correlation_id = %correlation_id,
        route = %request.route_key,
        cold_start = crate::telemetry::take_cold_start(),
    );
    async {
        let outcome = match request.check_correlation_id() {
            Ok(()) => route(&request).await,
            Err(refused) => Err(refused),
        };
        let response = match outcome {
            Ok(response) => response,
            Err(error) => {
                if error.status() >= 500 {
                    tracing::error!(problem = error.slug(), error = %error, "request failed");
                } else {
                    // The slug and the fields only: a detail may echo what the caller sent (a
                    // phone, a document number), and personal data never goes into a log.
                    tracing::info!(problem = error.slug(), fields = ?error.fields(), "request refused");
                }
                error.to_response(Some(&request.path), Some(&request.request_id))
            }
        };
        let response = response.header("x-correlation-id", correlation_id.clone());
        let elapsed = started.elapsed();
        tracing::info!(
            status = response.status,
            duration_ms = elapsed.as_millis() as u64,
            "request done"
        );
        // By route and status class: the dashboard's latency and error graphs, the 5xx alarm.
        let class = match response.status {
            500.. => "5xx",
            400..=499 => "4xx",
            _ => "2xx",
        };
        metrics::histogram!("RequestDuration", "Route" => request.route_key.clone())
            .record(elapsed.as_secs_f64() * 1000.0);
        metrics::counter!("Responses", "Route" => request.route_key.clone(), "Status" => class).increment(1);
        response.into_apigw()
    }
    .instrument(span)
    .await
}
