//! Outgoing e-mail: the port and its SESv2 adapter. Messages arrive fully built (MIME); the
//! adapter only hands them to the service with their envelope recipients.

use async_trait::async_trait;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};

/// A built message and its envelope: `bcc` recipients are in no header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub from: String,
    pub to: Vec<String>,
    pub bcc: Vec<String>,
    /// The whole RFC 5322 message.
    pub raw: Vec<u8>,
}

impl OutgoingEmail {
    pub fn recipients(&self) -> Vec<String> {
        self.to.iter().chain(&self.bcc).cloned().collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// The service refused this message (unverified sender, bad address…).
    #[error("message rejected: {0}")]
    Rejected(String),
    /// The service could not take it now (throttling, network): a retry may succeed.
    #[error("mail service unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Mailer: Send + Sync {
    /// Send; the service's message id on success.
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError>;
}

#[derive(Clone, Debug)]
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    configuration_set: Option<String>,
}

impl SesMailer {
    /// `configuration_set` tags every send (bounce and complaint tracking on AWS).
    pub fn new(client: aws_sdk_sesv2::Client, configuration_set: Option<String>) -> Self {
        Self {
            client,
            configuration_set: configuration_set.filter(|c| !c.is_empty()),
        }
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
        let raw = RawMessage::builder()
            .data(Blob::new(email.raw.clone()))
            .build()
            .map_err(|e| MailError::Rejected(e.to_string()))?;
        let destination = Destination::builder()
            .set_to_addresses(Some(email.to.clone()))
            .set_bcc_addresses(Some(email.bcc.clone()))
            .build();
        let output = self
            .client
            .send_email()
            .from_email_address(&email.from)
            .destination(destination)
            .content(EmailContent::builder().raw(raw).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map_err(|err| {
                use aws_sdk_sesv2::error::ProvideErrorMetadata;
                let code = err.code().unwrap_or("Unknown").to_owned();
                let message = err.message().map(str::to_owned).unwrap_or_else(|| err.to_string());
                match code.as_str() {
                    "MessageRejected"
                    | "MailFromDomainNotVerifiedException"
                    | "BadRequestException"
                    | "NotFoundException" => MailError::Rejected(format!("{code}: {message}")),
                    _ => MailError::Unavailable(format!("{code}: {message}")),
                }
            })?;
        output
            .message_id
            .ok_or_else(|| MailError::Unavailable("the service returned no message id".into()))
    }
}
