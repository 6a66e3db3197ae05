//! SES event notifications as they reach the queue: SES event publishing (configuration set →
//! SNS topic → SQS) wraps the event in an SNS envelope whose `Message` is the event's JSON
//! text. A raw-delivery subscription, or SES's older identity notifications, put the event in
//! the body itself; both are read too, so changing the subscription breaks nothing.
//!
//! Event publishing names the kind `eventType` (`Bounce`, `Complaint`, `Delivery`, `Send`…);
//! identity notifications name it `notificationType`. `mail.tags` carries the message tags the
//! e-mail was sent with (name → values), which is how an event finds its invoice.

use std::collections::HashMap;

use serde::Deserialize;
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("the SNS envelope's Message is not an SES event: {0}")]
    NotSesEvent(String),
    #[error("{0} event without its {1} object")]
    Missing(&'static str, &'static str),
    #[error("bad timestamp {0:?}")]
    Timestamp(String),
}

/// What one notification says about one e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// SES's message id of the e-mail.
    pub message_id: String,
    pub tags: HashMap<String, Vec<String>>,
    pub event: Event,
}

impl Notification {
    /// The first value of tag `name`.
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags.get(name)?.first().map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Bounce(Bounce),
    Complaint(Complaint),
    /// Any other kind (`Delivery`, `Send`, `Open`…) or an SNS message that is not an event
    /// (`SubscriptionConfirmation`): nothing to record.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    /// `Permanent`, `Transient` or `Undetermined`.
    pub bounce_type: String,
    pub bounce_subtype: Option<String>,
    pub feedback_id: String,
    pub recipients: Vec<String>,
    /// The first recipient's diagnostic code (the remote server's answer).
    pub diagnostic: Option<String>,
    pub at: OffsetDateTime,
}

impl Bounce {
    /// Only a permanent bounce says the address is bad; transient ones (mailbox full, server
    /// down) are SES's to retry, and undetermined ones say nothing certain.
    pub fn is_permanent(&self) -> bool {
        self.bounce_type == "Permanent"
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    pub feedback_id: String,
    pub recipients: Vec<String>,
    /// `abuse`, `fraud`, `not-spam`… when the mailbox provider says.
    pub feedback_type: Option<String>,
    pub at: OffsetDateTime,
}

#[derive(Deserialize)]
struct SnsEnvelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Message", default)]
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesEvent {
    event_type: Option<String>,
    notification_type: Option<String>,
    mail: Mail,
    bounce: Option<SesBounce>,
    complaint: Option<SesComplaint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mail {
    message_id: String,
    #[serde(default)]
    tags: HashMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesBounce {
    bounce_type: String,
    bounce_sub_type: Option<String>,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
    timestamp: String,
    feedback_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesComplaint {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    timestamp: String,
    feedback_id: String,
    complaint_feedback_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: String,
    diagnostic_code: Option<String>,
}

fn timestamp(raw: &str) -> Result<OffsetDateTime, NotificationError> {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|_| NotificationError::Timestamp(raw.to_owned()))
}

/// Read one queue message's body. `Ok(None)`: an SNS message that is no event at all.
pub fn parse(body: &str) -> Result<Option<Notification>, NotificationError> {
    let value: serde_json::Value = serde_json::from_str(body).map_err(|e| NotificationError::NotJson(e.to_string()))?;
    let event_text;
    let event_value = if value.get("Type").is_some() {
        let envelope: SnsEnvelope =
            serde_json::from_value(value).map_err(|e| NotificationError::NotSesEvent(e.to_string()))?;
        match (envelope.kind.as_str(), envelope.message) {
            ("Notification", Some(message)) => {
                event_text = message;
                serde_json::from_str(&event_text).map_err(|e| NotificationError::NotSesEvent(e.to_string()))?
            }
            _ => return Ok(None),
        }
    } else {
        value
    };
    let event: SesEvent =
        serde_json::from_value(event_value).map_err(|e| NotificationError::NotSesEvent(e.to_string()))?;
    let kind = event
        .event_type
        .or(event.notification_type)
        .unwrap_or_else(|| "Unknown".to_owned());
    let parsed = match kind.as_str() {
        "Bounce" => {
            let bounce = event.bounce.ok_or(NotificationError::Missing("Bounce", "bounce"))?;
            Event::Bounce(Bounce {
                at: timestamp(&bounce.timestamp)?,
                diagnostic: bounce.bounced_recipients.iter().find_map(|r| r.diagnostic_code.clone()),
                recipients: bounce.bounced_recipients.into_iter().map(|r| r.email_address).collect(),
                bounce_type: bounce.bounce_type,
                bounce_subtype: bounce.bounce_sub_type,
                feedback_id: bounce.feedback_id,
            })
        }
        "Complaint" => {
            let complaint = event
                .complaint
                .ok_or(NotificationError::Missing("Complaint", "complaint"))?;
            Event::Complaint(Complaint {
                at: timestamp(&complaint.timestamp)?,
                recipients: complaint
                    .complained_recipients
                    .into_iter()
                    .map(|r| r.email_address)
                    .collect(),
                feedback_type: complaint.complaint_feedback_type,
                feedback_id: complaint.feedback_id,
            })
        }
        _ => Event::Other(kind),
    };
    Ok(Some(Notification {
        message_id: event.mail.message_id,
        tags: event.mail.tags,
        event: parsed,
    }))
}
