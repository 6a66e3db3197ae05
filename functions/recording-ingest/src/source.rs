//! Where recordings are read from: a port, and its S3 adapter that streams the object body
//! (never buffering it whole) into a blocking reader for the decoder.

use std::collections::HashMap;
use std::io::Read;

use async_trait::async_trait;
use backoffice_store::sdk::SdkClient;

/// An opened object: its body as a stream, and what S3 says about it.
pub struct OpenedObject {
    pub reader: Box<dyn Read + Send + Sync>,
    pub version_id: Option<String>,
    pub size: Option<u64>,
    /// User metadata (`x-amz-meta-*`), names lower-cased without the prefix.
    pub metadata: HashMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Deleted (or never there) by the time the event is processed: nothing to analyze.
    #[error("object not found")]
    NotFound,
    /// Transient: retry the message.
    #[error("object store unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait RecordingSource: Send + Sync {
    /// Open the object; must be called from a Tokio runtime, and the reader must be read from a
    /// blocking thread (it waits on the runtime for each chunk).
    async fn open(&self, bucket: &str, key: &str, version_id: Option<&str>) -> Result<OpenedObject, SourceError>;
}

pub struct S3Source {
    client: SdkClient<aws_sdk_s3::Client>,
}

impl S3Source {
    pub fn new(client: impl Into<SdkClient<aws_sdk_s3::Client>>) -> Self {
        Self { client: client.into() }
    }
}

#[async_trait]
impl RecordingSource for S3Source {
    async fn open(&self, bucket: &str, key: &str, version_id: Option<&str>) -> Result<OpenedObject, SourceError> {
        use aws_sdk_s3::error::SdkError;
        let output = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
            .map_err(|err| match &err {
                SdkError::ServiceError(e) if e.err().is_no_such_key() => SourceError::NotFound,
                SdkError::ServiceError(e) if e.raw().status().as_u16() == 404 => SourceError::NotFound,
                _ => SourceError::Unavailable(format!("{err}")),
            })?;
        let metadata = output
            .metadata()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let size = output.content_length().and_then(|n| u64::try_from(n).ok());
        let version_id = output.version_id().map(str::to_owned).filter(|v| v != "null");
        let reader = tokio_util::io::SyncIoBridge::new(output.body.into_async_read());
        Ok(OpenedObject {
            reader: Box::new(reader),
            version_id,
            size,
            metadata,
        })
    }
}

#[cfg(test)]
pub use memory::MemorySource;

/// Objects held in memory, for handler tests (never compiled into the function).
#[cfg(test)]
mod memory {
    use std::collections::HashMap;

    use super::*;

    /// (bucket, key) → (bytes, user metadata).
    type Objects = HashMap<(String, String), (Vec<u8>, HashMap<String, String>)>;

    /// Objects held in memory, for handler tests.
    #[derive(Default)]
    pub struct MemorySource {
        objects: std::sync::Mutex<Objects>,
    }

    impl MemorySource {
        pub fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>, metadata: &[(&str, &str)]) {
            if let Ok(mut objects) = self.objects.lock() {
                let metadata = metadata
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect();
                objects.insert((bucket.to_owned(), key.to_owned()), (bytes, metadata));
            }
        }
    }

    #[async_trait]
    impl RecordingSource for MemorySource {
        async fn open(&self, bucket: &str, key: &str, _version_id: Option<&str>) -> Result<OpenedObject, SourceError> {
            let objects = self
                .objects
                .lock()
                .map_err(|_| SourceError::Unavailable("poisoned".into()))?;
            let (bytes, metadata) = objects
                .get(&(bucket.to_owned(), key.to_owned()))
                .cloned()
                .ok_or(SourceError::NotFound)?;
            let size = Some(bytes.len() as u64);
            Ok(OpenedObject {
                reader: Box::new(std::io::Cursor::new(bytes)),
                version_id: None,
                size,
                metadata,
            })
        }
    }
}
