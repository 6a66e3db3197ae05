//! A tiny Lambda for the gateway's integration test. Answers
//! `{"statusCode":200,"body":"{\"event\":…,\"pid\":…,\"env\":{…}}"}`, except when the last
//! segment of the event's `rawPath` says otherwise:
//! - `…/sleep/{ms}`: sleeps first;
//! - `…/crash`: the process exits mid-invocation;
//! - `…/panic`: the handler panics (lambda_runtime reports it as a function error);
//! - `…/error`: the handler returns an error;
//! - `…/bare`: answers a bare JSON object (no statusCode);
//! - `…/binary`: answers a base64 body with cookies.
//!
//! An SQS event (`Records`) is logged record by record to stderr; records whose body is `fail`
//! are reported in `batchItemFailures`, a body `error` fails the whole invocation.

use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let payload = event.payload;
    if let Some(records) = payload.get("Records").and_then(Value::as_array) {
        let mut failures = Vec::new();
        for record in records {
            let (id, body) = (
                record["messageId"].as_str().unwrap_or_default(),
                record["body"].as_str().unwrap_or_default(),
            );
            let count = record["attributes"]["ApproximateReceiveCount"].as_str().unwrap_or("?");
            eprintln!(
                "echo-lambda: sqs record {id} body={body} receive_count={count} source={}",
                record["eventSourceARN"]
            );
            match body {
                "fail" => failures.push(json!({"itemIdentifier": id})),
                "error" => return Err("asked to fail the batch".into()),
                _ => {}
            }
        }
        return Ok(json!({"batchItemFailures": failures}));
    }
    let path = payload
        .get("rawPath")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let segments: Vec<&str> = path.split('/').collect();
    if let [.., "sleep", ms] = segments.as_slice()
        && let Ok(ms) = ms.parse::<u64>()
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    match segments.last().copied().unwrap_or_default() {
        "crash" => std::process::exit(3),
        "panic" => panic!("asked to panic"),
        "error" => return Err("asked to fail".into()),
        "bare" => return Ok(json!({"hello": "world"})),
        "binary" => {
            return Ok(
                json!({"statusCode": 200, "headers": {"content-type": "application/octet-stream"}, "cookies": ["a=1", "b=2"], "body": "AAEC/w==", "isBase64Encoded": true}),
            );
        }
        _ => {}
    }
    let env: serde_json::Map<String, Value> = [
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "TABLE",
        "GREETING",
        "INJECTED",
        "HOME_IS_SET",
        "SECRET_LEAK",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), Value::String(v))))
    .collect();
    let body = json!({
        "event": payload,
        "pid": std::process::id(),
        "env": env,
        "request_id": event.context.request_id,
        "function_arn": event.context.invoked_function_arn,
        "deadline": event.context.deadline,
    });
    Ok(json!({"statusCode": 200, "headers": {"content-type": "application/json"}, "body": body.to_string()}))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    eprintln!("echo-lambda: init (pid {})", std::process::id());
    if std::env::var("ECHO_FAIL_INIT").is_ok() {
        return Err("init failure requested".into());
    }
    run(service_fn(handle)).await
}
