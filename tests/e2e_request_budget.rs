//! AWS requests per sale, counted (issue 14, item 3): one complete sale — registration, its
//! recording, review, dispatch, invoice and its e-mail — measured by the emulator's request
//! ledger (`GET /_local/requests`, infra/local/moto_server.py) and printed by service and
//! operation with DynamoDB's read and write units and what 1,000 such sales cost at AWS list
//! prices. It fails when a sale needs more than infra/bench/request-budget.json records: a
//! regression guard on counts, never on time.
//!
//! Counted: the functions' requests; the SQS requests of Lambda's event source mappings (the
//! gateway's pollers) that received or settled a message — an idle poll costs by the hour, not
//! by the sale; and the recorder's upload of the call (the S3 PutObject the test makes in its
//! place). Not counted: Secrets Manager reads, which the functions cache five minutes per
//! instance (shown apart: a refresh falls in a sale by the clock, not by the sale); the test's
//! own reads and waits, which is why the pre-sale is registered
//! here and its readiness read from the table, not polled through the API as
//! `Desk::ready_presale` does (each poll is a function's read). Measured on warm functions —
//! a first sale of the same desk goes before, unmeasured — since a cold start's reads are paid
//! once per instance, not per sale; and, where the gateway runs the template's rate schedules
//! (every profile but `test`), between two of their ticks, since a sweep's requests belong to
//! no sale. Its own test binary: it resets the emulator's ledger, which the requests of tests
//! running beside it would pollute.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use e2e_tests::desk::{Desk, desk, wav};
use e2e_tests::{Caller, TestEnv, repo_root, unique};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

// AWS list prices, us-east-1, on demand, as their pages show them on 2026-11-30; the cost per
// 1,000 sales is these times the counts measured.

/// <https://aws.amazon.com/dynamodb/pricing/on-demand/> (Standard table class): per million
/// write request units.
const DYNAMODB_PER_MILLION_WRITE_UNITS: f64 = 0.625;
/// Same page: per million read request units (a strongly consistent read of up to 4 KB is one,
/// an eventually consistent one half, a transactional one two).
const DYNAMODB_PER_MILLION_READ_UNITS: f64 = 0.125;
/// <https://aws.amazon.com/sqs/pricing/>: standard queues, per million requests past the free tier.
const SQS_PER_MILLION_REQUESTS: f64 = 0.40;
/// <https://aws.amazon.com/s3/pricing/> (S3 Standard): PUT, COPY, POST and LIST, per 1,000.
const S3_PER_THOUSAND_PUT_CLASS: f64 = 0.005;
/// Same page: GET, SELECT and every other request (HEAD included), per 1,000; DELETE is free.
const S3_PER_THOUSAND_GET_CLASS: f64 = 0.0004;
/// <https://aws.amazon.com/ses/pricing/>: outbound e-mail, per 1,000 (each recipient counts).
const SES_PER_THOUSAND_EMAILS: f64 = 0.10;
/// Same page: per GB of attachments (charged here on the whole raw message, an upper bound).
const SES_PER_GB_ATTACHMENTS: f64 = 0.12;
/// <https://aws.amazon.com/lambda/pricing/>: per million requests.
const LAMBDA_PER_MILLION_REQUESTS: f64 = 0.20;
/// Same page: per GB-second of duration, x86.
const LAMBDA_PER_GB_SECOND: f64 = 0.000_016_666_7;

/// The recorded budget of one sale.
const BUDGET: &str = "infra/bench/request-budget.json";
/// A sweep started on a schedule's tick is over by then (they take milliseconds).
const SWEEP_SETTLE: Duration = Duration::from_secs(5);
/// Sales measured at most, when a schedule's tick keeps falling inside the measurement.
const ATTEMPTS: usize = 3;

#[tokio::test]
async fn one_sale_stays_within_its_recorded_aws_request_budget() {
    let d = desk().await;
    let val = d.validator("val-1");
    let (template, _) = local_gateway::template::load(&d.env.info.template, &d.env.info.resources_file)
        .unwrap_or_else(|e| panic!("cannot read the template: {e}"));
    let memory_mb: HashMap<String, u64> = template
        .functions
        .iter()
        .map(|f| (f.logical_id.clone(), f.memory_mb))
        .collect();
    let consumed: Vec<String> = template
        .functions
        .iter()
        .flat_map(|f| f.sqs_sources.iter().map(|s| queue_logical_id(&d.env, &s.queue_url)))
        .collect();

    // Warm-up: every function of the path has started and cached what it caches.
    let started = Instant::now();
    drain(&d.env, &consumed).await;
    one_sale(&d, &val).await;
    drain(&d.env, &consumed).await;
    let expected = started.elapsed().mul_f64(1.5) + SWEEP_SETTLE;

    let log_path = d.env.info.log_dir.join("gateway.log");
    let mut measured = None;
    for attempt in 1..=ATTEMPTS {
        let schedules = Schedules::read(&read_log(&log_path));
        if let Some(s) = &schedules {
            let next = s.next_tick(OffsetDateTime::now_utc());
            if next - OffsetDateTime::now_utc() < expected {
                let wait = next - OffsetDateTime::now_utc() + SWEEP_SETTLE;
                eprintln!(
                    "waiting {:.0} s for the schedules' tick at {next} to pass",
                    wait.as_seconds_f64()
                );
                tokio::time::sleep(wait.try_into().unwrap_or(SWEEP_SETTLE)).await;
            }
        }
        drain(&d.env, &consumed).await;
        ledger(&d.env, "DELETE").await;
        let from = OffsetDateTime::now_utc();
        let invoice = one_sale(&d, &val).await;
        drain(&d.env, &consumed).await;
        let report = ledger(&d.env, "GET").await;
        let to = OffsetDateTime::now_utc();
        if schedules
            .as_ref()
            .is_some_and(|s| s.next_tick(from - Duration::from_secs(1)) <= to)
        {
            eprintln!("attempt {attempt}: a scheduled sweep ran during the sale; measuring another one");
            continue;
        }
        measured = Some((invoice, report, from, to));
        break;
    }
    let (invoice, report, from, to) =
        measured.unwrap_or_else(|| panic!("every one of {ATTEMPTS} sales overlapped a scheduled sweep"));

    let recordings = d.env.resource("RecordingsBucket").reference.clone();
    let (lines, cached) = sale_lines(&report, &recordings);
    let invocations = invocations(&read_log(&log_path), from, to, &memory_mb);
    let email = sale_email(&d.env, &invoice).await;
    let table = render(&lines, cached, &invocations, &memory_mb, &email);
    println!("{table}");

    let budget: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join(BUDGET)).unwrap_or_else(|e| panic!("{BUDGET}: {e}")),
    )
    .unwrap_or_else(|e| panic!("{BUDGET}: {e}"));
    let limit = |name: &str| {
        budget[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{BUDGET} has no number {name}"))
    };
    let requests: u64 = lines.iter().map(|l| l.requests).sum();
    let read_units: f64 = lines.iter().map(|l| l.read_units).sum();
    let write_units: f64 = lines.iter().map(|l| l.write_units).sum();
    let over: Vec<String> = [
        ("requests", requests as f64),
        ("read_units", read_units),
        ("write_units", write_units),
    ]
    .into_iter()
    .filter(|(name, value)| *value > limit(name))
    .map(|(name, value)| format!("{name} {value} > {}", limit(name)))
    .collect();
    assert!(
        over.is_empty(),
        "one sale needs more than {BUDGET} allows ({}):\n{table}",
        over.join(", ")
    );
}

/// Register a pre-sale through the API, upload its recording as the recorder does, wait until
/// it is ready for review (read from the table, not through the API), then claim, approve and
/// follow the sale to its shipment and its e-mailed invoice (returned, as JSON).
async fn one_sale(d: &Desk, val: &Caller) -> Value {
    let call_id = unique("call");
    let body = d.presale_body(&call_id, OffsetDateTime::now_utc());
    let created = d.post(&d.agent, "/presales", Some(body)).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let key = d.recording_key(&call_id);
    d.env
        .s3
        .put_object()
        .bucket(&d.env.resource("RecordingsBucket").reference)
        .key(&key)
        .body(ByteStream::from(wav(8, 8)))
        .metadata("agent-id", "agent-7")
        .send()
        .await
        .expect("upload the recording");
    let started = Instant::now();
    loop {
        let items = d.env.partition("PresalesTable", &format!("PRESALE#{id}")).await;
        let status = items
            .iter()
            .find(|item| item.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("META"))
            .and_then(|item| item.get("status"))
            .and_then(|v| v.as_s().ok())
            .cloned();
        if status.as_deref() == Some("READY_FOR_REVIEW") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{id} never READY_FOR_REVIEW: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let sale = d.approve(val, &id).await;
    d.wait_shipment(&sale).await;
    d.wait_invoice(&sale).await
}

/// The logical id of a queue, by its URL.
fn queue_logical_id(env: &TestEnv, url: &str) -> String {
    env.resources
        .resources
        .iter()
        .find(|(_, r)| r.reference == url)
        .map(|(id, _)| id.clone())
        .unwrap_or_else(|| panic!("no resource has the queue URL {url}"))
}

/// Every queue a function consumes has nothing visible or in flight: what was sent to them has
/// been processed (dead-letter queues have no consumer, and cause no requests).
async fn drain(env: &TestEnv, queues: &[String]) {
    for queue in queues {
        env.drain(queue).await;
    }
}

async fn ledger(env: &TestEnv, method: &str) -> Value {
    let url = format!("{}/_local/requests", env.info.endpoint_url.trim_end_matches('/'));
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let reply = env
        .http
        .request(method, &url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    assert!(reply.status().is_success(), "{url}: {}", reply.status());
    reply.json().await.unwrap_or_else(|e| panic!("{url}: not JSON: {e}"))
}

/// One line of the table: requests a sale made of one operation, by one kind of caller.
struct Line {
    service: String,
    operation: String,
    caller: &'static str,
    requests: u64,
    read_units: f64,
    write_units: f64,
}

/// The ledger's rows that belong to the sale (see the module's documentation), and the
/// functions' Secrets Manager requests, left out of them.
fn sale_lines(report: &Value, recordings_bucket: &str) -> (Vec<Line>, u64) {
    let number = |v: &Value, name: &str| v[name].as_f64().unwrap_or(0.0);
    let mut lines = Vec::new();
    let mut cached = 0;
    for row in report["rows"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let text = |name: &str| row[name].as_str().unwrap_or_default().to_owned();
        let (caller, service, operation) = (text("caller"), text("service"), text("operation"));
        let (caller, requests, read_units, write_units) = match caller.as_str() {
            "function" if service == "secretsmanager" => {
                cached += number(row, "requests") as u64;
                continue;
            }
            "function" => (
                "function",
                number(row, "requests"),
                number(row, "read_units"),
                number(row, "write_units"),
            ),
            "event-source" => (
                "event source",
                number(row, "requests") - number(row, "empty_receives"),
                0.0,
                0.0,
            ),
            _ if service == "s3" && operation == "PutObject" => {
                let upload = &row["by_resource"][recordings_bucket];
                ("recorder", number(upload, "requests"), 0.0, 0.0)
            }
            _ => continue,
        };
        if requests > 0.0 {
            lines.push(Line {
                service,
                operation,
                caller,
                requests: requests as u64,
                read_units,
                write_units,
            });
        }
    }
    lines.sort_by(|a, b| (&a.service, &a.operation, a.caller).cmp(&(&b.service, &b.operation, b.caller)));
    (lines, cached)
}

fn read_log(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (time, message) of an INFO line of the gateway's log.
fn info_lines(log: &str) -> impl Iterator<Item = (OffsetDateTime, &str)> {
    log.lines().filter_map(|line| {
        let (stamp, rest) = line.split_once(' ')?;
        let at = OffsetDateTime::parse(stamp, &Rfc3339).ok()?;
        Some((at, rest.trim_start().strip_prefix("INFO")?.trim_start()))
    })
}

/// The rate schedules the gateway runs, if it runs any: each ticks every period from the moment
/// the gateway started listening.
struct Schedules {
    start: OffsetDateTime,
    periods: Vec<Duration>,
}

impl Schedules {
    fn read(log: &str) -> Option<Schedules> {
        let mut start = None;
        let mut periods = Vec::new();
        for (at, message) in info_lines(log) {
            if message.starts_with("listening on ") {
                start = Some(at);
            } else if let Some((_, rest)) = message.split_once(" runs locally: ")
                && let Some((expression, _)) = rest.split_once(')')
                && let Some(period) = local_gateway::schedule::rate(&format!("{expression})"))
            {
                periods.push(period);
            }
        }
        Some(Schedules { start: start?, periods }).filter(|s| !s.periods.is_empty())
    }

    /// The first tick at or after `after`.
    fn next_tick(&self, after: OffsetDateTime) -> OffsetDateTime {
        let elapsed = (after - self.start).max(time::Duration::ZERO);
        self.periods
            .iter()
            .map(|period| {
                let period = time::Duration::try_from(*period).expect("period");
                let ticks = (elapsed.as_seconds_f64() / period.as_seconds_f64()).ceil().max(1.0);
                self.start + period * ticks
            })
            .min()
            .expect("a period")
    }
}

/// Lambda invocations between `from` and `to`, by function, from the gateway's log: an API
/// route's line names its function last, an SQS batch's its function second.
fn invocations(
    log: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
    functions: &HashMap<String, u64>,
) -> BTreeMap<String, u64> {
    let mut counted = BTreeMap::new();
    for (at, message) in info_lines(log) {
        if at < from || at > to {
            continue;
        }
        let words: Vec<&str> = message.split_whitespace().collect();
        let function = match words.as_slice() {
            ["sqs" | "INVOKE", function, ..] => *function,
            [method, .., function] if method.chars().all(|c| c.is_ascii_uppercase()) => *function,
            _ => continue,
        };
        if functions.contains_key(function) {
            *counted.entry(function.to_owned()).or_insert(0) += 1;
        }
    }
    counted
}

/// (recipients, raw size in bytes) of the e-mail that carried the invoice.
async fn sale_email(env: &TestEnv, invoice: &Value) -> (u64, u64) {
    let id = invoice["email"]["message_id"]
        .as_str()
        .expect("the invoice's message id");
    let emails = env.sent_emails().await;
    let (destinations, raw, _) = emails
        .iter()
        .find(|(_, _, message)| message == id)
        .unwrap_or_else(|| panic!("SES has no message {id}"));
    (destinations.len() as u64, raw.len() as u64)
}

/// The table, the Lambda invocations and the cost of 1,000 such sales.
fn render(
    lines: &[Line],
    cached: u64,
    invocations: &BTreeMap<String, u64>,
    memory_mb: &HashMap<String, u64>,
    (recipients, email_bytes): &(u64, u64),
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nAWS requests of one sale (registration → recording → review → dispatch → invoice → e-mail)"
    );
    let _ = writeln!(
        out,
        "{:<15} {:<28} {:<13} {:>8} {:>8} {:>8}",
        "service", "operation", "caller", "requests", "RCU", "WCU"
    );
    for l in lines {
        let _ = writeln!(
            out,
            "{:<15} {:<28} {:<13} {:>8} {:>8} {:>8}",
            l.service, l.operation, l.caller, l.requests, l.read_units, l.write_units
        );
    }
    let requests: u64 = lines.iter().map(|l| l.requests).sum();
    let rcu: f64 = lines.iter().map(|l| l.read_units).sum();
    let wcu: f64 = lines.iter().map(|l| l.write_units).sum();
    let _ = writeln!(
        out,
        "{:<15} {:<28} {:<13} {:>8} {:>8} {:>8}",
        "total", "", "", requests, rcu, wcu
    );
    let calls: u64 = invocations.values().sum();
    let listed: Vec<String> = invocations.iter().map(|(f, n)| format!("{f} {n}")).collect();
    let _ = writeln!(out, "Lambda invocations: {calls} ({})", listed.join(", "));
    let _ = writeln!(
        out,
        "Secrets Manager requests meanwhile, not counted: {cached} (cached five minutes per function instance)"
    );

    let of = |service: &str, keep: &dyn Fn(&str) -> bool| -> f64 {
        lines
            .iter()
            .filter(|l| l.service == service && keep(&l.operation))
            .map(|l| l.requests as f64)
            .sum()
    };
    let s3_put_class = |op: &str| {
        ["Put", "Copy", "Post", "List", "Create", "Complete", "Upload"]
            .iter()
            .any(|p| op.starts_with(p))
    };
    let s3_free = |op: &str| op.starts_with("Delete") || op.starts_with("Abort");
    let sales = 1000.0;
    let costs = [
        (
            "DynamoDB writes",
            wcu * sales,
            "WRU",
            DYNAMODB_PER_MILLION_WRITE_UNITS / 1e6,
        ),
        (
            "DynamoDB reads",
            rcu * sales,
            "RRU",
            DYNAMODB_PER_MILLION_READ_UNITS / 1e6,
        ),
        (
            "SQS",
            of("sqs", &|_| true) * sales,
            "requests",
            SQS_PER_MILLION_REQUESTS / 1e6,
        ),
        (
            "S3 PUT/COPY/POST/LIST",
            of("s3", &|op| s3_put_class(op)) * sales,
            "requests",
            S3_PER_THOUSAND_PUT_CLASS / 1e3,
        ),
        (
            "S3 GET and other",
            of("s3", &|op| !s3_put_class(op) && !s3_free(op)) * sales,
            "requests",
            S3_PER_THOUSAND_GET_CLASS / 1e3,
        ),
        (
            "SES e-mails",
            of("ses", &|op| op.starts_with("Send")) * *recipients as f64 * sales,
            "e-mails",
            SES_PER_THOUSAND_EMAILS / 1e3,
        ),
        (
            "SES attachments",
            *email_bytes as f64 * sales / 1e9,
            "GB",
            SES_PER_GB_ATTACHMENTS,
        ),
        (
            "Lambda requests",
            calls as f64 * sales,
            "invocations",
            LAMBDA_PER_MILLION_REQUESTS / 1e6,
        ),
    ];
    let _ = writeln!(out, "\nCost of 1,000 sales, us-east-1 on demand, list prices:");
    let mut total = 0.0;
    for (what, quantity, unit, price) in costs {
        if quantity > 0.0 {
            let _ = writeln!(
                out,
                "  {what:<22} {quantity:>12.1} {unit:<12} ${:>9.4}",
                quantity * price
            );
            total += quantity * price;
        }
    }
    let _ = writeln!(out, "  {:<22} {:>12} {:<12} ${total:>9.4}", "total", "", "");
    let gb_per_100ms: f64 = invocations
        .iter()
        .map(|(f, n)| *n as f64 * memory_mb.get(f).copied().unwrap_or(0) as f64 / 1024.0 * 0.1)
        .sum();
    let _ = writeln!(
        out,
        "  Lambda duration is left out: the local functions are debug builds against an emulator, and \
         their times say nothing of AWS's. At the template's memory sizes every 100 ms of average \
         duration per invocation adds ${:.4} per 1,000 sales ({:.1} GB-s at ${LAMBDA_PER_GB_SECOND}/GB-s).",
        gb_per_100ms * sales * LAMBDA_PER_GB_SECOND,
        gb_per_100ms * sales
    );
    let _ = writeln!(
        out,
        "  Not included either: storage (DynamoDB, S3), data transfer, logs and metrics, KMS, the SQS \
         message S3 sends on the recording's upload, free tiers."
    );
    out
}
