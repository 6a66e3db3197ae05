//! Wiring only: clients are configured at init, each built on its first use and reused by every
//! invocation after (ADR 0033). One binary consumes the billing queue and runs the scheduled sweep
//! of invoices not yet e-mailed.

use aws_lambda_events::sqs::SqsEvent;
use backoffice_domain::SystemClock;
use backoffice_edge::http::Invocation;
use backoffice_edge::mail::SesMailer;
use backoffice_edge::secrets::{CachedSecret, SecretsManagerSource};
use backoffice_edge::{aws, config, telemetry};
use backoffice_store::config::DynamoCampaignDirectory;
use backoffice_store::documents::S3DocumentStore;
use backoffice_store::invoices::DynamoInvoiceStore;
use invoice_issue::sunat::{SecretIssuerKeys, SoapTaxAuthority};
use invoice_issue::{Issuer, Sender, SeriesHeads};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let invoices_table = config::required("INVOICES_TABLE")?;
    let config_table = config::required("CONFIG_TABLE")?;
    let bucket = config::required("INVOICES_BUCKET")?;
    let sender = config::required("INVOICE_SENDER")?;
    let configuration_set = config::optional("SES_CONFIGURATION_SET");
    // SUNAT's billService (production, beta) or an OSE's, and the secret (name or ARN) holding
    // each issuer's certificate, key and SOL credentials: read at run time, never from here.
    let sunat_endpoint = config::required("SUNAT_ENDPOINT")?;
    let signing_secret = config::required("EINVOICE_SECRET_ID")?;
    let sunat_timeout: u64 = config::number_or("SUNAT_TIMEOUT_SECS", 20)?;
    let sdk = aws::sdk_config()?;
    let dynamodb = aws::dynamodb(&sdk);
    let issuer = Issuer {
        invoices: DynamoInvoiceStore::new(dynamodb.clone(), invoices_table),
        billing: DynamoCampaignDirectory::new(dynamodb, config_table).cached_for(config::config_cache_ttl()?),
        documents: S3DocumentStore::new(aws::s3(&sdk), bucket),
        mailer: SesMailer::new(aws::sesv2(&sdk), configuration_set),
        clock: SystemClock,
        sender: Sender { address: sender },
        authority: SoapTaxAuthority::new(sunat_endpoint, std::time::Duration::from_secs(sunat_timeout)),
        keys: SecretIssuerKeys::new(CachedSecret::new(
            SecretsManagerSource::new(aws::secretsmanager(&sdk)),
            SystemClock,
            signing_secret,
        )),
        heads: SeriesHeads::default(),
    };
    let issuer = &issuer;
    let metrics = &telemetry::Metrics::init("invoice-issue");
    run(service_fn(move |event: LambdaEvent<Value>| {
        metrics.around(async move {
            // SQS batches carry Records; anything else is the schedule's tick.
            if event.payload.get("Records").is_some() {
                let batch: SqsEvent = serde_json::from_value(event.payload)?;
                let deadline = Invocation::from_context(&event.context).deadline;
                Ok::<Value, Error>(serde_json::to_value(issuer.handle(batch, deadline).await)?)
            } else {
                let deadline = Invocation::from_context(&event.context).deadline;
                Ok(issuer.sweep(deadline).await?)
            }
        })
    }))
    .await
}
