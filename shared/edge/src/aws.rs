//! AWS SDK configuration, built once per process at init (ADR 0020).
//!
//! A function on Lambda gets its region and credentials from the environment and talks only to
//! AWS's regional endpoints, so the configuration is built from exactly that and nothing else is
//! linked: no profile files, no SSO, STS, IMDS or ECS credential providers, no system trust store
//! read at start (`rustls-native-certs` opens every file of `/etc/ssl/certs`), no HTTP/2. The
//! HTTP client is [`crate::https`]'s: HTTP/1.1 over rustls on ring, with Amazon Trust Services'
//! five roots compiled in: every AWS service endpoint chains to one of them. `AWS_CA_BUNDLE` (the SDKs' standard variable) adds more roots, for a TLS proxy or
//! an emulator behind HTTPS.
//!
//! Endpoints come only from the standard `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`
//! variables: the same binary talks to AWS, LocalStack or moto.
//!
//! The configuration is read at init (a missing region stops it there); each service's client
//! is built on its first use ([`SdkClient`], ADR 0033).

use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use backoffice_store::sdk::SdkClient;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Amazon Root CA 1–4 and Starfield Services Root CA G2 (https://www.amazontrust.com/repository/).
const AMAZON_ROOTS: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

#[derive(Debug, thiserror::Error)]
pub enum AwsSetupError {
    #[error("neither AWS_REGION nor AWS_DEFAULT_REGION is set")]
    NoRegion,
    #[error("AWS_CA_BUNDLE {path}: {reason}")]
    CaBundle { path: String, reason: String },
    #[error("TLS: {0}")]
    Tls(String),
}

/// The SDK's configuration: region and credentials from the environment Lambda gives the
/// function, the function's name as the user agent's `app/…` token (CloudTrail and the local
/// emulator's request journal tell the callers apart by it), and the HTTPS client above.
pub fn sdk_config() -> Result<SdkConfig, AwsSetupError> {
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .ok_or(AwsSetupError::NoRegion)?;
    let mut roots = amazon_roots();
    if let Some(path) = env("AWS_CA_BUNDLE") {
        roots.extend(ca_bundle(&path)?);
    }
    let tls = crate::https::tls_config(roots).map_err(|e| AwsSetupError::Tls(e.to_string()))?;
    let http = SharedHttpClient::new(crate::https::SdkHttpClient::new(tls));
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(aws_credential_provider())
        .http_client(http);
    if let Some(url) = env("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(url);
    }
    if let Some(name) = app_name(env("AWS_LAMBDA_FUNCTION_NAME").as_deref()) {
        builder = builder.app_name(name);
    }
    Ok(builder.build())
}

fn aws_credential_provider() -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty())
}

/// The compiled-in roots, checked by a unit test.
pub(crate) fn amazon_roots() -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(AMAZON_ROOTS)
        .filter_map(Result::ok)
        .collect()
}

/// Reads and checks a PEM bundle now: a bad bundle must stop the init, not a request.
fn ca_bundle(path: &str) -> Result<Vec<CertificateDer<'static>>, AwsSetupError> {
    let failed = |reason: String| AwsSetupError::CaBundle {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(format!("not PEM certificates: {e:?}")))?;
    if certificates.is_empty() {
        return Err(failed("holds no certificate".into()));
    }
    Ok(certificates)
}

/// An app name is a user-agent token: letters, digits and a few marks, at most 50 characters.
fn app_name(function_name: Option<&str>) -> Option<AppName> {
    let name: String = function_name?
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(50)
        .collect();
    AppName::new(name).ok()
}

/// `AWS_ENDPOINT_URL_<SERVICE>` overrides `AWS_ENDPOINT_URL` for one service, as in every SDK.
fn service_endpoint(service: &str) -> Option<String> {
    env(&format!("AWS_ENDPOINT_URL_{service}"))
}

pub fn dynamodb(config: &SdkConfig) -> SdkClient<aws_sdk_dynamodb::Client> {
    let mut builder = aws_sdk_dynamodb::config::Builder::from(config);
    if let Some(url) = service_endpoint("DYNAMODB") {
        builder = builder.endpoint_url(url);
    }
    SdkClient::lazy(move || aws_sdk_dynamodb::Client::from_conf(builder.build()))
}

pub fn sqs(config: &SdkConfig) -> SdkClient<aws_sdk_sqs::Client> {
    let mut builder = aws_sdk_sqs::config::Builder::from(config);
    if let Some(url) = service_endpoint("SQS") {
        builder = builder.endpoint_url(url);
    }
    SdkClient::lazy(move || aws_sdk_sqs::Client::from_conf(builder.build()))
}

/// Emulators serve buckets by path, not by virtual host: path style whenever a custom endpoint
/// is configured (never against AWS's own endpoints).
pub fn s3(config: &SdkConfig) -> SdkClient<aws_sdk_s3::Client> {
    let own_endpoint = service_endpoint("S3");
    let custom_endpoint = config.endpoint_url().is_some() || own_endpoint.is_some();
    let mut builder = aws_sdk_s3::config::Builder::from(config).force_path_style(custom_endpoint);
    if let Some(url) = own_endpoint {
        builder = builder.endpoint_url(url);
    }
    SdkClient::lazy(move || aws_sdk_s3::Client::from_conf(builder.build()))
}

pub fn sesv2(config: &SdkConfig) -> SdkClient<aws_sdk_sesv2::Client> {
    let mut builder = aws_sdk_sesv2::config::Builder::from(config);
    if let Some(url) = service_endpoint("SESV2") {
        builder = builder.endpoint_url(url);
    }
    SdkClient::lazy(move || aws_sdk_sesv2::Client::from_conf(builder.build()))
}

pub fn secretsmanager(config: &SdkConfig) -> SdkClient<aws_sdk_secretsmanager::Client> {
    let mut builder = aws_sdk_secretsmanager::config::Builder::from(config);
    if let Some(url) = service_endpoint("SECRETS_MANAGER") {
        builder = builder.endpoint_url(url);
    }
    SdkClient::lazy(move || aws_sdk_secretsmanager::Client::from_conf(builder.build()))
}

#[cfg(test)]
mod tests {
    use super::{AMAZON_ROOTS, amazon_roots, app_name, ca_bundle};
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn the_function_name_becomes_a_valid_app_name() {
        let name = |n| app_name(n).map(|a| a.to_string());
        assert_eq!(
            name(Some("local-PresaleIntakeFunction")),
            Some("local-PresaleIntakeFunction".into())
        );
        assert_eq!(name(Some("a b/c")), Some("abc".into()));
        assert_eq!(name(Some("")), None);
        assert_eq!(name(None), None);
    }

    #[test]
    fn the_compiled_in_roots_are_five_certificates_rustls_accepts() {
        let roots = CertificateDer::pem_slice_iter(AMAZON_ROOTS).collect::<Result<Vec<_>, _>>();
        assert_eq!(roots.map(|r| r.len()).ok(), Some(5));
        assert_eq!(amazon_roots().len(), 5);
        let tls = crate::https::tls_config(amazon_roots());
        assert!(tls.is_ok(), "{:?}", tls.err());
    }

    #[test]
    fn a_ca_bundle_that_is_not_pem_stops_the_init() {
        let dir = std::env::temp_dir().join(format!("ca-bundle-{}", std::process::id()));
        std::fs::write(&dir, b"not a certificate").ok();
        let error = ca_bundle(dir.to_str().unwrap_or_default()).err().map(|e| e.to_string());
        std::fs::remove_file(&dir).ok();
        assert!(error.is_some_and(|e| e.contains("holds no certificate")));
        assert!(ca_bundle("/nonexistent/bundle.pem").is_err());
    }
}
