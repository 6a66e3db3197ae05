//! One realistic event per function, as Lambda would deliver it: API Gateway v2 events built by
//! the local gateway's own `build_event` (with the JWT authorizer's claims), SQS events whose
//! message is a redelivery of one the seeded sale really produced (every consumer is idempotent
//! on its business key, so 51 deliveries change nothing after the first), and the schedule's
//! tick.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use local_gateway::http_api::{RequestInput, build_event};
use local_gateway::routing::RouteTable;
use serde_json::Value;
use time::OffsetDateTime;

use crate::seed::Seed;
use crate::stack::{AGENT, CAMPAIGN, CLIENT, Caller, FINANCE, SUPERVISOR, Stack, StackError, VALIDATOR};

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error("no route of the template matches {0}")]
    NoRoute(String),
    #[error("{route} belongs to {owner}, not {function}")]
    WrongFunction {
        route: String,
        owner: String,
        function: String,
    },
    #[error("cannot build the event: {0}")]
    Build(String),
    #[error("the token does not verify: {0}")]
    Token(#[from] local_gateway::jwt::JwtError),
}

/// What a function's answer must look like for the invocation to count as a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// An API Gateway v2 response with this status code.
    Http(u16),
    /// An SQS batch response without failed items.
    Batch,
    /// Any response.
    Any,
}

pub struct BenchEvent {
    /// Shown in the table, e.g. `GET /presales/{id}`.
    pub label: String,
    pub payload: Vec<u8>,
    pub expect: Expect,
}

/// The event for `function` (a logical id of the template); `None` for a function this
/// benchmark has no realistic event for (measured for init and RSS only).
pub fn for_function(stack: &Stack, seed: &Seed, function: &str) -> Result<Option<BenchEvent>, EventError> {
    let id = &seed.presale_id;
    let event = match function {
        "PresaleIntakeFunction" => api(
            stack,
            function,
            AGENT,
            "GET",
            &format!("/presales/{id}"),
            "",
            "GET /presales/{id}",
        )?,
        "PresaleReviewFunction" => api(
            stack,
            function,
            VALIDATOR,
            "GET",
            &format!("/presales/{id}/audit"),
            "",
            "GET /presales/{id}/audit",
        )?,
        "ContactTipifyFunction" => api(
            stack,
            function,
            AGENT,
            "GET",
            &format!("/campaigns/{CAMPAIGN}/dispositions"),
            "",
            "GET /campaigns/{id}/dispositions",
        )?,
        "ShipmentTrackingFunction" => api(
            stack,
            function,
            SUPERVISOR,
            "GET",
            &format!("/shipments/{}", seed.shipment_id),
            "",
            "GET /shipments/{id}",
        )?,
        "ReceivablesFunction" => api(
            stack,
            function,
            FINANCE,
            "GET",
            "/invoices",
            &format!("client={CLIENT}"),
            "GET /invoices?client=",
        )?,
        "RecordingIngestFunction" => sqs(
            stack,
            "RecordingsQueue",
            &s3_notification(stack, seed),
            "SQS: S3 ObjectCreated (redelivered)",
        )?,
        "FulfillmentDispatchFunction" => sqs(
            stack,
            "SalesQueue",
            &seed.sale_confirmed,
            "SQS: SaleConfirmed (redelivered)",
        )?,
        "InvoiceIssueFunction" => sqs(
            stack,
            "BillingQueue",
            &seed.invoice_requested,
            "SQS: InvoiceRequested (redelivered)",
        )?,
        // EventBridge Scheduler invokes a target without `Input` with an empty object, as the
        // gateway's schedules do.
        "ReconciliationFunction" => BenchEvent {
            label: "schedule tick".into(),
            payload: b"{}".to_vec(),
            expect: Expect::Any,
        },
        _ => return Ok(None),
    };
    Ok(Some(event))
}

/// What hello-lambda echoes: presale-intake's event, so both parse the same bytes.
pub fn for_hello(stack: &Stack, seed: &Seed) -> Result<BenchEvent, EventError> {
    let mut event = api(
        stack,
        "PresaleIntakeFunction",
        AGENT,
        "GET",
        &format!("/presales/{}", seed.presale_id),
        "",
        "echo of GET /presales/{id}",
    )?;
    event.expect = Expect::Any;
    Ok(event)
}

fn api(
    stack: &Stack,
    function: &str,
    who: Caller,
    method: &str,
    path: &str,
    query: &str,
    label: &str,
) -> Result<BenchEvent, EventError> {
    let routes = RouteTable::new(&stack.template.functions);
    let matched = routes
        .find(method, path)
        .ok_or_else(|| EventError::NoRoute(format!("{method} {path}")))?;
    if matched.function != function {
        return Err(EventError::WrongFunction {
            route: format!("{method} {path}"),
            owner: matched.function.to_owned(),
            function: function.to_owned(),
        });
    }
    let token = stack.token(who)?;
    let claims = local_gateway::jwt::verify(&stack.info.jwt_secret, &stack.auth, &token)?;
    let mut headers = http::HeaderMap::new();
    let pairs = [
        ("authorization", format!("Bearer {token}")),
        ("host", "api.backoffice.local".to_owned()),
        ("accept", "application/json".to_owned()),
        ("user-agent", "front-office/1.0".to_owned()),
    ];
    for (name, value) in pairs {
        let value = http::HeaderValue::from_str(&value).map_err(|e| EventError::Build(e.to_string()))?;
        headers.insert(name, value);
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    let input = RequestInput {
        method,
        raw_path: path,
        raw_query: query,
        headers: &headers,
        body: b"",
        source_ip: "203.0.113.10".to_owned(),
        version: http::Version::HTTP_11,
        request_id: &request_id,
        account_id: &stack.resources.account_id,
    };
    let payload = build_event(&input, &matched, Some(&claims)).map_err(EventError::Build)?;
    Ok(BenchEvent {
        label: label.to_owned(),
        payload,
        expect: Expect::Http(200),
    })
}

fn sqs(stack: &Stack, queue: &str, body: &str, label: &str) -> Result<BenchEvent, EventError> {
    let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).to_string();
    let mut record = SqsMessage::default();
    record.message_id = Some(uuid::Uuid::new_v4().to_string());
    record.receipt_handle = Some(uuid::Uuid::new_v4().simple().to_string());
    record.body = Some(body.to_owned());
    record.attributes = [
        ("ApproximateReceiveCount", "2".to_owned()),
        ("SentTimestamp", now_ms.clone()),
        ("ApproximateFirstReceiveTimestamp", now_ms),
        ("SenderId", "AIDAIENQZJOLO23YVJ4VO".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    record.event_source = Some("aws:sqs".to_owned());
    record.event_source_arn = Some(stack.attribute(queue, "Arn")?);
    record.aws_region = Some(stack.info.region.clone());
    let mut event = SqsEvent::default();
    event.records = vec![record];
    let payload = serde_json::to_vec(&event).map_err(|e| EventError::Build(e.to_string()))?;
    Ok(BenchEvent {
        label: label.to_owned(),
        payload,
        expect: Expect::Batch,
    })
}

/// The notification S3 sends to the recordings queue for the seeded upload.
fn s3_notification(stack: &Stack, seed: &Seed) -> String {
    let at = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": stack.info.region,
        "eventTime": at, "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAIENQZJOLO23YVJ4VO"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "recordings",
               "bucket": {"name": seed.recording_bucket, "arn": format!("arn:aws:s3:::{}", seed.recording_bucket)},
               "object": {"key": seed.recording_key, "size": seed.recording_size}}
    }]})
    .to_string()
}

/// Whether an answer is what `expect` asks for; `Err` says what it was instead.
pub fn check(expect: Expect, payload: &[u8]) -> Result<String, String> {
    let answer: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    match expect {
        Expect::Http(want) => match answer["statusCode"].as_u64() {
            Some(code) if code == u64::from(want) => Ok(format!("HTTP {code}")),
            Some(code) => Err(format!("HTTP {code}: {}", answer["body"].as_str().unwrap_or_default())),
            None => Err(format!("not an API Gateway response: {answer}")),
        },
        Expect::Batch => match answer["batchItemFailures"].as_array() {
            Some(failed) if failed.is_empty() => Ok("0 failed of 1".into()),
            None if answer.is_null() || answer.get("batchItemFailures").is_none() => Ok("ok".into()),
            _ => Err(format!("failed items: {answer}")),
        },
        Expect::Any => Ok("ok".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked() {
        assert_eq!(
            check(Expect::Http(200), br#"{"statusCode":200,"body":"{}"}"#),
            Ok("HTTP 200".into())
        );
        assert!(check(Expect::Http(200), br#"{"statusCode":404,"body":"no"}"#).is_err());
        assert_eq!(
            check(Expect::Batch, br#"{"batchItemFailures":[]}"#),
            Ok("0 failed of 1".into())
        );
        assert!(check(Expect::Batch, br#"{"batchItemFailures":[{"itemIdentifier":"m"}]}"#).is_err());
    }
}
