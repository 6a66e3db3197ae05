//! Tipification: how every contact ended. A campaign's disposition catalog is a versioned tree
//! whose leaves each belong to one of three families (effective contact, non-effective contact,
//! no contact) and carry flags; each contact is recorded against one leaf of the catalog version
//! active at the time, so old KPIs stay reproducible.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::contact::{Email, PhoneNumber};
use super::identity::{Document, DocumentType};
use super::validation::{Errors, FieldError, Invalid};

pub mod callback;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Family {
    /// The intended person answered.
    Effective,
    /// Someone answered who is not the intended person (relative, wrong number, deceased…).
    NonEffective,
    /// Nobody answered (no answer, busy, voicemail, out of service).
    NoContact,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flags {
    #[serde(default)]
    pub sale: bool,
    #[serde(default)]
    pub callback: bool,
    #[serde(default, rename = "final")]
    pub is_final: bool,
    #[serde(default)]
    pub do_not_contact: bool,
}

/// A catalog node: a branch (children) or a leaf (family + flags).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    pub code: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    #[serde(default, skip_serializing_if = "is_default_flags")]
    pub flags: Flags,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Node>,
}

fn is_default_flags(flags: &Flags) -> bool {
    *flags == Flags::default()
}

/// A leaf as contacts refer to it, with its path of labels ("Contacto efectivo › Titular › …").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaf {
    pub code: String,
    pub path: String,
    pub family: Family,
    pub flags: Flags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub version: u32,
    pub nodes: Vec<Node>,
}

/// The catalog every campaign starts with (Spanish labels, English codes).
pub fn default_nodes() -> Vec<Node> {
    let leaf = |code: &str, label: &str, family: Family, flags: Flags| Node {
        code: code.into(),
        label: label.into(),
        family: Some(family),
        flags,
        children: vec![],
    };
    let branch = |code: &str, label: &str, children: Vec<Node>| Node {
        code: code.into(),
        label: label.into(),
        family: None,
        flags: Flags::default(),
        children,
    };
    let none = Flags::default;
    let sale = Flags {
        sale: true,
        is_final: true,
        ..Flags::default()
    };
    let callback = Flags {
        callback: true,
        ..Flags::default()
    };
    let final_dnc = Flags {
        is_final: true,
        do_not_contact: true,
        ..Flags::default()
    };
    let final_only = Flags {
        is_final: true,
        ..Flags::default()
    };
    use Family::{Effective as E, NoContact as N, NonEffective as X};
    vec![
        branch(
            "EFFECTIVE",
            "Contacto efectivo",
            vec![branch(
                "HOLDER",
                "Titular",
                vec![
                    leaf("SALE", "Acepta (venta)", E, sale),
                    leaf("NOT_INTERESTED", "No desea producto", E, final_only.clone()),
                    leaf("CALL_BACK", "Volver a llamar", E, callback.clone()),
                    leaf("ALREADY_CUSTOMER", "Ya es cliente", E, final_only.clone()),
                    leaf("DO_NOT_CALL", "Pide no ser llamado", E, final_dnc.clone()),
                ],
            )],
        ),
        branch(
            "NON_EFFECTIVE",
            "Contacto no efectivo",
            vec![
                leaf("RELATIVE", "Familiar / tercero", X, callback),
                leaf("WRONG_NUMBER", "Número equivocado", X, final_dnc.clone()),
                leaf("MOVED", "Ya no vive ahí", X, final_only.clone()),
                leaf("DECEASED", "Fallecido", X, final_dnc),
                leaf("BROKEN_LINE", "Línea con interferencia / se cortó", X, none()),
            ],
        ),
        branch(
            "NO_CONTACT",
            "No contacto",
            vec![
                leaf("NO_ANSWER", "No contesta", N, none()),
                leaf("BUSY", "Ocupado", N, none()),
                leaf("VOICEMAIL", "Buzón de voz", N, none()),
                leaf("OUT_OF_SERVICE", "Fuera de servicio", N, final_only),
            ],
        ),
    ]
}

/// Check a catalog: unique codes, every leaf has a family, branches have children and no
/// family of their own, sale leaves are effective contacts.
pub fn validate_catalog(nodes: &[Node]) -> Result<(), Vec<FieldError>> {
    let mut errors = Errors::new();
    let mut codes = BTreeSet::new();
    if nodes.is_empty() {
        errors.push(Invalid::new("empty_catalog", "a catalog has at least one node").at("nodes"));
    }
    fn walk(nodes: &[Node], path: &str, codes: &mut BTreeSet<String>, errors: &mut Errors) {
        for (i, node) in nodes.iter().enumerate() {
            let here = format!("{path}[{i}]");
            let code_ok = !node.code.is_empty()
                && node.code.len() <= 40
                && node
                    .code
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if !code_ok {
                errors
                    .push(Invalid::new("invalid_code", "codes are 1-40 of A-Z, 0-9 and _").at(format!("{here}.code")));
            } else if !codes.insert(node.code.clone()) {
                errors.push(
                    Invalid::new("duplicate_code", format!("code {} appears more than once", node.code))
                        .at(format!("{here}.code")),
                );
            }
            if node.label.trim().is_empty() {
                errors.push(Invalid::new("required", "every node has a label").at(format!("{here}.label")));
            }
            if node.children.is_empty() {
                match node.family {
                    None => errors.push(
                        Invalid::new(
                            "leaf_without_family",
                            format!("leaf {} needs a family (or children)", node.code),
                        )
                        .at(format!("{here}.family")),
                    ),
                    Some(family) if node.flags.sale && family != Family::Effective => errors.push(
                        Invalid::new("sale_not_effective", "a sale can only follow an effective contact")
                            .at(format!("{here}.flags")),
                    ),
                    Some(_) => {}
                }
            } else {
                if node.family.is_some() || node.flags != Flags::default() {
                    errors.push(
                        Invalid::new(
                            "branch_with_family",
                            format!("{} has children: family and flags belong to its leaves", node.code),
                        )
                        .at(here.clone()),
                    );
                }
                walk(&node.children, &format!("{here}.children"), codes, errors);
            }
        }
    }
    walk(nodes, "nodes", &mut codes, &mut errors);
    errors.finish()
}

impl Catalog {
    /// The leaf with this code. A branch's code is not a disposition.
    pub fn leaf(&self, code: &str) -> Result<Leaf, Invalid> {
        fn find<'a>(nodes: &'a [Node], code: &str, trail: &mut Vec<&'a str>) -> Option<(&'a Node, String)> {
            for node in nodes {
                trail.push(&node.label);
                if node.code == code {
                    let path = trail.join(" › ");
                    trail.pop();
                    return Some((node, path));
                }
                if let Some(found) = find(&node.children, code, trail) {
                    trail.pop();
                    return Some(found);
                }
                trail.pop();
            }
            None
        }
        let (node, path) = find(&self.nodes, code, &mut Vec::new()).ok_or_else(|| {
            Invalid::new(
                "unknown_disposition",
                format!("{code:?} is not in catalog version {}", self.version),
            )
        })?;
        match node.family {
            Some(family) if node.children.is_empty() => Ok(Leaf {
                code: node.code.clone(),
                path,
                family,
                flags: node.flags.clone(),
            }),
            _ => Err(Invalid::new(
                "not_a_leaf",
                format!("{code} is a group ({path}); choose one of its dispositions"),
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Call,
    Whatsapp,
    Email,
    Sms,
    Web,
    Social,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Call => "call",
            Channel::Whatsapp => "whatsapp",
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Web => "web",
            Channel::Social => "social",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// One customer across channels: `phone:+51987654321`, `email:ana@example.pe`, `doc:DNI:45678912`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CustomerKey(String);

impl CustomerKey {
    pub fn parse(raw: &str) -> Result<CustomerKey, Invalid> {
        let invalid = || {
            Invalid::new(
                "invalid_customer_key",
                "a customer key is phone:<E.164 or Peruvian number>, email:<address> or doc:<DNI|RUC|CE|PASSPORT>:<number>",
            )
        };
        let (kind, value) = raw.trim().split_once(':').ok_or_else(invalid)?;
        match kind {
            "phone" => Ok(CustomerKey(format!(
                "phone:{}",
                PhoneNumber::parse(value, "PE")?.as_str()
            ))),
            "email" => Ok(CustomerKey(format!("email:{}", Email::parse(value)?.as_str()))),
            "doc" => {
                let (doc_type, number) = value.split_once(':').ok_or_else(invalid)?;
                let document = Document::new(doc_type.parse::<DocumentType>()?, number)?;
                Ok(CustomerKey(format!("doc:{}:{}", document.kind(), document.number())))
            }
            _ => Err(invalid()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CustomerKey {
    type Error = Invalid;
    fn try_from(raw: String) -> Result<Self, Invalid> {
        CustomerKey::parse(&raw)
    }
}

impl From<CustomerKey> for String {
    fn from(key: CustomerKey) -> String {
        key.0
    }
}

/// `POST /contacts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactDraft {
    pub channel: Channel,
    pub direction: Direction,
    /// The dialer's or chat platform's id of this interaction: resending it is safe.
    pub external_id: String,
    pub customer_key: String,
    pub campaign_id: String,
    pub disposition: String,
    pub started_at: String,
    pub ended_at: String,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub presale_id: Option<String>,
    #[serde(default)]
    pub callback_at: Option<String>,
    /// Seconds talking, on hold and in wrap-up (after-call work), as the dialer or platform
    /// measured them; the KPIs' AHT and talk hours come from these (see `kpi`).
    /// Signed on the wire so a negative value gets a field-named 422, not a type error.
    #[serde(default)]
    pub talk_seconds: Option<i64>,
    #[serde(default)]
    pub hold_seconds: Option<i64>,
    #[serde(default)]
    pub wrap_seconds: Option<i64>,
}

/// A timing field may not exceed a day: longer is a platform's clock error, not a call.
pub const MAX_TIMING_SECONDS: u32 = 24 * 60 * 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: String,
    pub client_id: String,
    pub campaign_id: String,
    pub agent_id: String,
    pub channel: Channel,
    pub direction: Direction,
    pub external_id: String,
    pub customer_key: CustomerKey,
    pub disposition: Leaf,
    pub catalog_version: u32,
    #[serde(with = "crate::wire::instant")]
    pub started_at: OffsetDateTime,
    #[serde(with = "crate::wire::instant")]
    pub ended_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presale_id: Option<String>,
    #[serde(
        default,
        with = "crate::wire::instant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub callback_at: Option<OffsetDateTime>,
    #[serde(with = "crate::wire::instant")]
    pub recorded_at: OffsetDateTime,
    /// Timing, when the platform reported it (contacts recorded before it was kept have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub talk_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrap_seconds: Option<u32>,
    /// The campaign-local day the contact started on: the day its attempt and counters count
    /// for (absent on contacts recorded before it was kept; see [`Contact::day`]).
    #[serde(default, with = "crate::wire::date_option", skip_serializing_if = "Option::is_none")]
    pub local_day: Option<time::Date>,
}

impl Contact {
    /// The campaign-local day this contact counts for.
    pub fn day(&self) -> time::Date {
        self.local_day.unwrap_or_else(|| self.started_at.date())
    }
}

/// One timing field: a whole number of seconds from 0 to [`MAX_TIMING_SECONDS`].
fn seconds(field: &str, raw: Option<i64>) -> Result<Option<u32>, Invalid> {
    let Some(raw) = raw else { return Ok(None) };
    match u32::try_from(raw) {
        Ok(value) if value <= MAX_TIMING_SECONDS => Ok(Some(value)),
        Ok(_) => Err(Invalid::new(
            "too_long",
            format!("{field} is at most {MAX_TIMING_SECONDS} seconds (24 h), got {raw}"),
        )),
        Err(_) if raw < 0 => Err(Invalid::new(
            "negative",
            format!("{field} cannot be negative, got {raw}"),
        )),
        Err(_) => Err(Invalid::new(
            "too_long",
            format!("{field} is at most {MAX_TIMING_SECONDS} seconds (24 h), got {raw}"),
        )),
    }
}

fn timestamp(raw: &str) -> Result<OffsetDateTime, Invalid> {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).map_err(|_| {
        Invalid::new(
            "invalid_timestamp",
            "an RFC 3339 timestamp with offset, e.g. 2026-11-23T10:15:00-05:00",
        )
    })
}

/// What the caller checked outside the domain: the linked pre-sale's customer and campaign.
#[derive(Debug, Clone)]
pub struct LinkedPresale {
    pub campaign_id: String,
    /// Who registered it: a sale counts for that agent only.
    pub agent_id: String,
    pub customer_keys: Vec<CustomerKey>,
}

pub struct ContactContext<'a> {
    pub id: String,
    pub client_id: String,
    pub agent_id: String,
    pub catalog: &'a Catalog,
    pub linked_presale: Option<LinkedPresale>,
    /// The campaign's zone: its local days count the contact.
    pub zone: &'a crate::zone::CampaignZone,
    pub now: OffsetDateTime,
}

/// Validate a contact against the active catalog and the rules of sale and callback codes.
pub fn record(draft: &ContactDraft, ctx: ContactContext<'_>) -> Result<Contact, Vec<FieldError>> {
    let mut errors = Errors::new();
    let external_ok = !draft.external_id.trim().is_empty() && draft.external_id.len() <= 128;
    if !external_ok {
        errors.push(
            Invalid::new(
                "invalid_external_id",
                "external_id is the platform's interaction id, 1-128 characters",
            )
            .at("external_id"),
        );
    }
    let key = errors.check("customer_key", CustomerKey::parse(&draft.customer_key));
    let leaf = errors.check("disposition", ctx.catalog.leaf(draft.disposition.trim()));
    let started = errors.check("started_at", timestamp(&draft.started_at));
    let ended = errors.check("ended_at", timestamp(&draft.ended_at));
    if let (Some(s), Some(e)) = (started, ended) {
        if e <= s {
            errors.push(Invalid::new("end_before_start", "ended_at must be after started_at").at("ended_at"));
        }
        if s > ctx.now + time::Duration::minutes(5) {
            errors.push(Invalid::new("timestamp_in_future", "the contact cannot start in the future").at("started_at"));
        }
    }
    let talk = errors
        .check("talk_seconds", seconds("talk_seconds", draft.talk_seconds))
        .flatten();
    let hold = errors
        .check("hold_seconds", seconds("hold_seconds", draft.hold_seconds))
        .flatten();
    let wrap = errors
        .check("wrap_seconds", seconds("wrap_seconds", draft.wrap_seconds))
        .flatten();
    if let (Some(s), Some(e)) = (started, ended)
        && e > s
    {
        // Talk and hold happen inside the interaction; wrap-up comes after it ends, so it is
        // not bounded by the duration. Whole seconds, rounded up: platforms round too.
        let span = e - s;
        let duration = span.whole_seconds() + i64::from(span.subsec_nanoseconds() > 0);
        let in_call = i64::from(talk.unwrap_or(0)) + i64::from(hold.unwrap_or(0));
        if in_call > duration {
            let field = if talk.is_some() { "talk_seconds" } else { "hold_seconds" };
            errors.push(
                Invalid::new(
                    "exceeds_duration",
                    format!("talk_seconds + hold_seconds ({in_call}) exceed the contact's duration from started_at to ended_at ({duration} s)"),
                )
                .at(field),
            );
        }
    }
    let callback_at = match &draft.callback_at {
        None => None,
        Some(raw) => errors.check("callback_at", timestamp(raw)),
    };
    if let Some(leaf) = &leaf {
        if leaf.flags.callback {
            match callback_at {
                None => errors.push(
                    Invalid::new(
                        "required",
                        format!("{} schedules a callback: send callback_at", leaf.code),
                    )
                    .at("callback_at"),
                ),
                Some(at) if at <= ctx.now => {
                    errors.push(Invalid::new("callback_in_past", "callback_at must be in the future").at("callback_at"))
                }
                Some(_) => {}
            }
        } else if draft.callback_at.is_some() {
            errors.push(
                Invalid::new("not_applicable", format!("{} does not schedule callbacks", leaf.code)).at("callback_at"),
            );
        }
        match (&draft.presale_id, &ctx.linked_presale) {
            (None, _) if leaf.flags.sale => errors
                .push(Invalid::new("required", "a sale disposition needs the presale_id it produced").at("presale_id")),
            (None, _) => {}
            // Whatever the disposition, a contact never stores a pre-sale the caller cannot see
            // (another client's, or none at all).
            (Some(_), None) => {
                errors.push(Invalid::new("unknown_presale", "no such pre-sale for your clients").at("presale_id"))
            }
            (Some(_), Some(linked)) => {
                if leaf.flags.sale && linked.agent_id != ctx.agent_id {
                    errors.push(
                        Invalid::new(
                            "presale_other_agent",
                            "a sale counts for the agent who registered the pre-sale",
                        )
                        .at("presale_id"),
                    );
                }
                if linked.campaign_id != draft.campaign_id {
                    errors.push(
                        Invalid::new("presale_other_campaign", "the pre-sale belongs to another campaign")
                            .at("presale_id"),
                    );
                }
                if key.as_ref().is_some_and(|k| !linked.customer_keys.contains(k)) {
                    errors.push(
                        Invalid::new("presale_other_customer", "the pre-sale is of another customer").at("presale_id"),
                    );
                }
            }
        }
    }
    let notes = draft
        .notes
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| n.chars().take(2000).collect::<String>());
    errors.finish()?;
    let (Some(key), Some(leaf), Some(started_at), Some(ended_at)) = (key, leaf, started, ended) else {
        return Err(vec![Invalid::new("invalid", "invalid contact").at("")]);
    };
    Ok(Contact {
        id: ctx.id,
        client_id: ctx.client_id,
        campaign_id: draft.campaign_id.trim().to_owned(),
        agent_id: ctx.agent_id,
        channel: draft.channel,
        direction: draft.direction,
        external_id: draft.external_id.trim().to_owned(),
        customer_key: key,
        disposition: leaf,
        catalog_version: ctx.catalog.version,
        started_at,
        ended_at,
        notes,
        presale_id: draft.presale_id.clone(),
        callback_at,
        recorded_at: ctx.now,
        talk_seconds: talk,
        hold_seconds: hold,
        wrap_seconds: wrap,
        local_day: Some(ctx.zone.local_date(started_at)),
    })
}

/// May the customer be contacted now, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contactability {
    pub contactable: bool,
    pub reasons: Vec<String>,
    #[serde(
        default,
        with = "crate::wire::instant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<OffsetDateTime>,
}

/// From the customer's state: a do-not-contact disposition (permanent), attempts today against
/// the daily limit, and a callback scheduled for later.
pub fn contactability(
    do_not_contact: Option<&str>,
    attempts_today: i64,
    max_per_day: i64,
    next_callback: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Contactability {
    let mut reasons = Vec::new();
    let mut not_before = None;
    if let Some(code) = do_not_contact {
        reasons.push(format!("DO_NOT_CONTACT: last disposition {code}"));
    }
    if attempts_today >= max_per_day {
        reasons.push(format!("DAILY_LIMIT: {attempts_today} of {max_per_day} attempts today"));
    }
    if let Some(at) = next_callback.filter(|at| *at > now) {
        reasons.push(format!("CALLBACK_SCHEDULED: at {at}"));
        not_before = Some(at);
    }
    Contactability {
        contactable: reasons.is_empty(),
        reasons,
        not_before,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn catalog() -> Catalog {
        Catalog {
            version: 1,
            nodes: default_nodes(),
        }
    }

    #[test]
    fn the_default_catalog_is_valid_and_every_leaf_has_a_family() {
        assert_eq!(validate_catalog(&default_nodes()), Ok(()));
        let leaf = catalog().leaf("NOT_INTERESTED").expect("leaf");
        assert_eq!(
            (leaf.family, leaf.path.as_str()),
            (Family::Effective, "Contacto efectivo › Titular › No desea producto")
        );
        assert_eq!(catalog().leaf("HOLDER").map_err(|e| e.code), Err("not_a_leaf"));
        assert_eq!(catalog().leaf("NOPE").map_err(|e| e.code), Err("unknown_disposition"));
    }

    #[test]
    fn catalog_validation() {
        let mut nodes = default_nodes();
        nodes[2].children[0].code = "BUSY".into();
        nodes.push(Node {
            code: "EMPTY".into(),
            label: "Vacío".into(),
            family: None,
            flags: Flags::default(),
            children: vec![],
        });
        nodes[0].children[0].children[0].family = Some(Family::NoContact);
        let errors = validate_catalog(&nodes).expect_err("invalid");
        let codes: Vec<&str> = errors.iter().map(|e| e.code).collect();
        assert_eq!(
            codes,
            vec!["sale_not_effective", "duplicate_code", "leaf_without_family"]
        );
        assert_eq!(validate_catalog(&[]).map_err(|e| e[0].code), Err("empty_catalog"));
    }

    fn draft(disposition: &str) -> ContactDraft {
        ContactDraft {
            channel: Channel::Call,
            direction: Direction::Outbound,
            external_id: "dialer-1".into(),
            customer_key: "phone:987 654 321".into(),
            campaign_id: "c1".into(),
            disposition: disposition.into(),
            started_at: "2026-11-23T10:00:00-05:00".into(),
            ended_at: "2026-11-23T10:04:00-05:00".into(),
            notes: None,
            presale_id: None,
            callback_at: None,
            talk_seconds: None,
            hold_seconds: None,
            wrap_seconds: None,
        }
    }

    fn lima() -> &'static crate::zone::CampaignZone {
        static LIMA: std::sync::OnceLock<crate::zone::CampaignZone> = std::sync::OnceLock::new();
        LIMA.get_or_init(|| crate::zone::CampaignZone::parse("America/Lima").expect("a zone"))
    }

    fn ctx(catalog: &Catalog, linked: Option<LinkedPresale>) -> ContactContext<'_> {
        ContactContext {
            id: "k1".into(),
            client_id: "acme".into(),
            agent_id: "agent-7".into(),
            catalog,
            linked_presale: linked,
            zone: lima(),
            now: datetime!(2026-11-23 16:00 UTC),
        }
    }

    fn codes(r: Result<Contact, Vec<FieldError>>) -> Vec<(String, &'static str)> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect()
    }

    #[test]
    fn contacts_follow_the_rules() {
        let c = catalog();
        let ok = record(&draft("NO_ANSWER"), ctx(&c, None)).expect("valid");
        assert_eq!(
            (ok.customer_key.as_str(), ok.disposition.family, ok.catalog_version),
            ("phone:+51987654321", Family::NoContact, 1)
        );
        assert_eq!(
            codes(record(&draft("HOLDER"), ctx(&c, None))),
            vec![("disposition".into(), "not_a_leaf")]
        );
        let mut d = draft("CALL_BACK");
        assert_eq!(
            codes(record(&d, ctx(&c, None))),
            vec![("callback_at".into(), "required")]
        );
        d.callback_at = Some("2026-11-23T09:00:00-05:00".into());
        assert_eq!(
            codes(record(&d, ctx(&c, None))),
            vec![("callback_at".into(), "callback_in_past")]
        );
        d.callback_at = Some("2026-11-24T09:00:00-05:00".into());
        assert!(record(&d, ctx(&c, None)).is_ok());
        let mut d = draft("NO_ANSWER");
        d.ended_at = d.started_at.clone();
        d.customer_key = "fax:123".into();
        assert_eq!(
            codes(record(&d, ctx(&c, None))),
            vec![
                ("customer_key".into(), "invalid_customer_key"),
                ("ended_at".into(), "end_before_start")
            ]
        );
    }

    #[test]
    fn timing_is_whole_seconds_within_the_contact_and_a_day() {
        let c = catalog();
        // The draft lasts 4 minutes: 240 s.
        let timed = |talk: Option<i64>, hold: Option<i64>, wrap: Option<i64>| {
            let mut d = draft("NOT_INTERESTED");
            (d.talk_seconds, d.hold_seconds, d.wrap_seconds) = (talk, hold, wrap);
            record(&d, ctx(&c, None))
        };
        let ok = timed(Some(200), Some(40), Some(600)).expect("valid");
        assert_eq!(
            (ok.talk_seconds, ok.hold_seconds, ok.wrap_seconds),
            (Some(200), Some(40), Some(600)),
            "wrap-up follows the call, so it may exceed its duration"
        );
        let none = timed(None, None, None).expect("valid");
        assert_eq!(
            (none.talk_seconds, none.hold_seconds, none.wrap_seconds),
            (None, None, None)
        );
        assert_eq!(timed(Some(0), Some(0), Some(0)).map(|c| c.talk_seconds), Ok(Some(0)));
        assert_eq!(
            codes(timed(Some(-1), None, None)),
            vec![("talk_seconds".into(), "negative")]
        );
        assert_eq!(
            codes(timed(None, None, Some(86_401))),
            vec![("wrap_seconds".into(), "too_long")]
        );
        assert!(timed(None, None, Some(86_400)).is_ok());
        assert_eq!(
            codes(timed(None, Some(i64::MAX), None)),
            vec![("hold_seconds".into(), "too_long")]
        );
        assert_eq!(
            codes(timed(Some(200), Some(41), None)),
            vec![("talk_seconds".into(), "exceeds_duration")]
        );
        assert_eq!(
            codes(timed(None, Some(241), None)),
            vec![("hold_seconds".into(), "exceeds_duration")]
        );
        // A fraction of a second of duration rounds up rather than refusing the platform's rounding.
        let mut d = draft("NOT_INTERESTED");
        d.ended_at = "2026-11-23T10:04:00.400-05:00".into();
        d.talk_seconds = Some(241);
        assert!(record(&d, ctx(&c, None)).is_ok());
        // Timing is stored with the contact and omitted when absent.
        let json = serde_json::to_value(&ok).expect("json");
        assert_eq!(
            (json["talk_seconds"].as_u64(), json["wrap_seconds"].as_u64()),
            (Some(200), Some(600))
        );
        assert!(serde_json::to_value(&none).expect("json").get("talk_seconds").is_none());
        assert_eq!(serde_json::from_value::<Contact>(json).ok(), Some(ok));
    }

    #[test]
    fn a_contact_counts_for_the_campaigns_local_day_not_the_callers() {
        let c = catalog();
        // 21:30 in Lima is 02:30 UTC the next day; whatever offset the caller writes, the
        // contact belongs to Lima's 23 November.
        for (started, ended) in [
            ("2026-11-23T21:30:00-05:00", "2026-11-23T21:34:00-05:00"),
            ("2026-11-24T02:30:00Z", "2026-11-24T02:34:00Z"),
            ("2026-11-24T11:30:00+09:00", "2026-11-24T11:34:00+09:00"),
        ] {
            let mut d = draft("NO_ANSWER");
            (d.started_at, d.ended_at) = (started.into(), ended.into());
            let mut ctx = ctx(&c, None);
            ctx.now = datetime!(2026-11-24 03:00 UTC);
            let contact = record(&d, ctx).expect("valid");
            assert_eq!(contact.day(), time::macros::date!(2026 - 11 - 23), "{started}");
        }
    }

    #[test]
    fn a_sale_needs_a_presale_of_the_same_customer_and_campaign() {
        let c = catalog();
        let mut d = draft("SALE");
        assert_eq!(
            codes(record(&d, ctx(&c, None))),
            vec![("presale_id".into(), "required")]
        );
        d.presale_id = Some("p1".into());
        assert_eq!(
            codes(record(&d, ctx(&c, None))),
            vec![("presale_id".into(), "unknown_presale")]
        );
        let other = LinkedPresale {
            campaign_id: "c2".into(),
            agent_id: "agent-7".into(),
            customer_keys: vec![CustomerKey::parse("phone:+51911111111").expect("key")],
        };
        assert_eq!(
            codes(record(&d, ctx(&c, Some(other)))),
            vec![
                ("presale_id".into(), "presale_other_campaign"),
                ("presale_id".into(), "presale_other_customer")
            ]
        );
        let mine = LinkedPresale {
            campaign_id: "c1".into(),
            agent_id: "agent-7".into(),
            customer_keys: vec![CustomerKey::parse("phone:987654321").expect("key")],
        };
        assert!(record(&d, ctx(&c, Some(mine.clone()))).is_ok());
        // Another agent's pre-sale never becomes this agent's sale (it would inflate counters).
        let colleagues = LinkedPresale {
            agent_id: "agent-8".into(),
            ..mine.clone()
        };
        assert_eq!(
            codes(record(&d, ctx(&c, Some(colleagues.clone())))),
            vec![("presale_id".into(), "presale_other_agent")]
        );
        // Any disposition may point at a pre-sale, but only one the caller can see.
        let mut callback = draft("NO_ANSWER");
        callback.presale_id = Some("p-of-another-client".into());
        assert_eq!(
            codes(record(&callback, ctx(&c, None))),
            vec![("presale_id".into(), "unknown_presale")]
        );
        assert!(record(&callback, ctx(&c, Some(colleagues))).is_ok());
    }

    #[test]
    fn customer_keys_normalize() {
        assert_eq!(
            CustomerKey::parse("email:Ana@Example.PE").map(|k| k.0),
            Ok("email:ana@example.pe".into())
        );
        assert_eq!(
            CustomerKey::parse("doc:DNI:4567-8912").map(|k| k.0),
            Ok("doc:DNI:45678912".into())
        );
        assert!(CustomerKey::parse("doc:DNI").is_err());
        assert!(CustomerKey::parse("phone:12").is_err());
    }

    #[test]
    fn contactability_reasons() {
        let now = datetime!(2026-11-23 16:00 UTC);
        assert!(contactability(None, 2, 3, None, now).contactable);
        let c = contactability(Some("DO_NOT_CALL"), 3, 3, Some(now + time::Duration::hours(1)), now);
        assert_eq!(c.reasons.len(), 3);
        assert_eq!(c.not_before, Some(now + time::Duration::hours(1)));
        assert!(
            contactability(None, 0, 3, Some(now - time::Duration::hours(1)), now).contactable,
            "a past callback no longer blocks"
        );
    }
}
