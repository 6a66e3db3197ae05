//! Answers recorded from the local SUNAT stand-in (infra/local/sunat/standin.py): signed CDRs
//! as a SOAP stack writes them, read by the same code that reads SUNAT's.

use sunat_soap::{Answer, Note, Outcome, read_answer};

fn cdr_of(body: &str) -> sunat_soap::Cdr {
    match read_answer(200, body.as_bytes()) {
        Ok(Answer::Cdr(cdr)) => cdr,
        other => panic!("expected a CDR, got {other:?}"),
    }
}

#[test]
fn an_observed_cdr_from_the_stand_in() {
    let cdr = cdr_of(include_str!("fixtures/standin-observed.xml"));
    assert_eq!(cdr.xml_name, "R-20100070970-01-F001-00000042.xml");
    assert_eq!(cdr.reference_id, "F001-00000042");
    assert_eq!(cdr.response_code, 0);
    match cdr.outcome() {
        Outcome::Observed(notes) => {
            assert_eq!(notes.len(), 1);
            let Note { code, text } = &notes[0];
            assert_eq!(*code, Some(4287));
            assert!(text.starts_with("El precio unitario"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_rejection_for_an_altered_document_from_the_stand_in() {
    let cdr = cdr_of(include_str!("fixtures/standin-altered.xml"));
    assert_eq!(
        cdr.outcome(),
        Outcome::Rejected {
            code: sunat_soap::codes::ALTERED_DOCUMENT,
            description: "El documento electrónico ingresado ha sido alterado".into()
        }
    );
}
