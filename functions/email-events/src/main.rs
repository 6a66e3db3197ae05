//! Wiring only: the DynamoDB client is configured at init, built on its first use and reused after
//! (ADR 0033).

use aws_lambda_events::sqs::SqsEvent;
use backoffice_domain::SystemClock;
use backoffice_edge::{aws, config, telemetry};
use backoffice_store::invoices::DynamoInvoiceStore;
use email_events::EmailEvents;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let invoices_table = config::required("INVOICES_TABLE")?;
    let sdk = aws::sdk_config()?;
    let events = EmailEvents {
        invoices: DynamoInvoiceStore::new(aws::dynamodb(&sdk), invoices_table),
        clock: SystemClock,
    };
    let events = &events;
    let metrics = &telemetry::Metrics::init("email-events");
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        metrics.around(async move { Ok::<_, Error>(events.handle(event.payload).await) })
    }))
    .await
}
