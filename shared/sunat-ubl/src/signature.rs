//! The enveloped XML-DSig signature SUNAT requires. Canonicalization is bergshamra's C14N
//! crate alone; the digest and the RSA signature are ring's (the TLS stack links it already);
//! this module writes the standard template into `ext:ExtensionContent` and fills it in. The
//! whole bergshamra library (every key type and cipher of XML-DSig and XML-Enc, two
//! generations of RustCrypto) is only a dev-dependency now, to verify in tests (ADR 0031).
//!
//! The signature (`ds:Signature Id="SignatureSP"`, which `cac:Signature` points to with
//! `#SignatureSP`) covers the whole document (`Reference URI=""`) minus itself (the
//! enveloped-signature transform), canonicalized with inclusive C14N 1.0, digested with
//! SHA-256 and signed with RSA-SHA256; the certificate travels in `KeyInfo/X509Data`.
//! Why these algorithms: docs/decisions/0015.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bergshamra_c14n::C14nMode;
use bergshamra_xml::{NodeSet, uppsala};
use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::UblError;

/// `Id` of `ds:Signature`; `cac:Signature/cbc:ID` and, with `#`, its `ExternalReference/URI`.
pub const SIGNATURE_ID: &str = "SignatureSP";
/// Inclusive C14N 1.0, as in SUNAT's examples.
pub const C14N_METHOD: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
pub const SIGNATURE_METHOD: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const DIGEST_METHOD: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const ENVELOPED_SIGNATURE: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const NS_EXT: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2";

/// The issuer's signing credentials: an RSA private key and its X.509 certificate.
#[derive(Clone)]
pub struct Signer {
    key: Arc<RsaKeyPair>,
    certificate: CertificateDer<'static>,
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
        let credentials = |what: &str, e: String| UblError::Credentials(format!("{what}: {e}"));
        let key =
            match PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| credentials("RSA private key", e.to_string()))? {
                PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
                PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
                _ => return Err(credentials("RSA private key", "not an RSA key".into())),
            }
            .map_err(|e| credentials("RSA private key", e.to_string()))?;
        let certificate =
            CertificateDer::from_pem_slice(cert_pem).map_err(|e| credentials("certificate", e.to_string()))?;
        let certified = subject_public_key(&certificate).map_err(|e| credentials("certificate", e.into()))?;
        if certified != key.public().as_ref() {
            return Err(UblError::Credentials(
                "the certificate does not certify this private key".into(),
            ));
        }
        Ok(Signer {
            key: Arc::new(key),
            certificate,
        })
    }
}

/// The `subjectPublicKey` of an X.509 certificate (for RSA, the DER `RSAPublicKey` that ring's
/// key pair reports as its public key): the one field this module needs, read by walking DER.
fn subject_public_key(certificate: &[u8]) -> Result<&[u8], &'static str> {
    const MALFORMED: &str = "not a DER X.509 certificate";
    let (certificate, _) = der(certificate, 0x30).ok_or(MALFORMED)?;
    let (mut tbs, _) = der(certificate, 0x30).ok_or(MALFORMED)?;
    if tbs.first() == Some(&0xA0) {
        tbs = der(tbs, 0xA0).ok_or(MALFORMED)?.1; // [0] version
    }
    // serialNumber, signature, issuer, validity, subject: skipped.
    for tag in [0x02, 0x30, 0x30, 0x30, 0x30] {
        tbs = der(tbs, tag).ok_or(MALFORMED)?.1;
    }
    let (spki, _) = der(tbs, 0x30).ok_or(MALFORMED)?;
    let (_, spki) = der(spki, 0x30).ok_or(MALFORMED)?; // algorithm
    let (bits, _) = der(spki, 0x03).ok_or(MALFORMED)?;
    match bits.split_first() {
        Some((0, key)) => Ok(key),
        _ => Err(MALFORMED),
    }
}

/// One DER element of `tag` at the start of `input`: its contents and what follows it.
fn der(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let octets = usize::from(first & 0x7F);
        if octets == 0 || octets > 4 || rest.len() < octets {
            return None;
        }
        let (length, after) = rest.split_at(octets);
        rest = after;
        length.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b))
    };
    (rest.len() >= length).then(|| rest.split_at(length))
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
    let template = with_template(xml, &BASE64.encode(signer.certificate.as_ref()))?;
    let digest_value = BASE64.encode(ring::digest::digest(
        &ring::digest::SHA256,
        &canonical(&template, Selection::WithoutSignature)?,
    ));
    let digested = fill(&template, "ds:DigestValue", &digest_value)?;
    let signed_info = canonical(&digested, Selection::SignedInfo)?;
    let mut signature = vec![0; signer.key.public().modulus_len()];
    signer
        .key
        .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &signed_info, &mut signature)
        .map_err(|e| UblError::Signing(format!("RSA-SHA256: {e}")))?;
    let signature_value = BASE64.encode(&signature);
    let signed = fill(&digested, "ds:SignatureValue", &signature_value)?;
    Ok(Signed {
        xml: signed.into_bytes(),
        digest_value,
        signature_value,
    })
}

/// What a canonicalization covers.
#[derive(Clone, Copy)]
enum Selection {
    /// The reference `URI=""` after the enveloped-signature transform: the document without
    /// comments and without the `ds:Signature` element.
    WithoutSignature,
    /// `ds:SignedInfo`, with the namespaces in scope there (inclusive C14N renders them).
    SignedInfo,
}

/// Inclusive C14N 1.0 of `selection` of `xml`.
fn canonical(xml: &str, selection: Selection) -> Result<Vec<u8>, UblError> {
    let failed = |e: String| UblError::Signing(format!("canonicalization: {e}"));
    let doc = uppsala::parse(xml).map_err(|e| failed(e.to_string()))?;
    let element = |name: &str| {
        doc.descendants(doc.root())
            .into_iter()
            .find(|id| doc.element(*id).is_some_and(|e| e.matches_name_ns(NS_DS, name)))
            .ok_or_else(|| failed(format!("no ds:{name}")))
    };
    let nodes = match selection {
        Selection::WithoutSignature => {
            let signature = element("Signature")?;
            let mut nodes = NodeSet::all_without_comments(&doc);
            nodes.remove_id(signature);
            for id in doc.descendants(signature) {
                nodes.remove_id(id);
            }
            nodes
        }
        Selection::SignedInfo => NodeSet::tree_without_comments(element("SignedInfo")?, &doc),
    };
    bergshamra_c14n::canonicalize_doc::<&str>(&doc, C14nMode::Inclusive, Some(&nodes), &[])
        .map_err(|e| failed(e.to_string()))
}

/// `xml` with the text of its one empty `element` (as the template writes it) set to `value`
/// (base64: nothing to escape).
fn fill(xml: &str, element: &str, value: &str) -> Result<String, UblError> {
    let empty = format!("<{element}></{element}>");
    if xml.matches(&empty).count() != 1 {
        return Err(UblError::Signing(format!("the template has no single empty {element}")));
    }
    Ok(xml.replacen(&empty, &format!("<{element}>{value}</{element}>"), 1))
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
fn with_template(xml: &str, certificate: &str) -> Result<String, UblError> {
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
                write_template(&mut writer, certificate)?;
                writer.write_event(Event::End(BytesEnd::new(name)))?;
                placed = true;
            }
            Event::Start(start) if is_slot(&start) => {
                writer.write_event(Event::Start(start))?;
                write_template(&mut writer, certificate)?;
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

/// The XML-DSig template [`sign`] fills: empty DigestValue and SignatureValue, the signer's
/// certificate (base64 DER) in X509Data.
fn write_template(w: &mut Writer<Vec<u8>>, certificate: &str) -> Result<(), UblError> {
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
    w.write_event(Event::Empty(algorithm_of("ds:Transform", ENVELOPED_SIGNATURE)))?;
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
    w.write_event(Event::Start(BytesStart::new("ds:X509Certificate")))?;
    w.write_event(Event::Text(BytesText::new(certificate)))?;
    w.write_event(Event::End(BytesEnd::new("ds:X509Certificate")))?;
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
