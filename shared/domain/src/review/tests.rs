use super::*;
use crate::recording::Finding;
use time::macros::datetime;

fn now() -> OffsetDateTime {
    datetime!(2026-11-23 16:00 UTC)
}

fn ready() -> Presale {
    let mut p = crate::testing::registered_presale(
        &crate::testing::campaign_catalog("c1", "acme"),
        "call-1",
        None,
        now() - time::Duration::hours(1),
    );
    p.transition(PresaleAction::AttachRecording, now() - time::Duration::minutes(30))
        .expect("attach");
    p
}

fn draft(kind: DecisionKind, version: u64) -> DecisionDraft {
    DecisionDraft {
        decision: kind,
        reasons: vec![],
        comment: None,
        override_reason: None,
        version,
    }
}

fn lease() -> time::Duration {
    time::Duration::minutes(10)
}

#[test]
fn the_agent_never_reviews_their_own_sale() {
    let mut p = ready();
    assert_eq!(claim(&mut p, "agent-7", now(), lease()), Err(ReviewError::OwnSale));
    claim(&mut p, "val-1", now(), lease()).expect("claim");
    let mut forged = p.clone();
    forged.claim = Some(Claim {
        validator_id: "agent-7".into(),
        claimed_at: now(),
        lease_until: now() + lease(),
    });
    let v = forged.version;
    assert_eq!(
        decide(&mut forged, &draft(DecisionKind::Approve, v), "agent-7", now()),
        Err(ReviewError::OwnSale)
    );
}

#[test]
fn claims_are_exclusive_until_the_lease_expires() {
    let mut p = ready();
    claim(&mut p, "val-1", now(), lease()).expect("claim");
    assert!(matches!(
        claim(&mut p.clone(), "val-2", now() + time::Duration::minutes(5), lease()),
        Err(ReviewError::ClaimedByOther(_))
    ));
    let later = now() + time::Duration::minutes(11);
    claim(&mut p, "val-2", later, lease()).expect("expired lease is claimable");
    assert_eq!(p.claim.as_ref().map(|c| c.validator_id.as_str()), Some("val-2"));
    assert!(matches!(
        release(&mut p.clone(), "val-1", later),
        Err(ReviewError::NotClaimed | ReviewError::ClaimedByOther(_))
    ));
    release(&mut p, "val-2", later).expect("release");
    assert!(p.claim.is_none());
}

#[test]
fn decisions_need_the_live_claim_and_the_current_version() {
    let mut p = ready();
    assert_eq!(
        decide(&mut p.clone(), &draft(DecisionKind::Approve, p.version), "val-1", now()),
        Err(ReviewError::NotClaimed)
    );
    claim(&mut p, "val-1", now(), lease()).expect("claim");
    assert!(matches!(
        decide(
            &mut p.clone(),
            &draft(DecisionKind::Approve, p.version - 1),
            "val-1",
            now()
        ),
        Err(ReviewError::Stale { .. })
    ));
    assert!(matches!(
        decide(&mut p.clone(), &draft(DecisionKind::Approve, p.version), "val-2", now()),
        Err(ReviewError::ClaimedByOther(_))
    ));
    let expired = now() + time::Duration::minutes(11);
    assert_eq!(
        decide(
            &mut p.clone(),
            &draft(DecisionKind::Approve, p.version),
            "val-1",
            expired
        ),
        Err(ReviewError::NotClaimed)
    );
    let v = p.version;
    let from = decide(&mut p, &draft(DecisionKind::Approve, v), "val-1", now()).expect("approve");
    assert_eq!(
        (from, p.status),
        (PresaleStatus::ReadyForReview, PresaleStatus::Approved)
    );
    assert_eq!(p.decision.as_ref().map(|d| d.review_secs), Some(1800));
    assert!(p.claim.is_none());
    let v = p.version;
    assert_eq!(
        decide(&mut p, &draft(DecisionKind::Approve, v), "val-1", now()),
        Err(ReviewError::NotReviewable(PresaleStatus::Approved))
    );
}

#[test]
fn reasons_come_from_the_catalog_and_blocking_findings_need_an_override() {
    let mut p = ready();
    p.findings.push(Finding {
        code: "AGENT_MISMATCH".into(),
        severity: Severity::Blocking,
        message: "x".into(),
        evidence: serde_json::json!({}),
    });
    claim(&mut p, "val-1", now(), lease()).expect("claim");
    let v = p.version;
    let codes = |r: Result<PresaleStatus, ReviewError>| match r {
        Err(ReviewError::Invalid(errors)) => errors.into_iter().map(|e| (e.field, e.code)).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        codes(decide(&mut p.clone(), &draft(DecisionKind::Approve, v), "val-1", now())),
        vec![("override_reason".into(), "override_required")]
    );
    assert_eq!(
        codes(decide(&mut p.clone(), &draft(DecisionKind::Reject, v), "val-1", now())),
        vec![("reasons".into(), "required")]
    );
    let mut other = draft(DecisionKind::Reject, v);
    other.reasons = vec!["OTHER".into(), "BECAUSE".into()];
    assert_eq!(
        codes(decide(&mut p.clone(), &other, "val-1", now())),
        vec![("reasons[1]".into(), "unknown_reason"), ("comment".into(), "required")]
    );
    // The same reason twice is refused by field, never passed on to the store (issue 12).
    let mut twice = draft(DecisionKind::Reject, v);
    twice.reasons = vec!["NO_CONSENT".into(), "NO_CONSENT".into()];
    assert_eq!(
        codes(decide(&mut p.clone(), &twice, "val-1", now())),
        vec![("reasons[1]".into(), "duplicate_reason")]
    );
    let mut approve = draft(DecisionKind::Approve, v);
    approve.override_reason = Some("el supervisor confirmó la llamada con el cliente".into());
    decide(&mut p.clone(), &approve, "val-1", now()).expect("override accepted");
    let mut back = draft(DecisionKind::Return, v);
    back.reasons = vec!["ADDRESS".into()];
    decide(&mut p, &back, "val-1", now()).expect("return");
    assert_eq!(p.status, PresaleStatus::NeedsCorrection);
    assert_eq!(
        p.correction.as_ref().map(|c| c.reasons.clone()),
        Some(vec!["ADDRESS".to_owned()])
    );
}

#[test]
fn a_sale_is_one_per_presale() {
    let p = ready();
    let sale = crate::events::SaleConfirmed::from_approved(&p, "val-1", now());
    assert_eq!(sale.sale_id.as_str(), format!("S-{}", p.id));
    assert_eq!(sale.total, p.total);
    assert_eq!(sale.shipping_address, p.customer.address);
}
