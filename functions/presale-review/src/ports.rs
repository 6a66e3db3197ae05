//! What the review needs from the outside world besides its store: playback links for
//! recordings, and a queue for the events it emits. Adapters for S3 and SQS below.

use std::time::Duration;

use async_trait::async_trait;
use backoffice_store::sdk::SdkClient;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PortError(pub String);

#[async_trait]
pub trait RecordingLinks: Send + Sync {
    /// A URL that plays exactly this object version, valid for `ttl`.
    async fn playback_url(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        ttl: Duration,
    ) -> Result<String, PortError>;
}

pub struct S3Links {
    client: SdkClient<aws_sdk_s3::Client>,
}

impl S3Links {
    pub fn new(client: impl Into<SdkClient<aws_sdk_s3::Client>>) -> Self {
        Self { client: client.into() }
    }
}

#[async_trait]
impl RecordingLinks for S3Links {
    async fn playback_url(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        ttl: Duration,
    ) -> Result<String, PortError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl).map_err(|e| PortError(e.to_string()))?;
        let request = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .presigned(config)
            .await
            .map_err(|e| PortError(e.to_string()))?;
        Ok(request.uri().to_owned())
    }
}
