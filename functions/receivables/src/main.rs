//! Wiring only: the tables' clients are built once at init.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use backoffice_domain::SystemClock;
use backoffice_edge::http::Invocation;
use backoffice_edge::{aws, config, telemetry};
use backoffice_store::idempotency::DynamoIdempotencyStore;
use backoffice_store::invoices::DynamoInvoiceStore;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use receivables::Receivables;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let invoices_table = config::required("INVOICES_TABLE")?;
    let idempotency_table = config::required("IDEMPOTENCY_TABLE")?;
    let sdk = aws::sdk_config()?;
    let dynamodb = aws::dynamodb(&sdk);
    let receivables = Receivables {
        ledger: DynamoInvoiceStore::new(dynamodb.clone(), invoices_table),
        idempotency: DynamoIdempotencyStore::new(dynamodb, idempotency_table),
        clock: SystemClock,
    };
    let receivables = &receivables;
    let metrics = &telemetry::Metrics::init("receivables");
    run(service_fn(move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
        metrics.around(async move {
            let invocation = Invocation::from_context(&event.context);
            Ok::<_, Error>(receivables.handle(event.payload, &invocation).await)
        })
    }))
    .await
}
