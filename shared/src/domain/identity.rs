//! Customer identity documents as Peruvian call centers collect them: DNI, RUC, carné de
//! extranjería, passport. A `Document` can only exist valid, and never prints its full number.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::validation::Invalid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DocumentType {
    #[serde(rename = "DNI")]
    Dni,
    #[serde(rename = "RUC")]
    Ruc,
    #[serde(rename = "CE")]
    Ce,
    #[serde(rename = "PASSPORT")]
    Passport,
}

impl DocumentType {
    pub const ALL: [DocumentType; 4] = [DocumentType::Dni, DocumentType::Ruc, DocumentType::Ce, DocumentType::Passport];

    pub fn as_str(self) -> &'static str {
        match self {
            DocumentType::Dni => "DNI",
            DocumentType::Ruc => "RUC",
            DocumentType::Ce => "CE",
            DocumentType::Passport => "PASSPORT",
        }
    }
}

impl fmt::Display for DocumentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DocumentType {
    type Err = Invalid;

    fn from_str(raw: &str) -> Result<Self, Invalid> {
        let wanted = raw.trim();
        Self::ALL.into_iter().find(|t| t.as_str() == wanted).ok_or_else(|| {
            Invalid::new("unknown_document_type", format!("unknown document type {wanted:?}; accepted: DNI, RUC, CE, PASSPORT"))
        })
    }
}

/// RUC prefixes SUNAT issues: 10 natural persons, 15/16/17 special cases, 20 companies.
const RUC_PREFIXES: [&str; 5] = ["10", "15", "16", "17", "20"];
const RUC_WEIGHTS: [u32; 10] = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];

/// SUNAT's modulo-11 check digit of a RUC's first ten digits.
pub fn ruc_check_digit(first_ten: &[u32]) -> u32 {
    let sum: u32 = first_ten.iter().zip(RUC_WEIGHTS).map(|(d, w)| d * w).sum();
    match 11 - sum % 11 {
        10 => 0,
        11 => 1,
        r => r,
    }
}

#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "DocumentWire", into = "DocumentWire")]
pub struct Document {
    kind: DocumentType,
    number: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentWire {
    #[serde(rename = "type")]
    kind: DocumentType,
    number: String,
}

impl TryFrom<DocumentWire> for Document {
    type Error = String;

    fn try_from(wire: DocumentWire) -> Result<Self, String> {
        Document::new(wire.kind, &wire.number).map_err(|e| e.detail)
    }
}

impl From<Document> for DocumentWire {
    fn from(document: Document) -> Self {
        DocumentWire { kind: document.kind, number: document.number }
    }
}

impl Document {
    pub fn new(kind: DocumentType, raw_number: &str) -> Result<Document, Invalid> {
        let number = match kind {
            // Numeric documents are often typed with spaces or hyphens ("4567-8912").
            DocumentType::Dni | DocumentType::Ruc | DocumentType::Ce => raw_number.chars().filter(|c| !matches!(c, ' ' | '-')).collect::<String>(),
            DocumentType::Passport => raw_number.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase(),
        };
        let digits_only = !number.is_empty() && number.chars().all(|c| c.is_ascii_digit());
        match kind {
            DocumentType::Dni if !(digits_only && number.len() == 8) => {
                return Err(Invalid::new("invalid_dni", format!("DNI must be exactly 8 digits, got {}", describe(&number))));
            }
            DocumentType::Ruc => validate_ruc(&number)?,
            // Migraciones issues CE numbers of up to 12 characters; in practice 9 digits.
            DocumentType::Ce if !(digits_only && (9..=12).contains(&number.len())) => {
                return Err(Invalid::new("invalid_ce", format!("a carné de extranjería number is 9 to 12 digits, got {}", describe(&number))));
            }
            DocumentType::Passport => {
                let shape = (6..=12).contains(&number.len()) && number.chars().all(|c| c.is_ascii_alphanumeric());
                if !shape || !number.chars().any(|c| c.is_ascii_digit()) {
                    return Err(Invalid::new("invalid_passport", "a passport number is 6 to 12 letters and digits, with at least one digit"));
                }
            }
            _ => {}
        }
        Ok(Document { kind, number })
    }

    pub fn kind(&self) -> DocumentType {
        self.kind
    }

    pub fn number(&self) -> &str {
        &self.number
    }

    /// A company (RUC 20…) rather than a person.
    pub fn is_company(&self) -> bool {
        self.kind == DocumentType::Ruc && self.number.starts_with("20")
    }

    /// For logs and screens that need no more: "DNI ****8912".
    pub fn masked(&self) -> String {
        let visible: String = self.number.chars().skip(self.number.chars().count().saturating_sub(4)).collect();
        format!("{} ****{visible}", self.kind)
    }
}

/// Say what was received without echoing a possibly long or odd input verbatim.
fn describe(number: &str) -> String {
    if number.is_empty() {
        "nothing".into()
    } else if number.chars().all(|c| c.is_ascii_digit()) {
        format!("{} digits", number.len())
    } else {
        format!("{} characters, not all digits", number.chars().count())
    }
}

fn validate_ruc(number: &str) -> Result<(), Invalid> {
    if number.len() != 11 || !number.chars().all(|c| c.is_ascii_digit()) {
        return Err(Invalid::new("invalid_ruc", format!("RUC must be exactly 11 digits, got {}", describe(number))));
    }
    if !RUC_PREFIXES.iter().any(|p| number.starts_with(p)) {
        return Err(Invalid::new("invalid_ruc_prefix", "a RUC starts with 10, 15, 16, 17 or 20"));
    }
    let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
    let expected = ruc_check_digit(&digits[..10]);
    if digits[10] != expected {
        return Err(Invalid::new("invalid_ruc_check_digit", format!("the RUC's check digit should be {expected}, not {}", digits[10])));
    }
    Ok(())
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(kind: DocumentType, number: &str) -> Result<String, &'static str> {
        Document::new(kind, number).map(|d| d.number().to_owned()).map_err(|e| e.code)
    }

    #[test]
    fn dni_is_eight_digits() {
        assert_eq!(code(DocumentType::Dni, "45678912"), Ok("45678912".into()));
        assert_eq!(code(DocumentType::Dni, " 4567-8912 "), Ok("45678912".into()));
        for bad in ["4567891", "456789123", "4567891A", ""] {
            assert_eq!(code(DocumentType::Dni, bad), Err("invalid_dni"), "{bad}");
        }
    }

    #[test]
    fn ruc_check_digit_follows_sunat() {
        // 2010007097?: 2·5+0·4+1·3+0·2+0·7+0·6+0·5+7·4+0·3+9·2 = 59; 11 − 59 % 11 = 7... computed:
        assert_eq!(ruc_check_digit(&[2, 0, 1, 0, 0, 0, 7, 0, 9, 7]), 0);
        assert_eq!(code(DocumentType::Ruc, "20100070970"), Ok("20100070970".into()));
        // 1046789123?: 5+0+12+12+49+48+45+4+6+6 = 187 = 17·11 → r = 11 → 1.
        assert_eq!(ruc_check_digit(&[1, 0, 4, 6, 7, 8, 9, 1, 2, 3]), 1);
        assert_eq!(code(DocumentType::Ruc, "10467891231"), Ok("10467891231".into()));
        assert_eq!(code(DocumentType::Ruc, "20100070971"), Err("invalid_ruc_check_digit"));
        assert_eq!(code(DocumentType::Ruc, "30100070970"), Err("invalid_ruc_prefix"));
        assert_eq!(code(DocumentType::Ruc, "2010007097"), Err("invalid_ruc"));
        assert_eq!(code(DocumentType::Ruc, "2010007097X"), Err("invalid_ruc"));
        let detail = Document::new(DocumentType::Ruc, "20100070971").map_err(|e| e.detail).err().unwrap_or_default();
        assert!(detail.contains("should be 0"), "{detail}");
        assert!(Document::new(DocumentType::Ruc, "20100070970").map(|d| d.is_company()).unwrap_or(false));
        assert!(!Document::new(DocumentType::Ruc, "10467891231").map(|d| d.is_company()).unwrap_or(true));
    }

    #[test]
    fn ce_and_passport() {
        assert_eq!(code(DocumentType::Ce, "001234567"), Ok("001234567".into()));
        assert_eq!(code(DocumentType::Ce, "12345678"), Err("invalid_ce"));
        assert_eq!(code(DocumentType::Ce, "1234567890123"), Err("invalid_ce"));
        assert_eq!(code(DocumentType::Passport, "ab 123456"), Ok("AB123456".into()));
        assert_eq!(code(DocumentType::Passport, "ABCDEF"), Err("invalid_passport"));
        assert_eq!(code(DocumentType::Passport, "A1234"), Err("invalid_passport"));
        assert_eq!(code(DocumentType::Passport, "A12345-67"), Err("invalid_passport"));
    }

    #[test]
    fn types_parse_strictly() {
        assert_eq!("RUC".parse::<DocumentType>(), Ok(DocumentType::Ruc));
        assert_eq!("dni".parse::<DocumentType>().map_err(|e| e.code), Err("unknown_document_type"));
    }

    #[test]
    fn never_prints_the_full_number() {
        let doc = Document::new(DocumentType::Dni, "45678912").expect("valid");
        assert_eq!(doc.masked(), "DNI ****8912");
        let debug = format!("{doc:?} {:?}", Some(&doc));
        assert!(!debug.contains("45678912"), "{debug}");
    }

    #[test]
    fn serde_validates() {
        let doc: Document = serde_json::from_value(serde_json::json!({"type": "DNI", "number": "45678912"})).expect("valid");
        assert_eq!(serde_json::to_value(&doc).expect("ser"), serde_json::json!({"type": "DNI", "number": "45678912"}));
        assert!(serde_json::from_value::<Document>(serde_json::json!({"type": "DNI", "number": "1"})).is_err());
        assert!(serde_json::from_value::<Document>(serde_json::json!({"type": "XX", "number": "45678912"})).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(number in ".{0,30}") {
            for kind in DocumentType::ALL {
                let _ = Document::new(kind, &number);
            }
        }
    }
}
