//! The enveloped XML-DSig signature SUNAT requires, made by bergshamra (canonicalization,
//! digest and RSA signature are all its work; this module only writes the standard template
//! into `ext:ExtensionContent` and reads the values back).
//!
//! The signature (`ds:Signature Id="SignatureSP"`, which `cac:Signature` points to with
//! `#SignatureSP`) covers the whole document (`Reference URI=""`) minus itself (the
//! enveloped-signature transform), canonicalized with inclusive C14N 1.0, digested with
//! SHA-256 and signed with RSA-SHA256; the certificate travels in `KeyInfo/X509Data`.
//! Why these algorithms: docs/decisions/0015.

use bergshamra::core::algorithm;
use bergshamra::keys::loader::{load_rsa_private_pem, load_x509_cert_pem};
use bergshamra::{DsigContext, Key, KeysManager};
use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::UblError;

/// `Id` of `ds:Signature`; `cac:Signature/cbc:ID` and, with `#`, its `ExternalReference/URI`.
pub const SIGNATURE_ID: &str = "SignatureSP";
/// Inclusive C14N 1.0, as in SUNAT's examples.
pub const C14N_METHOD: &str = algorithm::C14N;
pub const SIGNATURE_METHOD: &str = algorithm::RSA_SHA256;
pub const DIGEST_METHOD: &str = algorithm::SHA256;

const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const NS_EXT: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2";

/// The issuer's signing credentials: an RSA private key and its X.509 certificate.
#[derive(Clone)]
pub struct Signer {
    key: Key,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer { .. }")
    }
}

impl Signer {
    /// From a PEM certificate and a PEM RSA private key (PKCS#8 or PKCS#1, unencrypted).
    /// Refuses a certificate that is not the key's, which SUNAT would reject document by
    /// document.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Signer, UblError> {
        let credentials = |what: &str, e: bergshamra::Error| UblError::Credentials(format!("{what}: {e}"));
        let mut key = load_rsa_private_pem(key_pem).map_err(|e| credentials("RSA private key", e))?;
        let certificate = load_x509_cert_pem(cert_pem).map_err(|e| credentials("certificate", e))?;
        match (key.to_spki_der(), certificate.to_spki_der()) {
            (Some(ours), Some(theirs)) if ours == theirs => {}
            _ => {
                return Err(UblError::Credentials(
                    "the certificate does not certify this private key".into(),
                ));
            }
        }
        key.x509_chain = certificate.x509_chain;
        Ok(Signer { key })
    }
}

/// A signed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The document with its signature, UTF-8.
    pub xml: Vec<u8>,
    /// `ds:DigestValue`, base64: the document's "hash" printed on its PDF and in its QR code.
    pub digest_value: String,
    /// `ds:SignatureValue`, base64.
    pub signature_value: String,
}

/// Signs `xml` (from [`crate::build_invoice`] or [`crate::build_credit_note`]): the signature
/// goes into the first `ext:ExtensionContent`, which must be empty.
pub fn sign(xml: &str, signer: &Signer) -> Result<Signed, UblError> {
    let template = with_template(xml)?;
    let mut keys = KeysManager::new();
    keys.add_key(signer.key.clone());
    let signed = bergshamra::sign(&DsigContext::new_permissive(keys), &template)?;
    let (digest_value, signature_value) = values(&signed)?;
    Ok(Signed {
        xml: signed.into_bytes(),
        digest_value,
        signature_value,
    })
}

/// A document [`sign`] signed earlier, read back (its stored copy): the same [`Signed`], so a
/// retry submits and prints exactly the document SUNAT may already know.
pub fn read_signed(xml: &[u8]) -> Result<Signed, UblError> {
    let text = std::str::from_utf8(xml).map_err(|e| UblError::NotSignable(format!("not UTF-8: {e}")))?;
    let (digest_value, signature_value) = values(text)?;
    Ok(Signed {
        xml: xml.to_vec(),
        digest_value,
        signature_value,
    })
}

/// `xml` with the signature template in its empty `ext:ExtensionContent`, every other byte
/// as it was (events are copied raw: no re-escaping, no re-indenting).
fn with_template(xml: &str) -> Result<String, UblError> {
    let not_signable = |why: String| UblError::NotSignable(why);
    let mut reader = NsReader::from_str(xml);
    let mut writer = Writer::new(Vec::with_capacity(xml.len() + 2048));
    let mut placed = false;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| not_signable(format!("not well-formed: {e}")))?;
        let is_slot = |start: &BytesStart| {
            !placed
                && start.local_name().as_ref() == "ExtensionContent"
                && matches!(ns, ResolveResult::Bound(n) if n.as_ref() == NS_EXT)
        };
        match event {
            Event::Eof => break,
            Event::DocType(_) => return Err(not_signable("a DOCTYPE is not allowed".into())),
            Event::Empty(start) if is_slot(&start) => {
                let name = start.name().as_ref().to_owned();
                writer.write_event(Event::Start(start))?;
                write_template(&mut writer)?;
                writer.write_event(Event::End(BytesEnd::new(name)))?;
                placed = true;
            }
            Event::Start(start) if is_slot(&start) => {
                writer.write_event(Event::Start(start))?;
                write_template(&mut writer)?;
                loop {
                    match reader
                        .read_event()
                        .map_err(|e| not_signable(format!("not well-formed: {e}")))?
                    {
                        Event::Text(t) if t.as_bytes().iter().all(u8::is_ascii_whitespace) => {}
                        end @ Event::End(_) => {
                            writer.write_event(end)?;
                            break;
                        }
                        _ => return Err(not_signable("ext:ExtensionContent is not empty".into())),
                    }
                }
                placed = true;
            }
            other => writer.write_event(other)?,
        }
    }
    if !placed {
        return Err(not_signable(
            "no ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent".into(),
        ));
    }
    String::from_utf8(writer.into_inner()).map_err(|e| not_signable(format!("not UTF-8: {e}")))
}

/// The XML-DSig template bergshamra fills: empty DigestValue, SignatureValue and X509Data.
fn write_template(w: &mut Writer<Vec<u8>>) -> Result<(), UblError> {
    let algorithm_of =
        |name: &'static str, uri: &'static str| BytesStart::new(name).with_attributes([("Algorithm", uri)]);
    w.write_event(Event::Start(BytesStart::new("ds:Signature").with_attributes([
        ("xmlns:ds", "http://www.w3.org/2000/09/xmldsig#"),
        ("Id", SIGNATURE_ID),
    ])))?;
    w.write_event(Event::Start(BytesStart::new("ds:SignedInfo")))?;
    w.write_event(Event::Empty(algorithm_of("ds:CanonicalizationMethod", C14N_METHOD)))?;
    w.write_event(Event::Empty(algorithm_of("ds:SignatureMethod", SIGNATURE_METHOD)))?;
    w.write_event(Event::Start(
        BytesStart::new("ds:Reference").with_attributes([("URI", "")]),
    ))?;
    w.write_event(Event::Start(BytesStart::new("ds:Transforms")))?;
    w.write_event(Event::Empty(algorithm_of(
        "ds:Transform",
        algorithm::ENVELOPED_SIGNATURE,
    )))?;
    w.write_event(Event::End(BytesEnd::new("ds:Transforms")))?;
    w.write_event(Event::Empty(algorithm_of("ds:DigestMethod", DIGEST_METHOD)))?;
    w.write_event(Event::Start(BytesStart::new("ds:DigestValue")))?;
    w.write_event(Event::End(BytesEnd::new("ds:DigestValue")))?;
    w.write_event(Event::End(BytesEnd::new("ds:Reference")))?;
    w.write_event(Event::End(BytesEnd::new("ds:SignedInfo")))?;
    w.write_event(Event::Start(BytesStart::new("ds:SignatureValue")))?;
    w.write_event(Event::End(BytesEnd::new("ds:SignatureValue")))?;
    w.write_event(Event::Start(BytesStart::new("ds:KeyInfo")))?;
    w.write_event(Event::Start(BytesStart::new("ds:X509Data")))?;
    w.write_event(Event::End(BytesEnd::new("ds:X509Data")))?;
    w.write_event(Event::End(BytesEnd::new("ds:KeyInfo")))?;
    w.write_event(Event::End(BytesEnd::new("ds:Signature")))?;
    Ok(())
}

/// The DigestValue and SignatureValue of the (only) signature in `signed`.
fn values(signed: &str) -> Result<(String, String), UblError> {
    let mut reader = NsReader::from_str(signed);
    let (mut digest, mut signature) = (None, None);
    let mut current: Option<String> = None;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| UblError::NotSignable(format!("signed output unreadable: {e}")))?;
        match event {
            Event::Eof => break,
            Event::Start(start) => {
                let in_ds = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == NS_DS);
                current = in_ds.then(|| start.local_name().as_ref().to_owned());
            }
            Event::Text(text) => {
                let value: String = String::from_utf8_lossy(text.as_bytes()).split_whitespace().collect();
                match current.as_deref() {
                    Some("DigestValue") => digest = Some(value),
                    Some("SignatureValue") => signature = Some(value),
                    _ => {}
                }
            }
            _ => current = None,
        }
    }
    match (digest, signature) {
        (Some(d), Some(s)) if !d.is_empty() && !s.is_empty() => Ok((d, s)),
        _ => Err(UblError::NotSignable(
            "the signed document has no DigestValue or SignatureValue".into(),
        )),
    }
}
