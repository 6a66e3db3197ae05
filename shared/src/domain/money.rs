//! Money without floats: integer minor units of an ISO 4217 currency.
//!
//! On the wire an amount is a decimal *string* with exactly the currency's minor digits
//! (`{"amount": "49.90", "currency": "PEN"}`), never a JSON number, so no client can lose a cent
//! to binary floating point.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::validation::Invalid;

/// Currencies the back office sells in, with their minor-unit exponents (ISO 4217).
const CURRENCIES: &[(&str, u32)] = &[
    ("PEN", 2),
    ("USD", 2),
    ("EUR", 2),
    ("CLP", 0),
    ("COP", 2),
    ("MXN", 2),
    ("ARS", 2),
    ("BRL", 2),
    ("BOB", 2),
    ("UYU", 2),
    ("PYG", 0),
    ("GBP", 2),
    ("JPY", 0),
];

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    exponent: u32,
}

impl Currency {
    pub fn parse(code: &str) -> Result<Currency, Invalid> {
        let trimmed = code.trim();
        if let Some((code, exponent)) = CURRENCIES.iter().find(|(c, _)| *c == trimmed) {
            return Ok(Currency { code, exponent: *exponent });
        }
        if CURRENCIES.iter().any(|(c, _)| c.eq_ignore_ascii_case(trimmed)) {
            return Err(Invalid::new("invalid_currency", format!("currency codes are upper case: {}", trimmed.to_ascii_uppercase())));
        }
        if trimmed.len() != 3 || !trimmed.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(Invalid::new("invalid_currency", "a currency is a three-letter ISO 4217 code, e.g. PEN"));
        }
        let supported: Vec<&str> = CURRENCIES.iter().map(|(c, _)| *c).collect();
        Err(Invalid::new("unsupported_currency", format!("currency {trimmed} is not supported; supported: {}", supported.join(", "))))
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Digits after the decimal point (2 for PEN, 0 for CLP).
    pub fn exponent(&self) -> u32 {
        self.exponent
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Currency::parse(&raw).map_err(|e| serde::de::Error::custom(e.detail))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("cannot combine {left} with {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("amount out of range")]
    Overflow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// .5 rounds away from zero (commercial rounding, SUNAT's).
    HalfUp,
    /// .5 rounds to the even neighbour (banker's rounding).
    HalfEven,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    pub fn from_minor(amount_minor: i64, currency: Currency) -> Money {
        Money { amount_minor, currency }
    }

    pub fn zero(currency: Currency) -> Money {
        Money { amount_minor: 0, currency }
    }

    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_zero(&self) -> bool {
        self.amount_minor == 0
    }

    pub fn is_negative(&self) -> bool {
        self.amount_minor < 0
    }

    /// Parse a plain decimal ("49.90", "-3.5", "1200"); no exponents, no thousands separators,
    /// no more fraction digits than the currency has.
    pub fn parse(decimal: &str, currency: Currency) -> Result<Money, Invalid> {
        let invalid = || Invalid::new("invalid_amount", format!("{decimal:?} is not a plain decimal amount such as 49.90"));
        let text = decimal.trim();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = match digits.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (digits, None),
        };
        let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || fraction.is_some_and(|f| f.is_empty() || !all_digits(f)) {
            return Err(invalid());
        }
        let fraction = fraction.unwrap_or("");
        let exponent = currency.exponent() as usize;
        if fraction.len() > exponent {
            return Err(Invalid::new(
                "too_many_decimals",
                format!("{} amounts have at most {exponent} decimal digit(s), got {decimal:?}", currency.code()),
            ));
        }
        let out_of_range = || Invalid::new("amount_out_of_range", format!("{decimal:?} is out of range"));
        let mut minor: i64 = 0;
        for c in whole.chars().chain(fraction.chars()).chain(std::iter::repeat_n('0', exponent - fraction.len())) {
            let digit = i64::from(c.to_digit(10).ok_or_else(invalid)?);
            minor = minor.checked_mul(10).and_then(|m| m.checked_add(digit)).ok_or_else(out_of_range)?;
        }
        Ok(Money { amount_minor: if negative { -minor } else { minor }, currency })
    }

    /// Canonical decimal with exactly the currency's digits: "49.90", "1200", "-0.05".
    pub fn to_decimal_string(&self) -> String {
        let exponent = self.currency.exponent();
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        if exponent == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10u64.pow(exponent);
        format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = exponent as usize)
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency { Ok(()) } else { Err(MoneyError::CurrencyMismatch { left: self.currency, right: other.currency }) }
    }

    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let sum = self.amount_minor.checked_add(other.amount_minor).ok_or(MoneyError::Overflow)?;
        Ok(Money { amount_minor: sum, currency: self.currency })
    }

    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let difference = self.amount_minor.checked_sub(other.amount_minor).ok_or(MoneyError::Overflow)?;
        Ok(Money { amount_minor: difference, currency: self.currency })
    }

    pub fn checked_mul_qty(&self, quantity: u32) -> Result<Money, MoneyError> {
        let product = self.amount_minor.checked_mul(i64::from(quantity)).ok_or(MoneyError::Overflow)?;
        Ok(Money { amount_minor: product, currency: self.currency })
    }

    pub fn sum(currency: Currency, amounts: impl IntoIterator<Item = Money>) -> Result<Money, MoneyError> {
        amounts.into_iter().try_fold(Money::zero(currency), |acc, m| acc.checked_add(&m))
    }

    /// `self × basis_points / 10000`, rounded to the currency's minor unit (e.g. IGV 18% is
    /// 1800 bp). Computed in i128 so the intermediate product cannot overflow.
    pub fn percent_of(&self, basis_points: u32, rounding: Rounding) -> Result<Money, MoneyError> {
        let numerator = i128::from(self.amount_minor) * i128::from(basis_points);
        let rounded = divide_rounded(numerator, 10_000, rounding);
        let amount_minor = i64::try_from(rounded).map_err(|_| MoneyError::Overflow)?;
        Ok(Money { amount_minor, currency: self.currency })
    }

    pub fn cmp_amount(&self, other: &Money) -> Result<Ordering, MoneyError> {
        self.same_currency(other)?;
        Ok(self.amount_minor.cmp(&other.amount_minor))
    }
}

/// Integer division with the chosen rounding of the remainder (denominator > 0).
fn divide_rounded(numerator: i128, denominator: i128, rounding: Rounding) -> i128 {
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    if remainder == 0 {
        return quotient;
    }
    let away = if numerator < 0 { -1 } else { 1 };
    let twice = remainder.abs() * 2;
    match twice.cmp(&denominator) {
        Ordering::Less => quotient,
        Ordering::Greater => quotient + away,
        Ordering::Equal => match rounding {
            Rounding::HalfUp => quotient + away,
            Rounding::HalfEven if quotient % 2 == 0 => quotient,
            Rounding::HalfEven => quotient + away,
        },
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency.code(), self.to_decimal_string())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency.code(), self.to_decimal_string())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyWire {
    amount: String,
    currency: String,
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        MoneyWire { amount: self.to_decimal_string(), currency: self.currency.code().to_owned() }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A JSON number for `amount` fails here: amounts are strings on purpose.
        let wire = MoneyWire::deserialize(deserializer)?;
        let currency = Currency::parse(&wire.currency).map_err(|e| serde::de::Error::custom(e.detail))?;
        Money::parse(&wire.amount, currency).map_err(|e| serde::de::Error::custom(e.detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pen() -> Currency {
        Currency::parse("PEN").expect("PEN")
    }
    fn clp() -> Currency {
        Currency::parse("CLP").expect("CLP")
    }

    #[test]
    fn currencies() {
        assert_eq!((pen().code(), pen().exponent()), ("PEN", 2));
        assert_eq!(clp().exponent(), 0);
        assert_eq!(Currency::parse("pen").map_err(|e| e.code), Err("invalid_currency"));
        assert_eq!(Currency::parse("XXX").map_err(|e| e.code), Err("unsupported_currency"));
        assert_eq!(Currency::parse("S/").map_err(|e| e.code), Err("invalid_currency"));
    }

    #[test]
    fn parse_and_format() {
        let cases = [("49.90", 4990, "49.90"), ("49.9", 4990, "49.90"), ("-3.5", -350, "-3.50"), ("1200", 120000, "1200.00"), ("0.05", 5, "0.05"), ("-0.05", -5, "-0.05"), ("+1", 100, "1.00")];
        for (text, minor, canonical) in cases {
            let money = Money::parse(text, pen()).expect(text);
            assert_eq!((money.amount_minor(), money.to_decimal_string().as_str()), (minor, canonical), "{text}");
        }
        assert_eq!(Money::parse("1200", clp()).map(|m| m.to_decimal_string()), Ok("1200".into()));
    }

    #[test]
    fn parse_rejections() {
        for (text, currency, code) in [
            ("49.999", pen(), "too_many_decimals"),
            ("10.5", clp(), "too_many_decimals"),
            ("1e3", pen(), "invalid_amount"),
            ("1,000.00", pen(), "invalid_amount"),
            ("", pen(), "invalid_amount"),
            ("-", pen(), "invalid_amount"),
            (".5", pen(), "invalid_amount"),
            ("5.", pen(), "invalid_amount"),
            ("NaN", pen(), "invalid_amount"),
            ("99999999999999999999", pen(), "amount_out_of_range"),
        ] {
            assert_eq!(Money::parse(text, currency).map_err(|e| e.code), Err(code), "{text}");
        }
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Money::from_minor(1999, pen());
        assert_eq!(a.checked_mul_qty(3), Ok(Money::from_minor(5997, pen())));
        assert_eq!(a.checked_add(&Money::from_minor(1, clp())), Err(MoneyError::CurrencyMismatch { left: pen(), right: clp() }));
        assert_eq!(Money::from_minor(i64::MAX, pen()).checked_add(&Money::from_minor(1, pen())), Err(MoneyError::Overflow));
        assert_eq!(Money::from_minor(i64::MAX, pen()).checked_mul_qty(2), Err(MoneyError::Overflow));
        assert_eq!(a.checked_sub(&Money::from_minor(2000, pen())), Ok(Money::from_minor(-1, pen())));
        assert_eq!(Money::sum(pen(), [a, a]), Ok(Money::from_minor(3998, pen())));
        assert_eq!(a.cmp_amount(&Money::zero(pen())), Ok(Ordering::Greater));
    }

    #[test]
    fn percentages_round_as_told() {
        // 18% of 0.25 = 0.045 → 0.05 half-up, 0.04 half-even.
        let m = Money::from_minor(25, pen());
        assert_eq!(m.percent_of(1800, Rounding::HalfUp).map(|x| x.amount_minor()), Ok(5));
        assert_eq!(m.percent_of(1800, Rounding::HalfEven).map(|x| x.amount_minor()), Ok(4));
        // 18% of 149.90 = 26.982 → 26.98.
        assert_eq!(Money::from_minor(14990, pen()).percent_of(1800, Rounding::HalfUp).map(|x| x.amount_minor()), Ok(2698));
        // Negative amounts round away from zero on .5 (credit notes mirror invoices).
        assert_eq!(Money::from_minor(-25, pen()).percent_of(1800, Rounding::HalfUp).map(|x| x.amount_minor()), Ok(-5));
        assert_eq!(Money::from_minor(-35, pen()).percent_of(1800, Rounding::HalfEven).map(|x| x.amount_minor()), Ok(-6));
        assert!(Money::from_minor(i64::MAX, pen()).percent_of(20000, Rounding::HalfUp).is_err());
    }

    #[test]
    fn wire_form_is_a_decimal_string() {
        let m = Money::from_minor(4990, pen());
        assert_eq!(serde_json::to_value(m).expect("ser"), serde_json::json!({"amount": "49.90", "currency": "PEN"}));
        assert_eq!(serde_json::from_value::<Money>(serde_json::json!({"amount": "49.90", "currency": "PEN"})).expect("de"), m);
        assert!(serde_json::from_value::<Money>(serde_json::json!({"amount": 49.9, "currency": "PEN"})).is_err());
        assert!(serde_json::from_value::<Money>(serde_json::json!({"amount": "49.999", "currency": "PEN"})).is_err());
        assert!(serde_json::from_value::<Money>(serde_json::json!({"amount": "1", "currency": "XXX"})).is_err());
        assert_eq!(m.to_string(), "PEN 49.90");
    }

    proptest! {
        #[test]
        fn decimal_round_trip(minor in (i64::MIN + 1)..i64::MAX) {
            let m = Money::from_minor(minor, pen());
            prop_assert_eq!(Money::parse(&m.to_decimal_string(), pen()), Ok(m));
        }

        #[test]
        fn addition_commutes(a in -1_000_000_000i64..1_000_000_000, b in -1_000_000_000i64..1_000_000_000) {
            let (x, y) = (Money::from_minor(a, pen()), Money::from_minor(b, pen()));
            prop_assert_eq!(x.checked_add(&y), y.checked_add(&x));
        }

        #[test]
        fn parse_never_panics(text in ".{0,40}") {
            let _ = Money::parse(&text, pen());
            let _ = Currency::parse(&text);
        }
    }
}
