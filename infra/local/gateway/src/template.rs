//! The SAM template, read the way the gateway needs it: every `AWS::Serverless::Function` with
//! its binary, resolved environment, timeout, memory and events, and the HTTP API's JWT
//! authorizer.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use yaml_serde::{Mapping, Value};

use crate::resources::{ResolveError, Resolver, Resources, ResourcesError, as_intrinsic, scalar_text};

/// SAM's defaults when neither the function nor `Globals.Function` set them.
pub const DEFAULT_TIMEOUT_SECS: u64 = 3;
pub const DEFAULT_MEMORY_MB: u64 = 128;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("template {path} is not valid YAML: {source}")]
    Yaml { path: String, source: yaml_serde::Error },
    #[error(transparent)]
    Resources(#[from] ResourcesError),
    #[error("the template has no Resources map")]
    NoResources,
    #[error(
        "function {function}: Metadata.BuildProperties.Binary is missing (every function must name its cargo binary)"
    )]
    MissingBinary { function: String },
    #[error("function {function}: cannot resolve {field}: {source}")]
    Resolve {
        function: String,
        field: String,
        source: ResolveError,
    },
    #[error("function {function}: {detail}")]
    Invalid { function: String, detail: String },
    #[error("HTTP API {api}: {detail}")]
    InvalidApi { api: String, detail: String },
    #[error("the template's HTTP API has no JWT authorizer")]
    NoJwtAuthorizer,
    #[error("route {route} is declared by both {first} and {second}")]
    DuplicateRoute {
        route: String,
        first: String,
        second: String,
    },
}

/// The HTTP API's JWT authorizer (issuer and accepted audiences).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthConfig {
    pub issuer: String,
    pub audience: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpRoute {
    /// Upper case (`GET`, `POST`, …) or `ANY`; `$default` routes have method `ANY` and path `$default`.
    pub method: String,
    /// `/presales/{id}`, `/files/{proxy+}` or `$default`.
    pub path: String,
    pub auth_required: bool,
    /// `AuthorizationScopes` of the route: the token's `scope` must hold one of them.
    pub authorization_scopes: Vec<String>,
    /// The event's logical id.
    pub event: String,
}

impl HttpRoute {
    /// API Gateway's route key: `POST /presales/{id}` or `$default`.
    pub fn route_key(&self) -> String {
        if self.path == "$default" {
            "$default".to_owned()
        } else {
            format!("{} {}", self.method, self.path)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SqsSource {
    pub event: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: u32,
    pub batching_window_secs: u64,
    pub report_batch_item_failures: bool,
    /// `ScalingConfig.MaximumConcurrency` (2..=1000), if set. Locally each source is polled
    /// and delivered one batch at a time, which is within any maximum.
    pub maximum_concurrency: Option<u32>,
}

/// A `Schedule`/`ScheduleV2` event: not run locally (invoke through the admin endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    pub event: String,
    pub expression: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub binary: String,
    pub timeout_secs: u64,
    pub memory_mb: u64,
    pub env: BTreeMap<String, String>,
    pub http_routes: Vec<HttpRoute>,
    pub sqs_sources: Vec<SqsSource>,
    pub schedules: Vec<Schedule>,
    /// Events of other types (`S3`, `SNS`, …), which the gateway does not deliver: `(event, type)`.
    pub unsupported_events: Vec<(String, String)>,
    /// `LoggingConfig.LogFormat` (`JSON`/`Text`): Lambda passes it as `AWS_LAMBDA_LOG_FORMAT`.
    pub log_format: Option<String>,
    /// `LoggingConfig.ApplicationLogLevel`: Lambda passes it as `AWS_LAMBDA_LOG_LEVEL`.
    pub log_level: Option<String>,
}

/// The HTTP API's `CorsConfiguration`: API Gateway answers preflights itself and adds the
/// CORS headers to every response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CorsConfig {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<u64>,
    pub allow_credentials: bool,
}

/// Everything the gateway reads from the template.
#[derive(Debug, Clone)]
pub struct Template {
    pub functions: Vec<FunctionSpec>,
    /// The JWT authorizer of the HTTP API, if it has one.
    pub auth: Option<AuthConfig>,
    /// The HTTP API's CORS configuration, if it has one.
    pub cors: Option<CorsConfig>,
}

fn read_yaml(path: &Path) -> Result<Value, TemplateError> {
    let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
        path: path.display().to_string(),
        source,
    })?;
    yaml_serde::from_str(&text).map_err(|source| TemplateError::Yaml {
        path: path.display().to_string(),
        source,
    })
}

/// Reads the template and resources.json and resolves everything.
pub fn load(template: impl AsRef<Path>, resources: impl AsRef<Path>) -> Result<(Template, Resources), TemplateError> {
    let doc = read_yaml(template.as_ref())?;
    let resources = Resources::load(resources)?;
    let parsed = parse(&doc, &resources)?;
    Ok((parsed, resources))
}

/// The HTTP API's JWT authorizer, read from the template with parameters from resources.json.
/// This is what the end-to-end harness and `mint-token` use so tokens always match the template.
pub fn load_auth_config(template: impl AsRef<Path>, resources: impl AsRef<Path>) -> Result<AuthConfig, TemplateError> {
    let doc = read_yaml(template.as_ref())?;
    let resources = Resources::load(resources)?;
    let resolver = Resolver::new(&resources, &doc);
    auth_config(&doc, &resolver)?.ok_or(TemplateError::NoJwtAuthorizer)
}

/// Parses an already loaded template.
pub fn parse(doc: &Value, resources: &Resources) -> Result<Template, TemplateError> {
    let resolver = Resolver::new(resources, doc);
    let all = doc
        .get("Resources")
        .and_then(Value::as_mapping)
        .ok_or(TemplateError::NoResources)?;
    let globals = doc.get("Globals").and_then(|g| g.get("Function"));
    let auth = auth_config(doc, &resolver)?;
    let cors = cors_config(doc, &resolver)?;
    let default_authorizers = default_authorizers(doc, &resolver)?;
    let mut functions = Vec::new();
    for (id, resource) in all {
        let (Some(id), Some("AWS::Serverless::Function")) = (id.as_str(), resource.get("Type").and_then(Value::as_str))
        else {
            continue;
        };
        functions.push(parse_function(id, resource, globals, &resolver, &default_authorizers)?);
    }
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for f in &functions {
        for r in &f.http_routes {
            // `/a/{id}` and `/a/{key}` are the same route.
            let normalized = match crate::routing::RoutePattern::parse(&r.path) {
                Ok(p) => format!("{} {}", r.method, p.normalized()),
                Err(_) => r.route_key(),
            };
            if let Some(first) = seen.insert(normalized, f.logical_id.clone()) {
                return Err(TemplateError::DuplicateRoute {
                    route: r.route_key(),
                    first,
                    second: f.logical_id.clone(),
                });
            }
        }
    }
    Ok(Template { functions, auth, cors })
}

/// Per HTTP API logical id (and `""` for the implicit API configured by `Globals.HttpApi`): its
/// `DefaultAuthorizer` and the names of its JWT authorizers.
#[derive(Debug, Default)]
struct ApiAuth {
    default: Option<String>,
    jwt_authorizers: Vec<String>,
}

fn default_authorizers(doc: &Value, resolver: &Resolver) -> Result<BTreeMap<String, ApiAuth>, TemplateError> {
    let mut out = BTreeMap::new();
    let mut apis: Vec<(String, &Value)> = Vec::new();
    if let Some(all) = doc.get("Resources").and_then(Value::as_mapping) {
        for (id, r) in all {
            if let (Some(id), Some("AWS::Serverless::HttpApi")) = (id.as_str(), r.get("Type").and_then(Value::as_str)) {
                apis.push((id.to_owned(), r.get("Properties").unwrap_or(&Value::Null)));
            }
        }
    }
    if let Some(global) = doc.get("Globals").and_then(|g| g.get("HttpApi")) {
        apis.push((String::new(), global));
    }
    for (id, props) in apis {
        let auth = props.get("Auth");
        let default = match auth.and_then(|a| a.get("DefaultAuthorizer")) {
            Some(v) => Some(resolver.resolve_string(v).map_err(|e| TemplateError::InvalidApi {
                api: id.clone(),
                detail: e.to_string(),
            })?),
            None => None,
        };
        let jwt_authorizers = auth
            .and_then(|a| a.get("Authorizers"))
            .and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .filter(|(_, a)| a.get("JwtConfiguration").is_some())
                    .filter_map(|(k, _)| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        out.insert(
            id,
            ApiAuth {
                default,
                jwt_authorizers,
            },
        );
    }
    Ok(out)
}

/// The first JWT authorizer of the template's HTTP APIs (resources first, then `Globals.HttpApi`).
fn auth_config(doc: &Value, resolver: &Resolver) -> Result<Option<AuthConfig>, TemplateError> {
    let mut candidates: Vec<(String, &Value)> = Vec::new();
    if let Some(all) = doc.get("Resources").and_then(Value::as_mapping) {
        for (id, r) in all {
            if let (Some(id), Some("AWS::Serverless::HttpApi")) = (id.as_str(), r.get("Type").and_then(Value::as_str))
                && let Some(auth) = r.get("Properties").and_then(|p| p.get("Auth"))
            {
                candidates.push((id.to_owned(), auth));
            }
        }
    }
    if let Some(auth) = doc
        .get("Globals")
        .and_then(|g| g.get("HttpApi"))
        .and_then(|a| a.get("Auth"))
    {
        candidates.push(("Globals.HttpApi".to_owned(), auth));
    }
    for (api, auth) in candidates {
        let Some(authorizers) = auth.get("Authorizers").and_then(Value::as_mapping) else {
            continue;
        };
        // The default authorizer first, then any other JWT authorizer.
        let default = auth.get("DefaultAuthorizer").and_then(Value::as_str);
        let mut ordered: Vec<&Value> = Vec::new();
        if let Some(d) = default.and_then(|d| authorizers.get(d)) {
            ordered.push(d);
        }
        ordered.extend(authorizers.values());
        for authorizer in ordered {
            let Some(jwt) = authorizer.get("JwtConfiguration") else {
                continue;
            };
            let bad = |detail: String| TemplateError::InvalidApi {
                api: api.clone(),
                detail,
            };
            let issuer_value = jwt
                .get("issuer")
                .or_else(|| jwt.get("Issuer"))
                .ok_or_else(|| bad("JwtConfiguration has no issuer".into()))?;
            let issuer = resolver
                .resolve_string(issuer_value)
                .map_err(|e| bad(format!("JwtConfiguration.issuer: {e}")))?;
            let audience_value = jwt
                .get("audience")
                .or_else(|| jwt.get("Audience"))
                .ok_or_else(|| bad("JwtConfiguration has no audience".into()))?;
            let audience =
                string_list(resolver, audience_value).map_err(|e| bad(format!("JwtConfiguration.audience: {e}")))?;
            return Ok(Some(AuthConfig { issuer, audience }));
        }
    }
    Ok(None)
}

/// The first `CorsConfiguration` of the template's HTTP APIs (resources, then `Globals.HttpApi`).
fn cors_config(doc: &Value, resolver: &Resolver) -> Result<Option<CorsConfig>, TemplateError> {
    let mut candidates: Vec<(String, &Value)> = Vec::new();
    if let Some(all) = doc.get("Resources").and_then(Value::as_mapping) {
        for (id, r) in all {
            if let (Some(id), Some("AWS::Serverless::HttpApi")) = (id.as_str(), r.get("Type").and_then(Value::as_str))
                && let Some(cors) = r.get("Properties").and_then(|p| p.get("CorsConfiguration"))
            {
                candidates.push((id.to_owned(), cors));
            }
        }
    }
    if let Some(cors) = doc
        .get("Globals")
        .and_then(|g| g.get("HttpApi"))
        .and_then(|a| a.get("CorsConfiguration"))
    {
        candidates.push(("Globals.HttpApi".to_owned(), cors));
    }
    let Some((api, cors)) = candidates.into_iter().next() else {
        return Ok(None);
    };
    let bad = |detail: String| TemplateError::InvalidApi {
        api: api.clone(),
        detail,
    };
    match cors {
        Value::Bool(false) => return Ok(None),
        // `CorsConfiguration: true`: every origin, method and header.
        Value::Bool(true) => {
            return Ok(Some(CorsConfig {
                allow_origins: vec!["*".into()],
                allow_methods: vec!["*".into()],
                allow_headers: vec!["*".into()],
                ..CorsConfig::default()
            }));
        }
        _ => {}
    }
    let list = |field: &str| -> Result<Vec<String>, TemplateError> {
        match cors.get(field) {
            Some(v) => string_list(resolver, v).map_err(|e| bad(format!("CorsConfiguration.{field}: {e}"))),
            None => Ok(Vec::new()),
        }
    };
    let max_age = match cors.get("MaxAge") {
        Some(v) => Some(
            resolver
                .resolve_string(v)
                .map_err(|e| bad(format!("CorsConfiguration.MaxAge: {e}")))?
                .parse::<u64>()
                .map_err(|_| bad("CorsConfiguration.MaxAge must be a number of seconds".into()))?,
        ),
        None => None,
    };
    let allow_credentials = match cors.get("AllowCredentials") {
        Some(v) => {
            resolver
                .resolve_string(v)
                .map_err(|e| bad(format!("CorsConfiguration.AllowCredentials: {e}")))?
                == "true"
        }
        None => false,
    };
    Ok(Some(CorsConfig {
        allow_origins: list("AllowOrigins")?,
        allow_methods: list("AllowMethods")?,
        allow_headers: list("AllowHeaders")?,
        expose_headers: list("ExposeHeaders")?,
        max_age,
        allow_credentials,
    }))
}

/// A string or a list of strings.
fn string_list(resolver: &Resolver, value: &Value) -> Result<Vec<String>, ResolveError> {
    match resolver.resolve(value)? {
        Value::Sequence(items) => items
            .iter()
            .map(|v| scalar_text(v).ok_or_else(|| ResolveError::NotScalar(format!("{v:?}"))))
            .collect(),
        other => scalar_text(&other)
            .map(|s| vec![s])
            .ok_or_else(|| ResolveError::NotScalar(format!("{other:?}"))),
    }
}

fn env_vars(value: Option<&Value>) -> Option<&Mapping> {
    value
        .and_then(|v| v.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(Value::as_mapping)
}

fn parse_function(
    id: &str,
    resource: &Value,
    globals: Option<&Value>,
    resolver: &Resolver,
    apis: &BTreeMap<String, ApiAuth>,
) -> Result<FunctionSpec, TemplateError> {
    let props = resource.get("Properties");
    let resolve = |field: &str, v: &Value| {
        resolver.resolve_string(v).map_err(|source| TemplateError::Resolve {
            function: id.to_owned(),
            field: field.to_owned(),
            source,
        })
    };
    let invalid = |detail: String| TemplateError::Invalid {
        function: id.to_owned(),
        detail,
    };

    let binary = match resource
        .get("Metadata")
        .and_then(|m| m.get("BuildProperties"))
        .and_then(|b| b.get("Binary"))
    {
        Some(v) => resolve("Metadata.BuildProperties.Binary", v)?,
        None => {
            return Err(TemplateError::MissingBinary {
                function: id.to_owned(),
            });
        }
    };
    if binary.is_empty() || binary.contains('/') {
        return Err(invalid(format!("Binary {binary:?} is not a cargo binary name")));
    }

    // Function properties win over Globals.Function.
    let number = |field: &str, default: u64| -> Result<u64, TemplateError> {
        match props
            .and_then(|p| p.get(field))
            .or_else(|| globals.and_then(|g| g.get(field)))
        {
            Some(v) => {
                let text = resolve(field, v)?;
                text.parse()
                    .map_err(|_| invalid(format!("{field} {text:?} is not a positive integer")))
            }
            None => Ok(default),
        }
    };
    let timeout_secs = number("Timeout", DEFAULT_TIMEOUT_SECS)?;
    let memory_mb = number("MemorySize", DEFAULT_MEMORY_MB)?;
    if timeout_secs == 0 {
        return Err(invalid("Timeout must be at least 1 second".into()));
    }

    let mut env = BTreeMap::new();
    for vars in [env_vars(globals), env_vars(props)].into_iter().flatten() {
        for (name, value) in vars {
            let name = name
                .as_str()
                .ok_or_else(|| invalid("environment variable names must be strings".into()))?;
            env.insert(
                name.to_owned(),
                resolve(&format!("Environment.Variables.{name}"), value)?,
            );
        }
    }

    let logging = |field: &str| -> Result<Option<String>, TemplateError> {
        let value = props.and_then(|p| p.get("LoggingConfig")).and_then(|l| l.get(field));
        let value = value.or_else(|| globals.and_then(|g| g.get("LoggingConfig")).and_then(|l| l.get(field)));
        value.map(|v| resolve(&format!("LoggingConfig.{field}"), v)).transpose()
    };
    let log_format = logging("LogFormat")?;
    let log_level = logging("ApplicationLogLevel")?;

    let mut spec = FunctionSpec {
        logical_id: id.to_owned(),
        binary,
        timeout_secs,
        memory_mb,
        env,
        http_routes: Vec::new(),
        sqs_sources: Vec::new(),
        schedules: Vec::new(),
        unsupported_events: Vec::new(),
        log_format,
        log_level,
    };
    let Some(events) = props.and_then(|p| p.get("Events")).and_then(Value::as_mapping) else {
        return Ok(spec);
    };
    for (name, event) in events {
        let name = name
            .as_str()
            .ok_or_else(|| invalid("event names must be strings".into()))?
            .to_owned();
        let kind = event
            .get("Type")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("event {name} has no Type")))?;
        let ep = event.get("Properties").unwrap_or(&Value::Null);
        let field = |f: &str| format!("Events.{name}.Properties.{f}");
        match kind {
            "HttpApi" => {
                let method = match ep.get("Method") {
                    Some(v) => resolve(&field("Method"), v)?.to_ascii_uppercase(),
                    None => "ANY".to_owned(),
                };
                let method = if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" || method == "*" {
                    "ANY".to_owned()
                } else {
                    method
                };
                let path = match ep.get("Path") {
                    Some(v) => resolve(&field("Path"), v)?,
                    None => "$default".to_owned(),
                };
                if path != "$default" {
                    crate::routing::RoutePattern::parse(&path).map_err(|e| invalid(format!("event {name}: {e}")))?;
                }
                let api_id = match ep.get("ApiId") {
                    // `!Ref HttpApi`: the logical id, not its resolved value.
                    Some(v) => match as_intrinsic(v) {
                        Some((f, arg)) if f == "Ref" => arg.as_str().unwrap_or_default().to_owned(),
                        _ => resolve(&field("ApiId"), v)?,
                    },
                    None => String::new(),
                };
                let api = apis.get(&api_id).or_else(|| apis.get(""));
                let route_auth = ep.get("Auth");
                let authorizer = match route_auth.and_then(|a| a.get("Authorizer")) {
                    Some(v) => Some(resolve(&field("Auth.Authorizer"), v)?),
                    None => api.and_then(|a| a.default.clone()),
                };
                let auth_required = match authorizer.as_deref() {
                    None | Some("NONE") => false,
                    Some(a) => {
                        if let Some(api) = api
                            && !api.jwt_authorizers.iter().any(|j| j == a)
                        {
                            return Err(invalid(format!(
                                "event {name}: authorizer {a} is not a JWT authorizer of the HTTP API"
                            )));
                        }
                        true
                    }
                };
                let authorization_scopes = match route_auth.and_then(|a| a.get("AuthorizationScopes")) {
                    Some(v) => string_list(resolver, v).map_err(|source| TemplateError::Resolve {
                        function: id.to_owned(),
                        field: field("Auth.AuthorizationScopes"),
                        source,
                    })?,
                    None => Vec::new(),
                };
                spec.http_routes.push(HttpRoute {
                    method,
                    path,
                    auth_required,
                    authorization_scopes,
                    event: name,
                });
            }
            "SQS" => {
                if ep.get("Enabled").and_then(Value::as_bool) == Some(false) {
                    continue;
                }
                let queue = ep
                    .get("Queue")
                    .ok_or_else(|| invalid(format!("SQS event {name} has no Queue")))?;
                let queue_arn = resolve(&field("Queue"), queue)?;
                let queue_url = resolver.resources().queue_url_for_arn(&queue_arn).ok_or_else(|| {
                    invalid(format!(
                        "SQS event {name}: no queue with ARN {queue_arn} in resources.json"
                    ))
                })?;
                let batch_size = match ep.get("BatchSize") {
                    Some(v) => resolve(&field("BatchSize"), v)?
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=10_000).contains(n)),
                    None => Some(10),
                }
                .ok_or_else(|| invalid(format!("SQS event {name}: BatchSize must be 1..=10000")))?;
                let batching_window_secs = match ep.get("MaximumBatchingWindowInSeconds") {
                    Some(v) => resolve(&field("MaximumBatchingWindowInSeconds"), v)?
                        .parse::<u64>()
                        .map_err(|_| {
                            invalid(format!(
                                "SQS event {name}: MaximumBatchingWindowInSeconds must be an integer"
                            ))
                        })?,
                    None => 0,
                };
                let report_batch_item_failures = match ep.get("FunctionResponseTypes") {
                    Some(v) => string_list(resolver, v)
                        .map_err(|source| TemplateError::Resolve {
                            function: id.to_owned(),
                            field: field("FunctionResponseTypes"),
                            source,
                        })?
                        .iter()
                        .any(|t| t == "ReportBatchItemFailures"),
                    None => false,
                };
                let maximum_concurrency = match ep.get("ScalingConfig").and_then(|c| c.get("MaximumConcurrency")) {
                    Some(v) => Some(
                        resolve(&field("ScalingConfig.MaximumConcurrency"), v)?
                            .parse::<u32>()
                            .ok()
                            .filter(|n| (2..=1000).contains(n))
                            .ok_or_else(|| {
                                invalid(format!(
                                    "SQS event {name}: ScalingConfig.MaximumConcurrency must be 2..=1000"
                                ))
                            })?,
                    ),
                    None => None,
                };
                spec.sqs_sources.push(SqsSource {
                    event: name,
                    queue_url,
                    queue_arn,
                    batch_size,
                    batching_window_secs,
                    report_batch_item_failures,
                    maximum_concurrency,
                });
            }
            "Schedule" | "ScheduleV2" => {
                let expression = ep
                    .get("Schedule")
                    .or_else(|| ep.get("ScheduleExpression"))
                    .and_then(|v| resolver.resolve_string(v).ok());
                spec.schedules.push(Schedule {
                    event: name,
                    expression,
                });
            }
            other => spec.unsupported_events.push((name, other.to_owned())),
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESOURCES: &str = r#"{
      "stack_name": "backoffice-local", "region": "us-east-1", "account_id": "123456789012",
      "endpoint_url": "http://127.0.0.1:5051",
      "parameters": { "Stage": "local" },
      "resources": {
        "PresalesTable": { "type": "AWS::DynamoDB::Table", "ref": "presales-local", "attributes": { "Arn": "arn:t" } },
        "ConfigTable": { "type": "AWS::DynamoDB::Table", "ref": "config-local", "attributes": { "Arn": "arn:c" } },
        "SalesQueue": { "type": "AWS::SQS::Queue", "ref": "http://q/sales", "attributes": { "Arn": "arn:aws:sqs:us-east-1:123456789012:sales" } },
        "RecordingsQueue": { "type": "AWS::SQS::Queue", "ref": "http://q/recordings",
                             "attributes": { "Arn": "arn:aws:sqs:us-east-1:123456789012:recordings", "QueueUrl": "http://q/recordings-url" } }
      }
    }"#;

    const TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: dev}
  JwtIssuer: {Type: String, Default: "https://auth.backoffice.local/"}
  JwtAudience: {Type: String, Default: backoffice-api}
Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
    Timeout: 10
    MemorySize: 256
    Environment:
      Variables:
        RUST_LOG: info
        STAGE: !Ref Stage
    LoggingConfig:
      LogFormat: JSON
Resources:
  HttpApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration:
        AllowOrigins: [!Ref Stage]
        AllowMethods: [GET, POST]
        AllowHeaders: [authorization]
        MaxAge: 600
      Auth:
        DefaultAuthorizer: JwtAuthorizer
        Authorizers:
          JwtAuthorizer:
            IdentitySource: "$request.header.Authorization"
            JwtConfiguration:
              issuer: !Ref JwtIssuer
              audience: [!Ref JwtAudience]
  PresaleIntakeFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: presale-intake
    Properties:
      CodeUri: ..
      Timeout: 5
      Environment:
        Variables:
          RUST_LOG: debug
          PRESALES_TABLE: !Ref PresalesTable
          CONFIG_TABLE: {Ref: ConfigTable}
          SOME_ARN: !GetAtt SalesQueue.Arn
          SOME_URL: !Sub "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
          RETRIES: 3
      Events:
        CreatePresale:
          Type: HttpApi
          Properties: {ApiId: !Ref HttpApi, Method: post, Path: /presales}
        GetPresale:
          Type: HttpApi
          Properties: {ApiId: !Ref HttpApi, Method: GET, Path: "/presales/{id}"}
  ShipmentTrackingFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties: {Binary: shipment-tracking}
    Properties:
      Events:
        CourierWebhook:
          Type: HttpApi
          Properties: {ApiId: !Ref HttpApi, Method: POST, Path: "/shipments/{id}/events", Auth: {Authorizer: NONE}}
        Scoped:
          Type: HttpApi
          Properties: {ApiId: !Ref HttpApi, Method: GET, Path: "/shipments", Auth: {AuthorizationScopes: [shipments.read]}}
  RecordingIngestFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties: {Binary: recording-ingest}
    Properties:
      MemorySize: 1024
      Events:
        Recordings:
          Type: SQS
          Properties:
            Queue: !GetAtt RecordingsQueue.Arn
            BatchSize: 5
            MaximumBatchingWindowInSeconds: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig: {MaximumConcurrency: 10}
        Sales:
          Type: SQS
          Properties: {Queue: !GetAtt [SalesQueue, Arn]}
        Bucket:
          Type: S3
          Properties: {Bucket: !Ref X}
  ClientBillingFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties: {Binary: client-billing}
    Properties:
      Events:
        Monthly:
          Type: ScheduleV2
          Properties: {ScheduleExpression: "cron(0 6 1 * ? *)"}
  PresalesTable: {Type: AWS::DynamoDB::Table}
"#;

    fn parsed(template: &str) -> Result<Template, TemplateError> {
        let resources = Resources::from_json(RESOURCES).expect("fixture");
        let doc: Value = yaml_serde::from_str(template).expect("yaml");
        parse(&doc, &resources)
    }

    fn function<'a>(t: &'a Template, id: &str) -> &'a FunctionSpec {
        t.functions.iter().find(|f| f.logical_id == id).expect("function")
    }

    #[test]
    fn functions_with_globals_merged() {
        let t = parsed(TEMPLATE).expect("parses");
        assert_eq!(t.functions.len(), 4);
        let f = function(&t, "PresaleIntakeFunction");
        assert_eq!(f.binary, "presale-intake");
        assert_eq!(
            (f.timeout_secs, f.memory_mb),
            (5, 256),
            "function Timeout wins, MemorySize from Globals"
        );
        assert_eq!(f.env["RUST_LOG"], "debug", "function env wins over Globals");
        assert_eq!(f.env["STAGE"], "local", "Globals env kept and resolved");
        assert_eq!(f.env["PRESALES_TABLE"], "presales-local");
        assert_eq!(f.env["CONFIG_TABLE"], "config-local");
        assert_eq!(f.env["SOME_ARN"], "arn:aws:sqs:us-east-1:123456789012:sales");
        assert_eq!(f.env["SOME_URL"], "https://local.execute-api.us-east-1.amazonaws.com");
        assert_eq!(f.env["RETRIES"], "3");
        let r = function(&t, "RecordingIngestFunction");
        assert_eq!((r.timeout_secs, r.memory_mb), (10, 1024));
        assert_eq!(r.env["RUST_LOG"], "info");
        assert_eq!(
            (r.log_format.as_deref(), r.log_level.as_deref()),
            (Some("JSON"), None),
            "LoggingConfig from Globals"
        );
    }

    #[test]
    fn cors_configuration() {
        let t = parsed(TEMPLATE).expect("parses");
        let cors = t.cors.expect("configured");
        assert_eq!(cors.allow_origins, vec!["local".to_owned()]);
        assert_eq!(cors.allow_methods, vec!["GET".to_owned(), "POST".to_owned()]);
        assert_eq!((cors.max_age, cors.allow_credentials), (Some(600), false));
    }

    #[test]
    fn routes_and_auth() {
        let t = parsed(TEMPLATE).expect("parses");
        assert_eq!(
            t.auth,
            Some(AuthConfig {
                issuer: "https://auth.backoffice.local/".into(),
                audience: vec!["backoffice-api".into()]
            })
        );
        let f = function(&t, "PresaleIntakeFunction");
        let keys: Vec<(String, bool)> = f.http_routes.iter().map(|r| (r.route_key(), r.auth_required)).collect();
        assert_eq!(
            keys,
            vec![("POST /presales".into(), true), ("GET /presales/{id}".into(), true)]
        );
        let s = function(&t, "ShipmentTrackingFunction");
        assert!(!s.http_routes[0].auth_required, "Authorizer: NONE");
        assert!(s.http_routes[1].auth_required);
        assert_eq!(s.http_routes[1].authorization_scopes, vec!["shipments.read".to_owned()]);
    }

    #[test]
    fn sqs_sources_and_schedules() {
        let t = parsed(TEMPLATE).expect("parses");
        let r = function(&t, "RecordingIngestFunction");
        assert_eq!(
            r.sqs_sources[0],
            SqsSource {
                event: "Recordings".into(),
                queue_url: "http://q/recordings-url".into(),
                queue_arn: "arn:aws:sqs:us-east-1:123456789012:recordings".into(),
                batch_size: 5,
                batching_window_secs: 1,
                report_batch_item_failures: true,
                maximum_concurrency: Some(10),
            }
        );
        assert_eq!(
            (
                r.sqs_sources[1].queue_url.as_str(),
                r.sqs_sources[1].batch_size,
                r.sqs_sources[1].report_batch_item_failures,
                r.sqs_sources[1].maximum_concurrency
            ),
            ("http://q/sales", 10, false, None)
        );
        assert_eq!(r.unsupported_events, vec![("Bucket".to_owned(), "S3".to_owned())]);
        let b = function(&t, "ClientBillingFunction");
        assert_eq!(
            b.schedules,
            vec![Schedule {
                event: "Monthly".into(),
                expression: Some("cron(0 6 1 * ? *)".into())
            }]
        );
        assert_eq!((b.timeout_secs, b.memory_mb), (10, 256));
    }

    #[test]
    fn missing_binary_is_an_error() {
        let t = TEMPLATE.replace(
            "BuildProperties: {Binary: client-billing}",
            "BuildMethod: rust-cargolambda",
        );
        let err = parsed(&t).expect_err("must fail");
        assert!(
            matches!(err, TemplateError::MissingBinary { ref function } if function == "ClientBillingFunction"),
            "{err}"
        );
    }

    #[test]
    fn unresolvable_env_names_function_and_variable() {
        let t = TEMPLATE.replace(
            "CONFIG_TABLE: {Ref: ConfigTable}",
            "CONFIG_TABLE: !GetAtt ConfigTable.StreamArn",
        );
        let err = parsed(&t).expect_err("must fail").to_string();
        assert!(
            err.contains("PresaleIntakeFunction") && err.contains("CONFIG_TABLE") && err.contains("StreamArn"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_routes_are_an_error() {
        let t = TEMPLATE.replace("Path: \"/shipments/{id}/events\"", "Path: /presales");
        assert!(matches!(parsed(&t), Err(TemplateError::DuplicateRoute { .. })));
    }

    #[test]
    fn defaults_without_globals() {
        let t = r#"
Resources:
  F:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: f}}
    Properties:
      Events:
        Any: {Type: HttpApi}
"#;
        let t = parsed(t).expect("parses");
        assert_eq!(t.auth, None);
        let f = &t.functions[0];
        assert_eq!((f.timeout_secs, f.memory_mb), (DEFAULT_TIMEOUT_SECS, DEFAULT_MEMORY_MB));
        assert_eq!(f.http_routes[0].route_key(), "$default");
        assert!(!f.http_routes[0].auth_required);
    }
}
