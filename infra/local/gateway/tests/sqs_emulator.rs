//! The SQS poller against a real emulator (moto's server): the one of the stack that
//! `BACKOFFICE_STACK` describes (`infra/local/test` always sets it), or any given by
//! `LOCAL_GATEWAY_SQS_ENDPOINT`:
//!
//! ```sh
//! python3 -m moto.server -p 5099 &
//! LOCAL_GATEWAY_SQS_ENDPOINT=http://127.0.0.1:5099 cargo test -p local-gateway --test sqs_emulator
//! ```
//!
//! With neither, it brings up the test profile's stack as the end-to-end tests do
//! (`infra/local/up --profile test --detach`, which reuses a live one). It never skips: a stack
//! that cannot be found or started fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use local_gateway::{Gateway, GatewayConfig};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// The emulator's endpoint: `LOCAL_GATEWAY_SQS_ENDPOINT`, else the `endpoint_url` of the stack
/// `BACKOFFICE_STACK` names, else of the test profile's stack, started if need be.
fn emulator_endpoint() -> String {
    if let Ok(endpoint) = std::env::var("LOCAL_GATEWAY_SQS_ENDPOINT") {
        return endpoint;
    }
    let path = match std::env::var_os("BACKOFFICE_STACK") {
        Some(path) => PathBuf::from(path),
        None => {
            let status = Command::new(repo_root().join("infra/local/up"))
                .args(["--profile", "test", "--detach"])
                .status()
                .unwrap_or_else(|e| panic!("no emulator given and cannot run infra/local/up: {e}"));
            assert!(
                status.success(),
                "no emulator given (BACKOFFICE_STACK, LOCAL_GATEWAY_SQS_ENDPOINT) and infra/local/up --profile test \
                 failed; see .local/test/logs/"
            );
            repo_root().join(".local/test/stack.json")
        }
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the stack description {}: {e}; is the stack up?",
            path.display()
        )
    });
    let stack: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not a stack description: {e}", path.display()));
    stack["endpoint_url"]
        .as_str()
        .unwrap_or_else(|| panic!("{} has no endpoint_url", path.display()))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_are_delivered_and_settled() {
    let endpoint = emulator_endpoint();
    let credentials = aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "test");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(credentials)
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let name = format!("gw-test-{}", uuid::Uuid::new_v4().simple());
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
        .queue_url
        .unwrap_or_default();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let arn = attributes
        .attributes
        .unwrap_or_default()
        .get(&QueueAttributeName::QueueArn)
        .cloned()
        .unwrap_or_default();

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("local-gateway-sqs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let resources = serde_json::json!({
        "stack_name": "gw-sqs", "region": "us-east-1", "account_id": "123456789012", "partition": "aws",
        "endpoint_url": endpoint, "parameters": {},
        "resources": { "WorkQueue": { "type": "AWS::SQS::Queue", "ref": url, "attributes": { "Arn": arn, "QueueName": name, "QueueUrl": url } } }
    });
    std::fs::write(dir.join("resources.json"), resources.to_string()).unwrap_or_else(|e| panic!("{e}"));

    let bin = PathBuf::from(env!("CARGO_BIN_EXE_echo-lambda"));
    let mut gateway = Gateway::start(GatewayConfig {
        template: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/template-sqs.yaml"),
        resources: dir.join("resources.json"),
        listen: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        bin_dir: bin.parent().map(Path::to_path_buf).unwrap_or_default(),
        log_dir: dir.join("logs"),
        max_instances: 2,
        retry_delay_secs: 1,
        jwt_secret: String::new(),
        sqs: true,
        schedules: false,
        function_env: Default::default(),
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(gateway.wait_started().await.is_empty());

    for body in ["ok-1", "fail", "ok-2"] {
        sqs.send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
    }

    // The two good messages are deleted; "fail" keeps coming back after the 1 s retry delay.
    let log_path = dir.join("logs/WorkerFunction.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let fail_deliveries = log.lines().filter(|l| l.contains("body=fail")).count();
        let ok_deliveries = log.lines().filter(|l| l.contains("body=ok-")).count();
        if fail_deliveries >= 3 {
            assert_eq!(ok_deliveries, 2, "deleted messages are not delivered again:\n{log}");
            assert!(log.contains(&format!("source=\"{arn}\"")), "eventSourceARN:\n{log}");
            assert!(
                log.contains("body=fail receive_count=3"),
                "ApproximateReceiveCount grows:\n{log}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the failed message was not retried:\n{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
        .attributes
        .unwrap_or_default();
    let count: u64 = attributes.values().filter_map(|v| v.parse::<u64>().ok()).sum();
    assert_eq!(count, 1, "only the failing message is left: {attributes:?}");

    gateway.shutdown().await;
    let _ = sqs.delete_queue().queue_url(&url).send().await;
}
