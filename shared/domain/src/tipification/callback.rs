//! Callbacks: a contact whose disposition has the `callback` flag schedules one, due at the
//! contact's `callback_at`, on the due list of the agent who recorded it. A customer has at most
//! one pending (SCHEDULED) callback per campaign, and it leaves SCHEDULED exactly once:
//!
//! - **DONE**: a later contact with the same customer in the same campaign, of any disposition
//!   and by any agent, completes it: the customer was called back (or at least tried), whoever
//!   did it.
//! - **SUPERSEDED**: a later contact that schedules a new callback replaces it (the new one is
//!   the customer's pending callback).
//! - **CANCELLED**: its agent, a supervisor or an admin of its client cancels it, with a reason.
//!
//! "Later" means the contact started after the one that scheduled the callback. A contact that
//! started before it (a dialer reporting late) leaves the pending callback alone; if it asked
//! for a callback itself, that callback is recorded already SUPERSEDED by the pending one,
//! which was asked for more recently.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Contact, CustomerKey};
use crate::principal::{Principal, Role};
use crate::validation::{FieldError, Invalid};

/// Longest cancellation reason kept, in characters.
pub const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CallbackStatus {
    Scheduled,
    Done,
    Cancelled,
    Superseded,
}

impl CallbackStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackStatus::Scheduled => "SCHEDULED",
            CallbackStatus::Done => "DONE",
            CallbackStatus::Cancelled => "CANCELLED",
            CallbackStatus::Superseded => "SUPERSEDED",
        }
    }
}

impl std::fmt::Display for CallbackStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a callback left SCHEDULED.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closure {
    /// When the back office recorded it.
    #[serde(with = "crate::wire::instant")]
    pub at: OffsetDateTime,
    /// Who: the agent of the contact that completed or superseded it, or who cancelled it.
    pub by: String,
    /// The contact that completed or superseded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    /// The callback that replaced it (SUPERSEDED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// Why it was cancelled (CANCELLED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Callback {
    /// The id of the contact that scheduled it.
    pub id: String,
    pub client_id: String,
    pub campaign_id: String,
    /// The agent who scheduled it: it is on their due list.
    pub agent_id: String,
    pub customer_key: CustomerKey,
    /// The scheduling contact's disposition code.
    pub disposition: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(with = "crate::wire::instant")]
    pub due_at: OffsetDateTime,
    /// When the scheduling contact started: only contacts that start later complete it.
    #[serde(with = "crate::wire::instant")]
    pub requested_at: OffsetDateTime,
    pub status: CallbackStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Closure>,
}

impl Callback {
    /// The callback `contact` schedules, if its disposition asks for one.
    pub fn scheduled_by(contact: &Contact) -> Option<Callback> {
        let due_at = contact.callback_at?;
        Some(Callback {
            id: contact.id.clone(),
            client_id: contact.client_id.clone(),
            campaign_id: contact.campaign_id.clone(),
            agent_id: contact.agent_id.clone(),
            customer_key: contact.customer_key.clone(),
            disposition: contact.disposition.code.clone(),
            notes: contact.notes.clone(),
            due_at,
            requested_at: contact.started_at,
            status: CallbackStatus::Scheduled,
            closed: None,
        })
    }

    pub fn is_scheduled(&self) -> bool {
        self.status == CallbackStatus::Scheduled
    }

    fn closed_as(&self, status: CallbackStatus, closure: Closure) -> Callback {
        Callback {
            status,
            closed: Some(closure),
            ..self.clone()
        }
    }

    /// Cancel: only a scheduled callback, with a reason. Cancelling a cancelled callback again
    /// changes nothing (a retried request), whoever asks and with whatever reason.
    pub fn cancel(&self, by: &str, reason: &str, now: OffsetDateTime) -> Result<Cancel, CancelRefused> {
        let reason = cancel_reason(reason).map_err(|e| CancelRefused::Reason(e.at("reason")))?;
        match self.status {
            CallbackStatus::Scheduled => Ok(Cancel::Cancelled(Box::new(self.closed_as(
                CallbackStatus::Cancelled,
                Closure {
                    at: now,
                    by: by.to_owned(),
                    contact_id: None,
                    superseded_by: None,
                    reason: Some(reason),
                },
            )))),
            CallbackStatus::Cancelled => Ok(Cancel::AlreadyCancelled),
            status => Err(CancelRefused::Closed(status)),
        }
    }
}

/// A cancellation's reason: trimmed, 1 to [`MAX_REASON_CHARS`] characters.
pub fn cancel_reason(raw: &str) -> Result<String, Invalid> {
    let reason = raw.trim();
    if reason.is_empty() {
        return Err(Invalid::new("required", "say why the callback is cancelled"));
    }
    let chars = reason.chars().count();
    if chars > MAX_REASON_CHARS {
        return Err(Invalid::new(
            "too_long",
            format!("a reason is at most {MAX_REASON_CHARS} characters, got {chars}"),
        ));
    }
    Ok(reason.to_owned())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancel {
    /// The callback as it is now: CANCELLED.
    Cancelled(Box<Callback>),
    /// It was cancelled before: nothing changes.
    AlreadyCancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelRefused {
    #[error("{}", .0.detail)]
    Reason(FieldError),
    #[error("the callback is {0}: only a scheduled callback can be cancelled")]
    Closed(CallbackStatus),
}

/// Who may cancel callbacks at all: agents (their own), supervisors and admins.
pub fn may_cancel(principal: &Principal) -> bool {
    principal.is_any(&[Role::Agent, Role::Supervisor, Role::Admin])
}

/// Whether `principal` sees `callback`: one of its clients, and for an agent their own only
/// (anyone else's reads as missing).
pub fn visible_to(principal: &Principal, callback: &Callback) -> bool {
    principal.acts_for(&callback.client_id) && (!principal.is(Role::Agent) || callback.agent_id == principal.user_id)
}

/// What one new contact does to its customer's callbacks in its campaign. The store applies it
/// in the contact's own transaction, only if the customer's pending callback is still
/// `expected_pending` (otherwise the caller reads again and recomputes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallbackChanges {
    /// The id of the customer's pending callback as read (`None`: there was none).
    pub expected_pending: Option<String>,
    /// The callback the contact schedules: SCHEDULED, or born SUPERSEDED when the pending one
    /// was asked for after this contact started.
    pub scheduled: Option<Callback>,
    /// The pending callback, closed: DONE or SUPERSEDED.
    pub closed: Option<Callback>,
}

/// The customer's pending callback after a [`CallbackChanges`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingAfter<'a> {
    Unchanged,
    Set(&'a Callback),
    Cleared,
}

impl CallbackChanges {
    pub fn pending_after(&self) -> PendingAfter<'_> {
        match (&self.scheduled, &self.closed) {
            (Some(new), _) if new.is_scheduled() => PendingAfter::Set(new),
            (_, Some(_)) => PendingAfter::Cleared,
            _ => PendingAfter::Unchanged,
        }
    }
}

/// The changes `contact` makes, given the customer's pending callback in its campaign.
pub fn on_contact(pending: Option<&Callback>, contact: &Contact, now: OffsetDateTime) -> CallbackChanges {
    let mut scheduled = Callback::scheduled_by(contact);
    let expected_pending = pending.map(|p| p.id.clone());
    let Some(pending) = pending.filter(|p| p.is_scheduled() && p.id != contact.id) else {
        return CallbackChanges {
            expected_pending,
            scheduled,
            closed: None,
        };
    };
    let closure = |superseded_by: Option<String>| Closure {
        at: now,
        by: contact.agent_id.clone(),
        contact_id: Some(contact.id.clone()),
        superseded_by,
        reason: None,
    };
    if contact.started_at <= pending.requested_at {
        // An earlier interaction reported late: the pending callback was asked for after it.
        scheduled = scheduled.map(|s| s.closed_as(CallbackStatus::Superseded, closure(Some(pending.id.clone()))));
        return CallbackChanges {
            expected_pending,
            scheduled,
            closed: None,
        };
    }
    let closed = match &scheduled {
        Some(new) => pending.closed_as(CallbackStatus::Superseded, closure(Some(new.id.clone()))),
        None => pending.closed_as(CallbackStatus::Done, closure(None)),
    };
    CallbackChanges {
        expected_pending,
        scheduled,
        closed: Some(closed),
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::super::{Channel, Direction, Family, Flags, Leaf};
    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-11-23 16:00 UTC);

    fn contact(id: &str, agent: &str, started_min_ago: i64, callback_in: Option<Duration>) -> Contact {
        let started_at = NOW - Duration::minutes(started_min_ago);
        Contact {
            id: id.into(),
            client_id: "acme".into(),
            campaign_id: "c1".into(),
            agent_id: agent.into(),
            channel: Channel::Call,
            direction: Direction::Outbound,
            external_id: format!("ext-{id}"),
            customer_key: CustomerKey::parse("phone:987654321").expect("a key"),
            disposition: Leaf {
                code: if callback_in.is_some() {
                    "CALL_BACK"
                } else {
                    "NO_ANSWER"
                }
                .into(),
                path: "…".into(),
                family: Family::Effective,
                flags: Flags {
                    callback: callback_in.is_some(),
                    ..Flags::default()
                },
            },
            catalog_version: 0,
            started_at,
            ended_at: started_at + Duration::minutes(1),
            notes: Some("después de las 6".into()),
            presale_id: None,
            callback_at: callback_in.map(|d| NOW + d),
            recorded_at: NOW,
            talk_seconds: None,
            hold_seconds: None,
            wrap_seconds: None,
            local_day: None,
        }
    }

    fn scheduled(id: &str, started_min_ago: i64) -> Callback {
        Callback::scheduled_by(&contact(id, "agent-7", started_min_ago, Some(Duration::days(1)))).expect("a callback")
    }

    fn principal(user: &str, role: Role, client: &str) -> Principal {
        Principal {
            user_id: user.into(),
            role,
            clients: vec![client.into()],
        }
    }

    #[test]
    fn a_callback_disposition_schedules_a_callback_on_its_agents_list() {
        let c = contact("k1", "agent-7", 10, Some(Duration::hours(2)));
        let callback = Callback::scheduled_by(&c).expect("scheduled");
        assert_eq!(
            (
                callback.id.as_str(),
                callback.agent_id.as_str(),
                callback.status,
                callback.due_at,
                callback.requested_at
            ),
            (
                "k1",
                "agent-7",
                CallbackStatus::Scheduled,
                NOW + Duration::hours(2),
                c.started_at
            )
        );
        assert_eq!(callback.notes.as_deref(), Some("después de las 6"));
        assert_eq!(Callback::scheduled_by(&contact("k2", "agent-7", 10, None)), None);
        let first = on_contact(None, &c, NOW);
        assert_eq!(
            (first.pending_after(), &first.expected_pending, &first.closed),
            (PendingAfter::Set(&callback), &None, &None)
        );
    }

    #[test]
    fn a_later_contact_of_any_disposition_by_any_agent_completes_the_pending_callback() {
        let pending = scheduled("k1", 10);
        for agent in ["agent-7", "agent-8"] {
            let later = contact("k2", agent, 5, None);
            let changes = on_contact(Some(&pending), &later, NOW);
            let closed = changes.closed.clone().expect("closed");
            assert_eq!(changes.expected_pending.as_deref(), Some("k1"));
            assert_eq!(changes.scheduled, None);
            assert_eq!(changes.pending_after(), PendingAfter::Cleared);
            assert_eq!(closed.status, CallbackStatus::Done);
            assert_eq!(
                closed.closed,
                Some(Closure {
                    at: NOW,
                    by: agent.into(),
                    contact_id: Some("k2".into()),
                    superseded_by: None,
                    reason: None,
                })
            );
            // Everything else about it stays as scheduled.
            assert_eq!(
                Callback {
                    status: CallbackStatus::Scheduled,
                    closed: None,
                    ..closed
                },
                pending
            );
        }
    }

    #[test]
    fn a_new_callback_supersedes_the_pending_one() {
        let pending = scheduled("k1", 10);
        let changes = on_contact(
            Some(&pending),
            &contact("k2", "agent-8", 5, Some(Duration::days(2))),
            NOW,
        );
        let closed = changes.closed.clone().expect("closed");
        let new = changes.scheduled.clone().expect("new");
        assert_eq!(
            (closed.status, closed.closed.and_then(|c| c.superseded_by)),
            (CallbackStatus::Superseded, Some("k2".into()))
        );
        assert_eq!(
            (new.status, new.agent_id.as_str()),
            (CallbackStatus::Scheduled, "agent-8")
        );
        assert_eq!(changes.pending_after(), PendingAfter::Set(&new));
    }

    #[test]
    fn a_contact_reported_late_leaves_the_pending_callback_alone() {
        let pending = scheduled("k1", 10);
        // Started before the pending callback was asked for (and at the same instant).
        for started in [20, 10] {
            let plain = on_contact(Some(&pending), &contact("k0", "agent-7", started, None), NOW);
            assert_eq!((plain.closed, plain.scheduled), (None, None));
            assert_eq!(plain.expected_pending.as_deref(), Some("k1"));
            let stale = on_contact(
                Some(&pending),
                &contact("k0", "agent-7", started, Some(Duration::hours(1))),
                NOW,
            );
            let born = stale.scheduled.clone().expect("recorded");
            assert_eq!(stale.closed, None);
            assert_eq!(
                (born.status, born.closed.and_then(|c| c.superseded_by)),
                (CallbackStatus::Superseded, Some("k1".into()))
            );
            assert_eq!(stale.pending_after(), PendingAfter::Unchanged);
        }
    }

    #[test]
    fn only_a_scheduled_callback_is_cancelled_and_cancelling_twice_changes_nothing() {
        let pending = scheduled("k1", 10);
        let Ok(Cancel::Cancelled(cancelled)) = pending.cancel("sup-1", "  el cliente ya compró  ", NOW) else {
            panic!("a scheduled callback is cancelled");
        };
        assert_eq!(cancelled.status, CallbackStatus::Cancelled);
        assert_eq!(
            cancelled.closed,
            Some(Closure {
                at: NOW,
                by: "sup-1".into(),
                contact_id: None,
                superseded_by: None,
                reason: Some("el cliente ya compró".into()),
            })
        );
        assert_eq!(
            cancelled.cancel("agent-7", "otra razón", NOW + Duration::minutes(1)),
            Ok(Cancel::AlreadyCancelled)
        );
        let done = on_contact(Some(&pending), &contact("k2", "agent-7", 5, None), NOW)
            .closed
            .expect("done");
        assert_eq!(
            done.cancel("sup-1", "x", NOW),
            Err(CancelRefused::Closed(CallbackStatus::Done))
        );
        let superseded = on_contact(
            Some(&pending),
            &contact("k2", "agent-7", 5, Some(Duration::hours(3))),
            NOW,
        )
        .closed
        .expect("superseded");
        assert_eq!(
            superseded.cancel("sup-1", "x", NOW),
            Err(CancelRefused::Closed(CallbackStatus::Superseded))
        );
    }

    #[test]
    fn a_cancellation_needs_a_reason_of_at_most_500_characters() {
        let pending = scheduled("k1", 10);
        let code = |reason: &str| match pending.cancel("sup-1", reason, NOW) {
            Err(CancelRefused::Reason(e)) => Some((e.field, e.code)),
            _ => None,
        };
        assert_eq!(code("   "), Some(("reason".into(), "required")));
        assert_eq!(code(&"ñ".repeat(501)), Some(("reason".into(), "too_long")));
        assert_eq!(code(&"ñ".repeat(500)), None);
    }

    #[test]
    fn agents_cancel_their_own_supervisors_and_admins_any_of_their_clients() {
        let callback = scheduled("k1", 10);
        for role in [Role::Agent, Role::Supervisor, Role::Admin] {
            assert!(may_cancel(&principal("x", role, "acme")), "{role}");
        }
        for role in [Role::Validator, Role::Finance] {
            assert!(!may_cancel(&principal("x", role, "acme")), "{role}");
        }
        assert!(visible_to(&principal("agent-7", Role::Agent, "acme"), &callback));
        assert!(!visible_to(&principal("agent-8", Role::Agent, "acme"), &callback));
        assert!(!visible_to(&principal("agent-7", Role::Agent, "globex"), &callback));
        assert!(visible_to(&principal("sup-1", Role::Supervisor, "acme"), &callback));
        assert!(!visible_to(&principal("sup-1", Role::Supervisor, "globex"), &callback));
    }

    #[test]
    fn callbacks_serialize_with_their_status_and_closure() {
        let pending = scheduled("k1", 10);
        let json = serde_json::to_value(&pending).expect("json");
        assert_eq!(
            (json["status"].as_str(), json["due_at"].as_str(), json.get("closed")),
            (Some("SCHEDULED"), Some("2026-11-24T16:00:00Z"), None)
        );
        let back: Callback = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, pending);
    }
}
