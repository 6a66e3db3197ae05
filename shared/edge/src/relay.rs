//! The outbox relay, one for every producer: a message is committed with its state change
//! first ([`backoffice_store::outbox`]), sent afterwards and marked sent; a scheduled sweep
//! re-sends whatever is still pending, so an event is never lost (consumers de-duplicate on
//! business keys, because a crash between send and mark sends twice).

use std::collections::HashMap;

use async_trait::async_trait;
use backoffice_domain::Clock;
use backoffice_domain::retry::{Retry, RetryPolicy};
use backoffice_store::StoreError;
use backoffice_store::outbox::{Outbox, OutboxMessage};
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
    client: aws_sdk_sqs::Client,
    queues: HashMap<String, String>,
}

impl SqsPublisher {
    pub fn new(client: aws_sdk_sqs::Client, queues: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            client,
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
        self.client
            .send_message()
            .queue_url(url)
            .message_body(&message.body)
            .send()
            .await
            .map_err(|e| PublishError(format!("{e}")))?;
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
