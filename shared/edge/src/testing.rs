//! Test support for the handler tests of every function, behind the `testing` feature: one
//! API Gateway event builder, and in-memory twins of the publisher and the mailer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription, ApiGatewayV2httpRequest,
    ApiGatewayV2httpResponse,
};
use aws_lambda_events::encodings::Body;
use backoffice_store::outbox::OutboxMessage;
use serde_json::Value;

use crate::mail::{MailError, Mailer, OutgoingEmail};
use crate::relay::{PublishError, Publisher};

/// An HTTP API (payload v2) event for one route, as API Gateway hands it to a function after
/// its JWT authorizer: `ApiEvent::new("POST /presales/{id}/review").param("id", id).who(…)`.
#[derive(Debug, Clone)]
pub struct ApiEvent {
    route: String,
    path: String,
    claims: Vec<(String, String)>,
    params: Vec<(String, String)>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<String>,
    request_id: String,
}

impl ApiEvent {
    /// `route` is the template's route key; the path is its template until [`Self::param`] fills
    /// it. The caller is agent `agent-7` of client `acme` until [`Self::who`] says otherwise.
    pub fn new(route: &str) -> Self {
        Self {
            route: route.to_owned(),
            path: route.split(' ').nth(1).unwrap_or_default().to_owned(),
            claims: vec![],
            params: vec![],
            query: vec![],
            headers: vec![],
            body: None,
            request_id: "req-1".into(),
        }
        .who("agent-7", "agent", "acme")
    }

    /// The verified claims: subject, role and the clients (comma-separated) acted for.
    pub fn who(mut self, sub: &str, role: &str, clients: &str) -> Self {
        self.claims = [("sub", sub), ("role", role), ("clients", clients)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        self
    }

    /// No authorizer context at all (a route reached without a token).
    pub fn anonymous(mut self) -> Self {
        self.claims.clear();
        self
    }

    /// A path parameter, also substituted into the path.
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.path = self.path.replace(&format!("{{{name}}}"), value);
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The raw path, when a test needs one that differs from the route's.
    pub fn path(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.body = Some(body.to_string());
        self
    }

    pub fn raw(mut self, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self
    }

    pub fn build(self) -> ApiGatewayV2httpRequest {
        let mut event = ApiGatewayV2httpRequest::default();
        let method = self.route.split(' ').next().unwrap_or("GET");
        event.request_context.http.method = method.parse().unwrap_or(http::Method::GET);
        event.route_key = Some(self.route);
        event.raw_path = Some(self.path);
        event.request_context.request_id = Some(self.request_id);
        if !self.claims.is_empty() {
            let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
            jwt.claims = self.claims.into_iter().collect();
            let mut authorizer = ApiGatewayRequestAuthorizer::default();
            authorizer.jwt = Some(jwt);
            event.request_context.authorizer = Some(authorizer);
        }
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(name.as_bytes()), value.parse()) {
                event.headers.insert(name, value);
            }
        }
        let query: HashMap<String, Vec<String>> = self.query.into_iter().fold(HashMap::new(), |mut acc, (k, v)| {
            acc.entry(k).or_default().push(v);
            acc
        });
        event.query_string_parameters = query.into();
        event.path_parameters = self.params.into_iter().collect();
        event.body = self.body;
        event
    }
}

/// A function's answer, read back: status, JSON body (`Null` when empty or not JSON), headers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The problem's type slug (the last segment of its `type` URI).
    pub fn problem(&self) -> &str {
        self.body["type"]
            .as_str()
            .and_then(|t| t.rsplit('/').next())
            .unwrap_or_default()
    }
}

impl From<ApiGatewayV2httpResponse> for Reply {
    fn from(response: ApiGatewayV2httpResponse) -> Self {
        let text = match response.body {
            Some(Body::Text(text)) => text,
            Some(Body::Binary(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            _ => String::new(),
        };
        Self {
            status: u16::try_from(response.status_code).unwrap_or(0),
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            headers: response
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                .collect(),
            text,
        }
    }
}

/// A queue that keeps what it is sent, and can be taken down.
#[derive(Debug, Default)]
pub struct MemoryPublisher {
    down: AtomicBool,
    sent: Mutex<Vec<OutboxMessage>>,
}

impl MemoryPublisher {
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn sent(&self) -> Vec<OutboxMessage> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The sent envelopes, parsed.
    pub fn sent_json(&self) -> Vec<Value> {
        self.sent()
            .iter()
            .filter_map(|m| serde_json::from_str(&m.body).ok())
            .collect()
    }
}

#[async_trait]
impl Publisher for MemoryPublisher {
    async fn publish(&self, message: &OutboxMessage) -> Result<(), PublishError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(PublishError(format!("queue {} unavailable", message.destination)));
        }
        self.sent
            .lock()
            .map_err(|_| PublishError("poisoned".into()))?
            .push(message.clone());
        Ok(())
    }
}

/// A mailer that keeps what it sends, and can be made to fail.
#[derive(Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<OutgoingEmail>>,
    failures_left: Mutex<u32>,
}

impl MemoryMailer {
    /// The next `count` sends fail as unavailable.
    pub fn fail_next(&self, count: u32) {
        if let Ok(mut left) = self.failures_left.lock() {
            *left = count;
        }
    }

    pub fn sent(&self) -> Vec<OutgoingEmail> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
        {
            let mut left = self
                .failures_left
                .lock()
                .map_err(|_| MailError::Unavailable("poisoned".into()))?;
            if *left > 0 {
                *left -= 1;
                return Err(MailError::Unavailable("simulated outage".into()));
            }
        }
        let mut sent = self
            .sent
            .lock()
            .map_err(|_| MailError::Unavailable("poisoned".into()))?;
        sent.push(email.clone());
        Ok(format!("memory-{}", sent.len()))
    }
}

/// Captures the JSON log lines of this test process, the way CloudWatch would receive them, so
/// tests can read what reaches the logs. The capture is process-wide (a thread-local subscriber
/// misses events when tests run in parallel): a test picks its own lines by an id it chose.
#[derive(Clone, Default)]
pub struct LogCapture(std::sync::Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// The process's capture, installed as the global subscriber on first use (JSON lines with
    /// the current span, as `telemetry::init` writes them).
    pub fn global() -> LogCapture {
        static GLOBAL: std::sync::OnceLock<LogCapture> = std::sync::OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                let capture = LogCapture::default();
                let subscriber = tracing_subscriber::fmt()
                    .json()
                    .with_current_span(true)
                    .flatten_event(true)
                    .with_writer(capture.clone())
                    .finish();
                if tracing::subscriber::set_global_default(subscriber).is_err() {
                    tracing::warn!("another global subscriber is installed: nothing will be captured");
                }
                capture
            })
            .clone()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().map(|b| b.clone()).unwrap_or_default()).into_owned()
    }

    pub fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The lines logged inside a span whose `field` is `value` (a request's or a message's id).
    pub fn lines_where(&self, field: &str, value: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|line| line["span"][field].as_str() == Some(value))
            .collect()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
