//! Generated documents (invoice PDFs): the port and its S3 adapter.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;

use crate::StoreError;
use crate::sdk::SdkClient;

#[async_trait]
pub trait DocumentStore: Send + Sync {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), StoreError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
}

#[derive(Clone, Debug)]
pub struct S3DocumentStore {
    client: SdkClient<aws_sdk_s3::Client>,
    bucket: String,
}

impl S3DocumentStore {
    pub fn new(client: impl Into<SdkClient<aws_sdk_s3::Client>>, bucket: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            bucket: bucket.into(),
        }
    }
}

/// An S3 SDK error as a [`StoreError`]: a 4xx is the request's fault (not retried), anything
/// else may pass.
pub(crate) fn s3_error<E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug>(
    err: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    match &err {
        aws_sdk_s3::error::SdkError::ServiceError(service) if service.raw().status().as_u16() < 500 => {
            StoreError::Backend(format!(
                "{}: {}",
                err.code().unwrap_or("Unknown"),
                err.message().unwrap_or_default()
            ))
        }
        _ => StoreError::Unavailable(format!("{err:?}")),
    }
}

#[async_trait]
impl DocumentStore for S3DocumentStore {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(s3_error)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(output) => {
                let data = output
                    .body
                    .collect()
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("reading {key}: {e}")))?;
                Ok(Some(data.into_bytes().to_vec()))
            }
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(err) => Err(s3_error(err)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory twin: the same conditions, for handler tests.
// ---------------------------------------------------------------------------------------------

#[cfg(any(test, feature = "testing"))]
pub use memory::MemoryDocumentStore;

#[cfg(any(test, feature = "testing"))]
mod memory {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// In-memory [`DocumentStore`] for unit tests.
    #[derive(Default)]
    pub struct MemoryDocumentStore {
        objects: Mutex<HashMap<String, Vec<u8>>>,
    }

    impl MemoryDocumentStore {
        pub fn keys(&self) -> Vec<String> {
            self.objects
                .lock()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        }
    }

    #[async_trait]
    impl DocumentStore for MemoryDocumentStore {
        async fn put(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> Result<(), StoreError> {
            self.objects
                .lock()
                .map_err(|_| StoreError::Backend("poisoned".into()))?
                .insert(key.to_owned(), bytes);
            Ok(())
        }

        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(self
                .objects
                .lock()
                .map_err(|_| StoreError::Backend("poisoned".into()))?
                .get(key)
                .cloned())
        }
    }
}
