//! The local gateway: runs `infra/template.yaml`'s functions on one machine as API Gateway (HTTP
//! API with a JWT authorizer), Lambda's SQS event source mappings and the Lambda service would.
//! See `infra/local/README.md`.
//!
//! For test harnesses:
//! - [`template::load_auth_config`] reads the authorizer (issuer, audiences) from the template;
//! - [`jwt::mint`] mints a token it accepts ([`jwt::mint_token`] for explicit claims);
//! - [`Gateway::start`] runs the whole gateway in-process.

pub mod http_api;
pub mod jwt;
pub mod resources;
pub mod routing;
pub mod runtime_api;
pub mod schedule;
pub mod sqs;
pub mod template;
pub mod xray;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::http_api::ApiState;
use crate::routing::RouteTable;
use crate::runtime_api::{Runtime, RuntimeSettings};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    #[error("LOCAL_JWT_SECRET is empty but routes {0} need the JWT authorizer")]
    NoJwtSecret(String),
    #[error("routes need the JWT authorizer but the template's HTTP API has none")]
    NoAuthorizer,
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot create the log directory {path}: {source}")]
    LogDir { path: String, source: std::io::Error },
    #[error("cannot bind the local X-Ray daemon's UDP port: {0}")]
    XrayDaemon(std::io::Error),
}

/// How to run the gateway (the `serve` command's options).
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub template: PathBuf,
    pub resources: PathBuf,
    pub listen: SocketAddr,
    pub bin_dir: PathBuf,
    pub log_dir: PathBuf,
    pub max_instances: usize,
    pub retry_delay_secs: u64,
    pub jwt_secret: String,
    /// Poll the template's SQS event sources (off for tests without an emulator).
    pub sqs: bool,
    /// Run the template's `rate(…)` schedules (off where tests invoke sweeps themselves).
    pub schedules: bool,
    /// Extra environment for every function, set last (over the template's and what the
    /// gateway's own environment passes: see [`runtime_api::inherited_env`]).
    pub function_env: BTreeMap<String, String>,
}

/// A running gateway.
pub struct Gateway {
    addr: SocketAddr,
    runtime: Arc<Runtime>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    pollers: Vec<JoinHandle<()>>,
    startup: Option<JoinHandle<Vec<(String, String)>>>,
    xray: xray::Daemon,
}

impl Gateway {
    /// Loads the template, listens, starts one instance of every function (in the background:
    /// see [`Gateway::wait_started`] and `GET /_local/health`) and the SQS pollers.
    pub async fn start(config: GatewayConfig) -> Result<Gateway, GatewayError> {
        let (parsed, resources) = template::load(&config.template, &config.resources)?;
        let auth_routes: Vec<String> = parsed
            .functions
            .iter()
            .flat_map(|f| f.http_routes.iter().filter(|r| r.auth_required).map(|r| r.route_key()))
            .collect();
        if !auth_routes.is_empty() {
            if parsed.auth.is_none() {
                return Err(GatewayError::NoAuthorizer);
            }
            if config.jwt_secret.is_empty() {
                return Err(GatewayError::NoJwtSecret(auth_routes.join(", ")));
            }
        }
        std::fs::create_dir_all(&config.log_dir).map_err(|source| GatewayError::LogDir {
            path: config.log_dir.display().to_string(),
            source,
        })?;
        for f in &parsed.functions {
            for s in &f.schedules {
                let expression = s.expression.as_deref().unwrap_or("?");
                match schedule::rate(expression) {
                    Some(_) if config.schedules => {
                        tracing::info!(function = %f.logical_id, "schedule {} runs locally: {expression}", s.event)
                    }
                    _ => tracing::info!(
                        function = %f.logical_id,
                        "schedule {} ({expression}) is not run locally: POST /_local/functions/{}/invoke",
                        s.event,
                        f.logical_id
                    ),
                }
            }
            for (event, kind) in &f.unsupported_events {
                tracing::warn!(function = %f.logical_id, "event {event} of type {kind} is not delivered by the local gateway");
            }
        }

        let mut settings = RuntimeSettings::new(&resources, &config.bin_dir, &config.log_dir, config.max_instances);
        // Every invocation is traced (sampled) and its segments land in the local daemon.
        let xray = xray::Daemon::bind().await.map_err(GatewayError::XrayDaemon)?;
        settings
            .extra_env
            .insert("AWS_XRAY_DAEMON_ADDRESS".into(), xray.addr.to_string());
        settings.extra_env.extend(config.function_env.clone());
        let runtime = Arc::new(Runtime::new(&parsed.functions, settings));
        let state = Arc::new(ApiState {
            runtime: runtime.clone(),
            routes: RouteTable::new(&parsed.functions),
            auth: parsed.auth.clone(),
            cors: parsed.cors.clone(),
            jwt_secret: config.jwt_secret.clone(),
            account_id: resources.account_id.clone(),
            xray: xray.segments.clone(),
        });
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| GatewayError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| GatewayError::Bind {
            addr: config.listen,
            source,
        })?;
        let (stop, stopped) = watch::channel(false);

        let app = http_api::router(state).into_make_service_with_connect_info::<SocketAddr>();
        let mut server_stop = stopped.clone();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = server_stop.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::error!("HTTP server failed: {e}");
            }
        });

        let startup = tokio::spawn({
            let runtime = runtime.clone();
            let log_dir = config.log_dir.clone();
            async move {
                let failures = runtime.start_all().await;
                for (function, error) in &failures {
                    let tail = runtime_api::log_tail(&log_dir.join(format!("{function}.log")), 15);
                    if tail.trim().is_empty() {
                        tracing::error!("{function} failed to start: {error}");
                    } else {
                        tracing::error!("{function} failed to start: {error}; its log ends with:\n{tail}");
                    }
                }
                if failures.is_empty() {
                    tracing::info!("ready: {} functions started", runtime.functions().count());
                }
                failures
            }
        });

        let mut pollers = Vec::new();
        if config.sqs && parsed.functions.iter().any(|f| !f.sqs_sources.is_empty()) {
            let client = sqs::client(&resources).await;
            pollers = sqs::spawn_pollers(&client, &runtime, &resources, config.retry_delay_secs, &stopped);
        }
        if config.schedules {
            for f in &parsed.functions {
                for period in f
                    .schedules
                    .iter()
                    .filter_map(|s| s.expression.as_deref().and_then(schedule::rate))
                {
                    let runtime = runtime.clone();
                    pollers.push(schedule::spawn(
                        f.logical_id.clone(),
                        period,
                        stopped.clone(),
                        move |function| {
                            let runtime = runtime.clone();
                            async move {
                                match runtime.invoke(&function, b"{}".to_vec()).await {
                                    Ok(_) => tracing::debug!(function = %function, "scheduled invocation done"),
                                    Err(e) => tracing::warn!(function = %function, "scheduled invocation failed: {e}"),
                                }
                            }
                        },
                    ));
                }
            }
        }
        tracing::info!("listening on http://{addr}");
        Ok(Gateway {
            addr,
            runtime,
            stop,
            server,
            pollers,
            startup: Some(startup),
            xray,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Waits for the first instance of every function; returns those that failed, with why.
    pub async fn wait_started(&mut self) -> Vec<(String, String)> {
        match self.startup.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// Stops the pollers, kills the functions' processes and stops the HTTP server.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.startup.take() {
            task.abort();
        }
        for poller in &mut self.pollers {
            if tokio::time::timeout(Duration::from_secs(3), &mut *poller)
                .await
                .is_err()
            {
                poller.abort();
            }
        }
        self.runtime.shutdown().await;
        self.xray.stop();
        if tokio::time::timeout(Duration::from_secs(3), &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
    }
}
