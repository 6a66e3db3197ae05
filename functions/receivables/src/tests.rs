//! Handler tests with the in-memory ledger: who may list, the filters, the pages, the CSV.

use backoffice_domain::audit::{Actor, AuditEntry, GENESIS_HASH};
use backoffice_domain::invoice::InvoiceDraft;
use backoffice_domain::testing::FixedClock;
use backoffice_domain::testing::{billing_profile, invoice_request};
use backoffice_edge::testing::{ApiEvent, MemoryPublisher, Reply};
use backoffice_store::idempotency::MemoryIdempotencyStore;
use backoffice_store::invoices::{ElectronicRecord, InvoiceStore, MemoryInvoiceStore};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2026-11-24 15:00 UTC);

/// Three boletas of acme (B001-1..3, issued a day apart; the second rejected by SUNAT) and one
/// of globex.
type Service = Receivables<MemoryInvoiceStore, MemoryIdempotencyStore, FixedClock>;

async fn service() -> Service {
    service_at(NOW + time::Duration::days(3), Arc::new(MemoryPublisher::default())).await
}

/// Links that name the key they sign.
struct FakeLinks;

#[async_trait::async_trait]
impl DocumentLinks for FakeLinks {
    async fn link(&self, key: &str, ttl: std::time::Duration) -> Result<String, accounts::PortError> {
        Ok(format!("https://signed.example/{key}?ttl={}", ttl.as_secs()))
    }
}

async fn service_at(now: OffsetDateTime, queue: Arc<MemoryPublisher>) -> Service {
    let store = MemoryInvoiceStore::default();
    for (n, client, day) in [(1, "acme", 0), (2, "acme", 1), (3, "acme", 2), (1, "globex", 0)] {
        let at = NOW + time::Duration::days(day);
        let invoice = InvoiceDraft::prepare(
            &invoice_request(&format!("p-{client}-{n}"), client),
            &billing_profile(client),
            at,
        )
        .and_then(|d| d.numbered(n))
        .expect("invoice");
        let audit =
            AuditEntry::new(&invoice.invoice_id, 1, at, &Actor::system("test"), "ISSUED", "ISSUED").seal(GENESIS_HASH);
        store.issue(&invoice, &audit).await.expect("issued");
        let rejected = n == 2;
        let record = ElectronicRecord {
            status: if rejected {
                ElectronicStatus::Rejected
            } else {
                ElectronicStatus::Accepted
            },
            file_stem: "stem".into(),
            digest_value: "d".into(),
            xml_key: "k".into(),
            xml_sha256: "h".into(),
            cdr_key: None,
            response_code: Some(if rejected { 2800 } else { 0 }),
            description: Some(
                if rejected {
                    "Documento, \"tipo\" inválido"
                } else {
                    "Aceptada"
                }
                .into(),
            ),
            notes: Vec::new(),
            submissions: 1,
            last_error: None,
            answered_at: Some(at),
        };
        store
            .record_electronic(client, &invoice.invoice_id, &record)
            .await
            .expect("recorded");
    }
    Receivables {
        ledger: store,
        idempotency: MemoryIdempotencyStore::new(),
        clock: FixedClock::at(now),
        links: Arc::new(FakeLinks),
        publisher: queue,
        zone: CampaignZone::parse("America/Lima").expect("zone"),
    }
}

async fn list(s: &Service, who: (&str, &str), query: &[(&str, &str)], csv: bool) -> Reply {
    let mut event = ApiEvent::new("GET /invoices").who(who.0, who.1, "acme");
    for (name, value) in query {
        event = event.query(name, value);
    }
    if csv {
        event = event.header("accept", "text/csv");
    }
    Reply::from(s.handle(event.build(), &Invocation::ending_after(NOW, 10)).await)
}

fn ids(reply: &Reply) -> Vec<&str> {
    reply.body["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["invoice_id"].as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn finance_lists_its_clients_invoices_newest_first_and_nobody_else_does() {
    let s = service().await;
    let all = list(&s, ("fin-1", "finance"), &[], false).await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(ids(&all), vec!["B001-00000003", "B001-00000002", "B001-00000001"]);
    assert_eq!(all.body["items"][1]["electronic_status"], "REJECTED");
    assert_eq!(all.body["items"][1]["sunat_code"], 2800);
    for role in ["supervisor", "admin"] {
        assert_eq!(list(&s, ("u-1", role), &[], false).await.status, 200, "{role}");
    }
    for role in ["agent", "validator"] {
        assert_eq!(list(&s, ("u-1", role), &[], false).await.status, 403, "{role}");
    }
    let other = list(&s, ("fin-1", "finance"), &[("client", "globex")], false).await;
    assert_eq!(other.status, 404, "another client's invoices read as an unknown client");
}

#[tokio::test]
async fn the_rejected_documents_are_one_filter_away_and_pages_follow_their_cursor() {
    let s = service().await;
    let rejected = list(&s, ("fin-1", "finance"), &[("electronic_status", "REJECTED")], false).await;
    assert_eq!(ids(&rejected), vec!["B001-00000002"]);
    let dated = list(
        &s,
        ("fin-1", "finance"),
        &[("from", "2026-11-25"), ("to", "2026-11-25")],
        false,
    )
    .await;
    assert_eq!(ids(&dated), vec!["B001-00000002"]);
    let first = list(&s, ("fin-1", "finance"), &[("limit", "2")], false).await;
    assert_eq!(ids(&first).len(), 2);
    let cursor = first.body["next_cursor"].as_str().expect("a next page").to_owned();
    let second = list(&s, ("fin-1", "finance"), &[("limit", "2"), ("cursor", &cursor)], false).await;
    assert_eq!(ids(&second), vec!["B001-00000001"]);
    assert!(second.body["next_cursor"].is_null());
}

#[tokio::test]
async fn bad_filters_are_named_in_the_problem() {
    let s = service().await;
    for (name, value) in [
        ("electronic_status", "LOST"),
        ("email_status", "x"),
        ("from", "25/11/2026"),
        ("limit", "0"),
        ("series", "b001"),
        ("buyer_document", "<script>"),
        ("stauts", "PAID"),
    ] {
        let reply = list(&s, ("fin-1", "finance"), &[(name, value)], false).await;
        assert_eq!(reply.status, 400, "{name}={value}: {}", reply.text);
        assert!(reply.text.contains(name), "{name}: {}", reply.text);
    }
    let reversed = list(
        &s,
        ("fin-1", "finance"),
        &[("from", "2026-11-26"), ("to", "2026-11-24")],
        false,
    )
    .await;
    assert_eq!(reversed.status, 400);
}

#[tokio::test]
async fn the_csv_opens_in_excel_with_a_bom_a_header_and_quoted_text() {
    let s = service().await;
    let reply = list(&s, ("fin-1", "finance"), &[("limit", "2")], true).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(reply.header("x-next-cursor").is_some());
    assert!(reply.text.starts_with('\u{feff}'), "UTF-8 BOM for Excel");
    let lines: Vec<&str> = reply.text.trim_start_matches('\u{feff}').split("\r\n").collect();
    assert_eq!(lines[0], CSV_HEADER.join(","));
    assert!(lines[1].starts_with("B001-00000003,BOLETA,2026-11-26,"), "{}", lines[1]);
    assert!(lines[1].contains(",204.88,0.00,ACCEPTED,0,Aceptada,"), "{}", lines[1]);
    // A description with a comma and quotes stays one field.
    assert!(
        lines[2].contains(",\"Documento, \"\"tipo\"\" inválido\","),
        "{}",
        lines[2]
    );
}

async fn pay(s: &Service, who: (&str, &str), invoice_id: &str, body: serde_json::Value, key: Option<&str>) -> Reply {
    let mut event = ApiEvent::new("POST /invoices/{id}/payments")
        .who(who.0, who.1, "acme")
        .param("id", invoice_id)
        .json(&body);
    if let Some(key) = key {
        event = event.header("idempotency-key", key);
    }
    Reply::from(s.handle(event.build(), &Invocation::ending_after(NOW, 10)).await)
}

fn payment(amount: &str, reference: &str) -> serde_json::Value {
    serde_json::json!({"amount": amount, "currency": "PEN", "method": "TRANSFER", "reference": reference,
                       "paid_at": "2026-11-26T10:00:00-05:00"})
}

#[tokio::test]
async fn partial_payments_then_the_last_one_settle_an_invoice_and_overpaying_is_refused() {
    let s = service().await;
    let first = list(&s, ("fin-1", "finance"), &[], false).await;
    let invoice = &first.body["items"][0];
    let (id, total) = (
        invoice["invoice_id"].as_str().unwrap_or_default().to_owned(),
        invoice["totals"]["total"]["amount"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    let part = pay(&s, ("fin-1", "finance"), &id, payment("10.00", "OP-1"), Some("k-1")).await;
    assert_eq!(part.status, 201, "{:?}", part.body);
    assert_eq!(part.body["collection_status"], "PARTIALLY_PAID");
    assert_eq!(part.body["payment"]["recorded_by"], "fin-1");
    // The same key replays the first answer; nothing is counted twice.
    let replay = pay(&s, ("fin-1", "finance"), &id, payment("10.00", "OP-1"), Some("k-1")).await;
    assert_eq!((replay.status, &replay.body), (201, &part.body));
    // The same operation entered again without a key is a conflict, not a second payment.
    let twice = pay(&s, ("fin-1", "finance"), &id, payment("10.00", "OP-1"), None).await;
    assert_eq!((twice.status, twice.problem()), (409, "payment-already-recorded"));

    let rest = part.body["outstanding"]["amount"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let over = pay(&s, ("fin-1", "finance"), &id, payment(&total, "OP-2"), None).await;
    assert_eq!(over.status, 422, "{:?}", over.body);
    assert_eq!(over.body["errors"][0]["field"], "amount");
    assert_eq!(over.body["errors"][0]["code"], "overpayment");
    let usd = serde_json::json!({"amount": "1.00", "currency": "USD", "method": "CARD", "reference": "X", "paid_at": "2026-11-26T10:00:00Z"});
    let wrong = pay(&s, ("fin-1", "finance"), &id, usd, None).await;
    assert_eq!(
        (wrong.status, &wrong.body["errors"][0]["field"]),
        (422, &serde_json::json!("currency"))
    );

    let last = pay(&s, ("fin-1", "finance"), &id, payment(&rest, "OP-3"), None).await;
    assert_eq!(last.status, 201, "{:?}", last.body);
    assert_eq!(last.body["collection_status"], "PAID");
    assert_eq!(last.body["outstanding"]["amount"], "0.00");
    let after = pay(&s, ("fin-1", "finance"), &id, payment("0.01", "OP-4"), None).await;
    assert_eq!(
        (after.status, &after.body["errors"][0]["code"]),
        (422, &serde_json::json!("nothing_owed"))
    );
}

#[tokio::test]
async fn only_finance_and_admins_record_payments_and_only_on_their_clients_invoices() {
    let s = service().await;
    let first = list(&s, ("fin-1", "finance"), &[], false).await;
    let id = first.body["items"][0]["invoice_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for role in ["agent", "validator", "supervisor"] {
        let refused = pay(&s, ("u-1", role), &id, payment("1.00", "R"), None).await;
        assert_eq!(refused.status, 403, "{role}");
    }
    let unknown = pay(&s, ("fin-1", "finance"), "B001-99999999", payment("1.00", "R"), None).await;
    assert_eq!(unknown.status, 404);
    let event = ApiEvent::new("POST /invoices/{id}/payments")
        .who("fin-1", "finance", "acme")
        .param("id", &id)
        .query("client", "globex")
        .json(&payment("1.00", "R"));
    let other = Reply::from(s.handle(event.build(), &Invocation::ending_after(NOW, 10)).await);
    assert_eq!(other.status, 404, "another client's invoice reads as missing");
}

// ---------------------------------------------------------------------------------------------
// One invoice's account, credit notes, the ageing.
// ---------------------------------------------------------------------------------------------

async fn get(s: &Service, who: (&str, &str), route: &str, path: &[(&str, &str)], query: &[(&str, &str)]) -> Reply {
    let mut event = ApiEvent::new(route).who(who.0, who.1, "acme");
    for (name, value) in path {
        event = event.param(name, value);
    }
    for (name, value) in query {
        event = event.query(name, value);
    }
    Reply::from(s.handle(event.build(), &Invocation::ending_after(NOW, 10)).await)
}

async fn ask_credit(
    s: &Service,
    who: (&str, &str),
    invoice_id: &str,
    body: serde_json::Value,
    key: Option<&str>,
) -> Reply {
    let mut event = ApiEvent::new("POST /invoices/{id}/credit-notes")
        .who(who.0, who.1, "acme")
        .param("id", invoice_id)
        .json(&body);
    if let Some(key) = key {
        event = event.header("idempotency-key", key);
    }
    Reply::from(s.handle(event.build(), &Invocation::ending_after(NOW, 10)).await)
}

#[tokio::test]
async fn an_invoice_reads_with_its_payments_balance_and_links() {
    let s = service().await;
    assert_eq!(
        pay(
            &s,
            ("fin-1", "finance"),
            "B001-00000001",
            payment("50.00", "OP-1"),
            None
        )
        .await
        .status,
        201
    );
    let reply = get(
        &s,
        ("sup-1", "supervisor"),
        "GET /invoices/{id}",
        &[("id", "B001-00000001")],
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = &reply.body;
    assert_eq!(body["collection_status"], "PARTIALLY_PAID");
    assert_eq!(body["paid"]["amount"], "50.00");
    assert_eq!(body["payments"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["electronic_status"], "ACCEPTED");
    assert_eq!(body["links"]["xml"], "https://signed.example/k?ttl=900");
    assert_eq!(body["links"]["pdf"], serde_json::Value::Null, "no PDF stored yet");
    let total = body["total"]["amount"].as_str().unwrap_or_default().to_owned();
    let outstanding = body["outstanding"]["amount"].as_str().unwrap_or_default().to_owned();
    assert_ne!(total, outstanding);

    let unknown = get(
        &s,
        ("fin-1", "finance"),
        "GET /invoices/{id}",
        &[("id", "B001-00000099")],
        &[],
    )
    .await;
    assert_eq!(unknown.status, 404);
    let agent = get(
        &s,
        ("ag-1", "agent"),
        "GET /invoices/{id}",
        &[("id", "B001-00000001")],
        &[],
    )
    .await;
    assert_eq!(agent.status, 403);
}

#[tokio::test]
async fn a_credit_note_is_asked_for_once_per_key_and_never_beyond_the_balance() {
    let queue = Arc::new(MemoryPublisher::default());
    let s = service_at(NOW + time::Duration::days(3), queue.clone()).await;
    let whole = serde_json::json!({"reason": "07", "description": "Devolución total"});

    let no_key = ask_credit(&s, ("fin-1", "finance"), "B001-00000001", whole.clone(), None).await;
    assert_eq!(no_key.status, 400, "{}", no_key.body);

    let agent = ask_credit(&s, ("ag-1", "agent"), "B001-00000001", whole.clone(), Some("k-0")).await;
    assert_eq!(agent.status, 403);

    // SUNAT rejected B001-2: nothing to credit.
    let rejected = ask_credit(&s, ("fin-1", "finance"), "B001-00000002", whole.clone(), Some("k-1")).await;
    assert_eq!(rejected.status, 422, "{}", rejected.body);
    assert_eq!(rejected.body["errors"][0]["field"], "invoice_id");

    // Once something is paid, a total note no longer fits: the balance would go below zero.
    assert_eq!(
        pay(
            &s,
            ("fin-1", "finance"),
            "B001-00000001",
            payment("10.00", "OP-9"),
            None
        )
        .await
        .status,
        201
    );
    let too_much = ask_credit(&s, ("fin-1", "finance"), "B001-00000001", whole.clone(), Some("k-2")).await;
    assert_eq!(too_much.status, 422, "{}", too_much.body);
    assert_eq!(too_much.body["errors"][0]["code"], "credit_exceeds_balance");

    let bad_line =
        serde_json::json!({"reason": "07", "description": "Devolución", "lines": [{"line": 9, "quantity": 1}]});
    let reply = ask_credit(&s, ("fin-1", "finance"), "B001-00000001", bad_line, Some("k-3")).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.body["errors"][0]["field"], "lines");
    assert!(queue.sent().is_empty(), "nothing refused reaches the queue");

    let one_line = serde_json::json!({"reason": "07", "description": "Devolución de un equipo", "lines": [{"line": 1, "quantity": 1}]});
    let first = ask_credit(&s, ("fin-1", "finance"), "B001-00000003", one_line.clone(), Some("k-4")).await;
    assert_eq!(first.status, 202, "{}", first.body);
    let again = ask_credit(&s, ("fin-1", "finance"), "B001-00000003", one_line, Some("k-4")).await;
    assert_eq!(again.status, 202);
    assert_eq!(again.body["request_id"], first.body["request_id"]);
    let sent = queue.sent_json();
    assert_eq!(sent.len(), 1, "a retried request is answered from its first outcome");
    assert_eq!(sent[0]["type"], "CreditNoteRequested");
    assert_eq!(sent[0]["body"]["invoice_id"], "B001-00000003");
    assert_eq!(sent[0]["body"]["requested_by"], "fin-1");

    queue.set_down(true);
    let down = ask_credit(
        &s,
        ("fin-1", "finance"),
        "B001-00000001",
        serde_json::json!({"reason": "07", "description": "x", "lines": [{"line": 1, "quantity": 1}]}),
        Some("k-5"),
    )
    .await;
    assert_eq!(down.status, 503, "{}", down.body);
}

#[tokio::test]
async fn the_ageing_adds_up_and_overdue_lists_what_is_past_due() {
    // Ninety days on, every accepted boleta is past due; the rejected one owes nothing.
    let s = service_at(NOW + time::Duration::days(90), Arc::new(MemoryPublisher::default())).await;
    assert_eq!(
        pay(
            &s,
            ("fin-1", "finance"),
            "B001-00000001",
            payment("20.00", "OP-1"),
            None
        )
        .await
        .status,
        201
    );
    let reply = get(&s, ("fin-1", "finance"), "GET /receivables/aging", &[], &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["open_invoices"], 2, "{}", reply.body);
    let pen = &reply.body["currencies"][0];
    let minor = |v: &serde_json::Value| {
        let text = v["amount"].as_str().unwrap_or("0").replace('.', "");
        text.parse::<i64>().unwrap_or(i64::MIN)
    };
    let total = &pen["total"];
    let sum: i64 = ["not_due", "days_1_30", "days_31_60", "days_61_90", "over_90"]
        .iter()
        .map(|b| minor(&total[*b]))
        .sum();
    assert_eq!(sum, minor(&total["total"]));
    let by_buyer: i64 = pen["by_buyer"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| minor(&b["total"]))
        .sum();
    assert_eq!(by_buyer, minor(&total["total"]));

    assert_eq!(pen["buyers"], 1, "one buyer owes both");
    let none = get(
        &s,
        ("fin-1", "finance"),
        "GET /receivables/aging",
        &[],
        &[("buyers", "0")],
    )
    .await;
    assert_eq!(none.status, 400);
    let early = get(
        &s,
        ("fin-1", "finance"),
        "GET /receivables/aging",
        &[],
        &[("as_of", "2026-11-01")],
    )
    .await;
    assert_eq!(early.status, 200);
    assert_eq!(early.body["open_invoices"], 0, "nothing was issued by then");
    let future = get(
        &s,
        ("fin-1", "finance"),
        "GET /receivables/aging",
        &[],
        &[("as_of", "2031-01-01")],
    )
    .await;
    assert_eq!(future.status, 400);

    let overdue = list(&s, ("fin-1", "finance"), &[("overdue", "true")], false).await;
    assert_eq!(overdue.status, 200, "{}", overdue.body);
    assert_eq!(ids(&overdue), ["B001-00000001", "B001-00000003"]);
    let mixed = list(
        &s,
        ("fin-1", "finance"),
        &[("overdue", "true"), ("series", "B001")],
        false,
    )
    .await;
    assert_eq!(mixed.status, 400);
}
