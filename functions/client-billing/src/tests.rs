use std::sync::Arc;

use backoffice_domain::client_billing::Contract;
use backoffice_domain::presale::{Presale, PresaleStatus};
use backoffice_domain::review::{Decision, DecisionKind};
use backoffice_domain::testing::{FixedClock, billing_profile, campaign_catalog, registered_presale};
use backoffice_domain::tipification::{Channel, Contact, Family};
use backoffice_edge::testing::{ApiEvent, MemoryPublisher, Reply};
use backoffice_store::billing::MemoryBillingRuns;
use backoffice_store::config::MemoryCampaignDirectory;
use backoffice_store::invoices::MemoryInvoiceStore;
use backoffice_store::kpis::MemoryKpiStore;
use backoffice_store::presales::{MemoryPresaleStore, StoredPresale};
use backoffice_store::reconciliation::{ApprovedSale, MemorySaleTrail};
use backoffice_store::register::MemoryRegisterFiles;
use serde_json::json;
use time::macros::datetime;

use super::*;

type Subject = Billing<
    MemoryBillingRuns,
    MemoryKpiStore,
    MemorySaleTrail,
    MemoryPresaleStore,
    MemoryCampaignDirectory,
    FixedClock,
    MemoryInvoiceStore,
    MemoryPublisher,
>;

fn lima() -> CampaignZone {
    CampaignZone::parse("America/Lima").expect("a zone")
}

/// Two soles per effective contact, 50 per verified sale, 12 per talk hour, in campaign c1.
fn contract() -> Contract {
    serde_json::from_value(json!({
        "client_id": "acme",
        "versions": [{
            "version": 1, "valid_from": "2026-01-01", "currency": "PEN", "payment_terms_days": 30,
            "campaigns": {"c1": {
                "verified_sale": {"price": {"unit_price": {"amount": "50.00", "currency": "PEN"}}},
                "effective_contact": {"unit_price": {"amount": "2.00", "currency": "PEN"}},
                "talk_hour": {"unit_price": {"amount": "12.00", "currency": "PEN"}}
            }}
        }]
    }))
    .expect("a contract")
}

/// The shared fixture's contact (acme, c1, a call of agent-7), recorded and talked as given.
fn contact(id: &str, family: Family, started_at: OffsetDateTime, recorded_at: OffsetDateTime, talk: u32) -> Contact {
    Contact {
        recorded_at,
        talk_seconds: Some(talk),
        ..backoffice_domain::testing::contact(id, "agent-7", Channel::Call, family, started_at)
    }
}

/// A pre-sale of c1 approved at `approved_at`.
fn approved(call: &str, approved_at: OffsetDateTime) -> Presale {
    let mut presale = registered_presale(
        &campaign_catalog("c1", "acme"),
        call,
        None,
        approved_at - Duration::hours(2),
    );
    presale.status = PresaleStatus::Approved;
    presale.decision = Some(Decision {
        kind: DecisionKind::Approve,
        by: "val-1".into(),
        at: approved_at,
        reasons: vec![],
        comment: None,
        override_reason: None,
        review_secs: 60,
    });
    presale
}

struct Harness {
    billing: Subject,
    files: Arc<MemoryRegisterFiles>,
    sale: Presale,
}

/// October: two effective contacts (one of 30 min), one non-effective, one sale approved on
/// the 31st at 23:00 in Lima (already November in UTC).
fn harness(now: OffsetDateTime) -> Harness {
    let contacts = MemoryKpiStore::default();
    let recorded = datetime!(2026-10-20 12:00 -5);
    for c in [
        contact("k1", Family::Effective, datetime!(2026-10-05 10:00 -5), recorded, 1800),
        contact(
            "k2",
            Family::Effective,
            datetime!(2026-10-31 23:30 -5),
            recorded + Duration::days(11),
            0,
        ),
        contact(
            "k3",
            Family::NonEffective,
            datetime!(2026-10-06 10:00 -5),
            recorded,
            600,
        ),
    ] {
        contacts.add_contact(c).expect("added");
    }
    let sale = approved("call-1", datetime!(2026-10-31 23:00 -5));
    let presales = MemoryPresaleStore::new();
    presales.put_raw(StoredPresale {
        presale: sale.clone(),
        audit_head: "h".into(),
    });
    let trail = MemorySaleTrail::default().with_approved(ApprovedSale {
        presale_id: sale.id.clone(),
        client_id: "acme".into(),
        campaign_id: "c1".into(),
        created_at: sale.created_at,
        approved_at: datetime!(2026-10-31 23:00 -5),
    });
    let files = Arc::new(MemoryRegisterFiles::default());
    Harness {
        billing: Billing {
            runs: MemoryBillingRuns::default(),
            contacts,
            approved: trail,
            presales,
            directory: MemoryCampaignDirectory::with([campaign_catalog("c1", "acme")])
                .with_billing(billing_profile("acme"))
                .with_contract(contract()),
            files: files.clone(),
            clock: FixedClock::at(now),
            zone: lima(),
            invoices: MemoryInvoiceStore::default(),
            publisher: MemoryPublisher::default(),
            call_center_id: "callcenter".into(),
        },
        files,
        sale,
    }
}

impl Harness {
    /// The October sale rejected on re-review: no longer APPROVED.
    fn reject_sale(&self) {
        let mut rejected = self.sale.clone();
        rejected.status = PresaleStatus::Rejected;
        self.billing.presales.put_raw(StoredPresale {
            presale: rejected,
            audit_head: "h2".into(),
        });
    }
}

fn month(raw: &str) -> Period {
    Period::parse(raw).expect("a month")
}

#[tokio::test]
async fn a_month_closes_once_with_its_contacts_talk_time_and_sales_priced_by_the_contract() {
    let h = harness(datetime!(2026-11-01 03:00 -5));
    let run = h.billing.close("acme", month("2026-10")).await.expect("closed");
    // 2 effective contacts × 2.00 + 0.5 h × 12.00 + 10 min × 12.00/h + 1 sale × 50.00.
    assert_eq!(run.pricing.charges.to_decimal_string(), "62.00");
    assert_eq!(run.pricing.evidence.len(), 5, "{:?}", run.pricing.evidence);
    let csv = String::from_utf8(h.files.bytes(&run.evidence_key).expect("the evidence file")).expect("UTF-8");
    assert!(csv.starts_with('\u{feff}'));
    assert_eq!(csv.lines().count(), 6, "a header and five rows: {csv}");

    // Again, by anyone: the run as it was closed.
    let again = h.billing.close("acme", month("2026-10")).await.expect("the same run");
    assert_eq!(again, run);
}

#[tokio::test]
async fn late_contacts_go_to_the_next_run_and_a_sale_no_longer_approved_is_reversed() {
    let h = harness(datetime!(2026-11-01 03:00 -5));
    let october = h.billing.close("acme", month("2026-10")).await.expect("closed");
    assert_eq!(october.pricing.charges.to_decimal_string(), "62.00");

    // After October closed: a contact of October recorded late, one of November, and the
    // October sale rejected on re-review.
    h.billing
        .contacts
        .add_contact(contact(
            "k4",
            Family::Effective,
            datetime!(2026-10-30 10:00 -5),
            datetime!(2026-11-03 09:00 -5),
            0,
        ))
        .expect("added");
    h.billing
        .contacts
        .add_contact(contact(
            "k5",
            Family::Effective,
            datetime!(2026-11-10 10:00 -5),
            datetime!(2026-11-10 10:10 -5),
            0,
        ))
        .expect("added");
    h.reject_sale();
    h.billing.clock.set(datetime!(2026-12-01 03:00 -5));
    let november = h.billing.close("acme", month("2026-11")).await.expect("closed");
    let late: Vec<&str> = november
        .pricing
        .evidence
        .iter()
        .filter(|row| row.late)
        .map(|row| row.key.as_str())
        .collect();
    assert_eq!(late, vec!["CONTACT#k4"]);
    assert_eq!(november.pricing.charges.to_decimal_string(), "4.00");
    assert_eq!(november.pricing.reversals.to_decimal_string(), "-50.00");
    // Reversed once: December reverses nothing more.
    h.billing.clock.set(datetime!(2027-01-01 03:00 -5));
    let december = h.billing.close("acme", month("2026-12")).await.expect("closed");
    assert_eq!(december.pricing.reversals.to_decimal_string(), "0.00");
}

#[tokio::test]
async fn only_ended_months_close_and_in_order() {
    let h = harness(datetime!(2026-12-15 10:00 -5));
    let open = h.billing.close("acme", month("2026-12")).await;
    assert!(matches!(open, Err(BillingError::Refused(_))), "{open:?}");
    h.billing.close("acme", month("2026-10")).await.expect("closed");
    let skipped = h.billing.close("acme", month("2026-12")).await;
    assert!(matches!(skipped, Err(BillingError::Refused(_))), "{skipped:?}");
    let no_contract = h.billing.close("globex", month("2026-10")).await;
    assert!(
        matches!(no_contract, Err(BillingError::NoContract(_))),
        "{no_contract:?}"
    );
}

async fn call(h: &Harness, event: ApiEvent) -> Reply {
    h.billing
        .handle(event.build(), &Invocation::ending_after(h.billing.clock.now(), 30))
        .await
        .into()
}

#[tokio::test]
async fn admins_close_finance_reads_and_the_current_month_is_a_preview() {
    let h = harness(datetime!(2026-11-20 10:00 -5));
    let post = |role: &str| {
        ApiEvent::new("POST /billing/runs")
            .who("u-1", role, "acme")
            .query("month", "2026-10")
    };
    assert_eq!(call(&h, post("finance")).await.status, 403);
    let created = call(&h, post("admin")).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["id"], "acme-2026-10");
    assert_eq!(created.body["charges"], "62.00");
    assert!(created.body["evidence_url"].is_string());
    assert_eq!(
        call(&h, post("admin")).await.status,
        200,
        "closed already: the same run"
    );

    let list = call(&h, ApiEvent::new("GET /billing/runs").who("u-2", "finance", "acme")).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["runs"][0]["month"], "2026-10");
    assert_eq!(list.body["preview"], "acme-2026-11");

    let read = |id: &str, clients: &str| {
        ApiEvent::new("GET /billing/runs/{id}")
            .who("u-2", "finance", clients)
            .param("id", id)
    };
    let closed = call(&h, read("acme-2026-10", "acme")).await;
    assert_eq!((closed.status, closed.body["status"].as_str()), (200, Some("CLOSED")));
    let preview = call(&h, read("acme-2026-11", "acme")).await;
    assert_eq!(preview.status, 200, "{}", preview.text);
    assert_eq!(preview.body["status"], "PREVIEW");
    assert_eq!(call(&h, read("acme-2026-10", "globex")).await.status, 404);
    assert_eq!(call(&h, read("nonsense", "acme")).await.status, 404);
    let agent = ApiEvent::new("GET /billing/runs").who("u-3", "agent", "acme");
    assert_eq!(call(&h, agent).await.status, 403);
    let open = ApiEvent::new("POST /billing/runs")
        .who("u-1", "admin", "acme")
        .query("month", "2026-11");
    let refused = call(&h, open).await;
    assert_eq!((refused.status, refused.body["field"].as_str()), (400, Some("month")));
}

#[tokio::test]
async fn a_run_that_charges_asks_once_for_the_call_centers_invoice_until_it_exists() {
    let h = harness(datetime!(2026-11-01 03:00 -5));
    h.billing.publisher.set_down(true);
    let run = h
        .billing
        .close("acme", month("2026-10"))
        .await
        .expect("closed, the queue down");
    assert_eq!(run.invoice_request.as_deref(), Some("acme-2026-10"));
    assert!(h.billing.publisher.sent().is_empty());

    // Closing it again sends the request the queue refused.
    h.billing.publisher.set_down(false);
    h.billing.close("acme", month("2026-10")).await.expect("the same run");
    let sent = h.billing.publisher.sent();
    assert_eq!(sent.len(), 1);
    let request: ServiceInvoiceRequested = backoffice_domain::wire::open(&sent[0].body).expect("a request").body;
    assert_eq!(
        (
            request.request_id.as_str(),
            request.seller_id.as_str(),
            request.client_id.as_str()
        ),
        ("acme-2026-10", "callcenter", "acme")
    );
    assert_eq!(request.evidence_key, run.evidence_key);
    let billed: i64 = request
        .lines
        .iter()
        .map(|l| l.unit_price.amount_minor() * i64::from(l.quantity))
        .sum();
    assert_eq!(billed, run.pricing.charges.amount_minor());

    // Issued: the run shows its invoice, and closing again asks for nothing more.
    issue_service_invoice(&h, &request, 1).await;
    h.billing.close("acme", month("2026-10")).await.expect("the same run");
    assert_eq!(h.billing.publisher.sent().len(), 1);
    let read = ApiEvent::new("GET /billing/runs/{id}")
        .who("u-2", "finance", "acme")
        .param("id", "acme-2026-10");
    let reply = call(&h, read).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["invoice_request"], "acme-2026-10");
    assert_eq!(reply.body["invoice"]["id"], "F900-00000001");
    assert_eq!(reply.body["invoice"]["status"], "ISSUED");
}

/// Issue the invoice `request` asks for, as invoice-issue would, into the memory store.
async fn issue_service_invoice(h: &Harness, request: &ServiceInvoiceRequested, number: u64) -> String {
    use backoffice_domain::invoice::InvoiceDraft;

    let seller = backoffice_domain::invoice::BillingProfile {
        tax: backoffice_domain::invoice::TaxConfig {
            prices_include_tax: false,
            ..Default::default()
        },
        factura_series: "F900".into(),
        ..billing_profile("callcenter")
    };
    let invoice = InvoiceDraft::for_service(request, &seller, &billing_profile("acme"), h.billing.clock.now())
        .and_then(|d| d.numbered(number))
        .expect("an invoice");
    let audit = backoffice_domain::testing::issued_audit(&invoice.invoice_id, invoice.issued_at);
    h.billing.invoices.issue(&invoice, &audit).await.expect("issued");
    invoice.invoice_id
}

#[tokio::test]
async fn a_reversed_sale_is_credited_on_the_invoice_that_billed_it_once_that_invoice_exists() {
    let h = harness(datetime!(2026-11-01 03:00 -5));
    let october = h.billing.close("acme", month("2026-10")).await.expect("closed");
    let sale_key = format!("SALE#{}", h.sale.id);
    let line = october.pricing.invoice_line_of(&sale_key).expect("the sale's line");

    // The sale is rejected on re-review before October's invoice exists.
    h.reject_sale();
    h.billing.clock.set(datetime!(2026-12-01 03:00 -5));
    let november = h.billing.close("acme", month("2026-11")).await.expect("closed");
    assert_eq!(november.credits.len(), 1, "{:?}", november.credits);
    let credit = &november.credits[0];
    assert_eq!(credit.billed_in, month("2026-10"));
    assert_eq!(credit.amount.to_decimal_string(), "50.00");
    assert_eq!(credit.keys, vec![sale_key.clone()]);
    let kinds = |h: &Harness| -> Vec<String> {
        h.billing
            .publisher
            .sent()
            .iter()
            .filter_map(|m| backoffice_domain::wire::peek_type(&m.body))
            .collect()
    };
    // Only October's invoice request went out: the credit waits for that invoice.
    assert_eq!(kinds(&h), vec!["ServiceInvoiceRequested"]);

    let sent = h.billing.publisher.sent();
    let october_request: ServiceInvoiceRequested =
        backoffice_domain::wire::open(&sent[0].body).expect("a request").body;
    let invoice_id = issue_service_invoice(&h, &october_request, 1).await;
    // Closing November again asks for the note, on October's invoice, one unit of the sale's line.
    h.billing.close("acme", month("2026-11")).await.expect("the same run");
    assert_eq!(kinds(&h), vec!["ServiceInvoiceRequested", "CreditNoteRequested"]);
    let sent = h.billing.publisher.sent();
    let note: CreditNoteRequested = backoffice_domain::wire::open(&sent[1].body).expect("a request").body;
    assert_eq!(note.request_id, "acme-2026-11-credit-2026-10");
    assert_eq!(
        (note.client_id.as_str(), note.invoice_id.as_str()),
        ("callcenter", invoice_id.as_str())
    );
    assert_eq!(
        note.lines,
        vec![backoffice_domain::credit_note::CreditedLine { line, quantity: 1 }]
    );
    assert_eq!(note.reason, CreditNoteReason::ValueDecrease);

    // The run shows what it owes; the note is not issued yet.
    let read = ApiEvent::new("GET /billing/runs/{id}")
        .who("u-2", "finance", "acme")
        .param("id", "acme-2026-11");
    let reply = call(&h, read).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["credits"][0]["credited_run"], "acme-2026-10");
    assert_eq!(reply.body["credits"][0]["amount"], "50.00");
    assert_eq!(reply.body["credits"][0]["credit_note"], serde_json::Value::Null);
}

#[tokio::test]
async fn the_daily_schedule_closes_on_the_first_and_later_only_resends_what_a_run_owes() {
    let h = harness(datetime!(2026-11-01 03:00 -5));
    h.billing.publisher.set_down(true);
    let first = h.billing.close_all(&CloseRequest::default()).await.expect("ran");
    assert_eq!(
        (first.closed, first.already_closed, first.failed),
        (vec!["acme-2026-10".to_owned()], vec![], vec![])
    );
    assert!(h.billing.publisher.sent().is_empty(), "the queue was down");

    h.billing.publisher.set_down(false);
    h.billing.clock.set(datetime!(2026-11-02 03:00 -5));
    let second = h.billing.close_all(&CloseRequest::default()).await.expect("ran");
    assert_eq!(
        (second.closed, second.already_closed),
        (vec![], vec!["acme-2026-10".to_owned()])
    );
    let sent = h.billing.publisher.sent();
    assert_eq!(sent.len(), 1, "the invoice the first day could not ask for");
    assert_eq!(
        backoffice_domain::wire::peek_type(&sent[0].body).as_deref(),
        Some("ServiceInvoiceRequested")
    );
}

#[tokio::test]
async fn admins_replace_a_contract_at_its_revision_without_touching_billed_months() {
    let h = harness(datetime!(2026-11-20 10:00 -5));
    let get = |role: &str, client: &str| {
        ApiEvent::new("GET /clients/{id}/contract")
            .who("u-1", role, client)
            .param("id", client)
    };
    let put = |body: serde_json::Value, if_match: Option<&str>| {
        let event = ApiEvent::new("PUT /clients/{id}/contract")
            .who("u-1", "admin", "acme")
            .param("id", "acme")
            .json(&body);
        match if_match {
            Some(tag) => event.header("if-match", tag),
            None => event,
        }
    };
    // The seeded contract reads at revision 0; agents and other tenants see nothing.
    let read = call(&h, get("finance", "acme")).await;
    assert_eq!(
        (read.status, read.body["revision"].as_u64()),
        (200, Some(0)),
        "{}",
        read.text
    );
    assert_eq!(read.header("etag"), Some("\"0\""));
    assert_eq!(call(&h, get("agent", "acme")).await.status, 403);
    assert_eq!(call(&h, get("finance", "globex")).await.status, 404);

    // October is billed: its version cannot be repriced.
    h.billing.close("acme", month("2026-10")).await.expect("closed");
    let mut body = read.body["contract"].clone();
    body["versions"][0]["campaigns"]["c1"]["verified_sale"]["price"]["unit_price"]["amount"] = json!("60.00");
    let refused = call(&h, put(body.clone(), Some("\"0\""))).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("billed_version_changed"), "{}", refused.text);

    // A new price from December: version 1 ends, version 2 starts after the billed months.
    let mut amended = read.body["contract"].clone();
    amended["versions"][0]["valid_to"] = json!("2026-12-01");
    let mut v2 = amended["versions"][0].clone();
    v2["version"] = json!(2);
    v2["valid_from"] = json!("2026-12-01");
    v2.as_object_mut().expect("a version").remove("valid_to");
    v2["campaigns"]["c1"]["verified_sale"]["price"]["unit_price"]["amount"] = json!("60.00");
    amended["versions"].as_array_mut().expect("versions").push(v2);
    let written = call(&h, put(amended.clone(), Some("\"0\""))).await;
    assert_eq!(
        (written.status, written.body["revision"].as_u64()),
        (200, Some(1)),
        "{}",
        written.text
    );
    assert_eq!(written.header("etag"), Some("\"1\""));
    let december = h
        .billing
        .directory
        .contract("acme")
        .await
        .expect("read")
        .expect("a contract");
    assert_eq!(december.versions.len(), 2);

    // A second writer that read revision 0, or one that names none, is refused.
    assert_eq!(call(&h, put(amended.clone(), Some("\"0\""))).await.status, 412);
    assert_eq!(call(&h, put(amended.clone(), None)).await.status, 412);
    // An invalid contract names its field.
    let mut broken = amended.clone();
    broken["versions"][1]["valid_from"] = json!("2026-11-15");
    let invalid = call(&h, put(broken, Some("\"1\""))).await;
    assert_eq!(invalid.status, 422, "{}", invalid.text);
    assert!(invalid.text.contains("versions[1].valid_from"), "{}", invalid.text);
    // Finance reads, admins write.
    let finance_put = ApiEvent::new("PUT /clients/{id}/contract")
        .who("u-2", "finance", "acme")
        .param("id", "acme")
        .json(&amended);
    assert_eq!(call(&h, finance_put).await.status, 403);
}
