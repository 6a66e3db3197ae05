//! Dunning (issue 15): reminders of what an invoice still owes, at configured offsets from its
//! due date (−3: three days before; +15: fifteen days after), on the client's local day.
//! Pure rules: which reminder an invoice is due on a day, and its words in Spanish (Peru). The
//! store keeps which reminders went out; the dunning function sends them.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::invoice::Invoice;
use crate::receivable::Account;
use crate::validation::Invalid;

/// Days from the due date a reminder may be set at: a month before to four months after.
pub const OFFSET_RANGE: std::ops::RangeInclusive<i16> = -30..=120;

/// The reminders a client's invoices get: days from the due date, unique and in order. Empty
/// means the client sends none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<i16>", into = "Vec<i16>")]
pub struct DunningOffsets(Vec<i16>);

impl Default for DunningOffsets {
    /// Three days before the due date, then one, fifteen and thirty days after.
    fn default() -> Self {
        Self(vec![-3, 1, 15, 30])
    }
}

impl DunningOffsets {
    /// Offsets as configured: each within [`OFFSET_RANGE`], none twice; sorted here.
    pub fn new(offsets: impl IntoIterator<Item = i16>) -> Result<Self, Invalid> {
        let mut offsets: Vec<i16> = offsets.into_iter().collect();
        if let Some(out) = offsets.iter().find(|o| !OFFSET_RANGE.contains(o)) {
            return Err(Invalid::new(
                "offset_out_of_range",
                format!(
                    "dunning offset {out} is outside {}..={} days from the due date",
                    OFFSET_RANGE.start(),
                    OFFSET_RANGE.end()
                ),
            ));
        }
        offsets.sort_unstable();
        if let Some(pair) = offsets.windows(2).find(|w| w[0] == w[1]) {
            return Err(Invalid::new(
                "duplicate_offset",
                format!("dunning offset {} is listed twice", pair[0]),
            ));
        }
        Ok(Self(offsets))
    }

    pub fn as_slice(&self) -> &[i16] {
        &self.0
    }

    /// The reminder an invoice due on `due_date` is owed on `today`: the latest offset reached
    /// (`today − due_date ≥ offset`) at most `catch_up_days` ago. With no catch-up that is the
    /// offset equal to `today − due_date`; with some, a run missed (or cut short) yesterday still
    /// sends yesterday's reminder today, and a later offset reached since supersedes it (one
    /// reminder per invoice and day; its words say the real distance to the due date).
    pub fn due(&self, due_date: Date, today: Date, catch_up_days: u16) -> Option<Offset> {
        let past_due = (today - due_date).whole_days();
        let offset = self.0.iter().rev().find(|o| i64::from(**o) <= past_due)?;
        (past_due - i64::from(*offset) <= i64::from(catch_up_days)).then_some(Offset(*offset))
    }

    /// The due dates whose invoices may owe a reminder on `today` (see [`Self::due`]), each once.
    pub fn due_dates(&self, today: Date, catch_up_days: u16) -> Vec<Date> {
        let mut dates: Vec<Date> = self
            .0
            .iter()
            .flat_map(|o| (0..=i64::from(catch_up_days)).map(move |late| i64::from(*o) + late))
            .filter_map(|days| today.checked_sub(time::Duration::days(days)))
            .collect();
        dates.sort_unstable();
        dates.dedup();
        dates
    }
}

impl TryFrom<Vec<i16>> for DunningOffsets {
    type Error = String;
    fn try_from(offsets: Vec<i16>) -> Result<Self, String> {
        Self::new(offsets).map_err(|e| e.detail)
    }
}

impl From<DunningOffsets> for Vec<i16> {
    fn from(offsets: DunningOffsets) -> Self {
        offsets.0
    }
}

/// One configured offset: days from the due date (negative: before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Offset(pub i16);

/// `-003`, `+001`, `+015`: a fixed-width sign and three digits, as the reminder's key shows it.
impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:+04}", self.0)
    }
}

/// A reminder's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderText {
    pub subject: String,
    pub body: String,
}

/// "vence en 3 días", "vence mañana", "vence hoy", "venció ayer", "venció hace 15 días".
pub fn due_phrase(due_date: Date, today: Date) -> String {
    match (today - due_date).whole_days() {
        ..=-2 => format!("vence en {} días", (due_date - today).whole_days()),
        -1 => "vence mañana".into(),
        0 => "vence hoy".into(),
        1 => "venció ayer".into(),
        days => format!("venció hace {days} días"),
    }
}

/// A date as Peru writes it: `30/12/2026`.
pub fn local_date_text(date: Date) -> String {
    format!("{:02}/{:02}/{}", date.day(), u8::from(date.month()), date.year())
}

/// The reminder for `invoice`, which still owes `account.outstanding()`, written on `today`.
pub fn reminder_text(invoice: &Invoice, account: &Account, today: Date) -> ReminderText {
    let kind = document_name(invoice);
    let phrase = due_phrase(invoice.due_date, today);
    let outstanding = account.outstanding();
    let subject = format!(
        "Recordatorio de pago: {kind} {number} {phrase} - {seller}",
        number = invoice.invoice_id,
        seller = invoice.seller.name,
    );
    let partial = if account.paid_minor > 0 || account.credited_minor > 0 {
        format!(" (de un total de {})", invoice.totals.total)
    } else {
        String::new()
    };
    let body = format!(
        "Estimado(a) {buyer}:\n\n\
         Le recordamos que su {kind_lower} {number}, emitida por {seller} (RUC {ruc}) el {issued}, {phrase} \
         (fecha de vencimiento: {due}).\n\n\
         Saldo pendiente: {outstanding}{partial}\n\n\
         Si ya realizó el pago, le agradecemos y le pedimos disculpas por la molestia: puede responder a este \
         correo con el número de operación para registrarlo. Para cualquier consulta, responda a este correo.\n\n\
         Atentamente,\n{seller}\n",
        buyer = invoice.buyer.name,
        kind_lower = kind.to_lowercase(),
        number = invoice.invoice_id,
        seller = invoice.seller.name,
        ruc = invoice.seller.document.number(),
        issued = local_date_text(invoice.issue_date),
        due = local_date_text(invoice.due_date),
    );
    ReminderText { subject, body }
}

/// "Factura electrónica", "Boleta de venta electrónica".
fn document_name(invoice: &Invoice) -> String {
    let lower = invoice.kind.title().to_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;
    use crate::money::Money;

    fn offsets(list: &[i16]) -> DunningOffsets {
        DunningOffsets::new(list.iter().copied()).expect("valid offsets")
    }

    #[test]
    fn offsets_are_validated_and_sorted() {
        assert_eq!(offsets(&[30, -3, 15, 1]).as_slice(), &[-3, 1, 15, 30]);
        assert_eq!(DunningOffsets::default().as_slice(), &[-3, 1, 15, 30]);
        assert!(DunningOffsets::new([]).is_ok(), "no reminders at all is a choice");
        assert!(DunningOffsets::new([-30, 120]).is_ok());
        for bad in [vec![-31], vec![121], vec![1, 15, 1]] {
            assert!(DunningOffsets::new(bad.clone()).is_err(), "{bad:?}");
        }
        let parsed: Result<DunningOffsets, _> = serde_json::from_str("[15, -3]");
        assert_eq!(parsed.ok(), Some(offsets(&[-3, 15])));
        assert!(serde_json::from_str::<DunningOffsets>("[1, 1]").is_err());
        assert!(serde_json::from_str::<DunningOffsets>("[200]").is_err());
    }

    #[test]
    fn the_offset_due_is_today_minus_the_due_date() {
        let o = DunningOffsets::default();
        let due = date!(2026 - 12 - 31);
        assert_eq!(o.due(due, date!(2026 - 12 - 28), 0), Some(Offset(-3)));
        assert_eq!(o.due(due, date!(2027 - 01 - 01), 0), Some(Offset(1)));
        assert_eq!(o.due(due, date!(2027 - 01 - 15), 0), Some(Offset(15)));
        assert_eq!(o.due(due, date!(2027 - 01 - 30), 0), Some(Offset(30)));
        for quiet in [
            date!(2026 - 12 - 27),
            date!(2026 - 12 - 29),
            due,
            date!(2027 - 01 - 02),
            date!(2027 - 03 - 01),
        ] {
            assert_eq!(o.due(due, quiet, 0), None, "{quiet}");
        }
    }

    #[test]
    fn a_missed_day_is_caught_up_within_the_grace_and_a_later_offset_supersedes() {
        let o = DunningOffsets::default();
        let due = date!(2026 - 12 - 31);
        // The +1 reminder, missed on 1 January, still goes on the 2nd and the 3rd.
        assert_eq!(o.due(due, date!(2027 - 01 - 03), 2), Some(Offset(1)));
        assert_eq!(o.due(due, date!(2027 - 01 - 04), 2), None);
        // −3 caught up two days late is still before the due date, never after it.
        assert_eq!(o.due(due, date!(2026 - 12 - 30), 2), Some(Offset(-3)));
        assert_eq!(o.due(due, due, 2), None);
        // Close offsets: the later one wins as soon as it is reached.
        let close = offsets(&[1, 2]);
        assert_eq!(close.due(due, date!(2027 - 01 - 02), 2), Some(Offset(2)));
    }

    #[test]
    fn due_dates_cover_every_offset_and_its_catch_up_once() {
        let today = date!(2027 - 01 - 15);
        assert_eq!(
            offsets(&[-3, 1]).due_dates(today, 1),
            vec![
                date!(2027 - 01 - 13),
                date!(2027 - 01 - 14),
                date!(2027 - 01 - 17),
                date!(2027 - 01 - 18)
            ]
        );
        assert_eq!(offsets(&[1, 2]).due_dates(today, 1).len(), 3, "overlaps read once");
        for d in DunningOffsets::default().due_dates(today, 3) {
            assert!(DunningOffsets::default().due(d, today, 3).is_some(), "{d}");
        }
    }

    #[test]
    fn offsets_print_as_sort_keys() {
        assert_eq!(Offset(-3).to_string(), "-003");
        assert_eq!(Offset(1).to_string(), "+001");
        assert_eq!(Offset(120).to_string(), "+120");
    }

    #[test]
    fn the_phrase_says_how_far_the_due_date_is() {
        let due = date!(2026 - 12 - 31);
        assert_eq!(due_phrase(due, date!(2026 - 12 - 28)), "vence en 3 días");
        assert_eq!(due_phrase(due, date!(2026 - 12 - 30)), "vence mañana");
        assert_eq!(due_phrase(due, due), "vence hoy");
        assert_eq!(due_phrase(due, date!(2027 - 01 - 01)), "venció ayer");
        assert_eq!(due_phrase(due, date!(2027 - 01 - 15)), "venció hace 15 días");
        assert_eq!(local_date_text(date!(2027 - 01 - 05)), "05/01/2027");
    }

    #[test]
    fn the_reminder_names_the_invoice_what_is_owed_and_the_due_date() {
        use crate::invoice::InvoiceDraft;
        use crate::testing::{billing_profile, invoice_request};
        let at = time::macros::datetime!(2026-11-30 15:00 UTC);
        let invoice = InvoiceDraft::prepare(&invoice_request("p1", "acme"), &billing_profile("acme"), at)
            .and_then(|d| d.numbered(42))
            .expect("an invoice");
        let account = Account::issued(&invoice.totals.total);
        let paid = account
            .pay(&Money::from_minor(5_000, invoice.currency))
            .expect("a partial payment");

        let before = reminder_text(&invoice, &account, invoice.due_date - time::Duration::days(3));
        assert!(before.subject.contains(&invoice.invoice_id), "{}", before.subject);
        assert!(before.subject.contains("vence en 3 días"), "{}", before.subject);
        assert!(
            before
                .body
                .contains(&format!("Saldo pendiente: {}", invoice.totals.total)),
            "{}",
            before.body
        );
        assert!(
            before.body.contains(&local_date_text(invoice.due_date)),
            "{}",
            before.body
        );
        assert!(before.body.starts_with("Estimado(a) "));

        let after = reminder_text(&invoice, &paid, invoice.due_date + time::Duration::days(15));
        assert!(after.subject.contains("venció hace 15 días"), "{}", after.subject);
        assert!(
            after.body.contains(&format!("Saldo pendiente: {}", paid.outstanding())),
            "{}",
            after.body
        );
        assert!(after.body.contains(&format!("de un total de {}", invoice.totals.total)));
    }
}
