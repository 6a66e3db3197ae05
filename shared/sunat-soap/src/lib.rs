//! SUNAT's SOAP billService (or an OSE speaking the same WSDL), as pure functions: no HTTP, no
//! runtime, no AWS.
//!
//! - Requests: [`send_bill`], [`send_summary`], [`get_status`] build the SOAP 1.1 envelope with
//!   the WS-Security username token of [`Credentials`]; POST it with the operation's
//!   `SOAPAction` ([`SOAP_ACTION_SEND_BILL`], …) and [`CONTENT_TYPE`].
//! - Answers: [`read_answer`] turns the HTTP status and body into an [`Answer`]: the document's
//!   [`Cdr`] (whose [`Cdr::outcome`] is accepted, observed or rejected), a ticket, a ticket's
//!   status, or a [`Fault`] with SUNAT's return code ([`Fault::code`],
//!   [`Fault::is_retryable`]). Transport-level failures are [`SoapError::Unavailable`].
//! - [`codes`]: SUNAT's return-code ranges and the retryable exceptions, with their source.
//!
//! Everything read here comes from the network: malformed input is an error, never a panic.

mod answer;
mod cdr;
pub mod codes;
mod envelope;
mod xml;

pub use answer::{Answer, Fault, STATUS_DONE, STATUS_IN_PROGRESS, STATUS_WITH_ERRORS, read_answer};
pub use cdr::{Cdr, Note, Outcome};
pub use envelope::{
    CONTENT_TYPE, Credentials, PASSWORD_TEXT, SERVICE_NS, SOAP_ACTION_GET_STATUS, SOAP_ACTION_SEND_BILL,
    SOAP_ACTION_SEND_SUMMARY, SOAP_ENV_NS, WSSE_NS, get_status, send_bill, send_summary,
};

/// Why an answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoapError {
    /// No SOAP answer: an empty body, or an error page with a 5xx/408/429 status. Retry later.
    #[error("billService is unavailable (HTTP {http_status}, no SOAP answer)")]
    Unavailable { http_status: u16 },
    /// The body is not a SOAP 1.1 envelope (and the status does not say the service is down).
    #[error("not a SOAP answer (HTTP {http_status}): {reason}")]
    NotSoap { http_status: u16, reason: String },
    /// The SOAP body holds an element this crate does not read.
    #[error("unexpected answer element '{0}'")]
    Unexpected(String),
    /// The answer lacks an element its operation always has.
    #[error("the answer has no '{0}'")]
    Missing(&'static str),
    #[error("invalid base64 in the answer: {0}")]
    Base64(String),
    /// The CDR's zip cannot be opened.
    #[error("unreadable CDR zip: {0}")]
    Zip(String),
    /// The CDR's zip holds no `R-*.xml`.
    #[error("the CDR zip has no R-*.xml")]
    NoCdrXml,
    /// The CDR's XML is malformed or lacks what every CDR has.
    #[error("unreadable CDR: {0}")]
    Cdr(String),
}

impl SoapError {
    /// True when the same call may succeed later ([`SoapError::Unavailable`] only: a malformed
    /// answer is not expected to heal by itself).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

#[cfg(test)]
mod tests;
