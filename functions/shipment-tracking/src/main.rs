//! Wiring only: clients are configured at init and built on first use (ADR 0033); the couriers'
//! secrets are read from Secrets Manager at run time and cached (never copied into the
//! environment).

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use backoffice_domain::SystemClock;
use backoffice_domain::events::{Event, ShipmentReturned};
use backoffice_edge::http::Invocation;
use backoffice_edge::relay::SqsPublisher;
use backoffice_edge::secrets::{CachedSecret, SecretsManagerSource};
use backoffice_edge::{aws, config, telemetry};
use backoffice_store::shipments::DynamoShipmentStore;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shipment_tracking::{ManagedCourierSecrets, Tracking};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let shipments_table = config::required("SHIPMENTS_TABLE")?;
    // The secret's name or ARN; its value is {"olva": "…", "urbano": ["current", "next"]}: one
    // secret per courier, or two while it rotates.
    let secrets_id = config::required("COURIER_SECRETS_ID")?;
    let billing_queue_url = config::required("BILLING_QUEUE_URL")?;
    let sdk = aws::sdk_config()?;
    let tracking = Tracking {
        shipments: DynamoShipmentStore::new(aws::dynamodb(&sdk), shipments_table),
        clock: SystemClock,
        secrets: ManagedCourierSecrets {
            secret: CachedSecret::new(
                SecretsManagerSource::new(aws::secretsmanager(&sdk)),
                SystemClock,
                secrets_id,
            ),
        },
        publisher: SqsPublisher::new(
            aws::sqs(&sdk),
            [(ShipmentReturned::QUEUE.to_owned(), billing_queue_url)],
        ),
    };
    let tracking = &tracking;
    let metrics = &telemetry::Metrics::init("shipment-tracking");
    run(service_fn(move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
        metrics.around(async move {
            let invocation = Invocation::from_context(&event.context);
            Ok::<_, Error>(tracking.handle(event.payload, &invocation).await)
        })
    }))
    .await
}
