//! Phone numbers (always E.164) and e-mail addresses, normalized so that the same customer is
//! recognised across channels; neither prints in full in logs.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::validation::Invalid;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Accepts international forms ("+51 987 654 321", "0051987654321") and, for Peru, the
    /// national ones a customer dictates: a 9-digit mobile starting with 9, Lima's "01" + 7
    /// digits, or a provincial area code (41–84) + 6 digits, with or without the leading 0.
    pub fn parse(raw: &str, default_country: &str) -> Result<PhoneNumber, Invalid> {
        let cleaned: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
        if let Some(rest) = cleaned.strip_prefix('+') {
            return Self::from_international_digits(rest);
        }
        if let Some(rest) = cleaned.strip_prefix("00") {
            return Self::from_international_digits(rest);
        }
        if default_country != "PE" {
            return Err(Invalid::new(
                "invalid_phone",
                format!("for country {default_country} send the number in international format, e.g. +34 612 345 678"),
            ));
        }
        let peru_hint = "expected an E.164 number (+51987654321), a 9-digit Peruvian mobile starting with 9, or a landline with its area code (01 1234567)";
        if cleaned.is_empty() || !cleaned.chars().all(|c| c.is_ascii_digit()) {
            return Err(Invalid::new("invalid_phone", peru_hint));
        }
        let national = match cleaned.len() {
            9 if cleaned.starts_with('9') => cleaned.clone(),
            // Lima: 01 + 7 digits, dialled as 1 + 7 digits from abroad.
            9 if cleaned.starts_with("01") => cleaned[1..].to_owned(),
            8 if cleaned.starts_with('1') => cleaned.clone(),
            // Provinces: area code 41–84 + 6 digits, optionally with the trunk 0.
            8 if is_provincial_area(&cleaned[..2]) => cleaned.clone(),
            9 if cleaned.starts_with('0') && is_provincial_area(&cleaned[1..3]) => cleaned[1..].to_owned(),
            _ => return Err(Invalid::new("invalid_phone", peru_hint)),
        };
        Ok(PhoneNumber(format!("+51{national}")))
    }

    /// Only "+" and 8 to 15 digits, the first not 0.
    pub fn parse_e164(raw: &str) -> Result<PhoneNumber, Invalid> {
        match raw.strip_prefix('+') {
            Some(rest) => Self::from_international_digits(rest),
            None => Err(Invalid::new("invalid_phone", "an E.164 number starts with + and the country code, e.g. +51987654321")),
        }
    }

    fn from_international_digits(digits: &str) -> Result<PhoneNumber, Invalid> {
        let valid = (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) && !digits.starts_with('0');
        if !valid {
            return Err(Invalid::new("invalid_phone", "an international number has a country code and 8 to 15 digits in all, e.g. +51987654321"));
        }
        Ok(PhoneNumber(format!("+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// "+51*****4321": the country code and the last four digits.
    pub fn masked(&self) -> String {
        let digits = &self.0[1..];
        let keep_head = digits.len().min(2);
        let keep_tail = 4.min(digits.len().saturating_sub(keep_head));
        let hidden = digits.len() - keep_head - keep_tail;
        format!("+{}{}{}", &digits[..keep_head], "*".repeat(hidden), &digits[digits.len() - keep_tail..])
    }
}

fn is_provincial_area(code: &str) -> bool {
    code.parse::<u32>().is_ok_and(|n| (41..=84).contains(&n))
}

impl TryFrom<String> for PhoneNumber {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        PhoneNumber::parse_e164(&raw).map_err(|e| e.detail)
    }
}

impl From<PhoneNumber> for String {
    fn from(phone: PhoneNumber) -> String {
        phone.0
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

const LOCAL_SPECIALS: &str = ".!#$%&'*+/=?^_`{|}~-";

impl Email {
    /// A practical subset of RFC 5321/5322, lower-cased so one mailbox is one customer key.
    pub fn parse(raw: &str) -> Result<Email, Invalid> {
        let address = raw.trim().to_lowercase();
        let invalid = |why: &str| Invalid::new("invalid_email", format!("not a valid e-mail address: {why}"));
        if address.len() > 254 {
            return Err(invalid("longer than 254 characters"));
        }
        let Some((local, domain)) = address.split_once('@') else {
            return Err(invalid("it has no @"));
        };
        if domain.contains('@') {
            return Err(invalid("it has more than one @"));
        }
        if local.is_empty() || local.len() > 64 {
            return Err(invalid("the part before @ must be 1 to 64 characters"));
        }
        if !local.chars().all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c)) {
            return Err(invalid("the part before @ has characters that are not allowed"));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(invalid("dots in the part before @ cannot lead, trail or repeat"));
        }
        if domain.is_empty() || domain.len() > 253 {
            return Err(invalid("the domain must be 1 to 253 characters"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(invalid("the domain needs a dot, e.g. example.pe"));
        }
        for label in &labels {
            let ok = (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(invalid("a domain label is empty, too long, or has characters other than letters, digits and inner hyphens"));
            }
        }
        let tld = labels.last().copied().unwrap_or_default();
        if tld.len() < 2 || !tld.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(invalid("the top-level domain must be letters, at least two"));
        }
        Ok(Email(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// "m***@example.pe".
    pub fn masked(&self) -> String {
        match self.0.split_once('@') {
            Some((local, domain)) => format!("{}***@{domain}", local.chars().next().unwrap_or('*')),
            None => "***".into(),
        }
    }
}

impl TryFrom<String> for Email {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        Email::parse(&raw).map_err(|e| e.detail)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> String {
        email.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn phone(raw: &str, country: &str) -> Result<String, &'static str> {
        PhoneNumber::parse(raw, country).map(|p| p.as_str().to_owned()).map_err(|e| e.code)
    }

    #[test]
    fn peruvian_numbers_normalize_to_e164() {
        for (raw, want) in [
            ("+51 987 654 321", "+51987654321"),
            ("0051987654321", "+51987654321"),
            ("987-654-321", "+51987654321"),
            ("(01) 234-5678", "+5112345678"),
            ("12345678", "+5112345678"),
            ("044 123456", "+5144123456"),
            ("44123456", "+5144123456"),
            ("+34 612 345 678", "+34612345678"),
        ] {
            assert_eq!(phone(raw, "PE"), Ok(want.into()), "{raw}");
        }
    }

    #[test]
    fn bad_phones_are_refused() {
        for raw in ["12", "887654321", "98765432", "+0123456789", "+1234567", "+1234567890123456", "98765432a", "", "39123456"] {
            assert_eq!(phone(raw, "PE"), Err("invalid_phone"), "{raw}");
        }
        assert_eq!(phone("612345678", "ES"), Err("invalid_phone"));
        assert_eq!(phone("+34612345678", "ES"), Ok("+34612345678".into()));
        assert!(PhoneNumber::parse_e164("987654321").is_err());
    }

    #[test]
    fn phones_are_masked_and_validated_on_deserialize() {
        let p = PhoneNumber::parse("987654321", "PE").expect("valid");
        assert_eq!(p.masked(), "+51*****4321");
        assert!(!format!("{p:?}").contains("987654321"));
        assert_eq!(serde_json::to_value(&p).expect("ser"), serde_json::json!("+51987654321"));
        assert!(serde_json::from_value::<PhoneNumber>(serde_json::json!("987654321")).is_err());
    }

    #[test]
    fn emails() {
        assert_eq!(Email::parse(" Maria.Quispe@Example.PE ").map(|e| e.as_str().to_owned()), Ok("maria.quispe@example.pe".into()));
        assert!(Email::parse("o'brien+ventas@mail.example.com").is_ok());
        for bad in ["no", "a@b", "a@@b.pe", ".a@b.pe", "a.@b.pe", "a..b@c.pe", "a@-b.pe", "a@b-.pe", "a@b.p", "a@b.p3", "a b@c.pe", "a@b..pe", "@b.pe"] {
            assert_eq!(Email::parse(bad).map_err(|e| e.code), Err("invalid_email"), "{bad}");
        }
        assert!(Email::parse(&format!("{}@b.pe", "a".repeat(65))).is_err());
        let email = Email::parse("maria@example.pe").expect("valid");
        assert_eq!(format!("{email:?}"), "m***@example.pe");
        assert!(serde_json::from_value::<Email>(serde_json::json!("nope")).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(raw in ".{0,40}") {
            let _ = PhoneNumber::parse(&raw, "PE");
            let _ = PhoneNumber::parse(&raw, "CL");
            let _ = Email::parse(&raw);
        }
    }
}
