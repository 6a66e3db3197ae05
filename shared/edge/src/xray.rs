//! AWS X-Ray subsegments from `tracing` spans, sent to the X-Ray daemon over UDP (ADR: X-Ray
//! through Lambda active tracing, not an OpenTelemetry SDK, to keep every zip small).
//!
//! With active tracing Lambda records each invocation's segment itself and hands the function
//! the trace header (`Root=…;Parent=…;Sampled=…`), which `lambda_runtime` puts on its
//! `Lambda runtime invoke` span as `xrayTraceId`. Below that span, this layer turns the edge's
//! `request` and `message` spans (every span at `info` or above) and the AWS SDK's operation
//! spans (`SQS.SendMessage`, `DynamoDB.GetItem`…, at `debug`, with `rpc.service`/`rpc.method`)
//! into subsegments of that segment, each annotated with the correlation id of the nearest span
//! that carries one (`annotations.correlation_id`), so a sale's whole path is one X-Ray search:
//! `annotation.correlation_id = "…"`.
//!
//! Nothing is sent for a trace Lambda did not sample (`Sampled=0`), outside an invocation, or
//! without `AWS_XRAY_DAEMON_ADDRESS` (then the layer is not even installed).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, Registry};

/// What the daemon expects before each document.
const DAEMON_HEADER: &str = r#"{"format":"json","version":1}"#;
/// The field `lambda_runtime` records the invocation's trace header in.
const TRACE_HEADER_FIELD: &str = "xrayTraceId";
const CORRELATION_FIELD: &str = "correlation_id";
/// X-Ray keeps at most this many characters of an annotation's value.
const MAX_ANNOTATION: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum XrayError {
    #[error("AWS_XRAY_DAEMON_ADDRESS {0:?} names no UDP address")]
    Address(String),
    #[error("no UDP socket for the X-Ray daemon: {0}")]
    Socket(#[from] std::io::Error),
}

/// An X-Ray trace header, as Lambda passes it (`Lambda-Runtime-Trace-Id`, `_X_AMZN_TRACE_ID`)
/// and as SQS carries it (`AWSTraceHeader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    /// `1-` 8 hex digits (the epoch second) `-` 24 hex digits.
    pub root: String,
    /// The segment or subsegment the work hangs under: 16 hex digits.
    pub parent: String,
    pub sampled: bool,
    /// Whatever else the header carries (`Lineage=…`, Lambda's recursive-loop detection), kept
    /// as it came so a propagated header still carries it.
    pub rest: Vec<String>,
}

impl TraceHeader {
    /// `None` without a well-formed root and parent. A missing or deferred (`?`) sampling
    /// decision is "not sampled": Lambda always decides, and an undecided trace costs nothing.
    pub fn parse(header: &str) -> Option<TraceHeader> {
        let (mut root, mut parent, mut sampled, mut rest) = (None, None, false, Vec::new());
        for part in header.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some(("Root", value)) if valid_trace_id(value) => root = Some(value.to_owned()),
                Some(("Parent", value)) if valid_segment_id(value) => parent = Some(value.to_owned()),
                Some(("Sampled", value)) => sampled = value == "1",
                Some(("Root" | "Parent", _)) => return None,
                _ => rest.push(part.to_owned()),
            }
        }
        Some(TraceHeader {
            root: root?,
            parent: parent?,
            sampled,
            rest,
        })
    }

    /// The header for work done under `parent` in this trace.
    pub fn with_parent(&self, parent: &str) -> String {
        let mut header = format!(
            "Root={};Parent={};Sampled={}",
            self.root,
            parent,
            u8::from(self.sampled)
        );
        for part in &self.rest {
            header.push(';');
            header.push_str(part);
        }
        header
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn valid_trace_id(id: &str) -> bool {
    let mut parts = id.split('-');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("1"), Some(time), Some(random), None) if is_hex(time, 8) && is_hex(random, 24)
    )
}

fn valid_segment_id(id: &str) -> bool {
    is_hex(id, 16)
}

/// A new subsegment id: 64 random bits as 16 hex digits. `RandomState` is std's randomly keyed
/// SipHash, so this needs no RNG crate; the counter keeps two ids of one instant apart.
fn new_segment_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    format!("{:016x}", hasher.finish().max(1))
}

/// Seconds since the epoch, as X-Ray's `start_time`/`end_time` take them.
fn epoch_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The daemon's address from `AWS_XRAY_DAEMON_ADDRESS`: `host:port`, or Lambda's and the
/// daemon's two-address form `tcp:host:port udp:host:port` (the UDP one is used).
pub fn daemon_address(value: &str) -> Result<SocketAddr, XrayError> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let udp = parts
        .iter()
        .find_map(|p| p.strip_prefix("udp:"))
        .or(match parts.as_slice() {
            [only] if !only.starts_with("tcp:") => Some(*only),
            _ => None,
        })
        .ok_or_else(|| XrayError::Address(value.to_owned()))?;
    udp.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| XrayError::Address(value.to_owned()))
}

/// An independent subsegment document (sent on its own, so it names its trace and parent).
#[derive(Debug, Serialize)]
struct Subsegment<'a> {
    name: &'a str,
    id: &'a str,
    trace_id: &'a str,
    parent_id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    start_time: f64,
    end_time: f64,
    /// `aws` makes X-Ray draw the service (DynamoDB, SQS…) as a node of the trace map.
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aws: Option<AwsCall<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    fault: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<Annotations<'a>>,
}

#[derive(Debug, Serialize)]
struct AwsCall<'a> {
    operation: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct Annotations<'a> {
    correlation_id: &'a str,
}

/// What the layer keeps on each span under an invocation's trace.
#[derive(Debug)]
struct SpanState {
    trace: Arc<TraceHeader>,
    /// Set when this span becomes a subsegment of a sampled trace.
    id: Option<String>,
    /// The nearest subsegment above, else the segment Lambda recorded.
    parent_id: String,
    start_time: f64,
    /// `(service, operation)` of an AWS SDK operation span.
    aws: Option<(String, String)>,
    correlation_id: Option<String>,
    /// An error was logged inside it.
    fault: bool,
}

impl SpanState {
    /// What a span below this one hangs under.
    fn parent_for_children(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.parent_id)
    }
}

/// The fields this layer reads off a span.
#[derive(Default)]
struct Fields {
    trace_header: Option<String>,
    correlation_id: Option<String>,
    service: Option<String>,
    operation: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            TRACE_HEADER_FIELD => &mut self.trace_header,
            CORRELATION_FIELD => &mut self.correlation_id,
            "rpc.service" => &mut self.service,
            "rpc.method" => &mut self.operation,
            _ => return,
        };
        *slot = Some(value.to_owned()).filter(|v| !v.is_empty());
    }

    // `correlation_id = %id` arrives as a `Display` wrapper, whose `Debug` is the `Display`.
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if matches!(
            field.name(),
            TRACE_HEADER_FIELD | CORRELATION_FIELD | "rpc.service" | "rpc.method"
        ) {
            self.record_str(field, &format!("{value:?}"));
        }
    }
}

/// True for what [`XrayLayer`] needs to see: every span at `info` or above (the runtime's
/// invocation span, the edge's request and message spans), the AWS SDK's operation spans (at
/// `debug`, marked `rpc.system`), and error events (a subsegment's fault). Install the layer
/// with `.with_filter(filter_fn(xray::reads).with_max_level_hint(LevelFilter::DEBUG))`, so the
/// logs keep their own level.
pub fn reads(metadata: &Metadata<'_>) -> bool {
    if metadata.is_span() {
        *metadata.level() <= Level::INFO || metadata.fields().field("rpc.system").is_some()
    } else {
        *metadata.level() == Level::ERROR
    }
}

/// Sends one subsegment per span under a sampled invocation's trace to the X-Ray daemon.
#[derive(Debug)]
pub struct XrayLayer {
    socket: UdpSocket,
    region: Option<String>,
}

impl XrayLayer {
    /// The layer Lambda's environment asks for: `None` without `AWS_XRAY_DAEMON_ADDRESS` (not
    /// on Lambda, or locally), so there is nothing to pay for.
    pub fn from_env() -> Result<Option<XrayLayer>, XrayError> {
        let Some(address) = std::env::var("AWS_XRAY_DAEMON_ADDRESS")
            .ok()
            .filter(|v| !v.trim().is_empty())
        else {
            return Ok(None);
        };
        let region = std::env::var("AWS_REGION").ok().filter(|v| !v.is_empty());
        XrayLayer::new(daemon_address(&address)?, region).map(Some)
    }

    /// A layer sending to the daemon at `daemon`. The socket never blocks: a full buffer loses
    /// a subsegment, never delays an invocation.
    pub fn new(daemon: SocketAddr, region: Option<String>) -> Result<XrayLayer, XrayError> {
        let local: SocketAddr = if daemon.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(local)?;
        socket.connect(daemon)?;
        socket.set_nonblocking(true)?;
        Ok(XrayLayer { socket, region })
    }

    fn send(&self, state: &SpanState, id: &str, name: &str, correlation_id: Option<&str>) {
        let document = Subsegment {
            name: state.aws.as_ref().map_or(name, |(service, _)| service),
            id,
            trace_id: &state.trace.root,
            parent_id: &state.parent_id,
            kind: "subsegment",
            start_time: state.start_time,
            end_time: epoch_seconds(),
            namespace: state.aws.as_ref().map(|_| "aws"),
            aws: state.aws.as_ref().map(|(_, operation)| AwsCall {
                operation,
                region: self.region.as_deref(),
            }),
            fault: state.fault,
            annotations: correlation_id.map(|correlation_id| Annotations { correlation_id }),
        };
        let Ok(body) = serde_json::to_string(&document) else {
            return;
        };
        // Telemetry never fails the work it watches: a lost datagram is a missing subsegment.
        let _ = self.socket.send(format!("{DAEMON_HEADER}\n{body}").as_bytes());
    }
}

impl<S> Layer<S> for XrayLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let state = if let Some(header) = fields.trace_header.as_deref() {
            // The invocation's own span: Lambda records the invocation, so it is no subsegment.
            let Some(trace) = TraceHeader::parse(header) else {
                return;
            };
            SpanState {
                parent_id: trace.parent.clone(),
                trace: Arc::new(trace),
                id: None,
                start_time: epoch_seconds(),
                aws: None,
                correlation_id: fields.correlation_id,
                fault: false,
            }
        } else {
            let Some(parent) = span.parent() else { return };
            let extensions = parent.extensions();
            let Some(above) = extensions.get::<SpanState>() else {
                return;
            };
            let aws = fields.service.zip(fields.operation);
            let subsegment = above.trace.sampled && (aws.is_some() || *attrs.metadata().level() <= Level::INFO);
            SpanState {
                trace: Arc::clone(&above.trace),
                id: subsegment.then(new_segment_id),
                parent_id: above.parent_for_children().to_owned(),
                start_time: epoch_seconds(),
                aws,
                correlation_id: fields.correlation_id,
                fault: false,
            }
        };
        span.extensions_mut().insert(state);
    }

    // A handler that learns the correlation id late records it (recording-ingest, once bound).
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(correlation_id) = fields.correlation_id
            && let Some(state) = span.extensions_mut().get_mut::<SpanState>()
        {
            state.correlation_id = Some(correlation_id);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if *event.metadata().level() != Level::ERROR {
            return;
        }
        let Some(span) = ctx.event_span(event) else { return };
        for span in span.scope() {
            let mut extensions = span.extensions_mut();
            if let Some(state) = extensions.get_mut::<SpanState>()
                && state.id.is_some()
            {
                state.fault = true;
                return;
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        // The nearest correlation id: a span's own, else the request's or message's above it.
        // Read before this span's extensions are held: their lock is not reentrant.
        let correlation_id = span.scope().find_map(|s| {
            s.extensions()
                .get::<SpanState>()
                .and_then(|state| state.correlation_id.as_deref())
                .map(|c| c.chars().take(MAX_ANNOTATION).collect::<String>())
        });
        let extensions = span.extensions();
        let Some(state) = extensions.get::<SpanState>() else {
            return;
        };
        let Some(segment_id) = state.id.as_deref() else { return };
        self.send(state, segment_id, span.name(), correlation_id.as_deref());
    }
}

/// The trace header for work the current span hands on (an SQS message's `AWSTraceHeader`):
/// its trace, with the nearest subsegment as the parent. `None` outside a traced invocation or
/// without the layer.
pub fn current_trace_header() -> Option<String> {
    tracing::Span::current()
        .with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<Registry>()?;
            let span = registry.span(id)?;
            span.scope().find_map(|s| {
                s.extensions()
                    .get::<SpanState>()
                    .map(|state| state.trace.with_parent(state.parent_for_children()))
            })
        })
        .flatten()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::Value;
    use tracing_subscriber::filter::{LevelFilter, filter_fn};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    const ROOT: &str = "1-5759e988-bd862e3fe1be46a994272793";
    const PARENT: &str = "53995c3f42cd8ad8";

    fn header(sampled: &str) -> String {
        format!("Root={ROOT};Parent={PARENT};Sampled={sampled};Lineage=a87bd80c:0")
    }

    #[test]
    fn a_lambda_trace_header_is_parsed_and_written_back_with_a_new_parent() {
        let parsed = TraceHeader::parse(&header("1")).expect("well formed");
        assert_eq!(parsed.root, ROOT);
        assert_eq!(parsed.parent, PARENT);
        assert!(parsed.sampled);
        assert_eq!(
            parsed.with_parent("0123456789abcdef"),
            format!("Root={ROOT};Parent=0123456789abcdef;Sampled=1;Lineage=a87bd80c:0"),
            "the lineage (Lambda's loop detection) travels on"
        );
        assert!(!TraceHeader::parse(&header("0")).expect("well formed").sampled);
        assert!(!TraceHeader::parse(&header("?")).expect("well formed").sampled);
        assert!(
            !TraceHeader::parse(&format!("Root={ROOT};Parent={PARENT}"))
                .expect("well formed")
                .sampled
        );
    }

    #[test]
    fn a_malformed_trace_header_is_no_trace() {
        for bad in [
            "",
            "Sampled=1",
            &format!("Root={ROOT};Sampled=1"),
            &format!("Parent={PARENT};Sampled=1"),
            &format!("Root=1-5759e988;Parent={PARENT};Sampled=1"),
            &format!("Root=2-5759e988-bd862e3fe1be46a994272793;Parent={PARENT};Sampled=1"),
            &format!("Root={ROOT};Parent=53995c3f42cd8ad;Sampled=1"),
            &format!("Root={ROOT};Parent=53995c3f42cd8adz;Sampled=1"),
        ] {
            assert_eq!(TraceHeader::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn segment_ids_are_16_hex_digits_and_differ() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_segment_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| valid_segment_id(id) && id != "0000000000000000"));
    }

    #[test]
    fn the_daemon_address_takes_lambdas_two_address_form() {
        let udp: SocketAddr = "169.254.79.129:2000".parse().expect("address");
        assert_eq!(daemon_address("169.254.79.129:2000").expect("plain"), udp);
        assert_eq!(
            daemon_address("tcp:127.0.0.1:2000 udp:169.254.79.129:2000").expect("pair"),
            udp
        );
        assert!(daemon_address("tcp:127.0.0.1:2000").is_err());
        assert!(daemon_address("nonsense").is_err());
    }

    #[test]
    fn a_subsegment_document_has_the_schema_fields() {
        let document = Subsegment {
            name: "DynamoDB",
            id: "0123456789abcdef",
            trace_id: ROOT,
            parent_id: PARENT,
            kind: "subsegment",
            start_time: 1_700_000_000.25,
            end_time: 1_700_000_000.5,
            namespace: Some("aws"),
            aws: Some(AwsCall {
                operation: "GetItem",
                region: Some("us-east-1"),
            }),
            fault: false,
            annotations: Some(Annotations {
                correlation_id: "req-\"42\"",
            }),
        };
        let json: Value = serde_json::to_value(&document).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "name": "DynamoDB", "id": "0123456789abcdef", "trace_id": ROOT, "parent_id": PARENT,
                "type": "subsegment", "start_time": 1_700_000_000.25, "end_time": 1_700_000_000.5,
                "namespace": "aws", "aws": {"operation": "GetItem", "region": "us-east-1"},
                "annotations": {"correlation_id": "req-\"42\""}
            }),
            "no fault key unless there was one"
        );
    }

    /// A "daemon" on 127.0.0.1 and a subscriber with only the X-Ray layer, for this thread.
    fn daemon_and_subscriber() -> (UdpSocket, impl Subscriber + Send + Sync) {
        let daemon = UdpSocket::bind("127.0.0.1:0").expect("daemon socket");
        daemon.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        let layer = XrayLayer::new(daemon.local_addr().expect("address"), Some("us-east-1".into())).expect("layer");
        let subscriber = tracing_subscriber::registry()
            .with(layer.with_filter(filter_fn(reads).with_max_level_hint(LevelFilter::DEBUG)));
        (daemon, subscriber)
    }

    /// Every datagram the daemon has: its header line and the document.
    fn received(daemon: &UdpSocket) -> Vec<(Value, Value)> {
        let mut out = Vec::new();
        let mut buffer = [0u8; 65_536];
        daemon
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        while let Ok(n) = daemon.recv(&mut buffer) {
            let text = std::str::from_utf8(&buffer[..n]).expect("utf-8");
            let (head, body) = text.split_once('\n').expect("a header line");
            out.push((
                serde_json::from_str(head).expect("header json"),
                serde_json::from_str(body).expect("document json"),
            ));
        }
        out
    }

    #[test]
    fn spans_under_a_sampled_invocation_reach_the_daemon_with_the_correlation_id() {
        let (daemon, subscriber) = daemon_and_subscriber();
        let before = epoch_seconds();
        let propagated = tracing::subscriber::with_default(subscriber, || {
            let invoke = tracing::info_span!("Lambda runtime invoke", requestId = "r-1", xrayTraceId = %header("1"));
            let _invoke = invoke.enter();
            let request = tracing::info_span!("request", correlation_id = %"corr-7", route = "POST /presales");
            let _request = request.enter();
            // Shaped as the SDK's operation spans are (aws-sdk-*/src/operation/*.rs).
            let call = tracing::debug_span!(
                "DynamoDB.PutItem",
                "rpc.service" = "DynamoDB",
                "rpc.method" = "PutItem",
                "sdk_invocation_id" = 1234567,
                "rpc.system" = "aws-api",
            );
            call.in_scope(|| tracing::debug!("not a subsegment, not a fault"));
            drop(call);
            tracing::error!("request failed");
            current_trace_header()
        });
        let after = epoch_seconds();
        let documents = received(&daemon);
        assert_eq!(
            documents.len(),
            2,
            "the SDK call and the request, not the invocation: {documents:?}"
        );
        for (head, _) in &documents {
            assert_eq!(head, &serde_json::json!({"format": "json", "version": 1}));
        }
        let (call, request) = (&documents[0].1, &documents[1].1);

        assert_eq!(request["name"], "request");
        assert_eq!(request["type"], "subsegment");
        assert_eq!(request["trace_id"], ROOT);
        assert_eq!(request["parent_id"], PARENT, "under Lambda's segment");
        assert_eq!(request["annotations"], serde_json::json!({"correlation_id": "corr-7"}));
        assert_eq!(request["fault"], true, "an error was logged in it");

        assert_eq!(call["name"], "DynamoDB");
        assert_eq!(call["namespace"], "aws");
        assert_eq!(
            call["aws"],
            serde_json::json!({"operation": "PutItem", "region": "us-east-1"})
        );
        assert_eq!(call["parent_id"], request["id"], "under the request's subsegment");
        assert_eq!(call["annotations"]["correlation_id"], "corr-7", "inherited");
        assert!(call.get("fault").is_none());

        for document in [call, request] {
            let id = document["id"].as_str().expect("id");
            assert!(valid_segment_id(id), "{id}");
            let (start, end) = (
                document["start_time"].as_f64().expect("start"),
                document["end_time"].as_f64().expect("end"),
            );
            assert!(before <= start && start <= end && end <= after, "{start} {end}");
        }
        assert_ne!(call["id"], request["id"]);
        let request_id = request["id"].as_str().expect("id");
        assert_eq!(
            propagated,
            Some(format!("Root={ROOT};Parent={request_id};Sampled=1;Lineage=a87bd80c:0")),
            "work handed on hangs under the request's subsegment"
        );
    }

    #[test]
    fn a_correlation_id_recorded_late_reaches_the_subsegment() {
        let (daemon, subscriber) = daemon_and_subscriber();
        tracing::subscriber::with_default(subscriber, || {
            let invoke = tracing::info_span!("Lambda runtime invoke", xrayTraceId = %header("1"));
            let _invoke = invoke.enter();
            let message = tracing::info_span!("message", message_id = "m-1", correlation_id = "");
            message.in_scope(|| {
                tracing::Span::current().record("correlation_id", "corr-late");
            });
        });
        let documents = received(&daemon);
        assert_eq!(documents.len(), 1);
        assert_eq!(documents[0].1["name"], "message");
        assert_eq!(documents[0].1["annotations"]["correlation_id"], "corr-late");
    }

    #[test]
    fn nothing_is_sent_unsampled_or_outside_an_invocation() {
        let (daemon, subscriber) = daemon_and_subscriber();
        let propagated = tracing::subscriber::with_default(subscriber, || {
            // Init work, and a sweep outside any invocation span: no trace.
            tracing::info_span!("request", correlation_id = "c-1").in_scope(|| {});
            let invoke = tracing::info_span!("Lambda runtime invoke", xrayTraceId = %header("0"));
            let _invoke = invoke.enter();
            let request = tracing::info_span!("request", correlation_id = "c-2");
            let _request = request.enter();
            tracing::debug_span!(
                "SQS.SendMessage",
                "rpc.service" = "SQS",
                "rpc.method" = "SendMessage",
                "rpc.system" = "aws-api"
            )
            .in_scope(|| {});
            current_trace_header()
        });
        assert!(received(&daemon).is_empty());
        assert_eq!(
            propagated,
            Some(format!("Root={ROOT};Parent={PARENT};Sampled=0;Lineage=a87bd80c:0")),
            "the decision not to sample still travels on"
        );
        assert_eq!(current_trace_header(), None, "no layer, no header");
    }
}
