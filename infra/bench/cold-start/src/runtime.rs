//! A minimal Lambda Runtime API for one process: `GET /next` hands out one event at a time,
//! `POST /{id}/response` and `/{id}/error` settle it. Unlike the gateway's (`local_gateway::
//! runtime_api`), it exposes what a benchmark needs: when the process was spawned, when its first
//! `next` arrived, its pid for `/proc`, and each invocation's wall time.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot};

/// Lambda's limit on a synchronous response.
const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot bind a Runtime API port: {0}")]
    Bind(std::io::Error),
    #[error("cannot start {binary}: {source}")]
    Spawn { binary: String, source: std::io::Error },
    #[error("cannot open the log {path}: {source}")]
    Log { path: String, source: std::io::Error },
    #[error("the process exited during init ({0})")]
    ExitedInInit(String),
    #[error("init error reported: {0}")]
    InitError(String),
    #[error("no first `next` within {0:?}")]
    InitTimeout(Duration),
    #[error("the process exited during the invocation ({0})")]
    Crashed(String),
    #[error("the invocation outlived {0:?}")]
    Timeout(Duration),
}

/// How an invocation ended, as the runtime reported it.
#[derive(Debug, Clone)]
pub enum Outcome {
    Response(Vec<u8>),
    Error { error_type: String, message: String },
}

struct Work {
    request_id: String,
    event: Vec<u8>,
    deadline_ms: u64,
}

struct Shared {
    function_arn: String,
    /// Fired by the first `next` (arrival time) or an init error.
    first_next: Mutex<Option<oneshot::Sender<Result<Instant, String>>>>,
    work: tokio::sync::Mutex<mpsc::Receiver<Work>>,
    /// The invocation handed out and not settled yet.
    current: Mutex<Option<(String, oneshot::Sender<Outcome>)>>,
    replies: Mutex<BTreeMap<String, oneshot::Sender<Outcome>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One spawned process of a function, with its own Runtime API listener.
pub struct Instance {
    child: tokio::process::Child,
    pid: Option<u32>,
    work: mpsc::Sender<Work>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    timeout: Duration,
}

/// What to start: the binary, its whole environment (`AWS_LAMBDA_RUNTIME_API` is added here),
/// where its output goes, its ARN and the function's timeout.
pub struct Launch<'a> {
    pub binary: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    pub log: &'a Path,
    pub function_arn: &'a str,
    pub timeout: Duration,
}

impl Instance {
    /// Spawns the process and waits for its first `next`: returns the instance and its init
    /// time (from just before the spawn to the arrival of that request).
    pub async fn start(launch: &Launch<'_>, init_limit: Duration) -> Result<(Instance, Duration), RuntimeError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(RuntimeError::Bind)?;
        let addr = listener.local_addr().map_err(RuntimeError::Bind)?;
        let (work_tx, work_rx) = mpsc::channel(1);
        let (ready_tx, ready_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            function_arn: launch.function_arn.to_owned(),
            first_next: Mutex::new(Some(ready_tx)),
            work: tokio::sync::Mutex::new(work_rx),
            current: Mutex::new(None),
            replies: Mutex::new(BTreeMap::new()),
        });
        let server = tokio::spawn({
            let app = router(shared.clone());
            async move {
                let _ = axum::serve(listener, app).await;
            }
        });
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(launch.log)
            .map_err(|source| RuntimeError::Log {
                path: launch.log.display().to_string(),
                source,
            })?;
        let err = log.try_clone().map_err(|source| RuntimeError::Log {
            path: launch.log.display().to_string(),
            source,
        })?;
        let mut command = tokio::process::Command::new(launch.binary);
        command
            .env_clear()
            .envs(launch.env)
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        let spawned = Instant::now();
        let mut child = match command.spawn() {
            Ok(c) => c,
            Err(source) => {
                server.abort();
                return Err(RuntimeError::Spawn {
                    binary: launch.binary.display().to_string(),
                    source,
                });
            }
        };
        let pid = child.id();
        let ready = tokio::select! {
            ready = ready_rx => match ready {
                Ok(Ok(at)) => Ok(at),
                Ok(Err(e)) => Err(RuntimeError::InitError(e)),
                Err(_) => Err(RuntimeError::InitError("the Runtime API stopped".into())),
            },
            status = child.wait() => Err(RuntimeError::ExitedInInit(match status {
                Ok(s) => s.to_string(),
                Err(e) => e.to_string(),
            })),
            () = tokio::time::sleep(init_limit) => Err(RuntimeError::InitTimeout(init_limit)),
        };
        let instance = Instance {
            child,
            pid,
            work: work_tx,
            shared,
            server,
            timeout: launch.timeout,
        };
        match ready {
            Ok(at) => Ok((instance, at.saturating_duration_since(spawned))),
            Err(e) => {
                instance.stop().await;
                Err(e)
            }
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// One invocation: the wall time from handing the event to the waiting `next` to the
    /// runtime's answer, and the answer.
    pub async fn invoke(&mut self, event: &[u8]) -> Result<(Duration, Outcome), RuntimeError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (reply_tx, reply_rx) = oneshot::channel();
        lock(&self.shared.replies).insert(request_id.clone(), reply_tx);
        let deadline_ms = now_ms() + u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX / 2);
        let started = Instant::now();
        let work = Work {
            request_id: request_id.clone(),
            event: event.to_vec(),
            deadline_ms,
        };
        if self.work.send(work).await.is_err() {
            return Err(RuntimeError::Crashed("the Runtime API stopped".into()));
        }
        let outcome = tokio::select! {
            reply = reply_rx => reply.map_err(|_| RuntimeError::Crashed("no answer".into())),
            status = self.child.wait() => Err(RuntimeError::Crashed(match status {
                Ok(s) => s.to_string(),
                Err(e) => e.to_string(),
            })),
            () = tokio::time::sleep(self.timeout) => Err(RuntimeError::Timeout(self.timeout)),
        };
        let elapsed = started.elapsed();
        lock(&self.shared.replies).remove(&request_id);
        outcome.map(|o| (elapsed, o))
    }

    /// Kills the process (SIGKILL, as Lambda freezes and reaps an environment) and its listener.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        self.server.abort();
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `VmHWM` (peak resident set) of a live process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(shared)
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    if let Some(ready) = lock(&shared.first_next).take() {
        let _ = ready.send(Ok(Instant::now()));
    }
    let work = shared.work.lock().await.recv().await;
    let Some(work) = work else {
        return StatusCode::GONE.into_response();
    };
    if let Some(reply) = lock(&shared.replies).remove(&work.request_id) {
        *lock(&shared.current) = Some((work.request_id.clone(), reply));
    }
    let mut response = Response::new(Body::from(work.event));
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("lambda-runtime-aws-request-id", work.request_id),
        ("lambda-runtime-deadline-ms", work.deadline_ms.to_string()),
        ("lambda-runtime-invoked-function-arn", shared.function_arn.clone()),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
        ),
    ];
    for (name, value) in headers {
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn settle(shared: &Shared, id: &str, outcome: Outcome) -> Response {
    let mut current = lock(&shared.current);
    match current.take() {
        Some((current_id, reply)) if current_id == id => {
            let _ = reply.send(outcome);
            StatusCode::ACCEPTED.into_response()
        }
        other => {
            *current = other;
            StatusCode::BAD_REQUEST.into_response()
        }
    }
}

async fn response(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, request: Request) -> Response {
    match axum::body::to_bytes(request.into_body(), MAX_RESPONSE_BYTES).await {
        Ok(body) => settle(&shared, &id, Outcome::Response(body.to_vec())),
        Err(e) => settle(
            &shared,
            &id,
            Outcome::Error {
                error_type: "ResponseUnreadable".into(),
                message: e.to_string(),
            },
        ),
    }
}

/// `(errorType, errorMessage)` of an error report.
fn report(body: &[u8]) -> (String, String) {
    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let field = |name: &str| parsed.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    (
        field("errorType").unwrap_or_else(|| "Unhandled".into()),
        field("errorMessage").unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
    )
}

async fn error(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, request: Request) -> Response {
    let body = axum::body::to_bytes(request.into_body(), MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();
    let (error_type, message) = report(&body);
    settle(&shared, &id, Outcome::Error { error_type, message })
}

async fn init_error(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let body = axum::body::to_bytes(request.into_body(), MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();
    let (error_type, message) = report(&body);
    if let Some(ready) = lock(&shared.first_next).take() {
        let _ = ready.send(Err(format!("{error_type}: {message}")));
    }
    StatusCode::ACCEPTED.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reports() {
        assert_eq!(
            report(br#"{"errorType":"E","errorMessage":"boom"}"#),
            ("E".to_owned(), "boom".to_owned())
        );
        assert_eq!(report(b"plain"), ("Unhandled".to_owned(), "plain".to_owned()));
    }

    #[test]
    fn own_peak_rss_is_readable() {
        assert!(peak_rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }
}
