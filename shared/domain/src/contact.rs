//! Phone numbers (always E.164) and e-mail addresses, normalized so that the same customer is
//! recognised across channels; neither prints in full in logs.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::validation::{Invalid, shown};

/// An E.164 number: "+", a country code not starting with 0, and 8 to 15 digits in all.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

const PERU_FORMATS: &str = "expected a Peruvian mobile (9 digits starting with 9), a landline with its area code \
    (01 + 7 digits for Lima, or 0 + area code 41-84 + 6 digits elsewhere), or an international number starting with + or 00";

impl PhoneNumber {
    /// Accepts international forms ("+51 987 654 321", "0051987654321") and, for Peru, the
    /// national ones a customer dictates: a 9-digit mobile starting with 9, Lima's "01" + 7
    /// digits, or a provincial area code (41–84) + 6 digits, with or without the trunk 0.
    /// Spaces, hyphens, dots and parentheses are ignored wherever they are.
    pub fn parse(raw: &str, default_country: &str) -> Result<PhoneNumber, Invalid> {
        let cleaned: String = raw
            .chars()
            .filter(|c| !(c.is_whitespace() || matches!(c, '-' | '.' | '(' | ')')))
            .collect();
        if cleaned.is_empty() {
            return Err(Invalid::new("invalid_phone", "the phone number is empty"));
        }
        if let Some(rest) = cleaned.strip_prefix('+') {
            return Self::from_international_digits(rest);
        }
        if let Some(rest) = cleaned.strip_prefix("00") {
            return Self::from_international_digits(rest);
        }
        let country = default_country.trim();
        if !country.eq_ignore_ascii_case("PE") {
            return Err(Invalid::new(
                "invalid_phone",
                format!(
                    "for country {} only international numbers are accepted: start with + or 00 and the country code, e.g. +34 612 345 678",
                    shown(country)
                ),
            ));
        }
        if !cleaned.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::new(
                "invalid_phone",
                "a phone number may contain only digits, a leading + and the separators space, hyphen, dot and parentheses",
            ));
        }
        let national = match (cleaned.len(), cleaned.as_bytes()) {
            (9, [b'9', ..]) => cleaned.as_str(),
            // Lima is 01 + 7 digits nationally, 1 + 7 digits after +51; callers type either.
            (9, [b'0', b'1', ..]) | (8, [b'1', ..]) => cleaned.strip_prefix('0').unwrap_or(&cleaned),
            // Provinces: area code + 6 digits, the trunk 0 optional.
            (8, [a, b, ..]) if is_provincial_area(*a, *b) => cleaned.as_str(),
            (9, [b'0', a, b, ..]) if is_provincial_area(*a, *b) => cleaned.strip_prefix('0').unwrap_or(&cleaned),
            (len, _) => {
                return Err(Invalid::new(
                    "invalid_phone",
                    format!("{PERU_FORMATS}; got {len} digits"),
                ));
            }
        };
        Ok(PhoneNumber(format!("+51{national}")))
    }

    /// Strict E.164 only ("+51987654321"): for data that should already be normalized.
    pub fn parse_e164(raw: &str) -> Result<PhoneNumber, Invalid> {
        match raw.strip_prefix('+') {
            Some(rest) => Self::from_international_digits(rest),
            None => Err(Invalid::new(
                "invalid_phone",
                "an E.164 number starts with + and the country code, e.g. +51987654321",
            )),
        }
    }

    fn from_international_digits(digits: &str) -> Result<PhoneNumber, Invalid> {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::new(
                "invalid_phone",
                "an international number is + (or 00) followed by digits only, e.g. +51987654321",
            ));
        }
        if digits.starts_with('0') {
            return Err(Invalid::new(
                "invalid_phone",
                "a country code never starts with 0; after + (or 00) comes e.g. 51 for Peru",
            ));
        }
        if !(8..=15).contains(&digits.len()) {
            return Err(Invalid::new(
                "invalid_phone",
                format!(
                    "an international number has 8 to 15 digits including the country code (E.164), got {}",
                    digits.len()
                ),
            ));
        }
        Ok(PhoneNumber(format!("+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// "+51*****4321": the first two digits (usually the country code) and the last four.
    pub fn masked(&self) -> String {
        let digits: Vec<char> = self.0.chars().filter(char::is_ascii_digit).collect();
        let head = digits.len().min(2);
        let tail = digits.len().saturating_sub(head).min(4);
        let hidden = digits.len() - head - tail;
        let shown_head: String = digits.iter().take(head).collect();
        let shown_tail: String = digits.iter().skip(head + hidden).collect();
        format!("+{shown_head}{}{shown_tail}", "*".repeat(hidden))
    }
}

fn is_provincial_area(tens: u8, units: u8) -> bool {
    let code = tens
        .wrapping_sub(b'0')
        .saturating_mul(10)
        .saturating_add(units.wrapping_sub(b'0'));
    (41..=84).contains(&code)
}

impl TryFrom<String> for PhoneNumber {
    type Error = Invalid;

    /// Stored and wire values must already be E.164; national forms need a country to parse.
    fn try_from(raw: String) -> Result<Self, Invalid> {
        PhoneNumber::parse_e164(&raw)
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

/// An e-mail address, lower-cased as a whole so one mailbox is one customer key (providers
/// treat the local part case-insensitively in practice, whatever RFC 5321 allows).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

const LOCAL_SPECIALS: &str = ".!#$%&'*+/=?^_`{|}~-";

impl Email {
    /// A practical subset of RFC 5321/5322: dot-atom local part, LDH domain labels, an
    /// alphabetic TLD. No quoted local parts, IP literals or internationalized addresses.
    pub fn parse(raw: &str) -> Result<Email, Invalid> {
        let invalid = |why: String| Invalid::new("invalid_email", format!("not a valid e-mail address: {why}"));
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(invalid("it is empty".into()));
        }
        // ASCII first: Unicode lower-casing could turn a look-alike (e.g. the Kelvin sign) into ASCII.
        if !trimmed.is_ascii() {
            return Err(invalid(
                "only ASCII characters are accepted (no accents or internationalized domains)".into(),
            ));
        }
        let address = trimmed.to_ascii_lowercase();
        if address.len() > 254 {
            return Err(invalid(format!(
                "it must be at most 254 characters, got {}",
                address.len()
            )));
        }
        let Some((local, domain)) = address.split_once('@') else {
            return Err(invalid("it has no @".into()));
        };
        if domain.contains('@') {
            return Err(invalid("it has more than one @".into()));
        }
        if local.is_empty() {
            return Err(invalid("nothing before the @".into()));
        }
        if local.len() > 64 {
            return Err(invalid(format!(
                "the part before @ must be at most 64 characters, got {}",
                local.len()
            )));
        }
        if let Some(bad) = local
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(*c)))
        {
            return Err(invalid(format!(
                "the part before @ contains {bad:?}, which is not allowed"
            )));
        }
        if local.starts_with('.') || local.ends_with('.') {
            return Err(invalid("the part before @ cannot start or end with a dot".into()));
        }
        if local.contains("..") {
            return Err(invalid("the part before @ cannot contain two dots in a row".into()));
        }
        if domain.is_empty() {
            return Err(invalid("nothing after the @".into()));
        }
        if domain.len() > 253 {
            return Err(invalid(format!(
                "the domain must be at most 253 characters, got {}",
                domain.len()
            )));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(invalid("the domain needs at least two labels, e.g. example.pe".into()));
        }
        for label in &labels {
            if label.is_empty() {
                return Err(invalid(
                    "the domain has an empty label (a leading, trailing or doubled dot)".into(),
                ));
            }
            if label.len() > 63 {
                return Err(invalid(format!(
                    "each domain label must be at most 63 characters, got {}",
                    label.len()
                )));
            }
            if let Some(bad) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
                return Err(invalid(format!(
                    "the domain contains {bad:?}; only letters, digits, hyphens and dots are allowed"
                )));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid("a domain label cannot start or end with a hyphen".into()));
            }
        }
        let tld = labels.last().copied().unwrap_or_default();
        if tld.len() < 2 || !tld.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(invalid(format!(
                "the top-level domain must be at least two letters, got {}",
                shown(tld)
            )));
        }
        Ok(Email(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// "m***@example.pe": enough to tell addresses apart in a log, not to write to them.
    pub fn masked(&self) -> String {
        match self.0.split_once('@') {
            Some((local, domain)) => format!("{}***@{domain}", local.chars().next().unwrap_or('*')),
            None => "***".into(),
        }
    }
}

impl TryFrom<String> for Email {
    type Error = Invalid;

    fn try_from(raw: String) -> Result<Self, Invalid> {
        Email::parse(&raw)
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
        PhoneNumber::parse(raw, country)
            .map(|p| p.as_str().to_owned())
            .map_err(|e| e.code)
    }

    fn phone_detail(raw: &str, country: &str) -> String {
        PhoneNumber::parse(raw, country)
            .err()
            .map(|e| e.detail)
            .unwrap_or_default()
    }

    fn email_detail(raw: &str) -> String {
        Email::parse(raw).err().map(|e| e.detail).unwrap_or_default()
    }

    #[test]
    fn peruvian_numbers_normalize_to_e164() {
        for (raw, want) in [
            ("+51 987 654 321", "+51987654321"),
            ("+51987654321", "+51987654321"),
            ("0051987654321", "+51987654321"),
            ("00 51 987-654-321", "+51987654321"),
            ("987654321", "+51987654321"),
            ("987-654-321", "+51987654321"),
            ("987.654.321", "+51987654321"),
            (" 987\u{a0}654\t321 ", "+51987654321"),
            ("(01) 234-5678", "+5112345678"),
            ("012345678", "+5112345678"),
            ("12345678", "+5112345678"),
            ("044 123456", "+5144123456"),
            ("(044) 12-3456", "+5144123456"),
            ("44123456", "+5144123456"),
            ("41123456", "+5141123456"),
            ("084123456", "+5184123456"),
            ("+34 612 345 678", "+34612345678"),
        ] {
            assert_eq!(phone(raw, "PE"), Ok(want.into()), "{raw}");
        }
        assert_eq!(phone("987654321", "pe"), Ok("+51987654321".into()));
    }

    #[test]
    fn bad_peruvian_phones_are_refused() {
        for raw in [
            "12",
            "887654321",  // 9 digits not starting with 9
            "98765432",   // mobile missing a digit
            "9876543210", // mobile with one too many
            "0123456789", // Lima with 8 digits after 01
            "40123456",   // area 40 does not exist
            "85123456",   // nor 85
            "39123456",
            "085123456",
            "0987654321",
            "98765432a",
            "",
            " - ",
            "+",
            "00",
            "+0123456789",
            "000051987654321",
            "+1234567",
            "+1234567890123456",
            "+51 98765432x",
            "+51+987654321",
        ] {
            assert_eq!(phone(raw, "PE"), Err("invalid_phone"), "{raw}");
        }
    }

    #[test]
    fn phone_details_explain_the_format() {
        assert_eq!(phone_detail("98765432", "PE"), format!("{PERU_FORMATS}; got 8 digits"));
        assert_eq!(phone_detail("", "PE"), "the phone number is empty");
        assert_eq!(
            phone_detail("+1234567", "PE"),
            "an international number has 8 to 15 digits including the country code (E.164), got 7"
        );
        assert!(phone_detail("+0123456789", "PE").contains("never starts with 0"));
        assert!(phone_detail("98765432a", "PE").contains("only digits"));
        assert_eq!(
            phone_detail("612345678", "ES"),
            "for country \"ES\" only international numbers are accepted: start with + or 00 and the country code, e.g. +34 612 345 678"
        );
    }

    #[test]
    fn other_countries_need_international_format() {
        assert_eq!(phone("612345678", "ES"), Err("invalid_phone"));
        assert_eq!(phone("987654321", "CL"), Err("invalid_phone"));
        assert_eq!(phone("+34612345678", "ES"), Ok("+34612345678".into()));
        assert_eq!(phone("0034 612 345 678", "ES"), Ok("+34612345678".into()));
        assert_eq!(phone("+56 9 8765 4321", ""), Ok("+56987654321".into()));
    }

    #[test]
    fn e164_is_strict() {
        assert_eq!(
            PhoneNumber::parse_e164("+51987654321").map(|p| p.as_str().to_owned()),
            Ok("+51987654321".into())
        );
        assert_eq!(
            PhoneNumber::parse_e164("+12345678").map(|p| p.as_str().to_owned()),
            Ok("+12345678".into())
        );
        assert_eq!(
            PhoneNumber::parse_e164("+123456789012345").map(|p| p.as_str().to_owned()),
            Ok("+123456789012345".into())
        );
        for bad in [
            "987654321",
            "0051987654321",
            "+51 987 654 321",
            " +51987654321",
            "+1234567",
            "+1234567890123456",
            "+0987654321",
            "",
        ] {
            assert_eq!(
                PhoneNumber::parse_e164(bad).map_err(|e| e.code),
                Err("invalid_phone"),
                "{bad}"
            );
        }
    }

    #[test]
    fn phones_are_masked() {
        let p = PhoneNumber::parse("987654321", "PE").expect("valid");
        assert_eq!(p.masked(), "+51*****4321");
        assert_eq!(format!("{p:?}"), "+51*****4321");
        let debug = format!("{:?} {:#?}", Some(&p), vec![&p]);
        assert!(!debug.contains("987654321"), "{debug}");
        let short = PhoneNumber::parse_e164("+12345678").expect("valid");
        assert_eq!(short.masked(), "+12**5678");
    }

    #[test]
    fn phones_serialize_as_e164_strings_validated_on_the_way_in() {
        let p = PhoneNumber::parse("987654321", "PE").expect("valid");
        assert_eq!(
            serde_json::to_value(&p).expect("ser"),
            serde_json::json!("+51987654321")
        );
        assert_eq!(
            serde_json::from_value::<PhoneNumber>(serde_json::json!("+51987654321")).ok(),
            Some(p)
        );
        for bad in [
            serde_json::json!("987654321"),
            serde_json::json!("+51 987 654 321"),
            serde_json::json!(51987654321u64),
            serde_json::json!(null),
        ] {
            assert!(serde_json::from_value::<PhoneNumber>(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_normalize() {
        assert_eq!(
            Email::parse(" Maria.Quispe@Example.PE ").map(|e| e.as_str().to_owned()),
            Ok("maria.quispe@example.pe".into())
        );
        for good in [
            "o'brien+ventas@mail.example.com",
            "a@b.pe",
            "a!#$%&'*+/=?^_`{|}~-z@example.com",
            "x@123.example.museum",
            "x@xn--bcher-kva.example",
            "user@sub-domain.example.co",
        ] {
            assert!(Email::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn email_boundaries() {
        let local64 = "a".repeat(64);
        assert!(Email::parse(&format!("{local64}@b.pe")).is_ok());
        assert!(Email::parse(&format!("{local64}a@b.pe")).is_err());
        let label63 = "c".repeat(63);
        assert!(Email::parse(&format!("a@{label63}.pe")).is_ok());
        assert_eq!(
            email_detail(&format!("a@{label63}c.pe")),
            "not a valid e-mail address: each domain label must be at most 63 characters, got 64"
        );
        // 64 + 1 + 189 = 254 characters: the longest accepted.
        let domain189 = format!("{}.{}.{}.pe", "d".repeat(61), "e".repeat(60), "f".repeat(63));
        assert_eq!(domain189.len(), 189);
        let longest = format!("{local64}@{domain189}");
        assert_eq!(longest.len(), 254);
        assert!(Email::parse(&longest).is_ok());
        assert_eq!(
            email_detail(&format!("{local64}@g{domain189}")),
            "not a valid e-mail address: it must be at most 254 characters, got 255"
        );
        // A domain over 253 characters cannot fit with any local part; the total limit says so.
        let domain254 = format!(
            "{}.{}.{}.{}.pe",
            "d".repeat(63),
            "e".repeat(63),
            "f".repeat(63),
            "g".repeat(59)
        );
        assert_eq!(domain254.len(), 254);
        assert!(email_detail(&format!("a@{domain254}")).contains("254 characters"));
    }

    #[test]
    fn bad_emails_say_why() {
        for (bad, why) in [
            ("", "it is empty"),
            ("no", "it has no @"),
            ("a@@b.pe", "more than one @"),
            ("a@b@c.pe", "more than one @"),
            ("@b.pe", "nothing before the @"),
            ("a@", "nothing after the @"),
            ("a b@c.pe", "contains ' '"),
            ("a\"b@c.pe", "contains '\"'"),
            (".a@b.pe", "cannot start or end with a dot"),
            ("a.@b.pe", "cannot start or end with a dot"),
            ("a..b@c.pe", "two dots in a row"),
            ("a@b", "at least two labels"),
            ("a@b..pe", "empty label"),
            ("a@.b.pe", "empty label"),
            ("a@b.pe.", "empty label"),
            ("a@-b.pe", "start or end with a hyphen"),
            ("a@b-.pe", "start or end with a hyphen"),
            ("a@b_c.pe", "contains '_'"),
            ("a@[1.2.3.4]", "contains '['"),
            ("a@b.p", "top-level domain must be at least two letters, got \"p\""),
            ("a@b.p3", "top-level domain must be at least two letters"),
            ("a@b.123", "top-level domain must be at least two letters"),
            ("maría@example.pe", "only ASCII"),
            ("\u{212A}@example.pe", "only ASCII"),
        ] {
            let err = Email::parse(bad).err();
            assert_eq!(err.as_ref().map(|e| e.code), Some("invalid_email"), "{bad}");
            let detail = err.map(|e| e.detail).unwrap_or_default();
            assert!(detail.contains(why), "{bad}: {detail}");
        }
    }

    #[test]
    fn emails_are_masked_and_validated_on_deserialize() {
        let email = Email::parse("maria@example.pe").expect("valid");
        assert_eq!(email.masked(), "m***@example.pe");
        assert_eq!(format!("{email:?}"), "m***@example.pe");
        assert!(!format!("{:?}", Some(&email)).contains("maria"));
        assert_eq!(
            serde_json::to_value(&email).expect("ser"),
            serde_json::json!("maria@example.pe")
        );
        assert_eq!(
            serde_json::from_value::<Email>(serde_json::json!("Maria@Example.pe")).ok(),
            Some(email)
        );
        assert!(serde_json::from_value::<Email>(serde_json::json!("nope")).is_err());
        assert!(serde_json::from_value::<Email>(serde_json::json!(1)).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(raw in ".{0,40}") {
            let _ = PhoneNumber::parse(&raw, "PE");
            let _ = PhoneNumber::parse(&raw, "CL");
            let _ = PhoneNumber::parse("987654321", &raw);
            let _ = PhoneNumber::parse_e164(&raw);
            let _ = Email::parse(&raw);
        }

        #[test]
        fn phone_like_inputs_normalize_idempotently(raw in "[-+0-9 ().]{0,20}") {
            if let Ok(p) = PhoneNumber::parse(&raw, "PE") {
                prop_assert_eq!(PhoneNumber::parse_e164(p.as_str()), Ok(p.clone()));
                prop_assert_eq!(PhoneNumber::parse(p.as_str(), "PE"), Ok(p.clone()));
                let digits = &p.as_str()[1..];
                prop_assert!((8..=15).contains(&digits.len()) && !digits.starts_with('0'));
            }
        }

        #[test]
        fn every_peruvian_mobile_is_accepted(rest in "[0-9]{8}") {
            let p = PhoneNumber::parse(&format!("9{rest}"), "PE").map_err(|e| TestCaseError::fail(e.detail))?;
            prop_assert_eq!(p.as_str(), format!("+519{rest}"));
            let debug = format!("{p:?}");
            prop_assert!(!debug.contains(&rest));
        }

        #[test]
        fn email_like_inputs_normalize_idempotently(raw in "[a-zA-Z0-9.@_+-]{1,30}") {
            if let Ok(email) = Email::parse(&raw) {
                prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
                prop_assert_eq!(email.as_str(), raw.to_ascii_lowercase());
            }
        }
    }
}
