//! Wiring only: clients and courier secrets are loaded once at init.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use backoffice_domain::SystemClock;
use backoffice_edge::http::Invocation;
use backoffice_edge::{aws, config, telemetry};
use backoffice_store::shipments::DynamoShipmentStore;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shipment_tracking::Tracking;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let shipments_table = config::required("SHIPMENTS_TABLE")?;
    // {"olva": "…", "urbano": ["current", "next"]}: one secret per courier, or two while it
    // rotates. From Secrets Manager through the template on AWS, from the local stack's
    // environment here.
    let secrets = shipment_tracking::courier_secrets(&config::required("COURIER_SECRETS")?).map_err(|e| {
        config::ConfigError::Invalid {
            name: "COURIER_SECRETS",
            detail: e.to_string(),
        }
    })?;
    let sdk = aws::sdk_config().await;
    let tracking = Tracking {
        shipments: DynamoShipmentStore::new(aws::dynamodb(&sdk), shipments_table),
        clock: SystemClock,
        secrets,
    };
    let tracking = &tracking;
    run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            let invocation = Invocation::from_context(&event.context);
            Ok::<_, Error>(tracking.handle(event.payload, &invocation).await)
        },
    ))
    .await
}
