//! The sales register end to end (issue 15, item 6): a sale invoiced and accepted by the SUNAT
//! stand-in, a credit note of one router accepted too, then finance generates the month's
//! register through the API, downloads it through the presigned link with a plain HTTP client,
//! and Python's `csv` module — a reader nobody on the project wrote — reads it back.
//!
//! Against a running stack: `BACKOFFICE_STACK=$PWD/.local/<profile>/stack.json cargo test -p
//! e2e-tests --test e2e_sales_register`.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e_tests::caller;
use e2e_tests::desk::{Desk, desk};
use serde_json::{Value, json};

/// The credit note item `note_id` of an invoice, as JSON, once SUNAT accepted it.
async fn accepted_note(d: &Desk, invoice_id: &str, note_id: &str) -> Value {
    let started = Instant::now();
    loop {
        let found = d
            .env
            .partition("InvoicesTable", &format!("INVOICE#{}#{invoice_id}", d.client))
            .await
            .into_iter()
            .find(|item| item.get("sk").and_then(|v| v.as_s().ok()) == Some(&format!("CREDIT_NOTE#{note_id}")))
            .map(|item| serde_dynamo::from_item::<_, Value>(item).expect("credit note as JSON"));
        if let Some(note) = found.filter(|n| n["electronic"]["status"] == "ACCEPTED") {
            return note;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{note_id}: never accepted");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `2026-11-30` → `2026-11`.
fn month_of(date: &Value) -> String {
    date.as_str().expect("a date")[..7].to_owned()
}

/// `2026-11-30` → `30/11/2026`, as the register writes dates.
fn dd_mm_yyyy(date: &Value) -> String {
    let date = date.as_str().expect("a date");
    format!("{}/{}/{}", &date[8..10], &date[5..7], &date[..4])
}

/// What Python's csv module reads in `bytes`: it checks the BOM, the header and, per row,
/// base + exempt + IGV = total with `Decimal`s, and prints the rows as JSON objects.
fn python_reads(bytes: &[u8]) -> Vec<Value> {
    let dir = std::env::temp_dir().join(format!("e2e-register-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("registro.csv");
    std::fs::write(&path, bytes).expect("write");
    let script = r#"
import csv, json, sys
from decimal import Decimal
raw = open(sys.argv[1], 'rb').read()
assert raw.startswith(b'\xef\xbb\xbf'), 'no BOM'
with open(sys.argv[1], newline='', encoding='utf-8-sig') as f:
    reader = csv.DictReader(f)
    expected = ['periodo', 'fecha_emision', 'fecha_vencimiento', 'tipo_comprobante', 'serie', 'numero',
                'tipo_doc_identidad', 'numero_doc_identidad', 'razon_social', 'moneda', 'base_imponible_gravada',
                'importe_exonerado', 'igv', 'importe_total', 'ref_fecha_emision', 'ref_tipo_comprobante',
                'ref_serie', 'ref_numero', 'estado_sunat']
    assert reader.fieldnames == expected, reader.fieldnames
    rows = list(reader)
for row in rows:
    parts = sum(Decimal(row[k]) for k in ('base_imponible_gravada', 'importe_exonerado', 'igv'))
    assert parts == Decimal(row['importe_total']), row
print(json.dumps(rows))
"#;
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 (on the machine; the test command needs it)");
    assert!(
        output.status.success(),
        "Python's csv module refuses the register: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("Python's rows as JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn finance_downloads_a_register_with_the_invoice_and_its_credit_note_that_python_reads() {
    let d = desk().await;
    let (id, _) = d.ready_presale(20).await;
    let sale_id = d.approve(&d.validator("val-1"), &id).await;
    let invoice = d.wait_invoice(&sale_id).await;
    assert_eq!(invoice["electronic"]["status"], "ACCEPTED", "{invoice}");
    let invoice_id = invoice["invoice_id"].as_str().expect("id").to_owned();
    let (series, number) = invoice_id.split_once('-').expect("SERIES-NUMBER");
    let number = number.trim_start_matches('0');
    let failures = d
        .request_credit("reg-cn-1", &invoice_id, json!([{"line": 2, "quantity": 1}]))
        .await;
    assert_eq!(failures, Vec::<Value>::new(), "the credit request was processed");
    let note = accepted_note(&d, &invoice_id, "BC01-00000001").await;

    let finance = caller("fin-1", "finance", &[&d.client]);
    // The invoice and the note fall in one month but for a run across midnight at a month's end.
    let months: BTreeSet<String> = [month_of(&invoice["issue_date"]), month_of(&note["issue_date"])].into();
    let mut rows = Vec::new();
    for month in &months {
        let path = format!("/receivables/sales-register?month={month}");
        let generated = d.env.send(d.env.as_caller(&finance, "POST", &path)).await;
        assert_eq!(generated.status, 201, "{:?}", generated.body);
        let key = format!(
            "registers/{}/{month}/registro-ventas-{}-{month}.csv",
            d.client, d.client
        );
        assert_eq!(generated.body["key"], key.as_str());
        assert_eq!(generated.body["excluded"], json!([]));
        assert_eq!(generated.body["complete"], true);
        let url = generated.body["download_url"].as_str().expect("a link");
        let download = reqwest::get(url).await.expect("the presigned link answers");
        assert!(download.status().is_success(), "{url}: {}", download.status());
        let bytes = download.bytes().await.expect("the file");
        assert_eq!(
            generated.body["size"],
            bytes.len(),
            "the link serves the file just written"
        );
        let read = python_reads(&bytes);
        assert_eq!(generated.body["rows"]["total"], read.len());
        rows.extend(read);

        // GET links the same file again; another client's finance reads nothing of it.
        let again = d.env.send(d.env.as_caller(&finance, "GET", &path)).await;
        assert_eq!(
            (
                again.status,
                again.body["key"].as_str(),
                again.body["generated_by"].as_str()
            ),
            (200, Some(key.as_str()), Some("fin-1")),
            "{:?}",
            again.body
        );
        let outsider = caller("fin-1", "finance", &["someone-else"]);
        let other = d
            .env
            .send(
                d.env
                    .as_caller(&outsider, "GET", &format!("{path}&client={}", d.client)),
            )
            .await;
        assert_eq!(other.status, 404, "{:?}", other.body);
    }
    assert_eq!(rows.len(), 2, "the invoice and its note: {rows:?}");

    let invoice_row = rows
        .iter()
        .find(|r| r["tipo_comprobante"] == "03")
        .expect("the boleta's row");
    let totals = &invoice["totals"];
    assert_eq!(
        [
            &invoice_row["fecha_emision"],
            &invoice_row["serie"],
            &invoice_row["numero"],
            &invoice_row["tipo_doc_identidad"],
            &invoice_row["numero_doc_identidad"],
            &invoice_row["razon_social"],
            &invoice_row["base_imponible_gravada"],
            &invoice_row["igv"],
            &invoice_row["importe_total"],
            &invoice_row["estado_sunat"],
        ],
        [
            &json!(dd_mm_yyyy(&invoice["issue_date"])),
            &json!(series),
            &json!(number),
            &json!("1"),
            &invoice["buyer"]["document"]["number"],
            &json!("Rosa Mamani Flores"),
            &totals["subtotal"]["amount"],
            &totals["tax"]["amount"],
            &totals["total"]["amount"],
            &json!("ACCEPTED"),
        ]
    );

    let note_row = rows
        .iter()
        .find(|r| r["tipo_comprobante"] == "07")
        .expect("the note's row");
    let negative = |v: &Value| json!(format!("-{}", v.as_str().expect("an amount")));
    assert_eq!(
        [
            &note_row["serie"],
            &note_row["numero"],
            &note_row["fecha_vencimiento"],
            &note_row["base_imponible_gravada"],
            &note_row["igv"],
            &note_row["importe_total"],
            &note_row["ref_fecha_emision"],
            &note_row["ref_tipo_comprobante"],
            &note_row["ref_serie"],
            &note_row["ref_numero"],
        ],
        [
            &json!("BC01"),
            &json!("1"),
            &json!(""),
            &negative(&note["totals"]["subtotal"]["amount"]),
            &negative(&note["totals"]["tax"]["amount"]),
            &json!("-19.99"),
            &json!(dd_mm_yyyy(&invoice["issue_date"])),
            &json!("03"),
            &json!(series),
            &json!(number),
        ]
    );
}

#[tokio::test]
async fn a_month_that_has_not_begun_is_refused_naming_the_month() {
    let d = desk().await;
    let finance = caller("fin-1", "finance", &[&d.client]);
    for (month, status) in [("2999-01", 422), ("2026-13", 400), ("26-11", 400)] {
        let reply = d
            .env
            .send(
                d.env
                    .as_caller(&finance, "POST", &format!("/receivables/sales-register?month={month}")),
            )
            .await;
        assert_eq!(reply.status, status, "{month}: {:?}", reply.body);
        let field = reply.body["field"]
            .as_str()
            .or(reply.body["errors"][0]["field"].as_str());
        assert_eq!(field, Some("month"), "{month}: {:?}", reply.body);
    }
}
