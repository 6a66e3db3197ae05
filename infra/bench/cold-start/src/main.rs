//! Cold-start benchmark (issue 14, item 2). `cold-start seed` makes what the events need on a
//! running local stack through its public API; `cold-start run` spawns each function's binary
//! (and hello-lambda's) against its own minimal Lambda Runtime API, with the environment the
//! template gives it and the emulator's endpoint, and prints init, invocation and memory figures
//! beside hello-lambda's. `infra/bench/cold-start.sh` does both around a stack of its own.

mod bench;
mod events;
mod report;
mod runtime;
mod seed;
mod stack;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::bench::{HELLO, Plan, Subject};
use crate::stack::Stack;

#[derive(Parser)]
#[command(
    name = "cold-start",
    about = "Cold starts of the template's functions beside hello-lambda"
)]
struct Cli {
    /// The stack's description, written by `infra/local/up`.
    #[arg(long, default_value = ".local/coldstart/stack.json")]
    stack: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register, record, approve and follow one sale through the API; write what the events need.
    Seed {
        #[arg(long)]
        out: PathBuf,
    },
    /// Measure every function of the template and hello-lambda.
    Run {
        /// What `seed` wrote.
        #[arg(long)]
        seed: PathBuf,
        /// Where the binaries are (target/release; target/debug only for trying the benchmark).
        #[arg(long)]
        bin_dir: PathBuf,
        /// Shown in the title, e.g. "release" or "debug (NOT representative)".
        #[arg(long, default_value = "release")]
        build: String,
        /// Fresh processes per function for the init figures.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Starts after an idle pause per function.
        #[arg(long, default_value_t = 5)]
        idle_runs: usize,
        /// The idle pause, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        idle_ms: u64,
        /// Warm invocations after the first.
        #[arg(long, default_value_t = 50)]
        warm: usize,
        /// The functions' output goes to <log-dir>/<name>.log.
        #[arg(long)]
        log_dir: PathBuf,
        /// Only these logical ids (hello-lambda is always measured).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Stack(#[from] stack::StackError),
    #[error(transparent)]
    Seed(#[from] seed::SeedError),
    #[error(transparent)]
    Event(#[from] events::EventError),
    #[error("{path}: {detail}")]
    File { path: String, detail: String },
    #[error("{0} not found (build it first)")]
    NoBinary(String),
}

fn file_error(path: &std::path::Path, detail: impl ToString) -> CliError {
    CliError::File {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

async fn dynamodb(stack: &Stack) -> aws_sdk_dynamodb::Client {
    let credentials = aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "cold-start");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(stack.info.region.clone()))
        .endpoint_url(&stack.info.endpoint_url)
        .credentials_provider(credentials)
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&sdk)
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let stack = Stack::load(&cli.stack)?;
    let dynamodb = dynamodb(&stack).await;
    match cli.command {
        Command::Seed { out } => {
            let seed = seed::seed(&stack, &dynamodb).await?;
            let text = serde_json::to_string_pretty(&seed).map_err(|e| file_error(&out, e))?;
            std::fs::write(&out, text).map_err(|e| file_error(&out, e))?;
            eprintln!("seed: written to {}", out.display());
            Ok(())
        }
        Command::Run {
            seed,
            bin_dir,
            build,
            runs,
            idle_runs,
            idle_ms,
            warm,
            log_dir,
            only,
        } => {
            let text = std::fs::read_to_string(&seed).map_err(|e| file_error(&seed, e))?;
            let seed: seed::Seed = serde_json::from_str(&text).map_err(|e| file_error(&seed, e))?;
            std::fs::create_dir_all(&log_dir).map_err(|e| file_error(&log_dir, e))?;
            let subjects = subjects(&stack, &seed, &bin_dir, &only)?;
            let plan = Plan {
                runs,
                idle_runs,
                idle: Duration::from_millis(idle_ms),
                warm,
                log_dir: &log_dir,
            };
            let figures = bench::measure(&subjects, &plan).await;
            let get_item =
                bench::direct_get_item(&dynamodb, &stack.reference("PresalesTable")?, &seed.presale_id, warm).await;
            let context = report::Context {
                build: &build,
                runs,
                idle_runs,
                idle: plan.idle,
                warm,
                get_item,
            };
            println!("{}", report::render(&subjects, &figures, &context));
            Ok(())
        }
    }
}

/// hello-lambda first, then the template's functions in its order.
fn subjects(
    stack: &Stack,
    seed: &seed::Seed,
    bin_dir: &std::path::Path,
    only: &[String],
) -> Result<Vec<Subject>, CliError> {
    let binary = |name: &str| {
        let path = bin_dir.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(CliError::NoBinary(path.display().to_string()))
        }
    };
    let mut subjects = vec![Subject {
        name: HELLO.to_owned(),
        binary: binary(HELLO)?,
        env: bench::lambda_env(stack, HELLO, None),
        function_arn: stack.resources.function_arn(HELLO),
        timeout: Duration::from_secs(3),
        event: Some(events::for_hello(stack, seed)?),
        no_event: None,
    }];
    for spec in &stack.template.functions {
        if !only.is_empty() && !only.contains(&spec.logical_id) {
            continue;
        }
        let name = stack.resources.function_name(&spec.logical_id);
        let event = events::for_function(stack, seed, &spec.logical_id)?;
        subjects.push(Subject {
            name: spec.logical_id.clone(),
            binary: binary(&spec.binary)?,
            env: bench::lambda_env(stack, &name, Some(spec)),
            function_arn: stack.resources.function_arn(&spec.logical_id),
            timeout: Duration::from_secs(spec.timeout_secs),
            no_event: event
                .is_none()
                .then(|| "no realistic event defined: init and RSS only".to_owned()),
            event,
        });
    }
    Ok(subjects)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cold-start: {e}");
            ExitCode::FAILURE
        }
    }
}
