//! Audit anchors: chain heads kept outside the table, in an S3 bucket with Object Lock
//! (compliance mode, declared in the template), so that whoever can rewrite the pre-sales table
//! still cannot rewrite what the chain looked like when it was anchored.
//!
//! | key | body |
//! |---|---|
//! | `audit-anchors/{subject}/{hash}.json` | [`Anchor`] as JSON |
//!
//! One object per anchored head, written once (`If-None-Match: *`). The bucket is versioned (Object
//! Lock needs it), so a second write to a key makes a new version instead of replacing the first
//! one: [`AuditAnchors::anchors`] reads every version, and the verifier checks them all.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use backoffice_domain::audit::Anchor;

use crate::StoreError;
use crate::documents::s3_error;
use crate::sdk::SdkClient;

#[async_trait]
pub trait AuditAnchors: Send + Sync {
    /// Keep `anchor`; anchoring the same head again changes nothing.
    async fn anchor(&self, anchor: &Anchor) -> Result<(), StoreError>;
    /// Every anchor ever written for `subject`, every version of each.
    async fn anchors(&self, subject: &str) -> Result<Vec<Anchor>, StoreError>;
}

#[derive(Clone, Debug)]
pub struct S3AuditAnchors {
    client: SdkClient<aws_sdk_s3::Client>,
    bucket: String,
}

impl S3AuditAnchors {
    pub fn new(client: impl Into<SdkClient<aws_sdk_s3::Client>>, bucket: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            bucket: bucket.into(),
        }
    }
}

/// The folder of a subject's anchors. Subjects are our own ids (UUIDs), but a `/` would change
/// the folder, so it is refused rather than trusted.
fn prefix(subject: &str) -> Result<String, StoreError> {
    if subject.is_empty() || subject.contains('/') {
        return Err(StoreError::Backend(format!("{subject:?} cannot name an anchor folder")));
    }
    Ok(format!("audit-anchors/{subject}/"))
}

#[async_trait]
impl AuditAnchors for S3AuditAnchors {
    async fn anchor(&self, anchor: &Anchor) -> Result<(), StoreError> {
        let key = format!("{}{}.json", prefix(&anchor.subject)?, anchor.hash);
        let body = serde_json::to_vec(anchor).map_err(|e| StoreError::Backend(e.to_string()))?;
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .if_none_match("*")
            .body(ByteStream::from(body))
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            // Anchored before: the first write stands.
            Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 412) => Ok(()),
            Err(err) => Err(s3_error(err)),
        }
    }

    async fn anchors(&self, subject: &str) -> Result<Vec<Anchor>, StoreError> {
        let prefix = prefix(subject)?;
        let mut versions = Vec::new();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(s3_error)?;
            for version in page.versions() {
                if let Some(key) = version.key() {
                    versions.push((key.to_owned(), version.version_id().map(str::to_owned)));
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
        }
        let mut anchors = Vec::with_capacity(versions.len());
        for (key, version_id) in versions {
            let object = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&key)
                .set_version_id(version_id)
                .send()
                .await
                .map_err(s3_error)?;
            let bytes = object
                .body
                .collect()
                .await
                .map_err(|e| StoreError::Unavailable(format!("reading {key}: {e}")))?
                .into_bytes();
            let anchor: Anchor =
                serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(format!("anchor {key}: {e}")))?;
            // An object under another subject's folder or hash name is itself a forgery.
            if anchor.subject != subject || !key.ends_with(&format!("/{}.json", anchor.hash)) {
                return Err(StoreError::Corrupt(format!("anchor {key} names another head")));
            }
            anchors.push(anchor);
        }
        Ok(anchors)
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory twin, for handler tests.
// ---------------------------------------------------------------------------------------------

#[cfg(any(test, feature = "testing"))]
pub use memory::MemoryAuditAnchors;

#[cfg(any(test, feature = "testing"))]
mod memory {
    use std::sync::Mutex;

    use super::*;

    /// In-memory [`AuditAnchors`]: append-only, like the bucket.
    #[derive(Default)]
    pub struct MemoryAuditAnchors {
        anchors: Mutex<Vec<Anchor>>,
    }

    #[async_trait]
    impl AuditAnchors for MemoryAuditAnchors {
        async fn anchor(&self, anchor: &Anchor) -> Result<(), StoreError> {
            let mut anchors = self
                .anchors
                .lock()
                .map_err(|_| StoreError::Backend("poisoned".into()))?;
            if !anchors
                .iter()
                .any(|a| a.subject == anchor.subject && a.hash == anchor.hash)
            {
                anchors.push(anchor.clone());
            }
            Ok(())
        }

        async fn anchors(&self, subject: &str) -> Result<Vec<Anchor>, StoreError> {
            Ok(self
                .anchors
                .lock()
                .map_err(|_| StoreError::Backend("poisoned".into()))?
                .iter()
                .filter(|a| a.subject == subject)
                .cloned()
                .collect())
        }
    }
}
