//! Dev tokens: HS256 JWTs signed with the local profile's secret, verified as API Gateway's JWT
//! authorizer would (issuer, audience, expiry), and their claims rendered as API Gateway puts them
//! in `requestContext.authorizer.jwt.claims`.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The issuer/audience come from the template's authorizer, so tokens always match it.
//! let auth = local_gateway::template::load_auth_config("infra/template.yaml", ".local/test/resources.json")?;
//! let clients = vec!["acme".to_owned(), "globex".to_owned()];
//! let token = local_gateway::jwt::mint("secret", &auth, "agent-7", "agent", &clients, 3600)?;
//! let claims = local_gateway::jwt::verify("secret", &auth, &token)?;
//! assert_eq!(claims["clients"], "acme globex");
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

use crate::template::AuthConfig;

/// Clock skew tolerated on `exp`/`nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 5;

pub type Claims = Map<String, Value>;

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("the JWT secret is empty")]
    EmptySecret,
    #[error("the authorizer has no audience")]
    NoAudience,
    #[error("cannot sign the token: {0}")]
    Sign(String),
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("{0}")]
    BadRequest(String),
}

/// What a minted token says. `clients` becomes one space-separated `clients` claim
/// (`"acme globex"`); `name` defaults to `sub`; `extra` claims are added last (and win).
#[derive(Debug, Clone, Default)]
pub struct TokenRequest<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub sub: &'a str,
    pub role: &'a str,
    pub clients: &'a [String],
    /// Lifetime from now; negative mints an already expired token (for tests).
    pub ttl_secs: i64,
    pub extra: Option<Claims>,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Mints a token for the template's authorizer (`iss` = issuer, `aud` = its first audience),
/// valid for `ttl_secs`. Claims: iss, aud, sub, iat, exp, role, clients, name.
pub fn mint(
    secret: &str,
    auth: &AuthConfig,
    sub: &str,
    role: &str,
    clients: &[String],
    ttl_secs: u64,
) -> Result<String, JwtError> {
    let audience = auth.audience.first().ok_or(JwtError::NoAudience)?;
    mint_token(
        secret,
        &TokenRequest {
            issuer: &auth.issuer,
            audience,
            sub,
            role,
            clients,
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2),
            extra: None,
        },
    )
}

/// Mints a token with explicit issuer/audience and optional extra claims.
pub fn mint_token(secret: &str, request: &TokenRequest<'_>) -> Result<String, JwtError> {
    let now = now_secs();
    let mut claims = Claims::new();
    claims.insert("iss".into(), request.issuer.into());
    claims.insert("aud".into(), request.audience.into());
    claims.insert("sub".into(), request.sub.into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), now.saturating_add(request.ttl_secs).into());
    claims.insert("role".into(), request.role.into());
    claims.insert("clients".into(), request.clients.join(" ").into());
    claims.insert("name".into(), request.sub.into());
    if let Some(extra) = &request.extra {
        claims.extend(extra.clone());
    }
    sign(secret, &claims)
}

/// Signs arbitrary claims with HS256.
pub fn sign(secret: &str, claims: &Claims) -> Result<String, JwtError> {
    if secret.is_empty() {
        return Err(JwtError::EmptySecret);
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| JwtError::Sign(e.to_string()))
}

/// Verifies signature (HS256), `iss`, `aud` (one of the authorizer's audiences) and `exp`
/// (required, with [`LEEWAY_SECS`]); returns every claim.
pub fn verify(secret: &str, auth: &AuthConfig, token: &str) -> Result<Claims, JwtError> {
    if secret.is_empty() {
        return Err(JwtError::EmptySecret);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[auth.issuer.as_str()]);
    validation.set_audience(&auth.audience);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.leeway = LEEWAY_SECS;
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation)
        .map(|data| data.claims)
        .map_err(|e| JwtError::Invalid(e.to_string()))
}

/// The roles the back office knows; a dev token names one of them.
pub const ROLES: [&str; 5] = ["agent", "validator", "supervisor", "finance", "admin"];

/// The longest-lived dev token the console's sign-in mints: a working day.
pub const MAX_DEV_TTL_SECS: u64 = 8 * 3600;

/// What the console's dev sign-in (`POST /_local/token`) asks for. `clients` is a list or a
/// comma-separated string, as `infra/local/token --clients` takes it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevTokenRequest {
    pub role: String,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub clients: DevClients,
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(untagged)]
pub enum DevClients {
    #[default]
    None,
    List(Vec<String>),
    Text(String),
}

/// A [`DevTokenRequest`] checked: a known role, ids the API would accept, a bounded lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevToken {
    pub role: String,
    pub sub: String,
    pub clients: Vec<String>,
    pub ttl_secs: u64,
}

fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'))
}

impl DevTokenRequest {
    pub fn validated(self) -> Result<DevToken, JwtError> {
        let invalid = |detail: String| Err(JwtError::BadRequest(detail));
        if !ROLES.contains(&self.role.as_str()) {
            return invalid(format!("role must be one of {}", ROLES.join(", ")));
        }
        let sub = self.sub.unwrap_or_else(|| format!("{}-1", self.role));
        if !id_ok(&sub) {
            return invalid("sub is 1-64 letters, digits, '-', '_', '.', ':', '@'".into());
        }
        let clients: Vec<String> = match self.clients {
            DevClients::None => Vec::new(),
            DevClients::List(list) => list,
            DevClients::Text(text) => text.split(',').map(str::to_owned).collect(),
        }
        .into_iter()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
        if clients.len() > 50 || !clients.iter().all(|c| id_ok(c)) {
            return invalid("clients are up to 50 ids of 1-64 letters, digits, '-', '_', '.', ':', '@'".into());
        }
        let ttl_secs = self.ttl_secs.unwrap_or(3600);
        if !(60..=MAX_DEV_TTL_SECS).contains(&ttl_secs) {
            return invalid(format!("ttl_secs is 60 to {MAX_DEV_TTL_SECS}"));
        }
        Ok(DevToken {
            role: self.role,
            sub,
            clients,
            ttl_secs,
        })
    }
}

/// Renders a claim as API Gateway does: strings as they are, numbers as their decimal text,
/// arrays as `[a b c]`, objects as JSON.
pub fn claim_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        Value::Array(items) => format!("[{}]", items.iter().map(claim_text).collect::<Vec<_>>().join(" ")),
        Value::Object(_) => value.to_string(),
    }
}

/// Every claim as a string (`requestContext.authorizer.jwt.claims`).
pub fn api_gateway_claims(claims: &Claims) -> HashMap<String, String> {
    claims.iter().map(|(k, v)| (k.clone(), claim_text(v))).collect()
}

/// `requestContext.authorizer.jwt.scopes`: the `scope` claim split on spaces (or `scp` as a
/// list); `None` without one.
pub fn scopes(claims: &Claims) -> Option<Vec<String>> {
    match claims.get("scope").or_else(|| claims.get("scp"))? {
        Value::String(s) => Some(s.split_whitespace().map(str::to_owned).collect()),
        Value::Array(items) => Some(items.iter().map(claim_text).collect()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn auth() -> AuthConfig {
        AuthConfig {
            issuer: "https://auth.backoffice.local/".into(),
            audience: vec!["backoffice-api".into(), "other".into()],
        }
    }

    fn clients() -> Vec<String> {
        vec!["acme".into(), "globex".into()]
    }

    fn dev(body: serde_json::Value) -> Result<DevToken, String> {
        serde_json::from_value::<DevTokenRequest>(body)
            .map_err(|e| e.to_string())
            .and_then(|r| r.validated().map_err(|e| e.to_string()))
    }

    #[test]
    fn dev_token_requests_are_validated() {
        let ok = dev(serde_json::json!({"role": "validator", "sub": "val-1", "clients": ["acme", "globex"]}))
            .expect("valid");
        assert_eq!(ok.clients, ["acme", "globex"]);
        assert_eq!(ok.ttl_secs, 3600);
        let text = dev(serde_json::json!({"role": "agent", "clients": "acme, globex"})).expect("valid");
        assert_eq!((text.sub.as_str(), text.clients.len()), ("agent-1", 2));
        assert!(
            dev(serde_json::json!({"role": "root"}))
                .unwrap_err()
                .contains("role must be one of")
        );
        assert!(dev(serde_json::json!({"role": "admin", "sub": "a b"})).is_err());
        assert!(dev(serde_json::json!({"role": "admin", "clients": ["ac me"]})).is_err());
        assert!(dev(serde_json::json!({"role": "admin", "ttl_secs": 999_999})).is_err());
        assert!(dev(serde_json::json!({"role": "admin", "extra": 1})).is_err());
        let token = mint("s3cret", &auth(), &ok.sub, &ok.role, &ok.clients, ok.ttl_secs).expect("mint");
        let claims = verify("s3cret", &auth(), &token).expect("verifies");
        assert_eq!(
            (claims["role"].as_str(), claims["clients"].as_str()),
            (Some("validator"), Some("acme globex"))
        );
    }

    #[test]
    fn mint_then_verify() {
        let token = mint("s3cret", &auth(), "agent-7", "agent", &clients(), 60).expect("mint");
        let claims = verify("s3cret", &auth(), &token).expect("valid");
        assert_eq!(claims["iss"], "https://auth.backoffice.local/");
        assert_eq!(claims["aud"], "backoffice-api");
        assert_eq!(claims["sub"], "agent-7");
        assert_eq!(claims["role"], "agent");
        assert_eq!(claims["clients"], "acme globex");
        assert_eq!(claims["name"], "agent-7");
        let (iat, exp) = (claims["iat"].as_i64().unwrap_or(0), claims["exp"].as_i64().unwrap_or(0));
        assert_eq!(exp - iat, 60);
    }

    #[test]
    fn expired_is_rejected() {
        let clients = clients();
        let request = TokenRequest {
            issuer: &auth().issuer,
            audience: "backoffice-api",
            sub: "u",
            role: "agent",
            clients: &clients,
            ttl_secs: -60,
            extra: None,
        };
        let token = mint_token("s3cret", &request).expect("mint");
        assert!(matches!(verify("s3cret", &auth(), &token), Err(JwtError::Invalid(_))));
        // Within the leeway it still passes.
        let token = mint_token(
            "s3cret",
            &TokenRequest {
                ttl_secs: -1,
                ..request
            },
        )
        .expect("mint");
        assert!(verify("s3cret", &auth(), &token).is_ok());
    }

    #[test]
    fn wrong_secret_audience_issuer_are_rejected() {
        let token = mint("s3cret", &auth(), "u", "agent", &clients(), 60).expect("mint");
        assert!(verify("other", &auth(), &token).is_err(), "wrong secret");
        let wrong_aud = AuthConfig {
            issuer: auth().issuer,
            audience: vec!["nope".into()],
        };
        assert!(verify("s3cret", &wrong_aud, &token).is_err(), "wrong audience");
        let wrong_iss = AuthConfig {
            issuer: "https://elsewhere/".into(),
            audience: auth().audience,
        };
        assert!(verify("s3cret", &wrong_iss, &token).is_err(), "wrong issuer");
        assert!(verify("s3cret", &auth(), "not.a.jwt").is_err());
        assert!(matches!(
            mint("", &auth(), "u", "agent", &clients(), 60),
            Err(JwtError::EmptySecret)
        ));
    }

    #[test]
    fn second_audience_and_extra_claims() {
        let extra = json!({"scope": "presales.read presales.write", "groups": ["a", "b"], "name": "Ana"});
        let request = TokenRequest {
            issuer: "https://auth.backoffice.local/",
            audience: "other",
            sub: "u",
            role: "admin",
            clients: &[],
            ttl_secs: 60,
            extra: extra.as_object().cloned(),
        };
        let token = mint_token("k", &request).expect("mint");
        let claims = verify("k", &auth(), &token).expect("aud is one of the authorizer's audiences");
        assert_eq!(claims["name"], "Ana", "extra wins");
        assert_eq!(
            scopes(&claims),
            Some(vec!["presales.read".to_owned(), "presales.write".to_owned()])
        );
    }

    #[test]
    fn claims_flattened_like_api_gateway() {
        let claims = json!({"sub": "u", "exp": 1700000000, "ratio": 1.5, "admin": true, "groups": ["a", "b", 3], "obj": {"k": "v"}, "none": null});
        let flat = api_gateway_claims(claims.as_object().expect("object"));
        assert_eq!(flat["sub"], "u");
        assert_eq!(flat["exp"], "1700000000");
        assert_eq!(flat["ratio"], "1.5");
        assert_eq!(flat["admin"], "true");
        assert_eq!(flat["groups"], "[a b 3]");
        assert_eq!(flat["obj"], r#"{"k":"v"}"#);
        assert_eq!(flat["none"], "");
        assert_eq!(scopes(claims.as_object().expect("object")), None);
    }
}
