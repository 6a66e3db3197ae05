//! Electronic documents before SUNAT: where each stands, and by when it must be submitted.
//!
//! An issued invoice (or credit note) is a legal sale document only once SUNAT (or an OSE) has
//! received it and answered with a CDR that accepts it, with or without observations. Until then
//! it is `PENDING_SUBMISSION`; a rejection (codes 2000–3999) means the document does not exist
//! for the tax authority and a person must act. The flow and sources: docs/decisions/0017.

use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ElectronicStatus {
    /// Signed and stored; not yet answered by SUNAT (never sent, or SUNAT was unavailable).
    PendingSubmission,
    /// Accepted (CDR response code 0, no observations).
    Accepted,
    /// Accepted with observations (CDR notes 4000+): valid; the observations should be fixed in
    /// later documents.
    Observed,
    /// Rejected (CDR response code 2000–3999): not a valid document.
    Rejected,
}

impl ElectronicStatus {
    /// The stored and serialized name (`PENDING_SUBMISSION`).
    pub fn as_str(self) -> &'static str {
        match self {
            ElectronicStatus::PendingSubmission => "PENDING_SUBMISSION",
            ElectronicStatus::Accepted => "ACCEPTED",
            ElectronicStatus::Observed => "OBSERVED",
            ElectronicStatus::Rejected => "REJECTED",
        }
    }

    /// Whether the document is a valid sale document (what may be printed as one).
    pub fn is_valid(self) -> bool {
        matches!(self, ElectronicStatus::Accepted | ElectronicStatus::Observed)
    }

    /// Whether SUNAT has answered for good (nothing more to submit).
    pub fn is_final(self) -> bool {
        self != ElectronicStatus::PendingSubmission
    }
}

/// Calendar days after the issue date within which SUNAT must receive a factura, a boleta or
/// a note (Resolución de Superintendencia N.° 193-2020/SUNAT: "hasta el plazo máximo de tres
/// días calendario contados desde el día siguiente a la fecha de emisión").
pub const SUBMISSION_DAYS: i64 = 3;

/// The last calendar day on which a document issued on `issue_date` may reach SUNAT.
pub fn submission_deadline(issue_date: Date) -> Date {
    issue_date.saturating_add(Duration::days(SUBMISSION_DAYS))
}

/// Whether a document issued at `issued_at` and still pending at `now` is near its deadline:
/// two days have passed, so at least one whole calendar day is left, whatever the issuer's
/// time zone (the deadline ends with the third local day after the issue date).
pub fn deadline_near(issued_at: OffsetDateTime, now: OffsetDateTime) -> bool {
    now - issued_at >= Duration::days(SUBMISSION_DAYS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn three_calendar_days_from_the_next_day() {
        assert_eq!(submission_deadline(date!(2026 - 11 - 30)), date!(2026 - 12 - 03));
        assert_eq!(submission_deadline(date!(2026 - 12 - 30)), date!(2027 - 01 - 02));
        let issued = datetime!(2026-11-30 23:30 -5);
        assert!(!deadline_near(issued, datetime!(2026-12-02 23:29 -5)));
        assert!(deadline_near(issued, datetime!(2026-12-02 23:30 -5)));
        assert!(deadline_near(issued, datetime!(2026-12-05 10:00 UTC)));
    }

    #[test]
    fn only_an_answer_from_sunat_makes_a_valid_document() {
        assert!(!ElectronicStatus::PendingSubmission.is_valid());
        assert!(!ElectronicStatus::Rejected.is_valid());
        assert!(ElectronicStatus::Observed.is_valid() && ElectronicStatus::Accepted.is_valid());
        assert!(ElectronicStatus::Rejected.is_final() && !ElectronicStatus::PendingSubmission.is_final());
        for status in [
            ElectronicStatus::PendingSubmission,
            ElectronicStatus::Accepted,
            ElectronicStatus::Observed,
            ElectronicStatus::Rejected,
        ] {
            assert_eq!(
                serde_json::to_value(status).ok(),
                Some(serde_json::json!(status.as_str()))
            );
        }
        assert_eq!(
            serde_json::to_value(ElectronicStatus::PendingSubmission).expect("json"),
            "PENDING_SUBMISSION"
        );
    }
}
