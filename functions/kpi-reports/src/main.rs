//! Wiring only: clients are configured at init, each built on its first use and reused by every
//! invocation after (ADR 0033). One binary serves the HTTP routes, the reports queue and the hourly
//! tick.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::sqs::SqsEvent;
use backoffice_domain::SystemClock;
use backoffice_domain::events::{Event, KpiDayRequested};
use backoffice_edge::http::Invocation;
use backoffice_edge::relay::SqsPublisher;
use backoffice_edge::{aws, config, telemetry};
use backoffice_store::config::DynamoCampaignDirectory;
use backoffice_store::kpis::DynamoKpiStore;
use kpi_reports::exports::S3KpiExports;
use kpi_reports::{Reports, Settings, TickRequest};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let contacts_table = config::required("CONTACTS_TABLE")?;
    let presales_table = config::required("PRESALES_TABLE")?;
    let config_table = config::required("CONFIG_TABLE")?;
    let reports_bucket = config::required("REPORTS_BUCKET")?;
    let reports_queue_url = config::required("REPORTS_QUEUE_URL")?;
    let defaults = Settings::default();
    let settings = Settings {
        window_days: config::number_or("KPI_WINDOW_DAYS", defaults.window_days)?,
        registration_lag: time::Duration::hours(config::number_or(
            "KPI_REGISTRATION_LAG_HOURS",
            defaults.registration_lag.whole_hours(),
        )?),
    };
    let sdk = aws::sdk_config()?;
    let dynamodb = aws::dynamodb(&sdk);
    let reports = Reports {
        store: DynamoKpiStore::new(dynamodb.clone(), contacts_table, presales_table),
        campaigns: DynamoCampaignDirectory::new(dynamodb, config_table).cached_for(config::config_cache_ttl()?),
        exports: Arc::new(S3KpiExports::new(aws::s3(&sdk), reports_bucket)),
        publisher: Arc::new(SqsPublisher::new(
            aws::sqs(&sdk),
            [(KpiDayRequested::QUEUE.to_owned(), reports_queue_url)],
        )),
        clock: SystemClock,
        settings,
    };
    let reports = &reports;
    let metrics = &telemetry::Metrics::init("kpi-reports");
    run(service_fn(move |event: LambdaEvent<Value>| {
        metrics.around(async move {
            // HTTP API events carry a requestContext, SQS batches Records; the rest is the tick.
            if event.payload.get("requestContext").is_some() {
                let request: ApiGatewayV2httpRequest = serde_json::from_value(event.payload)?;
                let invocation = Invocation::from_context(&event.context);
                Ok::<Value, Error>(serde_json::to_value(reports.handle(request, &invocation).await)?)
            } else if event.payload.get("Records").is_some() {
                let batch: SqsEvent = serde_json::from_value(event.payload)?;
                Ok(serde_json::to_value(reports.handle_queue(batch).await)?)
            } else {
                let request = TickRequest::from_event(&event.payload)?;
                Ok(serde_json::to_value(reports.tick(&request).await?)?)
            }
        })
    }))
    .await
}
