//! Wiring only: clients are configured at init, each built on its first use and reused by every
//! invocation after (ADR 0033). The schedule's tick (`{}`) dunns every client for its local today;
//! `{"date": "YYYY-MM-DD"}` and `{"client_id": …}` narrow a run started by hand.

use backoffice_domain::SystemClock;
use backoffice_edge::http::Invocation;
use backoffice_edge::mail::SesMailer;
use backoffice_edge::{aws, config, telemetry};
use backoffice_store::config::DynamoCampaignDirectory;
use backoffice_store::invoices::DynamoInvoiceStore;
use backoffice_store::reminders::DynamoReminderStore;
use dunning::{Dunning, RunRequest, Sender, Settings};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let invoices_table = config::required("INVOICES_TABLE")?;
    let config_table = config::required("CONFIG_TABLE")?;
    let sender = config::required("INVOICE_SENDER")?;
    let configuration_set = config::optional("SES_CONFIGURATION_SET");
    let settings = Settings {
        catch_up_days: config::number_or("DUNNING_CATCH_UP_DAYS", Settings::default().catch_up_days)?,
    };
    let sdk = aws::sdk_config()?;
    let dynamodb = aws::dynamodb(&sdk);
    let dunning = Dunning {
        clients: DynamoCampaignDirectory::new(dynamodb.clone(), config_table),
        accounts: DynamoInvoiceStore::new(dynamodb.clone(), invoices_table.clone()),
        reminders: DynamoReminderStore::new(dynamodb, invoices_table),
        mailer: SesMailer::new(aws::sesv2(&sdk), configuration_set),
        clock: SystemClock,
        sender: Sender { address: sender },
        settings,
    };
    let dunning = &dunning;
    let metrics = &telemetry::Metrics::init("dunning");
    run(service_fn(move |event: LambdaEvent<Value>| {
        metrics.around(async move {
            let request = RunRequest::from_event(&event.payload)?;
            let deadline = Invocation::from_context(&event.context).deadline;
            let report = dunning.run(&request, deadline).await?;
            Ok::<Value, Error>(serde_json::to_value(report)?)
        })
    }))
    .await
}
