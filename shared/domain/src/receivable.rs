//! Accounts receivable (issue 15): what an invoice still owes after its credit notes and
//! payments, what a payment or a credit note must respect, and the ageing of what is owed.
//! Pure arithmetic on integers (minor units): the store keeps the ledger, this decides on it.
//!
//! The identity every report relies on: outstanding = issued − credited − paid, never below
//! zero, and an ageing's buckets add up to the outstanding to the cent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::money::{Currency, Money};
use crate::validation::{FieldError, Invalid};

/// How a payment reached the client company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentMethod {
    Transfer,
    Card,
    /// Collected by the courier on delivery.
    CashOnDelivery,
    /// Yape, Plin and the like.
    Wallet,
}

/// What finance sends to record a payment (`POST /invoices/{id}/payments`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// A decimal string in the currency's minor digits: `"50.00"`.
    pub amount: String,
    pub currency: String,
    pub method: PaymentMethod,
    /// The bank operation, card authorization, courier's receipt or wallet transaction.
    pub reference: String,
    /// When the money was received (RFC 3339 with offset).
    pub paid_at: String,
}

/// A recorded payment: immutable, audited by who recorded it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub amount: Money,
    pub method: PaymentMethod,
    pub reference: String,
    #[serde(with = "crate::wire::instant")]
    pub paid_at: OffsetDateTime,
    pub recorded_by: String,
    #[serde(with = "crate::wire::instant")]
    pub recorded_at: OffsetDateTime,
}

/// How far ahead of the clock a `paid_at` may be (clocks of banks and couriers drift).
const FUTURE_SLACK: time::Duration = time::Duration::minutes(5);
const MAX_REFERENCE: usize = 100;

impl Payment {
    /// The payment `request` describes, recorded by `recorded_by` at `now`; every field error
    /// at once.
    pub fn from_request(
        request: &PaymentRequest,
        recorded_by: &str,
        now: OffsetDateTime,
    ) -> Result<Payment, Vec<FieldError>> {
        let mut errors = Vec::new();
        let currency = Currency::parse(request.currency.trim()).map_err(|e| e.at("currency"));
        let amount = match &currency {
            Ok(currency) => Money::parse(request.amount.trim(), *currency).map_err(|e| e.at("amount")),
            Err(e) => Err(e.clone()),
        };
        let reference = request.reference.trim();
        if reference.is_empty() || reference.chars().count() > MAX_REFERENCE || reference.chars().any(char::is_control)
        {
            errors.push(
                Invalid::new(
                    "invalid_reference",
                    format!("reference is 1 to {MAX_REFERENCE} printable characters"),
                )
                .at("reference"),
            );
        }
        let paid_at = OffsetDateTime::parse(request.paid_at.trim(), &time::format_description::well_known::Rfc3339)
            .map_err(|_| {
                Invalid::new("invalid_instant", "paid_at is an RFC 3339 instant with its offset").at("paid_at")
            })
            .and_then(|at| {
                if at > now + FUTURE_SLACK {
                    Err(Invalid::new("in_the_future", "paid_at is in the future").at("paid_at"))
                } else {
                    Ok(at)
                }
            });
        let amount = match (currency, amount) {
            (Err(e), _) => {
                errors.push(e);
                None
            }
            (Ok(_), Err(e)) => {
                errors.push(e);
                None
            }
            (Ok(_), Ok(amount)) => Some(amount),
        };
        let paid_at = paid_at.map_err(|e| errors.push(e)).ok();
        match (amount, paid_at) {
            (Some(amount), Some(paid_at)) if errors.is_empty() => Ok(Payment {
                amount,
                method: request.method,
                reference: reference.to_owned(),
                paid_at,
                recorded_by: recorded_by.to_owned(),
                recorded_at: now,
            }),
            _ => Err(errors),
        }
    }
}

/// Where an invoice's collection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CollectionStatus {
    /// Nothing paid, something owed.
    Open,
    PartiallyPaid,
    /// Nothing owed, and something was paid.
    Paid,
    /// Nothing owed and nothing paid: credit notes took it all.
    Credited,
}

/// One invoice's account, in its currency's minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub currency: Currency,
    pub total_minor: i64,
    pub credited_minor: i64,
    pub paid_minor: i64,
}

impl Account {
    /// A newly issued invoice of `total`: nothing credited, nothing paid.
    pub fn issued(total: &Money) -> Self {
        Self {
            currency: total.currency(),
            total_minor: total.amount_minor(),
            credited_minor: 0,
            paid_minor: 0,
        }
    }

    pub fn outstanding_minor(&self) -> i64 {
        self.total_minor - self.credited_minor - self.paid_minor
    }

    pub fn outstanding(&self) -> Money {
        Money::from_minor(self.outstanding_minor(), self.currency)
    }

    pub fn status(&self) -> CollectionStatus {
        match (self.outstanding_minor() > 0, self.paid_minor > 0) {
            (true, false) => CollectionStatus::Open,
            (true, true) => CollectionStatus::PartiallyPaid,
            (false, true) => CollectionStatus::Paid,
            (false, false) => CollectionStatus::Credited,
        }
    }

    /// The account after a payment of `amount`; refused, with the field, when the amount is
    /// not positive, in another currency, more than what is owed, or nothing is owed at all.
    pub fn pay(&self, amount: &Money) -> Result<Account, FieldError> {
        let minor = self.checked_amount(amount)?;
        if self.outstanding_minor() <= 0 {
            let reason = match self.status() {
                CollectionStatus::Credited => "the invoice is fully credited: nothing is owed",
                _ => "the invoice is paid: nothing is owed",
            };
            return Err(Invalid::new("nothing_owed", reason).at("amount"));
        }
        if minor > self.outstanding_minor() {
            return Err(Invalid::new(
                "overpayment",
                format!("{amount} is more than the {} still owed", self.outstanding()),
            )
            .at("amount"));
        }
        Ok(Account {
            paid_minor: self.paid_minor + minor,
            ..*self
        })
    }

    /// The account after a credit note of `amount`; refused when it would take the
    /// outstanding balance below zero (a credit note corrects what is owed, it refunds nothing).
    pub fn credit(&self, amount: &Money) -> Result<Account, FieldError> {
        let minor = self.checked_amount(amount)?;
        if minor > self.outstanding_minor() {
            return Err(Invalid::new(
                "credit_exceeds_balance",
                format!("{amount} is more than the {} still owed", self.outstanding()),
            )
            .at("amount"));
        }
        Ok(Account {
            credited_minor: self.credited_minor + minor,
            ..*self
        })
    }

    fn checked_amount(&self, amount: &Money) -> Result<i64, FieldError> {
        if amount.currency() != self.currency {
            return Err(Invalid::new(
                "currency_mismatch",
                format!("the invoice is in {}, not {}", self.currency, amount.currency()),
            )
            .at("currency"));
        }
        if amount.amount_minor() <= 0 {
            return Err(Invalid::new("not_positive", "the amount must be more than zero").at("amount"));
        }
        Ok(amount.amount_minor())
    }
}

/// What one invoice still owes, for the ageing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receivable {
    /// The buyer's document number (DNI or RUC): one buyer across invoices.
    pub buyer: String,
    pub due_date: Date,
    pub outstanding: Money,
}

/// Amounts owed by days past the due date, in minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Buckets {
    pub not_due: i64,
    pub days_1_30: i64,
    pub days_31_60: i64,
    pub days_61_90: i64,
    pub over_90: i64,
}

impl Buckets {
    pub fn total(&self) -> i64 {
        self.not_due + self.days_1_30 + self.days_31_60 + self.days_61_90 + self.over_90
    }

    fn add(&mut self, days_past_due: i64, minor: i64) {
        let bucket = match days_past_due {
            ..=0 => &mut self.not_due,
            1..=30 => &mut self.days_1_30,
            31..=60 => &mut self.days_31_60,
            61..=90 => &mut self.days_61_90,
            _ => &mut self.over_90,
        };
        *bucket += minor;
    }
}

/// What is owed in one currency on `as_of`, by buyer and in total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ageing {
    pub currency: Currency,
    pub as_of: Date,
    pub by_buyer: BTreeMap<String, Buckets>,
    pub total: Buckets,
}

/// The ageing of `receivables` on `as_of`, one per currency (amounts in two currencies are
/// never added). Settled invoices (nothing outstanding) are left out.
pub fn age<'a>(as_of: Date, receivables: impl IntoIterator<Item = &'a Receivable>) -> Vec<Ageing> {
    let mut by_currency: BTreeMap<&'static str, Ageing> = BTreeMap::new();
    for receivable in receivables {
        let minor = receivable.outstanding.amount_minor();
        if minor <= 0 {
            continue;
        }
        let currency = receivable.outstanding.currency();
        let ageing = by_currency.entry(currency.code()).or_insert_with(|| Ageing {
            currency,
            as_of,
            by_buyer: BTreeMap::new(),
            total: Buckets::default(),
        });
        let days_past_due = (as_of - receivable.due_date).whole_days();
        ageing.total.add(days_past_due, minor);
        ageing
            .by_buyer
            .entry(receivable.buyer.clone())
            .or_default()
            .add(days_past_due, minor);
    }
    by_currency.into_values().collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::date;

    use super::*;

    fn pen(minor: i64) -> Money {
        Money::from_minor(minor, Currency::parse("PEN").unwrap_or_else(|e| panic!("{e}")))
    }

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::parse("USD").unwrap_or_else(|e| panic!("{e}")))
    }

    fn request(amount: &str, currency: &str, reference: &str, paid_at: &str) -> PaymentRequest {
        PaymentRequest {
            amount: amount.into(),
            currency: currency.into(),
            method: PaymentMethod::Transfer,
            reference: reference.into(),
            paid_at: paid_at.into(),
        }
    }

    #[test]
    fn a_payment_request_is_read_with_every_field_error_at_once() {
        let now = time::macros::datetime!(2026-12-01 15:00 UTC);
        let ok = Payment::from_request(
            &request(" 50.00 ", "PEN", "OP-123", "2026-12-01T09:30:00-05:00"),
            "fin-1",
            now,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(ok.amount, pen(5_000));
        assert_eq!(ok.reference, "OP-123");
        assert_eq!(ok.recorded_by, "fin-1");
        let fields = |r: PaymentRequest| -> Vec<(String, &'static str)> {
            Payment::from_request(&r, "fin-1", now)
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|e| (e.field, e.code))
                .collect()
        };
        let bad = fields(request("50.001", "PEN", "", "2026-12-02T09:30:00-05:00"));
        let named: Vec<&str> = bad.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(named, vec!["reference", "amount", "paid_at"], "{bad:?}");
        assert_eq!(
            fields(request("50.00", "XYZ", "r", "2026-12-01T09:30:00Z"))[0].0,
            "currency"
        );
        assert_eq!(
            fields(request("50.00", "PEN", "r", "yesterday"))[0].1,
            "invalid_instant"
        );
    }

    #[test]
    fn partial_payments_then_the_last_one_settle_the_invoice() {
        let account = Account::issued(&pen(17_980));
        assert_eq!(account.status(), CollectionStatus::Open);
        let account = account.pay(&pen(10_000)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(account.status(), CollectionStatus::PartiallyPaid);
        assert_eq!(account.outstanding(), pen(7_980));
        let account = account.pay(&pen(7_980)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(account.status(), CollectionStatus::Paid);
        assert_eq!(account.outstanding_minor(), 0);
    }

    #[test]
    fn refused_payments_name_their_field() {
        let account = Account::issued(&pen(5_000));
        let refused = |amount: Money| account.pay(&amount).err().map(|e| (e.field, e.code));
        assert_eq!(refused(pen(5_001)), Some(("amount".into(), "overpayment")));
        assert_eq!(refused(usd(100)), Some(("currency".into(), "currency_mismatch")));
        assert_eq!(refused(pen(0)), Some(("amount".into(), "not_positive")));
        assert_eq!(refused(pen(-1)), Some(("amount".into(), "not_positive")));
        let credited = account.credit(&pen(5_000)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(credited.status(), CollectionStatus::Credited);
        let error = credited.pay(&pen(1)).err();
        assert_eq!(error.as_ref().map(|e| e.code), Some("nothing_owed"));
        assert!(error.is_some_and(|e| e.detail.contains("fully credited")));
    }

    #[test]
    fn a_credit_note_never_takes_the_balance_below_zero() {
        let account = Account::issued(&pen(10_000))
            .pay(&pen(6_000))
            .unwrap_or_else(|e| panic!("{e:?}"));
        let error = account.credit(&pen(4_001)).err().map(|e| e.code);
        assert_eq!(error, Some("credit_exceeds_balance"));
        let settled = account.credit(&pen(4_000)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(settled.outstanding_minor(), 0);
        assert_eq!(settled.status(), CollectionStatus::Paid);
    }

    #[test]
    fn ageing_puts_each_day_in_its_bucket() {
        let as_of = date!(2026 - 12 - 31);
        let owed = |buyer: &str, due: Date, minor| Receivable {
            buyer: buyer.into(),
            due_date: due,
            outstanding: pen(minor),
        };
        let receivables = [
            owed("20100070970", date!(2026 - 12 - 31), 1),    // due today: not due
            owed("20100070970", date!(2026 - 12 - 30), 10),   // 1 day
            owed("20100070970", date!(2026 - 12 - 01), 100),  // 30 days
            owed("44332211", date!(2026 - 11 - 30), 1_000),   // 31 days
            owed("44332211", date!(2026 - 10 - 02), 10_000),  // 90 days
            owed("44332211", date!(2026 - 10 - 01), 100_000), // 91 days
            owed("44332211", date!(2026 - 01 - 01), 0),       // settled: left out
        ];
        let ageing = age(as_of, &receivables);
        assert_eq!(ageing.len(), 1);
        let total = ageing[0].total;
        assert_eq!(
            total,
            Buckets {
                not_due: 1,
                days_1_30: 110,
                days_31_60: 1_000,
                days_61_90: 10_000,
                over_90: 100_000
            }
        );
        assert_eq!(ageing[0].by_buyer.len(), 2);
        assert_eq!(ageing[0].by_buyer["20100070970"].total(), 111);
    }

    #[test]
    fn currencies_are_aged_apart() {
        let as_of = date!(2026 - 12 - 31);
        let receivables = [
            Receivable {
                buyer: "1".into(),
                due_date: as_of,
                outstanding: pen(500),
            },
            Receivable {
                buyer: "1".into(),
                due_date: as_of,
                outstanding: usd(700),
            },
        ];
        let totals: Vec<(String, i64)> = age(as_of, &receivables)
            .iter()
            .map(|a| (a.currency.code().to_owned(), a.total.total()))
            .collect();
        assert_eq!(totals, vec![("PEN".to_owned(), 500), ("USD".to_owned(), 700)]);
    }

    /// One invoice's random history: a total, a due date offset, then credit notes and
    /// payments tried in order (the refused ones leave no trace, as in the store).
    fn history() -> impl Strategy<Value = (i64, i64, u8, Vec<(bool, i64)>)> {
        (
            1i64..5_000_000,
            -120i64..200,
            0u8..4,
            prop::collection::vec((any::<bool>(), -1_000i64..3_000_000), 0..8),
        )
    }

    proptest! {
        #[test]
        fn the_buckets_add_up_to_issued_minus_credited_minus_paid(
            histories in prop::collection::vec(history(), 0..40),
            as_of_offset in 0i64..400,
        ) {
            let base = date!(2026 - 01 - 01);
            let as_of = base + time::Duration::days(as_of_offset);
            let (mut issued, mut credited, mut paid) = (0i64, 0i64, 0i64);
            let mut receivables = Vec::new();
            for (total, due_offset, buyer, moves) in histories {
                let mut account = Account::issued(&pen(total));
                for (is_credit, amount) in moves {
                    let next = if is_credit { account.credit(&pen(amount)) } else { account.pay(&pen(amount)) };
                    if let Ok(next) = next {
                        account = next;
                    }
                    prop_assert!(account.outstanding_minor() >= 0);
                }
                issued += account.total_minor;
                credited += account.credited_minor;
                paid += account.paid_minor;
                receivables.push(Receivable {
                    buyer: format!("buyer-{buyer}"),
                    due_date: base + time::Duration::days(due_offset),
                    outstanding: account.outstanding(),
                });
            }
            let ageing = age(as_of, &receivables);
            let total: i64 = ageing.iter().map(|a| a.total.total()).sum();
            prop_assert_eq!(total, issued - credited - paid);
            for a in &ageing {
                let by_buyer: i64 = a.by_buyer.values().map(Buckets::total).sum();
                prop_assert_eq!(by_buyer, a.total.total());
                for b in a.by_buyer.values().chain([&a.total]) {
                    prop_assert!(b.not_due >= 0 && b.days_1_30 >= 0 && b.days_31_60 >= 0 && b.days_61_90 >= 0 && b.over_90 >= 0);
                }
            }
        }
    }
}
