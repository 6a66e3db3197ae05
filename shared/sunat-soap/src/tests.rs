//! Hand-built answers as SUNAT writes them: CDRs accepted, observed and rejected, faults of
//! each class, transport failures, and bytes that are none of these.

use std::io::Write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use zip::write::SimpleFileOptions;

use super::*;
use crate::codes::CodeClass;

const STEM: &str = "20601234567-01-F001-00000042";

fn cdr_xml(code: &str, description: &str, notes: &[&str]) -> String {
    let notes: String = notes.iter().map(|n| format!("<cbc:Note>{n}</cbc:Note>")).collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ar:ApplicationResponse xmlns:ar="urn:oasis:names:specification:ubl:schema:xsd:ApplicationResponse-2"
    xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
    xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
    xmlns:ext="urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
  <ext:UBLExtensions><ext:UBLExtension><ext:ExtensionContent>
    <ds:Signature Id="SignSUNAT"><ds:SignedInfo/><ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature>
  </ext:ExtensionContent></ext:UBLExtension></ext:UBLExtensions>
  <cbc:UBLVersionID>2.0</cbc:UBLVersionID>
  <cbc:CustomizationID>1.0</cbc:CustomizationID>
  <cbc:ID>1700000000000</cbc:ID>
  <cbc:IssueDate>2026-11-30</cbc:IssueDate>
  {notes}
  <cac:DocumentResponse>
    <cac:Response>
      <cbc:ReferenceID>F001-00000042</cbc:ReferenceID>
      <cbc:ResponseCode listAgencyName="PE:SUNAT">{code}</cbc:ResponseCode>
      <cbc:Description>{description}</cbc:Description>
    </cac:Response>
    <cac:DocumentReference><cbc:ID>F001-00000042</cbc:ID></cac:DocumentReference>
  </cac:DocumentResponse>
</ar:ApplicationResponse>"#
    )
}

/// A zip as SUNAT sends it: a `dummy/` folder entry, then the CDR.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default();
    writer.add_directory("dummy/", options).unwrap();
    for (name, bytes) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn cdr_zip(code: &str, description: &str, notes: &[&str]) -> Vec<u8> {
    let xml = cdr_xml(code, description, notes);
    zip_of(&[(&format!("R-{STEM}.xml"), xml.as_bytes())])
}

fn soap(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Header/><soap-env:Body>{body}</soap-env:Body></soap-env:Envelope>"#
    )
}

fn send_bill_answer(zip: &[u8]) -> String {
    // SUNAT's stack wraps base64 in lines.
    let encoded = STANDARD.encode(zip);
    let wrapped: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    soap(&format!(
        r#"<br:sendBillResponse xmlns:br="http://service.sunat.gob.pe"><applicationResponse>{}</applicationResponse></br:sendBillResponse>"#,
        wrapped.join("\n")
    ))
}

fn fault_answer(code: &str, string: &str) -> String {
    soap(&format!(
        "<soap-env:Fault><faultcode>{code}</faultcode><faultstring>{string}</faultstring></soap-env:Fault>"
    ))
}

fn read_cdr(answer: &str) -> Cdr {
    match read_answer(200, answer.as_bytes()) {
        Ok(Answer::Cdr(cdr)) => cdr,
        other => panic!("expected a CDR, got {other:?}"),
    }
}

fn read_fault(status: u16, answer: &str) -> Fault {
    match read_answer(status, answer.as_bytes()) {
        Ok(Answer::Fault(fault)) => fault,
        other => panic!("expected a fault, got {other:?}"),
    }
}

// ---- requests

#[test]
fn send_bill_envelope_carries_the_token_the_name_and_the_zip() {
    let credentials = Credentials::sol("20601234567", "FACTURA1", "s3cr<t&");
    let envelope = send_bill(&format!("{STEM}.zip"), b"PK\x03\x04zip", &credentials);
    let root = xml::parse(&envelope).unwrap();
    assert!(root.is(SOAP_ENV_NS, "Envelope"));
    let token = root
        .child(SOAP_ENV_NS, "Header")
        .and_then(|h| h.child(WSSE_NS, "Security"))
        .and_then(|s| s.child(WSSE_NS, "UsernameToken"))
        .unwrap();
    assert_eq!(token.child(WSSE_NS, "Username").unwrap().text, "20601234567FACTURA1");
    assert_eq!(token.child(WSSE_NS, "Password").unwrap().text, "s3cr<t&");
    assert!(envelope.contains(&format!(r#"Type="{PASSWORD_TEXT}""#)));
    let call = root
        .child(SOAP_ENV_NS, "Body")
        .and_then(|b| b.child(SERVICE_NS, "sendBill"))
        .unwrap();
    assert_eq!(call.child_named("fileName").unwrap().text, format!("{STEM}.zip"));
    assert_eq!(call.child_named("fileName").unwrap().ns, None);
    let content = &call.child_named("contentFile").unwrap().text;
    assert_eq!(STANDARD.decode(content).unwrap(), b"PK\x03\x04zip");
}

#[test]
fn summary_and_status_envelopes_name_their_operation() {
    let credentials = Credentials::new("20601234567MODDATOS", "moddatos");
    let summary = xml::parse(&send_summary("20601234567-RC-20261130-1.zip", b"zip", &credentials)).unwrap();
    let body = summary.child(SOAP_ENV_NS, "Body").unwrap();
    assert!(body.child(SERVICE_NS, "sendSummary").is_some());

    let status = xml::parse(&get_status("1700000000000", &credentials)).unwrap();
    let call = status
        .child(SOAP_ENV_NS, "Body")
        .and_then(|b| b.child(SERVICE_NS, "getStatus"))
        .unwrap();
    assert_eq!(call.child_named("ticket").unwrap().text, "1700000000000");
    assert_eq!(SOAP_ACTION_SEND_BILL, "urn:sendBill");
    assert_eq!(SOAP_ACTION_SEND_SUMMARY, "urn:sendSummary");
    assert_eq!(SOAP_ACTION_GET_STATUS, "urn:getStatus");
}

#[test]
fn credentials_never_show_the_password() {
    let shown = format!("{:?}", Credentials::sol("20601234567", "USER", "hunter2"));
    assert!(shown.contains("20601234567USER"));
    assert!(!shown.contains("hunter2"));
}

// ---- CDRs

#[test]
fn accepted_cdr() {
    let zip = cdr_zip("0", "La Factura numero F001-00000042, ha sido aceptada", &[]);
    let cdr = read_cdr(&send_bill_answer(&zip));
    assert_eq!(cdr.xml_name, format!("R-{STEM}.xml"));
    assert_eq!(cdr.id.as_deref(), Some("1700000000000"));
    assert_eq!(cdr.reference_id, "F001-00000042");
    assert_eq!(cdr.response_code, 0);
    assert_eq!(cdr.description, "La Factura numero F001-00000042, ha sido aceptada");
    assert_eq!(cdr.outcome(), Outcome::Accepted);
    assert_eq!(cdr.zip(), zip.as_slice());
}

#[test]
fn observed_cdr_lists_its_notes() {
    let zip = cdr_zip(
        "0",
        "La Factura numero F001-00000042, ha sido aceptada",
        &[
            "4287 - El precio unitario de la operación que está informando difiere",
            "4332 -El valor no es correcto",
        ],
    );
    let outcome = read_cdr(&send_bill_answer(&zip)).outcome();
    assert_eq!(
        outcome,
        Outcome::Observed(vec![
            Note {
                code: Some(4287),
                text: "El precio unitario de la operación que está informando difiere".into()
            },
            Note {
                code: Some(4332),
                text: "El valor no es correcto".into()
            },
        ])
    );
}

#[test]
fn an_observation_code_without_notes_is_observed_with_it() {
    let cdr = Cdr::read(cdr_zip("4093", "El código de ubigeo no es válido", &[])).unwrap();
    assert_eq!(
        cdr.outcome(),
        Outcome::Observed(vec![Note {
            code: Some(4093),
            text: "El código de ubigeo no es válido".into()
        }])
    );
}

#[test]
fn rejected_cdr() {
    let zip = cdr_zip(
        "2017",
        "El numero de documento de identidad del receptor debe ser RUC",
        &[],
    );
    assert_eq!(
        read_cdr(&send_bill_answer(&zip)).outcome(),
        Outcome::Rejected {
            code: 2017,
            description: "El numero de documento de identidad del receptor debe ser RUC".into()
        }
    );
}

#[test]
fn notes_without_a_code_keep_their_text() {
    assert_eq!(
        Note::parse("Sin código"),
        Note {
            code: None,
            text: "Sin código".into()
        }
    );
    assert_eq!(Note::parse("12345 - five digits").code, None);
    assert_eq!(Note::parse("4287 no dash").code, None);
    assert_eq!(Note::parse(" 4287-x ").code, Some(4287));
    assert_eq!(Note::parse("").text, "");
}

#[test]
fn a_latin1_cdr_is_read() {
    let xml = cdr_xml("0", "aceptada", &["4287 - Año"]).replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"");
    let latin1: Vec<u8> = xml.chars().map(|c| u8::try_from(u32::from(c)).unwrap()).collect();
    let cdr = Cdr::read(zip_of(&[(&format!("R-{STEM}.xml"), &latin1)])).unwrap();
    assert_eq!(cdr.notes[0].text, "Año");
}

#[test]
fn a_zip_without_an_r_file_is_no_cdr() {
    let zip = zip_of(&[(&format!("{STEM}.xml"), b"<x/>".as_slice())]);
    assert_eq!(Cdr::read(zip.clone()), Err(SoapError::NoCdrXml));
    assert_eq!(
        read_answer(200, send_bill_answer(&zip).as_bytes()),
        Err(SoapError::NoCdrXml)
    );
    assert_eq!(Cdr::read(zip_of(&[])), Err(SoapError::NoCdrXml));
}

#[test]
fn broken_cdrs_are_errors() {
    let bad = |xml: &str| Cdr::read(zip_of(&[("R-x.xml", xml.as_bytes())]));
    assert!(matches!(Cdr::read(b"not a zip".as_slice()), Err(SoapError::Zip(_))));
    assert!(matches!(Cdr::read(Vec::new()), Err(SoapError::Zip(_))));
    assert!(matches!(bad("<not closed"), Err(SoapError::Cdr(_))));
    assert!(matches!(bad("<Invoice/>"), Err(SoapError::Cdr(_))));
    let no_code = cdr_xml("0", "x", &[]).replace(
        r#"<cbc:ResponseCode listAgencyName="PE:SUNAT">0</cbc:ResponseCode>"#,
        "",
    );
    assert_eq!(bad(&no_code), Err(SoapError::Cdr("no cbc:ResponseCode".into())));
    assert!(matches!(bad(&cdr_xml("cero", "x", &[])), Err(SoapError::Cdr(_))));
    assert!(matches!(bad(&cdr_xml("70000", "x", &[])), Err(SoapError::Cdr(_))));
    assert!(matches!(
        bad("<?xml version=\"1.0\"?><a>\u{0}</a>"),
        Err(SoapError::Cdr(_))
    ));
}

// ---- faults

#[test]
fn exception_fault_is_not_retryable() {
    let fault = read_fault(
        500,
        &fault_answer("soap-env:Client.0306", "No se puede leer (parsear) el archivo XML"),
    );
    assert_eq!(fault.faultcode, "soap-env:Client.0306");
    assert_eq!(fault.code(), Some(306));
    assert_eq!(fault.class(), Some(CodeClass::Exception));
    assert!(!fault.is_retryable());
}

#[test]
fn service_unavailable_faults_are_retryable() {
    for code in [
        "soap-env:Server.0130",
        "soap-env:Client.0100",
        "env:Server.0109",
        "soap-env:Server.0200",
    ] {
        let fault = read_fault(500, &fault_answer(code, "El sistema no puede responder su solicitud"));
        assert_eq!(fault.class(), Some(CodeClass::Exception), "{code}");
        assert!(fault.is_retryable(), "{code}");
    }
}

#[test]
fn rejection_and_observation_faults() {
    let rejected = read_fault(
        500,
        &fault_answer(
            "soap-env:Client.2335",
            "El documento electrónico ingresado ha sido alterado",
        ),
    );
    assert_eq!(rejected.code(), Some(codes::ALTERED_DOCUMENT));
    assert_eq!(rejected.class(), Some(CodeClass::Rejection));
    assert!(!rejected.is_retryable());

    let observed = read_fault(500, &fault_answer("soap-env:Client.4287", "observación"));
    assert_eq!(observed.class(), Some(CodeClass::Observation));
}

#[test]
fn a_code_in_the_faultstring_is_read_when_the_faultcode_has_none() {
    let fault = read_fault(500, &fault_answer("env:Client", "0109"));
    assert_eq!(fault.code(), Some(109));
    assert!(fault.is_retryable());
    let fault = read_fault(
        500,
        &fault_answer(
            "soap-env:Client",
            "1033 - El comprobante fue registrado previamente con otros datos",
        ),
    );
    assert_eq!(fault.code(), Some(1033));
    assert!(!fault.is_retryable());
}

#[test]
fn faults_without_a_code_are_retried_only_from_the_server() {
    let server = read_fault(500, &fault_answer("soap-env:Server", "Internal Error"));
    assert_eq!(server.code(), None);
    assert!(server.is_retryable());
    let client = read_fault(500, &fault_answer("env:Client", "Internal Error"));
    assert_eq!(client.code(), None);
    assert_eq!(client.class(), None);
    assert!(!client.is_retryable());
}

#[test]
fn fault_detail_is_kept() {
    let answer = soap(
        "<soap-env:Fault><faultcode>soap-env:Client.0154</faultcode><faultstring>El RUC del archivo no corresponde</faultstring><detail><message>RUC 20601234567</message></detail></soap-env:Fault>",
    );
    let fault = read_fault(500, &answer);
    assert_eq!(fault.detail.as_deref(), Some("RUC 20601234567"));
    assert_eq!(fault.faultstring, "El RUC del archivo no corresponde");
}

// ---- tickets and statuses

#[test]
fn send_summary_answers_a_ticket() {
    let answer = soap(
        r#"<br:sendSummaryResponse xmlns:br="http://service.sunat.gob.pe"><ticket> 1700000000123 </ticket></br:sendSummaryResponse>"#,
    );
    assert_eq!(
        read_answer(200, answer.as_bytes()),
        Ok(Answer::Ticket("1700000000123".into()))
    );
    let empty =
        soap(r#"<br:sendSummaryResponse xmlns:br="http://service.sunat.gob.pe"><ticket/></br:sendSummaryResponse>"#);
    assert_eq!(read_answer(200, empty.as_bytes()), Err(SoapError::Missing("ticket")));
}

#[test]
fn get_status_answers_a_code_and_maybe_the_cdr() {
    let zip = cdr_zip("0", "El Resumen diario RC-20261130-1, ha sido aceptado", &[]);
    let done = soap(&format!(
        r#"<br:getStatusResponse xmlns:br="http://service.sunat.gob.pe"><status><content>{}</content><statusCode>0</statusCode></status></br:getStatusResponse>"#,
        STANDARD.encode(&zip)
    ));
    match read_answer(200, done.as_bytes()) {
        Ok(Answer::Status {
            code,
            content: Some(content),
        }) => {
            assert_eq!(code, STATUS_DONE);
            assert_eq!(Cdr::read(content).unwrap().outcome(), Outcome::Accepted);
        }
        other => panic!("{other:?}"),
    }
    let pending = soap(
        r#"<br:getStatusResponse xmlns:br="http://service.sunat.gob.pe"><status><statusCode>98</statusCode><content/></status></br:getStatusResponse>"#,
    );
    assert_eq!(
        read_answer(200, pending.as_bytes()),
        Ok(Answer::Status {
            code: STATUS_IN_PROGRESS.into(),
            content: None
        })
    );
}

// ---- transport and garbage

#[test]
fn no_soap_from_a_failing_service_is_unavailable() {
    for (status, body) in [
        (503, "<html><body>Service Temporarily Unavailable</body></html>"),
        (502, "Bad Gateway"),
        (504, ""),
        (200, ""),
        (200, "  \r\n "),
        (500, "<h1>oops"),
        (429, "slow down"),
    ] {
        let error = read_answer(status, body.as_bytes()).unwrap_err();
        assert_eq!(
            error,
            SoapError::Unavailable { http_status: status },
            "{status} {body:?}"
        );
        assert!(error.is_retryable());
    }
}

#[test]
fn a_fault_is_read_whatever_the_status() {
    let answer = fault_answer("soap-env:Server.0130", "El sistema no puede responder");
    for status in [200, 500, 503] {
        assert!(read_fault(status, &answer).is_retryable());
    }
}

#[test]
fn what_is_not_a_soap_answer_is_an_error() {
    let not_soap = |status: u16, body: &str| read_answer(status, body.as_bytes()).unwrap_err();
    assert!(matches!(
        not_soap(404, "<html>Not Found</html>"),
        SoapError::NotSoap { http_status: 404, .. }
    ));
    assert!(matches!(not_soap(200, "garbage"), SoapError::NotSoap { .. }));
    assert!(matches!(not_soap(200, "<Envelope/>"), SoapError::NotSoap { .. }));
    assert!(matches!(
        not_soap(
            200,
            r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>"#
        ),
        SoapError::NotSoap { .. }
    ));
    assert!(matches!(not_soap(200, &soap("")), SoapError::NotSoap { .. }));
    assert_eq!(
        not_soap(200, &soap("<x:other xmlns:x=\"urn:x\"/>")),
        SoapError::Unexpected("other".into())
    );
    assert_eq!(
        not_soap(
            200,
            &soap(r#"<br:sendBillResponse xmlns:br="http://service.sunat.gob.pe"/>"#)
        ),
        SoapError::Missing("applicationResponse")
    );
    assert!(matches!(
        not_soap(
            200,
            &soap(
                r#"<br:sendBillResponse xmlns:br="http://service.sunat.gob.pe"><applicationResponse>@@@</applicationResponse></br:sendBillResponse>"#
            )
        ),
        SoapError::Base64(_)
    ));
    assert!(!not_soap(200, "garbage").is_retryable());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(status in 100u16..600, body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_answer(status, &body);
        let _ = Cdr::read(body);
    }

    #[test]
    fn damaged_answers_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut body = send_bill_answer(&cdr_zip("0", "aceptada", &["4287 - x"])).into_bytes();
        for (index, byte) in flips {
            let i = index.index(body.len());
            body[i] = byte;
        }
        let _ = read_answer(200, &body);
    }

    #[test]
    fn damaged_cdr_zips_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut zip = cdr_zip("2017", "rechazada", &[]);
        for (index, byte) in flips {
            let i = index.index(zip.len());
            zip[i] = byte;
        }
        let _ = Cdr::read(zip);
    }
}
