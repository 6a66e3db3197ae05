//! Payment reminders (dunning): one item per invoice and offset, in the invoice's partition, so
//! the invoice's file holds every reminder it got.
//!
//! | item     | pk                          | sk                      |
//! |----------|-----------------------------|-------------------------|
//! | reminder | `INVOICE#{client}#{number}` | `REMINDER#{offset:+04}` (`REMINDER#-003`, `REMINDER#+015`) |
//!
//! At most once per invoice and offset: the item is claimed (created, `CLAIMED`, with a lease)
//! by a conditional write before the e-mail is sent, and marked `SENT` with the mail service's
//! message id after. A claim is taken only if there is no item, or a `CLAIMED` one whose lease
//! ran out: a `SENT` (or `FAILED`: the service refused the message) reminder is never sent
//! again, and two runs at once never both send. A run that dies between its claim and its mark
//! leaves a `CLAIMED` item whose lease ends with that run's invocation; the next run takes it
//! over and sends. The one window where that repeats a reminder is a crash after the mail service
//! accepted it and before the mark was written (milliseconds); the message keeps its Message-ID,
//! so a mail client shows the repeat as the same message. A lost reminder would be silent; a
//! repeated one is visible and harmless.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use backoffice_domain::dunning::Offset;

use crate::StoreError;
use crate::dynamo::{Item, corrupt, get_item, nanos, s, sdk_error, update_condition_failed};
use crate::invoices::n;
use crate::sdk::SdkClient;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReminderState {
    /// Being sent by the run whose lease it holds (or left by a run that died: retried once the
    /// lease is over).
    Claimed,
    Sent,
    /// The mail service refused the message itself (an address it will never take): not retried.
    Failed,
}

impl ReminderState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claimed => "CLAIMED",
            Self::Sent => "SENT",
            Self::Failed => "FAILED",
        }
    }
}

/// One reminder of one invoice, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderRecord {
    pub client_id: String,
    pub invoice_id: String,
    #[serde(rename = "offset_days")]
    pub offset: Offset,
    #[serde(with = "backoffice_domain::wire::date")]
    pub due_date: Date,
    /// The client's local day of the run that (last) claimed it.
    #[serde(with = "backoffice_domain::wire::date")]
    pub run_date: Date,
    #[serde(rename = "reminder_state")]
    pub state: ReminderState,
    /// Claims taken: more than one means a run died (or failed to send) before.
    #[serde(default)]
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub claimed_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub sent_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What a run asks for: the right to send `offset`'s reminder of an invoice until `lease_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderClaim {
    pub client_id: String,
    pub invoice_id: String,
    pub offset: Offset,
    pub due_date: Date,
    pub run_date: Date,
    pub now: OffsetDateTime,
    /// Past the end of the claiming invocation: nobody takes it over while this run may still
    /// be sending.
    pub lease_until: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// Ours to send; the claim's number (1 for the first).
    Claimed { attempt: u32 },
    /// Sent (or refused for good) already.
    Done(ReminderRecord),
    /// Another run holds it right now.
    Busy,
}

#[async_trait]
pub trait ReminderStore: Send + Sync {
    /// The reminder of `offset` for the invoice, if any run claimed it.
    async fn reminder(
        &self,
        client_id: &str,
        invoice_id: &str,
        offset: Offset,
    ) -> Result<Option<ReminderRecord>, StoreError>;

    async fn claim(&self, claim: &ReminderClaim) -> Result<ClaimOutcome, StoreError>;

    /// The reminder went out: its message id, recipients and time; the lease ends.
    async fn mark_sent(
        &self,
        client_id: &str,
        invoice_id: &str,
        offset: Offset,
        message_id: &str,
        recipients: &[String],
        sent_at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// The send failed for now: the lease ends at `now` (the next run retries), the reason stays.
    async fn release(
        &self,
        client_id: &str,
        invoice_id: &str,
        offset: Offset,
        error: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// The mail service refused the message for good: `FAILED`, never retried.
    async fn mark_failed(
        &self,
        client_id: &str,
        invoice_id: &str,
        offset: Offset,
        error: &str,
    ) -> Result<(), StoreError>;
}

// ---------------------------------------------------------------------------------------------
// DynamoDB
// ---------------------------------------------------------------------------------------------

/// Reminders in the invoices table (InvoicesTable).
#[derive(Clone, Debug)]
pub struct DynamoReminderStore {
    client: SdkClient<Client>,
    table: String,
}

impl DynamoReminderStore {
    pub fn new(client: impl Into<SdkClient<Client>>, table: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            table: table.into(),
        }
    }

    fn key(client_id: &str, invoice_id: &str, offset: Offset) -> (String, String) {
        (format!("INVOICE#{client_id}#{invoice_id}"), reminder_sk(offset))
    }

    /// An update of a `CLAIMED` reminder; a reminder in another state (or none) is left as is.
    async fn update_claimed(
        &self,
        client_id: &str,
        invoice_id: &str,
        offset: Offset,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<(), StoreError> {
        let (pk, sk) = Self::key(client_id, invoice_id, offset);
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression(expression)
            .condition_expression("reminder_state = :claimed")
            .expression_attribute_values(":claimed", s(ReminderState::Claimed.as_str()));
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        match update.send().await {
            Ok(_) => Ok(()),
            // Marked already (a run that took it over after our lease ended): the first stands.
            Err(err) if update_condition_failed(&err) => {
                tracing::warn!(client_id, invoice_id, offset = %offset, "reminder no longer claimed: left as it is");
                Ok(())
            }
            Err(err) => Err(sdk_error(err)),
        }
    }
}

/// `REMINDER#-003`, `REMINDER#+015`.
pub fn reminder_sk(offset: Offset) -> String {
    format!("REMINDER#{offset}")
}

/// A reminder item of an invoice's partition (for readers of the whole file, too).
pub(crate) fn reminder_record(item: Item) -> Result<ReminderRecord, StoreError> {
    serde_dynamo::from_item(item).map_err(corrupt("reading reminder"))
}

#[async_trait]
impl ReminderStore for DynamoReminderStore {
    async fn reminder(
        &self,
        client_id: &str,
        invoice_id: &str,
        offset: Offset,
    ) -> Result<Option<ReminderRecord>, StoreError> {
        let (pk, sk) = Self::key(client_id, invoice_id, offset);
        get_item(&self.client, &self.table, pk, sk)
            .await?
            .map(reminder_record)
            .transpose()
    }

    async fn claim(&self, claim: &ReminderClaim) -> Result<ClaimOutcome, StoreError> {
        let (pk, sk) = Self::key(&claim.client_id, &claim.invoice_id, claim.offset);
        let claimed_at = claim
            .now
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| StoreError::Backend(format!("formatting the claim's time: {e}")))?;
        // One write creates the reminder or takes over one whose lease is over: a SENT or
        // FAILED one, or a live claim, fails the condition.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression(
                "SET client_id = :client, invoice_id = :invoice, offset_days = :offset, due_date = :due, \
                 run_date = :run, reminder_state = :claimed, lease_until = :lease, claimed_at = :at \
                 ADD attempts :one",
            )
            .condition_expression("attribute_not_exists(pk) OR (reminder_state = :claimed AND lease_until < :now)")
            .expression_attribute_values(":client", s(&claim.client_id))
            .expression_attribute_values(":invoice", s(&claim.invoice_id))
            .expression_attribute_values(":offset", n(claim.offset.0))
            .expression_attribute_values(":due", s(claim.due_date.to_string()))
            .expression_attribute_values(":run", s(claim.run_date.to_string()))
            .expression_attribute_values(":claimed", s(ReminderState::Claimed.as_str()))
            .expression_attribute_values(":lease", n(nanos(claim.lease_until)))
            .expression_attribute_values(":now", n(nanos(claim.now)))
            .expression_attribute_values(":at", s(claimed_at))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let attempt = output
                    .attributes()
                    .and_then(|a| a.get("attempts"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                Ok(ClaimOutcome::Claimed { attempt })
            }
            Err(err) if update_condition_failed(&err) => {
                match self.reminder(&claim.client_id, &claim.invoice_id, claim.offset).await? {
                    Some(record) if record.state != ReminderState::Claimed => Ok(ClaimOutcome::Done(record)),
                    _ => Ok(ClaimOutcome::Busy),
                }
            }
            Err(err) => Err(sdk_error(err)),
        }
    }

    async fn mark_sent(
        &self,
        client_id: &str,
        invoice_id: &str,
        offset: Offset,
        message_id: &str,
        recipients: &[String],
        sent_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let sent_at = sent_at
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| StoreError::Backend(format!("formatting the send's time: {e}")))?;
        let recipients = AttributeValue::L(recipients.iter().map(s).collect());
        self.update_claimed(
            client_id,
            invoice_id,
            offset,
            "SET reminder_state = :sent, message_id = :message, recipients = :to, sent_at = :at \
             REMOVE lease_until, last_error",
            vec![
                (":sent", s(ReminderState::Sent.as_str())),
                (":message", s(message_id)),
                (":to", recipients),
                (":at", s(sent_at)),
            ],
        )
        .await
    }

    async fn release(
        &self,
        client_id: &str,
        invoice_id: &str,
        offset: Offset,
        error: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.update_claimed(
            client_id,
            invoice_id,
            offset,
            "SET lease_until = :now, last_error = :error",
            vec![(":now", n(nanos(now))), (":error", s(error))],
        )
        .await
    }

    async fn mark_failed(
        &self,
        client_id: &str,
        invoice_id: &str,
        offset: Offset,
        error: &str,
    ) -> Result<(), StoreError> {
        self.update_claimed(
            client_id,
            invoice_id,
            offset,
            "SET reminder_state = :failed, last_error = :error REMOVE lease_until",
            vec![(":failed", s(ReminderState::Failed.as_str())), (":error", s(error))],
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory twin
// ---------------------------------------------------------------------------------------------

#[cfg(any(test, feature = "testing"))]
pub use memory::MemoryReminderStore;

#[cfg(any(test, feature = "testing"))]
mod memory {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    type Key = (String, String, Offset);
    /// Each reminder with its lease (none once it is sent or failed).
    type Reminders = BTreeMap<Key, (ReminderRecord, Option<OffsetDateTime>)>;

    /// [`ReminderStore`] in memory, with the same conditions.
    #[derive(Default)]
    pub struct MemoryReminderStore {
        state: Mutex<Reminders>,
    }

    fn key(client_id: &str, invoice_id: &str, offset: Offset) -> Key {
        (client_id.to_owned(), invoice_id.to_owned(), offset)
    }

    impl MemoryReminderStore {
        fn lock(&self) -> Result<std::sync::MutexGuard<'_, Reminders>, StoreError> {
            self.state
                .lock()
                .map_err(|_| StoreError::Backend("memory store poisoned".into()))
        }

        /// Every reminder, by client, invoice and offset.
        pub fn all(&self) -> Vec<ReminderRecord> {
            self.state
                .lock()
                .map(|s| s.values().map(|(r, _)| r.clone()).collect())
                .unwrap_or_default()
        }

        fn update_claimed(
            &self,
            client_id: &str,
            invoice_id: &str,
            offset: Offset,
            change: impl FnOnce(&mut ReminderRecord, &mut Option<OffsetDateTime>),
        ) -> Result<(), StoreError> {
            let mut state = self.lock()?;
            if let Some((record, lease)) = state.get_mut(&key(client_id, invoice_id, offset))
                && record.state == ReminderState::Claimed
            {
                change(record, lease);
            }
            Ok(())
        }
    }

    #[async_trait]
    impl ReminderStore for MemoryReminderStore {
        async fn reminder(
            &self,
            client_id: &str,
            invoice_id: &str,
            offset: Offset,
        ) -> Result<Option<ReminderRecord>, StoreError> {
            Ok(self
                .lock()?
                .get(&key(client_id, invoice_id, offset))
                .map(|(r, _)| r.clone()))
        }

        async fn claim(&self, claim: &ReminderClaim) -> Result<ClaimOutcome, StoreError> {
            let mut state = self.lock()?;
            let k = key(&claim.client_id, &claim.invoice_id, claim.offset);
            let attempts = match state.get(&k) {
                None => 0,
                Some((record, _)) if record.state != ReminderState::Claimed => {
                    return Ok(ClaimOutcome::Done(record.clone()));
                }
                Some((record, Some(lease))) if *lease < claim.now => record.attempts,
                Some(_) => return Ok(ClaimOutcome::Busy),
            };
            let previous = state.get(&k).map(|(r, _)| r.clone());
            let record = ReminderRecord {
                client_id: claim.client_id.clone(),
                invoice_id: claim.invoice_id.clone(),
                offset: claim.offset,
                due_date: claim.due_date,
                run_date: claim.run_date,
                state: ReminderState::Claimed,
                attempts: attempts + 1,
                claimed_at: claim.now,
                message_id: None,
                recipients: Vec::new(),
                sent_at: None,
                last_error: previous.and_then(|p| p.last_error),
            };
            state.insert(k, (record, Some(claim.lease_until)));
            Ok(ClaimOutcome::Claimed { attempt: attempts + 1 })
        }

        async fn mark_sent(
            &self,
            client_id: &str,
            invoice_id: &str,
            offset: Offset,
            message_id: &str,
            recipients: &[String],
            sent_at: OffsetDateTime,
        ) -> Result<(), StoreError> {
            self.update_claimed(client_id, invoice_id, offset, |record, lease| {
                record.state = ReminderState::Sent;
                record.message_id = Some(message_id.to_owned());
                record.recipients = recipients.to_vec();
                record.sent_at = Some(sent_at);
                record.last_error = None;
                *lease = None;
            })
        }

        async fn release(
            &self,
            client_id: &str,
            invoice_id: &str,
            offset: Offset,
            error: &str,
            now: OffsetDateTime,
        ) -> Result<(), StoreError> {
            self.update_claimed(client_id, invoice_id, offset, |record, lease| {
                record.last_error = Some(error.to_owned());
                *lease = Some(now);
            })
        }

        async fn mark_failed(
            &self,
            client_id: &str,
            invoice_id: &str,
            offset: Offset,
            error: &str,
        ) -> Result<(), StoreError> {
            self.update_claimed(client_id, invoice_id, offset, |record, lease| {
                record.state = ReminderState::Failed;
                record.last_error = Some(error.to_owned());
                *lease = None;
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    fn claim(now: OffsetDateTime) -> ReminderClaim {
        ReminderClaim {
            client_id: "acme".into(),
            invoice_id: "F001-00000001".into(),
            offset: Offset(1),
            due_date: date!(2026 - 12 - 31),
            run_date: date!(2027 - 01 - 01),
            now,
            lease_until: now + time::Duration::minutes(5),
        }
    }

    #[tokio::test]
    async fn a_reminder_is_claimed_once_retaken_after_its_lease_and_never_after_it_is_sent() {
        let store = MemoryReminderStore::default();
        let now = datetime!(2027-01-01 13:00 UTC);
        assert_eq!(store.claim(&claim(now)).await, Ok(ClaimOutcome::Claimed { attempt: 1 }));
        assert_eq!(store.claim(&claim(now)).await, Ok(ClaimOutcome::Busy), "a live claim");
        // The claimer died: once its lease is over, the next run takes it over.
        let later = now + time::Duration::days(1);
        assert_eq!(
            store.claim(&claim(later)).await,
            Ok(ClaimOutcome::Claimed { attempt: 2 })
        );
        let to = vec!["rosa@example.com".to_owned()];
        store
            .mark_sent("acme", "F001-00000001", Offset(1), "msg-1", &to, later)
            .await
            .expect("marked");
        let Ok(ClaimOutcome::Done(record)) = store.claim(&claim(later + time::Duration::days(9))).await else {
            panic!("a sent reminder is done");
        };
        assert_eq!(
            (
                record.state,
                record.message_id.as_deref(),
                record.recipients,
                record.attempts
            ),
            (ReminderState::Sent, Some("msg-1"), to, 2)
        );
    }

    #[tokio::test]
    async fn a_released_claim_is_retaken_and_a_failed_one_never() {
        let store = MemoryReminderStore::default();
        let now = datetime!(2027-01-01 13:00 UTC);
        store.claim(&claim(now)).await.expect("claimed");
        store
            .release("acme", "F001-00000001", Offset(1), "throttled", now)
            .await
            .expect("released");
        let next = now + time::Duration::seconds(1);
        assert_eq!(
            store.claim(&claim(next)).await,
            Ok(ClaimOutcome::Claimed { attempt: 2 })
        );
        store
            .mark_failed("acme", "F001-00000001", Offset(1), "rejected")
            .await
            .expect("failed");
        assert!(matches!(
            store.claim(&claim(next + time::Duration::days(1))).await,
            Ok(ClaimOutcome::Done(ReminderRecord {
                state: ReminderState::Failed,
                ..
            }))
        ));
        // Another offset of the same invoice is a reminder of its own.
        let other = ReminderClaim {
            offset: Offset(15),
            ..claim(next)
        };
        assert_eq!(store.claim(&other).await, Ok(ClaimOutcome::Claimed { attempt: 1 }));
    }

    #[test]
    fn the_stored_record_reads_back() {
        let record = ReminderRecord {
            client_id: "acme".into(),
            invoice_id: "F001-00000001".into(),
            offset: Offset(-3),
            due_date: date!(2026 - 12 - 31),
            run_date: date!(2026 - 12 - 28),
            state: ReminderState::Sent,
            attempts: 1,
            claimed_at: datetime!(2026-12-28 13:00 UTC),
            message_id: Some("m".into()),
            recipients: vec!["a@example.com".into()],
            sent_at: Some(datetime!(2026-12-28 13:00:01 UTC)),
            last_error: None,
        };
        let item: Item = serde_dynamo::to_item(&record).expect("an item");
        assert_eq!(
            item.get("offset_days").and_then(|v| v.as_n().ok()).map(String::as_str),
            Some("-3")
        );
        assert_eq!(
            item.get("reminder_state")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
            Some("SENT")
        );
        assert_eq!(reminder_record(item), Ok(record));
        assert_eq!(reminder_sk(Offset(-3)), "REMINDER#-003");
    }
}
