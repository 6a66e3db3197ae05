//! `local-gateway serve …` runs the template's functions locally; `local-gateway mint-token …`
//! prints a dev JWT the gateway accepts. See infra/local/README.md.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use local_gateway::{Gateway, GatewayConfig, jwt, template};

#[derive(Parser)]
#[command(
    name = "local-gateway",
    about = "HTTP API + JWT authorizer + SQS pollers + Lambda Runtime API for the SAM template"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the template's HTTP API and run its functions and SQS event sources.
    Serve {
        #[arg(long)]
        template: PathBuf,
        /// resources.json written by infra/local/provision.py.
        #[arg(long)]
        resources: PathBuf,
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// Where the functions' binaries are (target/debug).
        #[arg(long)]
        bin_dir: PathBuf,
        /// Each function's output goes to <log-dir>/<LogicalId>.log.
        #[arg(long)]
        log_dir: PathBuf,
        /// Processes per function at most.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        max_instances: u16,
        /// Failed SQS messages become visible again after this many seconds.
        #[arg(long, default_value_t = 2)]
        retry_delay_secs: u64,
        /// HS256 secret of the JWT authorizer.
        #[arg(long, env = "LOCAL_JWT_SECRET", hide_env_values = true)]
        jwt_secret: Option<String>,
        /// Do not run the template's rate schedules (tests invoke sweeps themselves).
        #[arg(long)]
        no_schedules: bool,
    },
    /// Print a token the gateway's JWT authorizer accepts (issuer and audience from the template).
    MintToken {
        #[arg(long)]
        template: PathBuf,
        #[arg(long)]
        resources: PathBuf,
        #[arg(long)]
        sub: String,
        #[arg(long)]
        role: String,
        /// Comma-separated client ids.
        #[arg(long, value_delimiter = ',', default_value = "")]
        clients: Vec<String>,
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u64,
        /// HS256 secret of the JWT authorizer.
        #[arg(long, env = "LOCAL_JWT_SECRET", hide_env_values = true)]
        jwt_secret: Option<String>,
    },
}

const NO_SECRET: &str = "LOCAL_JWT_SECRET is not set (the HS256 secret of the JWT authorizer; or pass --jwt-secret)";

fn init_logging() {
    let filter = std::env::var("LOCAL_GATEWAY_LOG")
        .ok()
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| {
            tracing_subscriber::EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,hyper=warn")
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .compact()
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::MintToken {
            template,
            resources,
            sub,
            role,
            clients,
            ttl_secs,
            jwt_secret,
        } => {
            let clients: Vec<String> = clients
                .into_iter()
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .collect();
            let Some(jwt_secret) = jwt_secret.filter(|s| !s.is_empty()) else {
                eprintln!("local-gateway mint-token: {NO_SECRET}");
                return ExitCode::FAILURE;
            };
            let minted = template::load_auth_config(&template, &resources)
                .map_err(|e| e.to_string())
                .and_then(|auth| {
                    jwt::mint(&jwt_secret, &auth, &sub, &role, &clients, ttl_secs).map_err(|e| e.to_string())
                });
            match minted {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("local-gateway mint-token: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve {
            template,
            resources,
            listen,
            bin_dir,
            log_dir,
            max_instances,
            retry_delay_secs,
            jwt_secret,
            no_schedules,
        } => {
            init_logging();
            let Some(jwt_secret) = jwt_secret.filter(|s| !s.is_empty()) else {
                tracing::error!("{NO_SECRET}");
                return ExitCode::FAILURE;
            };
            let config = GatewayConfig {
                template,
                resources,
                listen,
                bin_dir,
                log_dir,
                max_instances: usize::from(max_instances),
                retry_delay_secs,
                jwt_secret,
                sqs: true,
                schedules: !no_schedules,
                function_env: Default::default(),
            };
            let gateway = match Gateway::start(config).await {
                Ok(g) => g,
                Err(e) => {
                    tracing::error!("cannot start: {e}");
                    return ExitCode::FAILURE;
                }
            };
            wait_for_signal().await;
            tracing::info!("shutting down");
            gateway.shutdown().await;
            ExitCode::SUCCESS
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
