//! email-events: the invoice e-mails' configuration set publishes bounce and complaint events
//! to an SNS topic, which feeds this function's queue. A permanent bounce marks the invoice's
//! e-mail `BOUNCED`, a complaint `COMPLAINED` (finance lists them with
//! `GET /invoices?email_status=BOUNCED`); transient bounces and other events are logged only.
//!
//! The e-mail's SES tags (`client_id`, `invoice_id`, set by invoice-issue) name the invoice.
//! What cannot be acted on — a malformed body, an e-mail without those tags, an invoice that
//! does not exist — is logged, counted and acknowledged: retrying would never change it. Only a
//! failure of the store itself is reported back, so SQS retries that message (then its DLQ).

pub mod notification;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use backoffice_domain::Clock;
use backoffice_edge::queue;
use backoffice_store::StoreError;
use backoffice_store::email_feedback::{EmailFeedback, EmailFeedbackStore, FeedbackOutcome, FeedbackStatus};

use notification::{Event, Notification, NotificationError};

/// The tags invoice-issue sends every invoice e-mail with (`invoice_issue::email::tags`).
pub use backoffice_edge::mail::{TAG_CLIENT, TAG_INVOICE};

pub struct EmailEvents<S, K> {
    pub invoices: S,
    pub clock: K,
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The store failed: SQS retries the message.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one message led to (all acknowledged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Marked(FeedbackStatus),
    AlreadyMarked(FeedbackStatus),
    /// A transient or undetermined bounce: SES retries the delivery itself.
    NotPermanent,
    UnknownInvoice,
    /// Not about an invoice e-mail, not an event we record, or unreadable.
    Ignored(&'static str),
}

impl Handled {
    fn metric(&self) -> &'static str {
        match self {
            Handled::Marked(FeedbackStatus::Bounced) => "bounced",
            Handled::Marked(FeedbackStatus::Complained) => "complained",
            Handled::AlreadyMarked(_) => "already_marked",
            Handled::NotPermanent => "transient_bounce",
            Handled::UnknownInvoice => "unknown_invoice",
            Handled::Ignored(_) => "ignored",
        }
    }
}

impl<S, K> EmailEvents<S, K>
where
    S: EmailFeedbackStore,
    K: Clock,
{
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        queue::each_message(event, |body| async move { self.process(&body).await }).await
    }

    pub async fn process(&self, body: &str) -> Result<Handled, EventError> {
        let handled = match notification::parse(body) {
            Ok(Some(notification)) => self.apply(&notification).await?,
            Ok(None) => Handled::Ignored("an SNS message that is not an event"),
            Err(error) => {
                // Never retried: the same bytes would fail the same way. The DLQ is for what a
                // fix on our side could still process, and this is SES's or SNS's shape.
                tracing::warn!(error = %error, "unreadable SES notification dropped");
                poison(&error);
                Handled::Ignored("unreadable")
            }
        };
        metrics::counter!("EmailFeedback", "Result" => handled.metric()).increment(1);
        Ok(handled)
    }

    async fn apply(&self, notification: &Notification) -> Result<Handled, EventError> {
        let (status, feedback_id, recipients, bounce_type, bounce_subtype, diagnostic, at) = match &notification.event {
            Event::Bounce(bounce) if !bounce.is_permanent() => {
                tracing::info!(
                    message_id = %notification.message_id,
                    bounce_type = %bounce.bounce_type,
                    bounce_subtype = bounce.bounce_subtype.as_deref().unwrap_or_default(),
                    "bounce not permanent: not marked"
                );
                return Ok(Handled::NotPermanent);
            }
            Event::Bounce(bounce) => (
                FeedbackStatus::Bounced,
                &bounce.feedback_id,
                &bounce.recipients,
                Some(bounce.bounce_type.clone()),
                bounce.bounce_subtype.clone(),
                bounce.diagnostic.clone(),
                bounce.at,
            ),
            Event::Complaint(complaint) => (
                FeedbackStatus::Complained,
                &complaint.feedback_id,
                &complaint.recipients,
                None,
                None,
                complaint.feedback_type.clone(),
                complaint.at,
            ),
            Event::Other(kind) => {
                tracing::debug!(message_id = %notification.message_id, event_type = %kind, "event not recorded");
                return Ok(Handled::Ignored("not a bounce or complaint"));
            }
        };
        let (Some(client_id), Some(invoice_id)) = (notification.tag(TAG_CLIENT), notification.tag(TAG_INVOICE)) else {
            tracing::warn!(message_id = %notification.message_id, status = status.as_str(), "feedback for an e-mail without invoice tags: not marked");
            return Ok(Handled::Ignored("no invoice tags"));
        };
        let feedback = EmailFeedback {
            status,
            feedback_id: feedback_id.clone(),
            message_id: notification.message_id.clone(),
            recipients: recipients.clone(),
            bounce_type,
            bounce_subtype,
            // Remote servers' answers can be long; what identifies the problem comes first.
            diagnostic: diagnostic.map(|d| d.chars().take(500).collect()),
            occurred_at: at,
            recorded_at: self.clock.now(),
        };
        // Addresses stay out of the logs (personal data): the invoice names the buyer.
        let handled = match self.invoices.mark_email(client_id, invoice_id, &feedback).await? {
            FeedbackOutcome::Marked { sent_message_id } => {
                if sent_message_id
                    .as_deref()
                    .is_some_and(|sent| sent != notification.message_id)
                {
                    tracing::warn!(client_id, invoice_id, message_id = %notification.message_id, "feedback about another e-mail of the invoice than the one recorded");
                }
                tracing::info!(client_id, invoice_id, status = status.as_str(), "invoice e-mail marked");
                Handled::Marked(status)
            }
            FeedbackOutcome::AlreadyMarked(current) => {
                tracing::info!(
                    client_id,
                    invoice_id,
                    status = status.as_str(),
                    current = current.as_str(),
                    "already marked: nothing changed"
                );
                Handled::AlreadyMarked(current)
            }
            FeedbackOutcome::UnknownInvoice => {
                tracing::warn!(
                    client_id,
                    invoice_id,
                    status = status.as_str(),
                    "feedback for an invoice that does not exist: not marked"
                );
                Handled::UnknownInvoice
            }
        };
        Ok(handled)
    }
}

fn poison(error: &NotificationError) {
    metrics::counter!("EmailFeedbackUnreadable", "Reason" => match error {
        NotificationError::NotJson(_) => "not_json",
        NotificationError::NotSesEvent(_) => "not_ses_event",
        NotificationError::Missing(..) => "missing_part",
        NotificationError::Timestamp(_) => "timestamp",
    })
    .increment(1);
}

#[cfg(test)]
mod tests;
