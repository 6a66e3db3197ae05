//! The two things invoice-issue needs to make an invoice an electronic document: the issuer's
//! signing certificate and SOL credentials ([`IssuerKeys`], from Secrets Manager), and SUNAT's
//! billService ([`TaxAuthority`], SOAP over HTTPS — SUNAT, its beta, or an OSE).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use backoffice_domain::Clock;
use backoffice_edge::https::{self, Https};
use backoffice_edge::secrets::{CachedSecret, SecretSource};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sunat_soap::{Answer, Cdr, Credentials};
use sunat_ubl::Signer;

/// What an issuer (a RUC) signs and submits with.
#[derive(Clone, Debug)]
pub struct IssuerCredentials {
    pub signer: Signer,
    pub sol: Credentials,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    /// Secrets Manager could not be read: retry later.
    #[error("the signing secret is unavailable: {0}")]
    Unavailable(String),
    /// The secret has no usable entry for this RUC: a person must add or fix it.
    #[error("no usable signing credentials for RUC {ruc}: {reason}")]
    Missing { ruc: String, reason: String },
}

#[async_trait]
pub trait IssuerKeys: Send + Sync {
    /// The credentials of the issuer with `ruc`. `fresh` asks for the secret to be read again
    /// (after SUNAT refused the credentials, a rotation may have happened).
    async fn credentials(&self, ruc: &str, fresh: bool) -> Result<IssuerCredentials, KeysError>;
}

/// One issuer's entry in the secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    certificate_pem: String,
    private_key_pem: String,
    /// SUNAT's SOL user as it logs in: `{RUC}{USER}` (or an OSE's user).
    sol_username: String,
    sol_password: String,
}

/// The secret's JSON: `{"issuers": {"20100070970": {certificate_pem, private_key_pem,
/// sol_username, sol_password}}}`, keyed by the issuer's RUC (the certificate belongs to the
/// legal entity, whichever client id it bills under).
#[derive(Deserialize)]
struct SecretDocument {
    issuers: HashMap<String, Entry>,
}

/// [`IssuerKeys`] over a cached Secrets Manager secret; parsed signers are kept per version of
/// the secret, so a warm function parses a key once.
pub struct SecretIssuerKeys<S, K> {
    secret: CachedSecret<S, K>,
    parsed: Mutex<(String, HashMap<String, IssuerCredentials>)>,
}

impl<S: SecretSource, K: Clock> SecretIssuerKeys<S, K> {
    pub fn new(secret: CachedSecret<S, K>) -> Self {
        Self {
            secret,
            parsed: Mutex::new((String::new(), HashMap::new())),
        }
    }
}

#[async_trait]
impl<S: SecretSource, K: Clock> IssuerKeys for SecretIssuerKeys<S, K> {
    async fn credentials(&self, ruc: &str, fresh: bool) -> Result<IssuerCredentials, KeysError> {
        let raw = self
            .secret
            .get(fresh)
            .await
            .map_err(|e| KeysError::Unavailable(e.to_string()))?;
        let version = hex::encode(Sha256::digest(raw.as_bytes()));
        if let Ok(parsed) = self.parsed.lock()
            && parsed.0 == version
            && let Some(found) = parsed.1.get(ruc)
        {
            return Ok(found.clone());
        }
        let missing = |reason: String| KeysError::Missing {
            ruc: ruc.to_owned(),
            reason,
        };
        let document: SecretDocument =
            serde_json::from_str(&raw).map_err(|e| missing(format!("the secret is not the expected JSON: {e}")))?;
        let entry = document
            .issuers
            .get(ruc)
            .ok_or_else(|| missing("the secret has no entry for it".into()))?;
        let signer = Signer::from_pem(entry.certificate_pem.as_bytes(), entry.private_key_pem.as_bytes())
            .map_err(|e| missing(e.to_string()))?;
        let credentials = IssuerCredentials {
            signer,
            sol: Credentials::new(entry.sol_username.clone(), entry.sol_password.clone()),
        };
        if let Ok(mut parsed) = self.parsed.lock() {
            if parsed.0 != version {
                *parsed = (version, HashMap::new());
            }
            parsed.1.insert(ruc.to_owned(), credentials.clone());
        }
        Ok(credentials)
    }
}

/// What SUNAT made of a submission.
#[derive(Debug, Clone)]
pub enum Submitted {
    /// SUNAT answered with a CDR (accepted, observed or rejected: [`Cdr::outcome`]).
    Answered(Cdr),
    /// A rejection (2000–3999) sent as a SOAP fault instead of a CDR: final, like a rejecting
    /// CDR, but there is no CDR to keep.
    RejectedByFault { code: u16, message: String },
    /// A SOAP fault that is about the submission itself (credentials, zip, XML): retrying the
    /// same bytes will not help until a person fixes the cause.
    Refused { code: Option<u16>, message: String },
    /// SUNAT could not take it now (a retryable fault, 5xx, timeout, network): retry later.
    Unavailable(String),
}

#[async_trait]
pub trait TaxAuthority: Send + Sync {
    /// `sendBill` of one zipped document.
    async fn send_bill(&self, file_name: &str, zip: &[u8], credentials: &Credentials) -> Submitted;
}

/// [`TaxAuthority`] over SOAP 1.1 and HTTPS.
pub struct SoapTaxAuthority {
    /// Built at the first submission, not at init: its TLS configuration holds ~150 public
    /// roots, a cost most invocations (redeliveries, e-mail retries, sweeps) never need.
    http: std::sync::OnceLock<Https>,
    endpoint: String,
    timeout: Duration,
}

impl SoapTaxAuthority {
    /// `timeout` bounds one submission: SUNAT answers sendBill synchronously, usually in
    /// seconds; a longer wait is treated as unavailable and retried.
    pub fn new(endpoint: impl Into<String>, timeout: Duration) -> Self {
        Self {
            http: std::sync::OnceLock::new(),
            endpoint: endpoint.into(),
            timeout,
        }
    }

    /// SUNAT's and the OSEs' endpoints carry certificates of public CAs: Mozilla's roots
    /// (webpki-roots), compiled in.
    fn http(&self) -> Result<&Https, String> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let tls = https::trusting(roots).map_err(|e| e.to_string())?;
        let client = Https::new(tls, Some(Duration::from_secs(5)));
        Ok(self.http.get_or_init(|| client))
    }
}

#[async_trait]
impl TaxAuthority for SoapTaxAuthority {
    async fn send_bill(&self, file_name: &str, zip: &[u8], credentials: &Credentials) -> Submitted {
        let envelope = sunat_soap::send_bill(file_name, zip, credentials);
        let http = match self.http() {
            Ok(http) => http,
            Err(e) => return Submitted::Unavailable(format!("HTTPS client: {e}")),
        };
        let request = http::Request::post(&self.endpoint)
            .header(http::header::CONTENT_TYPE, sunat_soap::CONTENT_TYPE)
            .header("SOAPAction", sunat_soap::SOAP_ACTION_SEND_BILL)
            .body(envelope.into_bytes());
        let request = match request {
            Ok(request) => request,
            Err(e) => return Submitted::Unavailable(format!("sendBill to {}: {e}", self.endpoint)),
        };
        match http.exchange(request, self.timeout).await {
            Ok(response) => classify(sunat_soap::read_answer(response.status().as_u16(), response.body())),
            Err(e) => Submitted::Unavailable(format!("sendBill: {e}")),
        }
    }
}

/// A read answer as a [`Submitted`].
pub fn classify(answer: Result<Answer, sunat_soap::SoapError>) -> Submitted {
    match answer {
        Ok(Answer::Cdr(cdr)) => Submitted::Answered(cdr),
        Ok(Answer::Fault(fault)) if fault.is_retryable() => {
            Submitted::Unavailable(format!("{}: {}", fault.faultcode, fault.faultstring))
        }
        Ok(Answer::Fault(fault)) if fault.class() == Some(sunat_soap::codes::CodeClass::Rejection) => {
            Submitted::RejectedByFault {
                code: fault.code().unwrap_or_default(),
                message: format!("{}: {}", fault.faultcode, fault.faultstring),
            }
        }
        Ok(Answer::Fault(fault)) => Submitted::Refused {
            code: fault.code(),
            message: format!("{}: {}", fault.faultcode, fault.faultstring),
        },
        Ok(other) => Submitted::Refused {
            code: None,
            message: format!("sendBill answered something else: {other:?}"),
        },
        Err(e) if e.is_retryable() => Submitted::Unavailable(e.to_string()),
        Err(e) => Submitted::Refused {
            code: None,
            message: e.to_string(),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Twins for the handler tests.
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
pub use twins::{FixedKeys, ScriptedAuthority};

#[cfg(test)]
mod twins {
    use std::collections::VecDeque;

    use super::*;

    /// [`IssuerKeys`] with fixed credentials for every RUC.
    pub struct FixedKeys(pub IssuerCredentials);

    #[async_trait]
    impl IssuerKeys for FixedKeys {
        async fn credentials(&self, _ruc: &str, _fresh: bool) -> Result<IssuerCredentials, KeysError> {
            Ok(self.0.clone())
        }
    }

    type Answerer = Box<dyn Fn(&str) -> Submitted + Send + Sync>;

    /// [`TaxAuthority`] answering the scripted answers first, then by `otherwise`; it records
    /// the file names it was sent.
    pub struct ScriptedAuthority {
        pub answers: Mutex<VecDeque<Submitted>>,
        pub sent: Mutex<Vec<String>>,
        pub otherwise: Answerer,
    }

    impl ScriptedAuthority {
        pub fn new(otherwise: impl Fn(&str) -> Submitted + Send + Sync + 'static) -> Self {
            Self {
                answers: Mutex::new(VecDeque::new()),
                sent: Mutex::new(Vec::new()),
                otherwise: Box::new(otherwise),
            }
        }

        pub fn then(&self, answer: Submitted) {
            if let Ok(mut answers) = self.answers.lock() {
                answers.push_back(answer);
            }
        }

        pub fn sent(&self) -> Vec<String> {
            self.sent.lock().map(|s| s.clone()).unwrap_or_default()
        }
    }

    #[async_trait]
    impl TaxAuthority for ScriptedAuthority {
        async fn send_bill(&self, file_name: &str, _zip: &[u8], _credentials: &Credentials) -> Submitted {
            if let Ok(mut sent) = self.sent.lock() {
                sent.push(file_name.to_owned());
            }
            let next = self.answers.lock().ok().and_then(|mut a| a.pop_front());
            next.unwrap_or_else(|| (self.otherwise)(file_name))
        }
    }
}
