//! dunning: once a day (08:00 in Lima), a payment reminder for every open invoice that has
//! reached one of its client's offsets from the due date (−3, +1, +15, +30 days unless the
//! billing profile says otherwise), on the client's local day. Each reminder goes at most once
//! per invoice and offset (claimed in the store before the send, marked after: see
//! `backoffice_store::reminders`), never for an invoice with nothing owed, and is recorded in
//! the invoice's partition. A run is bounded by its invocation's deadline; what it leaves, the
//! next runs catch up for `catch_up_days` (ADR 0023).
//!
//! The clients come from the configuration table's directory partition, the invoices from the
//! sparse open-invoices index queried by due date: a run reads what is owed on its dates, never
//! a client's whole history.

pub mod email;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, Duration, OffsetDateTime};

use backoffice_domain::Clock;
use backoffice_domain::dunning::Offset;
use backoffice_edge::mail::{MailError, Mailer};
use backoffice_store::StoreError;
use backoffice_store::accounts::{AccountsView, OpenInvoice};
use backoffice_store::config::{BillingDirectory, ClientDirectory};
use backoffice_store::ledger::EmailStatus;
use backoffice_store::reminders::{ClaimOutcome, ReminderClaim, ReminderState, ReminderStore};

pub use email::Sender;

/// No reminder is started this close to the invocation's deadline.
pub const DEADLINE_MARGIN: Duration = Duration::seconds(15);
/// A claim outlives its invocation by this much, so nobody takes it over while it may still send.
pub const LEASE_AFTER_DEADLINE: Duration = Duration::minutes(1);
/// Reminders listed in the run's result (the log has every one).
pub const LISTED: usize = 100;
/// Tries of the mark after a send (the e-mail is out: losing its record risks a repeat).
const MARK_TRIES: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The event is not `{"date": "YYYY-MM-DD", "client_id": …}` (both optional).
    #[error("the run's request is {{\"date\": \"YYYY-MM-DD\", \"client_id\": …}}, both optional: {0}")]
    BadRequest(String),
    /// The directory could not be read: nothing was done.
    #[error("client directory: {0}")]
    Directory(StoreError),
    /// Some clients could not be dunned (their errors are logged); the others were.
    #[error("{failed} of {clients} clients failed (see the log); the rest were dunned")]
    Clients { failed: usize, clients: usize },
}

/// What one invocation is asked: the schedule sends `{}` (today, every client); an operator or
/// a test may name the day (`{"date": "2026-12-31"}`) and one client (`"client_id"`). Read with
/// `backoffice_edge::schedule::request`, like every scheduled function's: a misspelt field is an
/// error, not a silently wider run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    #[serde(default, with = "backoffice_domain::wire::date_option")]
    pub date: Option<Date>,
    #[serde(default)]
    pub client_id: Option<String>,
}

impl RunRequest {
    pub fn from_event(payload: &Value) -> Result<Self, RunError> {
        let mut request: RunRequest =
            backoffice_edge::schedule::request(payload).map_err(|e| RunError::BadRequest(e.to_string()))?;
        // A blank client names none: every client.
        request.client_id = request.client_id.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
        Ok(request)
    }
}

/// One reminder sent, by ids only (the log line carries the rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentReminder {
    pub client_id: String,
    pub invoice_id: String,
    pub offset: i16,
    #[serde(with = "backoffice_domain::wire::date")]
    pub run_date: Date,
    pub message_id: String,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub clients: usize,
    /// Open invoices read on the run's due dates.
    pub open_read: usize,
    pub sent: usize,
    /// Sent (or refused for good) by an earlier run.
    pub already_done: usize,
    /// Claimed by a run still going.
    pub busy: usize,
    pub no_recipients: usize,
    pub nothing_owed: usize,
    /// The invoice e-mail bounced or was marked as spam: the address is not written to again.
    pub undeliverable: usize,
    /// The mail service refused the message for good (marked FAILED).
    pub refused: usize,
    /// The mail service was unavailable: released for the next run.
    pub retry_later: usize,
    /// The deadline came before every candidate was seen.
    pub stopped_early: bool,
    /// Clients skipped: no billing profile, or a configuration that does not read.
    pub clients_skipped: usize,
    pub clients_failed: usize,
    /// The first [`LISTED`] reminders sent.
    pub reminders: Vec<SentReminder>,
}

/// How far back a run makes up for days no run covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub catch_up_days: u16,
}

impl Default for Settings {
    fn default() -> Self {
        Self { catch_up_days: 3 }
    }
}

pub struct Dunning<C, A, R, M, K> {
    /// The client directory and the billing profiles (the configuration table).
    pub clients: C,
    pub accounts: A,
    pub reminders: R,
    pub mailer: M,
    pub clock: K,
    pub sender: Sender,
    pub settings: Settings,
}

/// Why a run moves on to the next client before finishing one.
enum Stop {
    Deadline,
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Store(e)
    }
}

impl<C, A, R, M, K> Dunning<C, A, R, M, K>
where
    C: ClientDirectory + BillingDirectory,
    A: AccountsView,
    R: ReminderStore,
    M: Mailer,
    K: Clock,
{
    pub async fn run(&self, request: &RunRequest, deadline: OffsetDateTime) -> Result<Report, RunError> {
        let clients = match &request.client_id {
            Some(client) => vec![client.clone()],
            None => self.clients.clients().await.map_err(RunError::Directory)?,
        };
        let mut report = Report {
            clients: clients.len(),
            ..Report::default()
        };
        for client_id in &clients {
            match self.client(client_id, request.date, deadline, &mut report).await {
                Ok(()) => {}
                Err(Stop::Deadline) => {
                    report.stopped_early = true;
                    tracing::warn!(client_id, "dunning: deadline reached, the rest is left to the next run");
                    break;
                }
                Err(Stop::Store(error)) => {
                    report.clients_failed += 1;
                    tracing::error!(client_id, error = %error, error_kind = "dunning_client_failed", "dunning: client not finished");
                }
            }
        }
        metrics::counter!("DunningRuns").increment(1);
        if report.stopped_early {
            metrics::counter!("DunningStoppedEarly").increment(1);
        }
        tracing::info!(
            clients = report.clients,
            sent = report.sent,
            already_done = report.already_done,
            busy = report.busy,
            no_recipients = report.no_recipients,
            undeliverable = report.undeliverable,
            refused = report.refused,
            retry_later = report.retry_later,
            stopped_early = report.stopped_early,
            clients_failed = report.clients_failed,
            "dunning run"
        );
        if report.clients_failed > 0 {
            return Err(RunError::Clients {
                failed: report.clients_failed,
                clients: report.clients,
            });
        }
        Ok(report)
    }

    async fn client(
        &self,
        client_id: &str,
        date: Option<Date>,
        deadline: OffsetDateTime,
        report: &mut Report,
    ) -> Result<(), Stop> {
        let Some(profile) = self.clients.billing_profile(client_id).await? else {
            report.clients_skipped += 1;
            tracing::warn!(client_id, "dunning: client in the directory has no billing profile");
            return Ok(());
        };
        let today = match date {
            Some(date) => date,
            None => match profile.local_time().map(|t| t.local(self.clock.now())) {
                Ok(Some(local)) => local.date(),
                Ok(None) | Err(_) => {
                    report.clients_skipped += 1;
                    tracing::error!(
                        client_id,
                        error_kind = "dunning_client_failed",
                        "dunning: the client's billing profile has no usable time zone"
                    );
                    return Ok(());
                }
            },
        };
        let offsets = &profile.dunning_offsets;
        let catch_up = self.settings.catch_up_days;
        for due_date in offsets.due_dates(today, catch_up) {
            let open = self.accounts.open_invoices_due(client_id, due_date).await?;
            report.open_read += open.len();
            for invoice in open {
                let Some(offset) = offsets.due(invoice.due_date, today, catch_up) else {
                    continue;
                };
                if self.clock.now() + DEADLINE_MARGIN >= deadline {
                    return Err(Stop::Deadline);
                }
                self.remind(
                    client_id,
                    &profile.finance_email,
                    &invoice,
                    offset,
                    today,
                    deadline,
                    report,
                )
                .await?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn remind(
        &self,
        client_id: &str,
        finance_email: &str,
        open: &OpenInvoice,
        offset: Offset,
        today: Date,
        deadline: OffsetDateTime,
        report: &mut Report,
    ) -> Result<(), StoreError> {
        let invoice_id = open.invoice_id.as_str();
        if open.account.outstanding_minor() <= 0 {
            report.nothing_owed += 1;
            return Ok(());
        }
        // A sent reminder costs one read from then on, not a refused write.
        if let Some(done) = self.reminders.reminder(client_id, invoice_id, offset).await?
            && done.state != ReminderState::Claimed
        {
            report.already_done += 1;
            return Ok(());
        }
        // The whole file, read consistently: a payment recorded since the index was read counts.
        let Some(file) = self.accounts.invoice_file(client_id, invoice_id).await? else {
            tracing::warn!(client_id, invoice_id, "dunning: open index entry without its invoice");
            return Ok(());
        };
        if file.account.outstanding_minor() <= 0 {
            report.nothing_owed += 1;
            return Ok(());
        }
        let recipients = file
            .stored
            .email
            .as_ref()
            .map(|e| e.recipients.clone())
            .unwrap_or_default();
        if recipients.is_empty() {
            report.no_recipients += 1;
            tracing::warn!(client_id, invoice_id, offset = %offset, "dunning: the invoice was never e-mailed: no reminder");
            return Ok(());
        }
        if matches!(
            file.summary.email_status,
            EmailStatus::Bounced | EmailStatus::Complained
        ) {
            report.undeliverable += 1;
            tracing::warn!(client_id, invoice_id, offset = %offset, email_status = ?file.summary.email_status, "dunning: the invoice e-mail bounced or was reported: no reminder");
            return Ok(());
        }
        let now = self.clock.now();
        let claim = ReminderClaim {
            client_id: client_id.to_owned(),
            invoice_id: invoice_id.to_owned(),
            offset,
            due_date: open.due_date,
            run_date: today,
            now,
            lease_until: deadline.max(now) + LEASE_AFTER_DEADLINE,
        };
        let attempt = match self.reminders.claim(&claim).await? {
            ClaimOutcome::Claimed { attempt } => attempt,
            ClaimOutcome::Done(_) => {
                report.already_done += 1;
                return Ok(());
            }
            ClaimOutcome::Busy => {
                report.busy += 1;
                return Ok(());
            }
        };
        let about = email::Subject {
            invoice: &file.stored.invoice,
            account: &file.account,
            offset,
            today,
        };
        let outgoing = match email::build(&about, &recipients, finance_email, &self.sender, now) {
            Ok(outgoing) => outgoing,
            Err(e) => {
                // Only writing to memory can fail here: a bug, kept on the reminder for a person.
                self.reminders
                    .mark_failed(client_id, invoice_id, offset, &format!("building the message: {e}"))
                    .await?;
                report.refused += 1;
                tracing::error!(client_id, invoice_id, offset = %offset, error = %e, error_kind = "dunning_refused", "dunning: the reminder could not be built");
                return Ok(());
            }
        };
        match self.mailer.send(&outgoing).await {
            Ok(message_id) => {
                let sent_at = self.clock.now();
                self.mark_sent(
                    client_id,
                    invoice_id,
                    offset,
                    &message_id,
                    &outgoing.recipients(),
                    sent_at,
                )
                .await?;
                report.sent += 1;
                metrics::counter!("DunningReminders", "Result" => "sent").increment(1);
                // The audit: who was reminded of what, when, and by which message.
                tracing::info!(
                    client_id,
                    invoice_id,
                    offset = offset.0,
                    due_date = %open.due_date,
                    run_date = %today,
                    outstanding_minor = file.account.outstanding_minor(),
                    currency = %file.account.currency,
                    recipients = outgoing.recipients().len(),
                    message_id = %message_id,
                    attempt,
                    sent_at = %sent_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                    "dunning: reminder sent"
                );
                if report.reminders.len() < LISTED {
                    report.reminders.push(SentReminder {
                        client_id: client_id.to_owned(),
                        invoice_id: invoice_id.to_owned(),
                        offset: offset.0,
                        run_date: today,
                        message_id,
                    });
                }
            }
            Err(MailError::Rejected(reason)) => {
                self.reminders
                    .mark_failed(client_id, invoice_id, offset, &reason)
                    .await?;
                report.refused += 1;
                metrics::counter!("DunningReminders", "Result" => "refused").increment(1);
                tracing::error!(client_id, invoice_id, offset = %offset, error = %reason, error_kind = "dunning_refused", "dunning: the mail service refused the reminder");
            }
            Err(MailError::Unavailable(reason)) => {
                self.reminders
                    .release(client_id, invoice_id, offset, &reason, self.clock.now())
                    .await?;
                report.retry_later += 1;
                metrics::counter!("DunningReminders", "Result" => "retry_later").increment(1);
                tracing::warn!(client_id, invoice_id, offset = %offset, error = %reason, "dunning: mail service unavailable, the next run retries");
            }
        }
        Ok(())
    }

    /// The mark, retried briefly: the e-mail is out, and an unmarked claim would be sent again
    /// once its lease ends.
    async fn mark_sent(
        &self,
        client_id: &str,
        invoice_id: &str,
        offset: Offset,
        message_id: &str,
        recipients: &[String],
        sent_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self
                .reminders
                .mark_sent(client_id, invoice_id, offset, message_id, recipients, sent_at)
                .await
            {
                Ok(()) => return Ok(()),
                Err(StoreError::Unavailable(e)) if tries < MARK_TRIES => {
                    tracing::warn!(client_id, invoice_id, error = %e, "dunning: marking the reminder, retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(tries))).await;
                }
                Err(e) => {
                    tracing::error!(client_id, invoice_id, offset = %offset, message_id, error = %e, error_kind = "dunning_unmarked", "dunning: reminder sent but not recorded: a later run may send it again");
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
