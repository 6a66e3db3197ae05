//! Request envelopes for billService: SOAP 1.1, the operations in `http://service.sunat.gob.pe`,
//! a WS-Security `UsernameToken` (password as text) in the header.
//!
//! The caller POSTs the envelope to the service URL with `Content-Type: text/xml;
//! charset=utf-8` ([`CONTENT_TYPE`]) and `SOAPAction: <the operation's constant>`, then hands the
//! HTTP status and body to [`crate::read_answer`].

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use quick_xml::escape::escape;

/// The namespace of billService's operations.
pub const SERVICE_NS: &str = "http://service.sunat.gob.pe";
/// SOAP 1.1's envelope namespace.
pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// WS-Security 1.0's namespace (`wsse:Security`, `wsse:UsernameToken`).
pub const WSSE_NS: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
/// The `Type` of a password sent as text (UsernameToken profile 1.0).
pub const PASSWORD_TEXT: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText";

/// `SOAPAction` header of sendBill (one invoice or note, answered with its CDR).
pub const SOAP_ACTION_SEND_BILL: &str = "urn:sendBill";
/// `SOAPAction` header of sendSummary (a daily summary or a voiding communication, answered
/// with a ticket).
pub const SOAP_ACTION_SEND_SUMMARY: &str = "urn:sendSummary";
/// `SOAPAction` header of getStatus (a ticket's state, with its CDR once processed).
pub const SOAP_ACTION_GET_STATUS: &str = "urn:getStatus";
/// The request's `Content-Type` (SOAP 1.1).
pub const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// The SOL user that signs in to billService.
///
/// SUNAT's SOL user name is the issuer's RUC followed by the secondary user's name, with nothing
/// between: RUC `20601234567` and user `FACTURA1` sign in as `20601234567FACTURA1`
/// ([`Credentials::sol`] builds it). An OSE gives its own user and password, taken as they are
/// with [`Credentials::new`]. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `{RUC}{USER}` for SUNAT, the OSE's user otherwise.
    pub username: String,
    pub password: String,
}

impl Credentials {
    /// A user and password taken as they are.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// SUNAT's SOL user: the RUC and the user name joined (`20601234567` + `FACTURA1`).
    pub fn sol(ruc: &str, user: &str, password: impl Into<String>) -> Self {
        Self::new(format!("{ruc}{user}"), password)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// sendBill: one zipped document (`{RUC}-{type}-{series}-{number}.zip`); the answer is its CDR.
pub fn send_bill(file_name: &str, zip: &[u8], credentials: &Credentials) -> String {
    with_file("sendBill", file_name, zip, credentials)
}

/// sendSummary: a zipped daily summary or voiding communication
/// (`{RUC}-{RC|RA}-{YYYYMMDD}-{n}.zip`); the answer is a ticket for getStatus.
pub fn send_summary(file_name: &str, zip: &[u8], credentials: &Credentials) -> String {
    with_file("sendSummary", file_name, zip, credentials)
}

/// getStatus: the state of a ticket sendSummary gave.
pub fn get_status(ticket: &str, credentials: &Credentials) -> String {
    envelope(
        credentials,
        &format!("<ser:getStatus><ticket>{}</ticket></ser:getStatus>", escape(ticket)),
    )
}

fn with_file(operation: &str, file_name: &str, zip: &[u8], credentials: &Credentials) -> String {
    envelope(
        credentials,
        &format!(
            "<ser:{operation}><fileName>{}</fileName><contentFile>{}</contentFile></ser:{operation}>",
            escape(file_name),
            STANDARD.encode(zip)
        ),
    )
}

fn envelope(credentials: &Credentials, body: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<soapenv:Envelope xmlns:soapenv="{soap}" xmlns:ser="{service}" xmlns:wsse="{wsse}">"#,
            "<soapenv:Header><wsse:Security><wsse:UsernameToken>",
            "<wsse:Username>{username}</wsse:Username>",
            r#"<wsse:Password Type="{password_type}">{password}</wsse:Password>"#,
            "</wsse:UsernameToken></wsse:Security></soapenv:Header>",
            "<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>",
        ),
        soap = SOAP_ENV_NS,
        service = SERVICE_NS,
        wsse = WSSE_NS,
        username = escape(credentials.username.as_str()),
        password_type = PASSWORD_TEXT,
        password = escape(credentials.password.as_str()),
        body = body,
    )
}
