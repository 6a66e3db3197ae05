//! The data lake: each campaign-day's Parquet file under its Hive partition, the layout the Glue
//! table `kpi_daily` reads (`infra/template.yaml`).

use async_trait::async_trait;
use backoffice_store::sdk::SdkClient;
use time::Date;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ExportFailed(pub String);

/// Where a day's file goes.
#[async_trait]
pub trait KpiExports: Send + Sync {
    /// Write (or replace) the object at `key`.
    async fn put(&self, key: &str, parquet: Vec<u8>) -> Result<(), ExportFailed>;
}

/// `reports/kpis/client=…/campaign=…/dt=YYYY-MM-DD/kpis.parquet`: one file per day, replaced
/// when the day is computed again, so a partition never holds two versions of a day.
pub fn partition_key(client_id: &str, campaign_id: &str, day: Date) -> String {
    format!("reports/kpis/client={client_id}/campaign={campaign_id}/dt={day}/kpis.parquet")
}

pub struct S3KpiExports {
    client: SdkClient<aws_sdk_s3::Client>,
    bucket: String,
}

impl S3KpiExports {
    pub fn new(client: impl Into<SdkClient<aws_sdk_s3::Client>>, bucket: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            bucket: bucket.into(),
        }
    }
}

#[async_trait]
impl KpiExports for S3KpiExports {
    async fn put(&self, key: &str, parquet: Vec<u8>) -> Result<(), ExportFailed> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/vnd.apache.parquet")
            .body(parquet.into())
            .send()
            .await
            .map_err(|e| {
                ExportFailed(format!(
                    "s3://{}/{key}: {}",
                    self.bucket,
                    aws_sdk_s3::error::DisplayErrorContext(e)
                ))
            })?;
        Ok(())
    }
}

/// The exports in memory, for handler tests.
#[cfg(test)]
#[derive(Default)]
pub struct MemoryExports {
    pub files: std::sync::Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
}

#[cfg(test)]
#[async_trait]
impl KpiExports for MemoryExports {
    async fn put(&self, key: &str, parquet: Vec<u8>) -> Result<(), ExportFailed> {
        self.files
            .lock()
            .map_err(|_| ExportFailed("poisoned".into()))?
            .insert(key.to_owned(), parquet);
        Ok(())
    }
}
