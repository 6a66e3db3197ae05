//! console: the back-office web console (the top-level `console/` directory), embedded in this
//! binary at build time (`build.rs`) and served on the HTTP API without the JWT authorizer, plus
//! `config.json`, which tells the browser app how to sign in (ADR 0029).
//!
//! Routes: `GET /console` (the app), `GET /console/{proxy+}` (its files; a path without an
//! extension is a client-side route and gets the app), `GET /console/config.json`.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use backoffice_edge::http::ApiError;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

/// One embedded file: as it is and gzip-compressed.
#[derive(Debug)]
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    /// A digest of the file's bytes (the ETag, quoted, with `-gz` for the compressed form).
    pub etag: &'static str,
    pub raw: &'static [u8],
    pub gzip: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

pub const ROUTES: &[&str] = &["GET /console", "GET /console/{proxy+}", "GET /console/config.json"];

/// The file a client-side route (and `GET /console`) gets.
pub const INDEX: &str = "index.html";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name}: {detail}")]
    Invalid { name: &'static str, detail: String },
}

/// How the console signs people in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Local stacks: the gateway's `POST /_local/token` mints the profile's dev token.
    Dev,
    /// The identity provider's hosted login: authorization code with PKCE, in the browser.
    Oidc {
        issuer: String,
        authorize_url: String,
        token_url: String,
        client_id: String,
        scopes: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    pub auth: Auth,
    /// Prefix of the API's URLs; empty when the API is this origin (the console is on it).
    pub api_base: String,
    /// Origins the audio element may play from: the recordings bucket's presigned URLs.
    pub media_origins: Vec<String>,
    /// Origins besides this one that the app calls (the identity provider's token endpoint).
    pub connect_origins: Vec<String>,
}

/// `scheme://host[:port]` of an absolute http(s) URL; `None` for anything else, or for text
/// that would break out of a CSP source expression.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let valid = !authority.is_empty()
        && !authority.contains('@')
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    valid.then(|| format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

impl ConsoleConfig {
    /// From the function's environment (`get` is `std::env::var` in production). The media
    /// origins are `CONSOLE_MEDIA_ORIGINS` (the bucket's public endpoint, from the template)
    /// plus the S3 endpoint the SDK is pointed at (`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`,
    /// set locally), since presigned URLs are built on that endpoint.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text = |name: &'static str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let required = |name: &'static str| text(name).ok_or(ConfigError::Missing(name));
        let url = |name: &'static str| -> Result<String, ConfigError> {
            let value = required(name)?;
            let secure = value.starts_with("https://") || value.starts_with("http://127.0.0.1");
            match origin_of(&value) {
                Some(_) if secure => Ok(value),
                _ => Err(ConfigError::Invalid {
                    name,
                    detail: format!("{value:?} is not an https URL"),
                }),
            }
        };
        let auth = match text("CONSOLE_AUTH_MODE").as_deref() {
            Some("dev") => Auth::Dev,
            Some("oidc") | None => Auth::Oidc {
                issuer: url("OIDC_ISSUER")?,
                authorize_url: url("OIDC_AUTHORIZE_URL")?,
                token_url: url("OIDC_TOKEN_URL")?,
                client_id: required("OIDC_CLIENT_ID")?,
                scopes: text("OIDC_SCOPES").unwrap_or_else(|| "openid".into()),
            },
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "CONSOLE_AUTH_MODE",
                    detail: format!("{other:?} is neither oidc nor dev"),
                });
            }
        };
        let api_base = text("CONSOLE_API_BASE").unwrap_or_default();
        let mut media_origins = Vec::new();
        let listed = text("CONSOLE_MEDIA_ORIGINS").unwrap_or_default();
        let endpoint = text("AWS_ENDPOINT_URL_S3").or_else(|| text("AWS_ENDPOINT_URL"));
        for url in listed.split_whitespace().map(str::to_owned).chain(endpoint) {
            let origin = origin_of(&url).ok_or_else(|| ConfigError::Invalid {
                name: "CONSOLE_MEDIA_ORIGINS",
                detail: format!("{url:?} is not an http(s) origin"),
            })?;
            if !media_origins.contains(&origin) {
                media_origins.push(origin);
            }
        }
        let mut connect_origins = Vec::new();
        if let Auth::Oidc { token_url, .. } = &auth {
            connect_origins.extend(origin_of(token_url));
        }
        if !api_base.is_empty() {
            let origin = origin_of(&api_base).ok_or_else(|| ConfigError::Invalid {
                name: "CONSOLE_API_BASE",
                detail: format!("{api_base:?} is not an http(s) URL"),
            })?;
            connect_origins.push(origin);
        }
        Ok(Self {
            auth,
            api_base,
            media_origins,
            connect_origins,
        })
    }

    /// What `GET /console/config.json` says: everything the browser app needs to start.
    pub fn document(&self) -> Value {
        let auth = match &self.auth {
            Auth::Dev => json!({"mode": "dev", "token_url": "/_local/token"}),
            Auth::Oidc {
                issuer,
                authorize_url,
                token_url,
                client_id,
                scopes,
            } => json!({
                "mode": "oidc",
                "issuer": issuer,
                "authorize_url": authorize_url,
                "token_url": token_url,
                "client_id": client_id,
                "scopes": scopes,
                "redirect_path": "/console",
            }),
        };
        json!({"auth": auth, "api_base": self.api_base})
    }

    /// Scripts, styles and API calls from this origin only; audio from the recordings bucket.
    /// No inline script or style, no plugin, no framing.
    pub fn content_security_policy(&self) -> String {
        let extra = |origins: &[String]| origins.iter().map(|o| format!(" {o}")).collect::<String>();
        format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; \
             connect-src 'self'{}; media-src 'self'{}; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'",
            extra(&self.connect_origins),
            extra(&self.media_origins)
        )
    }
}

/// The function: the embedded assets and the configuration, or why it is missing (config.json
/// then answers with that problem, so the console shows it instead of a blank page).
pub struct Console {
    pub config: Result<ConsoleConfig, ConfigError>,
    pub assets: &'static [Asset],
}

impl Console {
    pub fn handle(&self, event: &ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
        let route = event.route_key.as_deref().unwrap_or_default();
        let reply = match route {
            "GET /console" => self.asset(INDEX, &event.headers),
            "GET /console/config.json" => self.config_json(),
            "GET /console/{proxy+}" => {
                let path = event
                    .path_parameters
                    .get("proxy")
                    .map(String::as_str)
                    .unwrap_or_default();
                self.file(path, &event.headers)
            }
            other => Err(ApiError::NotFound(format!("no route {other}"))),
        };
        let mut response = reply.unwrap_or_else(|error| {
            let problem = error.to_response(event.raw_path.as_deref(), event.request_context.request_id.as_deref());
            let mut response = ApiGatewayV2httpResponse::default();
            response.status_code = i64::from(problem.status);
            for (name, value) in &problem.headers {
                insert(&mut response.headers, name, value);
            }
            response
                .headers
                .insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response.body = Some(Body::Text(problem.body));
            response
        });
        let csp = match &self.config {
            Ok(config) => config.content_security_policy(),
            Err(_) => ConsoleConfig {
                auth: Auth::Dev,
                api_base: String::new(),
                media_origins: Vec::new(),
                connect_origins: Vec::new(),
            }
            .content_security_policy(),
        };
        insert(&mut response.headers, "content-security-policy", &csp);
        insert(&mut response.headers, "x-content-type-options", "nosniff");
        insert(&mut response.headers, "referrer-policy", "no-referrer");
        response
    }

    fn config_json(&self) -> Result<ApiGatewayV2httpResponse, ApiError> {
        let config = self
            .config
            .as_ref()
            .map_err(|e| ApiError::Unavailable(format!("the console's sign-in is not configured: {e}")))?;
        let mut response = ApiGatewayV2httpResponse::default();
        response.status_code = 200;
        insert(&mut response.headers, "content-type", "application/json");
        insert(&mut response.headers, "cache-control", "no-cache");
        response.body = Some(Body::Text(config.document().to_string()));
        Ok(response)
    }

    /// A file under `/console/`: the asset, else the app for a client-side route (no extension).
    fn file(&self, path: &str, headers: &HeaderMap) -> Result<ApiGatewayV2httpResponse, ApiError> {
        let not_found = || ApiError::NotFound(format!("the console has no file {path}"));
        if path.split('/').any(|segment| segment == ".." || segment == ".") {
            return Err(not_found());
        }
        let path = path.trim_start_matches('/');
        if self.find(path).is_some() {
            return self.asset(path, headers);
        }
        let last = path.rsplit('/').next().unwrap_or_default();
        if last.contains('.') {
            Err(not_found())
        } else {
            self.asset(INDEX, headers)
        }
    }

    fn find(&self, path: &str) -> Option<&'static Asset> {
        self.assets
            .binary_search_by(|a| a.path.cmp(path))
            .ok()
            .map(|i| &self.assets[i])
    }

    fn asset(&self, path: &str, headers: &HeaderMap) -> Result<ApiGatewayV2httpResponse, ApiError> {
        let asset = self
            .find(path)
            .ok_or_else(|| ApiError::NotFound(format!("the console has no file {path}")))?;
        let gzip = accepts_gzip(headers);
        let etag = if gzip {
            format!("\"{}-gz\"", asset.etag)
        } else {
            format!("\"{}\"", asset.etag)
        };
        let mut response = ApiGatewayV2httpResponse::default();
        insert(&mut response.headers, "etag", &etag);
        insert(&mut response.headers, "vary", "accept-encoding");
        // The app's page is revalidated every time, so a deployment shows at once; the files
        // it loads are not renamed by content, so they are cached only briefly.
        let cache = if asset.path == INDEX {
            "no-cache"
        } else {
            "public, max-age=300"
        };
        insert(&mut response.headers, "cache-control", cache);
        if not_modified(headers, asset.etag) {
            response.status_code = 304;
            return Ok(response);
        }
        response.status_code = 200;
        insert(&mut response.headers, "content-type", asset.content_type);
        let body = if gzip {
            insert(&mut response.headers, "content-encoding", "gzip");
            asset.gzip
        } else {
            asset.raw
        };
        // API Gateway passes binary bodies base64-encoded; `Body::Binary` is serialized so.
        response.body = Some(Body::Binary(body.to_vec()));
        response.is_base64_encoded = true;
        Ok(response)
    }
}

fn insert(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
        headers.insert(name, value);
    }
}

/// Whether `Accept-Encoding` lists gzip (or `*`) without `q=0`.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name == "gzip" || name == "*") && !refused
        })
}

/// `If-None-Match` names this file's ETag (either encoding, weak or strong) or `*`.
fn not_modified(headers: &HeaderMap, digest: &str) -> bool {
    headers
        .get_all(http::header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|tag| tag == "*" || tag == digest || tag.strip_suffix("-gz") == Some(digest))
}

#[cfg(test)]
mod tests;
