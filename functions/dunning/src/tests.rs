//! The dunning with the in-memory stores and mailer: offsets, at most once, never for what is
//! settled, a dead run's claim retried, outages and deadlines.

use backoffice_domain::credit_note::{CreditNoteDraft, CreditNoteReason};
use backoffice_domain::invoice::{Invoice, InvoiceDraft};
use backoffice_domain::money::Money;
use backoffice_domain::receivable::{Account, Payment, PaymentMethod};
use backoffice_domain::testing::{FixedClock, billing_profile, invoice_request};
use backoffice_edge::testing::MemoryMailer;
use backoffice_store::config::MemoryCampaignDirectory;
use backoffice_store::credit_notes::CreditNoteStore;
use backoffice_store::credit_notes::CreditOutcome;
use backoffice_store::invoices::{
    Closing, ElectronicRecord, ElectronicStatus, EmailRecord, InvoiceStore, MemoryInvoiceStore,
};
use backoffice_store::payments::PaymentLedger;
use backoffice_store::reminders::{MemoryReminderStore, ReminderRecord};
use serde_json::json;
use time::macros::{date, datetime};

use super::*;

const ISSUED_AT: OffsetDateTime = datetime!(2026-11-24 15:00 UTC);
/// 30 days after the Lima issue date (24 November).
const DUE: Date = date!(2026 - 12 - 24);
const BUYER: &str = "maria.quispe@example.com";
const FINANCE: &str = "finanzas@acme.example.com";

type Run = Dunning<MemoryCampaignDirectory, MemoryInvoiceStore, MemoryReminderStore, MemoryMailer, FixedClock>;

fn dunning() -> Run {
    Dunning {
        clients: MemoryCampaignDirectory::default().with_billing(billing_profile("acme")),
        accounts: MemoryInvoiceStore::default(),
        reminders: MemoryReminderStore::default(),
        mailer: MemoryMailer::default(),
        clock: FixedClock::at(ISSUED_AT),
        sender: Sender {
            address: "facturacion@backoffice.example.com".into(),
        },
        settings: Settings::default(),
    }
}

/// Invoice `n` of acme, issued at [`ISSUED_AT`]; e-mailed to the buyer and finance unless `mailed`
/// is false.
async fn invoice(d: &Run, n: u64, mailed: bool) -> Invoice {
    let invoice = InvoiceDraft::prepare(
        &invoice_request(&format!("p{n}"), "acme"),
        &billing_profile("acme"),
        ISSUED_AT,
    )
    .and_then(|draft| draft.numbered(n))
    .expect("an invoice");
    assert_eq!(invoice.due_date, DUE);
    let audit = backoffice_domain::testing::issued_audit(&invoice.invoice_id, ISSUED_AT);
    d.accounts.issue(&invoice, &audit).await.expect("issued");
    let accepted = ElectronicRecord {
        status: ElectronicStatus::Accepted,
        file_stem: "stem".into(),
        digest_value: "d".into(),
        xml_key: "k".into(),
        xml_sha256: "h".into(),
        cdr_key: None,
        response_code: Some(0),
        description: Some("Aceptada".into()),
        notes: Vec::new(),
        submissions: 1,
        last_error: None,
        answered_at: Some(ISSUED_AT),
    };
    d.accounts
        .record_electronic("acme", &invoice.invoice_id, &accepted)
        .await
        .expect("accepted");
    if mailed {
        let email = EmailRecord {
            message_id: format!("inv-{n}"),
            recipients: vec![BUYER.into(), FINANCE.into()],
            sent_at: ISSUED_AT,
        };
        d.accounts
            .record_email("acme", &invoice.invoice_id, &email, Closing::default())
            .await
            .expect("e-mailed");
    }
    invoice
}

async fn pay(d: &Run, invoice: &Invoice, minor: i64) {
    let seen = Account {
        paid_minor: d
            .accounts
            .payments("acme", &invoice.invoice_id)
            .await
            .expect("payments")
            .iter()
            .map(|p| p.amount.amount_minor())
            .sum(),
        ..Account::issued(&invoice.totals.total)
    };
    let amount = Money::from_minor(minor, invoice.currency);
    let payment = Payment {
        amount,
        method: PaymentMethod::Transfer,
        reference: format!("OP-{minor}"),
        paid_at: ISSUED_AT,
        recorded_by: "fin-1".into(),
        recorded_at: ISSUED_AT,
    };
    let after = seen.pay(&amount).expect("payable");
    d.accounts
        .record_payment("acme", &invoice.invoice_id, &payment, &seen, &after)
        .await
        .expect("recorded");
}

async fn run_on(d: &Run, date: Date) -> Report {
    let deadline = d.clock.now() + Duration::minutes(5);
    d.run(
        &RunRequest {
            date: Some(date),
            client_id: None,
        },
        deadline,
    )
    .await
    .expect("a run")
}

fn parsed(email: &backoffice_edge::mail::OutgoingEmail) -> (String, String) {
    let message = mail_parser::MessageParser::default().parse(&email.raw).expect("MIME");
    (
        message.subject().unwrap_or_default().to_owned(),
        message.body_text(0).map(|b| b.into_owned()).unwrap_or_default(),
    )
}

fn reminder(d: &Run, invoice: &Invoice, offset: i16) -> Option<ReminderRecord> {
    d.reminders
        .all()
        .into_iter()
        .find(|r| r.invoice_id == invoice.invoice_id && r.offset == Offset(offset))
}

#[tokio::test]
async fn each_offset_sends_one_reminder_to_the_invoice_s_recipients_once() {
    let d = dunning();
    let invoice = invoice(&d, 1, true).await;

    let before = run_on(&d, DUE - Duration::days(3)).await;
    assert_eq!((before.sent, before.open_read), (1, 1), "{before:?}");
    let sent = d.mailer.sent();
    assert_eq!(
        (sent[0].to.clone(), sent[0].bcc.clone()),
        (vec![BUYER.to_owned()], vec![FINANCE.to_owned()])
    );
    let (subject, body) = parsed(&sent[0]);
    assert!(
        subject.contains(&invoice.invoice_id) && subject.contains("vence en 3 días"),
        "{subject}"
    );
    assert!(
        body.contains(&format!("Saldo pendiente: {}", invoice.totals.total)),
        "{body}"
    );
    let tags: Vec<(&str, &str)> = sent[0].tags.iter().map(|t| (t.name(), t.value())).collect();
    assert_eq!(
        tags,
        vec![
            ("client_id", "acme"),
            ("invoice_id", invoice.invoice_id.as_str()),
            ("purpose", "dunning")
        ]
    );

    let again = run_on(&d, DUE - Duration::days(3)).await;
    assert_eq!((again.sent, again.already_done), (0, 1), "at most once per offset");
    // Days between offsets, and the catch-up days of −3 before the due date, send nothing new.
    for quiet in [DUE - Duration::days(2), DUE] {
        assert_eq!(run_on(&d, quiet).await.sent, 0, "{quiet}");
    }
    let after = run_on(&d, DUE + Duration::days(1)).await;
    assert_eq!(after.sent, 1);
    let (subject, _) = parsed(&d.mailer.sent()[1]);
    assert!(subject.contains("venció ayer"), "{subject}");

    let record = reminder(&d, &invoice, 1).expect("recorded on the invoice");
    assert_eq!(
        (
            record.state,
            record.message_id.as_deref(),
            record.run_date,
            record.due_date
        ),
        (ReminderState::Sent, Some("memory-2"), DUE + Duration::days(1), DUE)
    );
    assert_eq!(record.recipients, vec![BUYER.to_owned(), FINANCE.to_owned()]);
    assert_eq!(d.reminders.all().len(), 2);
}

#[tokio::test]
async fn paid_and_credited_invoices_are_never_reminded_partly_paid_ones_are_with_the_balance() {
    let d = dunning();
    let paid = invoice(&d, 1, true).await;
    let credited = invoice(&d, 2, true).await;
    let partly = invoice(&d, 3, true).await;
    pay(&d, &paid, paid.totals.total.amount_minor()).await;
    pay(&d, &partly, 5_000).await;
    let note = CreditNoteDraft::total(
        &credited,
        "BC01",
        CreditNoteReason::TotalReturn,
        "Devolución total",
        date!(2026 - 11 - 25),
        ISSUED_AT,
    )
    .and_then(|draft| draft.numbered(1))
    .expect("a note");
    let audit = backoffice_domain::testing::issued_audit(&note.credit_note_id, ISSUED_AT);
    assert_eq!(
        d.accounts
            .issue_credit_note(&credited, &note, "req-1", "fin-1", &audit)
            .await,
        Ok(CreditOutcome::Issued)
    );

    let report = run_on(&d, DUE + Duration::days(15)).await;
    assert_eq!(report.sent, 1, "{report:?}");
    let sent = d.mailer.sent();
    let (subject, body) = parsed(&sent[0]);
    assert!(subject.contains(&partly.invoice_id), "{subject}");
    let owed = Money::from_minor(partly.totals.total.amount_minor() - 5_000, partly.currency);
    assert!(body.contains(&format!("Saldo pendiente: {owed}")), "{body}");
    assert!(reminder(&d, &paid, 15).is_none() && reminder(&d, &credited, 15).is_none());
}

#[tokio::test]
async fn a_claim_left_by_a_run_that_died_is_sent_by_the_next_run() {
    let d = dunning();
    let invoice = invoice(&d, 1, true).await;
    let day = DUE + Duration::days(1);
    let now = d.clock.now();
    // A run claimed the +1 reminder and died before sending it.
    let dead = ReminderClaim {
        client_id: "acme".into(),
        invoice_id: invoice.invoice_id.clone(),
        offset: Offset(1),
        due_date: DUE,
        run_date: day,
        now,
        lease_until: now + Duration::minutes(6),
    };
    assert_eq!(d.reminders.claim(&dead).await, Ok(ClaimOutcome::Claimed { attempt: 1 }));
    let meanwhile = run_on(&d, day).await;
    assert_eq!((meanwhile.sent, meanwhile.busy), (0, 1), "its lease still runs");

    // The next day's run, its lease long over: sent, once.
    d.clock.advance(Duration::days(1));
    let next = run_on(&d, day + Duration::days(1)).await;
    assert_eq!(next.sent, 1, "{next:?}");
    let record = reminder(&d, &invoice, 1).expect("the reminder");
    assert_eq!((record.state, record.attempts), (ReminderState::Sent, 2));
    assert_eq!(run_on(&d, day + Duration::days(2)).await.sent, 0);
}

#[tokio::test]
async fn a_mail_outage_leaves_the_reminder_to_the_next_run() {
    let d = dunning();
    let invoice = invoice(&d, 1, true).await;
    d.mailer.fail_next(1);
    let day = DUE + Duration::days(15);
    let failed = run_on(&d, day).await;
    assert_eq!((failed.sent, failed.retry_later), (0, 1));
    d.clock.advance(Duration::days(1));
    assert_eq!(
        reminder(&d, &invoice, 15).and_then(|r| r.last_error),
        Some("simulated outage".to_owned())
    );
    let retried = run_on(&d, day + Duration::days(1)).await;
    assert_eq!(retried.sent, 1);
    assert_eq!(
        reminder(&d, &invoice, 15).map(|r| (r.state, r.attempts)),
        Some((ReminderState::Sent, 2))
    );
}

#[tokio::test]
async fn an_invoice_never_e_mailed_gets_no_reminder() {
    let d = dunning();
    invoice(&d, 1, false).await;
    let report = run_on(&d, DUE + Duration::days(1)).await;
    assert_eq!((report.sent, report.no_recipients), (0, 1));
    assert!(d.reminders.all().is_empty(), "nothing claimed");
}

#[tokio::test]
async fn a_missed_day_is_caught_up_and_a_run_stops_before_its_deadline() {
    let d = dunning();
    invoice(&d, 1, true).await;
    let late = run_on(&d, DUE + Duration::days(3)).await;
    assert_eq!(late.sent, 1, "the +1 reminder, two days late");
    let (subject, _) = parsed(&d.mailer.sent()[0]);
    assert!(subject.contains("venció hace 3 días"), "{subject}");

    let d = dunning();
    invoice(&d, 1, true).await;
    let cut = d
        .run(
            &RunRequest {
                date: Some(DUE + Duration::days(1)),
                client_id: None,
            },
            d.clock.now() + Duration::seconds(5),
        )
        .await
        .expect("a run");
    assert!(cut.stopped_early && cut.sent == 0, "{cut:?}");
    assert!(d.reminders.all().is_empty());
}

#[tokio::test]
async fn without_a_date_the_run_is_on_the_client_s_local_day() {
    let mut d = dunning();
    d.settings.catch_up_days = 0;
    invoice(&d, 1, true).await;
    // 01:00 UTC on the 25th is still the 24th (the due date, no offset) in Lima: nothing; 13:00
    // is the 25th (+1).
    d.clock.set(datetime!(2026-12-25 01:00 UTC));
    let deadline = d.clock.now() + Duration::minutes(5);
    assert_eq!(d.run(&RunRequest::default(), deadline).await.map(|r| r.sent), Ok(0));
    d.clock.set(datetime!(2026-12-25 13:00 UTC));
    let deadline = d.clock.now() + Duration::minutes(5);
    assert_eq!(d.run(&RunRequest::default(), deadline).await.map(|r| r.sent), Ok(1));
}

#[test]
fn the_event_names_a_day_and_a_client_or_nothing() {
    assert_eq!(RunRequest::from_event(&json!({})), Ok(RunRequest::default()));
    assert_eq!(
        RunRequest::from_event(&json!({"date": "2026-12-25", "client_id": "acme"})),
        Ok(RunRequest {
            date: Some(date!(2026 - 12 - 25)),
            client_id: Some("acme".into())
        })
    );
    // An EventBridge rule's envelope is today's run; a blank client is every client.
    let envelope = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
    assert_eq!(RunRequest::from_event(&envelope), Ok(RunRequest::default()));
    assert_eq!(
        RunRequest::from_event(&json!({"client_id": "  "})),
        Ok(RunRequest::default())
    );
    for bad in [
        json!({"date": "25/12/2026"}),
        json!({"date": 20261225}),
        json!({"clientid": "acme"}),
    ] {
        assert!(
            matches!(RunRequest::from_event(&bad), Err(RunError::BadRequest(_))),
            "{bad}"
        );
    }
}

/// The seed's clients with a billing profile are in the directory the dunning reads.
#[test]
fn every_seeded_billing_client_is_in_the_directory() {
    let seed: serde_json::Value =
        serde_json::from_str(include_str!("../../../infra/local/seed.json")).expect("seed.json parses");
    let items = seed["ConfigTable"].as_array().cloned().unwrap_or_default();
    let billed: Vec<&str> = items
        .iter()
        .filter(|i| i["sk"] == "CONFIG" && i.get("billing").is_some())
        .filter_map(|i| i["pk"].as_str()?.strip_prefix("CLIENT#"))
        .collect();
    assert!(!billed.is_empty());
    for client in billed {
        assert!(
            items
                .iter()
                .any(|i| i["pk"] == "CLIENTS" && i["sk"] == format!("CLIENT#{client}")),
            "CLIENT#{client} has billing but no CLIENTS / CLIENT#{client} directory item"
        );
    }
}
