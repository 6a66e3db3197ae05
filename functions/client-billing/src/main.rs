//! Wiring only: clients are configured at init, each built on its first use and reused by every
//! invocation after (ADR 0033). One binary serves the HTTP routes and the monthly close.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use backoffice_domain::SystemClock;
use backoffice_domain::events::{Event, ServiceInvoiceRequested};
use backoffice_domain::zone::CampaignZone;
use backoffice_edge::http::Invocation;
use backoffice_edge::relay::SqsPublisher;
use backoffice_edge::{aws, config, telemetry};
use backoffice_store::billing::DynamoBillingRuns;
use backoffice_store::config::DynamoCampaignDirectory;
use backoffice_store::invoices::DynamoInvoiceStore;
use backoffice_store::kpis::DynamoKpiStore;
use backoffice_store::presales::DynamoPresaleStore;
use backoffice_store::reconciliation::DynamoApprovedSales;
use backoffice_store::register::S3RegisterFiles;
use client_billing::{Billing, CloseRequest};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

const BILLING_QUEUE: &str = ServiceInvoiceRequested::QUEUE;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let invoices_table = config::required("INVOICES_TABLE")?;
    let presales_table = config::required("PRESALES_TABLE")?;
    let contacts_table = config::required("CONTACTS_TABLE")?;
    let config_table = config::required("CONFIG_TABLE")?;
    let invoices_bucket = config::required("INVOICES_BUCKET")?;
    // The call center's own client id: the seller of the runs' invoices (ADR 0028).
    let call_center_id = config::required("CALL_CENTER_ID")?;
    let billing_queue_url = config::required("BILLING_QUEUE_URL")?;
    let zone = CampaignZone::parse(&config::required("BUSINESS_TIME_ZONE")?).map_err(|e| e.detail)?;
    let sdk = aws::sdk_config()?;
    let dynamodb = aws::dynamodb(&sdk);
    let billing = Billing {
        runs: DynamoBillingRuns::new(dynamodb.clone(), invoices_table.clone()),
        invoices: DynamoInvoiceStore::new(dynamodb.clone(), invoices_table),
        publisher: SqsPublisher::new(aws::sqs(&sdk), [(BILLING_QUEUE.to_owned(), billing_queue_url)]),
        call_center_id,
        contacts: DynamoKpiStore::new(dynamodb.clone(), contacts_table, presales_table.clone()),
        approved: DynamoApprovedSales::new(dynamodb.clone(), presales_table.clone()),
        presales: DynamoPresaleStore::new(dynamodb.clone(), presales_table),
        // Not cached: contracts are read a few times per close or preview, and an admin's
        // replacement must price the very next preview, whichever instance answers it.
        directory: DynamoCampaignDirectory::new(dynamodb, config_table),
        files: Arc::new(S3RegisterFiles::new(aws::s3(&sdk), invoices_bucket)),
        clock: SystemClock,
        zone,
    };
    let billing = &billing;
    let metrics = &telemetry::Metrics::init("client-billing");
    run(service_fn(move |event: LambdaEvent<Value>| {
        metrics.around(async move {
            // HTTP API events carry a requestContext; anything else is the monthly schedule.
            if event.payload.get("requestContext").is_some() {
                let request: ApiGatewayV2httpRequest = serde_json::from_value(event.payload)?;
                let invocation = Invocation::from_context(&event.context);
                Ok::<Value, Error>(serde_json::to_value(billing.handle(request, &invocation).await)?)
            } else {
                let request = CloseRequest::from_event(&event.payload)?;
                Ok(serde_json::to_value(billing.close_all(&request).await?)?)
            }
        })
    }))
    .await
}
