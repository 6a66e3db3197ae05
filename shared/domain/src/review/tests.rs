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

#[test]
fn a_claim_is_renewed_only_by_its_holder_and_only_past_half_its_lease() {
    let t0 = now();
    let mut p = ready();
    claim(&mut p, "val-1", t0, lease()).expect("claims");
    let version = p.version;
    assert_eq!(
        renew(&mut p, "val-1", t0 + time::Duration::minutes(1), lease()),
        Ok(false)
    );
    assert_eq!(p.claim.as_ref().map(|c| c.lease_until), Some(t0 + lease()));
    let later = t0 + time::Duration::minutes(6);
    assert_eq!(renew(&mut p, "val-1", later, lease()), Ok(true));
    assert_eq!(p.claim.as_ref().map(|c| c.lease_until), Some(later + lease()));
    assert_eq!(
        p.version, version,
        "a renewal keeps the version the validator decides on"
    );
    assert!(matches!(
        renew(&mut p, "val-2", later, lease()),
        Err(ReviewError::ClaimedByOther(_))
    ));
    assert_eq!(
        renew(&mut p, "val-1", later + lease(), lease()),
        Err(ReviewError::NotClaimed)
    );
}

fn versions() -> Vec<Recording> {
    let at = datetime!(2026-11-23 15:40 UTC);
    let mut second = crate::testing::clean_recording("acme", "c1", "call-2", at);
    second.version_id = Some("v2".into());
    vec![crate::testing::clean_recording("acme", "c1", "call-1", at), second]
}

#[test]
fn a_playback_names_a_version_of_the_call_and_a_plausible_time() {
    let versions = versions();
    let by_hash: PlaybackDraft = serde_json::from_value(serde_json::json!({
        "playback_id": "0b6f3c1e-play", "sha256": versions[0].sha256,
        "started_at": "2026-11-23T15:58:00Z", "listened_ms": 90_000}))
    .expect("a playback draft");
    assert_eq!(
        by_hash.check(&versions, now()).map(|v| &v.sha256),
        Ok(&versions[0].sha256)
    );
    let by_id = PlaybackDraft {
        sha256: None,
        version_id: Some("v2".into()),
        ..by_hash.clone()
    };
    assert_eq!(
        by_id.check(&versions, now()).map(|v| &v.sha256),
        Ok(&versions[1].sha256)
    );
    let fields = |d: PlaybackDraft| -> Vec<String> {
        d.check(&versions, now())
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    };
    let unknown = PlaybackDraft {
        sha256: Some("00".into()),
        ..by_hash.clone()
    };
    assert_eq!(fields(unknown), ["sha256"]);
    assert_eq!(
        fields(PlaybackDraft {
            sha256: None,
            ..by_hash.clone()
        }),
        ["sha256"]
    );
    let short = PlaybackDraft {
        playback_id: "short".into(),
        ..by_hash.clone()
    };
    assert_eq!(fields(short), ["playback_id"]);
    // Over seven minutes of listening two minutes after it started (five of clock skew allowed).
    let too_long = PlaybackDraft {
        listened_ms: 430_000,
        ..by_hash.clone()
    };
    assert_eq!(fields(too_long), ["listened_ms"]);
    let ahead = PlaybackDraft {
        started_at: now() + time::Duration::minutes(6),
        listened_ms: 0,
        ..by_hash.clone()
    };
    assert_eq!(fields(ahead), ["started_at"]);
    let negative = serde_json::json!({"playback_id": "0b6f3c1e-play", "sha256": "ab",
        "started_at": "2026-11-23T15:58:00Z", "listened_ms": -1});
    assert!(serde_json::from_value::<PlaybackDraft>(negative).is_err());
}
