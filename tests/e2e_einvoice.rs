//! Electronic invoices end to end (issue 13): a pre-sale becomes an invoice that the SUNAT
//! stand-in accepts, and what the buyer receives is checked by programs nobody on the project
//! wrote — xmlsec1 (the XML's and the CDR's signatures), the official OASIS UBL 2.1 XSDs (lxml),
//! contaperu's reader of SUNAT's UBL, poppler + zbar (the QR code on the printed page). Then a
//! rejection and an outage of SUNAT, each handled as ADR 0017 says.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use e2e_tests::desk::{Desk, desk};
use e2e_tests::repo_root;
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{Value, json};

fn control(d: &Desk, path: &str) -> String {
    format!(
        "{}/_control/{path}",
        d.env.info.sunat_url.trim_end_matches("/billService")
    )
}

/// A file in a fresh temporary folder of this test.
fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("e2e-einvoice-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} (the test command installs it): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// `xmlsec1 --verify` of `file` with the certificate at `cert`; `id_attr` names the attribute
/// the signature's reference points at (UBL's `Id` on `Signature`), when there is one.
fn xmlsec_verify(cert: &Path, file: &Path, id_attr: bool) -> (bool, String) {
    let (cert, file) = (cert.to_str().expect("path"), file.to_str().expect("path"));
    let mut args = vec!["--verify", "--pubkey-cert-pem", cert];
    if id_attr {
        args.extend(["--id-attr:Id", "Signature"]);
    }
    args.push(file);
    run("xmlsec1", &args)
}

/// Every call the SUNAT stand-in received, oldest first.
async fn received(d: &Desk) -> Vec<Value> {
    d.env
        .http
        .get(control(d, "received"))
        .send()
        .await
        .expect("received")
        .json::<Value>()
        .await
        .expect("JSON")
        .as_array()
        .cloned()
        .expect("a list")
}

fn venv_python(script: &str, file: &Path) -> (bool, Value) {
    let python = repo_root().join(".local/venv/bin/python");
    let script = repo_root().join("infra/local/checks").join(script);
    let output = Command::new(python)
        .arg(script)
        .arg(file)
        .output()
        .expect("the venv's python");
    let parsed = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        json!({"stdout": String::from_utf8_lossy(&output.stdout), "stderr": String::from_utf8_lossy(&output.stderr)})
    });
    (output.status.success(), parsed)
}

fn money(value: &Value) -> String {
    value["amount"].as_str().expect("an amount").to_owned()
}

/// The buyer's document number of pre-sale `id`.
async fn buyer_document(d: &Desk, id: &str) -> String {
    let presale = d
        .env
        .send(d.env.as_caller(&d.agent, "GET", &format!("/presales/{id}")))
        .await;
    presale.body["customer"]["document"]["number"]
        .as_str()
        .expect("a document number")
        .to_owned()
}

async fn rule(d: &Desk, body: Value) {
    let response = d
        .env
        .http
        .post(control(d, "rules"))
        .json(&body)
        .send()
        .await
        .expect("rule");
    assert!(response.status().is_success(), "{:?}", response.text().await);
}

/// Run invoice-issue's scheduled sweep now (the test stack runs no schedules).
async fn invoice_sweep(d: &Desk) {
    let sweep = d
        .env
        .send(
            d.env
                .request("POST", "/_local/functions/InvoiceIssueFunction/invoke")
                .json(&json!({"source": "aws.scheduler"})),
        )
        .await;
    assert_eq!(sweep.status, 200, "{:?}", sweep.body);
}

/// The sale's invoice item once `done` says so.
async fn wait_invoice_where(d: &Desk, sale_id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        if let Some(invoice) = d.env.invoice_of_sale(sale_id).await
            && done(&invoice)
        {
            return invoice;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "sale {sale_id}: never {what}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_accepted_invoice_reaches_the_buyer_as_pdf_xml_and_cdr_that_foreign_tools_accept() {
    let d = desk().await;
    let (id, _) = d.ready_presale(20).await;
    let document = buyer_document(&d, &id).await;
    let sale_id = d.approve(&d.validator("val-1"), &id).await;
    let invoice = d.wait_invoice(&sale_id).await;
    let invoice_id = invoice["invoice_id"].as_str().expect("id").to_owned();
    let electronic = &invoice["electronic"];
    assert_eq!(electronic["status"], "ACCEPTED", "{electronic}");
    assert_eq!(electronic["response_code"], 0);
    let stem = format!("20100070970-03-{invoice_id}");
    assert_eq!(electronic["file_stem"], stem.as_str());

    // What the buyer received.
    let message_id = invoice["email"]["message_id"].as_str().expect("message id");
    let emails = d.env.sent_emails().await;
    let raw = emails
        .iter()
        .find(|(_, _, id)| id == message_id)
        .map(|(_, raw, _)| raw.clone())
        .expect("the recorded message is in SES");
    let message = MessageParser::default().parse(raw.as_bytes()).expect("MIME");
    let attachment = |name: &str| -> Vec<u8> {
        message
            .attachments()
            .find(|a| a.attachment_name() == Some(name))
            .unwrap_or_else(|| panic!("{name} is attached"))
            .contents()
            .to_vec()
    };
    let pdf = attachment(&format!("{invoice_id}.pdf"));
    let xml = attachment(&format!("{stem}.xml"));
    let cdr = attachment(&format!("R-{stem}.zip"));

    // 1. xmlsec1 verifies the signature with the issuer's certificate; one changed cent breaks it.
    let cert = &d.env.info.einvoice_certificate;
    let xml_file = temp_file(&format!("{stem}.xml"), &xml);
    let (ok, out) = xmlsec_verify(cert, &xml_file, true);
    assert!(ok, "xmlsec1 rejects the signed XML: {out}");
    let total = money(&invoice["totals"]["total"]);
    let text = String::from_utf8(xml.clone()).expect("UTF-8 XML");
    let forged = text.replacen(&format!(">{total}</cbc:PayableAmount>"), ">0.01</cbc:PayableAmount>", 1);
    assert_ne!(forged, text, "the payable amount is in the XML");
    let forged_file = temp_file("forged.xml", forged.as_bytes());
    let (ok, _) = xmlsec_verify(cert, &forged_file, true);
    assert!(!ok, "xmlsec1 accepted a document changed after signing");

    // 2. The official UBL 2.1 XSDs (shipped by a PyPI package) validate it.
    let (valid, report) = venv_python("validate_ubl.py", &xml_file);
    assert!(valid && report["valid"] == true, "{report}");

    // 3. contaperu reads it back with the same parties, IGV and total.
    let (read, ubl) = venv_python("read_ubl.py", &xml_file);
    assert!(read, "{ubl}");
    assert_eq!(ubl["document_type"], "03", "{ubl}");
    assert_eq!(ubl["seller"]["document_number"], "20100070970", "{ubl}");
    assert_eq!(ubl["buyer"]["document_number"], document.as_str(), "{ubl}");
    assert_eq!(ubl["buyer"]["document_type"], "1", "a DNI: {ubl}");
    assert_eq!(
        ubl["amounts"]["igv"],
        money(&invoice["totals"]["tax"]).as_str(),
        "{ubl}"
    );
    assert_eq!(ubl["amounts"]["total"], total.as_str(), "{ubl}");

    // 4. The CDR is SUNAT's (the stand-in's) signed acceptance of this very file.
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(cdr)).expect("the CDR is a zip");
    let mut cdr_xml = String::new();
    archive
        .by_name(&format!("R-{stem}.xml"))
        .expect("R-{stem}.xml inside")
        .read_to_string(&mut cdr_xml)
        .expect("CDR text");
    assert!(
        cdr_xml.contains("<cbc:ResponseCode") && cdr_xml.contains(&invoice_id),
        "{cdr_xml}"
    );
    let cdr_file = temp_file("cdr.xml", cdr_xml.as_bytes());
    let (ok, out) = xmlsec_verify(&d.env.info.sunat_certificate, &cdr_file, false);
    assert!(ok, "the CDR's signature does not verify: {out}");

    // 5. The printed page carries SUNAT's QR code, which zbar decodes to the document's fields.
    let pdf_file = temp_file("invoice.pdf", &pdf);
    let png_prefix = pdf_file.with_extension("");
    let (ok, out) = run(
        "pdftoppm",
        &[
            "-r",
            "200",
            "-png",
            pdf_file.to_str().expect("path"),
            png_prefix.to_str().expect("path"),
        ],
    );
    assert!(ok, "{out}");
    let pages: Vec<PathBuf> = std::fs::read_dir(png_prefix.parent().expect("dir"))
        .expect("pages")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    let decoded: Vec<String> = pages
        .iter()
        .filter_map(|page| {
            let (ok, out) = run("zbarimg", &["--raw", "-q", page.to_str().expect("path")]);
            ok.then(|| out.trim().to_owned())
        })
        .collect();
    assert_eq!(decoded.len(), 1, "one QR code in the PDF: {decoded:?}");
    let fields: Vec<&str> = decoded[0].split('|').collect();
    let (series, number) = invoice_id.split_once('-').expect("series-number");
    assert_eq!(
        &fields[..10],
        &[
            "20100070970",
            "03",
            series,
            number,
            money(&invoice["totals"]["tax"]).as_str(),
            total.as_str(),
            invoice["issue_date"].as_str().expect("date"),
            "1",
            document.as_str(),
            electronic["digest_value"].as_str().expect("digest"),
        ],
        "{decoded:?}"
    );

    // The stand-in verified the signature on its side too.
    let received = received(&d).await;
    let mine = received
        .iter()
        .find(|r| r["file_name"] == format!("{stem}.zip").as_str() && r["buyer_document"] == document.as_str())
        .expect("the stand-in received the file");
    assert_eq!(
        (mine["signature_valid"].as_bool(), mine["outcome"].as_str()),
        (Some(true), Some("accepted"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rejected_invoice_is_recorded_with_its_cdr_and_never_emailed() {
    let d = desk().await;
    let (id, _) = d.ready_presale(20).await;
    let document = buyer_document(&d, &id).await;
    rule(
        &d,
        json!({"buyer_document": document, "outcome": "reject", "code": "2800", "description": "El dato ingresado en el tipo de documento de identidad del receptor no esta permitido.", "times": 1}),
    )
    .await;
    let sale_id = d.approve(&d.validator("val-1"), &id).await;
    let invoice = wait_invoice_where(&d, &sale_id, "rejected", |i| i["electronic"]["status"] == "REJECTED").await;
    assert_eq!(invoice["electronic"]["response_code"], 2800, "{invoice}");
    let cdr_key = invoice["electronic"]["cdr_key"]
        .as_str()
        .expect("the rejection's CDR is kept");
    d.env
        .s3
        .head_object()
        .bucket(d.env.resource("InvoicesBucket").reference.clone())
        .key(cdr_key)
        .send()
        .await
        .expect("the CDR is stored");
    // Nothing is e-mailed, now or by the sweep.
    invoice_sweep(&d).await;
    let after = d.env.invoice_of_sale(&sale_id).await.expect("invoice");
    assert!(after.get("email").is_none() && after.get("pdf").is_none(), "{after}");

    // Finance finds it among the rejected documents, as JSON and as CSV for Excel.
    let invoice_id = invoice["invoice_id"].as_str().expect("id");
    let finance = e2e_tests::caller("fin-1", "finance", &[d.client.as_str()]);
    let path = format!("/invoices?client={}&electronic_status=REJECTED", d.client);
    let listed = d.env.send(d.env.as_caller(&finance, "GET", &path)).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let items = listed.body["items"].as_array().expect("items");
    assert_eq!(
        items
            .iter()
            .map(|i| (
                i["invoice_id"].as_str(),
                i["sunat_code"].as_u64(),
                i["email_status"].as_str()
            ))
            .collect::<Vec<_>>(),
        vec![(Some(invoice_id), Some(2800), Some("PARKED"))],
        "{items:?}"
    );
    let accepted = format!("/invoices?client={}&electronic_status=ACCEPTED", d.client);
    let none = d.env.send(d.env.as_caller(&finance, "GET", &accepted)).await;
    assert_eq!(none.body["items"], json!([]), "{:?}", none.body);
    let csv = d
        .env
        .as_caller(&finance, "GET", &path)
        .header("accept", "text/csv")
        .send()
        .await
        .expect("CSV")
        .bytes()
        .await
        .expect("bytes");
    // Python's csv module reads it as Excel would (utf-8-sig: the BOM is the encoding's mark).
    let csv_file = temp_file("invoices.csv", &csv);
    let python = repo_root().join(".local/venv/bin/python");
    let read = Command::new(python)
        .args([
            "-c",
            "import csv, json, sys; rows = list(csv.DictReader(open(sys.argv[1], encoding='utf-8-sig', newline=''))); print(json.dumps(rows))",
        ])
        .arg(&csv_file)
        .output()
        .expect("python");
    let rows: Value =
        serde_json::from_slice(&read.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&read.stderr)));
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(
        (
            rows[0]["invoice_id"].as_str(),
            rows[0]["electronic_status"].as_str(),
            rows[0]["sunat_code"].as_str(),
            rows[0]["total"].as_str()
        ),
        (
            Some(invoice_id),
            Some("REJECTED"),
            Some("2800"),
            Some(money(&invoice["totals"]["total"]).as_str())
        ),
        "{rows}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sunat_unavailable_leaves_the_invoice_pending_and_the_sweep_submits_it_later() {
    let d = desk().await;
    let (id, _) = d.ready_presale(20).await;
    let document = buyer_document(&d, &id).await;
    rule(
        &d,
        json!({"buyer_document": document, "outcome": "unavailable", "times": 1}),
    )
    .await;
    let sale_id = d.approve(&d.validator("val-1"), &id).await;
    let pending = wait_invoice_where(&d, &sale_id, "tried once", |i| {
        i["electronic"]["submissions"] == 1 && i["electronic"]["status"] == "PENDING_SUBMISSION"
    })
    .await;
    assert!(
        pending.get("email").is_none() && pending.get("pdf").is_none(),
        "{pending}"
    );
    assert!(
        pending["electronic"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("0130")),
        "{pending}"
    );
    // The message's retry would come after its visibility timeout; the sweep, once the retry
    // time has come, submits it again (the schedule's minutes taken off the due time).
    // (The queue is not drained: other tests of this binary have messages in it.)
    let invoice_id = pending["invoice_id"].as_str().expect("id").to_owned();
    d.env
        .dynamodb
        .update_item()
        .table_name(d.env.table("InvoicesTable"))
        .key("pk", AttributeValue::S(format!("INVOICE#{}#{invoice_id}", d.client)))
        .key("sk", AttributeValue::S("META".into()))
        .update_expression("SET gsi2sk = :due")
        .expression_attribute_values(":due", AttributeValue::S(format!("{:020}#{invoice_id}", 0)))
        .send()
        .await
        .expect("rewind the retry time");
    invoice_sweep(&d).await;
    let delivered = d.wait_invoice(&sale_id).await;
    assert_eq!(
        (
            delivered["electronic"]["status"].as_str(),
            delivered["electronic"]["submissions"].as_u64()
        ),
        (Some("ACCEPTED"), Some(2)),
        "{delivered}"
    );
}

/// A message as Python's standard `email` package reads it: subject, To, the X-Invoice-Id and
/// X-Credit-Note-Id headers, and its attachments (name, type), each written into `folder`.
fn python_mime(raw: &str, folder: &Path) -> Value {
    const READ: &str = r#"
import email, json, pathlib, sys
from email import policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.default)
attachments = []
for part in m.iter_attachments():
    name = part.get_filename()
    pathlib.Path(sys.argv[1], name).write_bytes(part.get_payload(decode=True))
    attachments.append([name, part.get_content_type()])
print(json.dumps({"subject": str(m["subject"] or ""), "to": str(m["To"] or ""),
                  "invoice": str(m["X-Invoice-Id"] or ""), "note": str(m["X-Credit-Note-Id"] or ""),
                  "attachments": attachments}))
"#;
    e2e_tests::python_json(READ, &[folder.as_os_str()], raw.as_bytes())
}

/// The credit note item `note_id` of an invoice, as JSON, once `done` says so.
async fn wait_credit_note(d: &Desk, invoice_id: &str, note_id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let found = d
            .env
            .partition("InvoicesTable", &format!("INVOICE#{}#{invoice_id}", d.client))
            .await
            .into_iter()
            .find(|item| item.get("sk").and_then(|v| v.as_s().ok()) == Some(&format!("CREDIT_NOTE#{note_id}")))
            .map(|item| serde_dynamo::from_item::<_, Value>(item).expect("credit note as JSON"));
        if let Some(note) = found.filter(|n| done(n)) {
            return note;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{note_id}: never done");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The last number taken in the desk's boleta credit series (`BC01`), as its counter says.
async fn last_credit_number(d: &Desk) -> Option<String> {
    let counter = d
        .env
        .partition("InvoicesTable", &format!("SERIES#{}#BC01", d.client))
        .await;
    counter
        .first()
        .and_then(|item| item.get("last_number"))
        .and_then(|v| v.as_n().ok())
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_credit_note_corrects_an_accepted_invoice_in_its_own_series_and_foreign_tools_accept_it() {
    let d = desk().await;
    let (id, _) = d.ready_presale(20).await;
    let document = buyer_document(&d, &id).await;
    let sale_id = d.approve(&d.validator("val-1"), &id).await;
    let invoice = d.wait_invoice(&sale_id).await;
    let invoice_id = invoice["invoice_id"].as_str().expect("id").to_owned();
    assert_eq!(invoice["electronic"]["status"], "ACCEPTED", "{invoice}");

    // One router returned: a note in the boletas' credit series, delivered twice, issued once.
    let router = json!([{"line": 2, "quantity": 1}]);
    assert!(d.request_credit("cn-1", &invoice_id, router.clone()).await.is_empty());
    assert!(d.request_credit("cn-1", &invoice_id, router).await.is_empty());
    let note = wait_credit_note(&d, &invoice_id, "BC01-00000001", |n| {
        n["electronic"]["status"] == "ACCEPTED"
    })
    .await;
    assert_eq!(
        (
            note["invoice_id"].as_str(),
            note["reason"].as_str(),
            money(&note["totals"]["total"])
        ),
        (Some(invoice_id.as_str()), Some("07"), "19.99".to_owned()),
        "{note}"
    );
    assert_eq!(
        last_credit_number(&d).await.as_deref(),
        Some("1"),
        "a redelivered request takes no second number"
    );

    // Its signed XML, as stored: xmlsec1 and the official CreditNote-2.1 XSD accept it.
    let xml_key = note["electronic"]["xml_key"].as_str().expect("xml key");
    let stem = "20100070970-07-BC01-00000001";
    assert_eq!(xml_key, format!("invoices/{}/BC01/{stem}.xml", d.client));
    let xml = d
        .env
        .s3
        .get_object()
        .bucket(d.env.resource("InvoicesBucket").reference.clone())
        .key(xml_key)
        .send()
        .await
        .expect("the XML is stored")
        .body
        .collect()
        .await
        .expect("bytes")
        .into_bytes();
    let xml_file = temp_file(&format!("{stem}.xml"), &xml);
    let (ok, out) = xmlsec_verify(&d.env.info.einvoice_certificate, &xml_file, true);
    assert!(ok, "xmlsec1 rejects the signed credit note: {out}");
    let (valid, report) = venv_python("validate_ubl.py", &xml_file);
    assert!(
        valid && report["valid"] == true && report["schema"]["file"] == "maindoc/UBL-CreditNote-2.1.xsd",
        "{report}"
    );
    let text = String::from_utf8(xml.to_vec()).expect("UTF-8");
    assert!(
        text.contains(&format!("<cbc:ReferenceID>{invoice_id}</cbc:ReferenceID>")),
        "{text}"
    );

    // The stand-in received it, verified its signature and accepted it.
    let received = received(&d).await;
    let mine: Vec<&Value> = received
        .iter()
        .filter(|r| r["file_name"] == format!("{stem}.zip").as_str() && r["buyer_document"] == document.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "submitted once: {mine:?}");
    assert_eq!(
        (mine[0]["signature_valid"].as_bool(), mine[0]["outcome"].as_str()),
        (Some(true), Some("accepted"))
    );

    // E-mailed like an invoice, once: to the buyer with finance in copy, PDF, XML and CDR.
    let note = wait_credit_note(&d, &invoice_id, "BC01-00000001", |n| {
        n["email"]["message_id"].is_string()
    })
    .await;
    invoice_sweep(&d).await;
    let finance = e2e_tests::finance_email(&d.client);
    let notes_sent: Vec<(Vec<String>, String, String)> = d
        .env
        .sent_emails()
        .await
        .into_iter()
        .filter(|(to, raw, _)| to.contains(&finance) && raw.contains("X-Credit-Note-Id"))
        .collect();
    assert_eq!(
        notes_sent.len(),
        1,
        "one e-mail for the note, whatever the redelivery and the sweep"
    );
    let (destinations, raw, message_id) = &notes_sent[0];
    assert_eq!(note["email"]["message_id"].as_str(), Some(message_id.as_str()));
    let buyer = invoice["buyer"]["email"].as_str().expect("the buyer's address");
    assert!(destinations.iter().any(|a| a == buyer), "{destinations:?}");
    let folder = temp_file("note.eml", raw.as_bytes()).with_file_name("");
    let mime = python_mime(raw, &folder);
    assert_eq!(
        mime["subject"].as_str(),
        Some(
            format!(
                "Nota de crédito electrónica BC01-00000001 (modifica {invoice_id}) - {}",
                invoice["seller"]["name"].as_str().expect("the seller's name")
            )
            .as_str()
        ),
        "{mime}"
    );
    assert_eq!(
        (
            mime["invoice"].as_str(),
            mime["note"].as_str(),
            mime["to"].as_str().map(|to| to.contains(buyer))
        ),
        (Some(invoice_id.as_str()), Some("BC01-00000001"), Some(true)),
        "{mime}"
    );
    assert_eq!(
        mime["attachments"],
        json!([
            ["BC01-00000001.pdf", "application/pdf"],
            [format!("{stem}.xml"), "application/xml"],
            [format!("R-{stem}.zip"), "application/zip"]
        ]),
        "{mime}"
    );
    assert_eq!(
        std::fs::read(folder.join(format!("{stem}.xml"))).expect("the XML"),
        xml.to_vec()
    );
    let pdf_key = note["pdf"]["key"].as_str().expect("the PDF is recorded");
    assert_eq!(pdf_key, format!("invoices/{}/BC01/BC01-00000001.pdf", d.client));
    let stored_pdf = d
        .env
        .s3
        .get_object()
        .bucket(d.env.resource("InvoicesBucket").reference.clone())
        .key(pdf_key)
        .send()
        .await
        .expect("the PDF is stored")
        .body
        .collect()
        .await
        .expect("bytes")
        .into_bytes();
    let pdf_file = folder.join("BC01-00000001.pdf");
    assert_eq!(std::fs::read(&pdf_file).expect("the PDF"), stored_pdf.to_vec());
    // What poppler reads on the page, and the QR code zbar decodes from it.
    let (ok, text) = run("pdftotext", &[pdf_file.to_str().expect("path"), "-"]);
    assert!(ok, "{text}");
    let digest = note["electronic"]["digest_value"].as_str().expect("digest");
    for expected in [
        "NOTA DE CRÉDITO ELECTRÓNICA",
        "BC01-00000001",
        &format!("BOLETA DE VENTA ELECTRÓNICA {invoice_id} (tipo 03)"),
        invoice["issue_date"].as_str().expect("date"),
        "07 - Devolución por ítem",
        "Devolución de un router",
        "19.99",
        &format!("Valor resumen: {digest}"),
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    let png = folder.join("note");
    let (ok, out) = run(
        "pdftoppm",
        &[
            "-r",
            "200",
            "-png",
            "-singlefile",
            pdf_file.to_str().expect("path"),
            png.to_str().expect("path"),
        ],
    );
    assert!(ok, "{out}");
    let (ok, qr) = run(
        "zbarimg",
        &["--raw", "-q", png.with_extension("png").to_str().expect("path")],
    );
    assert!(ok, "{qr}");
    let fields: Vec<&str> = qr.trim().split('|').collect();
    assert_eq!(&fields[..4], &["20100070970", "07", "BC01", "00000001"], "{qr}");
    assert_eq!(
        (fields[5], fields[8], fields[9]),
        ("19.99", document.as_str(), digest),
        "{qr}"
    );

    // Crediting the whole invoice now would credit the router twice: refused, no number taken.
    let failures = d.request_credit("cn-2", &invoice_id, json!([])).await;
    assert_eq!(failures.len(), 1, "the request is refused");
    assert_eq!(last_credit_number(&d).await.as_deref(), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invoice_accepted_with_observations_is_recorded_with_them_and_printed_as_observed() {
    let d = desk().await;
    let (id, _) = d.ready_presale(20).await;
    let document = buyer_document(&d, &id).await;
    rule(
        &d,
        json!({"buyer_document": document, "outcome": "observe", "code": "4287", "times": 1}),
    )
    .await;
    let sale_id = d.approve(&d.validator("val-1"), &id).await;
    let invoice = d.wait_invoice(&sale_id).await;
    let electronic = &invoice["electronic"];
    assert_eq!(
        (electronic["status"].as_str(), electronic["response_code"].as_u64()),
        (Some("OBSERVED"), Some(0)),
        "{invoice}"
    );
    let notes = electronic["notes"].as_array().expect("the observations are kept");
    assert!(
        notes.iter().any(|n| n.as_str().is_some_and(|n| n.starts_with("4287"))),
        "{notes:?}"
    );
    // Valid, so e-mailed; its printed page says accepted with observations (poppler reads it).
    let message_id = invoice["email"]["message_id"].as_str().expect("e-mailed");
    let emails = d.env.sent_emails().await;
    let raw = emails
        .iter()
        .find(|(_, _, id)| id == message_id)
        .map(|(_, raw, _)| raw.clone())
        .expect("the recorded message is in SES");
    let message = MessageParser::default().parse(raw.as_bytes()).expect("MIME");
    let invoice_id = invoice["invoice_id"].as_str().expect("id");
    let pdf = message
        .attachments()
        .find(|a| a.attachment_name() == Some(&format!("{invoice_id}.pdf")))
        .expect("the PDF")
        .contents()
        .to_vec();
    let pdf_file = temp_file("observed.pdf", &pdf);
    let (ok, text) = run("pdftotext", &["-layout", pdf_file.to_str().expect("path"), "-"]);
    assert!(ok, "{text}");
    // Words, whatever the line breaks of the layout.
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("aceptado por SUNAT con observaciones"), "{text}");
}
