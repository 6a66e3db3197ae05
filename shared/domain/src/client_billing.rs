//! Client billing: what the call center charges a client company for a month, from the client's
//! contract and what the operation verifiably did (issue 17, ADR 0027). Pure rules: the caller
//! reads the contract, the month's billable events and the items to reverse, and stores what a
//! run billed.
//!
//! # Contracts
//!
//! A [`Contract`] is a list of [`ContractVersion`]s, each in force from `valid_from` to
//! `valid_to` (exclusive; absent: open-ended), in one currency, pricing campaigns by up to three
//! models: `verified_sale` (one [`Rate`] for every sale, or one per SKU family with that rate as
//! the default), `effective_contact` and `talk_hour`. A [`Rate`] is a unit price or graduated
//! volume [`Tier`]s; talk time is priced per hour and billed by the second, its tier thresholds
//! written in hours.
//!
//! # Pricing a month ([`price_month`])
//!
//! * Each event is priced by the version in force on its own (campaign-local) day.
//! * Tier volume accumulates per (campaign, kind) over the run's events in (day, key) order,
//!   across versions and SKU families; each unit is priced by its own version's tier at its
//!   cumulative position. A talk-time event that straddles a threshold is split into one
//!   evidence row per tier.
//! * Talk time: `round_half_up(seconds × price_per_hour / 3600)` per evidence row, in integers.
//! * Events of an earlier month (not billed then) are *late*: priced the same way, on lines of
//!   their own, outside the monthly minimum.
//! * A reversal is a negative row for exactly the amount that was billed (never repriced).
//! * The monthly minimum of the version in force on the month's last day: when the month's own
//!   charges (not late, not reversals) fall short, one adjustment line makes up the difference.
//! * An event no version prices (no version that day, campaign or model not in it, a family
//!   without price and no default) is not billed and not an error: it is listed in
//!   [`MonthPricing::unpriced`] with the reason.
//!
//! `Σ lines = Σ evidence + minimum adjustment = total`, exactly, in minor units.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::invoice::{Charge, LineKind};
use crate::money::{Currency, Money, MoneyError};
pub use crate::sales_register::Period;
use crate::sales_register::spreadsheet_text;
use crate::validation::{Errors, FieldError, Invalid};

/// Seconds in an hour: talk time is priced per hour and counted in seconds.
const SECONDS_PER_HOUR: u64 = 3600;

/// Longest payment term a version may set, in days.
pub const MAX_PAYMENT_TERMS_DAYS: u32 = 365;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("contract of client {client_id} is invalid: {}", field_errors(.errors))]
    Contract { client_id: String, errors: Vec<FieldError> },
    #[error("{key} belongs to client {found}, not to {expected}")]
    WrongClient {
        key: String,
        found: String,
        expected: String,
    },
    #[error("event {0} is listed twice")]
    DuplicateEvent(String),
    #[error("the reversal of {0} is listed twice")]
    DuplicateReversal(String),
    #[error("event {key}: {detail}")]
    InvalidEvent { key: String, detail: String },
    #[error("event {key} is dated {day}, after {month}: it belongs to a later run")]
    FutureEvent { key: String, day: Date, month: Period },
    #[error("{key} was billed in {billed}; only a run before {month} can be reversed in {month}")]
    ReversalNotEarlier { key: String, billed: Period, month: Period },
    #[error("{key} was billed {amount}; a billed amount is never negative")]
    NegativeReversal { key: String, amount: Money },
    #[error("{key} is in {found}, but {month} is billed in {expected}")]
    MixedCurrency {
        key: String,
        found: Currency,
        expected: Currency,
        month: Period,
    },
    #[error("amounts: {0}")]
    Money(#[from] MoneyError),
    #[error("amount out of range")]
    Overflow,
    #[error("writing the evidence CSV: {0}")]
    Csv(String),
}

fn field_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {} ({})", e.field, e.detail, e.code))
        .collect::<Vec<_>>()
        .join("; ")
}

// ---------------------------------------------------------------------------------------------
// Contracts
// ---------------------------------------------------------------------------------------------

/// A client's billing contract, as an admin stores it in the config table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    pub client_id: String,
    /// In ascending order of number and of `valid_from`, never overlapping; gaps are allowed
    /// (nothing is billed on a day without a version).
    pub versions: Vec<ContractVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractVersion {
    pub version: u32,
    #[serde(with = "crate::wire::date")]
    pub valid_from: Date,
    /// The first day it is no longer in force; absent: until further notice.
    #[serde(default, with = "crate::wire::date_option", skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Date>,
    /// Every price of the version is in this currency.
    pub currency: Currency,
    /// Days from the invoice's issue to its due date.
    pub payment_terms_days: u32,
    /// The least the month's own charges come to (net of tax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_minimum: Option<Money>,
    /// By campaign id.
    pub campaigns: BTreeMap<String, CampaignTerms>,
}

/// How one campaign is billed: any of the three models.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignTerms {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_sale: Option<SaleTerms>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_contact: Option<Rate>,
    /// Price per hour of talk, billed by the second; tier thresholds in hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub talk_hour: Option<Rate>,
}

/// Verified sales: a sale of a family in `by_family` is priced by that family's rate, any other
/// sale (another family, or none) by `price`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaleTerms {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Rate>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_family: BTreeMap<String, Rate>,
}

/// `{"unit_price": {"amount": "12.50", "currency": "PEN"}}` or `{"tiers": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rate {
    UnitPrice(Money),
    /// Graduated: the units up to the first tier's `up_to` at its price, the next ones up to the
    /// second's at its price… The last tier has no `up_to`.
    Tiers(Vec<Tier>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Cumulative units (sales, contacts, or hours of talk) this tier runs to, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to: Option<u64>,
    pub unit_price: Money,
}

impl Contract {
    /// Every configuration mistake, each with the dotted path of its field
    /// (`versions[1].campaigns.acme-fibra.talk_hour.tiers[0].up_to`).
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Errors::new();
        if self.client_id.trim().is_empty() {
            errors.push(Invalid::new("required", "a contract names its client").at("client_id"));
        }
        if self.versions.is_empty() {
            errors.push(Invalid::new("required", "a contract needs at least one version").at("versions"));
        }
        for (i, v) in self.versions.iter().enumerate() {
            let at = format!("versions[{i}]");
            v.validate(&at, &mut errors);
            let Some(previous) = i.checked_sub(1).and_then(|p| self.versions.get(p)) else {
                continue;
            };
            if v.version <= previous.version {
                errors.push(
                    Invalid::new(
                        "unordered_versions",
                        format!(
                            "version {} follows version {}: versions are listed in ascending order",
                            v.version, previous.version
                        ),
                    )
                    .at(format!("{at}.version")),
                );
            }
            if v.valid_from <= previous.valid_from {
                errors.push(
                    Invalid::new(
                        "unordered_versions",
                        format!(
                            "version {} starts on {}, not after version {} ({})",
                            v.version, v.valid_from, previous.version, previous.valid_from
                        ),
                    )
                    .at(format!("{at}.valid_from")),
                );
                continue;
            }
            // Any earlier version, not only the previous one, may still be in force.
            if let Some(open) = self.versions[..i].iter().find(|p| p.in_force_on(v.valid_from)) {
                let until = open
                    .valid_to
                    .map_or("without end".to_owned(), |to| format!("until {to}"));
                errors.push(
                    Invalid::new(
                        "overlapping_versions",
                        format!(
                            "version {} starts on {}, while version {} is in force ({until})",
                            v.version, v.valid_from, open.version
                        ),
                    )
                    .at(format!("{at}.valid_from")),
                );
            }
        }
        errors.finish()
    }

    /// Whether `self` may replace `stored` once the months up to `billed_through` (the last day
    /// of the last closed run) are billed: what priced them never changes. Every stored version
    /// that started by then stays, identical, except that one still open may be given an end
    /// after `billed_through`; a new version starts after it. The client cannot change either.
    pub fn amends(&self, stored: &Contract, billed_through: Option<Date>) -> Result<(), Vec<FieldError>> {
        let mut errors = Errors::new();
        if self.client_id != stored.client_id {
            errors.push(
                Invalid::new("client_changed", format!("this is {}'s contract", stored.client_id)).at("client_id"),
            );
        }
        let Some(billed_through) = billed_through else {
            return errors.finish();
        };
        for old in stored.versions.iter().filter(|v| v.valid_from <= billed_through) {
            let Some((i, new)) = self.versions.iter().enumerate().find(|(_, v)| v.version == old.version) else {
                errors.push(
                    Invalid::new(
                        "billed_version_removed",
                        format!(
                            "version {} priced months billed through {billed_through}: it cannot be removed",
                            old.version
                        ),
                    )
                    .at("versions"),
                );
                continue;
            };
            let at = format!("versions[{i}]");
            let same_but_end = ContractVersion {
                valid_to: old.valid_to,
                ..new.clone()
            };
            if same_but_end != *old {
                errors.push(
                    Invalid::new(
                        "billed_version_changed",
                        format!(
                            "version {} priced months billed through {billed_through}: only its end may change; add a version instead",
                            old.version
                        ),
                    )
                    .at(at.clone()),
                );
            } else if new.valid_to != old.valid_to
                && (old.valid_to.is_some_and(|to| to <= billed_through)
                    || new.valid_to.is_some_and(|to| to <= billed_through))
            {
                errors.push(
                    Invalid::new(
                        "billed_version_changed",
                        format!(
                            "version {} priced months billed through {billed_through}: it can only end after that day",
                            old.version
                        ),
                    )
                    .at(format!("{at}.valid_to")),
                );
            }
        }
        for (i, new) in self.versions.iter().enumerate() {
            let known = stored.versions.iter().any(|v| v.version == new.version);
            if !known && new.valid_from <= billed_through {
                errors.push(
                    Invalid::new(
                        "starts_in_billed_months",
                        format!(
                            "version {} starts on {}, but months are billed through {billed_through}: start it later",
                            new.version, new.valid_from
                        ),
                    )
                    .at(format!("versions[{i}].valid_from")),
                );
            }
        }
        errors.finish()
    }

    /// The version in force on a (campaign-local) day.
    pub fn version_on(&self, day: Date) -> Option<&ContractVersion> {
        self.versions.iter().find(|v| v.in_force_on(day))
    }

    /// The version a month is invoiced under (currency, payment terms, minimum): the one in
    /// force on its last day, else the latest that started by then (a contract that ended
    /// mid-month still bills that month).
    pub fn month_version(&self, month: Period) -> Option<&ContractVersion> {
        let last = month.last_day();
        self.version_on(last).or_else(|| {
            self.versions
                .iter()
                .filter(|v| v.valid_from <= last)
                .max_by_key(|v| v.valid_from)
        })
    }
}

impl ContractVersion {
    pub fn in_force_on(&self, day: Date) -> bool {
        self.valid_from <= day && self.valid_to.is_none_or(|to| day < to)
    }

    /// The rate for an event of `kind` in `campaign_id`, and the SKU family it was priced as
    /// (`None` for the default sale price and the other models).
    pub fn rate(
        &self,
        campaign_id: &str,
        kind: BillableKind,
        sku_family: Option<&str>,
    ) -> Result<(&Rate, Option<String>), UnpricedReason> {
        let terms = self
            .campaigns
            .get(campaign_id)
            .ok_or(UnpricedReason::CampaignNotInContract)?;
        match kind {
            BillableKind::VerifiedSale => {
                let sale = terms.verified_sale.as_ref().ok_or(UnpricedReason::ModelNotInContract)?;
                if let Some((family, rate)) = sku_family.and_then(|f| sale.by_family.get_key_value(f)) {
                    return Ok((rate, Some(family.clone())));
                }
                sale.price
                    .as_ref()
                    .map(|r| (r, None))
                    .ok_or(UnpricedReason::FamilyNotPriced)
            }
            BillableKind::EffectiveContact => terms
                .effective_contact
                .as_ref()
                .map(|r| (r, None))
                .ok_or(UnpricedReason::ModelNotInContract),
            BillableKind::TalkTime => terms
                .talk_hour
                .as_ref()
                .map(|r| (r, None))
                .ok_or(UnpricedReason::ModelNotInContract),
        }
    }

    fn validate(&self, at: &str, errors: &mut Errors) {
        if self.valid_to.is_some_and(|to| to <= self.valid_from) {
            errors.push(
                Invalid::new(
                    "empty_validity",
                    format!(
                        "valid_to is exclusive and must come after valid_from ({})",
                        self.valid_from
                    ),
                )
                .at(format!("{at}.valid_to")),
            );
        }
        if self.payment_terms_days > MAX_PAYMENT_TERMS_DAYS {
            errors.push(
                Invalid::new(
                    "out_of_range",
                    format!("payment terms run 0 to {MAX_PAYMENT_TERMS_DAYS} days"),
                )
                .at(format!("{at}.payment_terms_days")),
            );
        }
        if let Some(minimum) = &self.monthly_minimum {
            check_price(minimum, self.currency, &format!("{at}.monthly_minimum"), errors);
        }
        if self.campaigns.is_empty() {
            errors
                .push(Invalid::new("required", "a version prices at least one campaign").at(format!("{at}.campaigns")));
        }
        for (campaign, terms) in &self.campaigns {
            let at = format!("{at}.campaigns.{campaign}");
            if campaign.trim().is_empty() {
                errors.push(Invalid::new("blank_id", "a campaign id is not blank").at(&at));
            }
            if terms.verified_sale.is_none() && terms.effective_contact.is_none() && terms.talk_hour.is_none() {
                errors.push(
                    Invalid::new(
                        "no_model",
                        "a campaign is billed by verified_sale, effective_contact or talk_hour",
                    )
                    .at(&at),
                );
            }
            if let Some(sale) = &terms.verified_sale {
                let at = format!("{at}.verified_sale");
                if sale.price.is_none() && sale.by_family.is_empty() {
                    errors.push(Invalid::new("no_price", "give a price, by_family prices, or both").at(&at));
                }
                if let Some(rate) = &sale.price {
                    rate.validate(self.currency, 1, &format!("{at}.price"), errors);
                }
                for (family, rate) in &sale.by_family {
                    let at = format!("{at}.by_family.{family}");
                    if family.trim().is_empty() {
                        errors.push(Invalid::new("blank_id", "a SKU family is not blank").at(&at));
                    }
                    rate.validate(self.currency, 1, &at, errors);
                }
            }
            if let Some(rate) = &terms.effective_contact {
                rate.validate(self.currency, 1, &format!("{at}.effective_contact"), errors);
            }
            if let Some(rate) = &terms.talk_hour {
                rate.validate(self.currency, SECONDS_PER_HOUR, &format!("{at}.talk_hour"), errors);
            }
        }
    }
}

fn check_price(price: &Money, currency: Currency, at: &str, errors: &mut Errors) {
    if price.currency() != currency {
        errors.push(
            Invalid::new(
                "currency_mismatch",
                format!("the price is in {}, the version in {currency}", price.currency()),
            )
            .at(at),
        );
    }
    if price.is_negative() {
        errors.push(Invalid::new("negative_price", format!("a price is never negative, got {price}")).at(at));
    }
}

impl Rate {
    /// `scale`: units counted per unit of a threshold (3600 seconds per hour of talk).
    fn validate(&self, currency: Currency, scale: u64, at: &str, errors: &mut Errors) {
        let tiers = match self {
            Rate::UnitPrice(price) => return check_price(price, currency, &format!("{at}.unit_price"), errors),
            Rate::Tiers(tiers) => tiers,
        };
        if tiers.is_empty() {
            errors.push(Invalid::new("empty_tiers", "a tiered rate has at least one tier").at(format!("{at}.tiers")));
        }
        let last = tiers.len().saturating_sub(1);
        let mut floor = 0;
        for (k, tier) in tiers.iter().enumerate() {
            let at = format!("{at}.tiers[{k}]");
            check_price(&tier.unit_price, currency, &format!("{at}.unit_price"), errors);
            match (tier.up_to, k == last) {
                (None, true) => {}
                (None, false) => errors.push(
                    Invalid::new("open_tier_not_last", "only the last tier is open-ended (no up_to)")
                        .at(format!("{at}.up_to")),
                ),
                (Some(_), true) => errors.push(
                    Invalid::new(
                        "last_tier_bounded",
                        "the last tier has no up_to, so every unit beyond the others has a price",
                    )
                    .at(format!("{at}.up_to")),
                ),
                (Some(up_to), false) => {
                    if up_to <= floor {
                        errors.push(
                            Invalid::new(
                                "tiers_not_ascending",
                                format!("up_to {up_to} must be above the previous tier's ({floor})"),
                            )
                            .at(format!("{at}.up_to")),
                        );
                    }
                    if up_to.checked_mul(scale).is_none() {
                        errors.push(Invalid::new("out_of_range", "up_to is too large").at(format!("{at}.up_to")));
                    }
                    floor = floor.max(up_to);
                }
            }
        }
    }

    /// The `units` after `position` cut by tier: `(units, unit price)` for each tier they touch.
    fn segments(&self, position: u64, units: u64, scale: u64) -> Result<Vec<(u64, Money)>, PricingError> {
        let end = position.checked_add(units).ok_or(PricingError::Overflow)?;
        let tiers = match self {
            Rate::UnitPrice(price) => return Ok(vec![(units, *price)]),
            Rate::Tiers(tiers) => tiers,
        };
        let mut segments = Vec::new();
        let mut low = 0u64;
        for tier in tiers {
            // Validated thresholds do not overflow; saturating keeps an unvalidated one open-ended.
            let high = tier.up_to.map_or(u64::MAX, |h| h.saturating_mul(scale));
            let overlap = high.min(end).saturating_sub(low.max(position));
            if overlap > 0 {
                segments.push((overlap, tier.unit_price));
            }
            low = high;
        }
        Ok(segments)
    }
}

// ---------------------------------------------------------------------------------------------
// Events, runs and their results
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BillableKind {
    VerifiedSale,
    EffectiveContact,
    /// A contact's talk seconds.
    TalkTime,
}

impl BillableKind {
    /// Units per unit of a tier threshold.
    fn scale(self) -> u64 {
        match self {
            BillableKind::TalkTime => SECONDS_PER_HOUR,
            _ => 1,
        }
    }

    /// As the evidence CSV's `tipo` column writes it.
    pub fn code(self) -> &'static str {
        match self {
            BillableKind::VerifiedSale => "venta_verificada",
            BillableKind::EffectiveContact => "contacto_efectivo",
            BillableKind::TalkTime => "tiempo_conversacion",
        }
    }

    /// What a quantity counts, for the CSV's `unidad` column.
    pub fn unit(self) -> &'static str {
        match self {
            BillableKind::VerifiedSale => "venta",
            BillableKind::EffectiveContact => "contacto",
            BillableKind::TalkTime => "segundo",
        }
    }

    /// (line title, the same in lower case, "billed" in its gender and number).
    fn words(self) -> (&'static str, &'static str, &'static str) {
        match self {
            BillableKind::VerifiedSale => ("Ventas verificadas", "ventas verificadas", "facturadas"),
            BillableKind::EffectiveContact => ("Contactos efectivos", "contactos efectivos", "facturados"),
            BillableKind::TalkTime => ("Tiempo de conversación", "tiempo de conversación", "facturado"),
        }
    }
}

/// Something the operation did that a contract may bill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillableEvent {
    /// Unique business key: `SALE#{presale_id}`, `CONTACT#{contact_id}`, `TALK#{contact_id}`.
    pub key: String,
    pub kind: BillableKind,
    pub client_id: String,
    pub campaign_id: String,
    /// The campaign-local day: approval day for a sale, contact day for contacts and talk.
    #[serde(with = "crate::wire::date")]
    pub day: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presale_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    pub agent_id: String,
    /// The sale's SKU family, as the caller classifies it (sales only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku_family: Option<String>,
    /// 1 for a sale or a contact; seconds for talk time.
    pub quantity: u64,
}

/// What a run billed for one event, kept so a later run can reverse exactly that amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BilledItem {
    pub event: BillableEvent,
    /// The run (month) that billed it.
    #[serde(with = "month_text")]
    pub month: Period,
    pub version: u32,
    /// The price per unit when the whole event had one (`None`: it straddled a tier threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Money>,
    pub amount: Money,
}

impl BilledItem {
    pub fn key(&self) -> &str {
        &self.event.key
    }
}

/// Why an event was not billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnpricedReason {
    /// No version of the contract is in force on the event's day.
    NoVersion,
    /// The version in force does not list the event's campaign.
    CampaignNotInContract,
    /// The campaign is not billed by this model (a contact of a campaign billed per sale).
    ModelNotInContract,
    /// A sale whose family has no price, in a version without a default price.
    FamilyNotPriced,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unpriced {
    pub key: String,
    pub kind: BillableKind,
    pub campaign_id: String,
    #[serde(with = "crate::wire::date")]
    pub day: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    pub reason: UnpricedReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LineSection {
    /// Events of the month itself.
    Month,
    /// Events of an earlier month, billed now.
    Late,
    /// The adjustment up to the monthly minimum.
    Minimum,
    /// Items billed by an earlier run, reversed (negative).
    Reversal,
}

/// One line of the month: per section × campaign × kind × SKU family × version × unit price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    pub section: LineSection,
    /// Late lines: the events' month; reversal lines: the month that billed the items.
    #[serde(default, with = "month_text::option", skip_serializing_if = "Option::is_none")]
    pub of_month: Option<Period>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<BillableKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// In Spanish, for the invoice.
    pub description: String,
    /// Sales, contacts, or seconds of talk; 1 for the minimum adjustment.
    pub quantity: u64,
    /// Per sale, per contact, per hour of talk; the adjustment itself for the minimum. `None`
    /// on a reversal line whose items had no single price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Money>,
    /// Net of tax; negative on reversal lines.
    pub amount: Money,
}

impl PricedLine {
    /// The line as an [`invoice::compute`](crate::invoice::compute) charge (net of tax: compute
    /// it with `prices_include_tax: false`). Sales and contacts keep their quantity and unit
    /// price (their amount is exactly the product); talk time and the minimum become one unit
    /// at the line's amount, the hours in the description. A reversal line gives the positive
    /// amount it credits.
    pub fn to_charge(&self) -> Result<Charge, PricingError> {
        let magnitude = if self.amount.is_negative() {
            Money::zero(self.amount.currency()).checked_sub(&self.amount)?
        } else {
            self.amount
        };
        let counted = matches!(
            self.kind,
            Some(BillableKind::VerifiedSale | BillableKind::EffectiveContact)
        );
        let (quantity, unit_price) = match (self.unit_price, u32::try_from(self.quantity)) {
            (Some(price), Ok(quantity)) if counted && price.checked_mul_qty(quantity) == Ok(magnitude) => {
                (quantity, price)
            }
            _ => (1, magnitude),
        };
        Ok(Charge {
            kind: LineKind::Item,
            sku: None,
            description: self.description.clone(),
            quantity,
            unit_price,
        })
    }
}

/// One row per billed event (two or more for a talk-time event across tier thresholds, with
/// the same key) or reversed item: what the client can check the invoice against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRow {
    pub key: String,
    pub kind: BillableKind,
    pub campaign_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presale_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    pub agent_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku_family: Option<String>,
    #[serde(with = "crate::wire::date")]
    pub day: Date,
    pub version: u32,
    pub quantity: u64,
    /// Per sale, per contact, per hour of talk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Money>,
    pub amount: Money,
    pub late: bool,
    pub reversal: bool,
    /// Reversals: the month that billed the item.
    #[serde(default, with = "month_text::option", skip_serializing_if = "Option::is_none")]
    pub billed_month: Option<Period>,
    /// Index of its line in [`MonthPricing::lines`].
    pub line: usize,
}

/// A client's month, priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthPricing {
    pub client_id: String,
    #[serde(with = "month_text")]
    pub month: Period,
    pub currency: Currency,
    /// Of the version the month is invoiced under ([`Contract::month_version`]).
    pub payment_terms_days: u32,
    /// Month lines, then late ones, the minimum adjustment, then reversal lines.
    pub lines: Vec<PricedLine>,
    /// In (day, key) order, then reversals in (billed month, day, key) order.
    pub evidence: Vec<EvidenceRow>,
    /// Events not billed, in (day, key) order.
    pub unpriced: Vec<Unpriced>,
    /// What to record as billed by this run, one per billed event, in evidence order.
    pub billed: Vec<BilledItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_adjustment: Option<Money>,
    /// Σ of the month, late and minimum lines: the invoice's net.
    pub charges: Money,
    /// Σ of the reversal lines (≤ 0): to credit.
    pub reversals: Money,
    /// `charges + reversals`.
    pub total: Money,
}

impl MonthPricing {
    /// The invoice's charges: every line but reversals, in order.
    pub fn invoice_charges(&self) -> Result<Vec<Charge>, PricingError> {
        self.lines
            .iter()
            .filter(|l| l.section != LineSection::Reversal)
            .map(PricedLine::to_charge)
            .collect()
    }

    /// The invoice line (numbered from 1, as printed) that billed event `key` in this run: the
    /// invoice's lines are [`Self::invoice_charges`], which are `lines` up to the reversal
    /// lines (those sort last). `None` when this run did not bill it, or split it across tiers.
    pub fn invoice_line_of(&self, key: &str) -> Option<u32> {
        let mut rows = self.evidence.iter().filter(|r| r.key == key && !r.reversal);
        let row = rows.next()?;
        if rows.next().is_some() {
            return None;
        }
        u32::try_from(row.line + 1).ok()
    }

    /// What the reversal lines credit, as positive charges, in order.
    pub fn reversal_charges(&self) -> Result<Vec<Charge>, PricingError> {
        self.lines
            .iter()
            .filter(|l| l.section == LineSection::Reversal)
            .map(PricedLine::to_charge)
            .collect()
    }
}

/// The credit note a run owes on the invoice of an earlier run: the sales it billed that are
/// reversed now, one unit each of the invoice line that billed it (ADR 0028).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReversalCredit {
    /// The run whose invoice is credited.
    #[serde(with = "month_text")]
    pub billed_in: Period,
    /// Quantities per invoice line (numbered from 1), in line order.
    pub lines: Vec<crate::credit_note::CreditedLine>,
    /// Σ of the reversed items' billed amounts: the note's net.
    pub amount: Money,
    /// The reversed events' keys.
    pub keys: Vec<String>,
}

/// Groups `reversed` by the run that billed them into the credit notes to ask for, one per
/// earlier run, given each earlier run's pricing (`billed_by`). An item whose run is unknown,
/// or that run billed at no single line (split across tiers) or at zero, cannot be credited by
/// line: its key is returned in the second list, for the caller to report.
pub fn reversal_credits<'a>(
    reversed: &[BilledItem],
    billed_by: impl Fn(Period) -> Option<&'a MonthPricing>,
) -> Result<(Vec<ReversalCredit>, Vec<String>), PricingError> {
    // Per earlier run: units per invoice line, the net credited, the keys.
    type Owed = (BTreeMap<u32, u32>, Option<Money>, Vec<String>);
    let mut by_run: BTreeMap<Period, Owed> = BTreeMap::new();
    let mut uncredited = Vec::new();
    for item in reversed {
        let line = billed_by(item.month).and_then(|run| run.invoice_line_of(item.key()));
        let Some(line) = line.filter(|_| item.amount.amount_minor() > 0) else {
            uncredited.push(item.key().to_owned());
            continue;
        };
        let (lines, amount, keys) = by_run.entry(item.month).or_default();
        *lines.entry(line).or_default() += 1;
        *amount = Some(match amount.take() {
            None => item.amount,
            Some(sum) => sum.checked_add(&item.amount).map_err(|e| PricingError::InvalidEvent {
                key: item.key().to_owned(),
                detail: e.to_string(),
            })?,
        });
        keys.push(item.key().to_owned());
    }
    let credits = by_run
        .into_iter()
        .filter_map(|(billed_in, (lines, amount, keys))| {
            Some(ReversalCredit {
                billed_in,
                lines: lines
                    .into_iter()
                    .map(|(line, quantity)| crate::credit_note::CreditedLine { line, quantity })
                    .collect(),
                amount: amount?,
                keys,
            })
        })
        .collect();
    Ok((credits, uncredited))
}

// ---------------------------------------------------------------------------------------------
// Pricing
// ---------------------------------------------------------------------------------------------

/// What groups evidence rows into a line; its order is the lines' order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LineKey {
    section: LineSection,
    of_month: Option<Period>,
    campaign_id: Option<String>,
    kind: Option<BillableKind>,
    sku_family: Option<String>,
    version: Option<u32>,
    unit_price_minor: Option<i64>,
}

struct LineSum {
    quantity: u64,
    unit_price: Option<Money>,
    amount: Money,
}

/// Prices `events` (the month's, and earlier ones not billed yet: late) and `reversals` (items
/// billed by earlier runs, now reversed) for `month` under `contract`, by the rules in the
/// module documentation.
pub fn price_month(
    contract: &Contract,
    month: Period,
    events: &[BillableEvent],
    reversals: &[BilledItem],
) -> Result<MonthPricing, PricingError> {
    let invalid = |errors| PricingError::Contract {
        client_id: contract.client_id.clone(),
        errors,
    };
    contract.validate().map_err(invalid)?;
    let closing = contract
        .month_version(month)
        .or_else(|| contract.versions.first())
        .ok_or_else(|| invalid(vec![Invalid::new("required", "no version").at("versions")]))?;
    let currency = closing.currency;
    check_events(contract, month, events)?;
    check_reversals(contract, month, currency, reversals)?;

    let mut ordered: Vec<&BillableEvent> = events.iter().collect();
    ordered.sort_by(|a, b| (a.day, &a.key).cmp(&(b.day, &b.key)));
    let mut rows: Vec<(EvidenceRow, LineKey)> = Vec::new();
    let mut billed = Vec::new();
    let mut unpriced = Vec::new();
    // Units already billed in the run per (campaign, kind): the next unit's tier position.
    let mut positions: BTreeMap<(&str, BillableKind), u64> = BTreeMap::new();
    for event in ordered {
        let not_billed = |version: Option<u32>, reason| Unpriced {
            key: event.key.clone(),
            kind: event.kind,
            campaign_id: event.campaign_id.clone(),
            day: event.day,
            version,
            reason,
        };
        let Some(version) = contract.version_on(event.day) else {
            unpriced.push(not_billed(None, UnpricedReason::NoVersion));
            continue;
        };
        let (rate, priced_family) = match version.rate(&event.campaign_id, event.kind, event.sku_family.as_deref()) {
            Ok(found) => found,
            Err(reason) => {
                unpriced.push(not_billed(Some(version.version), reason));
                continue;
            }
        };
        if version.currency != currency {
            return Err(PricingError::MixedCurrency {
                key: event.key.clone(),
                found: version.currency,
                expected: currency,
                month,
            });
        }
        let position = positions.entry((event.campaign_id.as_str(), event.kind)).or_insert(0);
        let segments = rate.segments(*position, event.quantity, event.kind.scale())?;
        *position = position.checked_add(event.quantity).ok_or(PricingError::Overflow)?;
        let event_month = Period::containing(event.day);
        let late = event_month < month;
        let mut amount = Money::zero(currency);
        for &(units, price) in &segments {
            let row_amount = segment_amount(event.kind, units, price)?;
            amount = amount.checked_add(&row_amount)?;
            let key = LineKey {
                section: if late { LineSection::Late } else { LineSection::Month },
                of_month: late.then_some(event_month),
                campaign_id: Some(event.campaign_id.clone()),
                kind: Some(event.kind),
                sku_family: priced_family.clone(),
                version: Some(version.version),
                unit_price_minor: Some(price.amount_minor()),
            };
            let row = evidence_row(event, version.version, units, Some(price), row_amount, late, None);
            rows.push((row, key));
        }
        billed.push(BilledItem {
            event: event.clone(),
            month,
            version: version.version,
            unit_price: match segments.as_slice() {
                [(_, price)] => Some(*price),
                _ => None,
            },
            amount,
        });
    }

    let own = Money::sum(
        currency,
        rows.iter()
            .filter(|(r, _)| !r.late && !r.reversal)
            .map(|(r, _)| r.amount),
    )?;
    let minimum = contract
        .version_on(month.last_day())
        .and_then(|v| v.monthly_minimum.map(|m| (v.version, m)));
    let minimum_adjustment = match minimum {
        Some((_, floor)) if own.cmp_amount(&floor)? == Ordering::Less => Some(floor.checked_sub(&own)?),
        _ => None,
    };

    let mut reversed: Vec<&BilledItem> = reversals.iter().collect();
    reversed.sort_by(|a, b| (a.month, a.event.day, &a.event.key).cmp(&(b.month, b.event.day, &b.event.key)));
    for item in reversed {
        let event = &item.event;
        let amount = Money::zero(currency).checked_sub(&item.amount)?;
        let key = LineKey {
            section: LineSection::Reversal,
            of_month: Some(item.month),
            campaign_id: Some(event.campaign_id.clone()),
            kind: Some(event.kind),
            sku_family: event
                .sku_family
                .clone()
                .filter(|_| event.kind == BillableKind::VerifiedSale),
            version: Some(item.version),
            unit_price_minor: item.unit_price.map(|p| p.amount_minor()),
        };
        let row = evidence_row(
            event,
            item.version,
            event.quantity,
            item.unit_price,
            amount,
            false,
            Some(item.month),
        );
        rows.push((row, key));
    }

    let mut sums: BTreeMap<LineKey, LineSum> = BTreeMap::new();
    for (row, key) in &rows {
        let sum = sums.entry(key.clone()).or_insert(LineSum {
            quantity: 0,
            unit_price: row.unit_price,
            amount: Money::zero(currency),
        });
        sum.quantity = sum.quantity.checked_add(row.quantity).ok_or(PricingError::Overflow)?;
        sum.amount = sum.amount.checked_add(&row.amount)?;
    }
    if let (Some(adjustment), Some((version, floor))) = (minimum_adjustment, minimum) {
        let key = LineKey {
            section: LineSection::Minimum,
            of_month: None,
            campaign_id: None,
            kind: None,
            sku_family: None,
            version: Some(version),
            // The floor itself, for the line's text; there is one minimum line at most.
            unit_price_minor: Some(floor.amount_minor()),
        };
        let sum = LineSum {
            quantity: 1,
            unit_price: Some(adjustment),
            amount: adjustment,
        };
        sums.insert(key, sum);
    }

    let index: BTreeMap<&LineKey, usize> = sums.keys().enumerate().map(|(i, k)| (k, i)).collect();
    let evidence = rows
        .iter()
        .map(|(row, key)| EvidenceRow {
            line: index.get(key).copied().unwrap_or_default(),
            ..row.clone()
        })
        .collect();
    let lines: Vec<PricedLine> = sums
        .iter()
        .map(|(key, sum)| PricedLine {
            section: key.section,
            of_month: key.of_month,
            campaign_id: key.campaign_id.clone(),
            kind: key.kind,
            sku_family: key.sku_family.clone(),
            version: key.version,
            description: describe(key, sum, month, currency),
            quantity: sum.quantity,
            unit_price: sum.unit_price,
            amount: sum.amount,
        })
        .collect();
    let charges = Money::sum(
        currency,
        lines
            .iter()
            .filter(|l| l.section != LineSection::Reversal)
            .map(|l| l.amount),
    )?;
    let reversals = Money::sum(
        currency,
        lines
            .iter()
            .filter(|l| l.section == LineSection::Reversal)
            .map(|l| l.amount),
    )?;
    Ok(MonthPricing {
        client_id: contract.client_id.clone(),
        month,
        currency,
        payment_terms_days: closing.payment_terms_days,
        total: charges.checked_add(&reversals)?,
        lines,
        evidence,
        unpriced,
        billed,
        minimum_adjustment,
        charges,
        reversals,
    })
}

fn check_events(contract: &Contract, month: Period, events: &[BillableEvent]) -> Result<(), PricingError> {
    let mut keys = BTreeSet::new();
    for event in events {
        if event.client_id != contract.client_id {
            return Err(PricingError::WrongClient {
                key: event.key.clone(),
                found: event.client_id.clone(),
                expected: contract.client_id.clone(),
            });
        }
        if !keys.insert(event.key.as_str()) {
            return Err(PricingError::DuplicateEvent(event.key.clone()));
        }
        let invalid = |detail: String| PricingError::InvalidEvent {
            key: event.key.clone(),
            detail,
        };
        if event.key.trim().is_empty() {
            return Err(invalid("an event has a key".into()));
        }
        match event.kind {
            BillableKind::TalkTime if event.quantity == 0 => {
                return Err(invalid("0 seconds of talk bill nothing; leave the event out".into()));
            }
            BillableKind::VerifiedSale | BillableKind::EffectiveContact if event.quantity != 1 => {
                return Err(invalid(format!(
                    "a {} is one unit, got quantity {}",
                    event.kind.unit(),
                    event.quantity
                )));
            }
            _ => {}
        }
        if event.day > month.last_day() {
            return Err(PricingError::FutureEvent {
                key: event.key.clone(),
                day: event.day,
                month,
            });
        }
    }
    Ok(())
}

fn check_reversals(
    contract: &Contract,
    month: Period,
    currency: Currency,
    reversals: &[BilledItem],
) -> Result<(), PricingError> {
    let mut keys = BTreeSet::new();
    for item in reversals {
        let key = item.key();
        if item.event.client_id != contract.client_id {
            return Err(PricingError::WrongClient {
                key: key.to_owned(),
                found: item.event.client_id.clone(),
                expected: contract.client_id.clone(),
            });
        }
        if !keys.insert(key) {
            return Err(PricingError::DuplicateReversal(key.to_owned()));
        }
        if item.month >= month {
            return Err(PricingError::ReversalNotEarlier {
                key: key.to_owned(),
                billed: item.month,
                month,
            });
        }
        if item.amount.currency() != currency {
            return Err(PricingError::MixedCurrency {
                key: key.to_owned(),
                found: item.amount.currency(),
                expected: currency,
                month,
            });
        }
        if item.amount.is_negative() {
            return Err(PricingError::NegativeReversal {
                key: key.to_owned(),
                amount: item.amount,
            });
        }
    }
    Ok(())
}

/// `units × price`; for talk, `units` seconds at a price per hour, rounded half up to the minor
/// unit, in integers.
fn segment_amount(kind: BillableKind, units: u64, price: Money) -> Result<Money, PricingError> {
    let exact = i128::from(price.amount_minor())
        .checked_mul(i128::from(units))
        .ok_or(PricingError::Overflow)?;
    let minor = match kind {
        // Prices are validated non-negative, so half up is "remainder ≥ half".
        BillableKind::TalkTime => {
            let hour = i128::from(SECONDS_PER_HOUR);
            exact / hour + i128::from(exact % hour * 2 >= hour)
        }
        _ => exact,
    };
    i64::try_from(minor)
        .map(|m| Money::from_minor(m, price.currency()))
        .map_err(|_| PricingError::Overflow)
}

fn evidence_row(
    event: &BillableEvent,
    version: u32,
    quantity: u64,
    unit_price: Option<Money>,
    amount: Money,
    late: bool,
    billed_month: Option<Period>,
) -> EvidenceRow {
    EvidenceRow {
        key: event.key.clone(),
        kind: event.kind,
        campaign_id: event.campaign_id.clone(),
        presale_id: event.presale_id.clone(),
        sale_id: event.sale_id.clone(),
        contact_id: event.contact_id.clone(),
        agent_id: event.agent_id.clone(),
        sku_family: event.sku_family.clone(),
        day: event.day,
        version,
        quantity,
        unit_price,
        amount,
        late,
        reversal: billed_month.is_some(),
        billed_month,
        line: 0,
    }
}

/// The invoice line's text, in Spanish.
fn describe(key: &LineKey, sum: &LineSum, month: Period, currency: Currency) -> String {
    let version = key.version.map(|v| format!(", contrato v{v}")).unwrap_or_default();
    let Some(kind) = key.kind else {
        let floor = key
            .unit_price_minor
            .map(|m| format!(" de {}", Money::from_minor(m, currency)))
            .unwrap_or_default();
        return format!("Ajuste al mínimo mensual{floor}, {}{version}", month_name(month));
    };
    let (title, lower, billed) = kind.words();
    let campaign = key.campaign_id.as_deref().unwrap_or_default();
    let family = key
        .sku_family
        .as_deref()
        .map(|f| format!(", familia {f}"))
        .unwrap_or_default();
    let talk = match (kind, sum.unit_price) {
        (BillableKind::TalkTime, Some(price)) => format!(": {} a {price} por hora", hh_mm_ss(sum.quantity)),
        (BillableKind::TalkTime, None) => format!(": {}", hh_mm_ss(sum.quantity)),
        _ => String::new(),
    };
    let of_month = key.of_month.map(month_name).unwrap_or_default();
    match key.section {
        LineSection::Late => {
            format!("{title}, campaña {campaign}{family}, de {of_month} (facturación tardía){version}{talk}")
        }
        LineSection::Reversal => {
            format!("Reversión de {lower} {billed} en {of_month}, campaña {campaign}{family}{version}{talk}")
        }
        LineSection::Month | LineSection::Minimum => {
            format!(
                "{title}, campaña {campaign}{family}, {}{version}{talk}",
                month_name(month)
            )
        }
    }
}

/// `noviembre de 2026`.
fn month_name(month: Period) -> String {
    let first = month.first_day();
    let name = match first.month() {
        time::Month::January => "enero",
        time::Month::February => "febrero",
        time::Month::March => "marzo",
        time::Month::April => "abril",
        time::Month::May => "mayo",
        time::Month::June => "junio",
        time::Month::July => "julio",
        time::Month::August => "agosto",
        time::Month::September => "septiembre",
        time::Month::October => "octubre",
        time::Month::November => "noviembre",
        time::Month::December => "diciembre",
    };
    format!("{name} de {}", first.year())
}

/// `12:04:05` (hours can run past 24).
fn hh_mm_ss(seconds: u64) -> String {
    format!("{}:{:02}:{:02}", seconds / 3600, seconds % 3600 / 60, seconds % 60)
}

// ---------------------------------------------------------------------------------------------
// The evidence CSV
// ---------------------------------------------------------------------------------------------

/// The evidence CSV's columns, in order (ADR 0027).
pub const EVIDENCE_HEADER: [&str; 19] = [
    "clave",
    "tipo",
    "campana",
    "dia",
    "preventa",
    "venta",
    "contacto",
    "agente",
    "familia",
    "version_contrato",
    "cantidad",
    "unidad",
    "precio_unitario",
    "importe",
    "moneda",
    "tardio",
    "reversion",
    "mes_facturado",
    "linea",
];

/// One row per evidence row under a header: UTF-8 with a byte-order mark, CRLF, fields quoted
/// only when needed, amounts with a dot and the currency's digits, days `YYYY-MM-DD`, booleans
/// `si`/`no`, `linea` the 1-based position of the row's line in [`MonthPricing::lines`]. Text a
/// spreadsheet would run as a formula gets a leading `'`.
pub fn evidence_csv(pricing: &MonthPricing) -> Result<String, PricingError> {
    let csv_error = |e: csv::Error| PricingError::Csv(e.to_string());
    let mut out = "\u{feff}".as_bytes().to_vec();
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(&mut out);
    writer.write_record(EVIDENCE_HEADER).map_err(csv_error)?;
    let text = |value: &Option<String>| value.as_deref().map(spreadsheet_text).unwrap_or_default();
    let yes_no = |b: bool| if b { "si" } else { "no" }.to_owned();
    for row in &pricing.evidence {
        writer
            .write_record([
                spreadsheet_text(&row.key),
                row.kind.code().to_owned(),
                spreadsheet_text(&row.campaign_id),
                row.day.to_string(),
                text(&row.presale_id),
                text(&row.sale_id),
                text(&row.contact_id),
                spreadsheet_text(&row.agent_id),
                text(&row.sku_family),
                row.version.to_string(),
                row.quantity.to_string(),
                row.kind.unit().to_owned(),
                row.unit_price.map(|p| p.to_decimal_string()).unwrap_or_default(),
                row.amount.to_decimal_string(),
                row.amount.currency().code().to_owned(),
                yes_no(row.late),
                yes_no(row.reversal),
                row.billed_month.map(|m| m.to_string()).unwrap_or_default(),
                (row.line + 1).to_string(),
            ])
            .map_err(csv_error)?;
    }
    writer.flush().map_err(|e| PricingError::Csv(e.to_string()))?;
    drop(writer);
    String::from_utf8(out).map_err(|e| PricingError::Csv(e.to_string()))
}

/// `evidencia-acme-2026-11.csv`.
pub fn evidence_file_name(client_id: &str, month: Period) -> String {
    format!("evidencia-{client_id}-{month}.csv")
}

/// A [`Period`] on the wire as `2026-11`.
mod month_text {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Period;

    pub fn serialize<S: Serializer>(month: &Period, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(month)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Period, D::Error> {
        Period::parse(&String::deserialize(deserializer)?).map_err(D::Error::custom)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(month: &Option<Period>, serializer: S) -> Result<S::Ok, S::Error> {
            match month {
                Some(month) => serializer.collect_str(month),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Period>, D::Error> {
            Option::<String>::deserialize(deserializer)?
                .map(|raw| Period::parse(&raw).map_err(D::Error::custom))
                .transpose()
        }
    }
}

impl fmt::Display for UnpricedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnpricedReason::NoVersion => "no contract version in force on its day",
            UnpricedReason::CampaignNotInContract => "its campaign is not in the contract version",
            UnpricedReason::ModelNotInContract => "its campaign is not billed by this model",
            UnpricedReason::FamilyNotPriced => "its SKU family has no price and there is no default",
        })
    }
}

#[cfg(test)]
mod tests;
