//! The gateway in-process, with the real Runtime API and the `echo-lambda` test binary as every
//! function (fixture: tests/fixtures/template.yaml and resources.json).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use local_gateway::jwt::{self, TokenRequest};
use local_gateway::template::{self, AuthConfig};
use local_gateway::{Gateway, GatewayConfig};
use serde_json::{Value, json};

const SECRET: &str = "integration-secret";

struct Harness {
    gateway: Gateway,
    base: String,
    auth: AuthConfig,
    http: reqwest::Client,
}

/// Milliseconds since the Unix epoch, as Lambda's deadlines are counted.
fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn config(name: &str, max_instances: usize, function_env: &[(&str, &str)]) -> GatewayConfig {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_echo-lambda"));
    let log_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("local-gateway-logs")
        .join(name);
    let _ = std::fs::remove_dir_all(&log_dir);
    GatewayConfig {
        template: fixtures().join("template.yaml"),
        resources: fixtures().join("resources.json"),
        listen: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        bin_dir: bin.parent().map(Path::to_path_buf).unwrap_or_default(),
        log_dir,
        max_instances,
        retry_delay_secs: 2,
        jwt_secret: SECRET.into(),
        sqs: false,
        schedules: false,
        function_env: function_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

async fn start(name: &str, max_instances: usize) -> Harness {
    let mut gateway = Gateway::start(config(name, max_instances, &[("INJECTED", "yes")]))
        .await
        .unwrap_or_else(|e| panic!("gateway: {e}"));
    let failures = gateway.wait_started().await;
    assert!(failures.is_empty(), "functions failed to start: {failures:?}");
    // As the end-to-end harness (tests/support) calls it.
    let (template_path, resources_path): (PathBuf, PathBuf) =
        (fixtures().join("template.yaml"), fixtures().join("resources.json"));
    let auth = template::load_auth_config(&template_path, &resources_path).unwrap_or_else(|e| panic!("{e}"));
    Harness {
        base: format!("http://{}", gateway.local_addr()),
        gateway,
        auth,
        http: reqwest::Client::new(),
    }
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    bytes: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {:?} {}",
                self.status,
                self.headers,
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }
}

impl Harness {
    fn token(&self) -> String {
        let (secret, sub, role, clients) = (
            SECRET.to_owned(),
            "agent-7".to_owned(),
            "agent".to_owned(),
            vec!["acme".to_owned(), "globex".to_owned()],
        );
        jwt::mint(&secret, &self.auth, &sub, &role, &clients, 300).unwrap_or_else(|e| panic!("{e}"))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.unwrap_or_else(|e| panic!("no answer: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap_or_else(|e| panic!("{e}")).to_vec();
        Reply { status, headers, bytes }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.base)).bearer_auth(self.token()))
            .await
    }

    /// The echoed `{event, pid, env, …}` of a 200 answer.
    /// Wait until `function` has exactly one instance, and it is idle.
    async fn wait_one_idle_instance(&self, function: &str) {
        let started = Instant::now();
        loop {
            let health = self
                .send(self.http.get(format!("{}/_local/health", self.base)))
                .await
                .json();
            let status = health["functions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|f| f["function"] == function)
                .cloned()
                .unwrap_or_default();
            if status["instances"] == 1 && status["idle"] == 1 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{function} never settled on one idle instance: {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn echo(&self, path: &str) -> Value {
        let reply = self.get(path).await;
        assert_eq!(reply.status, 200, "{path}: {}", String::from_utf8_lossy(&reply.bytes));
        reply.json()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_event_and_environment() {
    let h = start("routes", 2).await;

    let sent = epoch_ms();
    let reply = h
        .send(
            h.http
                .get(format!("{}/items/i-42?q=a&q=b&x=1", h.base))
                .bearer_auth(h.token())
                .header("x-dup", "1")
                .header("cookie", "s=1; t=2"),
        )
        .await;
    let answered = epoch_ms();
    assert_eq!(reply.status, 200);
    assert!(reply.headers.contains_key("apigw-requestid"));
    let echo = reply.json();
    let event = &echo["event"];
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "GET /items/{id}");
    assert_eq!(event["rawPath"], "/items/i-42");
    assert_eq!(event["rawQueryString"], "q=a&q=b&x=1");
    assert_eq!(event["pathParameters"], json!({"id": "i-42"}));
    assert_eq!(event["queryStringParameters"], json!({"q": "a,b", "x": "1"}));
    assert_eq!(event["cookies"], json!(["s=1", "t=2"]));
    assert_eq!(event["headers"]["x-dup"], "1");
    let ctx = &event["requestContext"];
    assert_eq!(
        (ctx["apiId"].as_str(), ctx["stage"].as_str(), ctx["accountId"].as_str()),
        (Some("local"), Some("$default"), Some("123456789012"))
    );
    assert_eq!(ctx["http"]["method"], "GET");
    assert_eq!(ctx["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(
        reply.headers.get("apigw-requestid").and_then(|v| v.to_str().ok()),
        ctx["requestId"].as_str()
    );
    let claims = &ctx["authorizer"]["jwt"]["claims"];
    assert_eq!(claims["sub"], "agent-7");
    assert_eq!(claims["role"], "agent");
    assert_eq!(claims["clients"], "acme globex");
    assert_eq!(claims["iss"], "https://auth.test.local/");
    assert!(
        claims["exp"].as_str().is_some_and(|e| e.parse::<u64>().is_ok()),
        "numbers as text: {claims}"
    );

    // Environment: template (Globals + function, resolved), Lambda's, injected; nothing else.
    let env = &echo["env"];
    assert_eq!(env["TABLE"], "items-test");
    assert_eq!(env["GREETING"], "hola", "parameter from resources.json");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "gw-test-EchoFunction");
    assert_eq!(env["AWS_REGION"], "eu-west-1");
    assert_eq!(env["AWS_ENDPOINT_URL"], "http://127.0.0.1:9");
    assert_eq!(env["INJECTED"], "yes");
    assert_eq!(
        echo["function_arn"],
        "arn:aws:lambda:eu-west-1:123456789012:function:gw-test-EchoFunction"
    );
    // Lambda's deadline is the time of the invocation plus the function's Timeout (30 s, over
    // the Globals' 10 s): the invocation happened between `sent` and `answered`.
    let deadline = echo["deadline"].as_u64().unwrap_or(0);
    assert!(
        (sent + 30_000..=answered + 30_000).contains(&deadline),
        "deadline is the invocation's time + Timeout (30s): {deadline} not in {}..={}",
        sent + 30_000,
        answered + 30_000
    );

    // Literal segments beat parameters.
    assert_eq!(h.echo("/items/mine").await["event"]["routeKey"], "GET /items/mine");

    // A body, as text.
    let reply = h
        .send(
            h.http
                .post(format!("{}/items", h.base))
                .bearer_auth(h.token())
                .body(r#"{"a":1}"#),
        )
        .await;
    let event = &reply.json()["event"];
    assert_eq!(
        (event["body"].as_str(), event["isBase64Encoded"].as_bool()),
        (Some(r#"{"a":1}"#), Some(false))
    );

    // No route.
    for (method, path) in [
        ("GET", "/nothing"),
        ("GET", "/items"),
        ("DELETE", "/items/1"),
        ("GET", "/"),
    ] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let reply = h
            .send(h.http.request(m, format!("{}{path}", h.base)).bearer_auth(h.token()))
            .await;
        assert_eq!(
            (reply.status, reply.json()),
            (404, json!({"message": "Not Found"})),
            "{method} {path}"
        );
    }

    // A route without the authorizer: no token needed, no authorizer in the event.
    let reply = h
        .send(h.http.post(format!("{}/hooks/courier/ev-1", h.base)).body("x"))
        .await;
    assert_eq!(reply.status, 200);
    let event = &reply.json()["event"];
    assert_eq!(event["pathParameters"], json!({"proxy": "courier/ev-1"}));
    assert!(event["requestContext"].get("authorizer").is_none());

    // Response mapping: bare JSON, binary with cookies, function errors.
    let reply = h.get("/special/bare").await;
    assert_eq!((reply.status, reply.json()), (200, json!({"hello": "world"})));
    assert_eq!(
        reply.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let reply = h.get("/special/binary").await;
    assert_eq!((reply.status, reply.bytes.as_slice()), (200, &[0u8, 1, 2, 255][..]));
    let cookies: Vec<&str> = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(cookies, vec!["a=1", "b=2"]);
    for path in ["/special/panic", "/special/error"] {
        let reply = h.get(path).await;
        assert_eq!(
            (reply.status, reply.json()),
            (500, json!({"message": "Internal Server Error"})),
            "{path}"
        );
    }
    assert_eq!(
        h.get("/items/still-fine").await.status,
        200,
        "a panic keeps the instance"
    );

    // Over API Gateway's 10 MB: refused before the function.
    let big = vec![b'x'; 10 * 1024 * 1024 + 1];
    let reply = h
        .send(
            h.http
                .post(format!("{}/items", h.base))
                .bearer_auth(h.token())
                .body(big),
        )
        .await;
    assert_eq!(
        (reply.status, reply.json()),
        (413, json!({"message": "Request Entity Too Large"}))
    );

    // Admin endpoints.
    let reply = h.send(h.http.get(format!("{}/_local/health", h.base))).await;
    let health = reply.json();
    assert_eq!((reply.status, health["ready"].as_bool()), (200, Some(true)), "{health}");
    let names: BTreeSet<&str> = health["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["function"].as_str())
        .collect();
    assert_eq!(names, BTreeSet::from(["EchoFunction", "JobFunction", "SlowFunction"]));
    let routes = h.send(h.http.get(format!("{}/_local/routes", h.base))).await.json();
    assert!(
        routes["routes"].as_array().is_some_and(|r| r
            .iter()
            .any(|r| r["routeKey"] == "POST /hooks/{proxy+}" && r["auth"] == false)),
        "{routes}"
    );
    let reply = h
        .send(
            h.http
                .post(format!("{}/_local/functions/JobFunction/invoke", h.base))
                .body(r#"{"source":"schedule"}"#),
        )
        .await;
    assert_eq!(reply.status, 200);
    let raw = reply.json();
    assert_eq!(raw["statusCode"], 200, "the raw response, not an HTTP mapping");
    let body: Value = serde_json::from_str(raw["body"].as_str().unwrap_or_default()).unwrap_or_default();
    assert_eq!(body["event"], json!({"source": "schedule"}));
    assert_eq!(body["env"]["AWS_LAMBDA_FUNCTION_NAME"], "gw-test-JobFunction");
    let reply = h
        .send(
            h.http
                .post(format!("{}/_local/functions/JobFunction/invoke", h.base))
                .body(r#"{"rawPath":"/error"}"#),
        )
        .await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.json()["errorMessage"], "asked to fail");
    assert_eq!(
        h.send(
            h.http
                .post(format!("{}/_local/functions/Nope/invoke", h.base))
                .body("{}")
        )
        .await
        .status,
        404
    );

    h.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jwt_authorizer_rejects_bad_tokens() {
    let h = start("auth", 1).await;
    let url = format!("{}/items/1", h.base);
    let unauthorized = json!({"message": "Unauthorized"});

    let reply = h.send(h.http.get(&url)).await;
    assert_eq!((reply.status, reply.json()), (401, unauthorized.clone()), "no token");

    let clients = vec!["acme".to_owned()];
    let valid = TokenRequest {
        issuer: &h.auth.issuer,
        audience: "test-api",
        sub: "u",
        role: "agent",
        clients: &clients,
        ttl_secs: 60,
        extra: None,
    };
    let bad = [
        (
            "wrong secret",
            jwt::mint_token("other-secret", &valid).unwrap_or_default(),
        ),
        (
            "expired",
            jwt::mint_token(
                SECRET,
                &TokenRequest {
                    ttl_secs: -120,
                    ..valid.clone()
                },
            )
            .unwrap_or_default(),
        ),
        (
            "wrong audience",
            jwt::mint_token(
                SECRET,
                &TokenRequest {
                    audience: "other-api",
                    ..valid.clone()
                },
            )
            .unwrap_or_default(),
        ),
        (
            "wrong issuer",
            jwt::mint_token(
                SECRET,
                &TokenRequest {
                    issuer: "https://evil/",
                    ..valid.clone()
                },
            )
            .unwrap_or_default(),
        ),
        ("garbage", "abc.def.ghi".to_owned()),
    ];
    for (why, token) in bad {
        let reply = h.send(h.http.get(&url).bearer_auth(token)).await;
        assert_eq!((reply.status, reply.json()), (401, unauthorized.clone()), "{why}");
        assert!(reply.headers.contains_key("apigw-requestid"));
    }
    let good = jwt::mint_token(SECRET, &valid).unwrap_or_default();
    assert_eq!(h.send(h.http.get(&url).bearer_auth(&good)).await.status, 200);
    // API Gateway also takes the token without the scheme.
    assert_eq!(h.send(h.http.get(&url).header("authorization", good)).await.status, 200);
    h.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn timeouts_and_crashes_replace_the_instance() {
    let h = start("failures", 2).await;

    // SlowFunction (Timeout 2 s) answers 2.5 s after it gets the invocation, however loaded the
    // machine: only a gateway that gives up at the Timeout, before that answer, replies 504 (one
    // that waited 3 s or more would relay the 200). Not before the Timeout either.
    let timed_out = h.echo("/slow/before").await["pid"].clone();
    let started = Instant::now();
    let reply = h.get("/slow/sleep/2500").await;
    assert_eq!(
        (reply.status, reply.json()),
        (504, json!({"message": "Endpoint request timed out"})),
        "the function's 2s Timeout cuts the invocation short"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1900),
        "the function's 2s Timeout, not less: {waited:?}"
    );
    let after = h.echo("/slow/after-timeout").await;
    assert_ne!(after["pid"], timed_out, "the timed-out instance is replaced");

    let reply = h.get("/special/crash").await;
    assert_eq!(
        (reply.status, reply.json()),
        (500, json!({"message": "Internal Server Error"}))
    );
    // The crashed instance is replaced by one kept warm (started by the gateway, not by the next
    // request): once it is up and idle, it serves the next requests.
    h.wait_one_idle_instance("EchoFunction").await;
    let first = h.echo("/items/after-crash").await["pid"].clone();
    assert_eq!(
        h.echo("/items/again").await["pid"],
        first,
        "the replacement instance stays warm"
    );

    let reply = h
        .send(
            h.http
                .post(format!("{}/_local/functions/EchoFunction/invoke", h.base))
                .body(r#"{"rawPath":"/crash"}"#),
        )
        .await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.json()["errorType"], "Runtime.ExitError");
    let reply = h
        .send(
            h.http
                .post(format!("{}/_local/functions/SlowFunction/invoke", h.base))
                .body(r#"{"rawPath":"/sleep/3000"}"#),
        )
        .await;
    assert_eq!(
        (reply.status, reply.json()["errorType"].as_str()),
        (502, Some("Sandbox.Timedout"))
    );
    assert_eq!(h.get("/slow/last").await.status, 200);

    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("local-gateway-logs/failures/EchoFunction.log");
    let log = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert!(
        log.matches("local-gateway: instance").count() >= 3,
        "one banner per instance started:\n{log}"
    );
    assert!(
        log.contains("echo-lambda: init"),
        "function output lands in the log:\n{log}"
    );
    h.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_scale_out() {
    let h = start("concurrency", 3).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..6 {
        let (http, url, token) = (h.http.clone(), format!("{}/sleep/600?i={i}", h.base), h.token());
        tasks.spawn(async move {
            let response = http
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or_default();
            (status, body["pid"].as_u64().unwrap_or(0))
        });
    }
    let mut pids = BTreeSet::new();
    while let Some(joined) = tasks.join_next().await {
        let (status, pid) = joined.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status, 200);
        pids.insert(pid);
    }
    assert!(
        (2..=3).contains(&pids.len()),
        "scaled out to at most --max-instances: {pids:?}"
    );
    let health = h.send(h.http.get(format!("{}/_local/health", h.base))).await.json();
    let echo = health["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["function"] == "EchoFunction")
        .cloned()
        .unwrap_or_default();
    assert!(
        echo["instances"].as_u64().is_some_and(|n| (2..=3).contains(&n)),
        "{echo}"
    );
    h.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn init_failures_show_at_start() {
    let mut gateway = Gateway::start(config("init", 1, &[("ECHO_FAIL_INIT", "1")]))
        .await
        .unwrap_or_else(|e| panic!("gateway: {e}"));
    let failures: BTreeMap<String, String> = gateway.wait_started().await.into_iter().collect();
    assert_eq!(
        failures.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["EchoFunction", "JobFunction", "SlowFunction"]
    );
    assert!(failures["EchoFunction"].contains("EchoFunction.log"), "{failures:?}");
    let http = reqwest::Client::new();
    let base = format!("http://{}", gateway.local_addr());
    let health = http
        .get(format!("{base}/_local/health"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(health.status().as_u16(), 503);
    let reply = http
        .post(format!("{base}/hooks/x"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply.status().as_u16(), 500);
    gateway.shutdown().await;
}
