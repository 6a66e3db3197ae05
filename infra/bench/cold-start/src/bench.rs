//! The measurements: init over N fresh processes, init after an idle second, then on one more
//! process the first invocation, the warm ones and the peak RSS; and the DynamoDB GetItem that
//! GET /presales/{id} makes, timed directly against the emulator.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use local_gateway::runtime_api::inherited_env;
use local_gateway::template::FunctionSpec;

use crate::events::{self, BenchEvent};
use crate::runtime::{Instance, Launch, peak_rss_kib};
use crate::stack::Stack;

/// hello-lambda's logical name in the tables.
pub const HELLO: &str = "hello-lambda";
const INIT_LIMIT: Duration = Duration::from_secs(10);

/// One binary to measure, with everything its process gets.
pub struct Subject {
    pub name: String,
    pub binary: PathBuf,
    pub env: BTreeMap<String, String>,
    pub function_arn: String,
    pub timeout: Duration,
    pub event: Option<BenchEvent>,
    /// Why there is no event, when there is none.
    pub no_event: Option<String>,
}

#[derive(Debug, Default)]
pub struct Figures {
    pub init: Vec<Duration>,
    pub idle_init: Vec<Duration>,
    pub first: Option<Duration>,
    pub warm: Vec<Duration>,
    pub peak_rss_kib: Option<u64>,
    /// What the function answered (e.g. `HTTP 200`), or why it was not measured.
    pub answer: String,
    pub failed: bool,
}

/// The environment Lambda (and the local gateway, `runtime_api.rs`'s `child_env`, which is
/// private to its process pool) gives a function: the template's variables, the runtime's own,
/// static emulator credentials, the emulator's endpoint and `PATH`/`HOME`/`RUST_LOG` from here.
pub fn lambda_env(stack: &Stack, name: &str, spec: Option<&FunctionSpec>) -> BTreeMap<String, String> {
    let resources = &stack.resources;
    let mut env = spec.map(|s| s.env.clone()).unwrap_or_default();
    let memory = spec.map_or(128, |s| s.memory_mb);
    env.extend(local_gateway::runtime_api::lambda_env(
        name,
        memory,
        &resources.region,
        "2026/11/30/[$LATEST]coldstart",
    ));
    if let Some(format) = spec.and_then(|s| s.log_format.clone()) {
        env.insert("AWS_LAMBDA_LOG_FORMAT".into(), format);
    }
    if let Some(level) = spec.and_then(|s| s.log_level.clone()) {
        env.insert("AWS_LAMBDA_LOG_LEVEL".into(), level);
    }
    if let Some(endpoint) = &resources.endpoint_url {
        env.insert("AWS_ENDPOINT_URL".into(), endpoint.clone());
    }
    env.extend(inherited_env(
        std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
    ));
    env
}

pub struct Plan<'a> {
    pub runs: usize,
    pub idle_runs: usize,
    pub idle: Duration,
    pub warm: usize,
    pub log_dir: &'a Path,
}

fn launch<'a>(subject: &'a Subject, log: &'a Path) -> Launch<'a> {
    Launch {
        binary: &subject.binary,
        env: &subject.env,
        log,
        function_arn: &subject.function_arn,
        timeout: subject.timeout,
    }
}

/// Measures every subject; subjects are interleaved round by round so that drift in the
/// machine's state (other load, caches) spreads over all of them alike.
pub async fn measure(subjects: &[Subject], plan: &Plan<'_>) -> Vec<Figures> {
    let mut figures: Vec<Figures> = subjects.iter().map(|_| Figures::default()).collect();
    let logs: Vec<PathBuf> = subjects
        .iter()
        .map(|s| plan.log_dir.join(format!("{}.log", s.name)))
        .collect();
    for round in 0..plan.runs {
        eprint!("\rinit: round {}/{}", round + 1, plan.runs);
        for ((subject, f), log) in subjects.iter().zip(&mut figures).zip(&logs) {
            if f.failed {
                continue;
            }
            match Instance::start(&launch(subject, log), INIT_LIMIT).await {
                Ok((instance, init)) => {
                    f.init.push(init);
                    instance.stop().await;
                }
                Err(e) => fail(f, &subject.name, &format!("init failed: {e}"), log),
            }
        }
    }
    eprintln!();
    for round in 0..plan.idle_runs {
        eprint!(
            "\rinit after {:?} idle: round {}/{}",
            plan.idle,
            round + 1,
            plan.idle_runs
        );
        for ((subject, f), log) in subjects.iter().zip(&mut figures).zip(&logs) {
            if f.failed {
                continue;
            }
            tokio::time::sleep(plan.idle).await;
            match Instance::start(&launch(subject, log), INIT_LIMIT).await {
                Ok((instance, init)) => {
                    f.idle_init.push(init);
                    instance.stop().await;
                }
                Err(e) => fail(f, &subject.name, &format!("init failed: {e}"), log),
            }
        }
    }
    eprintln!();
    for ((subject, f), log) in subjects.iter().zip(&mut figures).zip(&logs) {
        if f.failed {
            continue;
        }
        eprintln!("invocations: {}", subject.name);
        invocations(subject, f, plan, log).await;
    }
    figures
}

fn fail(f: &mut Figures, name: &str, why: &str, log: &Path) {
    eprintln!("\n{name}: {why} (its output: {})", log.display());
    f.failed = true;
    f.answer = why.to_owned();
}

async fn invocations(subject: &Subject, f: &mut Figures, plan: &Plan<'_>, log: &Path) {
    let (mut instance, _) = match Instance::start(&launch(subject, log), INIT_LIMIT).await {
        Ok(started) => started,
        Err(e) => return fail(f, &subject.name, &format!("init failed: {e}"), log),
    };
    let Some(event) = &subject.event else {
        f.answer = subject.no_event.clone().unwrap_or_else(|| "no event".into());
        f.peak_rss_kib = instance.pid().and_then(peak_rss_kib);
        instance.stop().await;
        return;
    };
    for i in 0..=plan.warm {
        match instance.invoke(&event.payload).await {
            Ok((elapsed, crate::runtime::Outcome::Response(payload))) => match events::check(event.expect, &payload) {
                Ok(answer) => {
                    if i == 0 {
                        f.first = Some(elapsed);
                        f.answer = answer;
                    } else {
                        f.warm.push(elapsed);
                    }
                }
                Err(why) => {
                    f.answer = format!("invocation {i}: {why}");
                    f.failed = true;
                    break;
                }
            },
            Ok((_, crate::runtime::Outcome::Error { error_type, message })) => {
                f.answer = format!("invocation {i}: {error_type}: {message}");
                f.failed = true;
                break;
            }
            Err(e) => {
                f.answer = format!("invocation {i}: {e}");
                f.failed = true;
                break;
            }
        }
    }
    // Read just before the kill: the high-water mark over init and every invocation.
    f.peak_rss_kib = instance.pid().and_then(peak_rss_kib);
    instance.stop().await;
}

/// `count` consistent GetItems of the pre-sale's `META` item, as presale-intake's GET makes it
/// (`backoffice_store::presales`), after one unmeasured call that opens the connection.
pub async fn direct_get_item(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    presale_id: &str,
    count: usize,
) -> Result<Vec<Duration>, String> {
    let mut samples = Vec::with_capacity(count);
    for i in 0..=count {
        let started = Instant::now();
        let output = dynamodb
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S(format!("PRESALE#{presale_id}")))
            .key("sk", AttributeValue::S("META".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
        let elapsed = started.elapsed();
        if output.item.is_none() {
            return Err(format!("no item PRESALE#{presale_id} / META in {table}"));
        }
        if i > 0 {
            samples.push(elapsed);
        }
    }
    Ok(samples)
}
