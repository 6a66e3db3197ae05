//! The pre-sale aggregate: what an agent typed, validated and priced, and its life cycle.
//!
//! A pre-sale is not a sale. It waits for its recording (PENDING_RECORDING), is reviewed
//! (READY_FOR_REVIEW), and ends APPROVED (a sale), REJECTED, or NEEDS_CORRECTION, from which its
//! agent's correction sends it back to review.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use unicode_normalization::UnicodeNormalization;

use super::catalog::CampaignCatalog;
use super::contact::{Email, PhoneNumber};
use super::identity::{Document, DocumentType};
use super::money::{Currency, Money};
use super::recording::{Finding, RecordingRef};
use super::review::{Claim, Decision};
use super::validation::{Errors, FieldError, Invalid};

/// Upper bounds that keep one pre-sale a reasonable size (and a DynamoDB item far below 400 KB).
pub const MAX_ITEMS: usize = 50;
pub const MAX_QUANTITY: i64 = 99;
pub const MAX_NOTES_CHARS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PresaleId(String);

impl PresaleId {
    /// Time-ordered (UUID v7), so ids sort roughly by creation.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// Accepts only the canonical UUID form: anything else cannot name a pre-sale.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let parsed =
            uuid::Uuid::try_parse(raw).map_err(|_| Invalid::new("invalid_presale_id", "a pre-sale id is a UUID"))?;
        Ok(Self(parsed.hyphenated().to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PresaleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PresaleStatus {
    PendingRecording,
    ReadyForReview,
    Approved,
    Rejected,
    NeedsCorrection,
}

impl PresaleStatus {
    pub const ALL: [PresaleStatus; 5] = [
        Self::PendingRecording,
        Self::ReadyForReview,
        Self::Approved,
        Self::Rejected,
        Self::NeedsCorrection,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingRecording => "PENDING_RECORDING",
            Self::ReadyForReview => "READY_FOR_REVIEW",
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
            Self::NeedsCorrection => "NEEDS_CORRECTION",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw).ok_or_else(|| {
            let accepted: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
            Invalid::new(
                "unknown_status",
                format!("unknown status {raw:?}; expected one of {}", accepted.join(", ")),
            )
        })
    }

    /// Terminal states never change again: a decided sale is corrected by new documents
    /// (credit notes, returns), not by rewriting its history.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Approved | Self::Rejected)
    }

    /// The only legal moves of the state machine.
    pub fn apply(self, action: PresaleAction) -> Result<PresaleStatus, TransitionError> {
        use PresaleAction as A;
        use PresaleStatus as S;
        let next = match (self, action) {
            (S::PendingRecording, A::AttachRecording) => S::ReadyForReview,
            (S::ReadyForReview, A::Approve) => S::Approved,
            (S::ReadyForReview, A::Reject) => S::Rejected,
            (S::ReadyForReview, A::RequestCorrection) => S::NeedsCorrection,
            (S::NeedsCorrection, A::SubmitCorrection) => S::ReadyForReview,
            (from, action) => return Err(TransitionError { from, action }),
        };
        Ok(next)
    }
}

impl fmt::Display for PresaleStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PresaleAction {
    AttachRecording,
    Approve,
    Reject,
    RequestCorrection,
    SubmitCorrection,
}

impl PresaleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AttachRecording => "ATTACH_RECORDING",
            Self::Approve => "APPROVE",
            Self::Reject => "REJECT",
            Self::RequestCorrection => "REQUEST_CORRECTION",
            Self::SubmitCorrection => "SUBMIT_CORRECTION",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a pre-sale in {from} cannot {}", action.as_str())]
pub struct TransitionError {
    pub from: PresaleStatus,
    pub action: PresaleAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub district: String,
    pub province: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Directions for the courier ("frente al parque"), common in Peruvian addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub document: Document,
    pub full_name: String,
    pub phone: PhoneNumber,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    pub address: Address,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub line_total: Money,
}

/// What the validator asked the agent to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrectionRequest {
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub requested_by: String,
    #[serde(with = "crate::wire::instant")]
    pub requested_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presale {
    pub id: PresaleId,
    pub client_id: String,
    pub campaign_id: String,
    pub agent_id: String,
    pub call_id: String,
    #[serde(
        default,
        with = "crate::wire::instant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub call_started_at: Option<OffsetDateTime>,
    pub customer: Customer,
    pub items: Vec<LineItem>,
    pub total: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub status: PresaleStatus,
    /// Incremented by every state change; every conditional write checks it.
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<CorrectionRequest>,
    /// The exact recording the review will listen to, once attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingRef>,
    /// Automatic checks of the attached recording; `risk_score` orders the review queue.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_score: Option<u8>,
    /// When it last entered READY_FOR_REVIEW (orders the queue, times the review).
    #[serde(
        default,
        with = "crate::wire::instant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub ready_at: Option<OffsetDateTime>,
    /// A validator's live or expired lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    #[serde(with = "crate::wire::instant")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::wire::instant")]
    pub updated_at: OffsetDateTime,
    /// From the registering request (absent on pre-sales registered before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

impl Presale {
    /// The id that joins this pre-sale's logs and events across functions.
    pub fn correlation_id(&self) -> &str {
        self.correlation_id.as_deref().unwrap_or(self.id.as_str())
    }

    /// Move through the state machine, bumping the version the store will condition on.
    pub fn transition(&mut self, action: PresaleAction, now: OffsetDateTime) -> Result<PresaleStatus, TransitionError> {
        let from = self.status;
        self.status = from.apply(action)?;
        self.version += 1;
        self.updated_at = now;
        if self.status == PresaleStatus::ReadyForReview {
            self.ready_at = Some(now);
        }
        Ok(from)
    }
}

// ---------------------------------------------------------------------------------------------
// Input drafts: what a client sends, as loose strings, so that every problem is reported with
// its field path in one answer instead of serde stopping at the first.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentDraft {
    #[serde(rename = "type")]
    pub kind: String,
    pub number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressDraft {
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub district: String,
    pub province: String,
    pub region: String,
    #[serde(default)]
    pub postal_code: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerDraft {
    pub document: DocumentDraft,
    pub full_name: String,
    pub phone: String,
    #[serde(default)]
    pub email: Option<String>,
    pub address: AddressDraft,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoneyDraft {
    pub amount: String,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemDraft {
    pub sku: String,
    pub quantity: i64,
    /// Optional: the catalog sets the price. When sent, it must match the catalog exactly,
    /// so an agent's app with a stale price list is told instead of silently repriced.
    #[serde(default)]
    pub unit_price: Option<MoneyDraft>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresaleDraft {
    pub campaign_id: String,
    pub call_id: String,
    #[serde(default)]
    pub call_started_at: Option<String>,
    pub customer: CustomerDraft,
    pub items: Vec<ItemDraft>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// `PATCH /presales/{id}`: the fields an agent may correct; absent fields stay as they were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrectionDraft {
    #[serde(default)]
    pub customer: Option<CustomerDraft>,
    #[serde(default)]
    pub items: Option<Vec<ItemDraft>>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// Who registers the pre-sale and when: comes from the verified token and the clock, never
/// from the body.
#[derive(Debug, Clone)]
pub struct Registration {
    pub id: PresaleId,
    pub agent_id: String,
    pub now: OffsetDateTime,
    /// The id that joins this pre-sale's logs and events from the agent's request to the
    /// invoice: taken from the registering request, never replaced downstream.
    pub correlation_id: Option<String>,
}

/// Validate and price a draft against its campaign's catalog.
pub fn register(
    draft: &PresaleDraft,
    catalog: &CampaignCatalog,
    who: Registration,
) -> Result<Presale, Vec<FieldError>> {
    let mut errors = Errors::new();
    let call_id = errors.check("call_id", validate_call_id(&draft.call_id));
    let call_started_at = match &draft.call_started_at {
        None => None,
        Some(raw) => errors
            .check("call_started_at", validate_call_started_at(raw, who.now))
            .map(Some)
            .unwrap_or(None),
    };
    let customer = validate_customer(&draft.customer, "customer", &mut errors);
    let priced = price_items(&draft.items, catalog, &mut errors);
    let notes = errors
        .check("notes", validate_notes(draft.notes.as_deref()))
        .unwrap_or(None);
    errors.finish()?;
    let (Some(call_id), Some(customer), Some((items, total))) = (call_id, customer, priced) else {
        // Unreachable in practice: any None above recorded an error and `finish` returned.
        return Err(vec![Invalid::new("invalid", "the pre-sale is invalid").at("")]);
    };
    Ok(Presale {
        id: who.id,
        client_id: catalog.campaign.client_id.clone(),
        campaign_id: catalog.campaign.campaign_id.clone(),
        agent_id: who.agent_id,
        call_id,
        call_started_at,
        customer,
        items,
        total,
        notes,
        status: PresaleStatus::PendingRecording,
        version: 1,
        correction: None,
        recording: None,
        findings: Vec::new(),
        risk_score: None,
        ready_at: None,
        claim: None,
        decision: None,
        created_at: who.now,
        updated_at: who.now,
        correlation_id: who.correlation_id,
    })
}

/// Apply an agent's correction. The caller has already checked the state and the agent.
pub fn apply_correction(
    presale: &mut Presale,
    draft: &CorrectionDraft,
    catalog: &CampaignCatalog,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Errors::new();
    if draft.customer.is_none() && draft.items.is_none() && draft.notes.is_none() {
        errors.push(Invalid::new("empty_correction", "send at least one of customer, items, notes").at(""));
        return errors.finish();
    }
    let customer = draft
        .customer
        .as_ref()
        .map(|c| validate_customer(c, "customer", &mut errors));
    let priced = draft
        .items
        .as_ref()
        .map(|items| price_items(items, catalog, &mut errors));
    let notes = draft
        .notes
        .as_ref()
        .map(|n| errors.check("notes", validate_notes(Some(n))).unwrap_or(None));
    errors.finish()?;
    if let Some(Some(customer)) = customer {
        presale.customer = customer;
    }
    if let Some(Some((items, total))) = priced {
        presale.items = items;
        presale.total = total;
    }
    if let Some(notes) = notes {
        presale.notes = notes;
    }
    Ok(())
}

fn validate_call_id(raw: &str) -> Result<String, Invalid> {
    let ok_chars = raw
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if raw.is_empty() || raw.len() > 64 || !ok_chars {
        return Err(Invalid::new(
            "invalid_call_id",
            "call_id is the dialer's call identifier: 1 to 64 characters of letters, digits, '-', '_', '.', ':'",
        ));
    }
    Ok(raw.to_owned())
}

fn validate_call_started_at(raw: &str, now: OffsetDateTime) -> Result<OffsetDateTime, Invalid> {
    let at = OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).map_err(|_| {
        Invalid::new(
            "invalid_timestamp",
            "call_started_at must be an RFC 3339 timestamp with offset, e.g. 2026-11-23T10:15:00-05:00",
        )
    })?;
    // A few minutes of tolerance for agents' clocks; a call cannot have started in the future.
    if at > now + time::Duration::minutes(5) {
        return Err(Invalid::new("timestamp_in_future", "call_started_at is in the future"));
    }
    Ok(at)
}

fn validate_notes(raw: Option<&str>) -> Result<Option<String>, Invalid> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) if text.chars().count() > MAX_NOTES_CHARS => Err(Invalid::new(
            "too_long",
            format!("notes may have at most {MAX_NOTES_CHARS} characters"),
        )),
        Some(text) => Ok(Some(text.to_owned())),
    }
}

fn text(raw: &str, min: usize, max: usize, what: &str) -> Result<String, Invalid> {
    let trimmed = raw.trim();
    let count = trimmed.chars().count();
    if count < min {
        return Err(Invalid::new(
            "required",
            format!("{what} is required (at least {min} characters)"),
        ));
    }
    if count > max {
        return Err(Invalid::new(
            "too_long",
            format!("{what} may have at most {max} characters, got {count}"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Invalid::new(
            "invalid_characters",
            format!("{what} contains control characters"),
        ));
    }
    if trimmed.chars().any(is_invisible_format) {
        return Err(Invalid::new(
            "invalid_characters",
            format!("{what} contains invisible direction or zero-width characters"),
        ));
    }
    // Composed form: a "María" typed with a combining accent is the same customer (and the same
    // index key) as one typed with "í".
    Ok(trimmed.nfc().collect())
}

/// Characters that change how text displays or compares without being seen: bidirectional
/// overrides and isolates (which can make a name or an address read backwards on screen) and
/// zero-width characters (which make two equal-looking values differ).
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{061C}' | '\u{FEFF}'
    )
}

fn optional_text(raw: Option<&str>, max: usize, what: &str) -> Result<Option<String>, Invalid> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) => text(value, 1, max, what).map(Some),
    }
}

fn validate_full_name(raw: &str) -> Result<String, Invalid> {
    let name = text(raw, 2, 120, "full_name")?;
    let plausible = name
        .chars()
        .all(|c| c.is_alphabetic() || matches!(c, ' ' | '\'' | '-' | '.'));
    if !plausible || !name.chars().any(char::is_alphabetic) {
        return Err(Invalid::new(
            "invalid_name",
            "full_name may contain letters (accents included), spaces, apostrophes, hyphens and dots only",
        ));
    }
    // Collapse runs of spaces so "Ana  María" and "Ana María" are the same customer.
    Ok(name.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn validate_country(raw: Option<&str>) -> Result<String, Invalid> {
    let code = raw.map(str::trim).filter(|c| !c.is_empty()).unwrap_or("PE");
    if code.len() != 2 || !code.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(Invalid::new(
            "invalid_country",
            "country is an ISO 3166-1 alpha-2 code in upper case, e.g. PE",
        ));
    }
    Ok(code.to_owned())
}

fn validate_postal_code(raw: Option<&str>, country: &str) -> Result<Option<String>, Invalid> {
    let Some(code) = raw.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    // Peru's postal codes (códigos postales) are five digits; elsewhere only sanity limits.
    let valid = if country == "PE" {
        code.len() == 5 && code.chars().all(|c| c.is_ascii_digit())
    } else {
        code.len() <= 12 && code.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
    };
    if !valid {
        return Err(Invalid::new(
            "invalid_postal_code",
            format!("postal_code {code:?} is not a valid code for {country}"),
        ));
    }
    Ok(Some(code.to_owned()))
}

fn validate_address(draft: &AddressDraft, path: &str, errors: &mut Errors) -> Option<Address> {
    let line1 = errors.check(format!("{path}.line1"), text(&draft.line1, 3, 200, "line1"));
    let line2 = errors.check(
        format!("{path}.line2"),
        optional_text(draft.line2.as_deref(), 200, "line2"),
    );
    let district = errors.check(format!("{path}.district"), text(&draft.district, 2, 80, "district"));
    let province = errors.check(format!("{path}.province"), text(&draft.province, 2, 80, "province"));
    let region = errors.check(format!("{path}.region"), text(&draft.region, 2, 80, "region"));
    let country = errors.check(format!("{path}.country"), validate_country(draft.country.as_deref()));
    let postal_code = country.as_deref().and_then(|country| {
        errors.check(
            format!("{path}.postal_code"),
            validate_postal_code(draft.postal_code.as_deref(), country),
        )
    });
    let reference = errors.check(
        format!("{path}.reference"),
        optional_text(draft.reference.as_deref(), 200, "reference"),
    );
    Some(Address {
        line1: line1?,
        line2: line2?,
        district: district?,
        province: province?,
        region: region?,
        postal_code: postal_code?,
        country: country?,
        reference: reference?,
    })
}

fn validate_customer(draft: &CustomerDraft, path: &str, errors: &mut Errors) -> Option<Customer> {
    let kind = errors.check(
        format!("{path}.document.type"),
        draft.document.kind.parse::<DocumentType>(),
    );
    let document = kind.and_then(|kind| {
        errors.check(
            format!("{path}.document.number"),
            Document::new(kind, &draft.document.number),
        )
    });
    let full_name = errors.check(format!("{path}.full_name"), validate_full_name(&draft.full_name));
    let country = draft
        .address
        .country
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or("PE");
    let phone = errors.check(format!("{path}.phone"), PhoneNumber::parse(&draft.phone, country));
    let email = match draft.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        None => Some(None),
        Some(raw) => errors.check(format!("{path}.email"), Email::parse(raw)).map(Some),
    };
    let address = validate_address(&draft.address, &format!("{path}.address"), errors);
    Some(Customer {
        document: document?,
        full_name: full_name?,
        phone: phone?,
        email: email?,
        address: address?,
    })
}

/// Price every line from the catalog. A client-sent price that differs is an error, never
/// trusted and never silently replaced.
fn price_items(drafts: &[ItemDraft], catalog: &CampaignCatalog, errors: &mut Errors) -> Option<(Vec<LineItem>, Money)> {
    if drafts.is_empty() {
        errors.push(Invalid::new("required", "a pre-sale has at least one item").at("items"));
        return None;
    }
    if drafts.len() > MAX_ITEMS {
        errors.push(Invalid::new("too_many_items", format!("a pre-sale has at most {MAX_ITEMS} items")).at("items"));
        return None;
    }
    let currency: Currency = catalog.campaign.currency;
    let mut seen = BTreeSet::new();
    let mut lines = Vec::with_capacity(drafts.len());
    for (i, draft) in drafts.iter().enumerate() {
        let path = format!("items[{i}]");
        let sku = draft.sku.trim();
        if !seen.insert(sku.to_owned()) {
            errors.push(
                Invalid::new(
                    "duplicate_sku",
                    format!("SKU {sku} appears twice; send one line with the total quantity"),
                )
                .at(format!("{path}.sku")),
            );
            continue;
        }
        let Some(entry) = catalog.items.get(sku).filter(|e| e.active) else {
            errors.push(
                Invalid::new(
                    "unknown_sku",
                    format!("SKU {sku:?} is not sold in campaign {}", catalog.campaign.campaign_id),
                )
                .at(format!("{path}.sku")),
            );
            continue;
        };
        let quantity = match u32::try_from(draft.quantity) {
            Ok(q) if (1..=MAX_QUANTITY).contains(&i64::from(q)) => q,
            _ => {
                errors.push(
                    Invalid::new(
                        "invalid_quantity",
                        format!("quantity must be between 1 and {MAX_QUANTITY}, got {}", draft.quantity),
                    )
                    .at(format!("{path}.quantity")),
                );
                continue;
            }
        };
        if let Some(sent) = &draft.unit_price {
            let parsed = Currency::parse(&sent.currency).and_then(|c| Money::parse(&sent.amount, c));
            match parsed {
                Err(invalid) => {
                    errors.push(invalid.at(format!("{path}.unit_price")));
                    continue;
                }
                Ok(sent) if sent != entry.unit_price => {
                    errors.push(
                        Invalid::new(
                            "price_mismatch",
                            format!("the catalog price of {sku} is {}, not {sent}", entry.unit_price),
                        )
                        .at(format!("{path}.unit_price")),
                    );
                    continue;
                }
                Ok(_) => {}
            }
        }
        let Ok(line_total) = entry.unit_price.checked_mul_qty(quantity) else {
            errors
                .push(Invalid::new("amount_out_of_range", "line total is out of range").at(format!("{path}.quantity")));
            continue;
        };
        lines.push(LineItem {
            sku: sku.to_owned(),
            name: entry.name.clone(),
            quantity,
            unit_price: entry.unit_price,
            line_total,
        });
    }
    if lines.len() != drafts.len() {
        return None;
    }
    match Money::sum(currency, lines.iter().map(|l| l.line_total)) {
        Ok(total) => Some((lines, total)),
        Err(e) => {
            errors.push(Invalid::new("invalid_total", e.to_string()).at("items"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Campaign, CatalogItem};
    use std::collections::BTreeMap;
    use time::macros::datetime;

    fn pen() -> Currency {
        Currency::parse("PEN").expect("PEN is supported")
    }

    fn catalog() -> CampaignCatalog {
        let mut items = BTreeMap::new();
        items.insert(
            "FIB-300".to_owned(),
            CatalogItem {
                sku: "FIB-300".into(),
                name: "Fibra 300".into(),
                unit_price: Money::from_minor(14990, pen()),
                active: true,
            },
        );
        items.insert(
            "ROUTER".to_owned(),
            CatalogItem {
                sku: "ROUTER".into(),
                name: "Router".into(),
                unit_price: Money::from_minor(1999, pen()),
                active: true,
            },
        );
        items.insert(
            "OLD".to_owned(),
            CatalogItem {
                sku: "OLD".into(),
                name: "Old plan".into(),
                unit_price: Money::from_minor(100, pen()),
                active: false,
            },
        );
        CampaignCatalog {
            campaign: Campaign {
                campaign_id: "acme-fibra".into(),
                client_id: "acme".into(),
                name: "Fibra".into(),
                currency: pen(),
                timezone: crate::zone::CampaignZone::parse("America/Lima").expect("a zone"),
                active: true,
                checks: Default::default(),
                max_attempts_per_day: 3,
                base_records: None,
            },
            items,
        }
    }

    fn draft() -> PresaleDraft {
        serde_json::from_value(serde_json::json!({
            "campaign_id": "acme-fibra",
            "call_id": "call-0001",
            "customer": {
                "document": {"type": "DNI", "number": "45678912"},
                "full_name": "María  Quispe Huamán",
                "phone": "987 654 321",
                "email": "Maria.Quispe@Example.PE",
                "address": {"line1": "Av. Arequipa 1234", "district": "Lince", "province": "Lima", "region": "Lima", "postal_code": "15046"}
            },
            "items": [{"sku": "FIB-300", "quantity": 1}, {"sku": "ROUTER", "quantity": 2, "unit_price": {"amount": "19.99", "currency": "PEN"}}]
        }))
        .expect("valid draft JSON")
    }

    fn who() -> Registration {
        Registration {
            id: PresaleId::generate(),
            agent_id: "agent-7".into(),
            now: datetime!(2026-11-23 15:00 UTC),
            correlation_id: None,
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<(&str, &str)> {
        errors.iter().map(|e| (e.field.as_str(), e.code)).collect()
    }

    #[test]
    fn registers_and_prices_from_the_catalog() {
        let presale = register(&draft(), &catalog(), who()).expect("valid");
        assert_eq!(presale.status, PresaleStatus::PendingRecording);
        assert_eq!(presale.version, 1);
        assert_eq!(presale.client_id, "acme");
        assert_eq!(presale.customer.full_name, "María Quispe Huamán");
        assert_eq!(presale.customer.phone.as_str(), "+51987654321");
        assert_eq!(presale.customer.address.country, "PE");
        assert_eq!(presale.items[1].line_total, Money::from_minor(3998, pen()));
        assert_eq!(presale.total, Money::from_minor(14990 + 3998, pen()));
    }

    #[test]
    fn reports_every_bad_field_with_its_path() {
        let mut d = draft();
        d.call_id = "bad id!".into();
        d.customer.document.number = "1234567".into();
        d.customer.phone = "12".into();
        d.customer.email = Some("nope".into());
        d.customer.address.postal_code = Some("ABC".into());
        d.items[0].quantity = 0;
        d.items[1].unit_price = Some(MoneyDraft {
            amount: "18.00".into(),
            currency: "PEN".into(),
        });
        let errors = register(&d, &catalog(), who()).expect_err("invalid");
        assert_eq!(
            fields(&errors),
            vec![
                ("call_id", "invalid_call_id"),
                ("customer.document.number", "invalid_dni"),
                ("customer.phone", "invalid_phone"),
                ("customer.email", "invalid_email"),
                ("customer.address.postal_code", "invalid_postal_code"),
                ("items[0].quantity", "invalid_quantity"),
                ("items[1].unit_price", "price_mismatch"),
            ]
        );
    }

    #[test]
    fn rejects_unknown_inactive_and_duplicate_skus_and_empty_items() {
        let mut d = draft();
        d.items = vec![
            ItemDraft {
                sku: "NOPE".into(),
                quantity: 1,
                unit_price: None,
            },
            ItemDraft {
                sku: "OLD".into(),
                quantity: 1,
                unit_price: None,
            },
            ItemDraft {
                sku: "ROUTER".into(),
                quantity: 1,
                unit_price: None,
            },
            ItemDraft {
                sku: "ROUTER".into(),
                quantity: 1,
                unit_price: None,
            },
        ];
        let errors = register(&d, &catalog(), who()).expect_err("invalid");
        assert_eq!(
            fields(&errors),
            vec![
                ("items[0].sku", "unknown_sku"),
                ("items[1].sku", "unknown_sku"),
                ("items[3].sku", "duplicate_sku")
            ]
        );
        d.items.clear();
        assert_eq!(
            fields(&register(&d, &catalog(), who()).expect_err("empty")),
            vec![("items", "required")]
        );
    }

    #[test]
    fn rejects_price_in_other_currency_and_bad_amounts() {
        let mut d = draft();
        d.items[1].unit_price = Some(MoneyDraft {
            amount: "19.99".into(),
            currency: "USD".into(),
        });
        assert_eq!(
            fields(&register(&d, &catalog(), who()).expect_err("currency")),
            vec![("items[1].unit_price", "price_mismatch")]
        );
        d.items[1].unit_price = Some(MoneyDraft {
            amount: "19.999".into(),
            currency: "PEN".into(),
        });
        assert_eq!(
            fields(&register(&d, &catalog(), who()).expect_err("decimals")),
            vec![("items[1].unit_price", "too_many_decimals")]
        );
    }

    #[test]
    fn call_time_must_be_rfc3339_and_not_in_the_future() {
        let mut d = draft();
        d.call_started_at = Some("yesterday".into());
        assert_eq!(
            fields(&register(&d, &catalog(), who()).expect_err("bad")),
            vec![("call_started_at", "invalid_timestamp")]
        );
        d.call_started_at = Some("2026-11-23T16:00:00Z".into());
        assert_eq!(
            fields(&register(&d, &catalog(), who()).expect_err("future")),
            vec![("call_started_at", "timestamp_in_future")]
        );
        d.call_started_at = Some("2026-11-23T09:30:00-05:00".into());
        assert!(register(&d, &catalog(), who()).is_ok());
    }

    #[test]
    fn names_are_checked_and_normalised() {
        assert_eq!(
            validate_full_name("  José   O'Neill-Pérez ").as_deref(),
            Ok("José O'Neill-Pérez")
        );
        assert_eq!(validate_full_name("R2D2").map_err(|e| e.code), Err("invalid_name"));
        // A decomposed "María" (i + combining acute) is accepted and stored composed.
        assert_eq!(validate_full_name("Mari\u{301}a Quispe").as_deref(), Ok("María Quispe"));
        // Direction overrides and zero-width characters are refused with a clear reason.
        for hidden in [
            "Ana\u{202E}ateP",
            "Ana\u{200B}Pérez",
            "\u{2066}Ana Pérez\u{2069}",
            "Ana\u{FEFF}",
        ] {
            assert_eq!(
                validate_full_name(hidden).map_err(|e| e.code),
                Err("invalid_characters"),
                "{hidden:?}"
            );
        }
        assert_eq!(
            text("Av. Sol 1\u{202E}", 1, 200, "address.line1").map_err(|e| e.code),
            Err("invalid_characters")
        );
        assert_eq!(validate_full_name(" ").map_err(|e| e.code), Err("required"));
        assert_eq!(
            validate_full_name(&"a".repeat(121)).map_err(|e| e.code),
            Err("too_long")
        );
    }

    #[test]
    fn state_machine_allows_exactly_the_documented_moves() {
        use PresaleAction as A;
        use PresaleStatus as S;
        let allowed = [
            (S::PendingRecording, A::AttachRecording, S::ReadyForReview),
            (S::ReadyForReview, A::Approve, S::Approved),
            (S::ReadyForReview, A::Reject, S::Rejected),
            (S::ReadyForReview, A::RequestCorrection, S::NeedsCorrection),
            (S::NeedsCorrection, A::SubmitCorrection, S::ReadyForReview),
        ];
        let actions = [
            A::AttachRecording,
            A::Approve,
            A::Reject,
            A::RequestCorrection,
            A::SubmitCorrection,
        ];
        for from in S::ALL {
            for action in actions {
                let expected = allowed
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action)
                    .map(|(_, _, to)| *to);
                match (from.apply(action), expected) {
                    (Ok(to), Some(want)) => assert_eq!(to, want),
                    (Err(e), None) => assert_eq!(e, TransitionError { from, action }),
                    (got, want) => panic!("{from} {action:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        assert!(S::Approved.is_final() && S::Rejected.is_final() && !S::NeedsCorrection.is_final());
    }

    #[test]
    fn transition_bumps_version_and_keeps_state_on_error() {
        let mut presale = register(&draft(), &catalog(), who()).expect("valid");
        let later = datetime!(2026-11-23 16:00 UTC);
        assert!(presale.transition(PresaleAction::Approve, later).is_err());
        assert_eq!((presale.status, presale.version), (PresaleStatus::PendingRecording, 1));
        assert_eq!(
            presale.transition(PresaleAction::AttachRecording, later),
            Ok(PresaleStatus::PendingRecording)
        );
        assert_eq!(
            (presale.status, presale.version, presale.updated_at),
            (PresaleStatus::ReadyForReview, 2, later)
        );
    }

    #[test]
    fn correction_replaces_only_what_was_sent() {
        let mut presale = register(&draft(), &catalog(), who()).expect("valid");
        let before = presale.customer.clone();
        let patch = CorrectionDraft {
            customer: None,
            items: Some(vec![ItemDraft {
                sku: "ROUTER".into(),
                quantity: 3,
                unit_price: None,
            }]),
            notes: None,
        };
        apply_correction(&mut presale, &patch, &catalog()).expect("valid correction");
        assert_eq!(presale.customer, before);
        assert_eq!(presale.total, Money::from_minor(5997, pen()));
        let empty = CorrectionDraft {
            customer: None,
            items: None,
            notes: None,
        };
        assert_eq!(
            fields(&apply_correction(&mut presale, &empty, &catalog()).expect_err("empty")),
            vec![("", "empty_correction")]
        );
    }

    #[test]
    fn drafts_refuse_unknown_fields() {
        let mut value = serde_json::to_value(draft()).expect("serialize");
        value["customer"]["nickname"] = serde_json::json!("x");
        assert!(serde_json::from_value::<PresaleDraft>(value).is_err());
    }

    #[test]
    fn presale_id_parse() {
        let id = PresaleId::generate();
        assert_eq!(PresaleId::parse(id.as_str()), Ok(id));
        assert_eq!(
            PresaleId::parse("../etc").map_err(|e| e.code),
            Err("invalid_presale_id")
        );
    }
}
