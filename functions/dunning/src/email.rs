//! The reminder e-mail: plain text in Spanish (the words are the domain's), to the addresses
//! the invoice went to, tagged like the invoice e-mail so its bounces and complaints mark the
//! invoice (email-events finds it by the same two tags).

use backoffice_domain::dunning::{Offset, reminder_text};
use backoffice_domain::invoice::Invoice;
use backoffice_domain::receivable::Account;
use backoffice_edge::mail::{EmailTag, OutgoingEmail, invoice_tags};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::raw::Raw;
use time::{Date, OffsetDateTime};

/// Tag names email-events reads (the invoice e-mail's, functions/invoice-issue/src/email.rs).
pub use backoffice_edge::mail::{TAG_CLIENT, TAG_INVOICE};
/// Tells a reminder's feedback from the invoice e-mail's in SES's events.
pub const TAG_PURPOSE: &str = "purpose";

/// Who reminders are sent from: the invoices' verified identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub address: String,
}

impl Sender {
    fn domain(&self) -> &str {
        self.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("localhost")
    }
}

/// What a reminder is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub invoice: &'a Invoice,
    pub account: &'a Account,
    pub offset: Offset,
    /// The client's local day the reminder is written on.
    pub today: Date,
}

/// The reminder to `recipients` (the invoice e-mail's): the buyer's addresses in To, the
/// client's finance team hidden in Bcc when the invoice went to them too; replies go to finance.
pub fn build(
    about: &Subject<'_>,
    recipients: &[String],
    finance_email: &str,
    sender: &Sender,
    now: OffsetDateTime,
) -> std::io::Result<OutgoingEmail> {
    let invoice = about.invoice;
    let (buyers, finance): (Vec<String>, Vec<String>) = recipients
        .iter()
        .cloned()
        .partition(|r| !r.eq_ignore_ascii_case(finance_email));
    let (to, bcc) = if buyers.is_empty() {
        (finance, Vec::new())
    } else {
        (buyers, finance)
    };
    let text = reminder_text(invoice, about.account, about.today);
    let to_header = Address::new_list(
        to.iter()
            .map(|address| Address::new_address(Some(invoice.buyer.name.as_str()), address.as_str()))
            .collect(),
    );
    let raw = MessageBuilder::new()
        .from((invoice.seller.name.as_str(), sender.address.as_str()))
        .to(to_header)
        .reply_to((invoice.seller.name.as_str(), finance_email))
        .subject(text.subject)
        // One Message-ID per invoice and offset: a repeat after a crash reads as the same message.
        .message_id(format!(
            "reminder.{}.{}.{}@{}",
            invoice.client_id,
            invoice.invoice_id,
            about.offset,
            sender.domain()
        ))
        .date(now.unix_timestamp())
        .header("X-Invoice-Id", Raw::new(invoice.invoice_id.as_str()))
        .header("X-Reminder-Offset", Raw::new(about.offset.to_string()))
        .text_body(text.body)
        .write_to_vec()?;
    Ok(OutgoingEmail {
        from: sender.address.clone(),
        to,
        bcc,
        raw,
        tags: tags(invoice),
    })
}

/// The invoice's tags and the purpose; none when SES would refuse an id as a tag value (the
/// reminder still goes, its bounces go unmarked).
pub fn tags(invoice: &Invoice) -> Vec<EmailTag> {
    invoice_tags(&invoice.client_id, &invoice.invoice_id, &[(TAG_PURPOSE, "dunning")])
}
