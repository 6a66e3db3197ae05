//! The incoming request as the handlers see it, built from API Gateway's payload v2 event.

use std::collections::HashMap;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use base64::Engine;
use serde::de::DeserializeOwned;

use backoffice_domain::principal::{Principal, Role};

use super::ApiError;

/// Default limit for JSON bodies: far above any legitimate pre-sale, far below API Gateway's 10 MB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// Which claims carry roles and clients in this deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimTrust {
    /// `role`, `clients` and Cognito groups only.
    Standard,
    /// Also `custom:role` / `custom:clients`: only where the user pool makes them read-only to
    /// every app client.
    CustomAttributes,
}

impl ClaimTrust {
    /// `TRUST_CUSTOM_CLAIMS=true` in the function's environment (the template's parameter),
    /// read once per process.
    pub fn from_env() -> Self {
        static TRUST: std::sync::OnceLock<ClaimTrust> = std::sync::OnceLock::new();
        *TRUST.get_or_init(|| match std::env::var("TRUST_CUSTOM_CLAIMS").as_deref() {
            Ok("true") => ClaimTrust::CustomAttributes,
            _ => ClaimTrust::Standard,
        })
    }
}
const MAX_CORRELATION_ID: usize = 128;

fn valid_correlation_id(id: &str) -> bool {
    (1..=MAX_CORRELATION_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-'))
}

#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: String,
    /// "POST /presales/{id}": the template's route, what handlers dispatch on.
    pub route_key: String,
    pub path: String,
    pub path_params: HashMap<String, String>,
    pub query: HashMap<String, Vec<String>>,
    pub headers: HashMap<String, String>,
    pub body: Option<Vec<u8>>,
    body_undecodable: bool,
    pub request_id: String,
    pub claims: HashMap<String, String>,
}

impl ApiRequest {
    /// The id that joins this request's logs with everything it causes downstream: the
    /// caller's `X-Correlation-Id` when it is a valid one, or else API Gateway's request id.
    pub fn correlation_id(&self) -> &str {
        self.header(CORRELATION_HEADER)
            .filter(|id| valid_correlation_id(id))
            .unwrap_or(&self.request_id)
    }

    /// A caller's `X-Correlation-Id` is stored with what it creates and logged everywhere: it is
    /// 1 to 128 visible characters from a safe set, or the request is refused.
    pub fn check_correlation_id(&self) -> Result<(), ApiError> {
        match self.header(CORRELATION_HEADER) {
            Some(id) if !valid_correlation_id(id) => Err(ApiError::InvalidParameter {
                field: "X-Correlation-Id".into(),
                detail: format!(
                    "X-Correlation-Id is 1 to {MAX_CORRELATION_ID} characters of A-Z, a-z, 0-9 and . _ : / - (a UUID is a good choice)"
                ),
            }),
            _ => Ok(()),
        }
    }

    pub fn from_apigw(event: ApiGatewayV2httpRequest) -> Self {
        let ctx = event.request_context;
        let method = ctx.http.method.as_str().to_owned();
        let path = event.raw_path.or(ctx.http.path).unwrap_or_default();
        let route_key = event
            .route_key
            .or(ctx.route_key)
            .unwrap_or_else(|| format!("{method} {path}"));
        let headers = event
            .headers
            .iter()
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|v| (name.as_str().to_ascii_lowercase(), v.to_owned()))
            })
            .collect();
        let mut query: HashMap<String, Vec<String>> = HashMap::new();
        for (name, value) in event.query_string_parameters.iter() {
            query.entry(name.to_owned()).or_default().push(value.to_owned());
        }
        let (body, body_undecodable) = match event.body {
            None => (None, false),
            Some(text) if event.is_base64_encoded => {
                match base64::engine::general_purpose::STANDARD.decode(text.as_bytes()) {
                    Ok(bytes) => (Some(bytes), false),
                    Err(_) => (None, true),
                }
            }
            Some(text) => (Some(text.into_bytes()), false),
        };
        let claims = ctx
            .authorizer
            .and_then(|a| a.jwt)
            .map(|jwt| jwt.claims)
            .unwrap_or_default();
        Self {
            method,
            route_key,
            path,
            path_params: event.path_parameters,
            query,
            headers,
            body,
            body_undecodable,
            request_id: ctx.request_id.unwrap_or_default(),
            claims,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn path_param(&self, name: &str) -> Result<&str, ApiError> {
        self.path_params
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ApiError::InvalidParameter {
                field: name.to_owned(),
                detail: format!("path parameter {name} is missing"),
            })
    }

    /// `Accept: text/csv` (a browser's or Excel's download) asks for a CSV instead of JSON.
    pub fn wants_csv(&self) -> bool {
        self.header("accept")
            .is_some_and(|accept| accept.split(',').any(|t| t.trim().starts_with("text/csv")))
    }

    /// A single-valued query parameter; repeating it is an error rather than a silent pick.
    pub fn query_param(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.query.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([one]) => Ok(Some(one.as_str())),
            Some(_) => Err(ApiError::InvalidParameter {
                field: name.to_owned(),
                detail: format!("query parameter {name} may appear once"),
            }),
        }
    }

    /// An optional `YYYY-MM-DD` query parameter.
    pub fn date_param(&self, name: &str) -> Result<Option<time::Date>, ApiError> {
        self.query_param(name)?
            .map(|raw| {
                time::Date::parse(raw, time::macros::format_description!("[year]-[month]-[day]")).map_err(|_| {
                    ApiError::InvalidParameter {
                        field: name.to_owned(),
                        detail: format!("{name} is a date, YYYY-MM-DD"),
                    }
                })
            })
            .transpose()
    }

    /// Refuse query parameters the route does not know, so a typo ("stauts") is not silently
    /// ignored and an unfiltered list returned.
    pub fn only_query_params(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.query.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(unknown) => Err(ApiError::InvalidParameter {
                field: unknown.clone(),
                detail: format!("unknown query parameter {unknown}; accepted: {}", known.join(", ")),
            }),
        }
    }

    /// The caller, from the JWT claims API Gateway verified. Accepts plain (`role`, `clients`)
    /// and Cognito-style (`custom:role`, `custom:clients`) claim names.
    /// Who is calling, from the claims API Gateway's JWT authorizer verified. Trusts
    /// `custom:*` attributes only where the deployment says so (`TRUST_CUSTOM_CLAIMS=true`).
    pub fn principal(&self) -> Result<Principal, ApiError> {
        self.principal_with(ClaimTrust::from_env())
    }

    /// The role comes from a claim users cannot edit: the issuer's `role` claim (set by the
    /// identity provider or a pre-token hook), or exactly one role among the user's Cognito
    /// groups (`cognito:groups`, which only administrators change). Clients come from `clients`
    /// or from `client:<id>` groups. `custom:role` / `custom:clients` are user-pool attributes
    /// that an app client may be allowed to write: refused unless `trust` says otherwise.
    pub fn principal_with(&self, trust: ClaimTrust) -> Result<Principal, ApiError> {
        let claim = |name: &str| self.claims.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let user_id = claim("sub").ok_or_else(|| ApiError::Unauthorized("the token has no subject".into()))?;
        let custom_role = claim("custom:role");
        let custom_clients = claim("custom:clients");
        if trust == ClaimTrust::Standard && (custom_role.is_some() || custom_clients.is_some()) {
            return Err(ApiError::Forbidden(
                "custom:role and custom:clients are not trusted here: roles come from the role claim or \
                 Cognito groups"
                    .into(),
            ));
        }
        let groups = claim("cognito:groups").map(split_claim_list).unwrap_or_default();
        let role = match claim("role").or(custom_role) {
            Some(raw) => Role::parse(raw).ok_or_else(|| ApiError::Forbidden(format!("unknown role {raw:?}")))?,
            None => {
                let roles: Vec<Role> = groups.iter().filter_map(|g| Role::parse(g)).collect();
                match roles.as_slice() {
                    [role] => *role,
                    [] => return Err(ApiError::Forbidden("the token carries no role".into())),
                    _ => return Err(ApiError::Forbidden("the token's groups name more than one role".into())),
                }
            }
        };
        let clients = match claim("clients").or(custom_clients) {
            Some(raw) => split_claim_list(raw),
            None => groups
                .iter()
                .filter_map(|g| g.strip_prefix("client:"))
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        Ok(Principal {
            user_id: user_id.to_owned(),
            role,
            clients,
        })
    }

    /// Parse the JSON body into `T`, telling syntax errors (400) from shape errors (422, with
    /// the offending field's path).
    pub fn json_body<T: DeserializeOwned>(&self, limit: usize) -> Result<T, ApiError> {
        if self.body_undecodable {
            return Err(ApiError::MalformedJson("the body is not valid base64".into()));
        }
        let bytes = self.body.as_deref().unwrap_or_default();
        if bytes.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        if let Some(content_type) = self.header("content-type") {
            let essence = content_type
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if essence != "application/json" && !essence.ends_with("+json") {
                return Err(ApiError::UnsupportedMediaType);
            }
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::MalformedJson(
                "the request body is empty; send a JSON object".into(),
            ));
        }
        parse_json(bytes)
    }
}

/// Two passes, so syntax and shape errors can never be confused: any JSON is first read as a
/// `Value` (failure: 400), then shaped into `T` with the failing field's path (failure: 422).
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::MalformedJson(format!("the body is not valid JSON: {e}")))?;
    // Every body of this API is an object; serde would otherwise read an array as a struct.
    if !value.is_object() {
        return Err(ApiError::InvalidBody {
            field: String::new(),
            detail: "the body must be a JSON object".into(),
        });
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        shape_error(path, err.into_inner())
    })
}

fn shape_error(path: String, err: serde_json::Error) -> ApiError {
    let message = err.to_string();
    // serde reports unknown/missing fields at the parent's path; point at the field itself.
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix).and_then(|rest| rest.split('`').next()));
    let parent = if path == "." { String::new() } else { path };
    let already_there = named.is_some_and(|name| parent == name || parent.ends_with(&format!(".{name}")));
    let field = match named {
        _ if already_there => parent,
        Some(name) if parent.is_empty() => name.to_owned(),
        Some(name) => format!("{parent}.{name}"),
        None => parent,
    };
    ApiError::InvalidBody { field, detail: message }
}

/// API Gateway renders list claims as "[a b]"; tokens may also use "a,b" or "a b".
pub fn split_claim_list(raw: &str) -> Vec<String> {
    raw.trim_matches(|c| c == '[' || c == ']')
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correlation_id_is_bounded_and_plain() {
        let with = |value: &str| {
            let mut event = ApiGatewayV2httpRequest::default();
            event.request_context.request_id = Some("apigw-1".into());
            if let Ok(value) = value.parse() {
                event.headers.insert("x-correlation-id", value);
            }
            ApiRequest::from_apigw(event)
        };
        let good = with("agent-app:7f3c/2026-11-30.1_a");
        assert_eq!(
            (good.correlation_id(), good.check_correlation_id().is_ok()),
            ("agent-app:7f3c/2026-11-30.1_a", true)
        );
        for bad in [
            "x".repeat(129),
            "two words".to_owned(),
            "<script>".to_owned(),
            "a;b=c".to_owned(),
        ] {
            let request = with(&bad);
            assert_eq!(request.correlation_id(), "apigw-1", "{bad:?} is never used");
            let refused = request.check_correlation_id().expect_err("refused");
            assert!(
                matches!(&refused, ApiError::InvalidParameter { field, .. } if field == "X-Correlation-Id"),
                "{bad:?}"
            );
        }
        assert_eq!(with("").correlation_id(), "apigw-1");
    }
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
        list: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        qty: u32,
    }

    fn err(json: &str) -> (u16, String, Option<String>) {
        match parse_json::<Outer>(json.as_bytes()) {
            Ok(v) => panic!("accepted {v:?}"),
            Err(e) => {
                let field = match &e {
                    ApiError::InvalidBody { field, .. } => Some(field.clone()),
                    _ => None,
                };
                (e.status(), e.slug().to_owned(), field)
            }
        }
    }

    #[test]
    fn syntax_errors_are_400_and_shape_errors_are_422_with_the_field() {
        assert_eq!(err("{\"name\": "), (400, "malformed-json".into(), None));
        assert_eq!(err("{} trailing"), (400, "malformed-json".into(), None));
        assert_eq!(
            err(r#"{"name":"a","inner":{"qty":1},"list":[{"qty":1}],"extra":1}"#),
            (422, "invalid-body".into(), Some("extra".into()))
        );
        assert_eq!(
            err(r#"{"name":"a","inner":{"qty":"x"},"list":[]}"#),
            (422, "invalid-body".into(), Some("inner.qty".into()))
        );
        assert_eq!(
            err(r#"{"name":"a","inner":{"qty":1},"list":[{"qty":1},{"qty":-1}]}"#),
            (422, "invalid-body".into(), Some("list[1].qty".into()))
        );
        assert_eq!(
            err(r#"{"name":"a","inner":{}, "list":[]}"#),
            (422, "invalid-body".into(), Some("inner.qty".into()))
        );
        assert_eq!(
            err(r#"{"inner":{"qty":1},"list":[]}"#),
            (422, "invalid-body".into(), Some("name".into()))
        );
        assert_eq!(err("[1,2]"), (422, "invalid-body".into(), Some("".into())));
    }

    #[test]
    fn claim_lists_in_every_shape() {
        assert_eq!(split_claim_list("[acme globex]"), vec!["acme", "globex"]);
        assert_eq!(split_claim_list("acme, globex"), vec!["acme", "globex"]);
        assert_eq!(split_claim_list(""), Vec::<String>::new());
    }

    fn request(claims: &[(&str, &str)], body: Option<&str>, content_type: Option<&str>) -> ApiRequest {
        let mut event = ApiGatewayV2httpRequest::default();
        let mut jwt = aws_lambda_events::apigw::ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims = claims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut authorizer = aws_lambda_events::apigw::ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt);
        event.request_context.authorizer = Some(authorizer);
        event.body = body.map(str::to_owned);
        if let Some(ct) = content_type {
            event
                .headers
                .insert("content-type", http::HeaderValue::from_str(ct).expect("header value"));
        }
        ApiRequest::from_apigw(event)
    }

    #[test]
    fn principal_from_claims() {
        let p = request(
            &[("sub", "u1"), ("role", "agent"), ("clients", "[acme globex]")],
            None,
            None,
        )
        .principal()
        .expect("ok");
        assert_eq!((p.user_id.as_str(), p.role, p.clients.len()), ("u1", Role::Agent, 2));
        let custom = request(&[("sub", "u1"), ("custom:role", "Finance")], None, None);
        let p = custom
            .principal_with(ClaimTrust::CustomAttributes)
            .expect("cognito style, where trusted");
        assert_eq!(p.role, Role::Finance);
        // A user-pool attribute the app client might write is not a role unless trusted.
        assert_eq!(
            custom.principal_with(ClaimTrust::Standard).map_err(|e| e.status()),
            Err(403)
        );
        assert_eq!(
            request(
                &[("sub", "u1"), ("role", "agent"), ("custom:clients", "acme")],
                None,
                None
            )
            .principal_with(ClaimTrust::Standard)
            .map_err(|e| e.status()),
            Err(403)
        );
        // Cognito groups, which only administrators change: one role, and the clients.
        let grouped = request(
            &[
                ("sub", "u2"),
                ("cognito:groups", "[validator client:acme client:globex]"),
            ],
            None,
            None,
        )
        .principal_with(ClaimTrust::Standard)
        .expect("groups");
        assert_eq!(
            (grouped.role, grouped.clients.clone()),
            (Role::Validator, vec!["acme".to_owned(), "globex".to_owned()])
        );
        assert_eq!(
            request(&[("sub", "u3"), ("cognito:groups", "[validator agent]")], None, None)
                .principal_with(ClaimTrust::Standard)
                .map_err(|e| e.status()),
            Err(403),
            "two roles is no role"
        );
        assert_eq!(
            request(&[("role", "agent")], None, None)
                .principal()
                .map_err(|e| e.status()),
            Err(401)
        );
        assert_eq!(
            request(&[("sub", "u")], None, None).principal().map_err(|e| e.status()),
            Err(403)
        );
        assert_eq!(
            request(&[("sub", "u"), ("role", "root")], None, None)
                .principal()
                .map_err(|e| e.status()),
            Err(403)
        );
    }

    #[test]
    fn body_limits_and_media_type() {
        let big = format!("{{\"name\":\"{}\"}}", "a".repeat(100));
        assert_eq!(
            request(&[], Some(&big), None)
                .json_body::<serde_json::Value>(50)
                .map_err(|e| e.status())
                .err(),
            Some(413)
        );
        assert_eq!(
            request(&[], Some("{}"), Some("text/plain"))
                .json_body::<serde_json::Value>(50)
                .map_err(|e| e.status())
                .err(),
            Some(415)
        );
        assert!(
            request(&[], Some("{}"), Some("application/json; charset=utf-8"))
                .json_body::<serde_json::Value>(50)
                .is_ok()
        );
        assert_eq!(
            request(&[], None, None)
                .json_body::<serde_json::Value>(50)
                .map_err(|e| e.slug())
                .err(),
            Some("malformed-json")
        );
    }
}
