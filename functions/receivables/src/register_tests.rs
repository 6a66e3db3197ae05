//! Handler tests of the sales register with the in-memory stores: who may generate and read it,
//! the month, the file's rows.

use backoffice_domain::audit::{Actor, AuditEntry, GENESIS_HASH};
use backoffice_domain::credit_note::{CreditNoteDraft, CreditNoteReason};
use backoffice_domain::electronic::ElectronicStatus;
use backoffice_domain::invoice::{Invoice, InvoiceDraft};
use backoffice_domain::sales_register::CSV_HEADER;
use backoffice_domain::testing::{FixedClock, billing_profile, invoice_request};
use backoffice_edge::testing::{ApiEvent, Reply};
use backoffice_store::credit_notes::{CreditNoteStore, CreditOutcome};
use backoffice_store::invoices::{ElectronicRecord, InvoiceStore, IssueOutcome, MemoryInvoiceStore};
use backoffice_store::register::MemoryRegisterFiles;
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

/// 2026-11-30 22:00 in Lima: still November there, already December in UTC.
const NOW: OffsetDateTime = datetime!(2026-12-01 03:00 UTC);
const KEY: &str = "registers/acme/2026-11/registro-ventas-acme-2026-11.csv";

type Service = SalesRegisterApi<MemoryInvoiceStore, MemoryRegisterFiles, FixedClock>;

fn record(status: ElectronicStatus, at: OffsetDateTime) -> ElectronicRecord {
    ElectronicRecord {
        status,
        file_stem: "stem".into(),
        digest_value: "d".into(),
        xml_key: "k".into(),
        xml_sha256: "h".into(),
        cdr_key: None,
        response_code: Some(if status == ElectronicStatus::Rejected { 2800 } else { 0 }),
        description: None,
        notes: Vec::new(),
        submissions: 1,
        last_error: None,
        answered_at: Some(at),
    }
}

async fn issue(
    store: &MemoryInvoiceStore,
    client: &str,
    number: u64,
    at: OffsetDateTime,
    status: Option<ElectronicStatus>,
) -> Invoice {
    let invoice = InvoiceDraft::prepare(
        &invoice_request(&format!("p-{client}-{number}"), client),
        &billing_profile(client),
        at,
    )
    .and_then(|d| d.numbered(number))
    .expect("invoice");
    let audit =
        AuditEntry::new(&invoice.invoice_id, 1, at, &Actor::system("test"), "ISSUED", "ISSUED").seal(GENESIS_HASH);
    assert_eq!(
        store.issue(&invoice, &audit).await.expect("issued"),
        IssueOutcome::Issued
    );
    if let Some(status) = status {
        store
            .record_electronic(client, &invoice.invoice_id, &record(status, at))
            .await
            .expect("recorded");
    }
    invoice
}

/// acme: B001-1 of October; in November B001-2 (accepted), B001-3 (rejected), B001-4 (accepted,
/// with credit note BC01-1 of one router, accepted); and globex's B001-1.
async fn service() -> Service {
    use ElectronicStatus::{Accepted, Rejected};
    let store = MemoryInvoiceStore::default();
    let mut invoices = Vec::new();
    for (client, number, at, status) in [
        ("acme", 1, datetime!(2026-10-30 15:00 UTC), Accepted),
        ("acme", 2, datetime!(2026-11-03 15:00 UTC), Accepted),
        ("acme", 3, datetime!(2026-11-04 15:00 UTC), Rejected),
        ("acme", 4, datetime!(2026-11-05 15:00 UTC), Accepted),
        ("globex", 1, datetime!(2026-11-03 15:00 UTC), Accepted),
    ] {
        invoices.push(issue(&store, client, number, at, Some(status)).await);
    }
    let fourth = &invoices[3];
    let note = CreditNoteDraft::by_lines(
        fourth,
        &[(1, 1)],
        "BC01",
        CreditNoteReason::ItemReturn,
        "Devolución de un router",
        time::macros::date!(2026 - 11 - 20),
        datetime!(2026-11-20 15:00 UTC),
    )
    .and_then(|d| d.numbered(1))
    .expect("note");
    let audit =
        AuditEntry::new(&note.credit_note_id, 1, NOW, &Actor::system("test"), "ISSUED", "ISSUED").seal(GENESIS_HASH);
    assert_eq!(
        store
            .issue_credit_note(fourth, &note, "req-1", "fin-1", &audit)
            .await
            .expect("note issued"),
        CreditOutcome::Issued
    );
    store
        .record_credit_note_electronic("acme", &fourth.invoice_id, &note.credit_note_id, &record(Accepted, NOW))
        .await
        .expect("note accepted");
    Service {
        source: store,
        files: MemoryRegisterFiles::default(),
        clock: FixedClock::at(NOW),
        zone: CampaignZone::parse("America/Lima").expect("zone"),
    }
}

async fn call(s: &Service, method: &str, who: (&str, &str), query: &[(&str, &str)]) -> Reply {
    let mut event = ApiEvent::new(&format!("{method} /receivables/sales-register")).who(who.0, who.1, "acme");
    for (name, value) in query {
        event = event.query(name, value);
    }
    Reply::from(s.handle(event.build(), &Invocation::ending_after(NOW, 10)).await)
}

const FINANCE: (&str, &str) = ("fin-1", "finance");
const NOVEMBER: &[(&str, &str)] = &[("month", "2026-11")];

#[tokio::test]
async fn finance_generates_the_month_with_its_note_and_without_the_rejected_invoice() {
    let s = service().await;
    let reply = call(&s, "POST", FINANCE, NOVEMBER).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["key"], KEY);
    assert_eq!(reply.body["month"], "2026-11");
    assert_eq!(
        reply.body["rows"],
        json!({"facturas": 0, "boletas": 2, "credit_notes": 1, "total": 3})
    );
    // 2 × 204.88 − 19.99; 2 × 173.63 − 16.94; 2 × 31.25 − 3.05.
    assert_eq!(
        reply.body["totals"],
        json!([{
            "currency": "PEN",
            "taxable": {"amount": "330.32", "currency": "PEN"},
            "exempt": {"amount": "0.00", "currency": "PEN"},
            "igv": {"amount": "59.45", "currency": "PEN"},
            "total": {"amount": "389.77", "currency": "PEN"},
        }])
    );
    assert_eq!(
        reply.body["excluded"],
        json!([{"document_id": "B001-00000003", "document_type": "BOLETA", "issue_date": "2026-11-04", "electronic_status": "REJECTED"}])
    );
    assert_eq!(reply.body["complete"], true, "a rejection is final");
    assert_eq!(
        reply.body["download_url"],
        "memory://registers/acme/2026-11/registro-ventas-acme-2026-11.csv?name=registro-ventas-acme-2026-11.csv&ttl=900"
    );
    assert_eq!(
        reply.header("location"),
        Some("/receivables/sales-register?client=acme&month=2026-11")
    );

    let bytes = s.files.bytes(KEY).expect("stored");
    assert_eq!(reply.body["size"], bytes.len());
    let text = String::from_utf8(bytes).expect("utf-8");
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').trim_end().split("\r\n").collect();
    assert_eq!(lines[0], CSV_HEADER.join(","));
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[1].starts_with("202611,03/11/2026,03/12/2026,03,B001,2,1,45678912,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[3].ends_with(",PEN,-16.94,0.00,-3.05,-19.99,05/11/2026,03,B001,4,ACCEPTED"),
        "{}",
        lines[3]
    );
}

#[tokio::test]
async fn a_pending_document_makes_the_register_incomplete() {
    let s = service().await;
    issue(&s.source, "acme", 5, datetime!(2026-11-28 15:00 UTC), None).await;
    let reply = call(&s, "POST", FINANCE, NOVEMBER).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["complete"], false);
    assert_eq!(reply.body["excluded"][1]["electronic_status"], "PENDING_SUBMISSION");
    assert_eq!(reply.body["rows"]["total"], 3);
}

#[tokio::test]
async fn only_finance_and_admins_of_the_client_get_it() {
    let s = service().await;
    assert_eq!(call(&s, "POST", ("adm-1", "admin"), NOVEMBER).await.status, 201);
    for role in ["supervisor", "agent", "validator"] {
        for method in ["POST", "GET"] {
            let reply = call(&s, method, ("u-1", role), NOVEMBER).await;
            assert_eq!(reply.status, 403, "{method} {role}");
        }
    }
    let other = call(&s, "POST", FINANCE, &[("client", "globex"), ("month", "2026-11")]).await;
    assert_eq!(
        other.status, 404,
        "another client's register reads as an unknown client"
    );
    assert_eq!(s.files.keys(), vec![KEY.to_owned()], "nothing written for globex");
}

#[tokio::test]
async fn the_month_is_well_formed_and_has_begun_in_lima() {
    let s = service().await;
    for (query, status) in [
        (vec![], 400),
        (vec![("month", "2026-13")], 400),
        (vec![("month", "11-2026")], 400),
        (vec![("month", "2026-11"), ("day", "3")], 400),
        // December has begun in UTC, not in Lima.
        (vec![("month", "2026-12")], 422),
        (vec![("month", "2031-01")], 422),
    ] {
        let reply = call(&s, "POST", FINANCE, &query).await;
        assert_eq!(reply.status, status, "{query:?}: {}", reply.text);
        let field = reply.body["field"]
            .as_str()
            .or(reply.body["errors"][0]["field"].as_str());
        let expected = if query.iter().any(|(k, _)| *k == "day") {
            "day"
        } else {
            "month"
        };
        assert_eq!(field, Some(expected), "{query:?}: {}", reply.text);
    }
    let empty = call(&s, "POST", FINANCE, &[("month", "2026-09")]).await;
    assert_eq!(empty.status, 201, "a month without documents is a header");
    assert_eq!(empty.body["rows"]["total"], 0);
    assert_eq!(empty.body["totals"], json!([]));
}

#[tokio::test]
async fn get_links_the_register_generated_last_or_says_there_is_none() {
    let s = service().await;
    let none = call(&s, "GET", FINANCE, NOVEMBER).await;
    assert_eq!(none.status, 404, "{}", none.text);
    call(&s, "POST", FINANCE, NOVEMBER).await;
    let reply = call(&s, "GET", ("adm-1", "admin"), NOVEMBER).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["key"], KEY);
    assert_eq!(reply.body["generated_by"], "fin-1");
    assert_eq!(reply.body["expires_in"], 900);
    assert!(reply.body["download_url"].as_str().is_some_and(|u| u.contains(KEY)));
}
