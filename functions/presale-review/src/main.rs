//! Wiring only: clients are configured at init, each built on its first use and reused by every
//! invocation after (ADR 0033). One binary serves the HTTP routes and the scheduled outbox sweep.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use backoffice_domain::SystemClock;
use backoffice_domain::events::{Event, SaleConfirmed};
use backoffice_edge::http::Invocation;
use backoffice_edge::relay::SqsPublisher;
use backoffice_edge::{aws, config, telemetry};
use backoffice_store::anchors::S3AuditAnchors;
use backoffice_store::config::DynamoCampaignDirectory;
use backoffice_store::presales::DynamoPresaleStore;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use presale_review::Review;
use presale_review::ports::S3Links;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let presales_table = config::required("PRESALES_TABLE")?;
    let config_table = config::required("CONFIG_TABLE")?;
    let sales_queue_url = config::required("SALES_QUEUE_URL")?;
    let anchors_bucket = config::required("AUDIT_ANCHORS_BUCKET")?;
    let lease_secs: i64 = config::number_or("REVIEW_LEASE_SECS", 600)?;
    let sdk = aws::sdk_config()?;
    let dynamodb = aws::dynamodb(&sdk);
    let s3 = aws::s3(&sdk);
    let review = Review {
        presales: DynamoPresaleStore::new(dynamodb.clone(), presales_table),
        campaigns: DynamoCampaignDirectory::new(dynamodb, config_table).cached_for(config::config_cache_ttl()?),
        links: S3Links::new(s3.clone()),
        anchors: S3AuditAnchors::new(s3, anchors_bucket),
        publisher: SqsPublisher::new(aws::sqs(&sdk), [(SaleConfirmed::QUEUE.to_owned(), sales_queue_url)]),
        clock: SystemClock,
        lease: time::Duration::seconds(lease_secs),
    };
    let review = &review;
    let metrics = &telemetry::Metrics::init("presale-review");
    run(service_fn(move |event: LambdaEvent<Value>| {
        metrics.around(async move {
            // HTTP API events carry a requestContext; anything else is the schedule's tick.
            if event.payload.get("requestContext").is_some() {
                let request: ApiGatewayV2httpRequest = serde_json::from_value(event.payload)?;
                let invocation = Invocation::from_context(&event.context);
                Ok::<Value, Error>(serde_json::to_value(review.handle(request, &invocation).await)?)
            } else {
                let deadline = Invocation::from_context(&event.context).deadline;
                Ok(serde_json::to_value(review.sweep(deadline).await?)?)
            }
        })
    }))
    .await
}
