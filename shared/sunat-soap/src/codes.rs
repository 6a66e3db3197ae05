//! SUNAT's return codes ("códigos de retorno") and what each range means for the sender.
//!
//! Source: SUNAT's "Listado de códigos de error" (the `CodigoRetorno` spreadsheet published with
//! the electronic-invoicing guides at cpe.sunat.gob.pe; read here as transcribed in
//! `data/errors.csv` of the public EliuTimana/SunatCatalogos repository). The ranges are the
//! ones that list is grouped by:
//!
//! | range | meaning | the document |
//! |---|---|---|
//! | 0100–1999 | exception: the submission was not processed | not received: send it again once fixed (or, for the retryable ones below, as it is) |
//! | 2000–3999 | rejection | received and rejected: it does not exist for SUNAT; a corrected one needs a new number |
//! | 4000+ | observation | accepted, with remarks |
//!
//! Retryable — SUNAT's own side failed and the same submission may succeed later
//! ([`is_retryable`]):
//!
//! - 0100 "El sistema no puede responder su solicitud. Intente nuevamente…"
//! - 0109 "…(El servicio de autenticación no está disponible)"
//! - 0130–0138 "El sistema no puede responder su solicitud" (no process ticket, could not
//!   write the file, the zip, the log, the storage, could not queue, no answer from the batch,
//!   a null answer, a database error)
//! - 0200–0204 "No se pudo procesar su solicitud" (an error in the batch, a null request, no zip
//!   information reached the batch, no files in it, only one file accepted)
//! - 0250, 0251, 0253 "No se pudo procesar su solicitud" while unzipping on SUNAT's side (an
//!   unknown unzip error, could not create the directory, could not compress the CDR); 0252
//!   ("no files inside the zip") is left out: it describes our zip.
//!
//! Every other exception is ours to fix (credentials 0101–0106, 0111–0113; zip and file names
//! 0151–0161; XML 0300–0307; 0400–0404; the document's content 1001–1999) and is not retried.

use std::ops::RangeInclusive;

/// What a non-zero return code says about the submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeClass {
    /// 0100–1999: not processed.
    Exception,
    /// 2000–3999: received and rejected.
    Rejection,
    /// 4000 and above: accepted with an observation.
    Observation,
}

/// The exception codes after which the very same submission may succeed (see the module docs).
pub const RETRYABLE: [RangeInclusive<u16>; 6] = [100..=100, 109..=109, 130..=138, 200..=204, 250..=251, 253..=253];

/// The class of a return code; `None` for 0 (accepted) and for 1–99, which SUNAT does not use.
pub fn classify(code: u16) -> Option<CodeClass> {
    match code {
        100..=1999 => Some(CodeClass::Exception),
        2000..=3999 => Some(CodeClass::Rejection),
        4000.. => Some(CodeClass::Observation),
        _ => None,
    }
}

/// True for the exceptions SUNAT raises when its own service failed ([`RETRYABLE`]).
pub fn is_retryable(code: u16) -> bool {
    RETRYABLE.iter().any(|range| range.contains(&code))
}

/// An invalid signature: "El documento electrónico ingresado ha sido alterado" (2335; 2334 has
/// the same text in the list, 2335 is the one seen for a signature that does not verify).
pub const ALTERED_DOCUMENT: u16 = 2335;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(classify(0), None);
        assert_eq!(classify(99), None);
        assert_eq!(classify(100), Some(CodeClass::Exception));
        assert_eq!(classify(1999), Some(CodeClass::Exception));
        assert_eq!(classify(2000), Some(CodeClass::Rejection));
        assert_eq!(classify(3999), Some(CodeClass::Rejection));
        assert_eq!(classify(4000), Some(CodeClass::Observation));
        assert_eq!(classify(4287), Some(CodeClass::Observation));
    }

    #[test]
    fn retryable_codes_are_the_listed_exceptions_only() {
        for code in [100, 109, 130, 134, 138, 200, 204, 250, 251, 253] {
            assert!(is_retryable(code), "{code}");
        }
        for code in [0, 101, 102, 129, 139, 151, 199, 205, 252, 306, 1033, 2335, 4287] {
            assert!(!is_retryable(code), "{code}");
        }
        assert!(
            (0..=u16::MAX)
                .filter(|&c| is_retryable(c))
                .all(|c| classify(c) == Some(CodeClass::Exception))
        );
    }
}
