//! Fulfillment rules: how a confirmed sale is packed, which courier takes it, what the shipping
//! costs and when it is picked up.
//!
//! Pure functions over serde config types: a handler loads [`FulfillmentConfig`] (per campaign,
//! e.g. from DynamoDB) and calls [`plan_shipment`]. Weights are integer grams, volumes integer
//! cm³ and prices integer minor units, so no rule depends on floating point.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Date, OffsetDateTime, Time, Weekday};

use super::money::{Currency, Money};
use super::presale::Address;
use crate::events::{SaleConfirmed, SaleId, ShipmentId};
use crate::holidays::PublicHolidays;
use crate::zone::{CampaignZone, LocalTime};

/// No plan has more packages than this: a bound on the work and memory an absurd quantity
/// (`u32::MAX` units) could otherwise cost, far above any call-center sale.
pub const MAX_PACKAGES: usize = 1000;

/// How far ahead [`pickup_date`] looks for working days before deciding the calendar has none.
pub const PICKUP_SEARCH_DAYS: u32 = 60;

/// Highest accepted [`WorkCalendar::pickup_lead_working_days`]; more is a typo, not a courier.
pub const MAX_PICKUP_LEAD_WORKING_DAYS: u8 = 10;

/// The zone of an address no zone rule matches.
pub const DEFAULT_ZONE: &str = "NATIONAL";

/// Couriers' usual volumetric divisor: 1 kg per 5000 cm³.
pub const DEFAULT_VOLUMETRIC_DIVISOR: u32 = 5000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FulfillmentError {
    #[error("SKU {0:?} has no shipping spec (weight and dimensions); add it to the catalog's shipping data")]
    MissingShippingSpec(String),
    #[error("courier {courier} has no rate for zone {zone}")]
    NoRateForZone { courier: String, zone: String },
    #[error("courier {0} has no rate table")]
    NoRateTable(String),
    #[error("the sale is in {sale} but courier {courier} charges in {rates}")]
    CurrencyMismatch {
        courier: String,
        sale: Currency,
        rates: Currency,
    },
    #[error(
        "the work calendar gives no pickup day within {PICKUP_SEARCH_DAYS} days (no working days, or all of them holidays)"
    )]
    NoWorkingDay,
    #[error("shipping arithmetic out of range")]
    Overflow,
    #[error("the sale would need more than {MAX_PACKAGES} packages")]
    TooManyPackages,
    #[error("the sale has nothing to ship")]
    NothingToShip,
    #[error("invalid fulfillment config: {0}")]
    InvalidConfig(String),
}

// ---------------------------------------------------------------------------------------------
// Packing
// ---------------------------------------------------------------------------------------------

/// A catalog item's shipping data, per unit as it ships (in its own box).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShippingSpec {
    pub sku: String,
    pub weight_grams: u32,
    pub length_mm: u32,
    pub width_mm: u32,
    pub height_mm: u32,
    /// Never shares a box (a TV, a mattress, anything fragile or sold in its own carton).
    #[serde(default)]
    pub ships_alone: bool,
}

impl ShippingSpec {
    /// The unit's volume in cm³, rounded up: a box never takes less room than it has.
    pub fn volume_cm3(&self) -> Result<u64, FulfillmentError> {
        // u32³ overflows u64 but not u128.
        let mm3 = u128::from(self.length_mm) * u128::from(self.width_mm) * u128::from(self.height_mm);
        u64::try_from(mm3.div_ceil(1000)).map_err(|_| FulfillmentError::Overflow)
    }
}

/// What one package may hold. A courier's parcel service refuses heavier or bulkier boxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PackageLimits {
    pub max_weight_grams: u64,
    pub max_volume_cm3: u64,
}

impl Default for PackageLimits {
    /// 20 kg and 60 000 cm³ (e.g. 50 × 40 × 30 cm): a common parcel ceiling of Peruvian couriers.
    fn default() -> Self {
        PackageLimits {
            max_weight_grams: 20_000,
            max_volume_cm3: 60_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackedLine {
    pub sku: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// 1-based, in packing order.
    pub number: u32,
    /// One line per SKU, sorted by SKU.
    pub lines: Vec<PackedLine>,
    pub weight_grams: u64,
    /// The sum of its units' volumes (no geometric packing: see [`pack`]).
    pub volume_cm3: u64,
    /// A single unit beyond the limits; couriers charge a surcharge for it.
    pub oversize: bool,
}

/// Identical units, packed together.
struct Group<'a> {
    spec: &'a ShippingSpec,
    weight: u64,
    volume: u64,
    count: u64,
}

/// A package being filled.
#[derive(Default)]
struct Bin {
    lines: BTreeMap<String, u64>,
    weight: u64,
    volume: u64,
}

impl Bin {
    /// How many more units of `group` fit without exceeding either limit.
    fn room_for(&self, group: &Group<'_>, limits: &PackageLimits) -> u64 {
        // A zero weight (or volume) never limits; limits below the content leave no room.
        let fit = |used: u64, max: u64, each: u64| max.saturating_sub(used).checked_div(each).unwrap_or(u64::MAX);
        fit(self.weight, limits.max_weight_grams, group.weight).min(fit(
            self.volume,
            limits.max_volume_cm3,
            group.volume,
        ))
    }

    fn add(&mut self, group: &Group<'_>, count: u64) -> Result<(), FulfillmentError> {
        let line = self.lines.entry(group.spec.sku.clone()).or_default();
        *line = line.checked_add(count).ok_or(FulfillmentError::Overflow)?;
        let weight = group.weight.checked_mul(count).ok_or(FulfillmentError::Overflow)?;
        let volume = group.volume.checked_mul(count).ok_or(FulfillmentError::Overflow)?;
        self.weight = self.weight.checked_add(weight).ok_or(FulfillmentError::Overflow)?;
        self.volume = self.volume.checked_add(volume).ok_or(FulfillmentError::Overflow)?;
        Ok(())
    }

    fn into_package(self, number: usize, oversize: bool) -> Result<Package, FulfillmentError> {
        let lines = self
            .lines
            .into_iter()
            .map(|(sku, quantity)| {
                Ok(PackedLine {
                    sku,
                    quantity: u32::try_from(quantity).map_err(|_| FulfillmentError::Overflow)?,
                })
            })
            .collect::<Result<Vec<_>, FulfillmentError>>()?;
        let number = u32::try_from(number).map_err(|_| FulfillmentError::TooManyPackages)?;
        Ok(Package {
            number,
            lines,
            weight_grams: self.weight,
            volume_cm3: self.volume,
            oversize,
        })
    }
}

/// Pack units into packages. The rule, simple enough for the dispatch floor to check by hand:
///
/// 1. A unit that `ships_alone`, or that alone exceeds a limit, gets a package of its own; the
///    latter is flagged `oversize`. These packages come first.
/// 2. The other units go first-fit-decreasing by weight: heaviest first, each into the first
///    package where both its weight and its volume still fit, else into a new package.
///
/// Volume is the sum of the units' volumes (boxes are assumed to stack without gaps): a limit on
/// total volume, not a 3-D packing. Ties are broken by volume, then SKU, then the rest of the
/// spec, so the result does not depend on the order of `items`. Zero quantities are skipped.
pub fn pack(items: &[(ShippingSpec, u32)], limits: &PackageLimits) -> Result<Vec<Package>, FulfillmentError> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for (spec, quantity) in items.iter().filter(|(_, q)| *q > 0) {
        groups.push(Group {
            spec,
            weight: u64::from(spec.weight_grams),
            volume: spec.volume_cm3()?,
            count: u64::from(*quantity),
        });
    }
    groups.sort_by(|a, b| {
        let (x, y) = (a.spec, b.spec);
        b.weight
            .cmp(&a.weight)
            .then(b.volume.cmp(&a.volume))
            .then_with(|| x.sku.cmp(&y.sku))
            .then_with(|| {
                (x.length_mm, x.width_mm, x.height_mm, x.ships_alone).cmp(&(
                    y.length_mm,
                    y.width_mm,
                    y.height_mm,
                    y.ships_alone,
                ))
            })
    });

    let mut alone: Vec<(Bin, bool)> = Vec::new();
    let mut bins: Vec<Bin> = Vec::new();
    for group in &groups {
        let oversize = group.weight > limits.max_weight_grams || group.volume > limits.max_volume_cm3;
        if oversize || group.spec.ships_alone {
            let total = usize::try_from(group.count)
                .ok()
                .and_then(|c| c.checked_add(alone.len() + bins.len()));
            if total.is_none_or(|t| t > MAX_PACKAGES) {
                return Err(FulfillmentError::TooManyPackages);
            }
            for _ in 0..group.count {
                let mut bin = Bin::default();
                bin.add(group, 1)?;
                alone.push((bin, oversize));
            }
            continue;
        }
        // Units of one group are identical, so placing them in batches is the same as placing
        // them one by one: once a package has no room for one, it has none for the next.
        let mut remaining = group.count;
        for bin in bins.iter_mut() {
            let take = bin.room_for(group, limits).min(remaining);
            if take > 0 {
                bin.add(group, take)?;
                remaining -= take;
            }
        }
        while remaining > 0 {
            if alone.len() + bins.len() >= MAX_PACKAGES {
                return Err(FulfillmentError::TooManyPackages);
            }
            let mut bin = Bin::default();
            // Not oversize, so an empty package has room for at least one unit.
            let take = bin.room_for(group, limits).max(1).min(remaining);
            bin.add(group, take)?;
            remaining -= take;
            bins.push(bin);
        }
    }

    alone
        .into_iter()
        .chain(bins.into_iter().map(|bin| (bin, false)))
        .enumerate()
        .map(|(i, (bin, oversize))| bin.into_package(i + 1, oversize))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Courier and zone
// ---------------------------------------------------------------------------------------------

/// Lower case, Latin diacritics removed, whitespace collapsed: "  LIMA ", "Lima" and "lima" are
/// one region, and so are "Junín" and "JUNIN", whichever way an agent typed it. Only the Latin
/// letters of Spanish and Portuguese (and a few neighbours) are folded; anything else compares
/// as typed, which is enough for region names.
fn fold(text: &str) -> String {
    let lowered: String = text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    lowered
        .chars()
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
            'ç' | 'ć' | 'č' => 'c',
            'ď' => 'd',
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
            'ğ' => 'g',
            'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => 'i',
            'ł' => 'l',
            'ñ' | 'ń' | 'ň' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
            'ř' => 'r',
            'ś' | 'š' | 'ş' => 's',
            'ť' => 't',
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => 'u',
            'ý' | 'ÿ' => 'y',
            'ź' | 'ż' | 'ž' => 'z',
            other => other,
        })
        .collect()
}

/// Shared by courier and zone rules: the postal code starts with one of the prefixes, or the
/// region is one of the regions. Empty prefixes and regions are ignored, so a blank entry in the
/// config cannot silently match every address.
fn address_matches(address: &Address, regions: &[String], postal_prefixes: &[String]) -> bool {
    let postal = address.postal_code.as_deref().map(str::trim).unwrap_or_default();
    let by_postal = !postal.is_empty()
        && postal_prefixes
            .iter()
            .map(|p| p.trim())
            .any(|p| !p.is_empty() && postal.starts_with(p));
    if by_postal {
        return true;
    }
    let region = fold(&address.region);
    !region.is_empty() && regions.iter().any(|r| fold(r) == region)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourierRule {
    pub courier_id: String,
    /// Matched ignoring case, accents and extra spaces.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Matched against the start of the trimmed postal code ("15" takes 15001…15999).
    #[serde(default)]
    pub postal_prefixes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourierRules {
    /// Evaluated in order; the first rule that matches wins.
    #[serde(default)]
    pub rules: Vec<CourierRule>,
    pub default_courier: String,
}

/// The campaign's courier for an address: the first rule (in order) whose postal prefixes or
/// regions match, else the default. Order is the only precedence, so a campaign that wants a
/// postal-code rule to beat a region rule lists it first.
pub fn choose_courier<'a>(address: &Address, rules: &'a CourierRules) -> &'a str {
    rules
        .rules
        .iter()
        .find(|rule| address_matches(address, &rule.regions, &rule.postal_prefixes))
        .map_or(rules.default_courier.as_str(), |rule| rule.courier_id.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneRule {
    pub zone: String,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub postal_prefixes: Vec<String>,
}

/// A courier's zone for an address: first matching rule (same matching as couriers), else
/// [`DEFAULT_ZONE`].
pub fn zone_for<'a>(address: &Address, rules: &'a [ZoneRule]) -> &'a str {
    rules
        .iter()
        .find(|rule| address_matches(address, &rule.regions, &rule.postal_prefixes))
        .map_or(DEFAULT_ZONE, |rule| rule.zone.as_str())
}

// ---------------------------------------------------------------------------------------------
// Rates
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightBand {
    /// Inclusive: a package of exactly this billable weight is priced by this band.
    pub up_to_grams: u32,
    /// Zone → price in minor units of the table's currency.
    pub prices: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateTable {
    pub courier_id: String,
    pub currency: Currency,
    /// Priced by the lightest band that holds the billable weight (the order in the config does
    /// not matter).
    pub bands: Vec<WeightBand>,
    /// Zone → price per started kg beyond the heaviest band, added to that band's price.
    #[serde(default)]
    pub extra_per_kg: BTreeMap<String, i64>,
    /// Added once per oversize package.
    #[serde(default)]
    pub oversize_surcharge_minor: i64,
    /// cm³ per billable kg (volumetric weight = L × W × H cm / divisor); 0 bills actual weight only.
    #[serde(default = "default_volumetric_divisor")]
    pub volumetric_divisor: u32,
}

fn default_volumetric_divisor() -> u32 {
    DEFAULT_VOLUMETRIC_DIVISOR
}

/// The weight a courier bills: the larger of the actual weight and the volumetric weight, which
/// in grams is `volume_cm3 × 1000 / divisor`, rounded up (5000 cm³ bill as 1 kg by default).
pub fn billable_weight_grams(package: &Package, table: &RateTable) -> u64 {
    if table.volumetric_divisor == 0 {
        return package.weight_grams;
    }
    let volumetric = (u128::from(package.volume_cm3) * 1000).div_ceil(u128::from(table.volumetric_divisor));
    // Beyond u64 grams only the `max` matters, and the band lookup then fails on overflow.
    package.weight_grams.max(u64::try_from(volumetric).unwrap_or(u64::MAX))
}

fn price_in(prices: &BTreeMap<String, i64>, zone: &str, courier: &str) -> Result<i64, FulfillmentError> {
    match prices.get(zone) {
        Some(price) if *price < 0 => Err(FulfillmentError::InvalidConfig(format!(
            "courier {courier} has a negative price for zone {zone}"
        ))),
        Some(price) => Ok(*price),
        None => Err(FulfillmentError::NoRateForZone {
            courier: courier.to_owned(),
            zone: zone.to_owned(),
        }),
    }
}

/// One package's price in minor units: band price for its billable weight and zone, plus per
/// started kg beyond the heaviest band, plus the oversize surcharge.
pub fn package_cost(package: &Package, zone: &str, table: &RateTable) -> Result<i64, FulfillmentError> {
    let courier = table.courier_id.as_str();
    let no_rate = || FulfillmentError::NoRateForZone {
        courier: courier.to_owned(),
        zone: zone.to_owned(),
    };
    let billable = billable_weight_grams(package, table);
    let band = table
        .bands
        .iter()
        .filter(|b| u64::from(b.up_to_grams) >= billable)
        .min_by_key(|b| b.up_to_grams);
    let mut price = match band {
        Some(band) => price_in(&band.prices, zone, courier)?,
        None => {
            let heaviest = table.bands.iter().max_by_key(|b| b.up_to_grams).ok_or_else(no_rate)?;
            let base = price_in(&heaviest.prices, zone, courier)?;
            let per_kg = price_in(&table.extra_per_kg, zone, courier)?;
            let started_kg = (billable - u64::from(heaviest.up_to_grams)).div_ceil(1000);
            let started_kg = i64::try_from(started_kg).map_err(|_| FulfillmentError::Overflow)?;
            per_kg
                .checked_mul(started_kg)
                .and_then(|extra| base.checked_add(extra))
                .ok_or(FulfillmentError::Overflow)?
        }
    };
    if package.oversize {
        if table.oversize_surcharge_minor < 0 {
            return Err(FulfillmentError::InvalidConfig(format!(
                "courier {courier} has a negative oversize surcharge"
            )));
        }
        price = price
            .checked_add(table.oversize_surcharge_minor)
            .ok_or(FulfillmentError::Overflow)?;
    }
    Ok(price)
}

/// The shipping price of all packages to `zone`, in the table's currency. A zone the table does
/// not price is an error, never a free shipment.
pub fn shipping_cost(packages: &[Package], zone: &str, table: &RateTable) -> Result<Money, FulfillmentError> {
    let mut total: i64 = 0;
    for package in packages {
        total = total
            .checked_add(package_cost(package, zone, table)?)
            .ok_or(FulfillmentError::Overflow)?;
    }
    Ok(Money::from_minor(total, table.currency))
}

// ---------------------------------------------------------------------------------------------
// Pickup
// ---------------------------------------------------------------------------------------------

/// The dispatch center's working calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkCalendar {
    /// The dispatch center's IANA zone ("America/Lima"): the cut-off, the local day of a
    /// confirmation and the pickup dates are read on its clock, daylight saving included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<CampaignZone>,
    /// Deprecated: a fixed offset from UTC (−300 for Lima), as calendars written before
    /// `timezone` carry it; read only when there is no `timezone`, and exact only without DST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_offset_minutes: Option<i16>,
    /// Local time ("14:00"); confirmations at or after it count as the next working day's.
    #[serde(default = "default_cutoff", with = "crate::wire::clock")]
    pub cutoff: Time,
    #[serde(default = "default_working_days", with = "crate::wire::weekdays")]
    pub working_days: Vec<Weekday>,
    /// Public holidays kept by rule for every year ("PE": Peru's national holidays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_holidays: Option<PublicHolidays>,
    /// The campaign's own non-working dates ("2026-12-24"), on top of the public holidays.
    #[serde(default, with = "crate::wire::dates")]
    pub holidays: Vec<Date>,
    /// Working days between the dispatch day and the courier's pickup: 1 (the usual) means the
    /// next working day, 0 the same day.
    #[serde(default = "default_pickup_lead")]
    pub pickup_lead_working_days: u8,
}

fn default_cutoff() -> Time {
    time::macros::time!(14:00)
}

fn default_working_days() -> Vec<Weekday> {
    vec![
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
    ]
}

fn default_pickup_lead() -> u8 {
    1
}

impl WorkCalendar {
    /// The calendar's clock: its zone, else its deprecated fixed offset; neither is an error.
    pub fn local_time(&self) -> Result<LocalTime, FulfillmentError> {
        LocalTime::from_config(self.timezone.as_ref(), self.utc_offset_minutes)
            .map_err(|e| FulfillmentError::InvalidConfig(format!("calendar: {}", e.detail)))
    }

    pub fn is_working_day(&self, date: Date) -> bool {
        self.working_days.contains(&date.weekday())
            && !self.holidays.contains(&date)
            && !self.public_holidays.is_some_and(|rule| rule.is_holiday(date))
    }
}

/// When the courier picks up a sale confirmed at `now`.
///
/// In the campaign's local time, the *dispatch day* is today if today is a working day and the
/// time is before the cut-off, else the next working day. The pickup is
/// `pickup_lead_working_days` working days after it. With the usual lead of 1: confirmed before
/// the cut-off → picked up the next working day; at or after it → the working day after that
/// (Friday 15:00 → dispatched Monday → picked up Tuesday). Weekends (days not in
/// `working_days`) and holidays are skipped; if no pickup day turns up within
/// [`PICKUP_SEARCH_DAYS`] days of today, the calendar is unusable and that is an error.
pub fn pickup_date(now: OffsetDateTime, calendar: &WorkCalendar) -> Result<Date, FulfillmentError> {
    let local = calendar.local_time()?.local(now).ok_or(FulfillmentError::Overflow)?;
    let today = local.date();
    let mut day = if local.time() < calendar.cutoff {
        today
    } else {
        today.next_day().ok_or(FulfillmentError::NoWorkingDay)?
    };
    // The dispatch day is the first working day found, the pickup the lead-th after it.
    let mut to_find = u32::from(calendar.pickup_lead_working_days) + 1;
    while (day - today).whole_days() <= i64::from(PICKUP_SEARCH_DAYS) {
        if calendar.is_working_day(day) {
            to_find -= 1;
            if to_find == 0 {
                return Ok(day);
            }
        }
        day = day.next_day().ok_or(FulfillmentError::NoWorkingDay)?;
    }
    Err(FulfillmentError::NoWorkingDay)
}

// ---------------------------------------------------------------------------------------------
// Tracking reference and plan
// ---------------------------------------------------------------------------------------------

/// RFC 4648 base32 without padding: upper case and digits, unambiguous to read over the phone.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// A shipment's tracking reference: the courier's id in upper case (ASCII letters and digits,
/// at most 8) and 16 base32 characters (80 bits) of SHA-256(sale id), e.g. `OLVA-K3Q…`. Derived,
/// not random, so a retried dispatch of the same sale yields the same reference.
pub fn tracking_reference(courier_id: &str, sale_id: &str) -> String {
    let prefix: String = courier_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_ascii_uppercase();
    let prefix = if prefix.is_empty() { "SHP".to_owned() } else { prefix };
    let digest = Sha256::digest(sale_id.as_bytes());
    format!("{prefix}-{}", base32(&digest[..10]))
}

/// A campaign's fulfillment settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FulfillmentConfig {
    #[serde(default)]
    pub limits: PackageLimits,
    pub courier_rules: CourierRules,
    /// Courier → its zone rules; a courier without rules has only [`DEFAULT_ZONE`].
    #[serde(default)]
    pub zones: BTreeMap<String, Vec<ZoneRule>>,
    /// Courier → its rate table.
    pub rates: BTreeMap<String, RateTable>,
    pub calendar: WorkCalendar,
}

impl FulfillmentConfig {
    /// Catch configuration mistakes when the config is saved, not when a sale ships: every
    /// courier the rules can pick has a rate table for itself that prices every zone it can get
    /// (and [`DEFAULT_ZONE`]), with non-negative prices and distinct bands; the calendar has a
    /// zone (or a legacy offset in range) and its lead is in range.
    pub fn validate(&self) -> Result<(), FulfillmentError> {
        let invalid = |detail: String| Err(FulfillmentError::InvalidConfig(detail));
        self.calendar.local_time()?;
        if self.calendar.pickup_lead_working_days > MAX_PICKUP_LEAD_WORKING_DAYS {
            return invalid(format!(
                "pickup_lead_working_days is at most {MAX_PICKUP_LEAD_WORKING_DAYS}"
            ));
        }
        if self.calendar.working_days.is_empty() {
            return invalid("the calendar has no working days".into());
        }
        let couriers = self
            .courier_rules
            .rules
            .iter()
            .map(|r| r.courier_id.as_str())
            .chain([self.courier_rules.default_courier.as_str()]);
        for courier in couriers {
            let table = self
                .rates
                .get(courier)
                .ok_or_else(|| FulfillmentError::NoRateTable(courier.to_owned()))?;
            if table.courier_id != courier {
                return invalid(format!(
                    "the rate table under {courier} is for courier {}",
                    table.courier_id
                ));
            }
            if table.bands.is_empty() {
                return invalid(format!("courier {courier} has no weight bands"));
            }
            let mut limits: Vec<u32> = table.bands.iter().map(|b| b.up_to_grams).collect();
            limits.sort_unstable();
            if limits.windows(2).any(|w| w[0] == w[1]) {
                return invalid(format!("courier {courier} has two bands up to the same weight"));
            }
            let zone_rules = self.zones.get(courier).map(Vec::as_slice).unwrap_or_default();
            let zones = zone_rules.iter().map(|z| z.zone.as_str()).chain([DEFAULT_ZONE]);
            for zone in zones {
                for band in &table.bands {
                    price_in(&band.prices, zone, courier)?;
                }
                price_in(&table.extra_per_kg, zone, courier)?;
            }
            if table.oversize_surcharge_minor < 0 {
                return invalid(format!("courier {courier} has a negative oversize surcharge"));
            }
        }
        Ok(())
    }
}

/// What the dispatch center does with a sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipmentPlan {
    /// "SH-" + sale id: one sale, one shipment, however often dispatch is retried.
    pub shipment_id: ShipmentId,
    pub sale_id: SaleId,
    pub courier_id: String,
    pub zone: String,
    pub packages: Vec<Package>,
    pub shipping_cost: Money,
    #[serde(with = "crate::wire::date")]
    pub pickup_date: Date,
    pub tracking_reference: String,
}

/// Plan the shipment of a confirmed sale: courier by the campaign's rules, zone by that
/// courier's rules, packages by [`pack`], cost by the courier's rate table (which must be in the
/// sale's currency), pickup by the calendar. `specs` is keyed by SKU; the key is authoritative.
pub fn plan_shipment(
    sale: &SaleConfirmed,
    specs: &BTreeMap<String, ShippingSpec>,
    config: &FulfillmentConfig,
    now: OffsetDateTime,
) -> Result<ShipmentPlan, FulfillmentError> {
    let address = &sale.shipping_address;
    let courier = choose_courier(address, &config.courier_rules);
    let table = config
        .rates
        .get(courier)
        .ok_or_else(|| FulfillmentError::NoRateTable(courier.to_owned()))?;
    if table.currency != sale.total.currency() {
        return Err(FulfillmentError::CurrencyMismatch {
            courier: courier.to_owned(),
            sale: sale.total.currency(),
            rates: table.currency,
        });
    }
    let zone = zone_for(
        address,
        config.zones.get(courier).map(Vec::as_slice).unwrap_or_default(),
    );

    // One entry per SKU, even if the sale lists it on two lines.
    let mut quantities: BTreeMap<&str, u32> = BTreeMap::new();
    for item in sale.items.iter().filter(|i| i.quantity > 0) {
        let quantity = quantities.entry(item.sku.as_str()).or_default();
        *quantity = quantity.checked_add(item.quantity).ok_or(FulfillmentError::Overflow)?;
    }
    if quantities.is_empty() {
        return Err(FulfillmentError::NothingToShip);
    }
    let mut items = Vec::with_capacity(quantities.len());
    // Report the first missing SKU in the sale's own order, as the agent and validator saw it.
    for item in &sale.items {
        if !specs.contains_key(&item.sku) {
            return Err(FulfillmentError::MissingShippingSpec(item.sku.clone()));
        }
    }
    for (sku, quantity) in quantities {
        let spec = specs
            .get(sku)
            .ok_or_else(|| FulfillmentError::MissingShippingSpec(sku.to_owned()))?;
        items.push((
            ShippingSpec {
                sku: sku.to_owned(),
                ..spec.clone()
            },
            quantity,
        ));
    }

    let packages = pack(&items, &config.limits)?;
    let shipping_cost = shipping_cost(&packages, zone, table)?;
    let pickup_date = pickup_date(now, &config.calendar)?;
    Ok(ShipmentPlan {
        shipment_id: ShipmentId::of(&sale.sale_id),
        sale_id: sale.sale_id.clone(),
        courier_id: courier.to_owned(),
        zone: zone.to_owned(),
        packages,
        shipping_cost,
        pickup_date,
        tracking_reference: tracking_reference(courier, sale.sale_id.as_str()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presale::LineItem;
    use time::macros::{date, datetime, time};

    fn pen() -> Currency {
        Currency::parse("PEN").expect("PEN")
    }

    fn spec(sku: &str, weight_grams: u32, dims_mm: (u32, u32, u32)) -> ShippingSpec {
        ShippingSpec {
            sku: sku.into(),
            weight_grams,
            length_mm: dims_mm.0,
            width_mm: dims_mm.1,
            height_mm: dims_mm.2,
            ships_alone: false,
        }
    }

    fn small(sku: &str, weight_grams: u32) -> ShippingSpec {
        spec(sku, weight_grams, (100, 100, 100)) // 1000 cm³
    }

    /// (sku, quantity) lines of each package.
    fn contents(packages: &[Package]) -> Vec<Vec<(String, u32)>> {
        packages
            .iter()
            .map(|p| p.lines.iter().map(|l| (l.sku.clone(), l.quantity)).collect())
            .collect()
    }

    fn lines(list: &[(&str, u32)]) -> Vec<(String, u32)> {
        list.iter().map(|(s, q)| ((*s).to_owned(), *q)).collect()
    }

    fn address(region: &str, postal_code: Option<&str>) -> Address {
        Address {
            line1: "Av. Sol 1".into(),
            line2: None,
            district: "Lince".into(),
            province: "Lima".into(),
            region: region.into(),
            postal_code: postal_code.map(Into::into),
            country: "PE".into(),
            reference: None,
        }
    }

    fn package(weight_grams: u64, volume_cm3: u64, oversize: bool) -> Package {
        Package {
            number: 1,
            lines: vec![PackedLine {
                sku: "X".into(),
                quantity: 1,
            }],
            weight_grams,
            volume_cm3,
            oversize,
        }
    }

    fn table() -> RateTable {
        let mut config = crate::testing::fulfillment_config();
        config.rates.remove("olva").expect("seed olva")
    }

    fn zone(name: &str) -> Option<CampaignZone> {
        Some(CampaignZone::parse(name).expect("a zone"))
    }

    fn lima_calendar() -> WorkCalendar {
        WorkCalendar {
            timezone: zone("America/Lima"),
            utc_offset_minutes: None,
            cutoff: time!(14:00),
            working_days: default_working_days(),
            public_holidays: None,
            holidays: vec![],
            pickup_lead_working_days: 1,
        }
    }

    // --- packing -------------------------------------------------------------------------------

    #[test]
    fn volume_rounds_up_and_never_overflows() {
        assert_eq!(spec("A", 1, (100, 100, 100)).volume_cm3(), Ok(1000));
        assert_eq!(spec("A", 1, (1, 1, 1)).volume_cm3(), Ok(1));
        assert_eq!(spec("A", 1, (0, 5, 5)).volume_cm3(), Ok(0));
        assert_eq!(
            spec("A", 1, (u32::MAX, u32::MAX, u32::MAX)).volume_cm3(),
            Err(FulfillmentError::Overflow)
        );
    }

    #[test]
    fn ships_alone_units_get_a_package_each_first() {
        let tv = ShippingSpec {
            ships_alone: true,
            ..spec("TV", 8_000, (800, 150, 500))
        };
        let packages = pack(&[(small("CABLE", 200), 3), (tv, 2)], &PackageLimits::default()).expect("packs");
        assert_eq!(
            contents(&packages),
            vec![lines(&[("TV", 1)]), lines(&[("TV", 1)]), lines(&[("CABLE", 3)])]
        );
        assert_eq!(packages.iter().map(|p| p.number).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(packages.iter().all(|p| !p.oversize));
        assert_eq!((packages[0].weight_grams, packages[0].volume_cm3), (8_000, 60_000));
        assert_eq!((packages[2].weight_grams, packages[2].volume_cm3), (600, 3_000));
    }

    #[test]
    fn first_fit_decreasing_by_weight() {
        // 10 kg limit: 7, 5, 4, 3, 1 kg → [7+3], [5+4+1] (the 3 kg goes back into the first box).
        let limits = PackageLimits {
            max_weight_grams: 10_000,
            max_volume_cm3: 60_000,
        };
        let items = [
            (small("D", 4_000), 1),
            (small("A", 7_000), 1),
            (small("E", 1_000), 1),
            (small("B", 5_000), 1),
            (small("C", 3_000), 1),
        ];
        let packages = pack(&items, &limits).expect("packs");
        assert_eq!(
            contents(&packages),
            vec![lines(&[("A", 1), ("C", 1)]), lines(&[("B", 1), ("D", 1), ("E", 1)])]
        );
        assert_eq!(
            packages.iter().map(|p| p.weight_grams).collect::<Vec<_>>(),
            vec![10_000, 10_000]
        );
    }

    #[test]
    fn quantities_split_over_packages_by_weight() {
        // 20 kg limit, 25 units of 1.5 kg: 13 fit in one package (19.5 kg), 12 in the next.
        let packages = pack(&[(small("RICE", 1_500), 25)], &PackageLimits::default()).expect("packs");
        assert_eq!(
            contents(&packages),
            vec![lines(&[("RICE", 13)]), lines(&[("RICE", 12)])]
        );
        assert_eq!((packages[0].weight_grams, packages[1].weight_grams), (19_500, 18_000));
        // Exactly at the limit fits.
        let packages = pack(&[(small("BAG", 5_000), 4)], &PackageLimits::default()).expect("packs");
        assert_eq!(contents(&packages), vec![lines(&[("BAG", 4)])]);
    }

    #[test]
    fn volume_limit_applies_too() {
        // Light but bulky: 25 000 cm³ each, 60 000 cm³ limit → 2 per package.
        let pillow = spec("PILLOW", 500, (500, 500, 100));
        let packages = pack(&[(pillow, 5)], &PackageLimits::default()).expect("packs");
        assert_eq!(
            contents(&packages),
            vec![
                lines(&[("PILLOW", 2)]),
                lines(&[("PILLOW", 2)]),
                lines(&[("PILLOW", 1)])
            ]
        );
        assert_eq!(packages[0].volume_cm3, 50_000);
        // Lighter items fill the space a bulky one leaves.
        let items = [(spec("PILLOW", 500, (500, 500, 100)), 2), (small("SOCKS", 100), 12)];
        let packages = pack(&items, &PackageLimits::default()).expect("packs");
        assert_eq!(
            contents(&packages),
            vec![lines(&[("PILLOW", 2), ("SOCKS", 10)]), lines(&[("SOCKS", 2)])]
        );
        assert_eq!(packages[0].volume_cm3, 60_000);
    }

    #[test]
    fn oversize_units_ship_alone_and_are_flagged() {
        let heavy = small("ANVIL", 25_000);
        let long = spec("LADDER", 3_000, (2000, 400, 100)); // 80 000 cm³
        let packages = pack(
            &[(small("CABLE", 200), 1), (heavy, 2), (long, 1)],
            &PackageLimits::default(),
        )
        .expect("packs");
        assert_eq!(
            contents(&packages),
            vec![
                lines(&[("ANVIL", 1)]),
                lines(&[("ANVIL", 1)]),
                lines(&[("LADDER", 1)]),
                lines(&[("CABLE", 1)])
            ]
        );
        assert_eq!(
            packages.iter().map(|p| p.oversize).collect::<Vec<_>>(),
            vec![true, true, true, false]
        );
        // An oversize unit that also ships alone is still flagged.
        let crate_ = ShippingSpec {
            ships_alone: true,
            ..small("CRATE", 30_000)
        };
        assert!(pack(&[(crate_, 1)], &PackageLimits::default()).expect("packs")[0].oversize);
    }

    #[test]
    fn packing_is_deterministic_whatever_the_input_order() {
        let items = vec![
            (small("B", 3_000), 2),
            (small("A", 3_000), 1),
            (spec("C", 3_000, (200, 100, 100)), 1),
            (
                ShippingSpec {
                    ships_alone: true,
                    ..small("Z", 100)
                },
                1,
            ),
            (
                ShippingSpec {
                    ships_alone: true,
                    ..small("Y", 100)
                },
                1,
            ),
            (small("E", 9_000), 3),
            (small("F", 0), 4),
            (small("G", 1), 0),
        ];
        let expected = pack(&items, &PackageLimits::default()).expect("packs");
        let mut reversed = items.clone();
        reversed.reverse();
        assert_eq!(pack(&reversed, &PackageLimits::default()).expect("packs"), expected);
        let mut rotated = items.clone();
        rotated.rotate_left(3);
        assert_eq!(pack(&rotated, &PackageLimits::default()).expect("packs"), expected);
        // Heaviest first, ties by volume then SKU; zero-quantity lines vanish; zero-weight units
        // go into the first package with room.
        assert_eq!(
            contents(&expected),
            vec![
                lines(&[("Y", 1)]),
                lines(&[("Z", 1)]),
                lines(&[("E", 2), ("F", 4)]),
                lines(&[("A", 1), ("B", 1), ("C", 1), ("E", 1)]),
                lines(&[("B", 1)]),
            ]
        );
        assert!(pack(&[], &PackageLimits::default()).expect("empty").is_empty());
    }

    #[test]
    fn absurd_quantities_are_refused_not_looped_over() {
        let grain = small("GRAIN", 1);
        // 20 000 per package by weight, but 60 by volume: u32::MAX units need millions of boxes.
        assert_eq!(
            pack(&[(grain, u32::MAX)], &PackageLimits::default()),
            Err(FulfillmentError::TooManyPackages)
        );
        let alone = ShippingSpec {
            ships_alone: true,
            ..small("TV", 1)
        };
        assert_eq!(
            pack(&[(alone.clone(), u32::MAX)], &PackageLimits::default()),
            Err(FulfillmentError::TooManyPackages)
        );
        assert_eq!(
            pack(&[(alone, MAX_PACKAGES as u32)], &PackageLimits::default()).map(|p| p.len()),
            Ok(MAX_PACKAGES)
        );
        // Weightless, volumeless units all fit in one package.
        let packages = pack(&[(spec("EBOOK", 0, (0, 0, 0)), u32::MAX)], &PackageLimits::default()).expect("packs");
        assert_eq!(contents(&packages), vec![lines(&[("EBOOK", u32::MAX)])]);
    }

    // --- courier and zone ----------------------------------------------------------------------

    #[test]
    fn region_match_ignores_case_accents_and_spaces() {
        let rules = crate::testing::fulfillment_config().courier_rules;
        for region in ["Lima", "LIMA", "lima", " Líma ", "CALLAO", "callao"] {
            assert_eq!(choose_courier(&address(region, None), &rules), "urbano", "{region}");
        }
        for region in ["Arequipa", "Lima Provincias", "", "Limaa"] {
            assert_eq!(choose_courier(&address(region, None), &rules), "olva", "{region}");
        }
        assert_eq!(fold("  JUNÍN  "), "junin");
        assert_eq!(fold("Áncash"), fold("ancash"));
        assert_eq!(fold("San   Martín"), "san martin");
        assert_eq!(fold("Madre de DIOS"), "madre de dios");
    }

    #[test]
    fn postal_prefix_matches_and_rules_go_in_order() {
        let rules = crate::testing::fulfillment_config().courier_rules;
        // A Lima postal code with a misspelt region still goes to the Lima courier.
        assert_eq!(choose_courier(&address("Lma", Some("15046")), &rules), "urbano");
        assert_eq!(choose_courier(&address("?", Some(" 07001 ")), &rules), "urbano");
        assert_eq!(choose_courier(&address("Cusco", Some("08002")), &rules), "olva");
        assert_eq!(choose_courier(&address("Cusco", Some("")), &rules), "olva");
        let ordered = CourierRules {
            rules: vec![
                CourierRule {
                    courier_id: "by-postal".into(),
                    regions: vec![],
                    postal_prefixes: vec!["150".into()],
                },
                CourierRule {
                    courier_id: "by-region".into(),
                    regions: vec!["Lima".into()],
                    postal_prefixes: vec![],
                },
                CourierRule {
                    courier_id: "blank".into(),
                    regions: vec![" ".into()],
                    postal_prefixes: vec!["".into(), " ".into()],
                },
            ],
            default_courier: "fallback".into(),
        };
        assert_eq!(choose_courier(&address("Lima", Some("15001")), &ordered), "by-postal");
        assert_eq!(choose_courier(&address("Lima", Some("15101")), &ordered), "by-region");
        // Blank config entries match nothing, not everything.
        assert_eq!(choose_courier(&address("Piura", Some("20001")), &ordered), "fallback");
        assert_eq!(choose_courier(&address(" ", None), &ordered), "fallback");
        let none = CourierRules {
            rules: vec![],
            default_courier: "solo".into(),
        };
        assert_eq!(choose_courier(&address("Lima", Some("15001")), &none), "solo");
    }

    #[test]
    fn zones_by_courier() {
        let config = crate::testing::fulfillment_config();
        let olva = config.zones.get("olva").map(Vec::as_slice).unwrap_or_default();
        assert_eq!(zone_for(&address("LIMA", None), olva), "LIMA_METRO");
        assert_eq!(zone_for(&address("arequipa", None), olva), "COAST");
        assert_eq!(zone_for(&address("Ancash", None), olva), "COAST");
        assert_eq!(zone_for(&address("JUNIN", None), olva), "HIGHLANDS_JUNGLE");
        assert_eq!(zone_for(&address("San Martin", None), olva), "HIGHLANDS_JUNGLE");
        assert_eq!(zone_for(&address("Atlantis", None), olva), DEFAULT_ZONE);
        assert_eq!(zone_for(&address("Cusco", None), &[]), DEFAULT_ZONE);
    }

    // --- rates ---------------------------------------------------------------------------------

    #[test]
    fn bands_are_inclusive_at_their_upper_bound() {
        let t = table();
        for (grams, lima, coast) in [
            (0, 1000, 1500),
            (1, 1000, 1500),
            (1_000, 1000, 1500),
            (1_001, 1400, 2200),
            (3_000, 1400, 2200),
            (5_000, 1800, 2900),
            (10_000, 2500, 4200),
        ] {
            assert_eq!(
                package_cost(&package(grams, 0, false), "LIMA_METRO", &t),
                Ok(lima),
                "{grams} g"
            );
            assert_eq!(
                package_cost(&package(grams, 0, false), "COAST", &t),
                Ok(coast),
                "{grams} g"
            );
        }
        // The order of bands in the config does not matter.
        let mut shuffled = table();
        shuffled.bands.reverse();
        assert_eq!(
            package_cost(&package(2_500, 0, false), "LIMA_METRO", &shuffled),
            Ok(1400)
        );
    }

    #[test]
    fn beyond_the_last_band_each_started_kg_costs_extra() {
        let t = table();
        // Heaviest band 10 kg at 25.00 + 2.00 per started kg in LIMA_METRO.
        for (grams, price) in [
            (10_001, 2700),
            (11_000, 2700),
            (11_001, 2900),
            (19_000, 4300),
            (19_001, 4500),
            (20_000, 4500),
        ] {
            assert_eq!(
                package_cost(&package(grams, 0, false), "LIMA_METRO", &t),
                Ok(price),
                "{grams} g"
            );
        }
        let mut no_extra = table();
        no_extra.extra_per_kg.remove("COAST");
        assert_eq!(package_cost(&package(9_000, 0, false), "COAST", &no_extra), Ok(4200));
        assert_eq!(
            package_cost(&package(12_000, 0, false), "COAST", &no_extra),
            Err(FulfillmentError::NoRateForZone {
                courier: "olva".into(),
                zone: "COAST".into()
            })
        );
        let mut huge = table();
        huge.extra_per_kg.insert("LIMA_METRO".into(), i64::MAX);
        assert_eq!(
            package_cost(&package(12_000, 0, false), "LIMA_METRO", &huge),
            Err(FulfillmentError::Overflow)
        );
    }

    #[test]
    fn volumetric_weight_wins_when_larger() {
        let t = table();
        // 20 000 cm³ / 5000 = 4 kg billable although it weighs 500 g.
        let bulky = package(500, 20_000, false);
        assert_eq!(billable_weight_grams(&bulky, &t), 4_000);
        assert_eq!(package_cost(&bulky, "LIMA_METRO", &t), Ok(1800));
        // Rounded up: 5001 cm³ bills 1000.2 g → 1001 g, just over the first band.
        assert_eq!(billable_weight_grams(&package(0, 5_001, false), &t), 1_001);
        assert_eq!(billable_weight_grams(&package(2_000, 5_000, false), &t), 2_000);
        let mut actual_only = table();
        actual_only.volumetric_divisor = 0;
        assert_eq!(billable_weight_grams(&bulky, &actual_only), 500);
        let mut air = table();
        air.volumetric_divisor = 6000;
        assert_eq!(billable_weight_grams(&package(0, 6_000, false), &air), 1_000);
        assert_eq!(
            billable_weight_grams(&package(0, u64::MAX, false), &air),
            u64::MAX / 6 + 1
        );
    }

    #[test]
    fn oversize_packages_pay_a_surcharge_and_costs_add_up() {
        let t = table();
        let packages = [
            package(800, 0, false),
            package(25_000, 0, true),
            package(2_000, 0, false),
        ];
        // 10.00 + (25.00 + 15 × 2.00 + 25.00) + 14.00
        assert_eq!(
            shipping_cost(&packages, "LIMA_METRO", &t),
            Ok(Money::from_minor(1000 + 8000 + 1400, pen()))
        );
        assert_eq!(shipping_cost(&[], "LIMA_METRO", &t), Ok(Money::zero(pen())));
        let mut max = table();
        max.oversize_surcharge_minor = i64::MAX;
        assert_eq!(
            shipping_cost(&packages, "LIMA_METRO", &max),
            Err(FulfillmentError::Overflow)
        );
        max.oversize_surcharge_minor = -1;
        assert!(matches!(
            shipping_cost(&packages, "LIMA_METRO", &max),
            Err(FulfillmentError::InvalidConfig(_))
        ));
    }

    #[test]
    fn unknown_zones_and_bad_prices_are_errors() {
        let t = table();
        assert_eq!(
            shipping_cost(&[package(100, 0, false)], "MARS", &t),
            Err(FulfillmentError::NoRateForZone {
                courier: "olva".into(),
                zone: "MARS".into()
            })
        );
        let mut empty = table();
        empty.bands.clear();
        assert_eq!(
            shipping_cost(&[package(100, 0, false)], "COAST", &empty),
            Err(FulfillmentError::NoRateForZone {
                courier: "olva".into(),
                zone: "COAST".into()
            })
        );
        let mut negative = table();
        negative.bands[0].prices.insert("COAST".into(), -1);
        assert!(matches!(
            shipping_cost(&[package(100, 0, false)], "COAST", &negative),
            Err(FulfillmentError::InvalidConfig(_))
        ));
        let mut sum = table();
        sum.bands[0].prices.insert("COAST".into(), i64::MAX);
        assert_eq!(
            shipping_cost(&[package(100, 0, false), package(100, 0, false)], "COAST", &sum),
            Err(FulfillmentError::Overflow)
        );
    }

    // --- pickup --------------------------------------------------------------------------------

    #[test]
    fn before_the_cutoff_next_working_day_after_it_the_one_after() {
        let c = lima_calendar();
        // 2026-11-23 is a Monday. 13:59 Lima = 18:59 UTC.
        assert_eq!(
            pickup_date(datetime!(2026-11-23 13:59:59 -5), &c),
            Ok(date!(2026 - 11 - 24))
        );
        assert_eq!(
            pickup_date(datetime!(2026-11-23 18:59 UTC), &c),
            Ok(date!(2026 - 11 - 24))
        );
        // The cut-off itself is already late.
        assert_eq!(
            pickup_date(datetime!(2026-11-23 14:00 -5), &c),
            Ok(date!(2026 - 11 - 25))
        );
        assert_eq!(
            pickup_date(datetime!(2026-11-23 23:59 -5), &c),
            Ok(date!(2026 - 11 - 25))
        );
        assert_eq!(
            pickup_date(datetime!(2026-11-23 00:00 -5), &c),
            Ok(date!(2026 - 11 - 24))
        );
    }

    #[test]
    fn public_holidays_are_kept_by_rule_in_years_no_list_names() {
        let peru = WorkCalendar {
            public_holidays: Some(PublicHolidays::Peru),
            ..lima_calendar()
        };
        // Wednesday 24 March 2027 after the cut-off: Thursday 25 and Friday 26 are Holy Thursday
        // and Good Friday, so the next working day is Monday 29 and the pickup Tuesday 30.
        assert_eq!(
            pickup_date(datetime!(2027-03-24 15:00 -5), &peru),
            Ok(date!(2027 - 03 - 30))
        );
        assert_eq!(
            pickup_date(datetime!(2027-03-24 15:00 -5), &lima_calendar()),
            Ok(date!(2027 - 03 - 26))
        );
        // The same rule in 2031, and a campaign's own addition on top of it.
        let own = WorkCalendar {
            holidays: vec![date!(2031 - 12 - 26)],
            ..peru.clone()
        };
        assert!(!own.is_working_day(date!(2031 - 12 - 25)) && !own.is_working_day(date!(2031 - 12 - 26)));
        assert!(own.is_working_day(date!(2031 - 12 - 29)));
    }

    #[test]
    fn weekends_are_skipped() {
        let c = lima_calendar();
        // Friday 2026-11-27: before the cut-off → Monday; after → dispatched Monday, picked up Tuesday.
        assert_eq!(
            pickup_date(datetime!(2026-11-27 10:00 -5), &c),
            Ok(date!(2026 - 11 - 30))
        );
        assert_eq!(
            pickup_date(datetime!(2026-11-27 15:00 -5), &c),
            Ok(date!(2026 - 12 - 01))
        );
        // Saturday or Sunday, any time: dispatched Monday, picked up Tuesday.
        assert_eq!(
            pickup_date(datetime!(2026-11-28 09:00 -5), &c),
            Ok(date!(2026 - 12 - 01))
        );
        assert_eq!(
            pickup_date(datetime!(2026-11-29 18:00 -5), &c),
            Ok(date!(2026 - 12 - 01))
        );
        // A courier that picks up on the dispatch day (lead 0): Friday after the cut-off → Monday.
        let same_day = WorkCalendar {
            pickup_lead_working_days: 0,
            ..lima_calendar()
        };
        assert_eq!(
            pickup_date(datetime!(2026-11-27 15:00 -5), &same_day),
            Ok(date!(2026 - 11 - 30))
        );
        assert_eq!(
            pickup_date(datetime!(2026-11-27 10:00 -5), &same_day),
            Ok(date!(2026 - 11 - 27))
        );
    }

    #[test]
    fn saturday_can_be_a_working_day() {
        let mut c = lima_calendar();
        c.working_days.push(Weekday::Saturday);
        assert_eq!(
            pickup_date(datetime!(2026-11-27 10:00 -5), &c),
            Ok(date!(2026 - 11 - 28))
        );
        assert_eq!(
            pickup_date(datetime!(2026-11-27 15:00 -5), &c),
            Ok(date!(2026 - 11 - 30))
        );
        assert_eq!(
            pickup_date(datetime!(2026-11-28 10:00 -5), &c),
            Ok(date!(2026 - 11 - 30))
        );
    }

    #[test]
    fn holidays_are_skipped() {
        let c = crate::testing::fulfillment_config().calendar;
        // Mon 2026-12-07 before the cut-off: 8 and 9 December are holidays → Thursday 10th.
        assert_eq!(
            pickup_date(datetime!(2026-12-07 10:00 -5), &c),
            Ok(date!(2026 - 12 - 10))
        );
        // Thu 2026-12-24 after the cut-off: 25th holiday, weekend → dispatched Mon 28th, picked up Tue 29th.
        assert_eq!(
            pickup_date(datetime!(2026-12-24 16:00 -5), &c),
            Ok(date!(2026 - 12 - 29))
        );
        // Confirmed on a holiday morning counts as the next working day's.
        assert_eq!(
            pickup_date(datetime!(2026-12-08 09:00 -5), &c),
            Ok(date!(2026 - 12 - 11))
        );
        assert_eq!(
            pickup_date(datetime!(2026-12-31 10:00 -5), &c),
            Ok(date!(2027 - 01 - 04))
        );
    }

    #[test]
    fn local_date_is_the_campaigns_not_utcs() {
        let c = lima_calendar();
        // Tue 2026-11-24 03:00 UTC is still Monday 22:00 in Lima: after Monday's cut-off → Wednesday.
        assert_eq!(
            pickup_date(datetime!(2026-11-24 03:00 UTC), &c),
            Ok(date!(2026 - 11 - 25))
        );
        // With a late cut-off the local date decides. Tue 03:00 UTC is Mon 22:00 in Lima, before a
        // 23:00 cut-off: dispatched Monday, picked up Tuesday (a UTC reading would say Wednesday).
        let late = WorkCalendar {
            cutoff: time!(23:00),
            ..lima_calendar()
        };
        assert_eq!(
            pickup_date(datetime!(2026-11-24 03:00 UTC), &late),
            Ok(date!(2026 - 11 - 24))
        );
        // Sat 02:00 UTC is Fri 21:00 in Lima: dispatched Friday, picked up Monday, not Tuesday.
        assert_eq!(
            pickup_date(datetime!(2026-11-28 02:00 UTC), &late),
            Ok(date!(2026 - 11 - 30))
        );
        let utc = WorkCalendar {
            timezone: zone("UTC"),
            ..late
        };
        assert_eq!(
            pickup_date(datetime!(2026-11-28 02:00 UTC), &utc),
            Ok(date!(2026 - 12 - 01))
        );
        for bad in [
            WorkCalendar {
                timezone: None,
                utc_offset_minutes: Some(i16::MAX),
                ..lima_calendar()
            },
            WorkCalendar {
                timezone: None,
                utc_offset_minutes: None,
                ..lima_calendar()
            },
        ] {
            assert!(matches!(
                pickup_date(datetime!(2026-11-27 18:00 UTC), &bad),
                Err(FulfillmentError::InvalidConfig(_))
            ));
        }
    }

    #[test]
    fn lima_evenings_are_dispatched_on_lima_s_day() {
        // An evening shift's cut-off. 19:00 to 23:59 on Monday 23 November in Lima are 00:00 to
        // 04:59 UTC on Tuesday: before the cut-off they are Monday's sales (picked up Tuesday);
        // a UTC reading would call them Tuesday's, picked up Wednesday.
        let evening = WorkCalendar {
            cutoff: time!(23:00),
            ..lima_calendar()
        };
        let utc = WorkCalendar {
            timezone: zone("UTC"),
            ..evening.clone()
        };
        for minutes in (0..5 * 60).step_by(15) {
            let at = datetime!(2026-11-24 00:00 UTC) + time::Duration::minutes(minutes);
            let expected = if minutes < 4 * 60 {
                date!(2026 - 11 - 24)
            } else {
                date!(2026 - 11 - 25)
            };
            assert_eq!(pickup_date(at, &evening), Ok(expected), "{at}");
            assert_eq!(pickup_date(at, &utc), Ok(date!(2026 - 11 - 25)), "{at}");
        }
    }

    #[test]
    fn the_cutoff_follows_daylight_saving_time() {
        // Santiago is UTC−3 in January and UTC−4 in July; 17:30 UTC is 14:30 on a summer Monday
        // (after the 14:00 cut-off: picked up Wednesday) but 13:30 on a winter one (before it:
        // picked up Tuesday). Each fixed offset is an hour wrong for half the year.
        let santiago = WorkCalendar {
            timezone: zone("America/Santiago"),
            ..lima_calendar()
        };
        let fixed = |minutes| WorkCalendar {
            timezone: None,
            utc_offset_minutes: Some(minutes),
            ..lima_calendar()
        };
        let (summer, winter) = (datetime!(2026-01-12 17:30 UTC), datetime!(2026-07-13 17:30 UTC));
        assert_eq!(pickup_date(summer, &santiago), Ok(date!(2026 - 01 - 14)));
        assert_eq!(pickup_date(winter, &santiago), Ok(date!(2026 - 07 - 14)));
        assert_eq!(pickup_date(summer, &fixed(-240)), Ok(date!(2026 - 01 - 13)), "wrong");
        assert_eq!(pickup_date(winter, &fixed(-180)), Ok(date!(2026 - 07 - 15)), "wrong");

        // New York moves to UTC−4 on Sunday 8 March 2026. 18:30 UTC is 13:30 on Friday the 6th
        // (before the cut-off: picked up Monday) and 14:30 on Monday the 9th (after it: picked up
        // Wednesday, where UTC−5 all year would say Tuesday).
        let new_york = WorkCalendar {
            timezone: zone("America/New_York"),
            ..lima_calendar()
        };
        assert_eq!(
            pickup_date(datetime!(2026-03-06 18:30 UTC), &new_york),
            Ok(date!(2026 - 03 - 09))
        );
        assert_eq!(
            pickup_date(datetime!(2026-03-09 18:30 UTC), &new_york),
            Ok(date!(2026 - 03 - 11))
        );
        assert_eq!(
            pickup_date(datetime!(2026-03-09 18:30 UTC), &fixed(-300)),
            Ok(date!(2026 - 03 - 10)),
            "wrong"
        );
    }

    #[test]
    fn a_legacy_offset_calendar_still_works_and_the_zone_wins_over_it() {
        // Calendars stored before `timezone` carry only the offset, and still read as before.
        let legacy: WorkCalendar = serde_json::from_value(serde_json::json!({
            "utc_offset_minutes": -300, "cutoff": "14:00", "working_days": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]
        }))
        .expect("a legacy calendar");
        assert_eq!(
            legacy.local_time(),
            Ok(LocalTime::FixedOffset(time::macros::offset!(-5)))
        );
        for at in [
            datetime!(2026-11-23 13:59:59 -5),
            datetime!(2026-11-23 14:00 -5),
            datetime!(2026-11-24 03:00 UTC),
            datetime!(2026-11-27 15:00 -5),
        ] {
            assert_eq!(pickup_date(at, &legacy), pickup_date(at, &lima_calendar()), "{at}");
        }
        // It is written back as it was read, without a zone it never had.
        let json = serde_json::to_value(&legacy).expect("serialize");
        assert_eq!(
            (json["utc_offset_minutes"].as_i64(), json.get("timezone")),
            (Some(-300), None)
        );

        // Both present: the zone decides (Santiago's summer UTC−3, not the −240 beside it).
        let both = WorkCalendar {
            timezone: zone("America/Santiago"),
            utc_offset_minutes: Some(-240),
            ..lima_calendar()
        };
        assert_eq!(
            pickup_date(datetime!(2026-01-12 17:30 UTC), &both),
            Ok(date!(2026 - 01 - 14))
        );
    }

    #[test]
    fn a_calendar_without_working_days_is_an_error_not_a_hang() {
        let none = WorkCalendar {
            working_days: vec![],
            ..lima_calendar()
        };
        assert_eq!(
            pickup_date(datetime!(2026-11-23 10:00 -5), &none),
            Err(FulfillmentError::NoWorkingDay)
        );
        // Every day of the search window a holiday.
        let start = date!(2026 - 11 - 23);
        let all: Vec<Date> = (0..=i64::from(PICKUP_SEARCH_DAYS))
            .map(|d| start + time::Duration::days(d))
            .collect();
        let blocked = WorkCalendar {
            holidays: all.clone(),
            ..lima_calendar()
        };
        assert_eq!(
            pickup_date(datetime!(2026-11-23 10:00 -5), &blocked),
            Err(FulfillmentError::NoWorkingDay)
        );
        // A long holiday shorter than the window still finds its way out.
        let long = WorkCalendar {
            holidays: all[..50].to_vec(),
            ..lima_calendar()
        };
        let found = pickup_date(datetime!(2026-11-23 10:00 -5), &long).expect("found");
        assert!(found > start + time::Duration::days(50) && long.is_working_day(found));
        // The end of time is an error, not a panic.
        assert_eq!(
            pickup_date(
                datetime!(9999-12-31 23:00 UTC),
                &WorkCalendar {
                    timezone: None,
                    utc_offset_minutes: Some(0),
                    ..lima_calendar()
                }
            ),
            Err(FulfillmentError::NoWorkingDay)
        );
        assert!(pickup_date(datetime!(9999-12-31 23:00 UTC), &lima_calendar()).is_err());
    }

    // --- tracking ------------------------------------------------------------------------------

    #[test]
    fn base32_matches_rfc_4648() {
        for (input, expected) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), expected, "{input}");
        }
    }

    #[test]
    fn tracking_reference_is_deterministic() {
        let a = tracking_reference("olva", "S-0192");
        assert_eq!(a, tracking_reference("olva", "S-0192"));
        assert_ne!(a, tracking_reference("olva", "S-0193"));
        assert!(a.starts_with("OLVA-") && a.len() == 5 + 16, "{a}");
        assert!(
            a[5..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)),
            "{a}"
        );
        // The suffix depends on the sale only; the prefix is sanitised.
        assert_eq!(
            tracking_reference("urbano-express", "S-0192")
                .split_once('-')
                .map(|(p, _)| p.to_owned()),
            Some("URBANOEX".into())
        );
        assert_eq!(tracking_reference("urbano", "S-0192")[7..], a[5..]);
        assert!(tracking_reference("--", "S-0192").starts_with("SHP-"));
        // SHA-256("abc") starts ba 78 16 bf 8f 01 cf ea 41 41.
        assert_eq!(
            tracking_reference("olva", "abc"),
            format!(
                "OLVA-{}",
                base32(&[0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41])
            )
        );
    }

    // --- plan ----------------------------------------------------------------------------------

    fn sale(region: &str, items: &[(&str, u32)]) -> SaleConfirmed {
        let line = |(sku, quantity): &(&str, u32)| LineItem {
            sku: (*sku).into(),
            name: sku.to_lowercase(),
            quantity: *quantity,
            unit_price: Money::from_minor(14990, pen()),
            line_total: Money::from_minor(14990 * i64::from(*quantity), pen()),
        };
        let items: Vec<LineItem> = items.iter().map(line).collect();
        let total = Money::sum(pen(), items.iter().map(|i| i.line_total)).expect("total");
        let presale_id =
            crate::presale::PresaleId::parse("0192aa3c-7d1e-7b4f-9c3a-5e8f1d2c4b6a").expect("a pre-sale id");
        SaleConfirmed {
            sale_id: SaleId::of(&presale_id),
            presale_id,
            client_id: "acme".into(),
            campaign_id: "c1".into(),
            agent_id: "agent-7".into(),
            validator_id: "val-1".into(),
            customer: crate::testing::customer(),
            shipping_address: address(region, None),
            items,
            total,
            confirmed_at: datetime!(2026-11-23 16:00 UTC),
        }
    }

    fn specs() -> BTreeMap<String, ShippingSpec> {
        [
            spec("ROUTER", 800, (250, 180, 60)),     // 2 700 cm³
            spec("TV-55", 16_000, (1300, 200, 800)), // 208 000 cm³: oversize
            spec("DECO", 400, (200, 150, 50)),       // 1 500 cm³
        ]
        .into_iter()
        .map(|s| (s.sku.clone(), s))
        .collect()
    }

    #[test]
    fn full_plan_for_a_lima_sale() {
        let config = crate::testing::fulfillment_config();
        let sale = sale("Lima", &[("ROUTER", 1), ("DECO", 2), ("ROUTER", 1)]);
        // Monday 11:00 in Lima, before the cut-off.
        let plan = plan_shipment(&sale, &specs(), &config, datetime!(2026-11-23 16:00 UTC)).expect("plan");
        assert_eq!(plan.shipment_id.as_str(), format!("SH-{}", sale.sale_id));
        assert_eq!(plan.sale_id, sale.sale_id);
        assert_eq!((plan.courier_id.as_str(), plan.zone.as_str()), ("urbano", "LIMA_METRO"));
        assert_eq!(contents(&plan.packages), vec![lines(&[("DECO", 2), ("ROUTER", 2)])]);
        // 2 × 800 + 2 × 400 = 2.4 kg actual; 8 400 cm³ → 1.68 kg volumetric: 3 kg band, S/ 12.00.
        assert_eq!(
            (plan.packages[0].weight_grams, plan.packages[0].volume_cm3),
            (2_400, 8_400)
        );
        assert_eq!(plan.shipping_cost, Money::from_minor(1200, pen()));
        assert_eq!(plan.pickup_date, date!(2026 - 11 - 24));
        assert_eq!(
            plan.tracking_reference,
            tracking_reference("urbano", sale.sale_id.as_str())
        );
        // A retry plans the same shipment.
        assert_eq!(
            plan_shipment(&sale, &specs(), &config, datetime!(2026-11-23 16:00 UTC)),
            Ok(plan.clone())
        );
        // It round-trips through JSON, dates as text.
        let json = serde_json::to_value(&plan).expect("serialize");
        assert_eq!(json["pickup_date"], "2026-11-24");
        assert_eq!(
            json["shipping_cost"],
            serde_json::json!({"amount": "12.00", "currency": "PEN"})
        );
        assert_eq!(serde_json::from_value::<ShipmentPlan>(json).ok(), Some(plan));
    }

    #[test]
    fn full_plan_for_a_province_sale_with_an_oversize_tv() {
        let config = crate::testing::fulfillment_config();
        let sale = sale("Cusco", &[("TV-55", 1), ("ROUTER", 1)]);
        let plan = plan_shipment(&sale, &specs(), &config, datetime!(2026-11-27 20:00 UTC)).expect("plan");
        assert_eq!(
            (plan.courier_id.as_str(), plan.zone.as_str()),
            ("olva", "HIGHLANDS_JUNGLE")
        );
        assert_eq!(
            contents(&plan.packages),
            vec![lines(&[("TV-55", 1)]), lines(&[("ROUTER", 1)])]
        );
        assert!(plan.packages[0].oversize && !plan.packages[1].oversize);
        // TV: 208 000 cm³ → 41.6 kg billable: 50.00 + 32 × 4.50 + 25.00 surcharge = 219.00.
        // Router: 800 g, 2 700 cm³ → 800 g: 18.00.
        assert_eq!(plan.shipping_cost, Money::from_minor(21_900 + 1_800, pen()));
        // Friday 15:00 in Lima → dispatched Monday, picked up Tuesday.
        assert_eq!(plan.pickup_date, date!(2026 - 12 - 01));
        assert!(plan.tracking_reference.starts_with("OLVA-"));
    }

    #[test]
    fn plan_errors() {
        let config = crate::testing::fulfillment_config();
        let now = datetime!(2026-11-23 16:00 UTC);
        let missing = sale("Lima", &[("ROUTER", 1), ("SIM", 1), ("ESIM", 1)]);
        assert_eq!(
            plan_shipment(&missing, &specs(), &config, now),
            Err(FulfillmentError::MissingShippingSpec("SIM".into()))
        );
        assert!(
            FulfillmentError::MissingShippingSpec("SIM".into())
                .to_string()
                .contains("\"SIM\"")
        );

        let mut usd = sale("Lima", &[("ROUTER", 1)]);
        let dollars = Currency::parse("USD").expect("USD");
        usd.total = Money::from_minor(100, dollars);
        assert_eq!(
            plan_shipment(&usd, &specs(), &config, now),
            Err(FulfillmentError::CurrencyMismatch {
                courier: "urbano".into(),
                sale: dollars,
                rates: pen()
            })
        );

        let mut no_table = config.clone();
        no_table.rates.remove("urbano");
        assert_eq!(
            plan_shipment(&sale("Callao", &[("ROUTER", 1)]), &specs(), &no_table, now),
            Err(FulfillmentError::NoRateTable("urbano".into()))
        );

        let mut no_zone = config.clone();
        if let Some(table) = no_zone.rates.get_mut("olva") {
            table.bands.iter_mut().for_each(|b| {
                b.prices.remove("COAST");
            });
        }
        assert_eq!(
            plan_shipment(&sale("Piura", &[("ROUTER", 1)]), &specs(), &no_zone, now),
            Err(FulfillmentError::NoRateForZone {
                courier: "olva".into(),
                zone: "COAST".into()
            })
        );

        assert_eq!(
            plan_shipment(&sale("Lima", &[]), &specs(), &config, now),
            Err(FulfillmentError::NothingToShip)
        );
        assert_eq!(
            plan_shipment(&sale("Lima", &[("ROUTER", 0)]), &specs(), &config, now),
            Err(FulfillmentError::NothingToShip)
        );
        assert_eq!(
            plan_shipment(
                &sale("Lima", &[("ROUTER", u32::MAX), ("ROUTER", 1)]),
                &specs(),
                &config,
                now
            ),
            Err(FulfillmentError::Overflow)
        );

        let mut closed = config.clone();
        closed.calendar.working_days.clear();
        assert_eq!(
            plan_shipment(&sale("Lima", &[("ROUTER", 1)]), &specs(), &closed, now),
            Err(FulfillmentError::NoWorkingDay)
        );
    }

    #[test]
    fn the_spec_map_key_names_the_packed_sku() {
        let mut specs = specs();
        specs.insert("ROUTER".into(), spec("router-old-name", 800, (250, 180, 60)));
        let plan = plan_shipment(
            &sale("Lima", &[("ROUTER", 1)]),
            &specs,
            &crate::testing::fulfillment_config(),
            datetime!(2026-11-23 16:00 UTC),
        )
        .expect("plan");
        assert_eq!(contents(&plan.packages), vec![lines(&[("ROUTER", 1)])]);
    }

    // --- config --------------------------------------------------------------------------------

    #[test]
    fn seed_config_is_consistent() {
        let config = crate::testing::fulfillment_config();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.courier_rules.default_courier, "olva");
        assert_eq!(
            config.limits,
            PackageLimits {
                max_weight_grams: 20_000,
                max_volume_cm3: 60_000
            }
        );
        assert_eq!(
            config.calendar.local_time(),
            Ok(LocalTime::Zone(CampaignZone::parse("America/Lima").expect("a zone")))
        );
        assert_eq!(
            config.calendar.utc_offset_minutes, None,
            "no deprecated offset in the seed"
        );
        assert!(!config.calendar.is_working_day(date!(2026 - 12 - 25)));
        assert!(
            !config.calendar.is_working_day(date!(2026 - 12 - 24)),
            "the campaign's own day off"
        );
        assert!(
            !config.calendar.is_working_day(date!(2029 - 03 - 29)),
            "Holy Thursday 2029, by rule"
        );
        assert!(!config.calendar.working_days.contains(&Weekday::Saturday));
    }

    #[test]
    fn the_local_seed_is_the_fixture() {
        // The local stack's seed and the tests' fixture describe the same campaign.
        let seed: serde_json::Value =
            serde_json::from_str(include_str!("../../../infra/local/seed.json")).expect("seed.json parses");
        let stored = seed["ConfigTable"]
            .as_array()
            .and_then(|items| items.iter().find(|item| item["sk"] == "FULFILLMENT"))
            .and_then(|item| item["config"].as_str())
            .expect("a FULFILLMENT item");
        let config: FulfillmentConfig = serde_json::from_str(stored).expect("the seed's config reads");
        assert_eq!(config, crate::testing::fulfillment_config());
    }

    #[test]
    fn validate_catches_config_mistakes() {
        let broken = |change: &dyn Fn(&mut FulfillmentConfig)| {
            let mut config = crate::testing::fulfillment_config();
            change(&mut config);
            config.validate()
        };
        assert_eq!(
            broken(&|c| c.courier_rules.default_courier = "dhl".into()),
            Err(FulfillmentError::NoRateTable("dhl".into()))
        );
        assert_eq!(
            broken(&|c| c.zones.entry("urbano".into()).or_default().push(ZoneRule {
                zone: "SOUTH".into(),
                regions: vec!["Tacna".into()],
                postal_prefixes: vec![]
            })),
            Err(FulfillmentError::NoRateForZone {
                courier: "urbano".into(),
                zone: "SOUTH".into()
            })
        );
        assert_eq!(
            broken(&|c| {
                c.rates.get_mut("olva").into_iter().for_each(|t| {
                    t.extra_per_kg.remove(DEFAULT_ZONE);
                })
            }),
            Err(FulfillmentError::NoRateForZone {
                courier: "olva".into(),
                zone: DEFAULT_ZONE.into()
            })
        );
        let invalid = |result: Result<(), FulfillmentError>| matches!(result, Err(FulfillmentError::InvalidConfig(_)));
        assert!(invalid(broken(&|c| {
            c.calendar.timezone = None;
            c.calendar.utc_offset_minutes = Some(26 * 60);
        })));
        assert!(
            invalid(broken(&|c| c.calendar.timezone = None)),
            "neither zone nor offset"
        );
        // A legacy offset alone is accepted; beside a zone it is ignored.
        assert_eq!(
            broken(&|c| {
                c.calendar.timezone = None;
                c.calendar.utc_offset_minutes = Some(-300);
            }),
            Ok(())
        );
        assert_eq!(broken(&|c| c.calendar.utc_offset_minutes = Some(26 * 60)), Ok(()));
        assert!(invalid(broken(&|c| c.calendar.pickup_lead_working_days = 11)));
        assert!(invalid(broken(&|c| c.calendar.working_days.clear())));
        assert!(invalid(broken(&|c| c
            .rates
            .get_mut("olva")
            .into_iter()
            .for_each(|t| t.bands.clear()))));
        assert!(invalid(broken(&|c| c
            .rates
            .get_mut("olva")
            .into_iter()
            .for_each(|t| t.courier_id = "urbano".into()))));
        assert!(invalid(broken(&|c| c
            .rates
            .get_mut("olva")
            .into_iter()
            .for_each(|t| t.oversize_surcharge_minor = -5))));
        assert!(invalid(broken(&|c| c
            .rates
            .get_mut("olva")
            .into_iter()
            .for_each(|t| t.bands[1].up_to_grams = 1_000))));
        assert!(invalid(broken(&|c| {
            c.rates.get_mut("urbano").into_iter().for_each(|t| {
                t.bands[0].prices.insert("LIMA_METRO".into(), -100);
            })
        })));
    }

    #[test]
    fn config_wire_form() {
        let config = crate::testing::fulfillment_config();
        let json = serde_json::to_value(&config).expect("serialize");
        assert_eq!(json["calendar"]["cutoff"], "14:00");
        assert_eq!(json["calendar"]["timezone"], "America/Lima");
        assert!(json["calendar"].get("utc_offset_minutes").is_none());
        assert_eq!(json["calendar"]["working_days"][0], "MONDAY");
        assert_eq!(json["calendar"]["holidays"][0], "2026-12-24");
        assert_eq!(json["calendar"]["public_holidays"], "PE");
        assert_eq!(json["rates"]["olva"]["currency"], "PEN");
        assert_eq!(
            serde_json::from_value::<FulfillmentConfig>(json.clone()).ok(),
            Some(config)
        );

        // Minimal config: limits, zones, calendar details and rate extras take their defaults.
        let minimal: FulfillmentConfig = serde_json::from_value(serde_json::json!({
            "courier_rules": {"default_courier": "olva"},
            "rates": {"olva": {"courier_id": "olva", "currency": "PEN", "bands": [{"up_to_grams": 1000, "prices": {"NATIONAL": 1500}}]}},
            "calendar": {"timezone": "America/Lima", "working_days": ["monday", "Tuesday", "SATURDAY"], "cutoff": "13:30:15"}
        }))
        .expect("minimal config");
        assert_eq!(minimal.limits, PackageLimits::default());
        assert_eq!(minimal.calendar.cutoff, time!(13:30:15));
        assert_eq!(
            minimal.calendar.working_days,
            vec![Weekday::Monday, Weekday::Tuesday, Weekday::Saturday]
        );
        assert_eq!(minimal.calendar.pickup_lead_working_days, 1);
        assert_eq!(minimal.rates["olva"].volumetric_divisor, 5000);
        assert!(minimal.zones.is_empty() && minimal.calendar.holidays.is_empty());
        let mut with_extra = minimal.clone();
        with_extra.rates.get_mut("olva").into_iter().for_each(|t| {
            t.extra_per_kg.insert(DEFAULT_ZONE.into(), 300);
        });
        assert_eq!(with_extra.validate(), Ok(()));
        assert_eq!(
            serde_json::to_value(&minimal).expect("serialize")["calendar"]["cutoff"],
            "13:30:15"
        );

        for bad in [
            serde_json::json!({"default_courier": "olva", "fallback": "x"}),
            serde_json::json!({"rules": [{"courier_id": "x", "region": ["Lima"]}], "default_courier": "olva"}),
        ] {
            assert!(serde_json::from_value::<CourierRules>(bad.clone()).is_err(), "{bad}");
        }
        for bad in [
            serde_json::json!({"timezone": "America/Lima", "cutoff": "2pm"}),
            serde_json::json!({"timezone": "America/Lima", "working_days": ["Lunes"]}),
            serde_json::json!({"timezone": "America/Lima", "holidays": ["25/12/2026"]}),
            serde_json::json!({"timezone": "Lima/Peru"}),
            serde_json::json!({"timezone": -300}),
            serde_json::json!({"utc_offset_minutes": "-05:00"}),
            serde_json::json!({"timezone": "America/Lima", "time_zone": "America/Lima"}),
        ] {
            assert!(serde_json::from_value::<WorkCalendar>(bad.clone()).is_err(), "{bad}");
        }
        // Neither a zone nor an offset reads, and is then a configuration error, never UTC.
        let zoneless: WorkCalendar = serde_json::from_value(serde_json::json!({"cutoff": "14:00"})).expect("reads");
        assert!(matches!(
            zoneless.local_time(),
            Err(FulfillmentError::InvalidConfig(detail)) if detail.contains("no timezone")
        ));
        assert!(serde_json::from_value::<ShippingSpec>(serde_json::json!({"sku": "A", "weight_grams": 1, "length_mm": 1, "width_mm": 1, "height_mm": 1, "fragile": true})).is_err());
        let plain: ShippingSpec = serde_json::from_value(
            serde_json::json!({"sku": "A", "weight_grams": 1, "length_mm": 1, "width_mm": 1, "height_mm": 1}),
        )
        .expect("spec");
        assert!(!plain.ships_alone);
    }
}
