//! The HTTP client of every AWS SDK client here: HTTP/1.1 over rustls on ring, pooled by
//! hyper-util's client (the one `lambda_runtime` links already for the Runtime API).
//!
//! Why not `aws-smithy-http-client`'s own: it turns hyper's `http2` on unconditionally, which
//! links `h2` (~440 KB of code) into every function, and every AWS endpoint these functions
//! call speaks HTTP/1.1 anyway (ADR 0031). Connect and read timeouts come from the SDK's
//! settings; errors are classified the way the SDK's retry strategy expects (I/O and timeouts
//! are transient, a cut-off response is transient, a malformed request is the caller's).

use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response as SmithyResponse;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector as TcpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Idle pooled connections are closed after this: AWS's load balancers drop them after about a
/// minute without traffic, and a connection dropped under us costs a retry.
const POOL_IDLE: Duration = Duration::from_secs(50);

/// An HTTP/1.1 client for `http://` (emulators) and `https://` URLs. Cheap to clone: clones
/// share one pool.
#[derive(Clone)]
pub struct Https {
    client: Client<Connector, SdkBody>,
}

impl std::fmt::Debug for Https {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Https")
    }
}

impl Https {
    /// `tls` decides whom to trust; its ALPN is set here to HTTP/1.1 alone.
    pub fn new(mut tls: rustls::ClientConfig, connect_timeout: Option<Duration>) -> Self {
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(connect_timeout);
        let connector = Connector {
            tcp,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Self { client }
    }

    /// Sends one request and reads its response head within `timeout` (the body is streamed
    /// afterwards by the caller).
    pub async fn send(
        &self,
        request: http::Request<SdkBody>,
        timeout: Option<Duration>,
    ) -> Result<http::Response<SdkBody>, SendError> {
        let response = self.client.request(request);
        let response = match timeout {
            Some(limit) => tokio::time::timeout(limit, response)
                .await
                .map_err(|_| SendError::Timeout(limit))?,
            None => response.await,
        };
        response
            .map(|response| response.map(SdkBody::from_body_1_x))
            .map_err(SendError::Http)
    }

    /// One request whose body is in memory, and its whole answer read, within `timeout`.
    pub async fn exchange(
        &self,
        request: http::Request<Vec<u8>>,
        timeout: Duration,
    ) -> Result<http::Response<Vec<u8>>, SendError> {
        use http_body_util::BodyExt;
        let whole = async {
            let response = self.send(request.map(SdkBody::from), None).await?;
            let (head, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| SendError::Body(chain(e.as_ref())))?;
            Ok(http::Response::from_parts(head, body.to_bytes().to_vec()))
        };
        tokio::time::timeout(timeout, whole)
            .await
            .map_err(|_| SendError::Timeout(timeout))?
    }
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("{}", chain(.0))]
    Http(#[source] hyper_util::client::legacy::Error),
    /// The answer broke off after its head.
    #[error("reading the answer: {0}")]
    Body(String),
}

impl SendError {
    /// Whether sending again may succeed: the connection failed, broke or timed out, rather
    /// than the request being unsendable.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind(), Kind::Timeout | Kind::Io | Kind::CutOff)
    }

    fn kind(&self) -> Kind {
        let error = match self {
            SendError::Timeout(_) => return Kind::Timeout,
            SendError::Body(_) => return Kind::Io,
            SendError::Http(error) => error,
        };
        if error.is_connect() {
            return Kind::Io;
        }
        match find::<hyper::Error>(error) {
            Some(e) if e.is_timeout() => Kind::Timeout,
            Some(e) if e.is_user() => Kind::User,
            Some(e) if e.is_closed() || e.is_canceled() => Kind::Io,
            Some(e) if e.is_incomplete_message() => Kind::CutOff,
            _ if find::<io::Error>(error).is_some() => Kind::Io,
            _ => Kind::Other,
        }
    }
}

enum Kind {
    Timeout,
    Io,
    CutOff,
    User,
    Other,
}

impl From<SendError> for ConnectorError {
    fn from(error: SendError) -> Self {
        match error.kind() {
            Kind::Timeout => ConnectorError::timeout(error.into()),
            Kind::Io => ConnectorError::io(error.into()),
            Kind::CutOff => ConnectorError::other(error.into(), Some(ErrorKind::TransientError)),
            Kind::User => ConnectorError::user(error.into()),
            Kind::Other => ConnectorError::other(error.into(), None),
        }
    }
}

fn find<'a, E: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut next = Some(error);
    while let Some(current) = next {
        if let Some(found) = current.downcast_ref::<E>() {
            return Some(found);
        }
        next = current.source();
    }
    None
}

/// The whole chain on one line: hyper-util's top error says only "client error (Connect)".
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// The SDK's view of [`Https`]: one connector per connect timeout, sharing nothing but the TLS
/// configuration (every SDK client of a function gets the same settings, so one pool).
#[derive(Debug, Clone)]
pub struct SdkHttpClient {
    tls: Arc<rustls::ClientConfig>,
    clients: Arc<Mutex<HashMap<Option<Duration>, Https>>>,
}

impl SdkHttpClient {
    pub fn new(tls: rustls::ClientConfig) -> Self {
        Self {
            tls: Arc::new(tls),
            clients: Arc::default(),
        }
    }

    fn client(&self, connect_timeout: Option<Duration>) -> Https {
        let mut clients = self.clients.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        clients
            .entry(connect_timeout)
            .or_insert_with(|| Https::new((*self.tls).clone(), connect_timeout))
            .clone()
    }
}

impl HttpClient for SdkHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(SdkConnector {
            https: self.client(settings.connect_timeout()),
            read_timeout: settings.read_timeout(),
        })
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        Some(ConnectorMetadata::new("hyper-http1", None))
    }
}

#[derive(Debug)]
struct SdkConnector {
    https: Https,
    read_timeout: Option<Duration>,
}

impl HttpConnector for SdkConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let https = self.https.clone();
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let response = https.send(request, read_timeout).await?;
            SmithyResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// TCP, then TLS for `https://`; hyper-util's connector resolves names and honours the
/// connect timeout.
#[derive(Clone)]
struct Connector {
    tcp: TcpConnector,
    tls: tokio_rustls::TlsConnector,
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let secure = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        // IPv6 literals come bracketed in URIs, not in TLS server names.
        let host = uri.host().unwrap_or_default().trim_matches(['[', ']']).to_owned();
        let tcp = self.tcp.call(uri);
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = tcp.await?.into_inner();
            if !secure {
                return Ok(TokioIo::new(Stream::Plain(tcp)));
            }
            let name = ServerName::try_from(host)?;
            let stream = tls.connect(name, tcp).await?;
            Ok(TokioIo::new(Stream::Tls(Box::new(stream))))
        })
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Plain(tcp) => tcp.connected(),
            Stream::Tls(tls) => tls.get_ref().0.connected(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A TLS configuration trusting `roots` (DER certificates), on ring.
pub fn tls_config<'a>(
    roots: impl IntoIterator<Item = rustls::pki_types::CertificateDer<'a>>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.into_owned())?;
    }
    trusting(store)
}

/// A TLS configuration trusting `store`, on ring.
pub fn trusting(store: rustls::RootCertStore) -> Result<rustls::ClientConfig, rustls::Error> {
    Ok(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(store)
            .with_no_client_auth(),
    )
}

#[cfg(test)]
mod tests {
    //! Against servers of the test's own, over real sockets: a TLS one with a certificate for
    //! `localhost` signed by a test CA (`testdata/`, valid until 2126), and plain TCP ones.
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const CA: &[u8] = include_bytes!("../testdata/ca.pem");
    const CERT: &[u8] = include_bytes!("../testdata/localhost.pem");
    const KEY: &[u8] = include_bytes!("../testdata/localhost.key");

    fn certificates(pem: &[u8]) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(pem).map(|c| c.expect("PEM")).collect()
    }

    struct Served {
        port: u16,
        connections: Arc<AtomicUsize>,
        alpn: Arc<Mutex<Vec<Option<Vec<u8>>>>>,
    }

    /// A TLS server offering h2 and http/1.1 that answers every request on a connection with
    /// `200 ok`, counting connections and noting the protocol each negotiated.
    async fn tls_server() -> Served {
        let key = PrivateKeyDer::from_pem_slice(KEY).expect("key");
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(certificates(CERT), key)
                .expect("server config");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let alpn = Arc::new(Mutex::new(Vec::new()));
        let (count, protocols) = (connections.clone(), alpn.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                let protocols = protocols.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let protocol = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                    protocols.lock().expect("lock").push(protocol);
                    answer_each_request(&mut tls).await;
                });
            }
        });
        Served {
            port,
            connections,
            alpn,
        }
    }

    async fn answer_each_request<S: AsyncReadExt + AsyncWriteExt + Unpin>(stream: &mut S) {
        let mut pending = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                pending.drain(..end + 4);
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                if stream.write_all(answer).await.is_err() {
                    return;
                }
            }
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buffer[..n]),
            }
        }
    }

    fn get(url: &str) -> http::Request<SdkBody> {
        http::Request::get(url).body(SdkBody::empty()).expect("request")
    }

    async fn body_of(response: http::Response<SdkBody>) -> Vec<u8> {
        use http_body_util::BodyExt;
        response.into_body().collect().await.expect("body").to_bytes().to_vec()
    }

    #[tokio::test]
    async fn https_reaches_a_server_its_roots_trust_speaking_http1_over_one_pooled_connection() {
        let server = tls_server().await;
        let https = Https::new(tls_config(certificates(CA)).expect("tls"), Some(Duration::from_secs(5)));
        let url = format!("https://localhost:{}/", server.port);
        for _ in 0..3 {
            let response = https
                .send(get(&url), Some(Duration::from_secs(5)))
                .await
                .expect("response");
            assert_eq!(response.status(), 200);
            assert_eq!(body_of(response).await, b"ok");
        }
        assert_eq!(
            server.connections.load(Ordering::SeqCst),
            1,
            "the pool keeps the connection"
        );
        assert_eq!(*server.alpn.lock().expect("lock"), vec![Some(b"http/1.1".to_vec())]);
    }

    #[tokio::test]
    async fn an_exchange_posts_its_body_and_reads_the_whole_answer() {
        let server = tls_server().await;
        let https = Https::new(tls_config(certificates(CA)).expect("tls"), None);
        let request = http::Request::post(format!("https://localhost:{}/bill", server.port))
            .header("content-type", "text/xml")
            .body(b"<envelope/>".to_vec())
            .expect("request");
        let response = https.exchange(request, Duration::from_secs(5)).await.expect("answer");
        assert_eq!(
            (response.status().as_u16(), response.body().as_slice()),
            (200, &b"ok"[..])
        );
    }

    #[tokio::test]
    async fn a_server_its_roots_do_not_trust_gets_no_request() {
        let server = tls_server().await;
        let amazon_only = tls_config(crate::aws::amazon_roots()).expect("tls");
        let https = Https::new(amazon_only, Some(Duration::from_secs(5)));
        let error = https
            .send(
                get(&format!("https://localhost:{}/", server.port)),
                Some(Duration::from_secs(5)),
            )
            .await
            .expect_err("an unknown issuer");
        assert!(error.to_string().contains("UnknownIssuer"), "{error}");
    }

    #[tokio::test]
    async fn no_answer_within_the_read_timeout_is_a_timeout_the_sdk_retries() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let silent = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(tcp);
        });
        let https = Https::new(tls_config(certificates(CA)).expect("tls"), None);
        let error = https
            .send(
                get(&format!("http://127.0.0.1:{port}/")),
                Some(Duration::from_millis(200)),
            )
            .await
            .expect_err("no answer");
        assert!(matches!(error, SendError::Timeout(_)));
        assert!(error.is_transient());
        assert!(ConnectorError::from(error).is_timeout());
        silent.abort();
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_error_the_sdk_retries() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            listener.local_addr().expect("address").port()
        };
        let https = Https::new(tls_config(certificates(CA)).expect("tls"), Some(Duration::from_secs(1)));
        let error = https
            .send(get(&format!("http://127.0.0.1:{port}/")), None)
            .await
            .expect_err("refused");
        assert!(error.is_transient(), "{error}");
        assert!(error.to_string().contains("refused"), "{error}");
        assert!(ConnectorError::from(error).is_io());
    }

    #[tokio::test]
    async fn a_connection_closed_mid_head_is_transient() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.expect("accept");
            let mut buffer = [0u8; 1024];
            let _ = tcp.read(&mut buffer).await;
            let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-le").await;
        });
        let https = Https::new(tls_config(certificates(CA)).expect("tls"), None);
        let error = https
            .send(get(&format!("http://127.0.0.1:{port}/")), Some(Duration::from_secs(5)))
            .await
            .expect_err("a cut-off head");
        assert!(error.is_transient(), "{error}");
        assert_eq!(ConnectorError::from(error).as_other(), Some(ErrorKind::TransientError));
    }
}
