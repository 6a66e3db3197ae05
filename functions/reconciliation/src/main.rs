//! Wiring only: clients are configured at init, each built on its first use and reused by every
//! invocation after (ADR 0033). The schedule's tick (any event) runs one reconciliation; its counts
//! go to stdout as an EMF document.

use backoffice_domain::{Clock, SystemClock};
use backoffice_edge::{aws, config, telemetry};
use backoffice_store::reconciliation::{DynamoApprovedSales, DynamoInvoiceLookup, DynamoShipmentLookup};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use reconciliation::{Reconcile, Settings, emf};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let presales_table = config::required("PRESALES_TABLE")?;
    let shipments_table = config::required("SHIPMENTS_TABLE")?;
    let invoices_table = config::required("INVOICES_TABLE")?;
    let namespace = config::required("METRICS_NAMESPACE")?;
    let settings = Settings::new(
        config::number_or("RECONCILE_UNSHIPPED_AFTER_MINUTES", 30)?,
        config::number_or("RECONCILE_UNINVOICED_AFTER_MINUTES", 30)?,
        config::number_or("RECONCILE_LOOKBACK_HOURS", 168)?,
    )?;
    let sdk = aws::sdk_config()?;
    let dynamodb = aws::dynamodb(&sdk);
    let reconcile = Reconcile {
        approved: DynamoApprovedSales::new(dynamodb.clone(), presales_table),
        shipments: DynamoShipmentLookup::new(dynamodb.clone(), shipments_table),
        invoices: DynamoInvoiceLookup::new(dynamodb, invoices_table),
        clock: SystemClock,
        settings,
    };
    let (reconcile, namespace) = (&reconcile, namespace.as_str());
    let metrics = &telemetry::Metrics::init("reconciliation");
    run(service_fn(move |_: LambdaEvent<Value>| {
        metrics.around(async move {
            let report = reconcile.run().await?;
            // A line of its own on stdout: CloudWatch Logs extracts the metrics from it.
            println!("{}", emf(&report, namespace, SystemClock.now()));
            Ok::<Value, Error>(serde_json::to_value(report)?)
        })
    }))
    .await
}
