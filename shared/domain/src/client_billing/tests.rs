use proptest::prelude::*;
use serde_json::json;
use time::macros::date;

use super::*;
use crate::invoice::{self, TaxConfig};

fn pen() -> Currency {
    Currency::parse("PEN").expect("PEN")
}

fn usd() -> Currency {
    Currency::parse("USD").expect("USD")
}

fn soles(minor: i64) -> Money {
    Money::from_minor(minor, pen())
}

fn month(raw: &str) -> Period {
    Period::parse(raw).expect("month")
}

fn flat(minor: i64) -> Rate {
    Rate::UnitPrice(soles(minor))
}

/// Graduated tiers `(up_to, price)`; the last one open.
fn tiered(tiers: &[(Option<u64>, i64)]) -> Rate {
    Rate::Tiers(
        tiers
            .iter()
            .map(|&(up_to, minor)| Tier {
                up_to,
                unit_price: soles(minor),
            })
            .collect(),
    )
}

fn sales_terms(rate: Rate) -> CampaignTerms {
    CampaignTerms {
        verified_sale: Some(SaleTerms {
            price: Some(rate),
            by_family: BTreeMap::new(),
        }),
        ..CampaignTerms::default()
    }
}

fn contact_terms(rate: Rate) -> CampaignTerms {
    CampaignTerms {
        effective_contact: Some(rate),
        ..CampaignTerms::default()
    }
}

fn talk_terms(rate: Rate) -> CampaignTerms {
    CampaignTerms {
        talk_hour: Some(rate),
        ..CampaignTerms::default()
    }
}

fn version(number: u32, from: Date, to: Option<Date>, campaigns: Vec<(&str, CampaignTerms)>) -> ContractVersion {
    ContractVersion {
        version: number,
        valid_from: from,
        valid_to: to,
        currency: pen(),
        payment_terms_days: 30,
        monthly_minimum: None,
        campaigns: campaigns.into_iter().map(|(c, t)| (c.to_owned(), t)).collect(),
    }
}

fn contract(versions: Vec<ContractVersion>) -> Contract {
    Contract {
        client_id: "acme".into(),
        versions,
    }
}

/// One version from 2026-01-01 on, open-ended.
fn one_version(campaigns: Vec<(&str, CampaignTerms)>) -> Contract {
    contract(vec![version(1, date!(2026 - 01 - 01), None, campaigns)])
}

fn event(key: String, kind: BillableKind, campaign: &str, day: Date, quantity: u64) -> BillableEvent {
    BillableEvent {
        key,
        kind,
        client_id: "acme".into(),
        campaign_id: campaign.into(),
        day,
        presale_id: None,
        sale_id: None,
        contact_id: None,
        agent_id: "agent-1".into(),
        sku_family: None,
        quantity,
    }
}

fn sale(id: &str, campaign: &str, day: Date) -> BillableEvent {
    BillableEvent {
        presale_id: Some(id.into()),
        sale_id: Some(format!("S-{id}")),
        ..event(format!("SALE#{id}"), BillableKind::VerifiedSale, campaign, day, 1)
    }
}

fn family_sale(id: &str, campaign: &str, day: Date, family: &str) -> BillableEvent {
    BillableEvent {
        sku_family: Some(family.into()),
        ..sale(id, campaign, day)
    }
}

fn contact(id: &str, campaign: &str, day: Date) -> BillableEvent {
    BillableEvent {
        contact_id: Some(id.into()),
        ..event(
            format!("CONTACT#{id}"),
            BillableKind::EffectiveContact,
            campaign,
            day,
            1,
        )
    }
}

fn talk(id: &str, campaign: &str, day: Date, seconds: u64) -> BillableEvent {
    BillableEvent {
        contact_id: Some(id.into()),
        ..event(format!("TALK#{id}"), BillableKind::TalkTime, campaign, day, seconds)
    }
}

fn price(contract: &Contract, raw_month: &str, events: &[BillableEvent]) -> MonthPricing {
    price_month(contract, month(raw_month), events, &[]).expect("priced")
}

fn minor(money: Money) -> i64 {
    money.amount_minor()
}

/// Σ lines = Σ evidence + minimum = total = charges + reversals; every row's line is a line.
fn assert_balanced(p: &MonthPricing) {
    let lines: i64 = p.lines.iter().map(|l| minor(l.amount)).sum();
    let evidence: i64 = p.evidence.iter().map(|r| minor(r.amount)).sum();
    let adjustment = p.minimum_adjustment.map_or(0, minor);
    assert_eq!(lines, minor(p.total));
    assert_eq!(evidence + adjustment, minor(p.total));
    assert_eq!(minor(p.charges) + minor(p.reversals), minor(p.total));
    assert!(p.evidence.iter().all(|r| r.line < p.lines.len()));
    for (i, line) in p.lines.iter().enumerate() {
        let rows: Vec<&EvidenceRow> = p.evidence.iter().filter(|r| r.line == i).collect();
        if line.section != LineSection::Minimum {
            assert_eq!(rows.iter().map(|r| minor(r.amount)).sum::<i64>(), minor(line.amount));
            assert_eq!(rows.iter().map(|r| r.quantity).sum::<u64>(), line.quantity);
        }
    }
}

/// The amounts of the evidence rows of `key`.
fn amounts_of(p: &MonthPricing, key: &str) -> Vec<i64> {
    p.evidence
        .iter()
        .filter(|r| r.key == key)
        .map(|r| minor(r.amount))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Contracts
// ---------------------------------------------------------------------------------------------

fn admin_json() -> serde_json::Value {
    json!({
        "client_id": "acme",
        "versions": [
            {
                "version": 1,
                "valid_from": "2026-10-01",
                "valid_to": "2026-11-16",
                "currency": "PEN",
                "payment_terms_days": 30,
                "monthly_minimum": {"amount": "500.00", "currency": "PEN"},
                "campaigns": {
                    "acme-fibra": {
                        "verified_sale": {
                            "price": {"unit_price": {"amount": "20.00", "currency": "PEN"}},
                            "by_family": {
                                "FIBRA": {"tiers": [
                                    {"up_to": 100, "unit_price": {"amount": "35.00", "currency": "PEN"}},
                                    {"unit_price": {"amount": "30.00", "currency": "PEN"}}
                                ]}
                            }
                        }
                    },
                    "acme-cobranza": {
                        "effective_contact": {"unit_price": {"amount": "2.50", "currency": "PEN"}},
                        "talk_hour": {"tiers": [
                            {"up_to": 200, "unit_price": {"amount": "18.00", "currency": "PEN"}},
                            {"unit_price": {"amount": "15.00", "currency": "PEN"}}
                        ]}
                    }
                }
            },
            {
                "version": 2,
                "valid_from": "2026-11-16",
                "currency": "PEN",
                "payment_terms_days": 45,
                "campaigns": {
                    "acme-fibra": {"verified_sale": {"price": {"unit_price": {"amount": "25.00", "currency": "PEN"}}}}
                }
            }
        ]
    })
}

#[test]
fn an_admins_contract_reads_from_json_validates_and_round_trips() {
    let contract: Contract = serde_json::from_value(admin_json()).expect("contract");
    assert_eq!(contract.validate(), Ok(()));
    assert_eq!(contract.versions.len(), 2);
    let v1 = &contract.versions[0];
    assert_eq!(v1.monthly_minimum, Some(soles(50_000)));
    assert_eq!(
        v1.campaigns["acme-cobranza"].talk_hour,
        Some(tiered(&[(Some(200), 1800), (None, 1500)]))
    );
    assert_eq!(contract.versions[1].valid_to, None);
    let again: Contract = serde_json::to_value(&contract)
        .and_then(serde_json::from_value)
        .expect("round trip");
    assert_eq!(again, contract);

    // Unknown fields, a price as a number and a rate with both forms are refused when read.
    let mut typo = admin_json();
    typo["versions"][0]["monthly_minimun"] = json!({"amount": "1.00", "currency": "PEN"});
    assert!(serde_json::from_value::<Contract>(typo).is_err());
    let mut number = admin_json();
    number["versions"][1]["campaigns"]["acme-fibra"]["verified_sale"]["price"] = json!({"unit_price": 25});
    assert!(serde_json::from_value::<Contract>(number).is_err());
    let mut both = admin_json();
    both["versions"][1]["campaigns"]["acme-fibra"]["verified_sale"]["price"] = json!({
        "unit_price": {"amount": "1.00", "currency": "PEN"},
        "tiers": []
    });
    assert!(serde_json::from_value::<Contract>(both).is_err());
}

#[test]
fn the_version_on_a_day_follows_validity_with_an_exclusive_end() {
    let contract: Contract = serde_json::from_value(admin_json()).expect("contract");
    let on = |day| contract.version_on(day).map(|v| v.version);
    assert_eq!(on(date!(2026 - 09 - 30)), None);
    assert_eq!(on(date!(2026 - 10 - 01)), Some(1));
    assert_eq!(on(date!(2026 - 11 - 15)), Some(1));
    assert_eq!(on(date!(2026 - 11 - 16)), Some(2));
    assert_eq!(on(date!(2030 - 01 - 01)), Some(2));
    assert_eq!(contract.month_version(month("2026-11")).map(|v| v.version), Some(2));
    assert_eq!(contract.month_version(month("2026-10")).map(|v| v.version), Some(1));
    assert_eq!(contract.month_version(month("2026-09")).map(|v| v.version), None);
    // A contract that ended mid-month is still the month's.
    let ended = contract_ending(date!(2026 - 11 - 10));
    assert_eq!(ended.version_on(date!(2026 - 11 - 30)).map(|v| v.version), None);
    assert_eq!(ended.month_version(month("2026-11")).map(|v| v.version), Some(1));
}

fn contract_ending(to: Date) -> Contract {
    contract(vec![version(
        1,
        date!(2026 - 10 - 01),
        Some(to),
        vec![("c1", sales_terms(flat(1000)))],
    )])
}

/// The field and code of each error of a contract built from `admin_json` changed by `edit`.
fn errors_after(edit: impl FnOnce(&mut Contract)) -> Vec<(String, &'static str)> {
    let mut contract: Contract = serde_json::from_value(admin_json()).expect("contract");
    edit(&mut contract);
    contract
        .validate()
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.field, e.code))
        .collect()
}

fn one(field: &str, code: &'static str) -> Vec<(String, &'static str)> {
    vec![(field.to_owned(), code)]
}

#[test]
fn validation_names_the_offending_field() {
    const FIBRA: &str = "versions[0].campaigns.acme-fibra.verified_sale";
    const TALK: &str = "versions[0].campaigns.acme-cobranza.talk_hour";
    fn fibra_rate(c: &mut Contract) -> &mut Rate {
        c.versions[0]
            .campaigns
            .get_mut("acme-fibra")
            .and_then(|t| t.verified_sale.as_mut())
            .and_then(|s| s.by_family.get_mut("FIBRA"))
            .expect("FIBRA")
    }
    fn talk_rate(c: &mut Contract) -> &mut Rate {
        c.versions[0]
            .campaigns
            .get_mut("acme-cobranza")
            .and_then(|t| t.talk_hour.as_mut())
            .expect("talk")
    }

    assert_eq!(errors_after(|c| c.client_id = " ".into()), one("client_id", "required"));
    assert_eq!(errors_after(|c| c.versions.clear()), one("versions", "required"));
    assert_eq!(
        errors_after(|c| c.versions[1].valid_from = date!(2026 - 11 - 10)),
        one("versions[1].valid_from", "overlapping_versions")
    );
    assert_eq!(
        errors_after(|c| c.versions[0].valid_to = None),
        one("versions[1].valid_from", "overlapping_versions")
    );
    assert_eq!(
        errors_after(|c| c.versions.swap(0, 1)),
        vec![
            ("versions[1].version".to_owned(), "unordered_versions"),
            ("versions[1].valid_from".to_owned(), "unordered_versions"),
        ]
    );
    assert_eq!(
        errors_after(|c| c.versions[1].version = 1),
        one("versions[1].version", "unordered_versions")
    );
    assert_eq!(
        errors_after(|c| c.versions[0].valid_to = Some(date!(2026 - 10 - 01))),
        one("versions[0].valid_to", "empty_validity")
    );
    assert_eq!(
        errors_after(|c| c.versions[0].payment_terms_days = 400),
        one("versions[0].payment_terms_days", "out_of_range")
    );
    assert_eq!(
        errors_after(|c| c.versions[0].monthly_minimum = Some(Money::from_minor(100, usd()))),
        one("versions[0].monthly_minimum", "currency_mismatch")
    );
    assert_eq!(
        errors_after(|c| c.versions[0].monthly_minimum = Some(soles(-1))),
        one("versions[0].monthly_minimum", "negative_price")
    );
    assert_eq!(
        errors_after(|c| *fibra_rate(c) = Rate::UnitPrice(Money::from_minor(100, usd()))),
        one(&format!("{FIBRA}.by_family.FIBRA.unit_price"), "currency_mismatch")
    );
    assert_eq!(
        errors_after(|c| *fibra_rate(c) = tiered(&[(Some(10), 100), (None, -5)])),
        one(
            &format!("{FIBRA}.by_family.FIBRA.tiers[1].unit_price"),
            "negative_price"
        )
    );
    assert_eq!(
        errors_after(|c| *fibra_rate(c) = Rate::Tiers(vec![])),
        one(&format!("{FIBRA}.by_family.FIBRA.tiers"), "empty_tiers")
    );
    assert_eq!(
        errors_after(|c| *talk_rate(c) = tiered(&[(Some(10), 100), (Some(10), 90), (None, 80)])),
        one(&format!("{TALK}.tiers[1].up_to"), "tiers_not_ascending")
    );
    assert_eq!(
        errors_after(|c| *talk_rate(c) = tiered(&[(Some(0), 100), (None, 80)])),
        one(&format!("{TALK}.tiers[0].up_to"), "tiers_not_ascending")
    );
    assert_eq!(
        errors_after(|c| *talk_rate(c) = tiered(&[(None, 100), (None, 80)])),
        one(&format!("{TALK}.tiers[0].up_to"), "open_tier_not_last")
    );
    assert_eq!(
        errors_after(|c| *talk_rate(c) = tiered(&[(Some(5), 100), (Some(9), 80)])),
        one(&format!("{TALK}.tiers[1].up_to"), "last_tier_bounded")
    );
    assert_eq!(
        errors_after(|c| *talk_rate(c) = tiered(&[(Some(u64::MAX / 1000), 100), (None, 80)])),
        one(&format!("{TALK}.tiers[0].up_to"), "out_of_range")
    );
    assert_eq!(
        errors_after(|c| {
            c.versions[0]
                .campaigns
                .insert("acme-vacia".into(), CampaignTerms::default());
        }),
        one("versions[0].campaigns.acme-vacia", "no_model")
    );
    assert_eq!(
        errors_after(|c| {
            c.versions[0].campaigns.insert(
                "acme-sin-precio".into(),
                CampaignTerms {
                    verified_sale: Some(SaleTerms::default()),
                    ..CampaignTerms::default()
                },
            );
        }),
        one("versions[0].campaigns.acme-sin-precio.verified_sale", "no_price")
    );
    assert_eq!(
        errors_after(|c| c.versions[1].campaigns.clear()),
        one("versions[1].campaigns", "required")
    );
    // Every mistake at once, so an admin fixes them in one go.
    assert_eq!(
        errors_after(|c| {
            c.client_id.clear();
            c.versions[0].payment_terms_days = 1000;
        })
        .len(),
        2
    );
    // A later version overlapping an earlier one that is not its predecessor.
    let mut three = contract(vec![
        version(1, date!(2026 - 01 - 01), None, vec![("c1", sales_terms(flat(1)))]),
        version(
            2,
            date!(2026 - 02 - 01),
            Some(date!(2026 - 03 - 01)),
            vec![("c1", sales_terms(flat(1)))],
        ),
    ]);
    three.versions[0].valid_to = Some(date!(2026 - 12 - 01));
    three.versions.push(version(
        3,
        date!(2026 - 04 - 01),
        None,
        vec![("c1", sales_terms(flat(1)))],
    ));
    let fields: Vec<String> = three
        .validate()
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(fields, ["versions[1].valid_from", "versions[2].valid_from"]);
    // price_month refuses an invalid contract, with the fields.
    let Err(PricingError::Contract { errors, .. }) = price_month(&three, month("2026-11"), &[], &[]) else {
        panic!("an invalid contract is refused");
    };
    assert_eq!(errors.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Pricing
// ---------------------------------------------------------------------------------------------

#[test]
fn a_mid_month_change_bills_each_event_by_its_days_version() {
    let contract = contract(vec![
        version(
            1,
            date!(2026 - 10 - 01),
            Some(date!(2026 - 11 - 16)),
            vec![("c1", sales_terms(flat(2000)))],
        ),
        version(2, date!(2026 - 11 - 16), None, vec![("c1", sales_terms(flat(2500)))]),
    ]);
    let p = price(
        &contract,
        "2026-11",
        &[
            sale("a", "c1", date!(2026 - 11 - 15)),
            sale("b", "c1", date!(2026 - 11 - 16)),
            sale("c", "c1", date!(2026 - 11 - 30)),
            sale("d", "c1", date!(2026 - 11 - 01)),
        ],
    );
    assert_balanced(&p);
    assert_eq!(minor(p.total), 2 * 2000 + 2 * 2500);
    let by_key: Vec<(&str, u32, i64)> = p
        .evidence
        .iter()
        .map(|r| (r.key.as_str(), r.version, minor(r.amount)))
        .collect();
    assert_eq!(
        by_key,
        [
            ("SALE#d", 1, 2000),
            ("SALE#a", 1, 2000),
            ("SALE#b", 2, 2500),
            ("SALE#c", 2, 2500)
        ]
    );
    let lines: Vec<(Option<u32>, u64, Option<i64>, i64)> = p
        .lines
        .iter()
        .map(|l| (l.version, l.quantity, l.unit_price.map(minor), minor(l.amount)))
        .collect();
    assert_eq!(lines, [(Some(1), 2, Some(2000), 4000), (Some(2), 2, Some(2500), 5000)]);
    assert_eq!(
        p.lines[0].description,
        "Ventas verificadas, campaña c1, noviembre de 2026, contrato v1"
    );
    assert_eq!(p.payment_terms_days, 30);
    assert_eq!(p.invoice_line_of("SALE#b"), Some(2));
    assert_eq!(p.invoice_line_of("SALE#d"), Some(1));
    assert_eq!(p.invoice_line_of("SALE#zz"), None);
}

#[test]
fn tiers_cross_a_threshold_inside_a_version() {
    // First 2 contacts at 3.00, the next 2 at 2.00, beyond at 1.00.
    let contract = one_version(vec![(
        "c1",
        contact_terms(tiered(&[(Some(2), 300), (Some(4), 200), (None, 100)])),
    )]);
    let events: Vec<BillableEvent> = (1..=6)
        .map(|i| contact(&format!("k{i}"), "c1", date!(2026 - 11 - 01) + time::Duration::days(i)))
        .collect();
    let p = price(&contract, "2026-11", &events);
    assert_balanced(&p);
    let amounts: Vec<i64> = p.evidence.iter().map(|r| minor(r.amount)).collect();
    assert_eq!(amounts, [300, 300, 200, 200, 100, 100]);
    assert_eq!(minor(p.total), 1200);
    let lines: Vec<(u64, Option<i64>)> = p.lines.iter().map(|l| (l.quantity, l.unit_price.map(minor))).collect();
    // Lines are ordered by unit price within a version.
    assert_eq!(lines, [(2, Some(100)), (2, Some(200)), (2, Some(300))]);
    // Same day: the key orders them.
    let same_day: Vec<BillableEvent> = ["k2", "k1", "k3"]
        .iter()
        .map(|k| contact(k, "c1", date!(2026 - 11 - 05)))
        .collect();
    let p = price(&contract, "2026-11", &same_day);
    assert_eq!(amounts_of(&p, "CONTACT#k3"), [200]);
    assert_eq!(amounts_of(&p, "CONTACT#k1"), [300]);
}

#[test]
fn tier_volume_accumulates_across_versions_and_families() {
    // v1 flat 10.00; v2 from the 16th: first 3 sales at 9.00, then 5.00 (FIBRA has its own tiers).
    let v2_terms = CampaignTerms {
        verified_sale: Some(SaleTerms {
            price: Some(tiered(&[(Some(3), 900), (None, 500)])),
            by_family: [("FIBRA".to_owned(), tiered(&[(Some(4), 1500), (None, 1200)]))].into(),
        }),
        ..CampaignTerms::default()
    };
    let contract = contract(vec![
        version(
            1,
            date!(2026 - 10 - 01),
            Some(date!(2026 - 11 - 16)),
            vec![("c1", sales_terms(flat(1000)))],
        ),
        version(2, date!(2026 - 11 - 16), None, vec![("c1", v2_terms)]),
    ]);
    let p = price(
        &contract,
        "2026-11",
        &[
            sale("a", "c1", date!(2026 - 11 - 02)),
            sale("b", "c1", date!(2026 - 11 - 03)),
            // Third sale of the month, first of v2: position 3, still in v2's first tier.
            sale("c", "c1", date!(2026 - 11 - 20)),
            // Position 4: FIBRA's first tier runs to 4.
            family_sale("d", "c1", date!(2026 - 11 - 21), "FIBRA"),
            // Position 5: past both thresholds.
            family_sale("e", "c1", date!(2026 - 11 - 22), "FIBRA"),
            family_sale("f", "c1", date!(2026 - 11 - 23), "TV"),
        ],
    );
    assert_balanced(&p);
    let amounts: Vec<(&str, i64)> = p.evidence.iter().map(|r| (r.key.as_str(), minor(r.amount))).collect();
    assert_eq!(
        amounts,
        [
            ("SALE#a", 1000),
            ("SALE#b", 1000),
            ("SALE#c", 900),
            ("SALE#d", 1500),
            ("SALE#e", 1200),
            ("SALE#f", 500)
        ]
    );
    // The FIBRA lines name the family; TV fell back to the default price and is not named.
    let families: Vec<Option<&str>> = p.lines.iter().map(|l| l.sku_family.as_deref()).collect();
    assert_eq!(families, [None, None, None, Some("FIBRA"), Some("FIBRA")]);
    assert!(p.lines[3].description.contains("familia FIBRA"));
    assert_eq!(p.evidence[5].sku_family.as_deref(), Some("TV"));
}

#[test]
fn talk_time_is_billed_by_the_second_rounded_half_up_per_event() {
    // 1.00 per hour: 18 s is 0.5 céntimos → 1; 17 s 0.47 → 0; 54 s 1.5 → 2; 3600 s → 100.
    let contract = one_version(vec![("c1", talk_terms(flat(100)))]);
    let p = price(
        &contract,
        "2026-11",
        &[
            talk("t1", "c1", date!(2026 - 11 - 02), 18),
            talk("t2", "c1", date!(2026 - 11 - 02), 17),
            talk("t3", "c1", date!(2026 - 11 - 02), 54),
            talk("t4", "c1", date!(2026 - 11 - 02), 3600),
        ],
    );
    assert_balanced(&p);
    let amounts: Vec<i64> = p.evidence.iter().map(|r| minor(r.amount)).collect();
    assert_eq!(amounts, [1, 0, 2, 100]);
    assert_eq!(p.lines.len(), 1);
    assert_eq!(p.lines[0].quantity, 18 + 17 + 54 + 3600);
    assert_eq!(minor(p.lines[0].amount), 103);
    assert_eq!(
        p.lines[0].description,
        "Tiempo de conversación, campaña c1, noviembre de 2026, contrato v1: 1:01:29 a PEN 1.00 por hora"
    );
    // 30.00 per hour: 2 min 5 s is 104.1666… → 104.
    let contract = one_version(vec![("c1", talk_terms(flat(3000)))]);
    let p = price(&contract, "2026-11", &[talk("t", "c1", date!(2026 - 11 - 02), 125)]);
    assert_eq!(minor(p.total), 104);
}

#[test]
fn a_talk_event_across_a_tier_threshold_is_split_per_tier() {
    // First hour at 36.00/h, then 18.00/h. 3000 s, then 1200 s: 600 s in tier 1, 600 s in tier 2.
    let contract = one_version(vec![("c1", talk_terms(tiered(&[(Some(1), 3600), (None, 1800)])))]);
    let p = price(
        &contract,
        "2026-11",
        &[
            talk("t1", "c1", date!(2026 - 11 - 02), 3000),
            talk("t2", "c1", date!(2026 - 11 - 03), 1200),
        ],
    );
    assert_balanced(&p);
    assert_eq!(amounts_of(&p, "TALK#t1"), [3000]);
    assert_eq!(amounts_of(&p, "TALK#t2"), [600, 300]);
    let t2: Vec<(u64, Option<i64>)> = p
        .evidence
        .iter()
        .filter(|r| r.key == "TALK#t2")
        .map(|r| (r.quantity, r.unit_price.map(minor)))
        .collect();
    assert_eq!(t2, [(600, Some(3600)), (600, Some(1800))]);
    // One billed item per event: the split one has no single unit price.
    let billed: Vec<(&str, u64, Option<i64>, i64)> = p
        .billed
        .iter()
        .map(|b| (b.key(), b.event.quantity, b.unit_price.map(minor), minor(b.amount)))
        .collect();
    assert_eq!(
        billed,
        [("TALK#t1", 3000, Some(3600), 3000), ("TALK#t2", 1200, None, 900)]
    );
    assert_eq!(p.invoice_line_of("TALK#t1"), Some(2));
    assert_eq!(p.invoice_line_of("TALK#t2"), None);
}

#[test]
fn the_monthly_minimum_tops_up_the_months_own_charges() {
    let mut minimum = one_version(vec![("c1", sales_terms(flat(1000)))]);
    minimum.versions[0].monthly_minimum = Some(soles(5000));
    // Two sales of the month (20.00) and one late from October (10.00): the late one does not
    // count towards November's minimum.
    let events = [
        sale("a", "c1", date!(2026 - 11 - 02)),
        sale("b", "c1", date!(2026 - 11 - 03)),
        sale("late", "c1", date!(2026 - 10 - 31)),
    ];
    let p = price(&minimum, "2026-11", &events);
    assert_balanced(&p);
    assert_eq!(p.minimum_adjustment, Some(soles(3000)));
    assert_eq!(minor(p.total), 3000 + 3000);
    let minimum_line = p
        .lines
        .iter()
        .find(|l| l.section == LineSection::Minimum)
        .expect("line");
    assert_eq!(
        (minimum_line.quantity, minimum_line.unit_price, minimum_line.amount),
        (1, Some(soles(3000)), soles(3000))
    );
    assert_eq!(
        minimum_line.description,
        "Ajuste al mínimo mensual de PEN 50.00, noviembre de 2026, contrato v1"
    );
    // No events at all: the whole minimum.
    let p = price(&minimum, "2026-11", &[]);
    assert_eq!((p.minimum_adjustment, p.total), (Some(soles(5000)), soles(5000)));
    // Reached: no line.
    let many: Vec<BillableEvent> = (0..5)
        .map(|i| sale(&format!("s{i}"), "c1", date!(2026 - 11 - 04)))
        .collect();
    let p = price(&minimum, "2026-11", &many);
    assert_eq!((p.minimum_adjustment, p.lines.len()), (None, 1));
    // The minimum is the one of the version in force on the month's last day.
    let mut changed = contract(vec![
        version(
            1,
            date!(2026 - 10 - 01),
            Some(date!(2026 - 11 - 30)),
            vec![("c1", sales_terms(flat(1000)))],
        ),
        version(2, date!(2026 - 11 - 30), None, vec![("c1", sales_terms(flat(1000)))]),
    ]);
    changed.versions[0].monthly_minimum = Some(soles(99_900));
    assert_eq!(price(&changed, "2026-11", &[]).minimum_adjustment, None);
    changed.versions[1].monthly_minimum = Some(soles(100));
    assert_eq!(price(&changed, "2026-11", &[]).minimum_adjustment, Some(soles(100)));
    // A contract that ended mid-month has no minimum for that month.
    let mut ended = contract_ending(date!(2026 - 11 - 10));
    ended.versions[0].monthly_minimum = Some(soles(100));
    assert_eq!(price(&ended, "2026-11", &[]).minimum_adjustment, None);
}

#[test]
fn late_events_are_marked_and_lined_apart() {
    let contract = contract(vec![
        version(
            1,
            date!(2026 - 09 - 01),
            Some(date!(2026 - 11 - 01)),
            vec![("c1", sales_terms(flat(1000)))],
        ),
        version(2, date!(2026 - 11 - 01), None, vec![("c1", sales_terms(flat(1200)))]),
    ]);
    let p = price(
        &contract,
        "2026-11",
        &[
            sale("now", "c1", date!(2026 - 11 - 02)),
            sale("oct", "c1", date!(2026 - 10 - 30)),
            sale("sep", "c1", date!(2026 - 09 - 15)),
        ],
    );
    assert_balanced(&p);
    let rows: Vec<(&str, bool, u32, i64)> = p
        .evidence
        .iter()
        .map(|r| (r.key.as_str(), r.late, r.version, minor(r.amount)))
        .collect();
    // Priced by their own day's version.
    assert_eq!(
        rows,
        [
            ("SALE#sep", true, 1, 1000),
            ("SALE#oct", true, 1, 1000),
            ("SALE#now", false, 2, 1200)
        ]
    );
    let lines: Vec<(LineSection, Option<String>, i64)> = p
        .lines
        .iter()
        .map(|l| (l.section, l.of_month.map(|m| m.to_string()), minor(l.amount)))
        .collect();
    assert_eq!(
        lines,
        [
            (LineSection::Month, None, 1200),
            (LineSection::Late, Some("2026-09".into()), 1000),
            (LineSection::Late, Some("2026-10".into()), 1000),
        ]
    );
    assert_eq!(
        p.lines[2].description,
        "Ventas verificadas, campaña c1, de octubre de 2026 (facturación tardía), contrato v1"
    );
    assert!(p.billed.iter().all(|b| b.month == month("2026-11")));
}

#[test]
fn reversals_are_negative_rows_for_exactly_the_billed_amount() {
    let october = contract(vec![version(
        1,
        date!(2026 - 10 - 01),
        None,
        vec![("c1", sales_terms(flat(1000))), ("c2", talk_terms(flat(3000)))],
    )]);
    let oct = price(
        &october,
        "2026-10",
        &[
            sale("a", "c1", date!(2026 - 10 - 05)),
            sale("b", "c1", date!(2026 - 10 - 06)),
            talk("t", "c2", date!(2026 - 10 - 06), 125),
        ],
    );
    assert_eq!(minor(oct.total), 1000 + 1000 + 104);
    // The price went up since: a reversal is still what was billed, not repriced.
    let mut november = october.clone();
    november.versions[0]
        .campaigns
        .insert("c1".into(), sales_terms(flat(9999)));
    let reversed: Vec<BilledItem> = oct.billed.iter().filter(|b| b.key() != "SALE#b").cloned().collect();
    let p = price_month(
        &november,
        month("2026-11"),
        &[sale("c", "c1", date!(2026 - 11 - 02))],
        &reversed,
    )
    .expect("priced");
    assert_balanced(&p);
    let rows: Vec<(&str, bool, Option<String>, i64)> = p
        .evidence
        .iter()
        .map(|r| {
            (
                r.key.as_str(),
                r.reversal,
                r.billed_month.map(|m| m.to_string()),
                minor(r.amount),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("SALE#c", false, None, 9999),
            ("SALE#a", true, Some("2026-10".into()), -1000),
            ("TALK#t", true, Some("2026-10".into()), -104),
        ]
    );
    assert_eq!(
        (minor(p.charges), minor(p.reversals), minor(p.total)),
        (9999, -1104, 8895)
    );
    let reversal_lines: Vec<&PricedLine> = p.lines.iter().filter(|l| l.section == LineSection::Reversal).collect();
    assert_eq!(reversal_lines.len(), 2);
    assert_eq!(
        reversal_lines[0].description,
        "Reversión de ventas verificadas facturadas en octubre de 2026, campaña c1, contrato v1"
    );
    // Reversed items are not billed again.
    assert_eq!(p.billed.len(), 1);
    // What the reversal lines credit, as positive charges: the sale keeps its unit price.
    let credits = p.reversal_charges().expect("charges");
    let credited: Vec<(u32, i64)> = credits.iter().map(|c| (c.quantity, minor(c.unit_price))).collect();
    assert_eq!(credited, [(1, 1000), (1, 104)]);
}

#[test]
fn reversed_sales_become_one_credit_per_billing_run_by_invoice_line() {
    let terms = contract(vec![version(
        1,
        date!(2026 - 09 - 01),
        None,
        vec![("c1", sales_terms(flat(1000))), ("c2", sales_terms(flat(2500)))],
    )]);
    let sep = price(&terms, "2026-09", &[sale("s1", "c2", date!(2026 - 09 - 03))]);
    let oct = price(
        &terms,
        "2026-10",
        &[
            sale("a", "c1", date!(2026 - 10 - 05)),
            sale("b", "c1", date!(2026 - 10 - 06)),
            sale("c", "c2", date!(2026 - 10 - 07)),
        ],
    );
    let reversed: Vec<BilledItem> = oct
        .billed
        .iter()
        .chain(&sep.billed)
        .filter(|b| b.key() != "SALE#b")
        .cloned()
        .collect();
    let runs = [(month("2026-09"), &sep), (month("2026-10"), &oct)];
    let (credits, uncredited) = reversal_credits(&reversed, |m| {
        runs.iter().find(|(month, _)| *month == m).map(|(_, p)| *p)
    })
    .expect("credits");
    assert!(uncredited.is_empty(), "{uncredited:?}");
    type Summary = (String, Vec<(u32, u32)>, i64, usize);
    let summary: Vec<Summary> = credits
        .iter()
        .map(|c| {
            (
                c.billed_in.to_string(),
                c.lines.iter().map(|l| (l.line, l.quantity)).collect(),
                minor(c.amount),
                c.keys.len(),
            )
        })
        .collect();
    // October's invoice: line 1 is c1's sales (a, b), line 2 c2's (c); September's line 1 is s1.
    assert_eq!(
        summary,
        [
            ("2026-09".to_owned(), vec![(1, 1)], 2500, 1),
            ("2026-10".to_owned(), vec![(1, 1), (2, 1)], 3500, 2),
        ]
    );
    // The credited line prices what was billed: one unit of line 1 of October is SALE#a's.
    assert_eq!(oct.invoice_charges().expect("charges")[0].unit_price, soles(1000));

    // An item of a run not given (or billed at no single line) cannot be credited by line.
    let (credits, uncredited) =
        reversal_credits(&reversed, |m| (m == month("2026-10")).then_some(&oct)).expect("credits");
    assert_eq!(credits.len(), 1);
    assert_eq!(uncredited, ["SALE#s1"]);
}

#[test]
fn events_no_version_prices_are_listed_apart_not_billed() {
    let mut contract = contract(vec![version(
        1,
        date!(2026 - 11 - 05),
        None,
        vec![
            (
                "c1",
                CampaignTerms {
                    verified_sale: Some(SaleTerms {
                        price: None,
                        by_family: [("FIBRA".to_owned(), flat(1000))].into(),
                    }),
                    ..CampaignTerms::default()
                },
            ),
            ("c2", contact_terms(flat(200))),
        ],
    )]);
    contract.versions[0].monthly_minimum = None;
    let p = price(
        &contract,
        "2026-11",
        &[
            family_sale("before", "c1", date!(2026 - 11 - 04), "FIBRA"),
            family_sale("ok", "c1", date!(2026 - 11 - 06), "FIBRA"),
            family_sale("tv", "c1", date!(2026 - 11 - 06), "TV"),
            sale("none", "c1", date!(2026 - 11 - 06)),
            contact("k1", "c1", date!(2026 - 11 - 06)),
            contact("k2", "c2", date!(2026 - 11 - 06)),
            contact("k3", "c9", date!(2026 - 11 - 06)),
        ],
    );
    assert_balanced(&p);
    assert_eq!(minor(p.total), 1000 + 200);
    let unpriced: Vec<(&str, Option<u32>, UnpricedReason)> = p
        .unpriced
        .iter()
        .map(|u| (u.key.as_str(), u.version, u.reason))
        .collect();
    assert_eq!(
        unpriced,
        [
            ("SALE#before", None, UnpricedReason::NoVersion),
            ("CONTACT#k1", Some(1), UnpricedReason::ModelNotInContract),
            ("CONTACT#k3", Some(1), UnpricedReason::CampaignNotInContract),
            ("SALE#none", Some(1), UnpricedReason::FamilyNotPriced),
            ("SALE#tv", Some(1), UnpricedReason::FamilyNotPriced),
        ]
    );
    // Not billed, so a later run can bill them once the contract prices them.
    let billed: Vec<&str> = p.billed.iter().map(BilledItem::key).collect();
    assert_eq!(billed, ["CONTACT#k2", "SALE#ok"]);
    assert_eq!(
        UnpricedReason::FamilyNotPriced.to_string(),
        "its SKU family has no price and there is no default"
    );
}

#[test]
fn bad_inputs_are_errors_naming_the_event() {
    let contract = one_version(vec![("c1", sales_terms(flat(1000))), ("c2", talk_terms(flat(100)))]);
    let nov = month("2026-11");
    let run = |events: &[BillableEvent], reversals: &[BilledItem]| price_month(&contract, nov, events, reversals);
    let a = sale("a", "c1", date!(2026 - 11 - 02));

    let other = BillableEvent {
        client_id: "globex".into(),
        ..a.clone()
    };
    assert!(matches!(run(&[other], &[]), Err(PricingError::WrongClient { key, .. }) if key == "SALE#a"));
    assert_eq!(
        run(&[a.clone(), a.clone()], &[]),
        Err(PricingError::DuplicateEvent("SALE#a".into()))
    );
    let two = BillableEvent {
        quantity: 2,
        ..a.clone()
    };
    assert!(matches!(run(&[two], &[]), Err(PricingError::InvalidEvent { key, .. }) if key == "SALE#a"));
    let silent = talk("t", "c2", date!(2026 - 11 - 02), 0);
    assert!(matches!(run(&[silent], &[]), Err(PricingError::InvalidEvent { key, .. }) if key == "TALK#t"));
    let december = sale("dec", "c1", date!(2026 - 12 - 01));
    assert_eq!(
        run(&[december], &[]),
        Err(PricingError::FutureEvent {
            key: "SALE#dec".into(),
            day: date!(2026 - 12 - 01),
            month: nov,
        })
    );

    let billed = price(&contract, "2026-10", &[sale("o", "c1", date!(2026 - 10 - 02))]).billed;
    assert_eq!(
        run(&[], &[billed[0].clone(), billed[0].clone()]),
        Err(PricingError::DuplicateReversal("SALE#o".into()))
    );
    let this_month = BilledItem {
        month: nov,
        ..billed[0].clone()
    };
    assert!(matches!(
        run(&[], &[this_month]),
        Err(PricingError::ReversalNotEarlier { .. })
    ));
    let dollars = BilledItem {
        amount: Money::from_minor(1000, usd()),
        ..billed[0].clone()
    };
    assert!(matches!(run(&[], &[dollars]), Err(PricingError::MixedCurrency { .. })));
    let negative = BilledItem {
        amount: soles(-1),
        ..billed[0].clone()
    };
    assert!(matches!(
        run(&[], &[negative]),
        Err(PricingError::NegativeReversal { .. })
    ));

    // A version in another currency than the month's: one invoice cannot mix them.
    let mut usd_version = version(1, date!(2026 - 10 - 01), Some(date!(2026 - 11 - 16)), vec![]);
    usd_version.currency = usd();
    usd_version
        .campaigns
        .insert("c1".into(), sales_terms(Rate::UnitPrice(Money::from_minor(500, usd()))));
    let switched = contract_with(vec![
        usd_version,
        version(2, date!(2026 - 11 - 16), None, vec![("c1", sales_terms(flat(1000)))]),
    ]);
    assert!(matches!(
        price_month(&switched, nov, &[a], &[]),
        Err(PricingError::MixedCurrency { key, .. }) if key == "SALE#a"
    ));
}

fn contract_with(versions: Vec<ContractVersion>) -> Contract {
    contract(versions)
}

#[test]
fn the_evidence_csv_has_a_bom_a_header_and_crlf_rows_that_sum_to_the_total() {
    let mut contract = one_version(vec![("c1", sales_terms(flat(1990))), ("c2", talk_terms(flat(3000)))]);
    contract.versions[0].monthly_minimum = Some(soles(10_000));
    let oct = price(&contract, "2026-10", &[sale("old", "c1", date!(2026 - 10 - 03))]);
    let mut formula = sale("=cmd", "c1", date!(2026 - 11 - 02));
    formula.agent_id = "ana, \"la\" vendedora".into();
    let p = price_month(
        &contract,
        month("2026-11"),
        &[formula, talk("t", "c2", date!(2026 - 11 - 03), 125)],
        &oct.billed,
    )
    .expect("priced");
    let csv = evidence_csv(&p).expect("csv");
    assert!(csv.starts_with('\u{feff}'));
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').split("\r\n").collect();
    assert_eq!(lines.len(), 1 + 3 + 1, "{csv}");
    assert_eq!(lines[4], "", "ends with CRLF");
    assert_eq!(
        lines[0],
        "clave,tipo,campana,dia,preventa,venta,contacto,agente,familia,version_contrato,cantidad,unidad,\
         precio_unitario,importe,moneda,tardio,reversion,mes_facturado,linea"
    );
    assert_eq!(
        lines[1],
        "SALE#=cmd,venta_verificada,c1,2026-11-02,'=cmd,S-=cmd,,\"ana, \"\"la\"\" vendedora\",,1,1,venta,\
         19.90,19.90,PEN,no,no,,1"
    );
    assert_eq!(
        lines[2],
        "TALK#t,tiempo_conversacion,c2,2026-11-03,,,t,agent-1,,1,125,segundo,30.00,1.04,PEN,no,no,,2"
    );
    assert_eq!(
        lines[3],
        "SALE#old,venta_verificada,c1,2026-10-03,old,S-old,,agent-1,,1,1,venta,19.90,-19.90,PEN,no,si,2026-10,4"
    );
    // Read back with a CSV reader, the amounts plus the minimum adjustment are the total.
    let mut reader = csv::ReaderBuilder::new().from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
    let sum: i64 = reader
        .records()
        .map(|r| {
            let record = r.expect("record");
            Money::parse(&record[13], pen()).expect("amount").amount_minor()
        })
        .sum();
    assert_eq!(sum + p.minimum_adjustment.map_or(0, minor), minor(p.total));
    assert_eq!(p.minimum_adjustment, Some(soles(10_000 - 1990 - 104)));
    assert_eq!(evidence_file_name("acme", p.month), "evidencia-acme-2026-11.csv");
}

#[test]
fn invoice_lines_are_the_priced_lines_taxed_on_top() {
    let mut contract = one_version(vec![("c1", sales_terms(flat(1990))), ("c2", talk_terms(flat(3000)))]);
    contract.versions[0].monthly_minimum = Some(soles(10_000));
    let events = [
        sale("a", "c1", date!(2026 - 11 - 02)),
        sale("b", "c1", date!(2026 - 11 - 02)),
        talk("t", "c2", date!(2026 - 11 - 03), 125),
    ];
    let p = price(&contract, "2026-11", &events);
    let charges = p.invoice_charges().expect("charges");
    let shapes: Vec<(u32, i64)> = charges.iter().map(|c| (c.quantity, minor(c.unit_price))).collect();
    // Sales keep quantity × unit price; talk time and the minimum are one unit at their amount.
    assert_eq!(shapes, [(2, 1990), (1, 104), (1, 10_000 - 3980 - 104)]);
    let igv = TaxConfig {
        prices_include_tax: false,
        ..TaxConfig::default()
    };
    let (lines, totals) = invoice::compute(&charges, &igv, p.currency).expect("invoice");
    assert_eq!(totals.subtotal, p.charges);
    assert_eq!(totals.tax, soles(1800));
    let nets: Vec<Money> = lines.iter().map(|l| l.net).collect();
    let amounts: Vec<Money> = p.lines.iter().map(|l| l.amount).collect();
    assert_eq!(nets, amounts);
}

#[test]
fn results_and_billed_items_round_trip_as_json() {
    let contract = one_version(vec![("c1", sales_terms(flat(1000)))]);
    let oct = price(
        &contract,
        "2026-10",
        &[family_sale("a", "c1", date!(2026 - 10 - 03), "FIBRA")],
    );
    let item = serde_json::to_value(&oct.billed[0]).expect("json");
    assert_eq!(item["month"], json!("2026-10"));
    assert_eq!(item["event"]["day"], json!("2026-10-03"));
    assert_eq!(item["event"]["kind"], json!("VERIFIED_SALE"));
    assert_eq!(item["amount"], json!({"amount": "10.00", "currency": "PEN"}));
    assert_eq!(
        serde_json::from_value::<BilledItem>(item).ok().as_ref(),
        oct.billed.first()
    );
    let nov = price_month(&contract, month("2026-11"), &[], &oct.billed).expect("priced");
    let again: MonthPricing = serde_json::to_string(&nov)
        .and_then(|s| serde_json::from_str(&s))
        .expect("round trip");
    assert_eq!(again, nov);
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// A rate: flat, or up to three graduated tiers with thresholds of 1–4 units (hours for talk).
fn any_rate() -> impl Strategy<Value = Rate> {
    prop_oneof![
        (0i64..5000).prop_map(flat),
        proptest::collection::vec((1u64..4, 0i64..5000), 0..3).prop_flat_map(|bounded| {
            (0i64..5000).prop_map(move |last| {
                let mut up_to = 0;
                let mut tiers: Vec<(Option<u64>, i64)> = bounded
                    .iter()
                    .map(|&(step, price)| {
                        up_to += step;
                        (Some(up_to), price)
                    })
                    .collect();
                tiers.push((None, last));
                tiered(&tiers)
            })
        }),
    ]
}

fn any_terms() -> impl Strategy<Value = Vec<(&'static str, CampaignTerms)>> {
    (any_rate(), proptest::option::of(any_rate()), any_rate(), any_rate()).prop_map(
        |(sale_price, fibra, contact_price, talk_price)| {
            vec![
                (
                    "c1",
                    CampaignTerms {
                        verified_sale: Some(SaleTerms {
                            price: Some(sale_price),
                            by_family: fibra.map(|r| ("FIBRA".to_owned(), r)).into_iter().collect(),
                        }),
                        ..CampaignTerms::default()
                    },
                ),
                (
                    "c2",
                    CampaignTerms {
                        effective_contact: Some(contact_price),
                        talk_hour: Some(talk_price),
                        ..CampaignTerms::default()
                    },
                ),
            ]
        },
    )
}

/// One version, or two switching on a November day; perhaps a minimum on each.
fn any_contract() -> impl Strategy<Value = Contract> {
    (
        any_terms(),
        any_terms(),
        proptest::option::of(2u8..=30),
        proptest::option::of(0i64..20_000),
        proptest::option::of(0i64..20_000),
    )
        .prop_map(|(first, second, switch, min1, min2)| {
            let from = date!(2026 - 09 - 01);
            let mut versions = match switch {
                None => vec![version(1, from, None, first)],
                Some(day) => {
                    let at = date!(2026 - 11 - 01) + time::Duration::days(i64::from(day) - 1);
                    vec![version(1, from, Some(at), first), version(2, at, None, second)]
                }
            };
            versions[0].monthly_minimum = min1.map(soles);
            if let Some(v) = versions.get_mut(1) {
                v.monthly_minimum = min2.map(soles);
            }
            contract(versions)
        })
}

/// Events of November and late ones from October, with unique keys.
fn any_events() -> impl Strategy<Value = Vec<BillableEvent>> {
    proptest::collection::vec((0u8..4, -20i64..30, 0u8..3, 1u64..5000), 0..40).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (kind, offset, family, seconds))| {
                let day = date!(2026 - 11 - 01) + time::Duration::days(offset);
                let id = format!("e{i:02}");
                match kind {
                    0 => sale(&id, "c1", day),
                    1 => family_sale(&id, "c1", day, ["FIBRA", "TV", "HOGAR"][usize::from(family)]),
                    2 => contact(&id, "c2", day),
                    _ => talk(&id, "c2", day, seconds),
                }
            })
            .collect()
    })
}

/// What a rate charges per unit at its cheapest and dearest.
fn price_bounds(rate: &Rate) -> (i64, i64) {
    match rate {
        Rate::UnitPrice(p) => (minor(*p), minor(*p)),
        Rate::Tiers(tiers) => {
            let prices = tiers.iter().map(|t| minor(t.unit_price));
            (prices.clone().min().unwrap_or(0), prices.max().unwrap_or(0))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn lines_evidence_and_total_always_agree(contract in any_contract(), events in any_events()) {
        let p = price_month(&contract, month("2026-11"), &events, &[]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        assert_balanced(&p);
        // Every event is billed or listed apart, once.
        prop_assert_eq!(p.billed.len() + p.unpriced.len(), events.len());
        let own: i64 = p.evidence.iter().filter(|r| !r.late).map(|r| minor(r.amount)).sum();
        let floor = contract.version_on(date!(2026 - 11 - 30)).and_then(|v| v.monthly_minimum).map_or(0, minor);
        prop_assert_eq!(p.minimum_adjustment.map_or(0, minor), (floor - own).max(0));
        // Reversing the month in December gives back exactly its charges but the minimum.
        let dec = price_month(&contract, month("2026-12"), &[], &p.billed).map_err(|e| TestCaseError::fail(e.to_string()))?;
        assert_balanced(&dec);
        prop_assert!(dec.evidence.iter().all(|r| r.reversal));
        prop_assert_eq!(dec.evidence.len(), p.billed.len());
        prop_assert_eq!(minor(dec.reversals), -(minor(p.charges) - p.minimum_adjustment.map_or(0, minor)));
    }

    #[test]
    fn pricing_does_not_depend_on_the_input_order(
        contract in any_contract(),
        (events, shuffled) in any_events().prop_flat_map(|e| (Just(e.clone()), Just(e).prop_shuffle())),
    ) {
        let oct_events: Vec<BillableEvent> = events.iter().filter(|e| e.day < date!(2026 - 11 - 01)).cloned().collect();
        let oct = price_month(&contract, month("2026-10"), &oct_events, &[]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut reversed = oct.billed.clone();
        reversed.reverse();
        let nov: Vec<BillableEvent> = events.iter().filter(|e| e.day >= date!(2026 - 11 - 01)).cloned().collect();
        let nov_shuffled: Vec<BillableEvent> = shuffled.iter().filter(|e| e.day >= date!(2026 - 11 - 01)).cloned().collect();
        let a = price_month(&contract, month("2026-11"), &nov, &oct.billed);
        let b = price_month(&contract, month("2026-11"), &nov_shuffled, &reversed);
        prop_assert_eq!(a, b);
        let a = price_month(&contract, month("2026-11"), &events, &[]);
        let b = price_month(&contract, month("2026-11"), &shuffled, &[]);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn one_version_without_tiers_bills_quantity_times_price(
        prices in (0i64..5000, 0i64..5000, 0i64..5000, 0i64..5000),
        events in any_events(),
    ) {
        let (sale_price, fibra, contact_price, talk_price) = prices;
        let contract = one_version(vec![
            ("c1", CampaignTerms {
                verified_sale: Some(SaleTerms {
                    price: Some(flat(sale_price)),
                    by_family: [("FIBRA".to_owned(), flat(fibra))].into(),
                }),
                ..CampaignTerms::default()
            }),
            ("c2", CampaignTerms {
                effective_contact: Some(flat(contact_price)),
                talk_hour: Some(flat(talk_price)),
                ..CampaignTerms::default()
            }),
        ]);
        let p = price_month(&contract, month("2026-11"), &events, &[]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected: i64 = events
            .iter()
            .map(|e| match e.kind {
                BillableKind::VerifiedSale if e.sku_family.as_deref() == Some("FIBRA") => fibra,
                BillableKind::VerifiedSale => sale_price,
                BillableKind::EffectiveContact => contact_price,
                // Per event: seconds × price per hour / 3600, half up.
                BillableKind::TalkTime => {
                    let exact = i64::try_from(e.quantity).unwrap_or(i64::MAX) * talk_price;
                    (exact + 1800) / 3600
                }
            })
            .sum();
        prop_assert_eq!(minor(p.total), expected);
        prop_assert!(p.unpriced.is_empty());
    }

    #[test]
    fn graduated_tiers_stay_between_the_lowest_and_highest_tier_price(
        terms in any_terms(),
        events in any_events(),
    ) {
        let contract = one_version(terms);
        let p = price_month(&contract, month("2026-11"), &events, &[]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let version = &contract.versions[0];
        let groups = [
            ("c1", BillableKind::VerifiedSale, None),
            ("c1", BillableKind::VerifiedSale, Some("FIBRA")),
            ("c2", BillableKind::EffectiveContact, None),
            ("c2", BillableKind::TalkTime, None),
        ];
        for (campaign, kind, family) in groups {
            let Ok((rate, priced_as)) = version.rate(campaign, kind, family) else { continue };
            if priced_as.as_deref() != family {
                continue;
            }
            let rows: Vec<&EvidenceRow> = p
                .evidence
                .iter()
                .filter(|r| r.campaign_id == campaign && r.kind == kind)
                .filter(|r| kind != BillableKind::VerifiedSale || (r.sku_family.as_deref() == Some("FIBRA")) == family.is_some())
                .collect();
            let units: i64 = rows.iter().map(|r| i64::try_from(r.quantity).unwrap_or(i64::MAX)).sum();
            let amount: i64 = rows.iter().map(|r| minor(r.amount)).sum();
            let (low, high) = price_bounds(rate);
            if kind == BillableKind::TalkTime {
                // Each row rounds by at most half a minor unit.
                let slack = 1800 * i64::try_from(rows.len()).unwrap_or(i64::MAX);
                prop_assert!(low * units - slack <= amount * 3600 && amount * 3600 <= high * units + slack);
            } else {
                prop_assert!(low * units <= amount && amount <= high * units, "{} {:?}: {} not in [{}, {}] × {}", campaign, kind, amount, low, high, units);
            }
        }
    }
}

#[test]
fn billed_months_keep_their_versions_and_new_terms_start_after_them() {
    let stored = contract(vec![version(
        1,
        date!(2026 - 09 - 01),
        None,
        vec![("c1", sales_terms(flat(1000)))],
    )]);
    let codes = |result: Result<(), Vec<FieldError>>| -> Vec<(String, &'static str)> {
        result
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect()
    };
    let billed = Some(date!(2026 - 10 - 31));
    // Nothing billed yet: anything valid goes.
    let mut repriced = stored.clone();
    repriced.versions[0]
        .campaigns
        .insert("c1".into(), sales_terms(flat(2000)));
    assert_eq!(codes(repriced.amends(&stored, None)), vec![]);
    // Billed through October: version 1 cannot be repriced, only ended after October...
    assert_eq!(
        codes(repriced.amends(&stored, billed)),
        vec![("versions[0]".to_owned(), "billed_version_changed")]
    );
    let mut ended_early = stored.clone();
    ended_early.versions[0].valid_to = Some(date!(2026 - 10 - 15));
    assert_eq!(
        codes(ended_early.amends(&stored, billed)),
        vec![("versions[0].valid_to".to_owned(), "billed_version_changed")]
    );
    // ...and a new price starts with a version after the billed months.
    let mut amended = stored.clone();
    amended.versions[0].valid_to = Some(date!(2026 - 12 - 01));
    amended.versions.push(version(
        2,
        date!(2026 - 12 - 01),
        None,
        vec![("c1", sales_terms(flat(2000)))],
    ));
    assert_eq!(amended.validate(), Ok(()));
    assert_eq!(codes(amended.amends(&stored, billed)), vec![]);
    let mut backdated = amended.clone();
    backdated.versions[0].valid_to = Some(date!(2026 - 11 - 01));
    backdated.versions[1].valid_from = date!(2026 - 11 - 01);
    assert_eq!(codes(backdated.amends(&stored, billed)), vec![]);
    backdated.versions[0].valid_to = Some(date!(2026 - 10 - 20));
    backdated.versions[1].valid_from = date!(2026 - 10 - 20);
    assert_eq!(
        codes(backdated.amends(&stored, billed)),
        vec![
            ("versions[0].valid_to".to_owned(), "billed_version_changed"),
            ("versions[1].valid_from".to_owned(), "starts_in_billed_months")
        ]
    );
    // Removing a billed version, or naming another client, is refused.
    let mut removed = amended.clone();
    removed.versions.remove(0);
    assert_eq!(
        codes(removed.amends(&stored, billed)),
        vec![("versions".to_owned(), "billed_version_removed")]
    );
    let mut other = stored.clone();
    other.client_id = "globex".into();
    assert_eq!(
        codes(other.amends(&stored, billed)),
        vec![("client_id".to_owned(), "client_changed")]
    );
}
