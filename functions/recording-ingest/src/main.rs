//! Wiring only: clients are configured at init, each built on its first use and reused by every
//! invocation after (ADR 0033). One binary consumes the recordings queue and runs the scheduled
//! sweep of waiting recordings.

use aws_lambda_events::sqs::SqsEvent;
use backoffice_domain::SystemClock;
use backoffice_edge::http::Invocation;
use backoffice_edge::{aws, config, telemetry};
use backoffice_store::config::DynamoCampaignDirectory;
use backoffice_store::presales::DynamoPresaleStore;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use recording_analysis::AnalysisConfig;
use recording_ingest::ingest::{DEFAULT_MAX_OBJECT_BYTES, Ingest};
use recording_ingest::source::S3Source;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let presales_table = config::required("PRESALES_TABLE")?;
    let config_table = config::required("CONFIG_TABLE")?;
    let sdk = aws::sdk_config()?;
    let dynamodb = aws::dynamodb(&sdk);
    let ingest = Ingest {
        presales: DynamoPresaleStore::new(dynamodb.clone(), presales_table),
        campaigns: DynamoCampaignDirectory::new(dynamodb, config_table).cached_for(config::config_cache_ttl()?),
        source: S3Source::new(aws::s3(&sdk)),
        clock: SystemClock,
        analysis: AnalysisConfig::default(),
        max_object_bytes: config::number_or("RECORDING_MAX_BYTES", DEFAULT_MAX_OBJECT_BYTES)?,
    };
    let ingest = &ingest;
    let metrics = &telemetry::Metrics::init("recording-ingest");
    run(service_fn(move |event: LambdaEvent<Value>| {
        metrics.around(async move {
            let deadline = Invocation::from_context(&event.context).deadline;
            // SQS batches carry Records; anything else is the schedule's tick.
            if event.payload.get("Records").is_some() {
                let batch: SqsEvent = serde_json::from_value(event.payload)?;
                Ok::<Value, Error>(serde_json::to_value(ingest.handle(batch, deadline).await)?)
            } else {
                Ok(serde_json::to_value(ingest.bind_waiting(deadline).await?)?)
            }
        })
    }))
    .await
}
