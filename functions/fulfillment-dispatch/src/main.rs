//! Wiring only: clients are configured at init, each built on its first use and reused by every
//! invocation after (ADR 0033). One binary consumes the sales queue and runs the scheduled outbox
//! sweep.

use aws_lambda_events::sqs::SqsEvent;
use backoffice_domain::SystemClock;
use backoffice_domain::events::{Event, InvoiceRequested};
use backoffice_edge::http::Invocation;
use backoffice_edge::relay::SqsPublisher;
use backoffice_edge::{aws, config, telemetry};
use backoffice_store::config::DynamoCampaignDirectory;
use backoffice_store::shipments::DynamoShipmentStore;
use fulfillment_dispatch::Dispatch;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let shipments_table = config::required("SHIPMENTS_TABLE")?;
    let config_table = config::required("CONFIG_TABLE")?;
    let billing_queue_url = config::required("BILLING_QUEUE_URL")?;
    let sdk = aws::sdk_config()?;
    let dynamodb = aws::dynamodb(&sdk);
    let dispatch = Dispatch {
        shipments: DynamoShipmentStore::new(dynamodb.clone(), shipments_table),
        campaigns: DynamoCampaignDirectory::new(dynamodb, config_table).cached_for(config::config_cache_ttl()?),
        publisher: SqsPublisher::new(
            aws::sqs(&sdk),
            [(InvoiceRequested::QUEUE.to_owned(), billing_queue_url)],
        ),
        clock: SystemClock,
    };
    let dispatch = &dispatch;
    let metrics = &telemetry::Metrics::init("fulfillment-dispatch");
    run(service_fn(move |event: LambdaEvent<Value>| {
        metrics.around(async move {
            // SQS batches carry Records; anything else is the schedule's tick.
            if event.payload.get("Records").is_some() {
                let batch: SqsEvent = serde_json::from_value(event.payload)?;
                Ok::<Value, Error>(serde_json::to_value(dispatch.handle(batch).await)?)
            } else {
                let deadline = Invocation::from_context(&event.context).deadline;
                Ok(serde_json::to_value(dispatch.sweep(deadline).await?)?)
            }
        })
    }))
    .await
}
