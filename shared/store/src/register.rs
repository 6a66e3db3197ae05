//! The sales register: one client's invoices and credit notes of a date range (the month's
//! documents, [`backoffice_domain::sales_register`]), and the register files in the invoices
//! bucket. Ports, DynamoDB and S3 adapters, in-memory twins.
//!
//! Both document kinds come from the invoices table's `by-client` index (projection ALL), each
//! from its own partition, read to its last page — two queries, never a scan:
//!
//! | document    | gsi1pk                 | gsi1sk                 | written by        |
//! |-------------|------------------------|------------------------|-------------------|
//! | invoice     | `CLIENT#{client}`      | `{issue date}#{id}`    | invoices.rs       |
//! | credit note | `CREDITNOTES#{client}` | `{issue date}#{note}`  | credit_notes.rs   |
//!
//! Notes sit apart from the invoices so the listings and the ageing, which read `CLIENT#`,
//! never page through them. A note is dated by its own issue date (it belongs to the month it
//! was issued in, whatever the month of the invoice it corrects).
//!
//! Files: `registers/{client}/{YYYY-MM}/registro-ventas-{client}-{YYYY-MM}.csv`, replaced by each
//! generation (the bucket is versioned: earlier ones stay as versions), read through presigned
//! links.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use time::{Date, OffsetDateTime};

use backoffice_domain::credit_note::CreditNote;
use backoffice_domain::electronic::ElectronicStatus;
use backoffice_domain::invoice::Invoice;
use backoffice_domain::sales_register::{Period, RegisterDocument, file_name};

use super::StoreError;
use crate::documents::s3_error;
use crate::dynamo::{Item, corrupt, read_whole, s, sdk_error, string_attr};
use crate::invoices::DynamoInvoiceStore;
use crate::sdk::SdkClient;

const BY_CLIENT_INDEX: &str = "by-client";

#[async_trait]
pub trait RegisterSource: Send + Sync {
    /// Every invoice and credit note `client_id` issued from `from` to `to` (inclusive), with
    /// where each stands at SUNAT, in no particular order.
    async fn register_documents(
        &self,
        client_id: &str,
        from: Date,
        to: Date,
    ) -> Result<Vec<RegisterDocument>, StoreError>;
}

/// The stored SUNAT status of an item; none yet is pending.
fn electronic_status(item: &Item) -> Result<ElectronicStatus, StoreError> {
    match string_attr(item, "electronic_status") {
        None => Ok(ElectronicStatus::PendingSubmission),
        Some(raw) => [
            ElectronicStatus::PendingSubmission,
            ElectronicStatus::Accepted,
            ElectronicStatus::Observed,
            ElectronicStatus::Rejected,
        ]
        .into_iter()
        .find(|status| status.as_str() == raw)
        .ok_or_else(|| StoreError::Corrupt(format!("electronic_status {raw:?}"))),
    }
}

impl DynamoInvoiceStore {
    /// Every `entity` item of index partition `pk` dated `from`..=`to`, page after page.
    async fn register_range(&self, pk: String, entity: &str, from: Date, to: Date) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_CLIENT_INDEX)
                .key_condition_expression("gsi1pk = :pk AND gsi1sk BETWEEN :from AND :to")
                // Whatever else may one day share the partition is not a register row.
                .filter_expression("#entity = :entity")
                .expression_attribute_names("#entity", "entity")
                .expression_attribute_values(":pk", s(&pk))
                // `{date}#…` sorts by date; `~` sorts after every id character.
                .expression_attribute_values(":from", s(format!("{from}#")))
                .expression_attribute_values(":to", s(format!("{to}#~")))
                .expression_attribute_values(":entity", s(entity))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                // The index projects what listings filter on; a register row needs the whole
                // document.
                _ => return read_whole(&self.client, &self.table, &items).await,
            }
        }
    }
}

#[async_trait]
impl RegisterSource for DynamoInvoiceStore {
    async fn register_documents(
        &self,
        client_id: &str,
        from: Date,
        to: Date,
    ) -> Result<Vec<RegisterDocument>, StoreError> {
        let invoices = self
            .register_range(format!("CLIENT#{client_id}"), "INVOICE", from, to)
            .await?;
        let notes = self
            .register_range(format!("CREDITNOTES#{client_id}"), "CREDIT_NOTE", from, to)
            .await?;
        let mut documents = Vec::with_capacity(invoices.len() + notes.len());
        for item in invoices {
            let status = electronic_status(&item)?;
            let invoice: Invoice = serde_dynamo::from_item(item).map_err(corrupt("reading invoice"))?;
            documents.push(RegisterDocument::invoice(&invoice, status));
        }
        for item in notes {
            let status = electronic_status(&item)?;
            let note: CreditNote = serde_dynamo::from_item(item).map_err(corrupt("reading credit note"))?;
            documents
                .push(RegisterDocument::credit_note(&note, status).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
        Ok(documents)
    }
}

/// Where a client's register of `period` is kept.
pub fn register_key(client_id: &str, period: Period) -> String {
    format!("registers/{client_id}/{period}/{}", file_name(client_id, period))
}

/// A stored register file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterFile {
    pub size: u64,
    pub generated_at: Option<OffsetDateTime>,
    pub generated_by: Option<String>,
}

#[async_trait]
pub trait RegisterFiles: Send + Sync {
    /// Store (or replace) the file at `key`, saying who generated it.
    async fn put_register(&self, key: &str, csv: Vec<u8>, generated_by: &str) -> Result<(), StoreError>;
    /// The file at `key`, if one was generated.
    async fn register_file(&self, key: &str) -> Result<Option<RegisterFile>, StoreError>;
    /// A link that downloads the file at `key` as `download_name`, valid for `ttl`.
    async fn download_url(&self, key: &str, download_name: &str, ttl: Duration) -> Result<String, StoreError>;
}

#[derive(Debug, Clone)]
pub struct S3RegisterFiles {
    client: SdkClient<aws_sdk_s3::Client>,
    bucket: String,
}

impl S3RegisterFiles {
    pub fn new(client: impl Into<SdkClient<aws_sdk_s3::Client>>, bucket: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            bucket: bucket.into(),
        }
    }
}

/// S3 user metadata: who generated the file.
const GENERATED_BY: &str = "generated-by";

#[async_trait]
impl RegisterFiles for S3RegisterFiles {
    async fn put_register(&self, key: &str, csv: Vec<u8>, generated_by: &str) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("text/csv; charset=utf-8")
            .metadata(GENERATED_BY, generated_by)
            .body(ByteStream::from(csv))
            .send()
            .await
            .map_err(s3_error)?;
        Ok(())
    }

    async fn register_file(&self, key: &str) -> Result<Option<RegisterFile>, StoreError> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(head) => Ok(Some(RegisterFile {
                size: head.content_length.and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                generated_at: head
                    .last_modified
                    .and_then(|at| OffsetDateTime::from_unix_timestamp(at.secs()).ok()),
                generated_by: head.metadata.and_then(|mut m| m.remove(GENERATED_BY)),
            })),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(err) => Err(s3_error(err)),
        }
    }

    async fn download_url(&self, key: &str, download_name: &str, ttl: Duration) -> Result<String, StoreError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl)
            .map_err(|e| StoreError::Backend(format!("presigning {key}: {e}")))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(format!("attachment; filename=\"{download_name}\""))
            .response_content_type("text/csv; charset=utf-8")
            .presigned(config)
            .await
            .map_err(|e| StoreError::Backend(format!("presigning {key}: {e}")))?;
        Ok(request.uri().to_owned())
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory twins, for handler tests.
// ---------------------------------------------------------------------------------------------

#[cfg(any(test, feature = "testing"))]
pub use memory::MemoryRegisterFiles;

#[cfg(any(test, feature = "testing"))]
mod memory {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::invoices::MemoryInvoiceStore;

    #[async_trait]
    impl RegisterSource for MemoryInvoiceStore {
        async fn register_documents(
            &self,
            client_id: &str,
            from: Date,
            to: Date,
        ) -> Result<Vec<RegisterDocument>, StoreError> {
            let dated = |date: Date| from <= date && date <= to;
            let status = |e: Option<&crate::invoices::ElectronicRecord>| {
                e.map_or(ElectronicStatus::PendingSubmission, |e| e.status)
            };
            let mut documents: Vec<RegisterDocument> = self
                .all()
                .iter()
                .filter(|i| i.invoice.client_id == client_id && dated(i.invoice.issue_date))
                .map(|i| RegisterDocument::invoice(&i.invoice, status(i.electronic.as_ref())))
                .collect();
            for stored in self.credit_notes() {
                if stored.note.client_id == client_id && dated(stored.note.issue_date) {
                    documents.push(
                        RegisterDocument::credit_note(&stored.note, status(stored.electronic.as_ref()))
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    );
                }
            }
            Ok(documents)
        }
    }

    /// In-memory [`RegisterFiles`]: links are `memory://{key}?name={name}&ttl={seconds}`.
    #[derive(Default)]
    pub struct MemoryRegisterFiles {
        files: Mutex<HashMap<String, (Vec<u8>, String)>>,
    }

    impl MemoryRegisterFiles {
        /// The bytes stored at `key`.
        pub fn bytes(&self, key: &str) -> Option<Vec<u8>> {
            self.files.lock().ok()?.get(key).map(|(bytes, _)| bytes.clone())
        }

        pub fn keys(&self) -> Vec<String> {
            self.files
                .lock()
                .map(|f| f.keys().cloned().collect())
                .unwrap_or_default()
        }
    }

    #[async_trait]
    impl RegisterFiles for MemoryRegisterFiles {
        async fn put_register(&self, key: &str, csv: Vec<u8>, generated_by: &str) -> Result<(), StoreError> {
            self.files
                .lock()
                .map_err(|_| StoreError::Backend("poisoned".into()))?
                .insert(key.to_owned(), (csv, generated_by.to_owned()));
            Ok(())
        }

        async fn register_file(&self, key: &str) -> Result<Option<RegisterFile>, StoreError> {
            Ok(self
                .files
                .lock()
                .map_err(|_| StoreError::Backend("poisoned".into()))?
                .get(key)
                .map(|(bytes, by)| RegisterFile {
                    size: bytes.len() as u64,
                    generated_at: None,
                    generated_by: Some(by.clone()),
                }))
        }

        async fn download_url(&self, key: &str, download_name: &str, ttl: Duration) -> Result<String, StoreError> {
            Ok(format!("memory://{key}?name={download_name}&ttl={}", ttl.as_secs()))
        }
    }
}
