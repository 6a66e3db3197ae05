//! Amounts in words for printed invoices: `SON: CIENTO SETENTA Y NUEVE CON 80/100 SOLES`.
//!
//! Spanish cardinals per the RAE, long scale (MIL MILLONES is 10^9, BILLÓN 10^12, TRILLÓN 10^18),
//! upper case with accents. "UNO" shortens to "UN" only before MIL/MILLÓN/BILLÓN/TRILLÓN; the last
//! group keeps "UNO" even before the currency name, which is how Peruvian invoices write it.

use super::money::Money;

/// 0–29 are single words in Spanish (the twenties are written fused: VEINTIDÓS).
const SMALL: [&str; 30] = [
    "CERO",
    "UNO",
    "DOS",
    "TRES",
    "CUATRO",
    "CINCO",
    "SEIS",
    "SIETE",
    "OCHO",
    "NUEVE",
    "DIEZ",
    "ONCE",
    "DOCE",
    "TRECE",
    "CATORCE",
    "QUINCE",
    "DIECISÉIS",
    "DIECISIETE",
    "DIECIOCHO",
    "DIECINUEVE",
    "VEINTE",
    "VEINTIUNO",
    "VEINTIDÓS",
    "VEINTITRÉS",
    "VEINTICUATRO",
    "VEINTICINCO",
    "VEINTISÉIS",
    "VEINTISIETE",
    "VEINTIOCHO",
    "VEINTINUEVE",
];

/// Tens from 30 on, joined to the unit with "Y" (TREINTA Y UNO); 0–2 are covered by `SMALL`.
const TENS: [&str; 10] = [
    "",
    "",
    "",
    "TREINTA",
    "CUARENTA",
    "CINCUENTA",
    "SESENTA",
    "SETENTA",
    "OCHENTA",
    "NOVENTA",
];

/// Exactly 100 is CIEN, handled apart; these are the hundreds followed by something.
const HUNDREDS: [&str; 10] = [
    "",
    "CIENTO",
    "DOSCIENTOS",
    "TRESCIENTOS",
    "CUATROCIENTOS",
    "QUINIENTOS",
    "SEISCIENTOS",
    "SETECIENTOS",
    "OCHOCIENTOS",
    "NOVECIENTOS",
];

/// Long-scale units above a million, largest first: (size, singular, plural). u64::MAX is about
/// 18 trillones, so no larger unit is needed.
const SCALES: [(u64, &str, &str); 3] = [
    (1_000_000_000_000_000_000, "TRILLÓN", "TRILLONES"),
    (1_000_000_000_000, "BILLÓN", "BILLONES"),
    (1_000_000, "MILLÓN", "MILLONES"),
];

/// (ISO code, singular, plural) as printed after the amount.
const CURRENCY_NAMES: &[(&str, &str, &str)] = &[
    ("PEN", "SOL", "SOLES"),
    ("USD", "DÓLAR AMERICANO", "DÓLARES AMERICANOS"),
    ("EUR", "EURO", "EUROS"),
    ("CLP", "PESO CHILENO", "PESOS CHILENOS"),
    ("COP", "PESO COLOMBIANO", "PESOS COLOMBIANOS"),
    ("MXN", "PESO MEXICANO", "PESOS MEXICANOS"),
    ("ARS", "PESO ARGENTINO", "PESOS ARGENTINOS"),
    ("BRL", "REAL", "REALES"),
    ("BOB", "BOLIVIANO", "BOLIVIANOS"),
    ("UYU", "PESO URUGUAYO", "PESOS URUGUAYOS"),
    ("PYG", "GUARANÍ", "GUARANÍES"),
    ("GBP", "LIBRA ESTERLINA", "LIBRAS ESTERLINAS"),
];

/// Upper-case Spanish words for a non-negative integer, as written on Peruvian invoices.
pub fn integer_in_words(n: u64) -> String {
    if n == 0 {
        return SMALL[0].to_owned();
    }
    let mut words = Vec::new();
    push_number(n, false, &mut words);
    words.join(" ")
}

/// "CIENTO SETENTA Y NUEVE CON 80/100 SOLES" for Money 179.80 PEN.
///
/// The currency is singular only for exactly one unit (UNO CON 00/100 SOL); with a fraction it
/// is plural (UNO CON 50/100 SOLES), as the RAE prescribes after decimals. Zero-exponent
/// currencies have no "CON xx/100" part; negative amounts (credit notes) get "MENOS ".
pub fn amount_in_words(amount: &Money) -> String {
    let currency = amount.currency();
    let exponent = currency.exponent();
    // unsigned_abs: i64::MIN has no positive i64 counterpart.
    let magnitude = amount.amount_minor().unsigned_abs();
    let (major, fraction) = match 10u64.checked_pow(exponent) {
        Some(scale) => (magnitude / scale, magnitude % scale),
        // 10^exponent beyond u64 is beyond any i64 magnitude too: it is all fraction.
        None => (0, magnitude),
    };

    let code = currency.code();
    let (singular, plural) = CURRENCY_NAMES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or((code, code), |&(_, one, many)| (one, many));
    let name = if major == 1 && fraction == 0 { singular } else { plural };

    let sign = if amount.is_negative() { "MENOS " } else { "" };
    let whole = integer_in_words(major);
    if exponent == 0 {
        return format!("{sign}{whole} {name}");
    }
    let width = exponent as usize;
    let denominator = format!("1{}", "0".repeat(width));
    format!("{sign}{whole} CON {fraction:0width$}/{denominator} {name}")
}

/// Any n > 0. `apocope` turns a final UNO into UN, for when a scale word follows.
fn push_number(n: u64, apocope: bool, words: &mut Vec<&'static str>) {
    let mut rest = n;
    for (size, one, many) in SCALES {
        let count = rest / size;
        rest %= size;
        match count {
            0 => {}
            // UN MILLÓN, but MIL MILLONES / VEINTIÚN MILLONES: singular only for exactly one.
            1 => words.extend(["UN", one]),
            _ => {
                push_below_million(count, true, words);
                words.push(many);
            }
        }
    }
    push_below_million(rest, apocope, words);
}

/// 0..1_000_000; zero pushes nothing (it is only ever a missing part of a larger number).
fn push_below_million(n: u64, apocope: bool, words: &mut Vec<&'static str>) {
    let thousands = n / 1000 % 1000;
    match thousands {
        0 => {}
        // MIL, not UN MIL.
        1 => words.push("MIL"),
        _ => {
            push_below_thousand(thousands, true, words);
            words.push("MIL");
        }
    }
    push_below_thousand(n % 1000, apocope, words);
}

/// 0..1000; zero pushes nothing. Indexes are reduced with `%` so no input can go out of bounds.
fn push_below_thousand(n: u64, apocope: bool, words: &mut Vec<&'static str>) {
    let hundreds = (n / 100 % 10) as usize;
    let rest = (n % 100) as usize;
    if hundreds == 1 && rest == 0 {
        words.push("CIEN");
    } else if hundreds > 0 {
        words.push(HUNDREDS[hundreds]);
    }
    match rest {
        0 => {}
        1 if apocope => words.push("UN"),
        21 if apocope => words.push("VEINTIÚN"),
        1..30 => words.push(SMALL[rest]),
        _ => {
            words.push(TENS[rest / 10]);
            match rest % 10 {
                0 => {}
                1 if apocope => words.extend(["Y", "UN"]),
                unit => words.extend(["Y", SMALL[unit]]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use proptest::prelude::*;

    fn money(minor: i64, code: &str) -> Money {
        Money::from_minor(minor, Currency::parse(code).unwrap())
    }

    #[test]
    fn integers() {
        for (n, expected) in [
            (0, "CERO"),
            (1, "UNO"),
            (15, "QUINCE"),
            (16, "DIECISÉIS"),
            (21, "VEINTIUNO"),
            (22, "VEINTIDÓS"),
            (23, "VEINTITRÉS"),
            (26, "VEINTISÉIS"),
            (30, "TREINTA"),
            (31, "TREINTA Y UNO"),
            (99, "NOVENTA Y NUEVE"),
            (100, "CIEN"),
            (101, "CIENTO UNO"),
            (115, "CIENTO QUINCE"),
            (121, "CIENTO VEINTIUNO"),
            (200, "DOSCIENTOS"),
            (500, "QUINIENTOS"),
            (700, "SETECIENTOS"),
            (900, "NOVECIENTOS"),
            (999, "NOVECIENTOS NOVENTA Y NUEVE"),
            (1000, "MIL"),
            (1001, "MIL UNO"),
            (1100, "MIL CIEN"),
            (2000, "DOS MIL"),
            (21_000, "VEINTIÚN MIL"),
            (31_000, "TREINTA Y UN MIL"),
            (100_000, "CIEN MIL"),
            (101_000, "CIENTO UN MIL"),
            (999_999, "NOVECIENTOS NOVENTA Y NUEVE MIL NOVECIENTOS NOVENTA Y NUEVE"),
            (1_000_000, "UN MILLÓN"),
            (1_000_001, "UN MILLÓN UNO"),
            (1_001_000, "UN MILLÓN MIL"),
            (2_000_000, "DOS MILLONES"),
            (21_000_000, "VEINTIÚN MILLONES"),
            (21_021_021, "VEINTIÚN MILLONES VEINTIÚN MIL VEINTIUNO"),
            (100_000_000, "CIEN MILLONES"),
            (1_000_000_000, "MIL MILLONES"),
            (1_001_000_000, "MIL UN MILLONES"),
            (1_000_000_000_000, "UN BILLÓN"),
            (1_000_000_000_001, "UN BILLÓN UNO"),
            (2_000_000_000_000, "DOS BILLONES"),
            (1_000_000_000_000_000_000, "UN TRILLÓN"),
            (
                u64::MAX,
                "DIECIOCHO TRILLONES CUATROCIENTOS CUARENTA Y SEIS MIL SETECIENTOS CUARENTA Y CUATRO BILLONES \
                 SETENTA Y TRES MIL SETECIENTOS NUEVE MILLONES QUINIENTOS CINCUENTA Y UN MIL SEISCIENTOS QUINCE",
            ),
        ] {
            assert_eq!(integer_in_words(n), expected, "{n}");
        }
    }

    #[test]
    fn amounts() {
        for (minor, code, expected) in [
            (17_980, "PEN", "CIENTO SETENTA Y NUEVE CON 80/100 SOLES"),
            (100, "PEN", "UNO CON 00/100 SOL"),
            (150, "PEN", "UNO CON 50/100 SOLES"),
            (50, "PEN", "CERO CON 50/100 SOLES"),
            (0, "PEN", "CERO CON 00/100 SOLES"),
            (2100, "PEN", "VEINTIUNO CON 00/100 SOLES"),
            (100_005, "USD", "MIL CON 05/100 DÓLARES AMERICANOS"),
            (100, "USD", "UNO CON 00/100 DÓLAR AMERICANO"),
            (1500, "CLP", "MIL QUINIENTOS PESOS CHILENOS"),
            (1, "CLP", "UNO PESO CHILENO"),
            (21_000, "PYG", "VEINTIÚN MIL GUARANÍES"),
            (5, "JPY", "CINCO JPY"),
            (-1230, "PEN", "MENOS DOCE CON 30/100 SOLES"),
            (-100, "PEN", "MENOS UNO CON 00/100 SOL"),
            (
                i64::MIN,
                "PEN",
                "MENOS NOVENTA Y DOS MIL DOSCIENTOS TREINTA Y TRES BILLONES SETECIENTOS VEINTE MIL TRESCIENTOS \
                 SESENTA Y OCHO MILLONES QUINIENTOS CUARENTA Y SIETE MIL SETECIENTOS CINCUENTA Y OCHO CON 08/100 SOLES",
            ),
        ] {
            assert_eq!(amount_in_words(&money(minor, code)), expected, "{minor} {code}");
        }
    }

    #[test]
    fn every_named_currency_is_supported() {
        for (code, singular, plural) in CURRENCY_NAMES {
            let currency = Currency::parse(code).unwrap();
            let (one, fraction) = if currency.exponent() == 0 {
                (1, "")
            } else {
                (100, " CON 00/100")
            };
            assert_eq!(
                amount_in_words(&Money::from_minor(one, currency)),
                format!("UNO{fraction} {singular}")
            );
            assert_eq!(
                amount_in_words(&Money::from_minor(2 * one, currency)),
                format!("DOS{fraction} {plural}")
            );
        }
    }

    proptest! {
        #[test]
        fn words_are_single_spaced_and_never_panic(n in any::<u64>(), minor in any::<i64>()) {
            for text in [integer_in_words(n), amount_in_words(&money(minor, "PEN")), amount_in_words(&money(minor, "CLP"))] {
                prop_assert!(!text.is_empty() && !text.starts_with(' ') && !text.ends_with(' ') && !text.contains("  "), "{text:?}");
            }
        }
    }
}
