//! What couriers report that changes an invoice: a returned shipment is credited in full
//! (one note per shipment, however often the event is delivered), and cash collected on
//! delivery is recorded as the invoice's payment (one per shipment: its id is the payment's
//! reference). Both find the invoice by the sale's guard; a report that arrives before the
//! invoice exists, or before SUNAT accepted it, fails and comes back on the queue's schedule.

use backoffice_domain::Clock;
use backoffice_domain::credit_note::CreditNoteReason;
use backoffice_domain::events::{CashCollected, CreditNoteRequested, ShipmentReturned};
use backoffice_domain::receivable::{Payment, PaymentMethod};
use backoffice_edge::mail::Mailer;
use backoffice_store::credit_notes::CreditNoteStore;
use backoffice_store::invoices::InvoiceStore;
use backoffice_store::payments::{InvoiceAccount, PaymentLedger, PaymentOutcome};

use crate::{BillingDirectory, DocumentStore, IssueError, Issuer, IssuerKeys, Outcome, TaxAuthority};

/// Reads of the account before a collection gives up to a busy invoice.
const PAYMENT_ATTEMPTS: usize = 3;

impl<S, B, D, M, K, T, Y> Issuer<S, B, D, M, K, T, Y>
where
    S: InvoiceStore + CreditNoteStore + PaymentLedger,
    B: BillingDirectory,
    D: DocumentStore,
    M: Mailer,
    K: Clock,
    T: TaxAuthority,
    Y: IssuerKeys,
{
    async fn invoice_of(&self, sale_id: &backoffice_domain::events::SaleId) -> Result<String, IssueError> {
        self.invoices
            .invoice_for_sale(sale_id)
            .await?
            .ok_or_else(|| IssueError::NotInvoicedYet(sale_id.to_string()))
    }

    /// The return's total credit note (request `return-{shipment}`), issued once.
    pub async fn returned(&self, event: &ShipmentReturned, correlation_id: &str) -> Result<Outcome, IssueError> {
        let invoice_id = self.invoice_of(&event.sale_id).await?;
        let request = CreditNoteRequested {
            request_id: format!("return-{}", event.shipment_id),
            client_id: event.client_id.clone(),
            invoice_id,
            reason: CreditNoteReason::TotalReturn,
            description: format!("Devolución total: envío {} devuelto por el courier", event.shipment_id),
            lines: Vec::new(),
            requested_by: format!("courier:{}", event.courier_id),
        };
        self.credit(&request, correlation_id).await
    }

    /// Cash on delivery as the invoice's payment, recorded once per shipment.
    pub async fn collected(&self, event: &CashCollected) -> Result<Outcome, IssueError> {
        let invoice_id = self.invoice_of(&event.sale_id).await?;
        let payment = Payment {
            amount: event.amount,
            method: PaymentMethod::CashOnDelivery,
            reference: event.shipment_id.to_string(),
            paid_at: event.collected_at,
            recorded_by: format!("courier:{}", event.courier_id),
            recorded_at: self.clock.now(),
        };
        for _ in 0..PAYMENT_ATTEMPTS {
            let Some(InvoiceAccount { account, .. }) = self.invoices.account(&event.client_id, &invoice_id).await?
            else {
                return Err(IssueError::NotInvoicedYet(event.sale_id.to_string()));
            };
            let after = match account.pay(&payment.amount) {
                Ok(after) => after,
                Err(refusal) => {
                    // A redelivery after this very payment settled the invoice.
                    let recorded = self.invoices.payments(&event.client_id, &invoice_id).await?;
                    if recorded
                        .iter()
                        .any(|p| p.method == payment.method && p.reference == payment.reference)
                    {
                        return Ok(Outcome::Paid {
                            invoice_id,
                            status: account.status(),
                        });
                    }
                    // A courier's collection that does not fit the invoice (more than owed, another
                    // currency, a credited invoice) is money finance must reconcile by hand.
                    tracing::error!(
                        invoice_id = %invoice_id, shipment_id = %event.shipment_id, amount = %payment.amount,
                        error = %refusal.detail, error_kind = "cod_payment_refused", "cash collected not recorded"
                    );
                    return Err(IssueError::PaymentRefused(refusal.detail));
                }
            };
            match self
                .invoices
                .record_payment(&event.client_id, &invoice_id, &payment, &account, &after)
                .await?
            {
                PaymentOutcome::Recorded => {
                    tracing::info!(
                        invoice_id = %invoice_id, shipment_id = %event.shipment_id, amount = %payment.amount,
                        recorded_by = %payment.recorded_by, status = ?after.status(), "cash on delivery recorded"
                    );
                    metrics::counter!("PaymentsRecorded").increment(1);
                    return Ok(Outcome::Paid {
                        invoice_id,
                        status: after.status(),
                    });
                }
                PaymentOutcome::AlreadyRecorded(_) => {
                    return Ok(Outcome::Paid {
                        invoice_id,
                        status: account.status(),
                    });
                }
                PaymentOutcome::Stale => continue,
            }
        }
        Err(IssueError::Store(backoffice_store::StoreError::Conflict(
            backoffice_store::ConflictKind::StaleVersion,
        )))
    }
}
