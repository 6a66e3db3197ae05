//! Numbers as SUNAT writes them, from integers only, and a thin XML writer whose text and
//! attribute values are always escaped by quick-xml.

use std::io;

use backoffice_domain::money::Money;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use crate::UblError;

/// Most decimals SUNAT accepts in a unit value (`cac:Price/cbc:PriceAmount`).
const UNIT_DECIMALS: u32 = 10;

/// An amount with exactly two decimals (SUNAT's format for every total), from minor units.
pub(crate) fn amount(money: &Money) -> Result<String, UblError> {
    if money.is_negative() {
        return Err(UblError::Unsupported(format!("negative amount {money:?}")));
    }
    match money.currency().exponent() {
        2 => Ok(money.to_decimal_string()),
        0 => Ok(format!("{}.00", money.amount_minor())),
        _ => Err(UblError::Unsupported(format!(
            "{} amounts do not have two decimals",
            money.currency()
        ))),
    }
}

/// `total / quantity` in currency units, rounded half-up to ten decimals and written with two
/// to ten (a unit value without tax is rarely a whole cent). Integer arithmetic only.
pub(crate) fn unit_amount(total: &Money, quantity: u32) -> Result<String, UblError> {
    if total.is_negative() || quantity == 0 {
        return Err(UblError::Unsupported(format!(
            "unit amount of {total:?} over {quantity}"
        )));
    }
    let exponent = total.currency().exponent();
    if exponent > UNIT_DECIMALS {
        return Err(UblError::Unsupported(format!(
            "{} has too many decimals",
            total.currency()
        )));
    }
    let scale = 10i128.pow(UNIT_DECIMALS);
    let numerator = i128::from(total.amount_minor()) * scale;
    let denominator = i128::from(quantity) * 10i128.pow(exponent);
    // Half-up: both operands are non-negative.
    let scaled = (2 * numerator + denominator) / (2 * denominator);
    let whole = scaled / scale;
    let fraction = format!("{:0width$}", scaled % scale, width = UNIT_DECIMALS as usize);
    let kept = fraction.trim_end_matches('0');
    let kept = if kept.len() < 2 { &fraction[..2] } else { kept };
    Ok(format!("{whole}.{kept}"))
}

/// Basis points as a percentage with two decimals: 1800 → "18.00".
pub(crate) fn percent(basis_points: u32) -> String {
    format!("{}.{:02}", basis_points / 100, basis_points % 100)
}

/// An indented XML document under construction.
pub(crate) struct Xml {
    writer: Writer<Vec<u8>>,
}

impl Xml {
    pub(crate) fn new() -> Result<Xml, UblError> {
        let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
        writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        Ok(Xml { writer })
    }

    pub(crate) fn open(&mut self, name: &str, attributes: &[(&str, &str)]) -> io::Result<()> {
        let start = BytesStart::new(name).with_attributes(attributes.iter().copied());
        self.writer.write_event(Event::Start(start))
    }

    pub(crate) fn close(&mut self, name: &str) -> io::Result<()> {
        self.writer.write_event(Event::End(BytesEnd::new(name)))
    }

    pub(crate) fn empty(&mut self, name: &str, attributes: &[(&str, &str)]) -> io::Result<()> {
        let start = BytesStart::new(name).with_attributes(attributes.iter().copied());
        self.writer.write_event(Event::Empty(start))
    }

    /// `<name attributes…>text</name>`, the text escaped.
    pub(crate) fn leaf(&mut self, name: &str, attributes: &[(&str, &str)], text: &str) -> io::Result<()> {
        self.open(name, attributes)?;
        self.writer.write_event(Event::Text(BytesText::new(text)))?;
        self.close(name)
    }

    /// An amount element: `<name currencyID="PEN">12.34</name>`.
    pub(crate) fn money(&mut self, name: &str, money: &Money) -> Result<(), UblError> {
        let text = amount(money)?;
        Ok(self.leaf(name, &[("currencyID", money.currency().code())], &text)?)
    }

    pub(crate) fn finish(self) -> Result<String, UblError> {
        String::from_utf8(self.writer.into_inner())
            .map_err(|e| UblError::Unsupported(format!("the writer produced invalid UTF-8: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use backoffice_domain::money::Currency;

    use super::*;

    fn pen(minor: i64) -> Money {
        Money::from_minor(minor, Currency::parse("PEN").expect("PEN"))
    }

    #[test]
    fn amounts_have_two_decimals() {
        assert_eq!(amount(&pen(17980)).expect("ok"), "179.80");
        assert_eq!(amount(&pen(5)).expect("ok"), "0.05");
        assert_eq!(
            amount(&Money::from_minor(1200, Currency::parse("CLP").expect("CLP"))).expect("ok"),
            "1200.00"
        );
        assert!(amount(&pen(-1)).is_err());
    }

    #[test]
    fn unit_amounts_keep_up_to_ten_decimals() {
        assert_eq!(unit_amount(&pen(12703), 1).expect("ok"), "127.03");
        assert_eq!(unit_amount(&pen(3388), 2).expect("ok"), "16.94");
        assert_eq!(unit_amount(&pen(100), 3).expect("ok"), "0.3333333333");
        assert_eq!(unit_amount(&pen(200), 3).expect("ok"), "0.6666666667");
        assert_eq!(unit_amount(&pen(0), 1).expect("ok"), "0.00");
        assert_eq!(unit_amount(&pen(15), 2).expect("ok"), "0.075");
        assert!(unit_amount(&pen(1), 0).is_err());
    }

    #[test]
    fn percents_come_from_basis_points() {
        assert_eq!(percent(1800), "18.00");
        assert_eq!(percent(0), "0.00");
        assert_eq!(percent(1050), "10.50");
    }
}
