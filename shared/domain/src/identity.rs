//! Customer identity documents as Peruvian call centers collect them: DNI, RUC, carné de
//! extranjería, passport. A `Document` can only exist valid, and never prints its full number.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::validation::{Invalid, shown};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
// Deserialize through `FromStr` so JSON and DynamoDB get the same message as the API.
#[serde(try_from = "String")]
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
    pub const ALL: [DocumentType; 4] = [
        DocumentType::Dni,
        DocumentType::Ruc,
        DocumentType::Ce,
        DocumentType::Passport,
    ];

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

    /// Exact upper-case names only: the wire value is a code, not free text.
    fn from_str(raw: &str) -> Result<Self, Invalid> {
        let wanted = raw.trim();
        if let Some(kind) = Self::ALL.into_iter().find(|t| t.as_str() == wanted) {
            return Ok(kind);
        }
        let hint = match Self::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(wanted)) {
            Some(kind) => format!(" (codes are upper case: {kind})"),
            None => String::new(),
        };
        Err(Invalid::new(
            "unknown_document_type",
            format!(
                "unknown document type {}; accepted: DNI, RUC, CE, PASSPORT{hint}",
                shown(wanted)
            ),
        ))
    }
}

impl TryFrom<String> for DocumentType {
    type Error = Invalid;

    fn try_from(raw: String) -> Result<Self, Invalid> {
        raw.parse()
    }
}

/// RUC prefixes SUNAT issues: 10 natural persons, 15/16/17 special cases, 20 companies.
const RUC_PREFIXES: [&str; 5] = ["10", "15", "16", "17", "20"];
const RUC_WEIGHTS: [u32; 10] = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];

/// SUNAT's modulo-11 check digit of a RUC's first ten digits (each 0–9).
pub fn ruc_check_digit(first_ten: &[u8; 10]) -> u8 {
    let sum: u32 = first_ten.iter().zip(RUC_WEIGHTS).map(|(d, w)| u32::from(*d) * w).sum();
    match 11 - sum % 11 {
        10 => 0,
        11 => 1,
        // 1..=9 here, so the narrowing cannot lose anything.
        r => r as u8,
    }
}

/// A validated identity document. The number is normalized (no separators, passport upper
/// case), so equal documents compare equal whatever way they were typed.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "DocumentWire", into = "DocumentWire")]
pub struct Document {
    kind: DocumentType,
    number: String,
}

/// The unvalidated wire shape `{"type": "DNI", "number": "45678912"}`. No `Debug` on purpose.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentWire {
    #[serde(rename = "type")]
    kind: DocumentType,
    number: String,
}

impl TryFrom<DocumentWire> for Document {
    type Error = Invalid;

    fn try_from(wire: DocumentWire) -> Result<Self, Invalid> {
        Document::new(wire.kind, &wire.number)
    }
}

impl From<Document> for DocumentWire {
    fn from(document: Document) -> Self {
        DocumentWire {
            kind: document.kind,
            number: document.number,
        }
    }
}

impl Document {
    pub fn new(kind: DocumentType, raw_number: &str) -> Result<Document, Invalid> {
        let trimmed = raw_number.trim();
        let number = match kind {
            // Numeric documents are often typed grouped ("4567-8912", "20 100070970").
            DocumentType::Dni | DocumentType::Ruc | DocumentType::Ce => {
                trimmed.chars().filter(|c| !matches!(c, ' ' | '-')).collect::<String>()
            }
            // Hyphens may be significant in some passport numbers, so they are refused, not dropped.
            DocumentType::Passport => trimmed
                .chars()
                .filter(|c| *c != ' ')
                .collect::<String>()
                .to_ascii_uppercase(),
        };
        match kind {
            DocumentType::Dni => check_digits(&number, 8, 8, "invalid_dni", "DNI must be exactly 8 digits")?,
            DocumentType::Ruc => validate_ruc(&number)?,
            // Migraciones prints CE numbers of up to 12 characters; most are 9 digits, older ones
            // carry leading zeros. Digits only: the letter-bearing forms are not issued any more.
            DocumentType::Ce => check_digits(
                &number,
                9,
                12,
                "invalid_ce",
                "a carné de extranjería (CE) number must be 9 to 12 digits",
            )?,
            DocumentType::Passport => validate_passport(&number)?,
        }
        Ok(Document { kind, number })
    }

    pub fn kind(&self) -> DocumentType {
        self.kind
    }

    /// The full number: for storage and matching only, never for logs (use [`Document::masked`]).
    pub fn number(&self) -> &str {
        &self.number
    }

    /// A company (RUC 20…) rather than a person or a person with a business (RUC 10…).
    pub fn is_company(&self) -> bool {
        self.kind == DocumentType::Ruc && self.number.starts_with("20")
    }

    /// For logs and screens that need no more: "DNI ****8912".
    pub fn masked(&self) -> String {
        let count = self.number.chars().count();
        let visible: String = self.number.chars().skip(count.saturating_sub(4)).collect();
        format!("{} ****{visible}", self.kind)
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Say what was received without echoing the number itself.
fn describe(number: &str) -> String {
    let count = number.chars().count();
    if count == 0 {
        "nothing".into()
    } else if number.chars().all(|c| c.is_ascii_digit()) {
        count.to_string()
    } else {
        format!("{count} characters, not all digits")
    }
}

fn is_digits(number: &str) -> bool {
    !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())
}

fn check_digits(number: &str, min: usize, max: usize, code: &'static str, rule: &str) -> Result<(), Invalid> {
    if is_digits(number) && (min..=max).contains(&number.len()) {
        Ok(())
    } else {
        Err(Invalid::new(code, format!("{rule}, got {}", describe(number))))
    }
}

fn validate_ruc(number: &str) -> Result<(), Invalid> {
    check_digits(number, 11, 11, "invalid_ruc", "RUC must be exactly 11 digits")?;
    if !RUC_PREFIXES.iter().any(|p| number.starts_with(p)) {
        let prefix: String = number.chars().take(2).collect();
        return Err(Invalid::new(
            "invalid_ruc_prefix",
            format!("RUC must start with 10, 15, 16, 17 or 20, got {prefix}"),
        ));
    }
    let mut digits = [0u8; 11];
    for (slot, byte) in digits.iter_mut().zip(number.bytes()) {
        *slot = byte - b'0'; // all ASCII digits, checked above
    }
    let [first_ten @ .., given] = digits;
    let expected = ruc_check_digit(&first_ten);
    if given != expected {
        return Err(Invalid::new(
            "invalid_ruc_check_digit",
            format!("RUC check digit (the last one) should be {expected} by SUNAT's modulo-11 rule, got {given}"),
        ));
    }
    Ok(())
}

fn validate_passport(number: &str) -> Result<(), Invalid> {
    let invalid = |why: String| Invalid::new("invalid_passport", format!("a passport number {why}"));
    if let Some(bad) = number.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(invalid(format!("may contain only letters A-Z and digits, got {bad:?}")));
    }
    if !(6..=12).contains(&number.len()) {
        return Err(invalid(format!("must be 6 to 12 characters, got {}", number.len())));
    }
    if !number.bytes().any(|b| b.is_ascii_digit()) {
        return Err(invalid("must contain at least one digit".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn number(kind: DocumentType, raw: &str) -> Result<String, &'static str> {
        Document::new(kind, raw)
            .map(|d| d.number().to_owned())
            .map_err(|e| e.code)
    }

    fn detail(kind: DocumentType, raw: &str) -> String {
        Document::new(kind, raw).err().map(|e| e.detail).unwrap_or_default()
    }

    fn doc(kind: DocumentType, raw: &str) -> Document {
        Document::new(kind, raw).unwrap_or_else(|e| panic!("{raw} should be valid: {e}"))
    }

    #[test]
    fn dni_is_eight_digits() {
        assert_eq!(number(DocumentType::Dni, "45678912"), Ok("45678912".into()));
        assert_eq!(number(DocumentType::Dni, " 4567-8912 "), Ok("45678912".into()));
        assert_eq!(number(DocumentType::Dni, "\t4567 8912\n"), Ok("45678912".into()));
        assert_eq!(number(DocumentType::Dni, "00000001"), Ok("00000001".into()));
        for bad in [
            "4567891",
            "456789123",
            "4567891A",
            "",
            "   ",
            "--",
            "4567.8912",
            "４５６７８９１２",
        ] {
            assert_eq!(number(DocumentType::Dni, bad), Err("invalid_dni"), "{bad}");
        }
        assert_eq!(
            detail(DocumentType::Dni, "4567891"),
            "DNI must be exactly 8 digits, got 7"
        );
        assert_eq!(
            detail(DocumentType::Dni, ""),
            "DNI must be exactly 8 digits, got nothing"
        );
        assert_eq!(
            detail(DocumentType::Dni, "4567891A"),
            "DNI must be exactly 8 digits, got 8 characters, not all digits"
        );
    }

    #[test]
    fn ruc_check_digit_follows_sunat() {
        // 2·5 + 0·4 + 1·3 + 0·2 + 0·7 + 0·6 + 7·5 + 0·4 + 9·3 + 7·2 = 89; 89 % 11 = 1; 11 − 1 = 10 → 0.
        assert_eq!(ruc_check_digit(&[2, 0, 1, 0, 0, 0, 7, 0, 9, 7]), 0);
        // 1·5 + 0·4 + 4·3 + 6·2 + 7·7 + 8·6 + 9·5 + 1·4 + 2·3 + 3·2 = 187 = 17·11; 11 − 0 = 11 → 1.
        assert_eq!(ruc_check_digit(&[1, 0, 4, 6, 7, 8, 9, 1, 2, 3]), 1);
        // 2·5 + 0·4 + 5·3 + 1·2 + 2·7 + 3·6 + 4·5 + 5·4 + 6·3 + 7·2 = 131; 131 % 11 = 10; 11 − 10 = 1.
        assert_eq!(ruc_check_digit(&[2, 0, 5, 1, 2, 3, 4, 5, 6, 7]), 1);
        // 1·5 + 0·4 + 0·3 + 0·2 + 0·7 + 0·6 + 0·5 + 0·4 + 0·3 + 1·2 = 7; 11 − 7 = 4.
        assert_eq!(ruc_check_digit(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 1]), 4);
        for valid in ["20100070970", "10467891231", "20512345671", "10000000014"] {
            assert_eq!(number(DocumentType::Ruc, valid), Ok(valid.into()), "{valid}");
        }
        assert_eq!(number(DocumentType::Ruc, "20-100070970"), Ok("20100070970".into()));
    }

    #[test]
    fn ruc_errors_say_what_is_wrong() {
        assert_eq!(number(DocumentType::Ruc, "20100070971"), Err("invalid_ruc_check_digit"));
        assert_eq!(
            detail(DocumentType::Ruc, "20100070971"),
            "RUC check digit (the last one) should be 0 by SUNAT's modulo-11 rule, got 1"
        );
        assert_eq!(number(DocumentType::Ruc, "30100070970"), Err("invalid_ruc_prefix"));
        assert_eq!(
            detail(DocumentType::Ruc, "30100070970"),
            "RUC must start with 10, 15, 16, 17 or 20, got 30"
        );
        for prefix_ok in ["15", "16", "17"] {
            // Any check digit mismatch here proves the prefix itself passed.
            let mut digits = [0u8; 10];
            for (slot, b) in digits.iter_mut().zip(format!("{prefix_ok}12345678").bytes()) {
                *slot = b - b'0';
            }
            let valid = format!("{prefix_ok}12345678{}", ruc_check_digit(&digits));
            assert_eq!(number(DocumentType::Ruc, &valid), Ok(valid.clone()));
        }
        assert_eq!(number(DocumentType::Ruc, "2010007097"), Err("invalid_ruc"));
        assert_eq!(number(DocumentType::Ruc, "201000709701"), Err("invalid_ruc"));
        assert_eq!(number(DocumentType::Ruc, "2010007097X"), Err("invalid_ruc"));
        assert_eq!(
            detail(DocumentType::Ruc, "2010007097"),
            "RUC must be exactly 11 digits, got 10"
        );
    }

    #[test]
    fn companies_are_ruc_20() {
        assert!(doc(DocumentType::Ruc, "20100070970").is_company());
        assert!(!doc(DocumentType::Ruc, "10467891231").is_company());
        assert!(!doc(DocumentType::Dni, "20100070").is_company());
    }

    #[test]
    fn ce_is_9_to_12_digits() {
        assert_eq!(number(DocumentType::Ce, "001234567"), Ok("001234567".into()));
        assert_eq!(number(DocumentType::Ce, "123456789012"), Ok("123456789012".into()));
        assert_eq!(number(DocumentType::Ce, "001-234-567"), Ok("001234567".into()));
        for bad in ["12345678", "1234567890123", "00123456A", ""] {
            assert_eq!(number(DocumentType::Ce, bad), Err("invalid_ce"), "{bad}");
        }
        assert_eq!(
            detail(DocumentType::Ce, "12345678"),
            "a carné de extranjería (CE) number must be 9 to 12 digits, got 8"
        );
    }

    #[test]
    fn passport_is_6_to_12_alphanumerics_with_a_digit() {
        assert_eq!(number(DocumentType::Passport, "ab 123456"), Ok("AB123456".into()));
        assert_eq!(number(DocumentType::Passport, "123456"), Ok("123456".into()));
        assert_eq!(
            number(DocumentType::Passport, "ABCDEFGHIJK1"),
            Ok("ABCDEFGHIJK1".into())
        );
        for bad in ["ABCDEF", "A1234", "ABCDEFGHIJK12", "A12345-67", "Ñ1234567", ""] {
            assert_eq!(number(DocumentType::Passport, bad), Err("invalid_passport"), "{bad}");
        }
        assert_eq!(
            detail(DocumentType::Passport, "A1234"),
            "a passport number must be 6 to 12 characters, got 5"
        );
        assert_eq!(
            detail(DocumentType::Passport, "ABCDEF"),
            "a passport number must contain at least one digit"
        );
        assert_eq!(
            detail(DocumentType::Passport, "A12345-67"),
            "a passport number may contain only letters A-Z and digits, got '-'"
        );
    }

    #[test]
    fn types_parse_strictly() {
        for kind in DocumentType::ALL {
            assert_eq!(kind.to_string().parse::<DocumentType>(), Ok(kind));
        }
        assert_eq!("PASSPORT".parse::<DocumentType>(), Ok(DocumentType::Passport));
        let err = "dni".parse::<DocumentType>().err();
        assert_eq!(err.as_ref().map(|e| e.code), Some("unknown_document_type"));
        assert_eq!(
            err.map(|e| e.detail),
            Some("unknown document type \"dni\"; accepted: DNI, RUC, CE, PASSPORT (codes are upper case: DNI)".into())
        );
        assert_eq!(
            "LE".parse::<DocumentType>().map_err(|e| e.code),
            Err("unknown_document_type")
        );
        let long = "X".repeat(1000);
        assert!(long.parse::<DocumentType>().err().is_some_and(|e| e.detail.len() < 100));
    }

    #[test]
    fn never_prints_the_full_number() {
        let dni = doc(DocumentType::Dni, "45678912");
        assert_eq!(dni.masked(), "DNI ****8912");
        let passport = doc(DocumentType::Passport, "ab123456");
        assert_eq!(passport.masked(), "PASSPORT ****3456");
        for (document, full) in [(&dni, "45678912"), (&passport, "AB123456")] {
            let debug = format!("{document:?} {:?} {:#?}", Some(document), vec![document]);
            assert!(!debug.contains(full), "{debug}");
        }
        assert_eq!(format!("{dni:?}"), "DNI ****8912");
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let doc: Document =
            serde_json::from_value(serde_json::json!({"type": "DNI", "number": "45678912"})).expect("valid");
        assert_eq!(doc.kind(), DocumentType::Dni);
        assert_eq!(
            serde_json::to_value(&doc).expect("ser"),
            serde_json::json!({"type": "DNI", "number": "45678912"})
        );
        let ruc = serde_json::json!({"type": "RUC", "number": "20100070970"});
        let parsed: Document = serde_json::from_value(ruc.clone()).expect("valid");
        assert_eq!(serde_json::to_value(&parsed).expect("ser"), ruc);
        // Stored data is normalized on the way in, too.
        let grouped: Document =
            serde_json::from_value(serde_json::json!({"type": "PASSPORT", "number": "ab 123456"})).expect("valid");
        assert_eq!(grouped.number(), "AB123456");
        for bad in [
            serde_json::json!({"type": "DNI", "number": "1"}),
            serde_json::json!({"type": "RUC", "number": "20100070971"}),
            serde_json::json!({"type": "XX", "number": "45678912"}),
            serde_json::json!({"type": "dni", "number": "45678912"}),
            serde_json::json!({"type": "DNI", "number": 45678912}),
            serde_json::json!({"type": "DNI"}),
            serde_json::json!({"type": "DNI", "number": "45678912", "extra": 1}),
            serde_json::json!("DNI 45678912"),
        ] {
            assert!(serde_json::from_value::<Document>(bad.clone()).is_err(), "{bad}");
        }
        let err = serde_json::from_value::<Document>(serde_json::json!({"type": "DNI", "number": "1"})).err();
        assert!(err.is_some_and(|e| e.to_string().contains("invalid_dni")));
        assert_eq!(
            serde_json::to_value(DocumentType::Passport).expect("ser"),
            serde_json::json!("PASSPORT")
        );
        assert_eq!(
            serde_json::from_value::<DocumentType>(serde_json::json!("CE")).ok(),
            Some(DocumentType::Ce)
        );
    }

    proptest! {
        #[test]
        fn never_panics(raw in ".{0,30}") {
            for kind in DocumentType::ALL {
                let _ = Document::new(kind, &raw);
            }
            let _ = raw.parse::<DocumentType>();
        }

        #[test]
        fn never_panics_on_near_misses(raw in "[0-9 A-Za-z-]{0,16}") {
            for kind in DocumentType::ALL {
                if let Ok(document) = Document::new(kind, &raw) {
                    // Normalized numbers are accepted again unchanged.
                    prop_assert_eq!(Document::new(kind, document.number()), Ok(document.clone()));
                    let debug = format!("{document:?}");
                    prop_assert!(!debug.contains(document.number()));
                }
            }
        }

        #[test]
        fn every_ruc_with_its_check_digit_is_valid(prefix in prop::sample::select(RUC_PREFIXES.to_vec()), body in "[0-9]{8}") {
            let mut first_ten = [0u8; 10];
            for (slot, b) in first_ten.iter_mut().zip(format!("{prefix}{body}").bytes()) {
                *slot = b - b'0';
            }
            let check = ruc_check_digit(&first_ten);
            let valid = format!("{prefix}{body}{check}");
            prop_assert!(Document::new(DocumentType::Ruc, &valid).is_ok());
            let wrong = format!("{prefix}{body}{}", (check + 1) % 10);
            prop_assert_eq!(Document::new(DocumentType::Ruc, &wrong).map_err(|e| e.code), Err("invalid_ruc_check_digit"));
        }

        #[test]
        fn valid_dni_round_trips_through_json(raw in "[0-9]{8}") {
            let document = Document::new(DocumentType::Dni, &raw).map_err(|e| TestCaseError::fail(e.detail))?;
            let json = serde_json::to_string(&document).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(serde_json::from_str::<Document>(&json).ok(), Some(document));
        }
    }
}
