use std::collections::HashMap;
use std::io::Read as _;

use super::*;

fn gzip(bytes: &[u8]) -> &'static [u8] {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    Box::leak(encoder.finish().expect("gzip").into_boxed_slice())
}

fn assets() -> &'static [Asset] {
    let files: [(&str, &str, &'static [u8]); 3] = [
        ("app.js", "text/javascript; charset=utf-8", b"console.log('hola')"),
        (
            "index.html",
            "text/html; charset=utf-8",
            b"<!doctype html><title>Back office</title>",
        ),
        ("styles/main.css", "text/css; charset=utf-8", b"body{margin:0}"),
    ];
    Box::leak(
        files
            .into_iter()
            .map(|(path, content_type, raw)| Asset {
                path,
                content_type,
                etag: Box::leak(format!("d{}", raw.len()).into_boxed_str()),
                raw,
                gzip: gzip(raw),
            })
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    )
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    move |name| map.get(name).cloned()
}

fn oidc_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("CONSOLE_AUTH_MODE", "oidc"),
        (
            "OIDC_ISSUER",
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc",
        ),
        ("OIDC_AUTHORIZE_URL", "https://login.example.com/oauth2/authorize"),
        ("OIDC_TOKEN_URL", "https://login.example.com/oauth2/token"),
        ("OIDC_CLIENT_ID", "console-client"),
        ("OIDC_SCOPES", "openid profile"),
        (
            "CONSOLE_MEDIA_ORIGINS",
            "https://recordings-prod.s3.us-east-1.amazonaws.com",
        ),
    ]
}

fn console(pairs: &[(&str, &str)]) -> Console {
    Console {
        config: ConsoleConfig::from_env(env(pairs)),
        assets: assets(),
    }
}

fn get(route: &str, proxy: Option<&str>, headers: &[(&str, &str)]) -> ApiGatewayV2httpRequest {
    let mut event = ApiGatewayV2httpRequest::default();
    event.route_key = Some(route.into());
    event.raw_path = Some(match proxy {
        Some(p) => format!("/console/{p}"),
        None => route.trim_start_matches("GET ").into(),
    });
    if let Some(p) = proxy {
        event.path_parameters.insert("proxy".into(), p.into());
    }
    for (name, value) in headers {
        event.headers.insert(
            HeaderName::try_from(*name).expect("name"),
            HeaderValue::try_from(*value).expect("value"),
        );
    }
    event
}

fn header<'a>(response: &'a ApiGatewayV2httpResponse, name: &str) -> Option<&'a str> {
    response.headers.get(name).and_then(|v| v.to_str().ok())
}

fn body(response: &ApiGatewayV2httpResponse) -> Vec<u8> {
    match &response.body {
        Some(Body::Binary(b)) => b.clone(),
        Some(Body::Text(t)) => t.clone().into_bytes(),
        _ => Vec::new(),
    }
}

#[test]
fn the_app_is_served_gzip_compressed_to_browsers_that_accept_it() {
    let c = console(&[("CONSOLE_AUTH_MODE", "dev")]);
    let r = c.handle(&get("GET /console", None, &[("accept-encoding", "gzip, deflate, br")]));
    assert_eq!(r.status_code, 200);
    assert_eq!(header(&r, "content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(header(&r, "content-encoding"), Some("gzip"));
    assert_eq!(header(&r, "cache-control"), Some("no-cache"));
    assert_eq!(header(&r, "x-content-type-options"), Some("nosniff"));
    assert!(r.is_base64_encoded);
    let mut html = String::new();
    flate2::read::GzDecoder::new(body(&r).as_slice())
        .read_to_string(&mut html)
        .expect("gunzip");
    assert!(html.contains("<title>Back office</title>"));
    // The serialized payload is what API Gateway decodes: base64 with the flag set.
    let payload = serde_json::to_value(&r).expect("serializes");
    assert_eq!(payload["isBase64Encoded"], true);
    assert!(payload["body"].as_str().is_some_and(|b| !b.contains('<')));
}

#[test]
fn without_gzip_the_file_is_sent_as_is_and_cached_briefly() {
    let c = console(&[("CONSOLE_AUTH_MODE", "dev")]);
    let r = c.handle(&get(
        "GET /console/{proxy+}",
        Some("styles/main.css"),
        &[("accept-encoding", "gzip;q=0, identity")],
    ));
    assert_eq!(r.status_code, 200);
    assert_eq!(header(&r, "content-encoding"), None);
    assert_eq!(header(&r, "content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(header(&r, "cache-control"), Some("public, max-age=300"));
    assert_eq!(body(&r), b"body{margin:0}");
    assert_eq!(header(&r, "etag"), Some("\"d14\""));
}

#[test]
fn a_matching_etag_is_a_304_without_body() {
    let c = console(&[("CONSOLE_AUTH_MODE", "dev")]);
    for tag in ["\"d19\"", "W/\"d19-gz\"", "\"x\", \"d19\""] {
        let r = c.handle(&get("GET /console/{proxy+}", Some("app.js"), &[("if-none-match", tag)]));
        assert_eq!(r.status_code, 304, "{tag}");
        assert!(r.body.is_none());
    }
    let r = c.handle(&get(
        "GET /console/{proxy+}",
        Some("app.js"),
        &[("if-none-match", "\"old\"")],
    ));
    assert_eq!(r.status_code, 200);
}

#[test]
fn client_side_routes_get_the_app_and_missing_files_a_problem() {
    let c = console(&[("CONSOLE_AUTH_MODE", "dev")]);
    let r = c.handle(&get("GET /console/{proxy+}", Some("review/01HX"), &[]));
    assert_eq!(
        (r.status_code, header(&r, "content-type")),
        (200, Some("text/html; charset=utf-8"))
    );
    for path in ["missing.js", "../Cargo.toml", "styles/../../secret.css"] {
        let r = c.handle(&get("GET /console/{proxy+}", Some(path), &[]));
        assert_eq!(r.status_code, 404, "{path}");
        assert_eq!(header(&r, "content-type"), Some("application/problem+json"));
        let problem: Value = serde_json::from_slice(&body(&r)).expect("problem json");
        assert!(problem["detail"].as_str().is_some_and(|d| d.contains("has no file")));
    }
}

#[test]
fn config_json_tells_the_app_how_to_sign_in() {
    let dev = console(&[("CONSOLE_AUTH_MODE", "dev")]);
    let r = dev.handle(&get("GET /console/config.json", None, &[]));
    assert_eq!(r.status_code, 200);
    let doc: Value = serde_json::from_slice(&body(&r)).expect("json");
    assert_eq!(
        doc,
        json!({"auth": {"mode": "dev", "token_url": "/_local/token"}, "api_base": ""})
    );

    let oidc = console(&oidc_env());
    let doc: Value =
        serde_json::from_slice(&body(&oidc.handle(&get("GET /console/config.json", None, &[])))).expect("json");
    assert_eq!(doc["auth"]["mode"], "oidc");
    assert_eq!(doc["auth"]["client_id"], "console-client");
    assert_eq!(doc["auth"]["token_url"], "https://login.example.com/oauth2/token");
    assert_eq!(doc["auth"]["scopes"], "openid profile");
}

#[test]
fn an_unconfigured_sign_in_is_a_problem_the_app_can_show() {
    let c = console(&[
        ("CONSOLE_AUTH_MODE", "oidc"),
        ("OIDC_ISSUER", "https://idp.example.com"),
    ]);
    let r = c.handle(&get("GET /console/config.json", None, &[]));
    assert_eq!(r.status_code, 503);
    let problem: Value = serde_json::from_slice(&body(&r)).expect("problem json");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("OIDC_AUTHORIZE_URL"))
    );
    // The app itself is still served.
    assert_eq!(c.handle(&get("GET /console", None, &[])).status_code, 200);
    let plain = ConsoleConfig::from_env(env(&[
        ("CONSOLE_AUTH_MODE", "oidc"),
        ("OIDC_ISSUER", "http://idp.example.com"),
        ("OIDC_AUTHORIZE_URL", "https://idp.example.com/a"),
        ("OIDC_TOKEN_URL", "https://idp.example.com/t"),
        ("OIDC_CLIENT_ID", "c"),
    ]));
    assert!(matches!(
        plain,
        Err(ConfigError::Invalid {
            name: "OIDC_ISSUER",
            ..
        })
    ));
    assert!(ConsoleConfig::from_env(env(&[("CONSOLE_AUTH_MODE", "saml")])).is_err());
}

#[test]
fn the_policy_allows_this_origin_the_token_endpoint_and_the_recordings_bucket() {
    let aws = ConsoleConfig::from_env(env(&oidc_env())).expect("config");
    let csp = aws.content_security_policy();
    assert!(csp.starts_with("default-src 'self'; script-src 'self'; style-src 'self';"));
    assert!(csp.contains("connect-src 'self' https://login.example.com;"));
    assert!(csp.contains("media-src 'self' https://recordings-prod.s3.us-east-1.amazonaws.com;"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe"));
    // Locally the SDK presigns on the emulator's endpoint: that is where the audio comes from.
    let local = ConsoleConfig::from_env(env(&[
        ("CONSOLE_AUTH_MODE", "dev"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:5050"),
    ]))
    .expect("config");
    assert!(
        local
            .content_security_policy()
            .contains("media-src 'self' http://127.0.0.1:5050;")
    );
    // Nothing can be smuggled into the policy through an origin.
    let hostile = ConsoleConfig::from_env(env(&[
        ("CONSOLE_AUTH_MODE", "dev"),
        ("CONSOLE_MEDIA_ORIGINS", "https://a.example.com;script-src"),
    ]));
    assert!(hostile.is_err());
    let r = console(&oidc_env()).handle(&get("GET /console", None, &[]));
    assert_eq!(header(&r, "content-security-policy"), Some(csp.as_str()));
}

#[test]
fn origins_and_encodings_are_parsed_strictly() {
    assert_eq!(
        origin_of("https://Login.Example.com/oauth2/token?x=1").as_deref(),
        Some("https://login.example.com")
    );
    assert_eq!(
        origin_of("http://127.0.0.1:5050").as_deref(),
        Some("http://127.0.0.1:5050")
    );
    assert_eq!(origin_of("ftp://x"), None);
    assert_eq!(origin_of("https://user@evil"), None);
    let mut headers = HeaderMap::new();
    assert!(!accepts_gzip(&headers));
    headers.insert(
        http::header::ACCEPT_ENCODING,
        HeaderValue::from_static("br, GZIP;q=0.5"),
    );
    assert!(accepts_gzip(&headers));
    headers.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_static("*;q=0"));
    assert!(!accepts_gzip(&headers));
}

#[test]
fn the_embedded_console_has_its_page() {
    assert!(
        ASSETS.windows(2).all(|w| w[0].path < w[1].path),
        "sorted for the binary search"
    );
    let index = ASSETS
        .iter()
        .find(|a| a.path == INDEX)
        .expect("console/index.html is embedded");
    assert!(!index.raw.is_empty() && !index.gzip.is_empty());
    assert_eq!(index.content_type, "text/html; charset=utf-8");
}
