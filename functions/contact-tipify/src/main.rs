//! Wiring only: clients are configured at init, each built on its first use and reused by every
//! invocation after (ADR 0033).

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use backoffice_domain::SystemClock;
use backoffice_edge::http::Invocation;
use backoffice_edge::{aws, config, telemetry};
use backoffice_store::config::DynamoCampaignDirectory;
use backoffice_store::contacts::DynamoContactStore;
use backoffice_store::presales::DynamoPresaleStore;
use contact_tipify::Tipify;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let contacts_table = config::required("CONTACTS_TABLE")?;
    let config_table = config::required("CONFIG_TABLE")?;
    let presales_table = config::required("PRESALES_TABLE")?;
    let sdk = aws::sdk_config()?;
    let dynamodb = aws::dynamodb(&sdk);
    let tipify = Tipify {
        contacts: DynamoContactStore::new(dynamodb.clone(), contacts_table, config_table.clone()),
        campaigns: DynamoCampaignDirectory::new(dynamodb.clone(), config_table),
        presales: DynamoPresaleStore::new(dynamodb, presales_table),
        clock: SystemClock,
    };
    let tipify = &tipify;
    let metrics = &telemetry::Metrics::init("contact-tipify");
    run(service_fn(move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
        metrics.around(async move {
            let invocation = Invocation::from_context(&event.context);
            Ok::<_, Error>(tipify.handle(event.payload, &invocation).await)
        })
    }))
    .await
}
