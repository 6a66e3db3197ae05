//! Wiring only: clients are built once at init and reused by every invocation.

use aws_lambda_events::sqs::SqsEvent;
use backoffice_domain::SystemClock;
use backoffice_edge::{aws, config, telemetry};
use backoffice_store::config::DynamoCampaignDirectory;
use backoffice_store::presales::DynamoPresaleStore;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use recording_analysis::AnalysisConfig;
use recording_ingest::ingest::Ingest;
use recording_ingest::source::S3Source;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let presales_table = config::required("PRESALES_TABLE")?;
    let config_table = config::required("CONFIG_TABLE")?;
    let sdk = aws::sdk_config().await;
    let dynamodb = aws::dynamodb(&sdk);
    let ingest = Ingest {
        presales: DynamoPresaleStore::new(dynamodb.clone(), presales_table),
        campaigns: DynamoCampaignDirectory::new(dynamodb, config_table),
        source: S3Source::new(aws::s3(&sdk)),
        clock: SystemClock,
        analysis: AnalysisConfig::default(),
    };
    let ingest = &ingest;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(ingest.handle(event.payload).await)
    }))
    .await
}
