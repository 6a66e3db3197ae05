//! billService's answers: the HTTP status and body of a call, read into an [`Answer`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::SoapError;
use crate::cdr::Cdr;
use crate::codes::{self, CodeClass};
use crate::envelope::SOAP_ENV_NS;
use crate::xml::{self, Element};

/// getStatus `statusCode`: processed; `content` is the CDR.
pub const STATUS_DONE: &str = "0";
/// getStatus `statusCode`: still being processed; ask again later.
pub const STATUS_IN_PROGRESS: &str = "98";
/// getStatus `statusCode`: processed with errors; `content` is the CDR that says which.
pub const STATUS_WITH_ERRORS: &str = "99";

/// What billService answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// sendBill: the document's CDR (`sendBillResponse/applicationResponse`).
    Cdr(Cdr),
    /// sendSummary: the ticket to ask getStatus about.
    Ticket(String),
    /// getStatus: `statusCode` ([`STATUS_DONE`], [`STATUS_IN_PROGRESS`],
    /// [`STATUS_WITH_ERRORS`], or a return code) and, once processed, the CDR's zip
    /// (`content`; read it with [`Cdr::read`]).
    Status { code: String, content: Option<Vec<u8>> },
    /// A SOAP fault: an exception or a rejection, with SUNAT's return code in `faultcode`.
    Fault(Fault),
}

/// A SOAP 1.1 fault, e.g. `faultcode` `soap-env:Client.0306` or `soap-env:Server.0130`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub faultcode: String,
    pub faultstring: String,
    /// The text of `detail`, when present and not empty.
    pub detail: Option<String>,
}

impl Fault {
    /// SUNAT's return code: the digits after the last `.` of `faultcode`
    /// (`soap-env:Client.0306` → 306), else a leading code of `faultstring` (`"0306"`,
    /// `"2335 - …"`; some OSEs put it there).
    pub fn code(&self) -> Option<u16> {
        let suffix = self.faultcode.rsplit('.').next().unwrap_or_default();
        leading_code(suffix)
            .filter(|_| suffix.chars().all(|c| c.is_ascii_digit()))
            .or_else(|| leading_code(self.faultstring.trim_start()))
    }

    /// The code's class: exception, rejection or observation.
    pub fn class(&self) -> Option<CodeClass> {
        self.code().and_then(codes::classify)
    }

    /// True when the same submission may succeed later: a retryable exception code
    /// ([`codes::is_retryable`]), or no code at all in a `Server` fault (SOAP 1.1: the server
    /// failed, not the message).
    pub fn is_retryable(&self) -> bool {
        match self.code() {
            Some(code) => codes::is_retryable(code),
            None => {
                let local = self.faultcode.rsplit(':').next().unwrap_or_default();
                local.starts_with("Server")
            }
        }
    }
}

/// The leading 1–4 digit code of `text`, when one ends there or at a non-digit.
fn leading_code(text: &str) -> Option<u16> {
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if (1..=4).contains(&digits) {
        text[..digits].parse().ok()
    } else {
        None
    }
}

/// Reads billService's answer to one call.
///
/// An empty body, or a body that is not SOAP with a status that says the service is down
/// (5xx, 408, 429: a proxy's error page), is [`SoapError::Unavailable`]. A SOAP fault is an
/// answer ([`Answer::Fault`]), whatever the status (SOAP 1.1 sends them with 500).
pub fn read_answer(http_status: u16, body: &[u8]) -> Result<Answer, SoapError> {
    let unavailable = matches!(http_status, 500..=599 | 408 | 429);
    if body.trim_ascii().is_empty() {
        return Err(SoapError::Unavailable { http_status });
    }
    let body_element = match soap_body(body) {
        Ok(element) => element,
        Err(_) if unavailable => return Err(SoapError::Unavailable { http_status }),
        Err(reason) => return Err(SoapError::NotSoap { http_status, reason }),
    };
    let Some(content) = body_element.children.first() else {
        return Err(SoapError::NotSoap {
            http_status,
            reason: "an empty soap Body".into(),
        });
    };
    match content.name.as_str() {
        "Fault" if content.ns.as_deref() == Some(SOAP_ENV_NS) => Ok(Answer::Fault(fault(content))),
        "sendBillResponse" => {
            let zip = base64_of(required(content, "applicationResponse")?)?;
            Ok(Answer::Cdr(Cdr::read(zip)?))
        }
        "sendSummaryResponse" | "sendPackResponse" => {
            let ticket = required(content, "ticket")?.trimmed();
            if ticket.is_empty() {
                return Err(SoapError::Missing("ticket"));
            }
            Ok(Answer::Ticket(ticket.to_owned()))
        }
        "getStatusResponse" => {
            let status = required(content, "status")?;
            let code = required(status, "statusCode")?.trimmed().to_owned();
            let content = match status.child_named("content") {
                Some(c) if !c.trimmed().is_empty() => Some(base64_of(c)?),
                _ => None,
            };
            Ok(Answer::Status { code, content })
        }
        other => Err(SoapError::Unexpected(other.to_owned())),
    }
}

/// The `soapenv:Body` of a SOAP 1.1 envelope.
fn soap_body(body: &[u8]) -> Result<Element, String> {
    let text = xml::decode(body)?;
    let root = xml::parse(&text)?;
    if !root.is(SOAP_ENV_NS, "Envelope") {
        return Err(format!(
            "the root element is '{}' in {}, not a SOAP 1.1 Envelope",
            root.name,
            root.ns.as_deref().unwrap_or("no namespace")
        ));
    }
    root.children
        .into_iter()
        .find(|c| c.is(SOAP_ENV_NS, "Body"))
        .ok_or_else(|| "no soap Body".into())
}

fn fault(element: &Element) -> Fault {
    let text = |name| {
        element
            .child_named(name)
            .map(|e| e.trimmed().to_owned())
            .unwrap_or_default()
    };
    let detail = element.child_named("detail").map(all_text).filter(|d| !d.is_empty());
    Fault {
        faultcode: text("faultcode"),
        faultstring: text("faultstring"),
        detail,
    }
}

/// The text of an element and its descendants, trimmed pieces joined by spaces.
fn all_text(element: &Element) -> String {
    let mut pieces = Vec::new();
    let mut stack = vec![element];
    while let Some(e) = stack.pop() {
        if !e.trimmed().is_empty() {
            pieces.push(e.trimmed());
        }
        stack.extend(e.children.iter().rev());
    }
    pieces.join(" ")
}

fn required<'a>(parent: &'a Element, name: &'static str) -> Result<&'a Element, SoapError> {
    parent.child_named(name).ok_or(SoapError::Missing(name))
}

/// Base64 as SOAP stacks write it: possibly wrapped in lines.
fn base64_of(element: &Element) -> Result<Vec<u8>, SoapError> {
    let compact: String = element.text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact).map_err(|e| SoapError::Base64(e.to_string()))
}
