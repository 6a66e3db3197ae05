//! The HTTP API, as API Gateway (HTTP API, payload format 2.0) plays it: routing, the JWT
//! authorizer, the v2.0 event, the mapping of the function's answer to an HTTP response; plus
//! the gateway's own admin endpoints under `/_local/`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription, ApiGatewayV2httpRequest,
    ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
};
use aws_lambda_events::query_map::QueryMap;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::jwt;
use crate::routing::{RouteMatch, RouteTable};
use crate::runtime_api::{InvocationOutcome, Runtime, RuntimeError};
use crate::template::{AuthConfig, CorsConfig};

/// API Gateway's payload limit.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// A body over the limit is still read (and discarded) up to this size before the 413, so the
/// client, still sending, sees the answer instead of a reset connection.
const DRAIN_LIMIT_BYTES: usize = 64 * 1024 * 1024;

enum BodyError {
    TooLarge,
    Read(String),
}

/// The whole body if it has at most `limit` bytes.
async fn read_body(mut body: Body, limit: usize) -> Result<Vec<u8>, BodyError> {
    use axum::body::HttpBody as _;
    let mut bytes = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            if total <= limit {
                bytes.extend_from_slice(&data);
            } else if total > DRAIN_LIMIT_BYTES {
                return Err(BodyError::TooLarge);
            }
        }
    }
    if total > limit {
        Err(BodyError::TooLarge)
    } else {
        Ok(bytes)
    }
}

pub struct ApiState {
    pub runtime: Arc<Runtime>,
    pub routes: RouteTable,
    pub auth: Option<AuthConfig>,
    pub cors: Option<CorsConfig>,
    pub jwt_secret: String,
    pub account_id: String,
    pub xray: Arc<crate::xray::Segments>,
}

/// The gateway's router; serve it with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/_local/health", get(health))
        .route("/_local/routes", get(list_routes))
        .route("/_local/functions/{function}/invoke", post(admin_invoke))
        .route("/_local/xray/segments", get(xray_segments).delete(clear_xray_segments))
        .route("/_local/token", post(dev_token))
        .fallback(api)
        .with_state(state)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

fn message(status: StatusCode, text: &str) -> Response {
    json_response(status, &json!({ "message": text }))
}

fn loopback_only(peer: SocketAddr) -> Option<Response> {
    (!peer.ip().is_loopback()).then(|| message(StatusCode::FORBIDDEN, "Forbidden"))
}

async fn health(State(state): State<Arc<ApiState>>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
    if let Some(denied) = loopback_only(peer) {
        return denied;
    }
    let ready = state.runtime.ready();
    let body = json!({ "ready": ready, "functions": state.runtime.status() });
    json_response(
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &body,
    )
}

async fn xray_segments(State(state): State<Arc<ApiState>>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
    if let Some(denied) = loopback_only(peer) {
        return denied;
    }
    json_response(StatusCode::OK, &Value::Array(state.xray.list()))
}

async fn clear_xray_segments(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if let Some(denied) = loopback_only(peer) {
        return denied;
    }
    state.xray.clear();
    json_response(StatusCode::OK, &json!({ "cleared": true }))
}

async fn list_routes(State(state): State<Arc<ApiState>>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
    if let Some(denied) = loopback_only(peer) {
        return denied;
    }
    let routes: Vec<Value> = state
        .routes
        .entries
        .iter()
        .map(|e| {
            json!({
                "routeKey": e.route.route_key(),
                "method": e.route.method,
                "path": e.route.path,
                "function": e.function,
                "auth": e.route.auth_required,
                "scopes": e.route.authorization_scopes,
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "routes": routes }))
}

async fn admin_invoke(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(function): UrlPath<String>,
    request: Request,
) -> Response {
    if let Some(denied) = loopback_only(peer) {
        return denied;
    }
    let started = Instant::now();
    let Some(spec) = state.runtime.function(&function) else {
        return message(StatusCode::NOT_FOUND, &format!("Function not found: {function}"));
    };
    let timeout_secs = spec.timeout_secs;
    let body = match read_body(request.into_body(), MAX_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
        }
        Err(BodyError::Read(e)) => return message(StatusCode::BAD_REQUEST, &e),
    };
    let event = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".to_vec()
    } else {
        body
    };
    if serde_json::from_slice::<Value>(&event).is_err() {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"errorType": "InvalidRequestContentException", "errorMessage": "Could not parse request body into json"}),
        );
    }
    let outcome = match state.runtime.invoke(&function, event).await {
        Ok(o) => o,
        Err(e) => return message(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let response = match outcome.error_parts(timeout_secs) {
        None => match outcome {
            InvocationOutcome::Ok(payload) => ([("content-type", "application/json")], payload).into_response(),
            _ => message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        },
        Some((error_type, error_message)) => {
            let mut r = json_response(
                StatusCode::BAD_GATEWAY,
                &json!({"errorType": error_type, "errorMessage": error_message}),
            );
            r.headers_mut()
                .insert("x-amz-function-error", HeaderValue::from_static("Unhandled"));
            r
        }
    };
    tracing::info!(
        "INVOKE {function} {} {}ms",
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response
}

/// The console's dev sign-in: the token `infra/local/token` prints, for the role asked. Only
/// on the local gateway (API Gateway has no such route), and only from this machine.
async fn dev_token(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    if let Some(denied) = loopback_only(peer) {
        return denied;
    }
    let problem = |status: StatusCode, detail: &str| {
        (
            status,
            [("content-type", "application/problem+json")],
            json!({"type": "about:blank", "title": status.canonical_reason(), "status": status.as_u16(), "detail": detail})
                .to_string(),
        )
            .into_response()
    };
    let Some(auth) = &state.auth else {
        return problem(StatusCode::NOT_FOUND, "the template declares no JWT authorizer");
    };
    let body = match read_body(request.into_body(), 16 * 1024).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return problem(StatusCode::PAYLOAD_TOO_LARGE, "the body is over 16 KiB"),
        Err(BodyError::Read(e)) => return problem(StatusCode::BAD_REQUEST, &e),
    };
    let asked = match serde_json::from_slice::<jwt::DevTokenRequest>(&body)
        .map_err(|e| e.to_string())
        .and_then(|asked| asked.validated().map_err(|e| e.to_string()))
    {
        Ok(asked) => asked,
        Err(detail) => return problem(StatusCode::BAD_REQUEST, &detail),
    };
    match jwt::mint(
        &state.jwt_secret,
        auth,
        &asked.sub,
        &asked.role,
        &asked.clients,
        asked.ttl_secs,
    ) {
        Ok(token) => json_response(
            StatusCode::OK,
            &json!({
                "token": token,
                "token_type": "Bearer",
                "expires_in": asked.ttl_secs,
                "role": asked.role,
                "sub": asked.sub,
                "clients": asked.clients,
            }),
        ),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// Every request that is not an admin endpoint.
async fn api(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let origin = request
        .headers()
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (mut response, function) = match (&state.cors, &origin) {
        (Some(cors), Some(origin))
            if method == "OPTIONS" && request.headers().contains_key("access-control-request-method") =>
        {
            (preflight(cors, origin, request.headers()), None)
        }
        _ => handle(&state, peer, request, &request_id).await,
    };
    if let Some(cors) = &state.cors {
        apply_cors(cors, origin.as_deref(), &mut response);
    }
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("apigw-requestid", id);
    }
    tracing::info!(
        "{method} {path} {} {}ms {}",
        response.status().as_u16(),
        started.elapsed().as_millis(),
        function.as_deref().unwrap_or("-")
    );
    response
}

async fn handle(state: &ApiState, peer: SocketAddr, request: Request, request_id: &str) -> (Response, Option<String>) {
    let path = request.uri().path().to_owned();
    let Some(matched) = state.routes.find(request.method().as_str(), &path) else {
        return (message(StatusCode::NOT_FOUND, "Not Found"), None);
    };
    let function = matched.function.to_owned();
    let timeout_secs = state.runtime.function(&function).map(|f| f.timeout_secs).unwrap_or(0);

    let claims = if matched.route.auth_required {
        match authorize(state, request.headers(), &matched) {
            Ok(claims) => Some(claims),
            Err(response) => return (*response, Some(function)),
        }
    } else {
        None
    };

    let declared = request
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT_BYTES) {
        return (
            message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
            Some(function),
        );
    }
    let (parts, body) = request.into_parts();
    let body = match read_body(body, MAX_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return (
                message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
                Some(function),
            );
        }
        Err(BodyError::Read(e)) => {
            tracing::debug!("reading the request body: {e}");
            return (message(StatusCode::BAD_REQUEST, "Bad Request"), Some(function));
        }
    };
    let input = RequestInput {
        method: parts.method.as_str(),
        raw_path: &path,
        raw_query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body: &body,
        source_ip: peer.ip().to_string(),
        version: parts.version,
        request_id,
        account_id: &state.account_id,
    };
    let event = match build_event(&input, &matched, claims.as_ref()) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("cannot build the event for {function}: {e}");
            return (
                message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
                Some(function),
            );
        }
    };
    let outcome = match state.runtime.invoke(&function, event).await {
        Ok(o) => o,
        Err(RuntimeError::ShuttingDown) => {
            return (
                message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
                Some(function),
            );
        }
        Err(e) => {
            tracing::error!("{e}");
            return (
                message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
                Some(function),
            );
        }
    };
    let response = match outcome {
        InvocationOutcome::Ok(payload) => match map_v2_response(&payload) {
            Ok(reply) => reply.into_response(),
            Err(e) => {
                tracing::warn!("{function} answered a malformed response: {e}");
                message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        },
        InvocationOutcome::Timeout => {
            tracing::warn!("{function} timed out after {timeout_secs}s");
            message(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out")
        }
        other => {
            if let Some((error_type, error_message)) = other.error_parts(timeout_secs) {
                tracing::warn!("{function} failed: {error_type}: {}", first_line(&error_message));
            }
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    };
    (response, Some(function))
}

fn origin_allowed(cors: &CorsConfig, origin: &str) -> bool {
    cors.allow_origins.iter().any(|o| {
        o == "*"
            || o.eq_ignore_ascii_case(origin)
            || o.split_once("://*.").is_some_and(|(scheme, domain)| {
                origin
                    .strip_prefix(scheme)
                    .and_then(|rest| rest.strip_prefix("://"))
                    .is_some_and(|host| host.ends_with(&format!(".{domain}")))
            })
    })
}

fn insert_header(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}

/// API Gateway answers CORS preflights itself (no route, no authorizer, no function).
fn preflight(cors: &CorsConfig, origin: &str, headers: &HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if !origin_allowed(cors, origin) {
        return response;
    }
    let requested = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let listed = |list: &[String], name: &str| {
        if list.iter().any(|x| x == "*") {
            requested(name)
        } else {
            list.join(",")
        }
    };
    let methods = listed(&cors.allow_methods, "access-control-request-method");
    let allowed_headers = listed(&cors.allow_headers, "access-control-request-headers");
    if !methods.is_empty() {
        insert_header(&mut response, "access-control-allow-methods", &methods);
    }
    if !allowed_headers.is_empty() {
        insert_header(&mut response, "access-control-allow-headers", &allowed_headers);
    }
    if let Some(max_age) = cors.max_age {
        insert_header(&mut response, "access-control-max-age", &max_age.to_string());
    }
    response
}

/// The CORS headers of every response (the function's own are replaced, as API Gateway does).
fn apply_cors(cors: &CorsConfig, origin: Option<&str>, response: &mut Response) {
    let own: Vec<HeaderName> = response
        .headers()
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-allow-") || k.as_str() == "access-control-expose-headers")
        .cloned()
        .collect();
    let preflight =
        response.status() == StatusCode::NO_CONTENT && response.headers().contains_key("access-control-allow-methods");
    if !preflight {
        for name in own {
            response.headers_mut().remove(name);
        }
    }
    let Some(origin) = origin.filter(|o| origin_allowed(cors, o)) else {
        return;
    };
    let wildcard = cors.allow_origins.iter().any(|o| o == "*") && !cors.allow_credentials;
    insert_header(
        response,
        "access-control-allow-origin",
        if wildcard { "*" } else { origin },
    );
    if cors.allow_credentials {
        insert_header(response, "access-control-allow-credentials", "true");
    }
    if !cors.expose_headers.is_empty() && !preflight {
        insert_header(
            response,
            "access-control-expose-headers",
            &cors.expose_headers.join(","),
        );
    }
    if !wildcard {
        response
            .headers_mut()
            .append("vary", HeaderValue::from_static("origin"));
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// The JWT authorizer: 401 without a valid token, 403 without a required scope.
fn authorize(state: &ApiState, headers: &HeaderMap, matched: &RouteMatch<'_>) -> Result<jwt::Claims, Box<Response>> {
    let unauthorized = |description: &str| {
        let mut r = message(StatusCode::UNAUTHORIZED, "Unauthorized");
        let challenge = format!(
            "Bearer error=\"invalid_token\", error_description=\"{}\"",
            description.replace('"', "'")
        );
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert("www-authenticate", v);
        }
        r
    };
    let Some(auth) = &state.auth else {
        return Err(Box::new(unauthorized("no authorizer configured")));
    };
    let Some(header) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    else {
        return Err(Box::new(unauthorized("missing Authorization header")));
    };
    // API Gateway accepts the token with or without the "Bearer " prefix.
    let token = match header.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => header,
    };
    if token.is_empty() {
        return Err(Box::new(unauthorized("empty token")));
    }
    let claims = jwt::verify(&state.jwt_secret, auth, token).map_err(|e| {
        tracing::debug!("rejected token: {e}");
        Box::new(unauthorized(&e.to_string()))
    })?;
    let required = &matched.route.authorization_scopes;
    if !required.is_empty() {
        let granted = jwt::scopes(&claims).unwrap_or_default();
        if !required.iter().any(|s| granted.contains(s)) {
            return Err(Box::new(message(StatusCode::FORBIDDEN, "Forbidden")));
        }
    }
    Ok(claims)
}

/// What the v2.0 event is built from.
pub struct RequestInput<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: String,
    pub version: http::Version,
    pub request_id: &'a str,
    pub account_id: &'a str,
}

/// The API Gateway HTTP API payload 2.0 event, as JSON bytes.
pub fn build_event(
    input: &RequestInput<'_>,
    matched: &RouteMatch<'_>,
    claims: Option<&jwt::Claims>,
) -> Result<Vec<u8>, String> {
    let route_key = matched.route.route_key();
    let method = aws_lambda_events::http::Method::from_bytes(input.method.as_bytes()).map_err(|e| e.to_string())?;

    // Lower-case names (http's are already), repeated headers joined with ",", cookies apart.
    let mut headers = aws_lambda_events::http::HeaderMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for name in input.headers.keys() {
        let values: Vec<&[u8]> = input.headers.get_all(name).iter().map(HeaderValue::as_bytes).collect();
        if name.as_str() == "cookie" {
            for v in values {
                cookies.extend(
                    String::from_utf8_lossy(v)
                        .split(';')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(str::to_owned),
                );
            }
            continue;
        }
        let joined = values.join(&b","[..]);
        let text = String::from_utf8_lossy(&joined).into_owned();
        if let (Ok(n), Ok(v)) = (
            aws_lambda_events::http::HeaderName::from_bytes(name.as_str().as_bytes()),
            aws_lambda_events::http::HeaderValue::from_str(&text),
        ) {
            headers.insert(n, v);
        }
    }
    let host = input
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    let defaults = [
        ("x-forwarded-for", input.source_ip.clone()),
        ("x-forwarded-proto", "http".to_owned()),
        (
            "x-forwarded-port",
            host.rsplit_once(':')
                .map(|(_, p)| p.to_owned())
                .unwrap_or_else(|| "80".to_owned()),
        ),
        (
            "x-amzn-trace-id",
            format!(
                "Root=1-{:08x}-{}",
                time::OffsetDateTime::now_utc().unix_timestamp(),
                &uuid::Uuid::new_v4().simple().to_string()[..24]
            ),
        ),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(name)
            && let Ok(v) = aws_lambda_events::http::HeaderValue::from_str(&value)
        {
            headers.insert(name, v);
        }
    }

    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in form_urlencoded::parse(input.raw_query.as_bytes()) {
        query.entry(k.into_owned()).or_default().push(v.into_owned());
    }

    let (body, is_base64_encoded) = if input.body.is_empty() {
        (None, false)
    } else {
        match std::str::from_utf8(input.body) {
            Ok(text) => (Some(text.to_owned()), false),
            Err(_) => (Some(base64::engine::general_purpose::STANDARD.encode(input.body)), true),
        }
    };

    let now = time::OffsetDateTime::now_utc();
    let time_text = now
        .format(time::macros::format_description!(
            "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
        ))
        .map_err(|e| e.to_string())?;

    let mut http_desc = ApiGatewayV2httpRequestContextHttpDescription::default();
    http_desc.method = method;
    http_desc.path = Some(input.raw_path.to_owned());
    http_desc.protocol = Some(
        match input.version {
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2.0",
            _ => "HTTP/1.1",
        }
        .to_owned(),
    );
    http_desc.source_ip = Some(input.source_ip.clone());
    http_desc.user_agent = Some(
        input
            .headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
    );

    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route_key.clone());
    context.account_id = Some(input.account_id.to_owned());
    context.stage = Some("$default".to_owned());
    context.request_id = Some(input.request_id.to_owned());
    context.apiid = Some(crate::resources::LOCAL_API_ID.to_owned());
    context.domain_prefix = Some(host.split(['.', ':']).next().unwrap_or("localhost").to_owned());
    context.domain_name = Some(host);
    context.time = Some(time_text);
    context.time_epoch = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    context.http = http_desc;
    if let Some(claims) = claims {
        let mut jwt_desc = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt_desc.claims = jwt::api_gateway_claims(claims);
        jwt_desc.scopes = jwt::scopes(claims);
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt_desc);
        context.authorizer = Some(authorizer);
    }

    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".to_owned());
    event.route_key = Some(route_key);
    event.raw_path = Some(input.raw_path.to_owned());
    event.raw_query_string = Some(input.raw_query.to_owned());
    event.cookies = (!cookies.is_empty()).then_some(cookies);
    event.headers = headers;
    event.query_string_parameters = QueryMap::from(query);
    event.path_parameters = matched.path_parameters.clone();
    event.request_context = context;
    event.body = body;
    event.is_base64_encoded = is_base64_encoded;

    // The struct also carries fields of other payloads (custom authorizer v1); API Gateway's
    // v2.0 event has none of them.
    let mut value = serde_json::to_value(&event).map_err(|e| e.to_string())?;
    if let Some(map) = value.as_object_mut() {
        for key in [
            "type",
            "methodArn",
            "httpMethod",
            "identitySource",
            "authorizationToken",
            "resource",
        ] {
            map.remove(key);
        }
    }
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}

/// An HTTP response decided from a function's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl IntoResponse for HttpReply {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        for (name, value) in self.headers {
            match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
                (Ok(n), Ok(v)) => {
                    response.headers_mut().append(n, v);
                }
                _ => tracing::warn!("dropping invalid response header {name:?}"),
            }
        }
        response
    }
}

fn header_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

/// Maps a function's payload-2.0 answer to an HTTP response: an object with `statusCode` is a
/// structured response (`headers`, `multiValueHeaders`, `cookies` → `set-cookie`, `body`,
/// `isBase64Encoded`); any other JSON is a 200 `application/json` with that JSON as body.
pub fn map_v2_response(payload: &[u8]) -> Result<HttpReply, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let Some(object) = value.as_object().filter(|o| o.contains_key("statusCode")) else {
        return Ok(HttpReply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: payload.to_vec(),
        });
    };
    let status = match &object["statusCode"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .and_then(|n| u16::try_from(n).ok())
    .filter(|n| (100..=599).contains(n))
    .ok_or_else(|| format!("statusCode {} is not an HTTP status", object["statusCode"]))?;

    let mut headers = Vec::new();
    if let Some(map) = object.get("headers").and_then(Value::as_object) {
        for (name, value) in map {
            if let Some(text) = header_text(value) {
                headers.push((name.to_ascii_lowercase(), text));
            }
        }
    }
    if let Some(map) = object.get("multiValueHeaders").and_then(Value::as_object) {
        for (name, values) in map {
            let name = name.to_ascii_lowercase();
            // A header in both maps is sent once per multiValueHeaders value.
            if values.as_array().is_some() {
                headers.retain(|(n, _)| *n != name);
            }
            for value in values.as_array().into_iter().flatten() {
                if let Some(text) = header_text(value) {
                    headers.push((name.clone(), text));
                }
            }
        }
    }
    if let Some(cookies) = object.get("cookies").and_then(Value::as_array) {
        for cookie in cookies {
            if let Some(text) = header_text(cookie) {
                headers.push(("set-cookie".into(), text));
            }
        }
    }
    let body = match object.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    let body = if object.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false) {
        base64::engine::general_purpose::STANDARD
            .decode(&body)
            .map_err(|e| format!("isBase64Encoded but the body is not base64: {e}"))?
    } else {
        body
    };
    Ok(HttpReply { status, headers, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::HttpRoute;

    #[test]
    fn structured_response() {
        let reply = map_v2_response(
            br#"{"statusCode":201,"headers":{"Content-Type":"application/json","X-N":3},"cookies":["a=1","b=2"],"body":"{\"id\":1}"}"#,
        )
        .expect("maps");
        assert_eq!(reply.status, 201);
        assert_eq!(
            reply.headers,
            vec![
                ("content-type".into(), "application/json".into()),
                ("x-n".into(), "3".into()),
                ("set-cookie".into(), "a=1".into()),
                ("set-cookie".into(), "b=2".into())
            ]
        );
        assert_eq!(reply.body, br#"{"id":1}"#);
    }

    #[test]
    fn multi_value_headers_and_empty_body() {
        let reply =
            map_v2_response(br#"{"statusCode":"204","headers":{"vary":"x"},"multiValueHeaders":{"Vary":["a","b"]}}"#)
                .expect("maps");
        assert_eq!(reply.status, 204);
        assert_eq!(
            reply.headers,
            vec![("vary".into(), "a".into()), ("vary".into(), "b".into())]
        );
        assert!(reply.body.is_empty());
    }

    #[test]
    fn base64_body() {
        let reply = map_v2_response(br#"{"statusCode":200,"body":"AAEC/w==","isBase64Encoded":true}"#).expect("maps");
        assert_eq!(reply.body, vec![0, 1, 2, 255]);
        assert!(map_v2_response(br#"{"statusCode":200,"body":"%%%","isBase64Encoded":true}"#).is_err());
    }

    #[test]
    fn bare_json_is_a_200() {
        for payload in [&br#"{"hello":"world"}"#[..], b"[1,2]", b"\"text\"", b"42", b"null"] {
            let reply = map_v2_response(payload).expect("maps");
            assert_eq!(reply.status, 200);
            assert_eq!(reply.headers, vec![("content-type".into(), "application/json".into())]);
            assert_eq!(reply.body, payload);
        }
    }

    #[test]
    fn malformed_responses() {
        assert!(map_v2_response(b"not json").is_err());
        assert!(map_v2_response(br#"{"statusCode":"abc"}"#).is_err());
        assert!(map_v2_response(br#"{"statusCode":9999}"#).is_err());
        assert!(map_v2_response(br#"{"statusCode":null}"#).is_err());
    }

    fn cors() -> CorsConfig {
        CorsConfig {
            allow_origins: vec!["https://app.example.com".into(), "https://*.dev.example.com".into()],
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["*".into()],
            expose_headers: vec!["location".into(), "etag".into()],
            max_age: Some(600),
            allow_credentials: false,
        }
    }

    #[test]
    fn cors_preflight_and_responses() {
        let mut headers = HeaderMap::new();
        headers.insert("access-control-request-method", HeaderValue::from_static("POST"));
        headers.insert(
            "access-control-request-headers",
            HeaderValue::from_static("authorization,content-type"),
        );
        let mut r = preflight(&cors(), "https://app.example.com", &headers);
        apply_cors(&cors(), Some("https://app.example.com"), &mut r);
        let h = |r: &Response, n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            h(&r, "access-control-allow-origin").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(h(&r, "access-control-allow-methods").as_deref(), Some("GET,POST"));
        assert_eq!(
            h(&r, "access-control-allow-headers").as_deref(),
            Some("authorization,content-type")
        );
        assert_eq!(h(&r, "access-control-max-age").as_deref(), Some("600"));

        let mut r = message(StatusCode::OK, "x");
        r.headers_mut()
            .insert("access-control-allow-origin", HeaderValue::from_static("https://evil"));
        apply_cors(&cors(), Some("https://a.dev.example.com"), &mut r);
        assert_eq!(
            h(&r, "access-control-allow-origin").as_deref(),
            Some("https://a.dev.example.com")
        );
        assert_eq!(h(&r, "access-control-expose-headers").as_deref(), Some("location,etag"));

        let mut r = message(StatusCode::OK, "x");
        apply_cors(&cors(), Some("https://other.example.com"), &mut r);
        assert_eq!(h(&r, "access-control-allow-origin"), None);
        let r = preflight(&cors(), "https://other.example.com", &headers);
        assert_eq!(h(&r, "access-control-allow-methods"), None);
    }

    #[test]
    fn event_shape() {
        let route = HttpRoute {
            method: "POST".into(),
            path: "/presales/{id}".into(),
            auth_required: true,
            authorization_scopes: vec![],
            event: "E".into(),
        };
        let matched = RouteMatch {
            function: "F",
            route: &route,
            path_parameters: HashMap::from([("id".to_owned(), "p 1".to_owned())]),
        };
        let mut headers = HeaderMap::new();
        headers.append("x-multi", HeaderValue::from_static("a"));
        headers.append("x-multi", HeaderValue::from_static("b"));
        headers.append("cookie", HeaderValue::from_static("s=1; t=2"));
        headers.append("host", HeaderValue::from_static("127.0.0.1:3000"));
        headers.append("user-agent", HeaderValue::from_static("curl/8"));
        let claims = json!({"sub": "u", "exp": 1700000000, "clients": "acme globex", "scope": "a b"});
        let input = RequestInput {
            method: "POST",
            raw_path: "/presales/p%201",
            raw_query: "a=1&a=2&b=x+y",
            headers: &headers,
            body: &[0xff, 0x00],
            source_ip: "127.0.0.1".into(),
            version: http::Version::HTTP_11,
            request_id: "rid",
            account_id: "123456789012",
        };
        let event: Value =
            serde_json::from_slice(&build_event(&input, &matched, claims.as_object()).expect("event")).expect("json");
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["routeKey"], "POST /presales/{id}");
        assert_eq!(event["rawPath"], "/presales/p%201");
        assert_eq!(event["rawQueryString"], "a=1&a=2&b=x+y");
        assert_eq!(event["headers"]["x-multi"], "a,b");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["cookies"], json!(["s=1", "t=2"]));
        assert_eq!(event["queryStringParameters"], json!({"a": "1,2", "b": "x y"}));
        assert_eq!(event["pathParameters"], json!({"id": "p 1"}));
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], "/wA=");
        assert!(event.get("httpMethod").is_none());
        let ctx = &event["requestContext"];
        assert_eq!(ctx["apiId"], "local");
        assert_eq!(ctx["stage"], "$default");
        assert_eq!(ctx["requestId"], "rid");
        assert_eq!(ctx["accountId"], "123456789012");
        assert_eq!(ctx["domainName"], "127.0.0.1:3000");
        assert_eq!(ctx["http"]["method"], "POST");
        assert_eq!(ctx["http"]["sourceIp"], "127.0.0.1");
        assert_eq!(ctx["http"]["userAgent"], "curl/8");
        assert_eq!(ctx["authorizer"]["jwt"]["claims"]["exp"], "1700000000");
        assert_eq!(ctx["authorizer"]["jwt"]["claims"]["clients"], "acme globex");
        assert_eq!(ctx["authorizer"]["jwt"]["scopes"], json!(["a", "b"]));
        // The event is what the functions deserialize.
        let typed: ApiGatewayV2httpRequest = serde_json::from_value(event).expect("ApiGatewayV2httpRequest");
        assert_eq!(typed.request_context.http.method, aws_lambda_events::http::Method::POST);
    }
}
