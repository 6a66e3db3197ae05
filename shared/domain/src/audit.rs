//! Audit records: one per state change, hash-chained per pre-sale so that an edited or deleted
//! record is detectable. Written in the same transaction as the change it describes. Each
//! record of a pre-sale also carries the hash of the pre-sale's whole state after the change
//! ([`state_hash`]), so an edit of the data itself (an approved total changed in the table) is
//! detected too, not only an edit of the records.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Hash that starts every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The aggregate the record belongs to (e.g. a pre-sale id).
    pub subject: String,
    /// Position in the chain; equals the subject's version after the change.
    pub seq: u64,
    #[serde(with = "crate::wire::instant")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub role: String,
    pub action: String,
    #[serde(default)]
    pub from_status: Option<String>,
    pub to_status: String,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default)]
    pub details: serde_json::Value,
    /// Hash of the subject's state after the change ([`state_hash`]); absent on records written
    /// before it existed, whose hashes stay valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_hash: Option<String>,
    /// 0 for a change of the subject (its version is `seq`); 1, 2… for the notes that follow it
    /// without changing the version (a playback of the recording, a lease renewal): chained like
    /// any record, so a deleted note is detected, yet a decision made on version `seq` stays
    /// valid while the validator listens.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub note: u32,
    pub prev_hash: String,
    pub hash: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// SHA-256 of a state in a canonical JSON form: object keys sorted, whole-number floats written
/// as integers (a store may give `20.0` back as `20`), so the state read back from the table
/// hashes as the state written.
pub fn state_hash<T: Serialize>(state: &T) -> String {
    fn write(value: &serde_json::Value, out: &mut String) {
        use serde_json::Value;
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(&map[key], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            Value::Number(n) => match n.as_f64() {
                Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                    out.push_str(&(f as i64).to_string())
                }
                _ => out.push_str(&n.to_string()),
            },
            other => out.push_str(&other.to_string()),
        }
    }
    let mut canonical = String::new();
    match serde_json::to_value(state) {
        Ok(value) => write(&value, &mut canonical),
        // Not representable as JSON: hash nothing rather than panic; verification then fails.
        Err(e) => canonical.push_str(&format!("unserializable: {e}")),
    }
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// What a caller knows when it records a change; sealing adds the chain fields.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub subject: String,
    pub seq: u64,
    pub at: OffsetDateTime,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub reasons: Vec<String>,
    pub details: serde_json::Value,
    pub state_hash: Option<String>,
    pub note: u32,
}

/// Who made a change: a person with the role their token carries, or a function of the back
/// office itself ([`Actor::system`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub role: String,
}

impl Actor {
    pub fn new(id: impl Into<String>, role: impl ToString) -> Self {
        Self {
            id: id.into(),
            role: role.to_string(),
        }
    }

    /// A back-office function acting on its own (recording-ingest, fulfillment-dispatch…).
    pub fn system(function: &str) -> Self {
        Self::new(function, "system")
    }
}

impl AuditEntry {
    /// `actor` moved `subject` to `to_status` (its version `seq` after the change) by `action`.
    /// The optional parts are added with [`Self::from_status`], [`Self::reasons`],
    /// [`Self::details`].
    pub fn new(
        subject: impl ToString,
        seq: u64,
        at: OffsetDateTime,
        actor: &Actor,
        action: &str,
        to_status: impl ToString,
    ) -> Self {
        Self {
            subject: subject.to_string(),
            seq,
            at,
            actor: actor.id.clone(),
            role: actor.role.clone(),
            action: action.to_owned(),
            from_status: None,
            to_status: to_status.to_string(),
            reasons: Vec::new(),
            details: serde_json::Value::Object(serde_json::Map::new()),
            state_hash: None,
            note: 0,
        }
    }

    /// A pre-sale's change as it stands after it: its id, version, status and the hash of its
    /// whole state (build it after the last change to the pre-sale, right before saving).
    pub fn presale(presale: &crate::presale::Presale, at: OffsetDateTime, actor: &Actor, action: &str) -> Self {
        let mut entry = Self::new(&presale.id, presale.version, at, actor, action, presale.status);
        entry.state_hash = Some(state_hash(presale));
        entry
    }

    /// Note `note` (1, 2…) after the pre-sale's version: something that happened to it without
    /// changing its version (see [`AuditRecord::note`]); `presale` as it stands after it.
    pub fn presale_note(
        presale: &crate::presale::Presale,
        note: u32,
        at: OffsetDateTime,
        actor: &Actor,
        action: &str,
    ) -> Self {
        let mut entry = Self::presale(presale, at, actor, action);
        entry.note = note;
        entry
    }

    pub fn from_status(mut self, status: impl ToString) -> Self {
        self.from_status = Some(status.to_string());
        self
    }

    pub fn reasons(mut self, reasons: Vec<String>) -> Self {
        self.reasons = reasons;
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    pub fn seal(self, prev_hash: &str) -> AuditRecord {
        let mut record = AuditRecord {
            subject: self.subject,
            seq: self.seq,
            at: self.at,
            actor: self.actor,
            role: self.role,
            action: self.action,
            from_status: self.from_status,
            to_status: self.to_status,
            reasons: self.reasons,
            details: self.details,
            state_hash: self.state_hash,
            note: self.note,
            prev_hash: prev_hash.to_owned(),
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        record
    }
}

impl AuditRecord {
    /// SHA-256 over every field but `hash`, in a fixed order (serde_json keeps struct order and
    /// `details` maps are sorted), so the same record always hashes the same.
    pub fn compute_hash(&self) -> String {
        let mut material = serde_json::json!([
            self.subject,
            self.seq,
            self.at.unix_timestamp_nanos().to_string(),
            self.actor,
            self.role,
            self.action,
            self.from_status,
            self.to_status,
            self.reasons,
            self.details,
            self.prev_hash,
        ]);
        // Appended only when present, so records written before state hashes keep theirs.
        if let (Some(state), Some(items)) = (&self.state_hash, material.as_array_mut()) {
            items.push(serde_json::Value::String(state.clone()));
        }
        // Likewise the note number, on notes only.
        if let (true, Some(items)) = (self.note > 0, material.as_array_mut()) {
            items.push(serde_json::Value::from(self.note));
        }
        let mut hasher = Sha256::new();
        hasher.update(material.to_string().as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// Result of checking a chain: where it first breaks, if it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainCheck {
    pub verified: bool,
    pub records: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// How many anchors were checked, when they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchors: Option<usize>,
}

/// Verify a chain read back in `seq` order, against the head hash kept on the subject itself
/// (which catches a deleted last record).
pub fn verify_chain(records: &[AuditRecord], expected_head: Option<&str>) -> ChainCheck {
    let mut prev = GENESIS_HASH.to_owned();
    let broken = |seq: u64, problem: String| ChainCheck {
        verified: false,
        records: records.len(),
        broken_at: Some(seq),
        problem: Some(problem),
        anchors: None,
    };
    // A change takes the next seq (note 0); a note keeps the seq of the change before it and
    // takes the next note number.
    let mut last: Option<(u64, u32)> = None;
    for record in records {
        let expected = match (last, record.note) {
            (None, _) => (1, 0),
            (Some((seq, _)), 0) => (seq + 1, 0),
            (Some((seq, note)), _) => (seq, note + 1),
        };
        if (record.seq, record.note) != expected {
            let what = if expected.1 == 0 {
                format!("record {}", expected.0)
            } else {
                format!("note {} of record {}", expected.1, expected.0)
            };
            return broken(expected.0, format!("{what} is missing or out of order"));
        }
        last = Some(expected);
        if record.prev_hash != prev {
            return broken(record.seq, "does not follow the previous record".into());
        }
        if record.compute_hash() != record.hash {
            return broken(record.seq, "content does not match its hash".into());
        }
        prev = record.hash.clone();
    }
    if let Some(head) = expected_head
        && head != prev
    {
        return broken(
            records.len() as u64 + 1,
            "the chain is shorter than its recorded head".into(),
        );
    }
    ChainCheck {
        verified: true,
        records: records.len(),
        broken_at: None,
        problem: None,
        anchors: None,
    }
}

/// [`verify_chain`], then the subject's current state against the state hash its last record
/// carries: a chain intact but data edited outside an audited change is detected.
pub fn verify_chain_and_state<T: Serialize>(
    records: &[AuditRecord],
    expected_head: Option<&str>,
    current: &T,
) -> ChainCheck {
    let check = verify_chain(records, expected_head);
    if !check.verified {
        return check;
    }
    match records.last() {
        Some(last) if last.state_hash.as_ref().is_some_and(|h| *h != state_hash(current)) => ChainCheck {
            verified: false,
            records: records.len(),
            broken_at: Some(last.seq),
            problem: Some("the stored data does not match the state its last audited change recorded".into()),
            anchors: None,
        },
        _ => check,
    }
}

/// A chain head written, once, to an append-only store outside the table (S3 with Object
/// Lock): whoever can rewrite the table cannot rewrite the anchors, so a chain recomputed from
/// the genesis with other content no longer contains the anchored hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub subject: String,
    /// The record the head belonged to; absent when the writer knew only the head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub hash: String,
    #[serde(with = "crate::wire::instant")]
    pub anchored_at: OffsetDateTime,
}

impl Anchor {
    pub fn of(record: &AuditRecord, at: OffsetDateTime) -> Self {
        Anchor {
            subject: record.subject.clone(),
            seq: Some(record.seq),
            hash: record.hash.clone(),
            anchored_at: at,
        }
    }
}

/// [`verify_chain_and_state`], then every anchor of the subject: each anchored hash must still
/// be in the chain, at its position when the anchor says it. A chain rewritten consistently
/// from the genesis passes the first checks and fails this one.
pub fn verify_chain_state_and_anchors<T: Serialize>(
    records: &[AuditRecord],
    expected_head: Option<&str>,
    current: &T,
    anchors: &[Anchor],
) -> ChainCheck {
    let mut check = verify_chain_and_state(records, expected_head, current);
    if !check.verified {
        return check;
    }
    let mut ordered: Vec<&Anchor> = anchors.iter().collect();
    ordered.sort_by_key(|a| (a.anchored_at, a.seq));
    for anchor in ordered {
        let found = records
            .iter()
            .find(|r| r.hash == anchor.hash)
            .filter(|r| anchor.seq.is_none_or(|seq| r.seq == seq));
        if found.is_none() {
            let at = anchor.seq.unwrap_or(1);
            return ChainCheck {
                verified: false,
                records: records.len(),
                broken_at: Some(at),
                problem: Some(format!(
                    "the chain was rewritten: the head anchored at {} is no longer in it",
                    anchor
                        .anchored_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                )),
                anchors: Some(anchors.len()),
            };
        }
    }
    check.anchors = Some(anchors.len());
    check
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let at = datetime!(2026-11-23 10:00 UTC) + time::Duration::seconds(seq as i64);
                let record = AuditEntry::new(
                    "p1",
                    seq,
                    at,
                    &Actor::new("agent-7", "agent"),
                    &format!("A{seq}"),
                    "PENDING_RECORDING",
                )
                .details(serde_json::json!({"b": 1, "a": 2}))
                .seal(&prev);
                prev = record.hash.clone();
                record
            })
            .collect()
    }

    /// `chain(2)`, then two notes after record 2, then record 3.
    fn chain_with_notes() -> Vec<AuditRecord> {
        let mut records = chain(2);
        let actor = Actor::new("val-1", "validator");
        for (seq, note) in [(2, 1), (2, 2), (3, 0)] {
            let prev = records.last().map(|r| r.hash.clone()).unwrap_or_default();
            let mut entry = AuditEntry::new(
                "p1",
                seq,
                datetime!(2026-11-23 11:00 UTC),
                &actor,
                "PLAYED",
                "READY_FOR_REVIEW",
            )
            .details(serde_json::json!({"listened_ms": 1000}));
            entry.note = note;
            records.push(entry.seal(&prev));
        }
        records
    }

    #[test]
    fn notes_chain_between_changes_without_taking_a_version() {
        let records = chain_with_notes();
        let head = records[4].hash.clone();
        assert!(verify_chain(&records, Some(&head)).verified);
        // The note is part of the hash: renumbering it is an edit.
        let mut renumbered = records.clone();
        renumbered[2].note = 5;
        assert_eq!(verify_chain(&renumbered, Some(&head)).broken_at, Some(2));
        // A deleted note breaks the chain where it was.
        let mut deleted = records.clone();
        deleted.remove(2);
        let check = verify_chain(&deleted, Some(&head));
        assert_eq!(check.broken_at, Some(2));
        assert!(check.problem.is_some_and(|p| p.contains("note 1 of record 2")));
        // Serialized, a change has no note field and a note has its number.
        let json = serde_json::to_value(&records).expect("serializes");
        assert!(json[1].get("note").is_none());
        assert_eq!(json[3]["note"], 2);
        let back: Vec<AuditRecord> = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, records);
    }

    #[test]
    fn an_intact_chain_verifies() {
        let records = chain(3);
        let head = records[2].hash.clone();
        assert!(verify_chain(&records, Some(&head)).verified);
    }

    #[test]
    fn edits_deletions_and_truncation_are_detected() {
        let records = chain(3);
        let head = records[2].hash.clone();
        let mut edited = records.clone();
        edited[1].actor = "someone-else".into();
        assert_eq!(verify_chain(&edited, Some(&head)).broken_at, Some(2));
        let mut deleted = records.clone();
        deleted.remove(1);
        assert_eq!(verify_chain(&deleted, Some(&head)).broken_at, Some(2));
        let truncated = &records[..2];
        assert_eq!(verify_chain(truncated, Some(&head)).broken_at, Some(3));
        let mut rehashed = records.clone();
        rehashed[1].actor = "x".into();
        rehashed[1].hash = rehashed[1].compute_hash();
        assert_eq!(verify_chain(&rehashed, Some(&head)).broken_at, Some(3));
    }

    #[test]
    fn state_hashes_are_canonical_and_catch_an_edited_state() {
        let a = serde_json::json!({"total": {"amount": "169.89"}, "ratio": 20.0, "b": [1, 2]});
        let same = serde_json::json!({"b": [1, 2], "ratio": 20, "total": {"amount": "169.89"}});
        assert_eq!(
            state_hash(&a),
            state_hash(&same),
            "key order and 20.0 vs 20 do not matter"
        );
        let record = AuditEntry::new(
            "p1",
            1,
            datetime!(2026-11-23 10:00 UTC),
            &Actor::system("t"),
            "A",
            "APPROVED",
        );
        let mut record = record.seal(GENESIS_HASH);
        record.state_hash = Some(state_hash(&a));
        record.hash = record.compute_hash();
        let head = record.hash.clone();
        let records = vec![record];
        assert!(verify_chain_and_state(&records, Some(&head), &same).verified);
        let edited = serde_json::json!({"b": [1, 2], "ratio": 20, "total": {"amount": "1.00"}});
        let check = verify_chain_and_state(&records, Some(&head), &edited);
        assert_eq!((check.verified, check.broken_at), (false, Some(1)));
    }

    #[test]
    fn records_without_a_state_hash_keep_their_hashes() {
        let record =
            AuditEntry::new("p1", 1, datetime!(2026-11-23 10:00 UTC), &Actor::system("t"), "A", "X").seal(GENESIS_HASH);
        let json = serde_json::to_value(&record).expect("json");
        assert!(json.get("state_hash").is_none());
        let back: AuditRecord = serde_json::from_value(json).expect("back");
        assert_eq!(back.compute_hash(), record.hash);
    }

    #[test]
    fn a_chain_rewritten_from_the_genesis_is_caught_by_its_anchor() {
        let records = chain(3);
        let head = records[2].hash.clone();
        let state = serde_json::json!({});
        let anchor = Anchor::of(&records[1], datetime!(2026-11-23 11:00 UTC));
        let check = verify_chain_state_and_anchors(&records, Some(&head), &state, std::slice::from_ref(&anchor));
        assert_eq!((check.verified, check.anchors), (true, Some(1)));

        // The same chain recomputed with another actor on record 1: every link holds.
        let mut prev = GENESIS_HASH.to_owned();
        let rewritten: Vec<AuditRecord> = records
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if r.seq == 1 {
                    r.actor = "someone-else".into();
                }
                r.prev_hash = prev.clone();
                r.hash = r.compute_hash();
                prev = r.hash.clone();
                r
            })
            .collect();
        let new_head = rewritten[2].hash.clone();
        assert!(verify_chain_and_state(&rewritten, Some(&new_head), &state).verified);
        let check = verify_chain_state_and_anchors(&rewritten, Some(&new_head), &state, std::slice::from_ref(&anchor));
        assert_eq!((check.verified, check.broken_at), (false, Some(2)), "{check:?}");

        // An anchor whose hash moved to another position is caught too.
        let moved = Anchor { seq: Some(3), ..anchor };
        assert!(!verify_chain_state_and_anchors(&records, Some(&head), &state, &[moved]).verified);
        // No anchors yet: the chain's own checks decide.
        assert!(verify_chain_state_and_anchors(&records, Some(&head), &state, &[]).verified);
    }
}
