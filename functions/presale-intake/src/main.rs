//! Wiring only: clients are configured at init, each built on its first use and reused by every
//! invocation after (ADR 0033).

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use backoffice_domain::SystemClock;
use backoffice_edge::config::Tables;
use backoffice_edge::http::Invocation;
use backoffice_edge::{aws, config, telemetry};
use backoffice_store::config::DynamoCampaignDirectory;
use backoffice_store::idempotency::DynamoIdempotencyStore;
use backoffice_store::presales::DynamoPresaleStore;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use presale_intake::Intake;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let tables = Tables::from_env()?;
    let sdk = aws::sdk_config()?;
    let dynamodb = aws::dynamodb(&sdk);
    let intake = Intake {
        presales: DynamoPresaleStore::new(dynamodb.clone(), tables.presales),
        campaigns: DynamoCampaignDirectory::new(dynamodb.clone(), tables.config)
            .cached_for(config::config_cache_ttl()?),
        idempotency: DynamoIdempotencyStore::new(dynamodb, tables.idempotency),
        clock: SystemClock,
    };
    let intake = &intake;
    let metrics = &telemetry::Metrics::init("presale-intake");
    run(service_fn(move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
        metrics.around(async move {
            let invocation = Invocation::from_context(&event.context);
            Ok::<_, Error>(intake.handle(event.payload, &invocation).await)
        })
    }))
    .await
}
