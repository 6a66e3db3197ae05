//! What became of an invoice's e-mail after SES accepted it (issue 15 item 5): a permanent
//! bounce or a complaint, recorded on the invoice item (`INVOICE#{client}#{id}` / `META`):
//!
//! | attribute               | what                                                        |
//! |-------------------------|-------------------------------------------------------------|
//! | `email_feedback_status` | `BOUNCED` or `COMPLAINED`: what finance's listing filters on |
//! | `email_feedback`        | the [`EmailFeedback`]: type, subtype, diagnostic, recipients, when |
//!
//! One write, conditioned: the invoice must exist (a notification never creates an item), and
//! the status only moves forward, nothing → `BOUNCED` → `COMPLAINED`. So a redelivered
//! notification changes nothing, a second bounce keeps the first one's details, and a complaint
//! after a bounce (another recipient of the same e-mail, or of a later one) replaces it: a
//! complaint is the stronger signal, nobody should mail that address again. A bounce after a
//! complaint changes nothing.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::StoreError;
use crate::dynamo::{corrupt, s, sdk_error, string_attr, update_condition_failed};
use crate::invoices::{DynamoInvoiceStore, EmailRecord};

/// What the recipients' servers or the recipients themselves said about the e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FeedbackStatus {
    /// A permanent bounce: the address does not take mail.
    Bounced,
    /// A recipient marked it as spam.
    Complained,
}

impl FeedbackStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackStatus::Bounced => "BOUNCED",
            FeedbackStatus::Complained => "COMPLAINED",
        }
    }

    pub fn parse(raw: &str) -> Option<FeedbackStatus> {
        match raw {
            "BOUNCED" => Some(FeedbackStatus::Bounced),
            "COMPLAINED" => Some(FeedbackStatus::Complained),
            _ => None,
        }
    }
}

/// One bounce or complaint, as recorded on the invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailFeedback {
    pub status: FeedbackStatus,
    /// SES's `feedbackId`: one per bounce or complaint notification.
    pub feedback_id: String,
    /// The SES message id of the e-mail it is about.
    pub message_id: String,
    /// The addresses that bounced or complained.
    pub recipients: Vec<String>,
    /// `Permanent`, and its subtype (`General`, `NoEmail`, `Suppressed`, …) for bounces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_subtype: Option<String>,
    /// The receiving server's answer (`smtp; 550 5.1.1 user unknown`), or the complaint's
    /// feedback type (`abuse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostic: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedbackOutcome {
    /// Recorded. `sent_message_id` is the message id the invoice's e-mail record holds (if
    /// any): a different one means the feedback is about another e-mail of the invoice.
    Marked { sent_message_id: Option<String> },
    /// The invoice's e-mail is already marked this way or more strongly: nothing changed.
    AlreadyMarked(FeedbackStatus),
    /// The client has no such invoice: nothing was written.
    UnknownInvoice,
}

#[async_trait]
pub trait EmailFeedbackStore: Send + Sync {
    /// Mark the invoice's e-mail with `feedback`, unless it is marked with `feedback.status` or
    /// a stronger one already; never creates an invoice.
    async fn mark_email(
        &self,
        client_id: &str,
        invoice_id: &str,
        feedback: &EmailFeedback,
    ) -> Result<FeedbackOutcome, StoreError>;
}

/// The condition that lets `status` be written: it only moves forward (the in-memory twin's
/// rule; DynamoDB's is the update's condition expression).
#[cfg(any(test, feature = "testing"))]
pub(crate) fn may_mark(current: Option<FeedbackStatus>, status: FeedbackStatus) -> bool {
    current.is_none_or(|current| current < status)
}

#[async_trait]
impl EmailFeedbackStore for DynamoInvoiceStore {
    async fn mark_email(
        &self,
        client_id: &str,
        invoice_id: &str,
        feedback: &EmailFeedback,
    ) -> Result<FeedbackOutcome, StoreError> {
        let (pk, sk) = Self::invoice_key(client_id, invoice_id);
        let value = serde_dynamo::to_attribute_value(feedback).map_err(corrupt("serializing email feedback"))?;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk.clone())
            .key("sk", sk.clone())
            .update_expression("SET email_feedback = :feedback, email_feedback_status = :status")
            .expression_attribute_values(":feedback", value)
            .expression_attribute_values(":status", s(feedback.status.as_str()))
            // The old item: its e-mail record's message id, to compare with the feedback's.
            .return_values(ReturnValue::AllOld);
        update = match feedback.status {
            FeedbackStatus::Bounced => {
                update.condition_expression("attribute_exists(pk) AND attribute_not_exists(email_feedback_status)")
            }
            FeedbackStatus::Complained => update
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(email_feedback_status) OR email_feedback_status = :bounced)",
                )
                .expression_attribute_values(":bounced", s(FeedbackStatus::Bounced.as_str())),
        };
        match update.send().await {
            Ok(output) => {
                let sent: Option<EmailRecord> = match output.attributes.and_then(|mut old| old.remove("email")) {
                    Some(value) => {
                        Some(serde_dynamo::from_attribute_value(value).map_err(corrupt("reading invoice email"))?)
                    }
                    None => None,
                };
                Ok(FeedbackOutcome::Marked {
                    sent_message_id: sent.map(|e| e.message_id),
                })
            }
            // Absent, or marked already: one consistent read tells which.
            Err(err) if update_condition_failed(&err) => match self.get(pk, sk).await? {
                None => Ok(FeedbackOutcome::UnknownInvoice),
                Some(item) => {
                    let current = string_attr(&item, "email_feedback_status");
                    let current = current.as_deref().and_then(FeedbackStatus::parse).ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "invoice {invoice_id}: email_feedback_status {current:?} refused a {}",
                            feedback.status.as_str()
                        ))
                    })?;
                    Ok(FeedbackOutcome::AlreadyMarked(current))
                }
            },
            Err(err) => Err(sdk_error(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_only_moves_forward() {
        use FeedbackStatus::*;
        assert!(may_mark(None, Bounced));
        assert!(may_mark(None, Complained));
        assert!(may_mark(Some(Bounced), Complained));
        assert!(!may_mark(Some(Bounced), Bounced));
        assert!(!may_mark(Some(Complained), Bounced));
        assert!(!may_mark(Some(Complained), Complained));
    }

    #[test]
    fn statuses_are_stored_in_capitals() {
        for status in [FeedbackStatus::Bounced, FeedbackStatus::Complained] {
            assert_eq!(serde_json::to_value(status).ok(), Some(status.as_str().into()));
            assert_eq!(FeedbackStatus::parse(status.as_str()), Some(status));
        }
    }
}
