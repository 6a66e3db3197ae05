//! The outbox relay, one for every producer: a message is committed with its state change
//! first ([`backoffice_store::outbox`]), sent afterwards and marked sent; a scheduled sweep
//! re-sends whatever is still pending, so an event is never lost (consumers de-duplicate on
//! business keys, because a crash between send and mark sends twice).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageSystemAttributeNameForSends, MessageSystemAttributeValue};
use backoffice_domain::Clock;
use backoffice_domain::retry::{Retry, RetryPolicy};
use backoffice_store::StoreError;
use backoffice_store::outbox::{Outbox, OutboxMessage};
use backoffice_store::sdk::SdkClient;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PublishError(pub String);

#[async_trait]
pub trait Publisher: Send + Sync {
    async fn publish(&self, message: &OutboxMessage) -> Result<(), PublishError>;
}

/// Sends each message to the queue URL of its `destination` ("sales", "billing").
pub struct SqsPublisher {
    client: SdkClient<aws_sdk_sqs::Client>,
    queues: HashMap<String, String>,
}

impl SqsPublisher {
    pub fn new(
        client: impl Into<SdkClient<aws_sdk_sqs::Client>>,
        queues: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        Self {
            client: client.into(),
            queues: queues.into_iter().collect(),
        }
    }
}

#[async_trait]
impl Publisher for SqsPublisher {
    async fn publish(&self, message: &OutboxMessage) -> Result<(), PublishError> {
        let url = self
            .queues
            .get(&message.destination)
            .ok_or_else(|| PublishError(format!("no queue for destination {}", message.destination)))?;
        let mut send = self.client.send_message().queue_url(url).message_body(&message.body);
        // The consumer's invocation joins this trace: X-Ray links SQS → Lambda by this header.
        // It overrides the invocation-wide one the SDK sends as `X-Amzn-Trace-Id`, naming the
        // request's or message's subsegment as the parent.
        if let Some(header) = crate::xray::current_trace_header() {
            let value = MessageSystemAttributeValue::builder()
                .data_type("String")
                .string_value(header)
                .build()
                .map_err(|e| PublishError(format!("trace header: {e}")))?;
            send = send.message_system_attributes(MessageSystemAttributeNameForSends::AwsTraceHeader, value);
        }
        send.send().await.map_err(|e| PublishError(format!("{e}")))?;
        Ok(())
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    pub sent: usize,
    /// Failed and due again later, on the retry schedule.
    pub failed: usize,
    /// Failed for the last allowed time: parked for an operator.
    pub parked: usize,
    /// The sweep stopped before the invocation's deadline with due messages left.
    pub stopped_early: bool,
}

/// How many due messages one sweep takes.
pub const SWEEP_BATCH: u32 = 100;

/// A sweep takes no new message this close to its invocation's deadline.
pub const SWEEP_MARGIN: time::Duration = time::Duration::seconds(3);

/// Send one committed message and mark it sent. `false` if the send failed: the message stays
/// pending for the sweep. A failed mark only means the sweep sends it once more.
pub async fn send<O, P>(outbox: &O, publisher: &P, message: &OutboxMessage) -> bool
where
    O: Outbox + ?Sized,
    P: Publisher + ?Sized,
{
    match publisher.publish(message).await {
        Ok(()) => {
            if let Err(e) = outbox.mark_sent(&message.message_id).await {
                tracing::warn!(message_id = %message.message_id, error = %e, "sent, but not marked sent");
            }
            true
        }
        Err(e) => {
            tracing::warn!(message_id = %message.message_id, error = %e, "send failed; the sweep will retry");
            false
        }
    }
}

/// Re-send the messages that are due, soonest due first (run on a schedule). A failure makes
/// its message due again later on [`RetryPolicy::DELIVERY`], so it never holds back newer
/// messages, and parks it once its attempts are spent; the sweep stops taking messages
/// [`SWEEP_MARGIN`] before `deadline`.
pub async fn sweep<O, P, C>(
    outbox: &O,
    publisher: &P,
    clock: &C,
    deadline: OffsetDateTime,
) -> Result<SweepReport, StoreError>
where
    O: Outbox + ?Sized,
    P: Publisher + ?Sized,
    C: Clock + ?Sized,
{
    let mut report = SweepReport::default();
    for message in outbox.pending_outbox(clock.now(), SWEEP_BATCH).await? {
        let now = clock.now();
        if now + SWEEP_MARGIN >= deadline {
            report.stopped_early = true;
            break;
        }
        if send(outbox, publisher, &message).await {
            report.sent += 1;
            continue;
        }
        let attempts = message.attempts.saturating_add(1);
        let retry = RetryPolicy::DELIVERY.after_failure(attempts, clock.now());
        if retry == Retry::Park {
            report.parked += 1;
            // The alarm's metric filter matches this message.
            tracing::error!(
                message_id = %message.message_id,
                destination = %message.destination,
                attempts,
                "outbox message parked: its attempts are spent"
            );
        } else {
            report.failed += 1;
        }
        if let Err(e) = outbox.mark_failed(&message, retry).await {
            tracing::warn!(message_id = %message.message_id, error = %e, "could not record the failed send");
        }
    }
    tracing::info!(
        sent = report.sent,
        failed = report.failed,
        parked = report.parked,
        stopped_early = report.stopped_early,
        "outbox sweep"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use backoffice_domain::events::{Event, SaleConfirmed};
    use backoffice_domain::testing::FixedClock;
    use backoffice_store::outbox::MemoryOutbox;
    use time::macros::datetime;

    use super::*;

    /// An outbox of [`MemoryOutbox`] behind the port.
    #[derive(Default)]
    struct Outboxed(Mutex<MemoryOutbox>);

    #[async_trait]
    impl Outbox for Outboxed {
        async fn pending_outbox(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
            Ok(self
                .0
                .lock()
                .map_err(|_| StoreError::Unavailable("poisoned".into()))?
                .pending(now, limit))
        }
        async fn mark_sent(&self, message_id: &str) -> Result<(), StoreError> {
            self.0
                .lock()
                .map_err(|_| StoreError::Unavailable("poisoned".into()))?
                .mark_sent(message_id);
            Ok(())
        }
        async fn mark_failed(&self, message: &OutboxMessage, retry: Retry) -> Result<(), StoreError> {
            self.0
                .lock()
                .map_err(|_| StoreError::Unavailable("poisoned".into()))?
                .mark_failed(message, retry);
            Ok(())
        }
        async fn parked_outbox(&self, _limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
            Ok(self
                .0
                .lock()
                .map_err(|_| StoreError::Unavailable("poisoned".into()))?
                .parked())
        }
    }

    /// Refuses the messages whose ids it is told to, and each send takes a second of the clock.
    struct Picky<'a> {
        refuse: Vec<String>,
        clock: &'a FixedClock,
        sent: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Publisher for Picky<'_> {
        async fn publish(&self, message: &OutboxMessage) -> Result<(), PublishError> {
            self.clock.advance(time::Duration::seconds(1));
            if self.refuse.contains(&message.message_id) {
                return Err(PublishError("refused".into()));
            }
            self.sent
                .lock()
                .map_err(|_| PublishError("poisoned".into()))?
                .push(message.message_id.clone());
            Ok(())
        }
    }

    fn message(n: u32, at: OffsetDateTime) -> OutboxMessage {
        OutboxMessage {
            message_id: format!("m-{n:04}"),
            destination: SaleConfirmed::QUEUE.into(),
            body: "{}".into(),
            created_at_ns: i64::try_from(at.unix_timestamp_nanos()).unwrap_or_default(),
            attempts: 0,
        }
    }

    const START: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

    /// A stand-in SQS endpoint on 127.0.0.1: answers one request and hands back its body.
    async fn one_sqs_request() -> (String, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut request = Vec::new();
            let mut buffer = [0u8; 8192];
            loop {
                let n = stream.read(&mut buffer).await.expect("read");
                request.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&request).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or_default();
                    if body.len() >= length || n == 0 {
                        let answer = r#"{"MessageId":"m-1","MD5OfMessageBody":"x"}"#;
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                            answer.len()
                        );
                        stream.write_all(response.as_bytes()).await.expect("write");
                        return body.to_owned();
                    }
                }
            }
        });
        (url, server)
    }

    #[tokio::test]
    async fn a_message_sent_in_a_traced_invocation_carries_its_trace_header() {
        use tracing::Instrument;
        use tracing_subscriber::Layer;
        use tracing_subscriber::filter::{LevelFilter, filter_fn};
        use tracing_subscriber::layer::SubscriberExt;

        let daemon = std::net::UdpSocket::bind("127.0.0.1:0").expect("daemon");
        daemon
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .expect("timeout");
        let layer = crate::xray::XrayLayer::new(daemon.local_addr().expect("address"), None).expect("layer");
        let subscriber = tracing_subscriber::registry()
            .with(layer.with_filter(filter_fn(crate::xray::reads).with_max_level_hint(LevelFilter::DEBUG)));
        let _traced = tracing::subscriber::set_default(subscriber);

        let (endpoint, server) = one_sqs_request().await;
        // The functions' own HTTP client (plain HTTP here), through the SDK.
        let tls = crate::https::tls_config(crate::aws::amazon_roots()).expect("tls");
        let http = aws_smithy_runtime_api::client::http::SharedHttpClient::new(crate::https::SdkHttpClient::new(tls));
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "AKID", "secret", None, None, "test",
            ))
            .endpoint_url(&endpoint)
            .http_client(http)
            .build();
        let publisher = SqsPublisher::new(
            aws_sdk_sqs::Client::from_conf(config),
            [(
                SaleConfirmed::QUEUE.to_owned(),
                format!("{endpoint}/000000000000/sales"),
            )],
        );
        let root = "1-5759e988-bd862e3fe1be46a994272793";
        let invoke = tracing::info_span!("Lambda runtime invoke", xrayTraceId = %format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1"));
        let request = tracing::info_span!(parent: &invoke, "request", correlation_id = "corr-9");
        publisher
            .publish(&message(1, START))
            .instrument(request)
            .instrument(invoke)
            .await
            .expect("sent");

        let body: serde_json::Value = serde_json::from_str(&server.await.expect("server")).expect("json body");
        let header = body["MessageSystemAttributes"]["AWSTraceHeader"]["StringValue"]
            .as_str()
            .expect("an AWSTraceHeader")
            .to_owned();
        let mut buffer = [0u8; 65_536];
        let mut documents = Vec::new();
        while documents.len() < 2 {
            let n = daemon.recv(&mut buffer).expect("two subsegments");
            let text = std::str::from_utf8(&buffer[..n]).expect("utf-8");
            let (_, document) = text.split_once('\n').expect("header line");
            documents.push(serde_json::from_str::<serde_json::Value>(document).expect("document"));
        }
        // The SDK's own span (SQS.SendMessage) closes first, then the request's.
        let (call, request) = (&documents[0], &documents[1]);
        assert_eq!(call["name"], "SQS");
        assert_eq!(call["aws"]["operation"], "SendMessage");
        assert_eq!(call["parent_id"], request["id"]);
        assert_eq!(call["annotations"]["correlation_id"], "corr-9");
        assert_eq!(request["trace_id"], root);
        let request_id = request["id"].as_str().expect("id");
        assert_eq!(header, format!("Root={root};Parent={request_id};Sampled=1"));
    }

    #[tokio::test]
    async fn failures_move_behind_newer_messages_instead_of_blocking_them() {
        let clock = FixedClock::at(START);
        let outbox = Outboxed::default();
        // A full batch of old messages that keep failing, then ten newer ones.
        let mut refuse = Vec::new();
        for n in 0..SWEEP_BATCH {
            let m = message(n, START - time::Duration::hours(1));
            refuse.push(m.message_id.clone());
            outbox.0.lock().expect("lock").insert(&m);
        }
        for n in 1000..1010 {
            outbox
                .0
                .lock()
                .expect("lock")
                .insert(&message(n, START - time::Duration::minutes(1)));
        }
        let publisher = Picky {
            refuse,
            clock: &clock,
            sent: Mutex::default(),
        };
        let deadline = || clock.now() + time::Duration::minutes(15);
        let first = sweep(&outbox, &publisher, &clock, deadline()).await.expect("sweep");
        assert_eq!((first.sent, first.failed), (0, SWEEP_BATCH as usize));
        let second = sweep(&outbox, &publisher, &clock, deadline()).await.expect("sweep");
        assert_eq!(
            second.sent, 10,
            "the newer messages go out on the next sweep: {second:?}"
        );
        // A second a send: the first sweep took 100 s, so only the first 40 failures are due again.
        assert_eq!(second.failed, 40, "the others wait for their retry time");
    }

    #[tokio::test]
    async fn a_message_that_keeps_failing_is_parked_after_its_attempts() {
        let clock = FixedClock::at(START);
        let outbox = Outboxed::default();
        let m = message(1, START);
        outbox.0.lock().expect("lock").insert(&m);
        let publisher = Picky {
            refuse: vec![m.message_id.clone()],
            clock: &clock,
            sent: Mutex::default(),
        };
        let mut tries = 0;
        loop {
            let report = sweep(&outbox, &publisher, &clock, clock.now() + time::Duration::minutes(15))
                .await
                .expect("sweep");
            tries += report.failed + report.parked;
            if report.parked == 1 {
                break;
            }
            assert!(tries < 20, "never parked");
            clock.advance(time::Duration::hours(1));
        }
        assert_eq!(tries, RetryPolicy::DELIVERY.max_attempts as usize);
        clock.advance(time::Duration::days(30));
        let after = sweep(&outbox, &publisher, &clock, clock.now() + time::Duration::minutes(15))
            .await
            .expect("sweep");
        assert_eq!(after, SweepReport::default(), "parked messages are not retried");
        let parked = outbox.parked_outbox(10).await.expect("parked");
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].attempts, RetryPolicy::DELIVERY.max_attempts);
    }

    #[tokio::test]
    async fn a_sweep_stops_before_the_deadline_and_leaves_the_rest_pending() {
        let clock = FixedClock::at(START);
        let outbox = Outboxed::default();
        for n in 0..20 {
            outbox.0.lock().expect("lock").insert(&message(n, START));
        }
        let publisher = Picky {
            refuse: Vec::new(),
            clock: &clock,
            sent: Mutex::default(),
        };
        // Ten seconds left, a second per send, three seconds kept in hand: seven sends.
        let report = sweep(&outbox, &publisher, &clock, START + time::Duration::seconds(10))
            .await
            .expect("sweep");
        assert_eq!((report.sent, report.stopped_early), (7, true));
        let rest = sweep(&outbox, &publisher, &clock, clock.now() + time::Duration::minutes(1))
            .await
            .expect("sweep");
        assert_eq!((rest.sent, rest.stopped_early), (13, false));
    }
}
