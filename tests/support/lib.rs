//! Harness for the end-to-end tests: finds (or starts) the local stack, mints tokens, seeds
//! configuration, and talks to the API and to the emulator with the real AWS SDK.
//!
//! The stack is the one `infra/local/up --profile test` starts: moto's server provisioned from
//! infra/template.yaml, and the local gateway running the functions' real binaries. The test
//! command (`infra/local/test`) starts it and points `BACKOFFICE_STACK` at its `stack.json`;
//! run alone (`cargo test -p e2e-tests`), the harness starts it itself, or reuses a live one.

pub mod desk;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
pub struct StackInfo {
    pub api_url: String,
    pub endpoint_url: String,
    pub region: String,
    pub resources_file: PathBuf,
    pub template: PathBuf,
    pub jwt_secret: String,
    pub log_dir: PathBuf,
    /// Couriers' webhook secrets of this stack.
    #[serde(default)]
    pub courier_secrets: HashMap<String, String>,
    /// The SUNAT stand-in's billService URL (its control API is beside it, at `/_control`).
    pub sunat_url: String,
    /// The stand-in's CDR-signing certificate (PEM file).
    pub sunat_certificate: PathBuf,
    /// The issuers' local signing certificate (PEM file), as stored in the signing secret.
    pub einvoice_certificate: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Resource {
    #[serde(rename = "ref")]
    pub reference: String,
    #[serde(default)]
    pub attributes: HashMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Resources {
    pub resources: HashMap<String, Resource>,
    /// The template's parameters as the stack was provisioned.
    #[serde(default)]
    pub parameters: HashMap<String, Value>,
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

fn load_stack() -> StackInfo {
    let path = std::env::var_os("BACKOFFICE_STACK")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".local/test/stack.json"));
    if std::env::var_os("BACKOFFICE_STACK").is_none() {
        // Started by hand: bring the test profile up (a live one is reused by the script).
        let status = Command::new(repo_root().join("infra/local/up"))
            .args(["--profile", "test", "--detach"])
            .status()
            .unwrap_or_else(|e| panic!("cannot run infra/local/up: {e}"));
        assert!(
            status.success(),
            "infra/local/up --profile test failed; see .local/test/logs/"
        );
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; is the stack up?", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not a stack description: {e}", path.display()))
}

static STACK: OnceLock<(StackInfo, Resources)> = OnceLock::new();

fn stack() -> &'static (StackInfo, Resources) {
    STACK.get_or_init(|| {
        let info = load_stack();
        let text = std::fs::read_to_string(&info.resources_file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", info.resources_file.display()));
        let resources: Resources = serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad resources.json: {e}"));
        (info, resources)
    })
}

/// One test's connection to the stack. SDK clients are bound to the runtime that made them, so
/// every `#[tokio::test]` builds its own (cheap: no network until used).
pub struct TestEnv {
    pub info: StackInfo,
    pub resources: Resources,
    pub http: reqwest::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    /// For building the functions' own adapters against the emulator.
    pub sdk: aws_config::SdkConfig,
    auth: local_gateway::template::AuthConfig,
}

pub async fn env() -> TestEnv {
    let (info, resources) = stack().clone();
    let credentials = aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "e2e-tests");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(info.region.clone()))
        .endpoint_url(&info.endpoint_url)
        .credentials_provider(credentials)
        .load()
        .await;
    let s3_config = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build();
    let auth = local_gateway::template::load_auth_config(&info.template, &info.resources_file)
        .unwrap_or_else(|e| panic!("cannot read the authorizer from the template: {e}"));
    TestEnv {
        http: reqwest::Client::new(),
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        sqs: aws_sdk_sqs::Client::new(&sdk),
        s3: aws_sdk_s3::Client::from_conf(s3_config),
        sdk,
        info,
        resources,
        auth,
    }
}

/// The finance address seeded for `client`.
pub fn finance_email(client: &str) -> String {
    format!("finanzas@{client}.example.com")
}

/// A fresh tenant name, so tests running in parallel never see each other's data.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// The answer of one API call.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: HashMap<String, String>,
}

impl Reply {
    /// The slug of a problem+json `type`.
    pub fn problem(&self) -> &str {
        self.body["type"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Send one request and read its answer.
pub async fn reply(request: reqwest::RequestBuilder) -> Reply {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("the gateway did not answer: {e}"));
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply { status, body, headers }
}

/// Send every request at once, each from its own task on the runtime's worker threads (released
/// together), and return the answers in order. For tests that say "concurrent": it refuses a
/// current-thread runtime, where the requests would only take turns on one thread.
pub async fn send_concurrently(requests: Vec<reqwest::RequestBuilder>) -> Vec<Reply> {
    assert_eq!(
        tokio::runtime::Handle::current().runtime_flavor(),
        tokio::runtime::RuntimeFlavor::MultiThread,
        "concurrent requests need #[tokio::test(flavor = \"multi_thread\", worker_threads = 4)]"
    );
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                reply(request).await
            })
        })
        .collect();
    let mut replies = Vec::with_capacity(tasks.len());
    for task in tasks {
        replies.push(
            task.await
                .unwrap_or_else(|e| panic!("a concurrent request failed: {e}")),
        );
    }
    replies
}

pub struct Caller {
    pub sub: String,
    pub role: String,
    pub clients: Vec<String>,
}

pub fn caller(sub: &str, role: &str, clients: &[&str]) -> Caller {
    Caller {
        sub: sub.into(),
        role: role.into(),
        clients: clients.iter().map(|c| (*c).to_owned()).collect(),
    }
}

impl TestEnv {
    pub fn table(&self, logical_id: &str) -> String {
        self.resource(logical_id).reference.clone()
    }

    pub fn resource(&self, logical_id: &str) -> &Resource {
        self.resources
            .resources
            .get(logical_id)
            .unwrap_or_else(|| panic!("{logical_id} is not in resources.json"))
    }

    pub fn token(&self, who: &Caller) -> String {
        local_gateway::jwt::mint(
            &self.info.jwt_secret,
            &self.auth,
            &who.sub,
            &who.role,
            &who.clients,
            3600,
        )
        .unwrap_or_else(|e| panic!("cannot mint a token: {e}"))
    }

    pub fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        self.http.request(method, format!("{}{path}", self.info.api_url))
    }

    pub fn as_caller(&self, who: &Caller, method: &str, path: &str) -> reqwest::RequestBuilder {
        self.request(method, path).bearer_auth(self.token(who))
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        reply(request).await
    }

    /// Deliver `body` to `function` as the SQS event source of `logical_queue` would (one
    /// record, received once more), invoking it through the gateway's invoke endpoint. The
    /// reply's body is the function's answer: `{"batchItemFailures": []}` when it processed the
    /// message.
    pub fn deliver_sqs(&self, function: &str, logical_queue: &str, body: &str) -> reqwest::RequestBuilder {
        let queue = self.resource(logical_queue);
        let arn = queue.attributes.get("Arn").cloned().unwrap_or_default();
        let event = serde_json::json!({"Records": [{
            "messageId": uuid::Uuid::new_v4().to_string(), "receiptHandle": uuid::Uuid::new_v4().to_string(),
            "body": body, "attributes": {"ApproximateReceiveCount": "2"}, "messageAttributes": {},
            "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": self.info.region,
        }]});
        self.request("POST", &format!("/_local/functions/{function}/invoke"))
            .json(&event)
    }

    /// A campaign of `client` selling FIB-300 (149.90) and ROUTER (19.99) in PEN, whose client
    /// pays the call center 30.00 per verified sale, 1.50 per effective contact and 12.00 per
    /// talk hour ([`seed_contract`]).
    pub async fn seed_campaign(&self, client: &str, campaign: &str) {
        let table = self.table("ConfigTable");
        let items = [
            serde_json::json!({"pk": format!("CLIENT#{client}"), "sk": "CONFIG", "client_id": client, "name": format!("{client} S.A.C."), "ruc": "20100070970", "currency": "PEN",
                "contract": seed_contract(client, campaign),
                "billing": {"address": "Av. Javier Prado Este 1234, San Isidro, Lima", "finance_email": finance_email(client), "payment_terms_days": 30,
                            "tax": {"name": "IGV", "rate_bp": 1800, "prices_include_tax": true}, "factura_series": "F001", "boleta_series": "B001", "timezone": "America/Lima"}}),
            serde_json::json!({"pk": format!("CAMPAIGN#{campaign}"), "sk": "CONFIG", "campaign_id": campaign, "client_id": client, "name": "Fibra Hogar", "currency": "PEN", "timezone": "America/Lima", "active": true, "max_attempts_per_day": 3}),
            // The demo campaign's couriers, zones, rates and calendar: seed data lives in one place.
            serde_json::json!({"pk": format!("CAMPAIGN#{campaign}"), "sk": "FULFILLMENT", "config": seed_fulfillment_config()}),
            serde_json::json!({"pk": format!("CAMPAIGN#{campaign}"), "sk": "SKU#FIB-300", "sku": "FIB-300", "name": "Fibra 300 Mbps", "unit_price_minor": 14990, "currency": "PEN", "active": true,
                "weight_grams": 1200, "length_mm": 350, "width_mm": 250, "height_mm": 120}),
            serde_json::json!({"pk": format!("CAMPAIGN#{campaign}"), "sk": "SKU#ROUTER", "sku": "ROUTER", "name": "Router WiFi 6", "unit_price_minor": 1999, "currency": "PEN", "active": true,
                "weight_grams": 600, "length_mm": 250, "width_mm": 180, "height_mm": 60}),
        ];
        for item in items {
            let item: HashMap<String, AttributeValue> =
                serde_dynamo::to_item(item).unwrap_or_else(|e| panic!("seed item: {e}"));
            self.dynamodb
                .put_item()
                .table_name(&table)
                .set_item(Some(item))
                .send()
                .await
                .unwrap_or_else(|e| panic!("seeding {table}: {e:?}"));
        }
    }

    /// The From address invoices are sent from (the stack's parameters).
    pub fn invoice_sender(&self) -> String {
        let parameter = |name: &str| {
            self.resources
                .parameters
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| panic!("parameter {name}"))
        };
        format!(
            "{}@{}",
            parameter("InvoiceSenderLocalPart"),
            parameter("InvoiceSenderDomain")
        )
    }

    /// Every message the emulator's SES accepted: (destinations, raw MIME, message id). Read
    /// from the project's moto wrapper (`infra/local/moto_server.py`), not moto's state dump,
    /// which would hold DynamoDB for seconds while it serializes every table.
    pub async fn sent_emails(&self) -> Vec<(Vec<String>, String, String)> {
        let url = format!(
            "{}/_local/ses/raw-messages",
            self.info.endpoint_url.trim_end_matches('/')
        );
        let reply = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(reply.status().is_success(), "{url}: {}", reply.status());
        let data: Value = reply.json().await.unwrap_or_else(|e| panic!("{url}: not JSON: {e}"));
        data["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|m| {
                let destinations = m["destinations"]
                    .as_array()
                    .map(|d| d.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                (
                    destinations,
                    m["raw_data"].as_str().unwrap_or_default().to_owned(),
                    m["id"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Wait until a queue has nothing visible or in flight (three quiet reads in a row): every
    /// message sent so far has been processed.
    pub async fn drain(&self, logical_queue: &str) {
        let url = self.resource(logical_queue).reference.clone();
        let started = std::time::Instant::now();
        let mut quiet = 0;
        while quiet < 3 {
            let attributes = self
                .sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await
                .unwrap_or_else(|e| panic!("queue attributes of {logical_queue}: {e:?}"));
            let count: u64 = attributes
                .attributes()
                .map(|a| a.values().filter_map(|v| v.parse::<u64>().ok()).sum())
                .unwrap_or(0);
            quiet = if count == 0 { quiet + 1 } else { 0 };
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "{logical_queue} does not drain"
            );
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }

    /// Every item of a DynamoDB partition, raw.
    pub async fn partition(&self, logical_table: &str, pk: &str) -> Vec<HashMap<String, AttributeValue>> {
        let output = self
            .dynamodb
            .query()
            .table_name(self.table(logical_table))
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("query {pk}: {e:?}"));
        output.items.unwrap_or_default()
    }
}

/// The fulfillment configuration of `infra/local/seed.json`'s demo campaign, as stored.
fn seed_fulfillment_config() -> String {
    let seed: Value = serde_json::from_str(include_str!("../../infra/local/seed.json")).expect("seed.json parses");
    seed["ConfigTable"]
        .as_array()
        .and_then(|items| items.iter().find(|item| item["sk"] == "FULFILLMENT"))
        .and_then(|item| item["config"].as_str())
        .expect("seed.json has a FULFILLMENT item")
        .to_owned()
}

/// The client's contract with the call center for `campaign` (client billing, ADR 0027).
pub fn seed_contract(client: &str, campaign: &str) -> Value {
    let pen = |amount: &str| serde_json::json!({"unit_price": {"amount": amount, "currency": "PEN"}});
    serde_json::json!({
        "client_id": client,
        "versions": [{
            "version": 1, "valid_from": "2026-01-01", "currency": "PEN", "payment_terms_days": 30,
            "campaigns": {campaign: {
                "verified_sale": {"price": pen("30.00")},
                "effective_contact": pen("1.50"),
                "talk_hour": pen("12.00"),
            }}
        }]
    })
}

/// Run `script` with Python 3 (`python3 -c`, then `args`), `stdin` piped in, and read what it
/// prints as JSON: how the tests hand an artifact to a reader nobody on the project wrote
/// (Python's standard `email` package for MIME). A failing script fails the test with its stderr.
pub fn python_json<T: serde::de::DeserializeOwned>(script: &str, args: &[&std::ffi::OsStr], stdin: &[u8]) -> T {
    use std::io::Write;
    let mut python = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    python
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("input to python");
    let output = python.wait_with_output().expect("python's answer");
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON from python")
}
