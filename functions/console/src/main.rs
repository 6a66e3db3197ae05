//! Wiring only: the configuration is read once at init; the assets are in the binary. The
//! function calls no AWS service (its role has no policy of its own).

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use backoffice_edge::telemetry;
use console::{ASSETS, Console, ConsoleConfig};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = ConsoleConfig::from_env(|name| std::env::var(name).ok());
    if let Err(e) = &config {
        // Still serve the app: config.json explains the problem to whoever opens it.
        tracing::error!(error = %e, error_kind = "console_misconfigured", "the console's sign-in is not configured");
    }
    let console = &Console { config, assets: ASSETS };
    let metrics = &telemetry::Metrics::init("console");
    run(service_fn(move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
        metrics.around(async move { Ok::<_, Error>(console.handle(&event.payload)) })
    }))
    .await
}
