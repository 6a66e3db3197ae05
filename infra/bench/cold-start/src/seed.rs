//! What the benchmark's events need, made through the public API as a front office would: one
//! pre-sale of the demo campaign, its call recording uploaded as a dialer does, its review and
//! approval; then the running stack carries the sale through dispatch and invoicing. The queue
//! messages that flow produced are read back from the outbox, so their redelivery is real.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::stack::{AGENT, CAMPAIGN, CLIENT, Caller, FINANCE, Stack, StackError, VALIDATOR};

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error("{what}: {source}")]
    Http { what: String, source: reqwest::Error },
    #[error("{what}: HTTP {status}: {body}")]
    Status { what: String, status: u16, body: String },
    #[error("{0}")]
    Unexpected(String),
    #[error("{what} did not happen within {limit:?}")]
    Timeout { what: String, limit: Duration },
    #[error("DynamoDB: {0}")]
    Dynamo(String),
}

/// Everything the events are built from (written as JSON between `seed` and `run`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seed {
    pub presale_id: String,
    pub sale_id: String,
    pub shipment_id: String,
    pub recording_bucket: String,
    pub recording_key: String,
    pub recording_size: u64,
    /// `SaleConfirmed`, as presale-review's outbox sent it to the sales queue.
    pub sale_confirmed: String,
    /// `InvoiceRequested`, as fulfillment-dispatch's outbox sent it to the billing queue.
    pub invoice_requested: String,
}

const READY_LIMIT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(300);

struct Api<'a> {
    stack: &'a Stack,
    http: reqwest::Client,
}

impl Api<'_> {
    async fn call(
        &self,
        who: Caller,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), SeedError> {
        let what = format!("{method} {path}");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.stack.info.api_url))
            .bearer_auth(self.stack.token(who)?);
        if let Some(body) = body {
            request = request
                .header("idempotency-key", uuid::Uuid::new_v4().to_string())
                .json(body);
        }
        let reply = request.send().await.map_err(|source| SeedError::Http {
            what: what.clone(),
            source,
        })?;
        let status = reply.status().as_u16();
        let text = reply.text().await.map_err(|source| SeedError::Http { what, source })?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    async fn expect(
        &self,
        who: Caller,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        want: u16,
    ) -> Result<Value, SeedError> {
        let what = format!("{method} {path}");
        let (status, reply) = self.call(who, method, path, body).await?;
        if status != want {
            return Err(SeedError::Status {
                what,
                status,
                body: reply.to_string(),
            });
        }
        Ok(reply)
    }
}

/// Polls `probe` until it yields a value.
async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> Result<T, SeedError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, SeedError>>,
{
    let started = Instant::now();
    loop {
        if let Some(found) = probe().await? {
            return Ok(found);
        }
        if started.elapsed() > READY_LIMIT {
            return Err(SeedError::Timeout {
                what: what.to_owned(),
                limit: READY_LIMIT,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

pub async fn seed(stack: &Stack, dynamodb: &aws_sdk_dynamodb::Client) -> Result<Seed, SeedError> {
    let api = Api {
        stack,
        http: reqwest::Client::new(),
    };
    let now = OffsetDateTime::now_utc();
    let call_id = format!("call-coldstart-{}", uuid::Uuid::new_v4().simple());
    let number = uuid::Uuid::new_v4().as_u128();
    let document = format!("{:08}", number % 100_000_000);
    let presale = json!({
        "campaign_id": CAMPAIGN, "call_id": call_id,
        "call_started_at": now.format(&Rfc3339).map_err(|e| SeedError::Unexpected(e.to_string()))?,
        "customer": {"document": {"type": "DNI", "number": document},
                     "full_name": "Rosa Mamani Flores", "email": "rosa.mamani@example.com",
                     "phone": format!("+5197{:07}", number % 10_000_000),
                     "address": {"line1": "Jr. Junín 455", "district": "Cercado", "province": "Lima", "region": "Lima"}},
        "items": [{"sku": "FIB-300", "quantity": 1}]
    });
    let created = api
        .expect(AGENT, reqwest::Method::POST, "/presales", Some(&presale), 201)
        .await?;
    let presale_id = created["id"]
        .as_str()
        .ok_or_else(|| SeedError::Unexpected(format!("POST /presales answered no id: {created}")))?
        .to_owned();
    eprintln!("seed: pre-sale {presale_id} registered");

    // The dialer's upload (the emulator takes unsigned requests); its ObjectCreated notification
    // reaches recording-ingest through the recordings queue.
    let bucket = stack.reference("RecordingsBucket")?;
    let key = format!(
        "calls/{CLIENT}/{CAMPAIGN}/{}/{:02}/{:02}/{call_id}.wav",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    let recording = wav(8);
    let size = recording.len() as u64;
    let url = format!("{}/{bucket}/{key}", stack.info.endpoint_url.trim_end_matches('/'));
    let uploaded = api
        .http
        .put(&url)
        .header("x-amz-meta-agent-id", AGENT.sub)
        .header("content-type", "audio/wav")
        .body(recording)
        .send()
        .await
        .map_err(|source| SeedError::Http {
            what: format!("PUT {url}"),
            source,
        })?;
    if !uploaded.status().is_success() {
        return Err(SeedError::Status {
            what: format!("PUT {url}"),
            status: uploaded.status().as_u16(),
            body: uploaded.text().await.unwrap_or_default(),
        });
    }
    let path = format!("/presales/{presale_id}");
    wait_for("the pre-sale's READY_FOR_REVIEW", || async {
        let read = api.expect(AGENT, reqwest::Method::GET, &path, None, 200).await?;
        Ok((read["status"] == "READY_FOR_REVIEW").then_some(()))
    })
    .await?;
    eprintln!("seed: recording analysed, pre-sale ready for review");

    let claimed = api
        .expect(VALIDATOR, reqwest::Method::POST, "/reviews/next", None, 200)
        .await?;
    if claimed["presale"]["id"].as_str() != Some(presale_id.as_str()) {
        return Err(SeedError::Unexpected(format!(
            "the review queue served another pre-sale (is the stack fresh?): {claimed}"
        )));
    }
    let version = claimed["presale"]["version"]
        .as_u64()
        .ok_or_else(|| SeedError::Unexpected(format!("no version in the claim: {claimed}")))?;
    let decision = json!({"decision": "approve", "version": version, "override_reason": "benchmark"});
    api.expect(
        VALIDATOR,
        reqwest::Method::POST,
        &format!("/presales/{presale_id}/review"),
        Some(&decision),
        200,
    )
    .await?;
    let sale_id = format!("S-{presale_id}");
    let shipment_id = format!("SH-{sale_id}");
    eprintln!("seed: sale {sale_id} approved");

    // Finance's list names no sale: the buyer's document finds the invoice.
    wait_for("the sale's invoice", || async {
        let (status, page) = api
            .call(
                FINANCE,
                reqwest::Method::GET,
                &format!("/invoices?client={CLIENT}"),
                None,
            )
            .await?;
        let listed = status == 200
            && page["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|i| i.to_string().contains(&document)));
        Ok(listed.then_some(()))
    })
    .await?;
    eprintln!("seed: shipment {shipment_id} and its invoice exist");

    let sale_confirmed = outbox_body(dynamodb, &stack.reference("PresalesTable")?, &sale_id).await?;
    let invoice_requested = outbox_body(dynamodb, &stack.reference("ShipmentsTable")?, &sale_id).await?;
    Ok(Seed {
        presale_id,
        sale_id,
        shipment_id,
        recording_bucket: bucket,
        recording_key: key,
        recording_size: size,
        sale_confirmed,
        invoice_requested,
    })
}

/// The body of the one outbox message of `table` that mentions `needle`: exactly what went to
/// the queue.
async fn outbox_body(dynamodb: &aws_sdk_dynamodb::Client, table: &str, needle: &str) -> Result<String, SeedError> {
    let mut bodies = Vec::new();
    let mut start = None;
    loop {
        let page = dynamodb
            .scan()
            .table_name(table)
            .filter_expression("begins_with(pk, :outbox) AND contains(body, :needle)")
            .expression_attribute_values(":outbox", AttributeValue::S("OUTBOX#".into()))
            .expression_attribute_values(":needle", AttributeValue::S(needle.into()))
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| SeedError::Dynamo(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()))?;
        bodies.extend(
            page.items()
                .iter()
                .filter_map(|item| item.get("body").and_then(|v| v.as_s().ok()).cloned()),
        );
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    match bodies.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(SeedError::Unexpected(format!(
            "{} outbox messages of {table} mention {needle}, not one",
            bodies.len()
        ))),
    }
}

/// A stereo 16-bit 8 kHz WAV of `seconds` with alternating speakers, as the end-to-end
/// tests' recordings.
pub fn wav(seconds: u32) -> Vec<u8> {
    recording_analysis::testing::conversation_wav(seconds, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_header_matches_its_data() {
        let bytes = wav(1);
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(bytes.len(), 44 + 8000 * 4);
    }
}
