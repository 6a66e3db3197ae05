//! Wiring only: the clients are configured at init, each built on its first use (ADR 0033).

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use backoffice_domain::SystemClock;
use backoffice_domain::events::{CreditNoteRequested, Event};
use backoffice_domain::zone::CampaignZone;
use backoffice_edge::http::Invocation;
use backoffice_edge::relay::SqsPublisher;
use backoffice_edge::{aws, config, telemetry};
use backoffice_store::idempotency::DynamoIdempotencyStore;
use backoffice_store::invoices::DynamoInvoiceStore;
use backoffice_store::register::S3RegisterFiles;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use receivables::Receivables;
use receivables::accounts::S3Links;
use receivables::register::{self, SalesRegisterApi};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let invoices_table = config::required("INVOICES_TABLE")?;
    let idempotency_table = config::required("IDEMPOTENCY_TABLE")?;
    let invoices_bucket = config::required("INVOICES_BUCKET")?;
    let billing_queue_url = config::required("BILLING_QUEUE_URL")?;
    let zone = CampaignZone::parse(&config::optional("BUSINESS_TIME_ZONE").unwrap_or_else(|| "America/Lima".into()))
        .map_err(|e| format!("BUSINESS_TIME_ZONE: {}", e.detail))?;
    let sdk = aws::sdk_config()?;
    let dynamodb = aws::dynamodb(&sdk);
    // One S3 client for the register files and the documents' links.
    let s3 = aws::s3(&sdk);
    let registers = &SalesRegisterApi {
        source: DynamoInvoiceStore::new(dynamodb.clone(), invoices_table.clone()),
        files: S3RegisterFiles::new(s3.clone(), invoices_bucket.clone()),
        clock: SystemClock,
        zone: zone.clone(),
    };
    let receivables = Receivables {
        ledger: DynamoInvoiceStore::new(dynamodb.clone(), invoices_table),
        idempotency: DynamoIdempotencyStore::new(dynamodb, idempotency_table),
        clock: SystemClock,
        links: Arc::new(S3Links {
            client: s3,
            bucket: invoices_bucket,
        }),
        publisher: Arc::new(SqsPublisher::new(
            aws::sqs(&sdk),
            [(CreditNoteRequested::QUEUE.to_owned(), billing_queue_url)],
        )),
        zone,
    };
    let receivables = &receivables;
    let metrics = &telemetry::Metrics::init("receivables");
    run(service_fn(move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
        metrics.around(async move {
            let invocation = Invocation::from_context(&event.context);
            let on_register = event
                .payload
                .route_key
                .as_deref()
                .is_some_and(|route| register::ROUTES.contains(&route));
            Ok::<_, Error>(if on_register {
                registers.handle(event.payload, &invocation).await
            } else {
                receivables.handle(event.payload, &invocation).await
            })
        })
    }))
    .await
}
