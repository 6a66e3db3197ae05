//! Money without floats: integer minor units of an ISO 4217 currency.
//!
//! On the wire an amount is a decimal *string* with exactly the currency's minor digits
//! (`{"amount": "49.90", "currency": "PEN"}`), never a JSON number, so no client can lose a cent
//! to binary floating point.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::validation::{Invalid, shown};

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

/// A supported ISO 4217 currency; only [`Currency::parse`] makes one, so the exponent always
/// matches the code.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    exponent: u32,
}

impl Currency {
    /// An upper-case ISO 4217 code from the supported table ("PEN", not "pen" or "S/").
    pub fn parse(code: &str) -> Result<Currency, Invalid> {
        let trimmed = code.trim();
        if let Some(&(code, exponent)) = CURRENCIES.iter().find(|(c, _)| *c == trimmed) {
            return Ok(Currency { code, exponent });
        }
        let three_letters = trimmed.len() == 3 && trimmed.bytes().all(|b| b.is_ascii_alphabetic());
        if three_letters && !trimmed.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Invalid::new(
                "invalid_currency",
                format!(
                    "currency codes are upper case: write {:?}, not {trimmed:?}",
                    trimmed.to_ascii_uppercase()
                ),
            ));
        }
        if !three_letters {
            return Err(Invalid::new(
                "invalid_currency",
                format!(
                    "a currency is a three-letter upper-case ISO 4217 code such as PEN, got {}",
                    shown(trimmed)
                ),
            ));
        }
        let supported: Vec<&str> = CURRENCIES.iter().map(|(c, _)| *c).collect();
        Err(Invalid::new(
            "unsupported_currency",
            format!(
                "currency {trimmed} is not supported; supported: {}",
                supported.join(", ")
            ),
        ))
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
        Currency::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("cannot combine a {left} amount with a {right} amount")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("amount out of range (more than 64-bit minor units)")]
    Overflow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// .5 rounds away from zero (commercial rounding, SUNAT's).
    HalfUp,
    /// .5 rounds to the even neighbour (banker's rounding).
    HalfEven,
}

/// An amount in minor units (céntimos for PEN, pesos for CLP). No `Ord`: amounts in different
/// currencies do not compare; use [`Money::cmp_amount`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "MoneyWire", into = "MoneyWire")]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    pub fn from_minor(amount_minor: i64, currency: Currency) -> Money {
        Money { amount_minor, currency }
    }

    pub fn zero(currency: Currency) -> Money {
        Money {
            amount_minor: 0,
            currency,
        }
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

    /// Parse a plain decimal ("49.90", "-3.5", "+1", "1200"); surrounding whitespace is ignored.
    /// No exponents, no thousands separators, no bare "5." or ".5", and no more fraction digits
    /// than the currency has: "49.999" PEN would have to be rounded, and that is the caller's call.
    pub fn parse(decimal: &str, currency: Currency) -> Result<Money, Invalid> {
        let text = decimal.trim();
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (unsigned, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
            return Err(malformed(text));
        }
        let fraction = fraction.unwrap_or_default();
        let exponent = currency.exponent() as usize;
        if fraction.len() > exponent {
            let allowed = match exponent {
                0 => "no decimals".to_owned(),
                1 => "at most 1 decimal".to_owned(),
                n => format!("at most {n} decimals"),
            };
            return Err(Invalid::new(
                "too_many_decimals",
                format!(
                    "{} amounts have {allowed}, got {} in {}",
                    currency.code(),
                    fraction.len(),
                    shown(text)
                ),
            ));
        }
        let out_of_range = || {
            Invalid::new(
                "amount_out_of_range",
                format!(
                    "amount {} is out of range; {} amounts go from {} to {}",
                    shown(text),
                    currency.code(),
                    Money::from_minor(i64::MIN, currency).to_decimal_string(),
                    Money::from_minor(i64::MAX, currency).to_decimal_string(),
                ),
            )
        };
        // Accumulate the magnitude in i128 and stop as soon as it exceeds |i64::MIN|, so any
        // number of digits is handled without overflow and i64::MIN itself still parses.
        let limit = i128::from(i64::MAX) + 1;
        let padding = std::iter::repeat_n(b'0', exponent - fraction.len());
        let mut magnitude: i128 = 0;
        for byte in whole.bytes().chain(fraction.bytes()).chain(padding) {
            magnitude = magnitude * 10 + i128::from(byte - b'0');
            if magnitude > limit {
                return Err(out_of_range());
            }
        }
        let signed = if negative { -magnitude } else { magnitude };
        let amount_minor = i64::try_from(signed).map_err(|_| out_of_range())?;
        Ok(Money { amount_minor, currency })
    }

    /// Canonical decimal with exactly the currency's digits: "49.90", "1200" (CLP), "-0.05".
    pub fn to_decimal_string(&self) -> String {
        let exponent = self.currency.exponent();
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let magnitude = self.amount_minor.unsigned_abs();
        if exponent == 0 {
            return format!("{sign}{magnitude}");
        }
        let scale = 10u64.pow(exponent);
        format!(
            "{sign}{}.{:0width$}",
            magnitude / scale,
            magnitude % scale,
            width = exponent as usize
        )
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let sum = self
            .amount_minor
            .checked_add(other.amount_minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            amount_minor: sum,
            currency: self.currency,
        })
    }

    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let difference = self
            .amount_minor
            .checked_sub(other.amount_minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            amount_minor: difference,
            currency: self.currency,
        })
    }

    /// Unit price × quantity.
    pub fn checked_mul_qty(&self, quantity: u32) -> Result<Money, MoneyError> {
        let product = self
            .amount_minor
            .checked_mul(i64::from(quantity))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            amount_minor: product,
            currency: self.currency,
        })
    }

    /// The total of `amounts`, all of which must be in `currency`; zero when empty.
    pub fn sum(currency: Currency, amounts: impl IntoIterator<Item = Money>) -> Result<Money, MoneyError> {
        amounts
            .into_iter()
            .try_fold(Money::zero(currency), |total, m| total.checked_add(&m))
    }

    /// `self × basis_points / 10000`, rounded to the currency's minor unit (IGV 18% is 1800 bp).
    /// Computed in i128, where `i64 × u32` cannot overflow; only a result beyond i64 fails.
    pub fn percent_of(&self, basis_points: u32, rounding: Rounding) -> Result<Money, MoneyError> {
        let numerator = i128::from(self.amount_minor) * i128::from(basis_points);
        let rounded = divide_rounded(numerator, 10_000, rounding);
        let amount_minor = i64::try_from(rounded).map_err(|_| MoneyError::Overflow)?;
        Ok(Money {
            amount_minor,
            currency: self.currency,
        })
    }

    /// Compare amounts of the same currency; a different currency is an error, not an order.
    pub fn cmp_amount(&self, other: &Money) -> Result<Ordering, MoneyError> {
        self.same_currency(other)?;
        Ok(self.amount_minor.cmp(&other.amount_minor))
    }
}

/// Integer division with the chosen rounding of the remainder; `denominator` must be > 0.
fn divide_rounded(numerator: i128, denominator: i128, rounding: Rounding) -> i128 {
    // Rust's `/` truncates toward zero, so the quotient is the magnitude rounded down and the
    // remainder carries the numerator's sign.
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    if remainder == 0 {
        return quotient;
    }
    let away = if numerator < 0 { -1 } else { 1 };
    match (remainder.abs() * 2).cmp(&denominator) {
        Ordering::Less => quotient,
        Ordering::Greater => quotient + away,
        Ordering::Equal => match rounding {
            Rounding::HalfUp => quotient + away,
            Rounding::HalfEven if quotient % 2 == 0 => quotient,
            Rounding::HalfEven => quotient + away,
        },
    }
}

/// Why a string is not a plain decimal, in terms a client can act on.
fn malformed(text: &str) -> Invalid {
    let why = if text.is_empty() {
        "the amount is empty".to_owned()
    } else if matches!(text, "-" | "+") {
        "the amount is only a sign".to_owned()
    } else if text.contains(['e', 'E'])
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '+' | '-' | 'e' | 'E'))
    {
        format!("exponent notation is not accepted, got {}", shown(text))
    } else if text.contains([',', '_', ' ', '\'']) {
        format!(
            "separators are not accepted: no thousands separators, and '.' is the decimal point, got {}",
            shown(text)
        )
    } else {
        format!("{} is not a plain decimal number", shown(text))
    };
    Invalid::new(
        "invalid_amount",
        format!("{why}; write the amount like 49.90, -3.5 or 1200"),
    )
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency.code(), self.to_decimal_string())
    }
}

/// "PEN 49.90".
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency.code(), self.to_decimal_string())
    }
}

/// The unvalidated wire shape `{"amount": "49.90", "currency": "PEN"}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyWire {
    amount: AmountText,
    currency: Currency,
}

impl TryFrom<MoneyWire> for Money {
    type Error = Invalid;

    fn try_from(wire: MoneyWire) -> Result<Self, Invalid> {
        Money::parse(&wire.amount.0, wire.currency)
    }
}

impl From<Money> for MoneyWire {
    fn from(money: Money) -> Self {
        MoneyWire {
            amount: AmountText(money.to_decimal_string()),
            currency: money.currency,
        }
    }
}

/// The amount exactly as sent. Accepts only a string, so a JSON number fails with a message
/// that says why instead of serde's bare "expected a string".
struct AmountText(String);

impl Serialize for AmountText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AmountText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextOnly;

        impl serde::de::Visitor<'_> for TextOnly {
            type Value = AmountText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the amount as a decimal string such as \"49.90\" (a JSON number could lose cents, so it is refused)")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<AmountText, E> {
                Ok(AmountText(text.to_owned()))
            }
        }

        deserializer.deserialize_str(TextOnly)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn currency(code: &str) -> Currency {
        Currency::parse(code).unwrap_or_else(|e| panic!("{code}: {e}"))
    }
    fn pen() -> Currency {
        currency("PEN")
    }
    fn clp() -> Currency {
        currency("CLP")
    }
    fn usd() -> Currency {
        currency("USD")
    }
    fn minor(text: &str, currency: Currency) -> Result<i64, &'static str> {
        Money::parse(text, currency)
            .map(|m| m.amount_minor())
            .map_err(|e| e.code)
    }
    fn detail(text: &str, currency: Currency) -> String {
        Money::parse(text, currency).err().map(|e| e.detail).unwrap_or_default()
    }
    fn pct(amount_minor: i64, bp: u32, rounding: Rounding) -> Result<i64, MoneyError> {
        Money::from_minor(amount_minor, pen())
            .percent_of(bp, rounding)
            .map(|m| m.amount_minor())
    }

    #[test]
    fn supported_currencies_and_exponents() {
        for (code, exponent) in [
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
        ] {
            let c = currency(code);
            assert_eq!((c.code(), c.exponent()), (code, exponent));
            assert_eq!(c.to_string(), code);
            assert_eq!(format!("{c:?}"), code);
        }
        assert_eq!(Currency::parse(" PEN "), Ok(pen()));
    }

    #[test]
    fn currency_rejections() {
        for (raw, code) in [
            ("pen", "invalid_currency"),
            ("Pen", "invalid_currency"),
            ("xxx", "invalid_currency"),
            ("S/", "invalid_currency"),
            ("PE", "invalid_currency"),
            ("PENN", "invalid_currency"),
            ("", "invalid_currency"),
            ("604", "invalid_currency"),
            ("PÉN", "invalid_currency"),
            ("XXX", "unsupported_currency"),
            ("CAD", "unsupported_currency"),
        ] {
            assert_eq!(Currency::parse(raw).map_err(|e| e.code), Err(code), "{raw}");
        }
        assert_eq!(
            Currency::parse("pen").err().map(|e| e.detail),
            Some("currency codes are upper case: write \"PEN\", not \"pen\"".into())
        );
        let unsupported = Currency::parse("CAD").err().map(|e| e.detail).unwrap_or_default();
        assert!(
            unsupported.starts_with("currency CAD is not supported; supported: PEN, USD, EUR"),
            "{unsupported}"
        );
    }

    #[test]
    fn currency_serde() {
        assert_eq!(serde_json::to_value(pen()).ok(), Some(json!("PEN")));
        assert_eq!(serde_json::from_value::<Currency>(json!("CLP")).ok(), Some(clp()));
        for bad in [json!("pen"), json!("XXX"), json!(604), json!(null)] {
            assert!(serde_json::from_value::<Currency>(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_and_format() {
        let cases = [
            ("49.90", 4990, "49.90"),
            ("49.9", 4990, "49.90"),
            ("-3.5", -350, "-3.50"),
            ("1200", 120000, "1200.00"),
            ("0.05", 5, "0.05"),
            ("-0.05", -5, "-0.05"),
            ("+1", 100, "1.00"),
            ("-0", 0, "0.00"),
            ("-0.00", 0, "0.00"),
            (" 7.10 ", 710, "7.10"),
            ("007.10", 710, "7.10"),
            ("92233720368547758.07", i64::MAX, "92233720368547758.07"),
            ("-92233720368547758.08", i64::MIN, "-92233720368547758.08"),
        ];
        for (text, minor, canonical) in cases {
            let money = Money::parse(text, pen()).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                (money.amount_minor(), money.to_decimal_string().as_str()),
                (minor, canonical),
                "{text}"
            );
        }
        for (text, minor, canonical) in [
            ("1200", 1200, "1200"),
            ("-5", -5, "-5"),
            ("0", 0, "0"),
            ("9223372036854775807", i64::MAX, "9223372036854775807"),
        ] {
            let money = Money::parse(text, clp()).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                (money.amount_minor(), money.to_decimal_string().as_str()),
                (minor, canonical),
                "{text}"
            );
        }
        assert_eq!(
            Money::from_minor(i64::MIN, clp()).to_decimal_string(),
            "-9223372036854775808"
        );
        assert_eq!(Money::from_minor(-1, usd()).to_decimal_string(), "-0.01");
    }

    #[test]
    fn parse_rejections() {
        for (text, currency, code) in [
            ("49.999", pen(), "too_many_decimals"),
            ("49.900", pen(), "too_many_decimals"),
            ("10.5", clp(), "too_many_decimals"),
            ("10.0", clp(), "too_many_decimals"),
            ("1e3", pen(), "invalid_amount"),
            ("1.5E2", pen(), "invalid_amount"),
            ("1,000.00", pen(), "invalid_amount"),
            ("49,90", pen(), "invalid_amount"),
            ("1 000", pen(), "invalid_amount"),
            ("1_000", pen(), "invalid_amount"),
            ("", pen(), "invalid_amount"),
            ("   ", pen(), "invalid_amount"),
            ("-", pen(), "invalid_amount"),
            ("+", pen(), "invalid_amount"),
            ("--1", pen(), "invalid_amount"),
            ("+-1", pen(), "invalid_amount"),
            ("- 1", pen(), "invalid_amount"),
            (".5", pen(), "invalid_amount"),
            ("5.", pen(), "invalid_amount"),
            ("1.2.3", pen(), "invalid_amount"),
            ("NaN", pen(), "invalid_amount"),
            ("inf", pen(), "invalid_amount"),
            ("S/ 10", pen(), "invalid_amount"),
            ("١٢", pen(), "invalid_amount"),
            ("0x10", pen(), "invalid_amount"),
            ("92233720368547758.08", pen(), "amount_out_of_range"),
            ("-92233720368547758.09", pen(), "amount_out_of_range"),
            ("9223372036854775808", clp(), "amount_out_of_range"),
            ("99999999999999999999", pen(), "amount_out_of_range"),
        ] {
            assert_eq!(minor(text, currency), Err(code), "{text}");
        }
        let huge = "9".repeat(10_000);
        assert_eq!(minor(&huge, pen()), Err("amount_out_of_range"));
        assert!(detail(&huge, pen()).len() < 200);
        assert_eq!(minor(&format!("{}1.00", "0".repeat(10_000)), pen()), Ok(100));
    }

    #[test]
    fn parse_details() {
        assert_eq!(
            detail("49.999", pen()),
            "PEN amounts have at most 2 decimals, got 3 in \"49.999\""
        );
        assert_eq!(detail("10.5", clp()), "CLP amounts have no decimals, got 1 in \"10.5\"");
        assert!(detail("1e3", pen()).starts_with("exponent notation is not accepted"));
        assert!(detail("1,000.00", pen()).starts_with("separators are not accepted"));
        assert!(detail("", pen()).starts_with("the amount is empty"));
        assert!(detail("-", pen()).starts_with("the amount is only a sign"));
        assert!(detail("abc", pen()).starts_with("\"abc\" is not a plain decimal number; write the amount like 49.90"));
        assert_eq!(
            detail("92233720368547758.08", pen()),
            "amount \"92233720368547758.08\" is out of range; PEN amounts go from -92233720368547758.08 to 92233720368547758.07"
        );
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Money::from_minor(1999, pen());
        assert_eq!(a.checked_mul_qty(3), Ok(Money::from_minor(5997, pen())));
        assert_eq!(a.checked_mul_qty(0), Ok(Money::zero(pen())));
        assert_eq!(
            a.checked_add(&Money::from_minor(1, clp())),
            Err(MoneyError::CurrencyMismatch {
                left: pen(),
                right: clp()
            })
        );
        assert_eq!(
            a.checked_sub(&Money::from_minor(1, usd())),
            Err(MoneyError::CurrencyMismatch {
                left: pen(),
                right: usd()
            })
        );
        assert_eq!(
            Money::from_minor(i64::MAX, pen()).checked_add(&Money::from_minor(1, pen())),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::from_minor(i64::MIN, pen()).checked_sub(&Money::from_minor(1, pen())),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::from_minor(i64::MAX, pen()).checked_mul_qty(2),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::from_minor(-1, pen()).checked_mul_qty(u32::MAX),
            Ok(Money::from_minor(-i64::from(u32::MAX), pen()))
        );
        assert_eq!(
            a.checked_sub(&Money::from_minor(2000, pen())),
            Ok(Money::from_minor(-1, pen()))
        );
        assert_eq!(Money::sum(pen(), [a, a]), Ok(Money::from_minor(3998, pen())));
        assert_eq!(Money::sum(pen(), []), Ok(Money::zero(pen())));
        assert_eq!(
            Money::sum(pen(), [a, Money::from_minor(1, usd())]),
            Err(MoneyError::CurrencyMismatch {
                left: pen(),
                right: usd()
            })
        );
        assert_eq!(
            Money::sum(clp(), [a]),
            Err(MoneyError::CurrencyMismatch {
                left: clp(),
                right: pen()
            })
        );
        assert_eq!(
            Money::sum(pen(), [Money::from_minor(i64::MAX, pen()), Money::from_minor(1, pen())]),
            Err(MoneyError::Overflow)
        );
        assert_eq!(a.cmp_amount(&Money::zero(pen())), Ok(Ordering::Greater));
        assert_eq!(a.cmp_amount(&a), Ok(Ordering::Equal));
        assert_eq!(
            Money::from_minor(-1, pen()).cmp_amount(&Money::zero(pen())),
            Ok(Ordering::Less)
        );
        assert_eq!(
            a.cmp_amount(&Money::from_minor(1999, usd())),
            Err(MoneyError::CurrencyMismatch {
                left: pen(),
                right: usd()
            })
        );
        assert!(Money::zero(pen()).is_zero() && !Money::zero(pen()).is_negative());
        assert!(Money::from_minor(-1, pen()).is_negative() && !a.is_zero());
        assert_eq!(
            MoneyError::CurrencyMismatch {
                left: pen(),
                right: usd()
            }
            .to_string(),
            "cannot combine a PEN amount with a USD amount"
        );
    }

    #[test]
    fn percentages_round_as_told() {
        use Rounding::{HalfEven, HalfUp};
        for (amount, bp, half_up, half_even) in [
            (25, 1800, 5, 4),          // 4.5
            (-25, 1800, -5, -4),       // −4.5: away from zero / to even
            (75, 1800, 14, 14),        // 13.5: 14 is the even neighbour too
            (-75, 1800, -14, -14),     // −13.5
            (35, 1800, 6, 6),          // 6.3
            (-35, 1800, -6, -6),       // −6.3
            (36, 1800, 6, 6),          // 6.48
            (39, 1800, 7, 7),          // 7.02
            (1, 5000, 1, 0),           // 0.5
            (-1, 5000, -1, 0),         // −0.5
            (3, 5000, 2, 2),           // 1.5
            (5, 5000, 3, 2),           // 2.5
            (1, 4999, 0, 0),           // 0.4999
            (1, 5001, 1, 1),           // 0.5001
            (14990, 1800, 2698, 2698), // 149.90 × 18% = 26.982
            (10000, 1800, 1800, 1800), // 100.00 × 18% = 18.00 exactly
            (12345, 0, 0, 0),
            (i64::MAX, 10_000, i64::MAX, i64::MAX),
            (i64::MIN, 10_000, i64::MIN, i64::MIN),
            (i64::MAX, 5_000, i64::MAX / 2 + 1, i64::MAX / 2 + 1), // …3.5 → …4 both ways
            (i64::MIN, 1, -922_337_203_685_478, -922_337_203_685_478), // …477.5808
        ] {
            assert_eq!(pct(amount, bp, HalfUp), Ok(half_up), "{amount} × {bp} half-up");
            assert_eq!(pct(amount, bp, HalfEven), Ok(half_even), "{amount} × {bp} half-even");
        }
        assert_eq!(pct(i64::MAX, 10_001, HalfUp), Err(MoneyError::Overflow));
        assert_eq!(pct(i64::MIN, 20_000, HalfEven), Err(MoneyError::Overflow));
        assert_eq!(pct(i64::MAX, u32::MAX, HalfUp), Err(MoneyError::Overflow));
        // CLP has no minor digits: 19% IVA of 999 pesos is 189.81 → 190.
        assert_eq!(
            Money::from_minor(999, clp()).percent_of(1900, HalfUp),
            Ok(Money::from_minor(190, clp()))
        );
    }

    #[test]
    fn wire_form_is_a_decimal_string() {
        let m = Money::from_minor(4990, pen());
        assert_eq!(
            serde_json::to_value(m).ok(),
            Some(json!({"amount": "49.90", "currency": "PEN"}))
        );
        assert_eq!(
            serde_json::to_string(&m).ok(),
            Some(r#"{"amount":"49.90","currency":"PEN"}"#.into())
        );
        assert_eq!(
            serde_json::from_value::<Money>(json!({"amount": "49.90", "currency": "PEN"})).ok(),
            Some(m)
        );
        assert_eq!(
            serde_json::from_str::<Money>(r#"{"amount":"49.9","currency":"PEN"}"#).ok(),
            Some(m)
        );
        let clp_amount = Money::from_minor(1200, clp());
        assert_eq!(
            serde_json::to_value(clp_amount).ok(),
            Some(json!({"amount": "1200", "currency": "CLP"}))
        );
        assert_eq!(
            serde_json::from_value::<Money>(json!({"amount": "-0.05", "currency": "USD"})).ok(),
            Some(Money::from_minor(-5, usd()))
        );
        for bad in [
            json!({"amount": 49.9, "currency": "PEN"}),
            json!({"amount": 49, "currency": "PEN"}),
            json!({"amount": "49.999", "currency": "PEN"}),
            json!({"amount": "1e3", "currency": "PEN"}),
            json!({"amount": "1", "currency": "XXX"}),
            json!({"amount": "1", "currency": "pen"}),
            json!({"amount": "1"}),
            json!({"currency": "PEN"}),
            json!({"amount": "1", "currency": "PEN", "amount_minor": 100}),
            json!("PEN 49.90"),
            json!(null),
        ] {
            assert!(serde_json::from_value::<Money>(bad.clone()).is_err(), "{bad}");
        }
        let number = serde_json::from_str::<Money>(r#"{"amount":49.9,"currency":"PEN"}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            number.contains("expected the amount as a decimal string such as \"49.90\""),
            "{number}"
        );
        let decimals = serde_json::from_str::<Money>(r#"{"amount":"49.999","currency":"PEN"}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(decimals.contains("too_many_decimals"), "{decimals}");
        assert_eq!(m.to_string(), "PEN 49.90");
        assert_eq!(format!("{m:?}"), "PEN 49.90");
        assert_eq!(Money::from_minor(-5, clp()).to_string(), "CLP -5");
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        prop::sample::select(CURRENCIES.iter().map(|(code, _)| currency(code)).collect::<Vec<_>>())
    }

    proptest! {
        #[test]
        fn decimal_round_trip(minor in any::<i64>(), currency in any_currency()) {
            let m = Money::from_minor(minor, currency);
            prop_assert_eq!(Money::parse(&m.to_decimal_string(), currency), Ok(m));
            let json = serde_json::to_string(&m).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(serde_json::from_str::<Money>(&json).ok(), Some(m));
        }

        #[test]
        fn addition_commutes(a in any::<i64>(), b in any::<i64>()) {
            let (x, y) = (Money::from_minor(a, pen()), Money::from_minor(b, pen()));
            prop_assert_eq!(x.checked_add(&y), y.checked_add(&x));
            if let Ok(sum) = x.checked_add(&y) {
                prop_assert_eq!(sum.checked_sub(&y), Ok(x));
            }
        }

        #[test]
        fn parse_never_panics(text in ".{0,40}") {
            let _ = Money::parse(&text, pen());
            let _ = Money::parse(&text, clp());
            let _ = Currency::parse(&text);
        }

        #[test]
        fn number_like_text_never_panics(text in "[-+]?[0-9]{0,25}(\\.[0-9]{0,4})?[eE,]?[0-9]{0,2}") {
            for currency in [pen(), clp()] {
                if let Ok(m) = Money::parse(&text, currency) {
                    prop_assert_eq!(Money::parse(&m.to_decimal_string(), currency), Ok(m));
                }
            }
        }

        #[test]
        fn percent_never_panics_and_roundings_agree_within_one(minor in any::<i64>(), bp in any::<u32>()) {
            let m = Money::from_minor(minor, pen());
            let up = m.percent_of(bp, Rounding::HalfUp);
            let even = m.percent_of(bp, Rounding::HalfEven);
            if let (Ok(up), Ok(even)) = (up, even) {
                prop_assert!(i128::from(up.amount_minor()).abs_diff(i128::from(even.amount_minor())) <= 1);
            }
            prop_assert_eq!(m.percent_of(10_000, Rounding::HalfUp), Ok(m));
        }
    }
}
