//! The Lambda service, locally: each function runs as real processes ("instances") of its cargo
//! binary, each speaking the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`) to its own listener on
//! 127.0.0.1. One invocation at a time per instance; more instances (up to `max_instances`) are
//! started when all are busy. An invocation that outlives the function's timeout answers
//! [`InvocationOutcome::Timeout`] and its instance is killed and replaced; an instance that exits
//! mid-invocation answers [`InvocationOutcome::Crashed`] and is replaced.

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::resources::Resources;
use crate::template::FunctionSpec;

/// Lambda's limit on a synchronous response.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// Environment variables of the gateway passed to every function with the prefix stripped.
pub const FUNCTION_ENV_PREFIX: &str = "LOCAL_FN_ENV_";

/// How the gateway runs functions.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Where the functions' binaries are (`target/debug`).
    pub bin_dir: PathBuf,
    /// Each function's stdout/stderr is appended to `<log_dir>/<LogicalId>.log`.
    pub log_dir: PathBuf,
    pub max_instances: usize,
    /// Limit on a process's init (start to its first `next`).
    pub init_timeout: Duration,
    pub stack_name: String,
    pub region: String,
    pub account_id: String,
    pub partition: String,
    pub endpoint_url: Option<String>,
    /// Set last in every function's environment: what [`inherited_env`] takes from the
    /// gateway's own environment, plus anything a caller adds.
    pub extra_env: BTreeMap<String, String>,
}

/// What functions inherit from the gateway's environment: `PATH`, `HOME`, `RUST_LOG`,
/// `RUST_BACKTRACE`, and every `LOCAL_FN_ENV_<NAME>` as `<NAME>`.
pub fn inherited_env(vars: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
    let mut passed = BTreeMap::new();
    let mut injected = BTreeMap::new();
    for (name, value) in vars {
        if let Some(stripped) = name.strip_prefix(FUNCTION_ENV_PREFIX) {
            if !stripped.is_empty() {
                injected.insert(stripped.to_owned(), value);
            }
        } else if ["PATH", "HOME", "RUST_LOG", "RUST_BACKTRACE"].contains(&name.as_str()) {
            passed.insert(name, value);
        }
    }
    passed.extend(injected);
    passed
}

impl RuntimeSettings {
    pub fn new(
        resources: &Resources,
        bin_dir: impl Into<PathBuf>,
        log_dir: impl Into<PathBuf>,
        max_instances: usize,
    ) -> Self {
        RuntimeSettings {
            bin_dir: bin_dir.into(),
            log_dir: log_dir.into(),
            max_instances: max_instances.max(1),
            init_timeout: Duration::from_secs(10),
            stack_name: resources.stack_name.clone(),
            region: resources.region.clone(),
            account_id: resources.account_id.clone(),
            partition: resources.partition.clone(),
            endpoint_url: resources.endpoint_url.clone(),
            extra_env: inherited_env(
                std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
            ),
        }
    }
}

/// The result of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvocationOutcome {
    /// The function's response payload (JSON).
    Ok(Vec<u8>),
    /// The handler returned an error (or panicked: lambda_runtime reports panics as errors).
    FunctionError { error_type: String, message: String },
    /// The invocation outlived the function's `Timeout`; the instance was killed.
    Timeout,
    /// The process exited mid-invocation, or could not start (init failure).
    Crashed { message: String },
}

impl InvocationOutcome {
    /// `(errorType, errorMessage)` as Lambda's Invoke API reports a failed invocation.
    pub fn error_parts(&self, timeout_secs: u64) -> Option<(String, String)> {
        match self {
            InvocationOutcome::Ok(_) => None,
            InvocationOutcome::FunctionError { error_type, message } => Some((error_type.clone(), message.clone())),
            InvocationOutcome::Timeout => Some((
                "Sandbox.Timedout".into(),
                format!("Task timed out after {timeout_secs}.00 seconds"),
            )),
            InvocationOutcome::Crashed { message } => Some(("Runtime.ExitError".into(), message.clone())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("no function {0} in the template")]
    UnknownFunction(String),
    #[error("the gateway is shutting down")]
    ShuttingDown,
}

/// What `GET /_local/health` shows per function.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionStatus {
    pub function: String,
    pub binary: String,
    /// One instance has started (passed init) at least once.
    pub started: bool,
    pub instances: usize,
    pub idle: usize,
    /// The last start failure, if the function has never started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub log: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// All functions of the template.
pub struct Runtime {
    pools: BTreeMap<String, Arc<Pool>>,
}

impl Runtime {
    pub fn new(functions: &[FunctionSpec], settings: RuntimeSettings) -> Self {
        let settings = Arc::new(settings);
        let pools = functions
            .iter()
            .map(|f| (f.logical_id.clone(), Pool::new(f.clone(), settings.clone())))
            .collect();
        Runtime { pools }
    }

    /// Starts one instance of every function (concurrently), so init errors show at once.
    /// Returns the functions that failed to start, with why.
    pub async fn start_all(&self) -> Vec<(String, String)> {
        let mut tasks = tokio::task::JoinSet::new();
        for (name, pool) in &self.pools {
            let (name, pool) = (name.clone(), pool.clone());
            tasks.spawn(async move { (name, pool.warm_up().await) });
        }
        let mut failures = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((name, Err(e))) = joined {
                failures.push((name, e));
            }
        }
        failures.sort();
        failures
    }

    pub fn functions(&self) -> impl Iterator<Item = &FunctionSpec> {
        self.pools.values().map(|p| &p.spec)
    }

    pub fn function(&self, logical_id: &str) -> Option<&FunctionSpec> {
        self.pools.get(logical_id).map(|p| &p.spec)
    }

    /// Invokes `function` with `event` (JSON bytes), waiting for a free instance if
    /// `max_instances` are busy.
    pub async fn invoke(&self, function: &str, event: Vec<u8>) -> Result<InvocationOutcome, RuntimeError> {
        let pool = self
            .pools
            .get(function)
            .ok_or_else(|| RuntimeError::UnknownFunction(function.to_owned()))?;
        pool.invoke(event).await
    }

    pub fn status(&self) -> Vec<FunctionStatus> {
        self.pools.values().map(|p| p.status()).collect()
    }

    /// Every function has had one instance started.
    pub fn ready(&self) -> bool {
        self.pools.values().all(|p| lock(&p.state).started)
    }

    /// Kills every process and refuses new invocations.
    pub async fn shutdown(&self) {
        for pool in self.pools.values() {
            pool.shutdown();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        for pool in self.pools.values() {
            while lock(&pool.state).total > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Arc<Instance>>,
    /// Instances starting or alive.
    total: usize,
    all: HashMap<u64, Arc<Instance>>,
    started: bool,
    last_error: Option<String>,
}

struct Pool {
    spec: FunctionSpec,
    settings: Arc<RuntimeSettings>,
    function_name: String,
    function_arn: String,
    state: Mutex<PoolState>,
    changed: Notify,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
}

enum AcquireError {
    ShuttingDown,
    Init(String),
}

impl Pool {
    fn new(spec: FunctionSpec, settings: Arc<RuntimeSettings>) -> Arc<Self> {
        let function_name = format!("{}-{}", settings.stack_name, spec.logical_id);
        let function_arn = format!(
            "arn:{}:lambda:{}:{}:function:{}",
            settings.partition, settings.region, settings.account_id, function_name
        );
        Arc::new(Pool {
            spec,
            settings,
            function_name,
            function_arn,
            state: Mutex::new(PoolState::default()),
            changed: Notify::new(),
            next_id: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
        })
    }

    fn log_path(&self) -> PathBuf {
        self.settings.log_dir.join(format!("{}.log", self.spec.logical_id))
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.spec.timeout_secs)
    }

    fn status(&self) -> FunctionStatus {
        let st = lock(&self.state);
        FunctionStatus {
            function: self.spec.logical_id.clone(),
            binary: self.spec.binary.clone(),
            started: st.started,
            instances: st.total,
            idle: st.idle.iter().filter(|i| i.alive()).count(),
            error: if st.started { None } else { st.last_error.clone() },
            log: self.log_path().display().to_string(),
        }
    }

    /// Starts one instance and leaves it idle (unless one already exists).
    async fn warm_up(self: &Arc<Self>) -> Result<(), String> {
        {
            let mut st = lock(&self.state);
            if st.total > 0 || self.shutting_down.load(Ordering::SeqCst) {
                return Ok(());
            }
            st.total += 1;
        }
        let instance = self.spawn_reserved().await?;
        self.release(instance);
        Ok(())
    }

    async fn invoke(self: &Arc<Self>, event: Vec<u8>) -> Result<InvocationOutcome, RuntimeError> {
        let instance = match self.acquire().await {
            Ok(i) => i,
            Err(AcquireError::ShuttingDown) => return Err(RuntimeError::ShuttingDown),
            Err(AcquireError::Init(message)) => {
                return Ok(InvocationOutcome::Crashed {
                    message: format!("Runtime.InitError: {message}"),
                });
            }
        };
        let outcome = self.run_on(&instance, event).await;
        match &outcome {
            InvocationOutcome::Ok(_) | InvocationOutcome::FunctionError { .. } => self.release(instance),
            InvocationOutcome::Timeout => {
                tracing::warn!(function = %self.spec.logical_id, instance = instance.id, "invocation timed out after {}s; killing the instance", self.spec.timeout_secs);
                instance.kill();
            }
            InvocationOutcome::Crashed { message } => {
                tracing::warn!(function = %self.spec.logical_id, instance = instance.id, "instance crashed: {message} (see {})", self.log_path().display());
            }
        }
        Ok(outcome)
    }

    /// An idle instance, a new one if all are busy and there is room, else waits for one.
    async fn acquire(self: &Arc<Self>) -> Result<Arc<Instance>, AcquireError> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let spawn = {
                let mut st = lock(&self.state);
                if self.shutting_down.load(Ordering::SeqCst) {
                    return Err(AcquireError::ShuttingDown);
                }
                while let Some(instance) = st.idle.pop() {
                    if instance.alive() {
                        return Ok(instance);
                    }
                }
                if st.total < self.settings.max_instances {
                    st.total += 1;
                    true
                } else {
                    false
                }
            };
            if spawn {
                return self.spawn_reserved().await.map_err(AcquireError::Init);
            }
            notified.await;
        }
    }

    fn release(&self, instance: Arc<Instance>) {
        if instance.alive() && !self.shutting_down.load(Ordering::SeqCst) {
            lock(&self.state).idle.push(instance);
        }
        self.changed.notify_waiters();
    }

    fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let instances: Vec<Arc<Instance>> = {
            let mut st = lock(&self.state);
            st.idle.clear();
            st.all.values().cloned().collect()
        };
        for i in instances {
            i.kill();
        }
        self.changed.notify_waiters();
    }

    /// Called by an instance's monitor once its process has exited.
    fn on_exit(self: &Arc<Self>, id: u64, was_ready: bool) {
        let replace = {
            let mut st = lock(&self.state);
            st.total = st.total.saturating_sub(1);
            st.all.remove(&id);
            st.idle.retain(|i| i.id != id);
            // Keep one warm instance (as Lambda replaces a failed environment), but never
            // loop on a function that cannot start.
            let replace = was_ready && st.total == 0 && !self.shutting_down.load(Ordering::SeqCst);
            if replace {
                st.total += 1;
            }
            replace
        };
        self.changed.notify_waiters();
        if replace {
            let pool = self.clone();
            tokio::spawn(async move {
                match pool.spawn_reserved().await {
                    Ok(instance) => pool.release(instance),
                    Err(e) => {
                        tracing::error!(function = %pool.spec.logical_id, "replacement instance failed to start: {e}")
                    }
                }
            });
        }
    }

    /// Starts a process for a slot already counted in `total`, and waits for its init.
    async fn spawn_reserved(self: &Arc<Self>) -> Result<Arc<Instance>, String> {
        let result = self.spawn_process().await;
        let result = match result {
            Ok(instance) => {
                let ready = self.wait_ready(&instance).await;
                ready.map(|()| instance)
            }
            Err(e) => {
                // No process, so no monitor to give the slot back.
                {
                    let mut st = lock(&self.state);
                    st.total = st.total.saturating_sub(1);
                }
                self.changed.notify_waiters();
                Err(e)
            }
        };
        let mut st = lock(&self.state);
        match &result {
            Ok(_) => {
                st.started = true;
                st.last_error = None;
            }
            Err(e) => st.last_error = Some(e.clone()),
        }
        result
    }

    async fn wait_ready(&self, instance: &Arc<Instance>) -> Result<(), String> {
        let mut phase = instance.shared.phase.subscribe();
        let waited = tokio::time::timeout(self.settings.init_timeout, phase.wait_for(|p| *p != Phase::Starting)).await;
        let outcome = match waited {
            Ok(Ok(p)) => match &*p {
                Phase::Ready => Ok(()),
                Phase::Failed(e) => Err(e.clone()),
                Phase::Starting => Err("init did not finish".to_owned()),
            },
            Ok(Err(_)) => Err("the instance went away during init".to_owned()),
            Err(_) => Err(format!(
                "init timed out after {}s (the runtime never asked for an invocation)",
                self.settings.init_timeout.as_secs()
            )),
        };
        if outcome.is_err() {
            instance.kill();
        }
        outcome.map_err(|e| format!("{e} (see {})", self.log_path().display()))
    }

    fn child_env(&self, runtime_api: SocketAddr) -> Vec<(String, String)> {
        let s = &self.settings;
        let mut env: BTreeMap<String, String> = self.spec.env.clone();
        let stream = format!(
            "{}/[$LATEST]{}",
            time::OffsetDateTime::now_utc()
                .format(time::macros::format_description!("[year]/[month]/[day]"))
                .unwrap_or_default(),
            uuid::Uuid::new_v4().simple()
        );
        env.insert("AWS_LAMBDA_RUNTIME_API".into(), runtime_api.to_string());
        env.extend(lambda_env(&self.function_name, self.spec.memory_mb, &s.region, &stream));
        if let Some(format) = &self.spec.log_format {
            env.insert("AWS_LAMBDA_LOG_FORMAT".into(), format.clone());
        }
        if let Some(level) = &self.spec.log_level {
            env.insert("AWS_LAMBDA_LOG_LEVEL".into(), level.clone());
        }
        if let Some(endpoint) = &s.endpoint_url {
            env.insert("AWS_ENDPOINT_URL".into(), endpoint.clone());
        }
        env.extend(s.extra_env.clone());
        env.into_iter().collect()
    }

    /// Binds the instance's Runtime API, starts the process and its monitor.
    async fn spawn_process(self: &Arc<Self>) -> Result<Arc<Instance>, String> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err("the gateway is shutting down".into());
        }
        let binary = self.settings.bin_dir.join(&self.spec.binary);
        if !binary.is_file() {
            return Err(format!(
                "binary {} not found (build it with `cargo build --bin {}`)",
                binary.display(),
                self.spec.binary
            ));
        }
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot bind a Runtime API port: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the Runtime API port: {e}"))?;

        let (work_tx, work_rx) = mpsc::channel(1);
        let (phase, _) = watch::channel(Phase::Starting);
        let (dead, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            function: self.spec.logical_id.clone(),
            function_arn: self.function_arn.clone(),
            work_tx,
            work_rx: tokio::sync::Mutex::new(work_rx),
            current: Mutex::new(None),
            phase,
            dead,
            alive: AtomicBool::new(true),
        });
        let server = tokio::spawn({
            let app = runtime_router(shared.clone());
            async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!("runtime API server failed: {e}");
                }
            }
        });

        let log_path = self.log_path();
        let stdout = open_log(&log_path, &format!("instance {id} starting (runtime API {addr})"));
        let stderr = stdout.as_ref().ok().and_then(|f| f.try_clone().ok());
        let (stdout, stderr) = match (stdout, stderr) {
            (Ok(out), Some(err)) => (Stdio::from(out), Stdio::from(err)),
            (Err(e), _) => {
                tracing::warn!("cannot open {}: {e}; function output is discarded", log_path.display());
                (Stdio::null(), Stdio::null())
            }
            (Ok(_), None) => (Stdio::null(), Stdio::null()),
        };
        let mut command = tokio::process::Command::new(&binary);
        command
            .env_clear()
            .envs(self.child_env(addr))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true);
        let child = match command.spawn() {
            Ok(c) => c,
            Err(e) => {
                server.abort();
                return Err(format!("cannot start {}: {e}", binary.display()));
            }
        };
        let (kill_tx, kill_rx) = oneshot::channel();
        let instance = Arc::new(Instance {
            id,
            pid: child.id(),
            shared: shared.clone(),
            kill: Mutex::new(Some(kill_tx)),
        });
        lock(&self.state).all.insert(id, instance.clone());
        tracing::debug!(function = %self.spec.logical_id, instance = id, pid = ?instance.pid, "instance started");
        tokio::spawn(monitor(self.clone(), id, child, kill_rx, shared, server));
        Ok(instance)
    }

    /// Runs one invocation on an idle instance.
    async fn run_on(&self, instance: &Arc<Instance>, event: Vec<u8>) -> InvocationOutcome {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (reply, answer) = oneshot::channel();
        let shared = &instance.shared;
        *lock(&shared.current) = Some(InFlight {
            request_id: request_id.clone(),
            reply,
        });
        let crashed = || InvocationOutcome::Crashed {
            message: format!("RequestId: {request_id} Error: Runtime exited before the invocation"),
        };
        if !shared.alive.load(Ordering::SeqCst) {
            lock(&shared.current).take();
            return crashed();
        }
        let work = Work {
            request_id: request_id.clone(),
            event,
            deadline_ms: now_ms() + self.spec.timeout_secs * 1000,
            trace_id: trace_id(),
        };
        if shared.work_tx.try_send(work).is_err() {
            lock(&shared.current).take();
            return crashed();
        }
        match tokio::time::timeout(self.timeout(), answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => crashed(),
            Err(_) => {
                lock(&shared.current).take();
                InvocationOutcome::Timeout
            }
        }
    }
}

fn open_log(path: &Path, banner: &str) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    let stamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    writeln!(file, "---- {stamp} local-gateway: {banner}")?;
    Ok(file)
}

/// Sampled: every local invocation is traced into the gateway's X-Ray daemon (`xray.rs`).
fn trace_id() -> String {
    let secs = now_ms() / 1000;
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=1",
        &random[..24],
        &random[16..32]
    )
}

async fn monitor(
    pool: Arc<Pool>,
    id: u64,
    mut child: tokio::process::Child,
    kill: oneshot::Receiver<()>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
) {
    let (status, killed) = tokio::select! {
        status = child.wait() => (status, false),
        _ = kill => {
            let _ = child.start_kill();
            (child.wait().await, true)
        }
    };
    let status = match status {
        Ok(s) => s.to_string(),
        Err(e) => format!("unknown status ({e})"),
    };
    shared.alive.store(false, Ordering::SeqCst);
    shared.dead.send_replace(true);
    let mut was_ready = false;
    shared.phase.send_if_modified(|p| match p {
        Phase::Starting => {
            *p = Phase::Failed(format!("the process exited during init ({status})"));
            true
        }
        Phase::Ready => {
            was_ready = true;
            false
        }
        Phase::Failed(_) => false,
    });
    // An exit during init is reported by whoever waits for the init.
    if was_ready && !killed && !pool.shutting_down.load(Ordering::SeqCst) {
        tracing::warn!(function = %pool.spec.logical_id, instance = id, "process exited: {status}");
    }
    pool.on_exit(id, was_ready);
    if let Some(inflight) = lock(&shared.current).take() {
        let message = format!(
            "RequestId: {} Error: Runtime exited with error: {status}",
            inflight.request_id
        );
        let _ = inflight.reply.send(InvocationOutcome::Crashed { message });
    }
    server.abort();
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Starting,
    Ready,
    Failed(String),
}

struct Work {
    request_id: String,
    event: Vec<u8>,
    deadline_ms: u64,
    trace_id: String,
}

struct InFlight {
    request_id: String,
    reply: oneshot::Sender<InvocationOutcome>,
}

/// State shared by an instance, its Runtime API server and its monitor.
struct Shared {
    function: String,
    function_arn: String,
    work_tx: mpsc::Sender<Work>,
    work_rx: tokio::sync::Mutex<mpsc::Receiver<Work>>,
    current: Mutex<Option<InFlight>>,
    phase: watch::Sender<Phase>,
    dead: watch::Sender<bool>,
    alive: AtomicBool,
}

impl Shared {
    /// Settles the in-flight invocation `request_id`; false if it is not the current one.
    fn complete(&self, request_id: &str, outcome: InvocationOutcome) -> bool {
        let mut current = lock(&self.current);
        if current.as_ref().is_some_and(|c| c.request_id == request_id)
            && let Some(inflight) = current.take()
        {
            let _ = inflight.reply.send(outcome);
            return true;
        }
        false
    }
}

struct Instance {
    id: u64,
    pid: Option<u32>,
    shared: Arc<Shared>,
    kill: Mutex<Option<oneshot::Sender<()>>>,
}

impl Instance {
    fn alive(&self) -> bool {
        self.shared.alive.load(Ordering::SeqCst)
    }

    fn kill(&self) {
        self.shared.alive.store(false, Ordering::SeqCst);
        if let Some(tx) = lock(&self.kill).take() {
            let _ = tx.send(());
        }
    }
}

fn runtime_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(invocation_response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(invocation_error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(shared)
}

fn runtime_json(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

async fn next_invocation(State(shared): State<Arc<Shared>>) -> Response {
    shared.phase.send_if_modified(|p| {
        if *p == Phase::Starting {
            *p = Phase::Ready;
            true
        } else {
            false
        }
    });
    let mut dead = shared.dead.subscribe();
    if *dead.borrow() {
        return runtime_json(
            StatusCode::GONE,
            serde_json::json!({"errorType": "InstanceStopped", "errorMessage": "this instance is stopping"}),
        );
    }
    let mut queue = shared.work_rx.lock().await;
    let work = tokio::select! {
        work = queue.recv() => work,
        _ = dead.wait_for(|d| *d) => None,
    };
    let Some(work) = work else {
        return runtime_json(
            StatusCode::GONE,
            serde_json::json!({"errorType": "InstanceStopped", "errorMessage": "this instance is stopping"}),
        );
    };
    let mut response = Response::new(Body::from(work.event));
    let headers = response.headers_mut();
    let pairs = [
        ("content-type", "application/json".to_owned()),
        ("lambda-runtime-aws-request-id", work.request_id),
        ("lambda-runtime-deadline-ms", work.deadline_ms.to_string()),
        ("lambda-runtime-invoked-function-arn", shared.function_arn.clone()),
        ("lambda-runtime-trace-id", work.trace_id),
    ];
    for (name, value) in pairs {
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

async fn invocation_response(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    request: Request,
) -> Response {
    let outcome = match axum::body::to_bytes(request.into_body(), MAX_RESPONSE_BYTES).await {
        Ok(body) => InvocationOutcome::Ok(body.to_vec()),
        Err(_) => InvocationOutcome::FunctionError {
            error_type: "Function.ResponseSizeTooLarge".into(),
            message: format!(
                "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
            ),
        },
    };
    let too_large = matches!(outcome, InvocationOutcome::FunctionError { .. });
    if !shared.complete(&id, outcome) {
        return unknown_request(&shared, &id);
    }
    if too_large {
        return runtime_json(
            StatusCode::PAYLOAD_TOO_LARGE,
            serde_json::json!({"errorType": "RequestEntityTooLarge", "errorMessage": "response too large"}),
        );
    }
    runtime_json(StatusCode::ACCEPTED, serde_json::json!({"status": "OK"}))
}

/// `(errorType, errorMessage)` from a runtime's error report.
fn error_report(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let header_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let error_type = field("errorType").or(header_type).unwrap_or_else(|| "Unhandled".into());
    let message = field("errorMessage").unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    (error_type, message)
}

async fn invocation_error(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();
    let (error_type, message) = error_report(&headers, &body);
    tracing::debug!(function = %shared.function, "invocation {id} failed: {error_type}: {message}");
    if !shared.complete(&id, InvocationOutcome::FunctionError { error_type, message }) {
        return unknown_request(&shared, &id);
    }
    runtime_json(StatusCode::ACCEPTED, serde_json::json!({"status": "OK"}))
}

async fn init_error(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();
    let (error_type, message) = error_report(&headers, &body);
    shared
        .phase
        .send_replace(Phase::Failed(format!("init error {error_type}: {message}")));
    runtime_json(StatusCode::ACCEPTED, serde_json::json!({"status": "OK"}))
}

fn unknown_request(shared: &Shared, id: &str) -> Response {
    tracing::debug!(function = %shared.function, "runtime answered unknown or expired invocation {id}");
    runtime_json(
        StatusCode::BAD_REQUEST,
        serde_json::json!({"errorType": "InvalidRequestID", "errorMessage": format!("invalid request id {id}")}),
    )
}

/// The last `lines` lines of a function's log (for startup error messages).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The variables Lambda sets for every provided.al2023 function (besides the Runtime API's
/// address), with the emulator's throwaway credentials: one list for the gateway and the
/// cold-start benchmark.
pub fn lambda_env(function_name: &str, memory_mb: u64, region: &str, log_stream: &str) -> BTreeMap<String, String> {
    [
        ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", log_stream.to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function_name}")),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
        ("AWS_REGION", region.to_owned()),
        ("AWS_DEFAULT_REGION", region.to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_SESSION_TOKEN", "testing".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reports() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            error_report(&headers, br#"{"errorType":"E","errorMessage":"boom"}"#),
            ("E".into(), "boom".into())
        );
        headers.insert(
            "lambda-runtime-function-error-type",
            http::HeaderValue::from_static("Runtime.Unknown"),
        );
        assert_eq!(
            error_report(&headers, b"plain"),
            ("Runtime.Unknown".into(), "plain".into())
        );
    }

    #[test]
    fn inherited_environment() {
        let vars = [
            ("PATH", "/bin"),
            ("HOME", "/h"),
            ("RUST_LOG", "debug"),
            ("SECRET", "x"),
            ("LOCAL_FN_ENV_FEATURE", "on"),
            ("LOCAL_FN_ENV_", "no"),
            ("LOCAL_FN_ENV_RUST_LOG", "trace"),
        ];
        let env = inherited_env(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let expected: BTreeMap<String, String> = [
            ("PATH", "/bin"),
            ("HOME", "/h"),
            ("RUST_LOG", "trace"),
            ("FEATURE", "on"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(env, expected);
    }

    #[test]
    fn trace_ids_look_like_xray() {
        let t = trace_id();
        assert!(
            t.starts_with("Root=1-") && t.contains(";Parent=") && t.ends_with(";Sampled=1"),
            "{t}"
        );
    }
}
