//! The CDR ("constancia de recepción"): SUNAT's signed UBL `ApplicationResponse` about one
//! document, zipped as `R-{RUC}-{type}-{series}-{number}.zip` around `R-{same}.xml`.
//!
//! What it says is in `cac:DocumentResponse/cac:Response`: `cbc:ReferenceID` (the document's
//! series-number), `cbc:ResponseCode` (0 accepted, else a return code, see [`crate::codes`]) and
//! `cbc:Description`; observations are the `cbc:Note`s of the root, each `"{code} - {text}"`.
//! The zip is kept as it came: it is the legal proof, stored next to the document.

use std::io::{Cursor, Read};

use crate::SoapError;
use crate::xml::{self, Element};

const APPLICATION_RESPONSE_NS: &str = "urn:oasis:names:specification:ubl:schema:xsd:ApplicationResponse-2";
const CAC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2";
const CBC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2";

/// Bounds what one zip entry may inflate to: CDRs are a few kilobytes, a zip bomb is not.
const MAX_XML_BYTES: u64 = 4 * 1024 * 1024;

/// A CDR read from its zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cdr {
    /// The XML's name inside the zip (`R-20601234567-01-F001-00000001.xml`).
    pub xml_name: String,
    /// The `ApplicationResponse`'s own `cbc:ID`, when present.
    pub id: Option<String>,
    /// `cbc:ReferenceID`: the document answered (`F001-00000001`).
    pub reference_id: String,
    /// `cbc:ResponseCode`: 0 when accepted, else a return code.
    pub response_code: u16,
    /// `cbc:Description`.
    pub description: String,
    /// The observations (`cbc:Note`), in order.
    pub notes: Vec<Note>,
    zip: Vec<u8>,
}

/// One observation: `"4287 - El precio unitario…"` is code 4287 and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The leading return code; `None` when the note does not start with one.
    pub code: Option<u16>,
    pub text: String,
}

/// What the CDR decides about the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Response code 0 and no observation.
    Accepted,
    /// Accepted with observations: response code 0 with notes, or a 4000+ code.
    Observed(Vec<Note>),
    /// Any other code (2000–3999; an exception code in a CDR is treated alike): the document is
    /// not valid and its number is spent.
    Rejected { code: u16, description: String },
}

impl Cdr {
    /// Unzips a CDR and reads its `R-*.xml`. The zip's bytes are kept ([`Cdr::zip`]).
    pub fn read(zip: impl Into<Vec<u8>>) -> Result<Self, SoapError> {
        let zip = zip.into();
        let (xml_name, bytes) = cdr_entry(&zip)?;
        let text = xml::decode(&bytes).map_err(SoapError::Cdr)?;
        let root = xml::parse(&text).map_err(SoapError::Cdr)?;
        if !root.is(APPLICATION_RESPONSE_NS, "ApplicationResponse") {
            return Err(SoapError::Cdr(format!(
                "the root element is '{}', not ApplicationResponse",
                root.name
            )));
        }
        let response = root
            .child(CAC, "DocumentResponse")
            .and_then(|d| d.child(CAC, "Response"))
            .ok_or_else(|| missing("cac:DocumentResponse/cac:Response"))?;
        let code_text = response
            .child(CBC, "ResponseCode")
            .map(Element::trimmed)
            .ok_or_else(|| missing("cbc:ResponseCode"))?;
        let response_code = code_text
            .parse::<u16>()
            .map_err(|_| SoapError::Cdr(format!("cbc:ResponseCode '{code_text}' is not a code")))?;
        Ok(Self {
            xml_name,
            id: root
                .child(CBC, "ID")
                .map(|e| e.trimmed().to_owned())
                .filter(|id| !id.is_empty()),
            reference_id: response
                .child(CBC, "ReferenceID")
                .map(|e| e.trimmed().to_owned())
                .unwrap_or_default(),
            response_code,
            description: response
                .child(CBC, "Description")
                .map(|e| e.trimmed().to_owned())
                .unwrap_or_default(),
            notes: root.children(CBC, "Note").map(|n| Note::parse(n.trimmed())).collect(),
            zip,
        })
    }

    /// The decision: see [`Outcome`].
    pub fn outcome(&self) -> Outcome {
        match self.response_code {
            0 if self.notes.is_empty() => Outcome::Accepted,
            0 => Outcome::Observed(self.notes.clone()),
            code if code >= 4000 => {
                let notes = if self.notes.is_empty() {
                    vec![Note {
                        code: Some(code),
                        text: self.description.clone(),
                    }]
                } else {
                    self.notes.clone()
                };
                Outcome::Observed(notes)
            }
            code => Outcome::Rejected {
                code,
                description: self.description.clone(),
            },
        }
    }

    /// The zip as SUNAT sent it.
    pub fn zip(&self) -> &[u8] {
        &self.zip
    }

    pub fn into_zip(self) -> Vec<u8> {
        self.zip
    }
}

impl Note {
    /// `"4287 - text"` → code 4287, `"text"`; anything else is all text.
    pub fn parse(note: &str) -> Self {
        let note = note.trim();
        let digits = note.len() - note.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if (1..=4).contains(&digits) {
            let rest = note[digits..].trim_start();
            if let Some(rest) = rest.strip_prefix('-')
                && let Ok(code) = note[..digits].parse()
            {
                return Self {
                    code: Some(code),
                    text: rest.trim().to_owned(),
                };
            }
        }
        Self {
            code: None,
            text: note.to_owned(),
        }
    }
}

fn missing(what: &str) -> SoapError {
    SoapError::Cdr(format!("no {what}"))
}

/// The first `R-*.xml` entry (any folder, any case) and its inflated bytes.
fn cdr_entry(zip: &[u8]) -> Result<(String, Vec<u8>), SoapError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(|e| SoapError::Zip(e.to_string()))?;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| SoapError::Zip(e.to_string()))?;
        if entry.is_dir() {
            continue;
        }
        let Ok(name) = entry.name() else { continue };
        let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
        let lower = base.to_ascii_lowercase();
        if !(lower.starts_with("r-") && lower.ends_with(".xml")) {
            continue;
        }
        let base = base.to_owned();
        let mut bytes = Vec::new();
        (&mut entry)
            .take(MAX_XML_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| SoapError::Zip(e.to_string()))?;
        if bytes.len() as u64 > MAX_XML_BYTES {
            return Err(SoapError::Zip(format!(
                "{base} inflates to more than {MAX_XML_BYTES} bytes"
            )));
        }
        return Ok((base, bytes));
    }
    Err(SoapError::NoCdrXml)
}
