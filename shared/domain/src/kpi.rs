//! KPI definitions: the numbers a call center is run on, in one place and versioned.
//!
//! Every attempt ends in exactly one family of the disposition catalog, so per campaign-local
//! day (and per agent and channel):
//!
//! | name | definition |
//! |---|---|
//! | A `attempts` | contacts recorded (every one is an attempt), duplicates of a contact id once |
//! | CE `effective` | attempts whose disposition is of the effective family |
//! | CNE `non_effective` | … of the non-effective family |
//! | NC `no_contact` | … of the no-contact family; A = CE + CNE + NC |
//! | C `contacts` | human contacts, CE + CNE |
//! | S `presales` | pre-sales registered (by the call's start, else the registration) that day |
//! | SV `verified_sales` | of those, the ones approved by verification (SV ≤ S) |
//! | H `handled` | human contacts (C) that report any timing field |
//! | `talk/hold/wrap_seconds` | sums over the handled contacts (a missing field counts 0) |
//! | contact rate | C / A |
//! | effective rate | CE / C |
//! | conversion | S / CE and SV / CE |
//! | verification pass rate | SV / S |
//! | penetration | SV / B, B = records in the campaign's base (configured per campaign) |
//! | sales per talk hour | S·3600 / talk seconds and SV·3600 / talk seconds |
//! | AHT (seconds) | (talk + hold + wrap) / H |
//!
//! Counts are integers. Every rate is an exact [`Ratio`] of two integers, shown with
//! [`DECIMALS`] decimals (half up) as a JSON string, and `null` when its denominator is zero.
//! A contact's day is the local calendar day of its start in the campaign's zone; a sale's day is
//! its call's start (else its registration) in that zone, so a verified sale stays on the day it
//! was sold even if verification ends later (a rebuild picks it up).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::presale::{Presale, PresaleStatus};
use crate::tipification::{Channel, Contact, Family};
use crate::zone::CampaignZone;

/// The version of the definitions above, recorded in every row.
///
/// Bump it whenever a report computed from the same inputs could give a different figure:
/// a formula, what a count includes, the day rule, the rounding or the number of decimals.
/// Adding a new KPI without touching the existing ones does not bump it. Record the change in
/// docs/decisions/0025-kpi-definitions.md.
pub const DEFINITIONS_VERSION: u32 = 1;

/// Decimals a rate is shown with (rounded half up; the ratio itself stays exact).
pub const DECIMALS: u32 = 4;

/// A non-negative exact rate: numerator over a non-zero denominator. Never a float.
#[derive(Debug, Clone, Copy)]
pub struct Ratio {
    numerator: u64,
    denominator: u64,
}

impl Ratio {
    /// `None` when the denominator is zero: a rate of nothing is unknown, not 0 nor an error.
    pub fn new(numerator: u64, denominator: u64) -> Option<Ratio> {
        (denominator != 0).then_some(Ratio { numerator, denominator })
    }

    pub fn numerator(self) -> u64 {
        self.numerator
    }

    pub fn denominator(self) -> u64 {
        self.denominator
    }

    /// The value times 10^`decimals`, rounded half up: the unscaled integer of the decimal that
    /// [`Ratio::to_fixed`] prints (1/3 with 4 decimals is 3333, "0.3333"). `decimals` is capped
    /// at 18, as there.
    pub fn scaled(self, decimals: u32) -> u128 {
        // u128: numerator (≤ u64) × 10^18 × 2 + denominator cannot overflow.
        let scale = 10u128.pow(decimals.min(18));
        let den = u128::from(self.denominator);
        (u128::from(self.numerator) * scale * 2 + den) / (den * 2)
    }

    /// The value with exactly `decimals` decimals, rounded half up ("0.3333", "2.5000").
    pub fn to_fixed(self, decimals: u32) -> String {
        // u128: numerator (≤ u64) × 10^decimals × 2 cannot overflow for decimals ≤ 18.
        let decimals = decimals.min(18);
        let scale = 10u128.pow(decimals);
        let den = u128::from(self.denominator);
        let scaled = (u128::from(self.numerator) * scale * 2 + den) / (den * 2);
        let (whole, fraction) = (scaled / scale, scaled % scale);
        if decimals == 0 {
            whole.to_string()
        } else {
            format!("{whole}.{fraction:0width$}", width = decimals as usize)
        }
    }
}

/// Equal values are equal whatever the terms: 1/2 == 2/4.
impl PartialEq for Ratio {
    fn eq(&self, other: &Self) -> bool {
        u128::from(self.numerator) * u128::from(other.denominator)
            == u128::from(other.numerator) * u128::from(self.denominator)
    }
}

impl Eq for Ratio {}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_fixed(DECIMALS))
    }
}

impl Serialize for Ratio {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_fixed(DECIMALS))
    }
}

/// Read back from its decimal text as that exact decimal (3333/10000, not 1/3): a stored row's
/// rate is the figure it was published with.
impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        parse_decimal(&raw).ok_or_else(|| {
            serde::de::Error::custom(format!("a rate is a decimal string such as \"0.2500\", got {raw:?}"))
        })
    }
}

fn parse_decimal(raw: &str) -> Option<Ratio> {
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 18 {
        return None;
    }
    let denominator = 10u64.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let numerator = format!("{whole}{fraction}").parse::<u64>().ok()?;
    Ratio::new(numerator, denominator)
}

/// The integer counts of one row; every rate derives from them (and the base).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub attempts: u64,
    pub contacts: u64,
    pub effective: u64,
    pub non_effective: u64,
    pub no_contact: u64,
    pub presales: u64,
    pub verified_sales: u64,
    pub handled: u64,
    pub talk_seconds: u64,
    pub hold_seconds: u64,
    pub wrap_seconds: u64,
}

impl Counts {
    /// The counts' names, in the order every report and export lists them (CSV, Parquet).
    pub const NAMES: [&'static str; 11] = [
        "attempts",
        "contacts",
        "effective",
        "non_effective",
        "no_contact",
        "presales",
        "verified_sales",
        "handled",
        "talk_seconds",
        "hold_seconds",
        "wrap_seconds",
    ];

    /// The counts in the order of [`Counts::NAMES`].
    pub fn values(&self) -> [u64; 11] {
        [
            self.attempts,
            self.contacts,
            self.effective,
            self.non_effective,
            self.no_contact,
            self.presales,
            self.verified_sales,
            self.handled,
            self.talk_seconds,
            self.hold_seconds,
            self.wrap_seconds,
        ]
    }

    /// Counts add up across rows (agents, channels, days); rates never do, recompute them.
    pub fn add(&mut self, other: &Counts) {
        self.attempts += other.attempts;
        self.contacts += other.contacts;
        self.effective += other.effective;
        self.non_effective += other.non_effective;
        self.no_contact += other.no_contact;
        self.presales += other.presales;
        self.verified_sales += other.verified_sales;
        self.handled += other.handled;
        self.talk_seconds += other.talk_seconds;
        self.hold_seconds += other.hold_seconds;
        self.wrap_seconds += other.wrap_seconds;
    }

    fn add_contact(&mut self, contact: &Contact) {
        self.attempts += 1;
        match contact.disposition.family {
            Family::Effective => self.effective += 1,
            Family::NonEffective => self.non_effective += 1,
            Family::NoContact => self.no_contact += 1,
        }
        if contact.disposition.family == Family::NoContact {
            return;
        }
        self.contacts += 1;
        let timing = [contact.talk_seconds, contact.hold_seconds, contact.wrap_seconds];
        if timing.iter().any(Option::is_some) {
            self.handled += 1;
            self.talk_seconds += u64::from(contact.talk_seconds.unwrap_or(0));
            self.hold_seconds += u64::from(contact.hold_seconds.unwrap_or(0));
            self.wrap_seconds += u64::from(contact.wrap_seconds.unwrap_or(0));
        }
    }

    fn add_sale(&mut self, verified: bool) {
        self.presales += 1;
        self.verified_sales += u64::from(verified);
    }
}

/// The rates of [`Counts`]; each is `null` exactly when its denominator is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    /// C / A
    pub contact_rate: Option<Ratio>,
    /// CE / C
    pub effective_rate: Option<Ratio>,
    /// S / CE
    pub presale_conversion: Option<Ratio>,
    /// SV / CE
    pub verified_conversion: Option<Ratio>,
    /// SV / S
    pub verification_pass_rate: Option<Ratio>,
    /// SV / B
    pub penetration: Option<Ratio>,
    /// S · 3600 / talk seconds
    pub presales_per_talk_hour: Option<Ratio>,
    /// SV · 3600 / talk seconds
    pub verified_sales_per_talk_hour: Option<Ratio>,
    /// (talk + hold + wrap) / H, in seconds
    pub aht_seconds: Option<Ratio>,
}

impl Rates {
    /// The rates' names, in the order every report and export lists them (CSV, Parquet).
    pub const NAMES: [&'static str; 9] = [
        "contact_rate",
        "effective_rate",
        "presale_conversion",
        "verified_conversion",
        "verification_pass_rate",
        "penetration",
        "presales_per_talk_hour",
        "verified_sales_per_talk_hour",
        "aht_seconds",
    ];

    /// The rates in the order of [`Rates::NAMES`].
    pub fn values(&self) -> [Option<Ratio>; 9] {
        [
            self.contact_rate,
            self.effective_rate,
            self.presale_conversion,
            self.verified_conversion,
            self.verification_pass_rate,
            self.penetration,
            self.presales_per_talk_hour,
            self.verified_sales_per_talk_hour,
            self.aht_seconds,
        ]
    }

    /// `base` is B, the records in the campaign's base; unknown or zero makes penetration null.
    pub fn of(counts: &Counts, base: Option<u64>) -> Rates {
        let c = counts;
        let handle_seconds = c.talk_seconds + c.hold_seconds + c.wrap_seconds;
        Rates {
            contact_rate: Ratio::new(c.contacts, c.attempts),
            effective_rate: Ratio::new(c.effective, c.contacts),
            presale_conversion: Ratio::new(c.presales, c.effective),
            verified_conversion: Ratio::new(c.verified_sales, c.effective),
            verification_pass_rate: Ratio::new(c.verified_sales, c.presales),
            penetration: base.and_then(|b| Ratio::new(c.verified_sales, b)),
            presales_per_talk_hour: Ratio::new(c.presales.saturating_mul(3600), c.talk_seconds),
            verified_sales_per_talk_hour: Ratio::new(c.verified_sales.saturating_mul(3600), c.talk_seconds),
            aht_seconds: Ratio::new(handle_seconds, c.handled),
        }
    }
}

/// One report row: a campaign's local day, for one agent on one channel, or (both `None`) the
/// campaign's total for the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KpiRow {
    pub definitions_version: u32,
    /// The disposition-catalog versions of the row's contacts (two when the catalog changed
    /// that day; none when the row has only sales).
    pub catalog_versions: Vec<u32>,
    pub client_id: String,
    pub campaign_id: String,
    #[serde(with = "crate::wire::date")]
    pub day: Date,
    pub agent_id: Option<String>,
    pub channel: Option<Channel>,
    /// B as configured when the row was computed.
    pub base_records: Option<u64>,
    pub counts: Counts,
    pub rates: Rates,
}

/// What the fold needs to know of the campaign.
#[derive(Debug, Clone, Copy)]
pub struct CampaignKpis<'a> {
    pub client_id: &'a str,
    pub campaign_id: &'a str,
    pub zone: &'a CampaignZone,
    /// B: records in the campaign's base, when configured.
    pub base_records: Option<u64>,
}

/// A pre-sale as the KPIs see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    pub presale_id: String,
    pub client_id: String,
    pub campaign_id: String,
    /// Who registered it: the sale counts for that agent.
    pub agent_id: String,
    /// When it was sold: the call's start, else the registration.
    pub sold_at: OffsetDateTime,
    /// Approved by verification: a verified sale (SV).
    pub verified: bool,
}

impl Sale {
    pub fn from_presale(presale: &Presale) -> Sale {
        Sale {
            presale_id: presale.id.as_str().to_owned(),
            client_id: presale.client_id.clone(),
            campaign_id: presale.campaign_id.clone(),
            agent_id: presale.agent_id.clone(),
            sold_at: presale.call_started_at.unwrap_or(presale.created_at),
            verified: presale.status == PresaleStatus::Approved,
        }
    }
}

type Key = (Date, Option<String>, Option<Channel>);

#[derive(Default)]
struct Acc {
    counts: Counts,
    catalog_versions: BTreeSet<u32>,
}

/// The rows of every local day present in the inputs: one per agent × channel, and one total
/// per day (agent and channel `None`), ordered by day, total first, then agent and channel.
///
/// Inputs of another client or campaign are ignored; a contact id or a pre-sale id seen twice
/// counts once (the first contact; a pre-sale is verified if any copy is). A sale's channel is
/// that of the contact that links it (a sale disposition first), else `call`: a pre-sale is
/// registered on a call.
pub fn fold(campaign: &CampaignKpis<'_>, contacts: &[Contact], sales: &[Sale]) -> Vec<KpiRow> {
    let mut fold = Fold::new(*campaign);
    for contact in contacts {
        fold.add_contact(contact);
    }
    fold.finish(sales)
}

/// [`fold`] one contact at a time, so a day of 200,000 contacts is never held in memory: what
/// it keeps is the rows, the contact ids seen (duplicates count once) and the channel of each
/// linked pre-sale. Add every contact, then [`Fold::finish`] with the sales.
pub struct Fold<'a> {
    campaign: CampaignKpis<'a>,
    seen: BTreeSet<String>,
    sale_channel: BTreeMap<String, (bool, Channel)>,
    rows: BTreeMap<Key, Acc>,
}

impl<'a> Fold<'a> {
    pub fn new(campaign: CampaignKpis<'a>) -> Fold<'a> {
        Fold {
            campaign,
            seen: BTreeSet::new(),
            sale_channel: BTreeMap::new(),
            rows: BTreeMap::new(),
        }
    }

    fn ours(&self, client: &str, id: &str) -> bool {
        client == self.campaign.client_id && id == self.campaign.campaign_id
    }

    fn add(&mut self, day: Date, agent: &str, channel: Channel, f: impl Fn(&mut Acc)) {
        f(self
            .rows
            .entry((day, Some(agent.to_owned()), Some(channel)))
            .or_default());
        f(self.rows.entry((day, None, None)).or_default());
    }

    /// Count a contact (of another campaign, or seen before: ignored).
    pub fn add_contact(&mut self, contact: &Contact) {
        if !self.ours(&contact.client_id, &contact.campaign_id) || !self.seen.insert(contact.id.clone()) {
            return;
        }
        if let Some(id) = contact.presale_id.as_deref() {
            let candidate = (contact.disposition.flags.sale, contact.channel);
            let entry = self.sale_channel.entry(id.to_owned()).or_insert(candidate);
            if candidate.0 && !entry.0 {
                *entry = candidate;
            }
        }
        let day = self.campaign.zone.local_date(contact.started_at);
        self.add(day, &contact.agent_id, contact.channel, |acc: &mut Acc| {
            acc.counts.add_contact(contact);
            acc.catalog_versions.insert(contact.catalog_version);
        });
    }

    /// Count the sales and give the rows of every day present, ordered by day, total first,
    /// then agent and channel.
    pub fn finish(mut self, sales: &[Sale]) -> Vec<KpiRow> {
        let mut unique_sales: BTreeMap<&str, (&Sale, bool)> = BTreeMap::new();
        for sale in sales.iter().filter(|s| self.ours(&s.client_id, &s.campaign_id)) {
            let entry = unique_sales.entry(sale.presale_id.as_str()).or_insert((sale, false));
            entry.1 |= sale.verified;
        }
        for (id, (sale, verified)) in &unique_sales {
            let day = self.campaign.zone.local_date(sale.sold_at);
            let channel = self
                .sale_channel
                .get(*id)
                .map_or(Channel::Call, |(_, channel)| *channel);
            self.add(day, &sale.agent_id, channel, |acc: &mut Acc| {
                acc.counts.add_sale(*verified)
            });
        }
        let campaign = self.campaign;
        self.rows
            .into_iter()
            .map(|((day, agent_id, channel), acc)| KpiRow {
                definitions_version: DEFINITIONS_VERSION,
                catalog_versions: acc.catalog_versions.into_iter().collect(),
                client_id: campaign.client_id.to_owned(),
                campaign_id: campaign.campaign_id.to_owned(),
                day,
                agent_id,
                channel,
                base_records: campaign.base_records,
                rates: Rates::of(&acc.counts, campaign.base_records),
                counts: acc.counts,
            })
            .collect()
    }
}

/// How `GET /reports/kpis` groups a day's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// The campaign's total per day.
    Day,
    /// Per agent, all channels together.
    Agent,
    /// Per channel, all agents together.
    Channel,
}

/// Regroup the rows of [`fold`] (agent × channel rows and day totals): counts and catalog
/// versions add up, rates are recomputed from the sums (a rate is never averaged).
/// Rows of different campaigns, days or definition versions are never merged.
pub fn rollup(rows: &[KpiRow], by: GroupBy) -> Vec<KpiRow> {
    type GroupKey = (String, String, Date, u32, Option<String>, Option<Channel>);
    let mut groups: BTreeMap<GroupKey, (Acc, Option<u64>)> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.agent_id.is_some() && r.channel.is_some()) {
        let (agent, channel) = match by {
            GroupBy::Day => (None, None),
            GroupBy::Agent => (row.agent_id.clone(), None),
            GroupBy::Channel => (None, row.channel),
        };
        let key = (
            row.client_id.clone(),
            row.campaign_id.clone(),
            row.day,
            row.definitions_version,
            agent,
            channel,
        );
        let (acc, base) = groups.entry(key).or_insert_with(|| (Acc::default(), row.base_records));
        acc.counts.add(&row.counts);
        acc.catalog_versions.extend(row.catalog_versions.iter().copied());
        *base = (*base).or(row.base_records);
    }
    groups
        .into_iter()
        .map(
            |((client_id, campaign_id, day, definitions_version, agent_id, channel), (acc, base))| KpiRow {
                definitions_version,
                catalog_versions: acc.catalog_versions.into_iter().collect(),
                client_id,
                campaign_id,
                day,
                agent_id,
                channel,
                base_records: base,
                rates: Rates::of(&acc.counts, base),
                counts: acc.counts,
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::{date, datetime};

    use super::*;

    fn lima() -> &'static CampaignZone {
        static LIMA: std::sync::OnceLock<CampaignZone> = std::sync::OnceLock::new();
        LIMA.get_or_init(|| CampaignZone::parse("America/Lima").expect("a zone"))
    }

    fn campaign(base: Option<u64>) -> CampaignKpis<'static> {
        CampaignKpis {
            client_id: "acme",
            campaign_id: "c1",
            zone: lima(),
            base_records: base,
        }
    }

    fn contact(id: &str, agent: &str, channel: Channel, family: Family, started_at: OffsetDateTime) -> Contact {
        crate::testing::contact(id, agent, channel, family, started_at)
    }

    fn sale(id: &str, agent: &str, sold_at: OffsetDateTime, verified: bool) -> Sale {
        Sale {
            presale_id: id.into(),
            client_id: "acme".into(),
            campaign_id: "c1".into(),
            agent_id: agent.into(),
            sold_at,
            verified,
        }
    }

    fn ratio(n: u64, d: u64) -> Option<Ratio> {
        Ratio::new(n, d)
    }

    #[test]
    fn ratios_are_exact_rounded_half_up_and_null_on_zero() {
        assert_eq!(Ratio::new(1, 0), None);
        assert_eq!(ratio(1, 3).map(|r| r.to_string()), Some("0.3333".into()));
        assert_eq!(ratio(2, 3).map(|r| r.to_string()), Some("0.6667".into()));
        assert_eq!(
            ratio(1, 20_000).map(|r| r.to_string()),
            Some("0.0001".into()),
            "half up"
        );
        assert_eq!(ratio(1, 20_001).map(|r| r.to_string()), Some("0.0000".into()));
        assert_eq!(ratio(7, 2).map(|r| r.to_fixed(0)), Some("4".into()));
        assert_eq!(ratio(0, 5).map(|r| r.to_string()), Some("0.0000".into()));
        assert_eq!(
            ratio(u64::MAX, 1).map(|r| r.to_string()),
            Some(format!("{}.0000", u64::MAX))
        );
        assert_eq!(ratio(1, 2), ratio(2, 4));
        assert_eq!(
            serde_json::to_value(Rates::of(&Counts::default(), Some(0))).expect("json")["contact_rate"],
            serde_json::Value::Null
        );
        assert_eq!(
            serde_json::to_value(ratio(1, 8)).expect("json"),
            serde_json::json!("0.1250")
        );
        let back: Ratio = serde_json::from_value(serde_json::json!("0.1250")).expect("a rate");
        assert_eq!(Some(back), ratio(1, 8));
        for bad in ["", ".5", "1.", "-0.5", "1e3", "0.1.2", "x"] {
            let read = serde_json::from_value::<Ratio>(serde_json::json!(bad));
            // "1." reads as 1: an empty fraction is just no decimals.
            assert_eq!(read.is_ok(), bad == "1.", "{bad}");
        }
    }

    #[test]
    fn scaled_is_the_unscaled_integer_of_to_fixed() {
        for (n, d) in [
            (1, 3),
            (2, 3),
            (1, 20_000),
            (1, 20_001),
            (7, 2),
            (0, 5),
            (u64::MAX, 1),
            (u64::MAX, 7),
        ] {
            let r = Ratio::new(n, d).expect("a ratio");
            for decimals in [0, 4, 18, 30] {
                let printed = r.to_fixed(decimals).replace('.', "").parse::<u128>();
                assert_eq!(Ok(r.scaled(decimals)), printed, "{n}/{d} with {decimals} decimals");
            }
        }
        assert_eq!(ratio(1, 3).map(|r| r.scaled(4)), Some(3333));
        assert_eq!(ratio(1, 20_000).map(|r| r.scaled(4)), Some(1), "half up");
        assert_eq!(ratio(7, 2).map(|r| r.scaled(4)), Some(35_000));
    }

    #[test]
    fn a_day_of_one_campaign() {
        let at = |h, m| {
            datetime!(2026-12-01 00:00 -5)
                .replace_hour(h)
                .and_then(|t| t.replace_minute(m))
        };
        let at = |h, m| at(h, m).expect("a time");
        let mut sold = contact("k3", "ana", Channel::Call, Family::Effective, at(10, 0));
        sold.disposition.flags.sale = true;
        sold.presale_id = Some("p1".into());
        (sold.talk_seconds, sold.hold_seconds, sold.wrap_seconds) = (Some(240), Some(30), Some(60));
        let mut talked = contact("k4", "ana", Channel::Call, Family::NonEffective, at(11, 0));
        talked.talk_seconds = Some(30);
        talked.catalog_version = 2;
        let mut wa = contact("k5", "bea", Channel::Whatsapp, Family::Effective, at(12, 0));
        wa.presale_id = Some("p2".into());
        let contacts = vec![
            contact("k1", "ana", Channel::Call, Family::NoContact, at(9, 0)),
            contact("k2", "ana", Channel::Call, Family::NoContact, at(9, 30)),
            sold.clone(),
            sold, // a duplicated delivery
            talked,
            wa,
            // 23:30 in Lima on the 1st is 04:30 UTC on the 2nd: it counts on the 1st.
            contact(
                "k6",
                "bea",
                Channel::Call,
                Family::NoContact,
                datetime!(2026-12-02 04:30 UTC),
            ),
            // Another campaign's contact is not ours.
            Contact {
                campaign_id: "c2".into(),
                ..contact("k7", "ana", Channel::Call, Family::Effective, at(9, 0))
            },
        ];
        let sales = vec![
            sale("p1", "ana", at(10, 3), true),
            sale("p2", "bea", at(12, 2), false),
            sale("p2", "bea", at(12, 2), false),
        ];
        let rows = fold(&campaign(Some(1000)), &contacts, &sales);
        let keys: Vec<(Date, Option<&str>, Option<Channel>)> =
            rows.iter().map(|r| (r.day, r.agent_id.as_deref(), r.channel)).collect();
        let day = date!(2026 - 12 - 01);
        assert_eq!(
            keys,
            vec![
                (day, None, None),
                (day, Some("ana"), Some(Channel::Call)),
                (day, Some("bea"), Some(Channel::Call)),
                (day, Some("bea"), Some(Channel::Whatsapp)),
            ]
        );
        let total = &rows[0];
        assert_eq!(
            total.counts,
            Counts {
                attempts: 6,
                contacts: 3,
                effective: 2,
                non_effective: 1,
                no_contact: 3,
                presales: 2,
                verified_sales: 1,
                handled: 2,
                talk_seconds: 270,
                hold_seconds: 30,
                wrap_seconds: 60,
            }
        );
        assert_eq!(
            (total.definitions_version, total.catalog_versions.clone()),
            (1, vec![1, 2])
        );
        let r = total.rates;
        assert_eq!(r.contact_rate, ratio(1, 2));
        assert_eq!(r.effective_rate, ratio(2, 3));
        assert_eq!(r.presale_conversion, ratio(1, 1));
        assert_eq!(r.verified_conversion, ratio(1, 2));
        assert_eq!(r.verification_pass_rate, ratio(1, 2));
        assert_eq!(r.penetration, ratio(1, 1000));
        assert_eq!(r.presales_per_talk_hour, ratio(2 * 3600, 270));
        assert_eq!(r.verified_sales_per_talk_hour, ratio(3600, 270));
        assert_eq!(r.aht_seconds, ratio(360, 2));
        let json = serde_json::to_value(total).expect("json");
        assert_eq!(json["day"], "2026-12-01");
        assert_eq!(json["agent_id"], serde_json::Value::Null);
        assert_eq!(json["rates"]["aht_seconds"], "180.0000");
        assert_eq!(json["rates"]["presales_per_talk_hour"], "26.6667");

        // The late no-contact at 23:30 is bea's call row; her pre-sale went with her WhatsApp.
        let bea_call = &rows[2];
        assert_eq!((bea_call.counts.attempts, bea_call.counts.presales), (1, 0));
        assert_eq!(bea_call.rates.contact_rate, ratio(0, 1));
        assert_eq!(bea_call.rates.effective_rate, None, "no human contact: null, not 0");
        let bea_wa = &rows[3];
        assert_eq!((bea_wa.counts.presales, bea_wa.counts.verified_sales), (1, 0));
        assert_eq!(bea_wa.rates.verification_pass_rate, ratio(0, 1));
        assert_eq!(bea_wa.rates.aht_seconds, None);
        assert_eq!(bea_wa.rates.presales_per_talk_hour, None);

        let round_trip: KpiRow = serde_json::from_value(json).expect("a row");
        assert_eq!(round_trip.counts, total.counts);
        assert_eq!(
            round_trip.rates.effective_rate,
            ratio(6667, 10_000),
            "the published figure"
        );
    }

    #[test]
    fn no_base_no_penetration_and_a_sale_without_a_contact_is_a_call() {
        let rows = fold(
            &campaign(None),
            &[],
            &[sale("p9", "ana", datetime!(2026-12-01 15:00 UTC), true)],
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].channel, Some(Channel::Call));
        assert_eq!(rows[0].rates.penetration, None);
        assert_eq!(rows[0].rates.presale_conversion, None, "no effective contact");
        assert!(rows[0].catalog_versions.is_empty());
        assert_eq!(
            fold(
                &campaign(Some(0)),
                &[],
                &[sale("p9", "a", datetime!(2026-12-01 15:00 UTC), true)]
            )[0]
            .rates
            .penetration,
            None
        );
        assert!(fold(&campaign(None), &[], &[]).is_empty());
    }

    #[test]
    fn rollups_add_counts_and_recompute_rates() {
        let at = datetime!(2026-12-01 15:00 UTC);
        let mut talked = contact("k2", "ana", Channel::Whatsapp, Family::Effective, at);
        talked.catalog_version = 2;
        let contacts = vec![
            contact("k1", "ana", Channel::Call, Family::NoContact, at),
            talked,
            contact("k3", "bea", Channel::Call, Family::Effective, at),
            contact(
                "k4",
                "bea",
                Channel::Call,
                Family::Effective,
                at + time::Duration::days(1),
            ),
        ];
        let rows = fold(&campaign(Some(10)), &contacts, &[sale("p1", "bea", at, true)]);
        let by_agent = rollup(&rows, GroupBy::Agent);
        let keys: Vec<(Date, Option<&str>, Option<Channel>, u64)> = by_agent
            .iter()
            .map(|r| (r.day, r.agent_id.as_deref(), r.channel, r.counts.attempts))
            .collect();
        let (first, second) = (date!(2026 - 12 - 01), date!(2026 - 12 - 02));
        assert_eq!(
            keys,
            vec![
                (first, Some("ana"), None, 2),
                (first, Some("bea"), None, 1),
                (second, Some("bea"), None, 1)
            ]
        );
        assert_eq!(by_agent[0].rates.contact_rate, ratio(1, 2), "recomputed, not averaged");
        assert_eq!(by_agent[0].catalog_versions, vec![1, 2]);
        assert_eq!(by_agent[1].rates.penetration, ratio(1, 10));
        let by_channel = rollup(&rows, GroupBy::Channel);
        let calls = by_channel
            .iter()
            .find(|r| r.day == first && r.channel == Some(Channel::Call));
        assert_eq!(calls.map(|r| (r.counts.attempts, r.counts.effective)), Some((2, 1)));
        // By day, the rollup is the fold's own total row.
        let totals: Vec<&KpiRow> = rows.iter().filter(|r| r.agent_id.is_none()).collect();
        let by_day = rollup(&rows, GroupBy::Day);
        assert_eq!(by_day.iter().collect::<Vec<_>>(), totals);
    }

    fn family() -> impl Strategy<Value = Family> {
        prop_oneof![
            Just(Family::Effective),
            Just(Family::NonEffective),
            Just(Family::NoContact)
        ]
    }

    fn channel() -> impl Strategy<Value = Channel> {
        prop_oneof![Just(Channel::Call), Just(Channel::Whatsapp), Just(Channel::Email)]
    }

    prop_compose! {
        fn any_contact()(
            id in 0u8..40, agent in 0u8..3, channel in channel(), family in family(),
            minutes in 0i64..(3 * 24 * 60), talk in proptest::option::of(0u32..600),
            wrap in proptest::option::of(0u32..120), presale in proptest::option::of(0u8..10),
            version in 1u32..3,
        ) -> Contact {
            let mut c = contact(
                &format!("k{id}"), &format!("agent-{agent}"), channel, family,
                datetime!(2026-12-01 00:00 UTC) + time::Duration::minutes(minutes),
            );
            c.talk_seconds = talk;
            c.wrap_seconds = wrap;
            c.catalog_version = version;
            c.presale_id = presale.map(|p| format!("p{p}"));
            c
        }
    }

    prop_compose! {
        fn any_sale()(id in 0u8..10, agent in 0u8..3, minutes in 0i64..(3 * 24 * 60), verified in any::<bool>()) -> Sale {
            sale(&format!("p{id}"), &format!("agent-{agent}"), datetime!(2026-12-01 00:00 UTC) + time::Duration::minutes(minutes), verified)
        }
    }

    proptest! {
        #[test]
        fn totals_are_the_sum_of_the_agent_rows_and_rates_are_null_exactly_on_zero(
            contacts in proptest::collection::vec(any_contact(), 0..60),
            sales in proptest::collection::vec(any_sale(), 0..15),
            base in proptest::option::of(0u64..5),
        ) {
            let rows = fold(&campaign(base), &contacts, &sales);
            let days: BTreeSet<Date> = rows.iter().map(|r| r.day).collect();
            for day in days {
                let of_day: Vec<&KpiRow> = rows.iter().filter(|r| r.day == day).collect();
                let totals: Vec<&&KpiRow> = of_day.iter().filter(|r| r.agent_id.is_none()).collect();
                prop_assert_eq!(totals.len(), 1);
                let mut sum = Counts::default();
                let mut versions = BTreeSet::new();
                for row in of_day.iter().filter(|r| r.agent_id.is_some()) {
                    prop_assert!(row.channel.is_some());
                    sum.add(&row.counts);
                    versions.extend(row.catalog_versions.iter().copied());
                }
                prop_assert_eq!(sum, totals[0].counts);
                prop_assert_eq!(versions.into_iter().collect::<Vec<_>>(), totals[0].catalog_versions.clone());
                let distinct: BTreeSet<&str> = contacts
                    .iter()
                    .filter(|c| lima().local_date(c.started_at) == day)
                    .map(|c| c.id.as_str())
                    .collect();
                // Ids are unique per generated start only by chance: the first copy decides the day.
                prop_assert!(totals[0].counts.attempts <= distinct.len() as u64);
            }
            let totals: Vec<&KpiRow> = rows.iter().filter(|r| r.agent_id.is_none()).collect();
            let by_day = rollup(&rows, GroupBy::Day);
            prop_assert_eq!(by_day.iter().collect::<Vec<_>>(), totals);
            let ids: BTreeSet<&str> = contacts.iter().map(|c| c.id.as_str()).collect();
            let attempts: u64 = rows.iter().filter(|r| r.agent_id.is_none()).map(|r| r.counts.attempts).sum();
            prop_assert_eq!(attempts, ids.len() as u64, "each contact id once");
            for row in &rows {
                let c = row.counts;
                prop_assert_eq!(c.attempts, c.effective + c.non_effective + c.no_contact);
                prop_assert_eq!(c.contacts, c.effective + c.non_effective);
                prop_assert!(c.verified_sales <= c.presales);
                let r = row.rates;
                for (rate, denominator) in [
                    (r.contact_rate, c.attempts),
                    (r.effective_rate, c.contacts),
                    (r.presale_conversion, c.effective),
                    (r.verified_conversion, c.effective),
                    (r.verification_pass_rate, c.presales),
                    (r.penetration, base.unwrap_or(0)),
                    (r.presales_per_talk_hour, c.talk_seconds),
                    (r.verified_sales_per_talk_hour, c.talk_seconds),
                    (r.aht_seconds, c.handled),
                ] {
                    prop_assert_eq!(rate.is_none(), denominator == 0);
                    if let Some(rate) = rate {
                        prop_assert_eq!(rate.denominator(), denominator);
                    }
                }
            }
        }
    }
}
