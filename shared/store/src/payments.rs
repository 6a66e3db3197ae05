//! Payments of invoices, on the invoices table (issue 15):
//!
//! | item     | pk                            | sk                              |
//! |----------|-------------------------------|---------------------------------|
//! | payment  | `INVOICE#{client}#{invoice}`  | `PAYMENT#{method}#{reference}`  |
//!
//! A payment and the invoice's running `paid_minor` (with its `collection_status`) are written
//! in one transaction, conditioned on the amounts the decision was made on: two payments
//! recorded at once cannot both fit in what was owed. One reference per method is one payment:
//! the same bank operation entered twice is refused, not counted twice.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use backoffice_domain::invoice::Invoice;
use backoffice_domain::receivable::{Account, Payment, PaymentMethod};

use crate::StoreError;
use crate::dynamo::{Item, TransactFailure, corrupt, number_attr, s, sdk_error, transact, transact_put, unchanged};
use crate::invoices::{DynamoInvoiceStore, n};

/// An invoice and where its account stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceAccount {
    pub invoice: Invoice,
    pub account: Account,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    Recorded,
    /// The account changed since it was read (another payment or a credit note): read again.
    Stale,
    /// This method and reference were recorded already, as this payment.
    AlreadyRecorded(Box<Payment>),
}

#[async_trait]
pub trait PaymentLedger: Send + Sync {
    /// The invoice and its account, read consistently; `None` if the client has no such invoice.
    async fn account(&self, client_id: &str, invoice_id: &str) -> Result<Option<InvoiceAccount>, StoreError>;

    /// Record `payment`, taking the account from `seen` to `after`.
    async fn record_payment(
        &self,
        client_id: &str,
        invoice_id: &str,
        payment: &Payment,
        seen: &Account,
        after: &Account,
    ) -> Result<PaymentOutcome, StoreError>;

    /// The invoice's payments, in the order of their keys (method, reference).
    async fn payments(&self, client_id: &str, invoice_id: &str) -> Result<Vec<Payment>, StoreError>;
}

fn payment_sk(method: PaymentMethod, reference: &str) -> Result<String, StoreError> {
    let method = serde_json::to_value(method).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(format!("PAYMENT#{}#{reference}", method.as_str().unwrap_or_default()))
}

/// The update of an invoice's account to `after`: `set` (the amount that moved), its
/// collection status, and off the open-invoices index once nothing is owed.
pub(crate) fn settling_update(set: &str, after: &Account) -> Result<String, StoreError> {
    let mut update = format!("SET {set}, collection_status = :status");
    if after.outstanding_minor() <= 0 {
        update.push_str(" REMOVE gsi3pk, gsi3sk");
    }
    Ok(update)
}

/// `after`'s collection status as the table stores it (`PARTIALLY_PAID`).
pub(crate) fn status_name(after: &Account) -> Result<String, StoreError> {
    match serde_json::to_value(after.status()) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        other => Err(StoreError::Corrupt(format!(
            "collection status serialized as {other:?}"
        ))),
    }
}

#[async_trait]
impl PaymentLedger for DynamoInvoiceStore {
    async fn account(&self, client_id: &str, invoice_id: &str) -> Result<Option<InvoiceAccount>, StoreError> {
        let (pk, sk) = Self::invoice_key(client_id, invoice_id);
        let Some(item) = self.get(pk, sk).await? else {
            return Ok(None);
        };
        let (credited_minor, paid_minor) = (number_attr(&item, "credited_minor")?, number_attr(&item, "paid_minor")?);
        let invoice: Invoice = serde_dynamo::from_item(item).map_err(corrupt("reading invoice"))?;
        let account = Account {
            credited_minor,
            paid_minor,
            ..Account::issued(&invoice.totals.total)
        };
        Ok(Some(InvoiceAccount { invoice, account }))
    }

    async fn record_payment(
        &self,
        client_id: &str,
        invoice_id: &str,
        payment: &Payment,
        seen: &Account,
        after: &Account,
    ) -> Result<PaymentOutcome, StoreError> {
        let (pk, sk) = Self::invoice_key(client_id, invoice_id);
        let payment_sk = payment_sk(payment.method, &payment.reference)?;
        let mut item: Item = serde_dynamo::to_item(payment).map_err(corrupt("serializing payment"))?;
        item.insert("pk".into(), pk.clone());
        item.insert("sk".into(), s(&payment_sk));
        item.insert("entity".into(), s("PAYMENT"));
        item.insert("invoice_id".into(), s(invoice_id));
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", pk.clone())
            .key("sk", sk)
            .update_expression(settling_update("paid_minor = :paid", after)?)
            .condition_expression(format!(
                "attribute_exists(pk) AND {} AND {}",
                unchanged("paid_minor", seen.paid_minor),
                unchanged("credited_minor", seen.credited_minor)
            ))
            .expression_attribute_values(":paid", n(after.paid_minor))
            .expression_attribute_values(":status", s(status_name(after)?))
            .expression_attribute_values(":seen_paid_minor", n(seen.paid_minor))
            .expression_attribute_values(":seen_credited_minor", n(seen.credited_minor))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        // Order matters: the cancellation reasons come back in this order.
        let items = vec![
            transact_put(&self.table, item, Some("attribute_not_exists(sk)"))?,
            TransactWriteItem::builder().update(update).build(),
        ];
        match transact(&self.client, items).await {
            Ok(()) => Ok(PaymentOutcome::Recorded),
            Err(TransactFailure::Cancelled(c)) if c.condition_failed(0) => {
                let existing = self
                    .get(pk, s(payment_sk))
                    .await?
                    .ok_or(StoreError::Conflict(crate::ConflictKind::StaleVersion))?;
                let existing: Payment = serde_dynamo::from_item(existing).map_err(corrupt("reading payment"))?;
                Ok(PaymentOutcome::AlreadyRecorded(Box::new(existing)))
            }
            Err(TransactFailure::Cancelled(c)) if c.condition_failed(1) || c.conflicted() => Ok(PaymentOutcome::Stale),
            Err(TransactFailure::Cancelled(c)) => Err(c.into()),
            Err(TransactFailure::Failed(e)) => Err(e),
        }
    }

    async fn payments(&self, client_id: &str, invoice_id: &str) -> Result<Vec<Payment>, StoreError> {
        let (pk, _) = Self::invoice_key(client_id, invoice_id);
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :payment)")
            .expression_attribute_values(":pk", pk)
            .expression_attribute_values(":payment", s("PAYMENT#"))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| serde_dynamo::from_item(item).map_err(corrupt("reading payment")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_per_method_and_reference() {
        assert_eq!(
            payment_sk(PaymentMethod::CashOnDelivery, "GR-0042").ok().as_deref(),
            Some("PAYMENT#CASH_ON_DELIVERY#GR-0042")
        );
    }

    #[test]
    fn an_absent_amount_counts_as_zero() {
        assert_eq!(
            unchanged("paid_minor", 0),
            "(attribute_not_exists(paid_minor) OR paid_minor = :seen_paid_minor)"
        );
        assert_eq!(unchanged("paid_minor", 5), "paid_minor = :seen_paid_minor");
    }
}
