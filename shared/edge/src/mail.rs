//! Outgoing e-mail: the port and its SESv2 adapter. Messages arrive fully built (MIME); the
//! adapter only hands them to the service with their envelope recipients.

use async_trait::async_trait;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, MessageTag, RawMessage};
use backoffice_store::sdk::SdkClient;

/// A built message and its envelope: `bcc` recipients are in no header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub from: String,
    pub to: Vec<String>,
    pub bcc: Vec<String>,
    /// The whole RFC 5322 message.
    pub raw: Vec<u8>,
    /// SES message tags: they come back in the configuration set's bounce and complaint
    /// events (`mail.tags`), which is how those events find the document they are about.
    pub tags: Vec<EmailTag>,
}

/// Tag names every e-mail about an invoice carries: email-events finds the invoice by them in
/// SES's bounce and complaint events.
pub const TAG_CLIENT: &str = "client_id";
pub const TAG_INVOICE: &str = "invoice_id";

/// The tags of an e-mail about invoice `invoice_id` of `client_id`, and the `extra` pairs; none
/// at all when SES would refuse one of them (the e-mail still goes, only its bounces go
/// unmarked, and email-events logs them as untagged).
pub fn invoice_tags(client_id: &str, invoice_id: &str, extra: &[(&str, &str)]) -> Vec<EmailTag> {
    let pairs = [(TAG_CLIENT, client_id), (TAG_INVOICE, invoice_id)]
        .into_iter()
        .chain(extra.iter().copied());
    match pairs
        .map(|(name, value)| EmailTag::new(name, value))
        .collect::<Option<Vec<_>>>()
    {
        Some(tags) => tags,
        None => {
            tracing::warn!(invoice_id, "ids not valid as SES tags: the e-mail goes untagged");
            Vec::new()
        }
    }
}

/// A message tag SES accepts: name and value of 1–256 ASCII letters, digits, `_`, `-`, `.`
/// or `@` (SES refuses the whole send for one bad tag, so bad ones are never built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailTag {
    name: String,
    value: String,
}

impl EmailTag {
    /// `None` when SES would refuse the name or the value.
    pub fn new(name: &str, value: &str) -> Option<EmailTag> {
        (Self::valid(name) && Self::valid(value)).then(|| EmailTag {
            name: name.to_owned(),
            value: value.to_owned(),
        })
    }

    fn valid(text: &str) -> bool {
        (1..=256).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn value(&self) -> &str {
        &self.value
    }
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
    client: SdkClient<aws_sdk_sesv2::Client>,
    configuration_set: Option<String>,
}

impl SesMailer {
    /// `configuration_set` tags every send (bounce and complaint tracking on AWS).
    pub fn new(client: impl Into<SdkClient<aws_sdk_sesv2::Client>>, configuration_set: Option<String>) -> Self {
        Self {
            client: client.into(),
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
        let tags = email
            .tags
            .iter()
            .map(|tag| MessageTag::builder().name(tag.name()).value(tag.value()).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| MailError::Rejected(e.to_string()))?;
        let tags = (!tags.is_empty()).then_some(tags);
        let output = self
            .client
            .send_email()
            .from_email_address(&email.from)
            .destination(destination)
            .content(EmailContent::builder().raw(raw).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .set_email_tags(tags)
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

#[cfg(test)]
mod tests {
    use super::{EmailTag, invoice_tags};

    #[test]
    fn an_invoice_e_mail_is_tagged_whole_or_not_at_all() {
        let tags = invoice_tags("acme", "B001-00000042", &[("purpose", "dunning")]);
        let pairs: Vec<(&str, &str)> = tags.iter().map(|t| (t.name(), t.value())).collect();
        assert_eq!(
            pairs,
            [
                ("client_id", "acme"),
                ("invoice_id", "B001-00000042"),
                ("purpose", "dunning")
            ]
        );
        assert!(
            invoice_tags("acme corp", "B001-00000042", &[]).is_empty(),
            "a space is refused by SES"
        );
    }

    #[test]
    fn tags_take_only_what_ses_accepts() {
        assert!(EmailTag::new("invoice_id", "F001-00000042").is_some());
        assert!(EmailTag::new("client_id", "acme.pe@lima_1").is_some());
        assert!(EmailTag::new("client_id", "").is_none());
        assert!(EmailTag::new("client_id", "acme sac").is_none());
        assert!(EmailTag::new("client_id", "compañía").is_none());
        assert!(EmailTag::new("client id", "acme").is_none());
        assert!(EmailTag::new("client_id", &"a".repeat(257)).is_none());
    }
}
