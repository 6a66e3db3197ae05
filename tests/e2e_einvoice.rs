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
    let cert = d.env.info.einvoice_certificate.to_str().expect("path").to_owned();
    let xml_file = temp_file(&format!("{stem}.xml"), &xml);
    let xml_path = xml_file.to_str().expect("path");
    let (ok, out) = run(
        "xmlsec1",
        &[
            "--verify",
            "--pubkey-cert-pem",
            &cert,
            "--id-attr:Id",
            "Signature",
            xml_path,
        ],
    );
    assert!(ok, "xmlsec1 rejects the signed XML: {out}");
    let total = money(&invoice["totals"]["total"]);
    let text = String::from_utf8(xml.clone()).expect("UTF-8 XML");
    let forged = text.replacen(&format!(">{total}</cbc:PayableAmount>"), ">0.01</cbc:PayableAmount>", 1);
    assert_ne!(forged, text, "the payable amount is in the XML");
    let forged_file = temp_file("forged.xml", forged.as_bytes());
    let (ok, _) = run(
        "xmlsec1",
        &[
            "--verify",
            "--pubkey-cert-pem",
            &cert,
            "--id-attr:Id",
            "Signature",
            forged_file.to_str().expect("path"),
        ],
    );
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
    let sunat_cert = d.env.info.sunat_certificate.to_str().expect("path").to_owned();
    let (ok, out) = run(
        "xmlsec1",
        &[
            "--verify",
            "--pubkey-cert-pem",
            &sunat_cert,
            cdr_file.to_str().expect("path"),
        ],
    );
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
    let received: Value = d
        .env
        .http
        .get(control(&d, "received"))
        .send()
        .await
        .expect("received")
        .json()
        .await
        .expect("JSON");
    let mine = received
        .as_array()
        .expect("a list")
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
