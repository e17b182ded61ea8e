//! The HTTP client: TLS with rustls and the ring provider (CA from the kubeconfig, client
//! certificate or bearer token), connections made one by one so their number is exact: with
//! HTTP/2 the clients share `--connections` multiplexed connections (watchers get connections of
//! their own, a bounded number of streams each); with HTTP/1.1 every client and every watcher owns
//! one keep-alive connection.
//!
//! HTTP/1.1 goes through `hyper::client::conn`; HTTP/2 through the `h2` crate directly. hyper's
//! HTTP/2 client hands a request body to a task of its own once the new stream has no send
//! capacity yet (it never has: h2 opens client streams on the connection's next turn), so every
//! request with a body cost two socket writes (HEADERS, then DATA) and a task; queueing the DATA
//! frame with `send_data` right after the HEADERS sends both in one write.
//!
//! Every transport failure becomes a [`Failure`] with a short grouping key; nothing panics.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::{Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

use crate::kubeconfig::Credentials;
use crate::stats::Failure;
use crate::target::{LoopbackHost, ServerUrl};

/// `Content-Type` and `Accept` of plain JSON.
pub const JSON: &str = "application/json";
/// `Accept` of a Table.
pub const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";
/// The most bytes of a response body read into memory (lists are streamed instead).
const BODY_LIMIT: usize = 256 << 20;
/// The most bytes of an error body kept.
const ERROR_BODY_LIMIT: usize = 64 << 10;
/// HTTP/2 flow-control windows, as Go's HTTP/2 client (and so client-go and kubectl) uses.
const STREAM_WINDOW: u32 = 4 << 20;
const CONNECTION_WINDOW: u32 = 1 << 30;

/// The HTTP version spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive.
    #[serde(rename = "HTTP/1.1")]
    Http1,
    /// HTTP/2.
    #[serde(rename = "HTTP/2")]
    Http2,
}

/// The server and how to reach it: address, TLS, credentials, protocol, request timeout.
pub struct Target {
    url: ServerUrl,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    authorization: Option<HeaderValue>,
    authority: HeaderValue,
    /// What goes before a request path: the absolute base for HTTP/2, the path prefix for HTTP/1.
    base: String,
    protocol: Protocol,
    timeout: Duration,
}

/// One open connection's request handle.
enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(h2::client::SendRequest<Bytes>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => h2_is_closed(s),
        }
    }

    async fn ready(&mut self) -> Result<(), Failure> {
        match self {
            Sender::H1(s) => s.ready().await.map_err(|e| transport(&e)),
            Sender::H2(s) => h2_ready(s).await,
        }
    }

    async fn send(&mut self, request: Request<Bytes>) -> Result<Response<Body>, Failure> {
        match self {
            Sender::H1(s) => s
                .send_request(request.map(Full::new))
                .await
                .map(|response| response.map(Body::H1))
                .map_err(|e| transport(&e)),
            Sender::H2(s) => h2_send(s, request).await,
        }
    }
}

/// Whether the connection has failed or been closed by the server, without waiting.
fn h2_is_closed(sender: &h2::client::SendRequest<Bytes>) -> bool {
    // A clone has no stream of its own waiting to open: it is ready unless the connection failed.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    matches!(
        sender.clone().poll_ready(&mut cx),
        std::task::Poll::Ready(Err(_))
    )
}

/// Waits until the connection takes another stream.
async fn h2_ready(sender: &mut h2::client::SendRequest<Bytes>) -> Result<(), Failure> {
    std::future::poll_fn(|cx| sender.poll_ready(cx))
        .await
        .map_err(|e| h2_failure(&e))
}

/// Sends a request on a ready HTTP/2 connection: HEADERS and, when there is a body, its one DATA
/// frame queued at once (see the module comment), then waits for the response head.
async fn h2_send(
    sender: &mut h2::client::SendRequest<Bytes>,
    request: Request<Bytes>,
) -> Result<Response<Body>, Failure> {
    let (head, body) = request.into_parts();
    let end_of_stream = body.is_empty();
    let (response, mut stream) = sender
        .send_request(Request::from_parts(head, ()), end_of_stream)
        .map_err(|e| h2_failure(&e))?;
    if !end_of_stream {
        stream.send_data(body, true).map_err(|e| h2_failure(&e))?;
    }
    let response = response.await.map_err(|e| h2_failure(&e))?;
    Ok(response.map(Body::H2))
}

/// A response body of either protocol.
pub enum Body {
    /// An HTTP/1.1 body.
    H1(Incoming),
    /// An HTTP/2 stream's data.
    H2(h2::RecvStream),
}

impl Body {
    /// The next piece of the body; `None` at its end. Cancel-safe: a piece is taken only when it
    /// is returned.
    pub async fn chunk(&mut self) -> Option<Result<Bytes, Failure>> {
        match self {
            Body::H1(body) => loop {
                match body.frame().await? {
                    Ok(frame) => {
                        if let Ok(data) = frame.into_data() {
                            return Some(Ok(data));
                        }
                    }
                    Err(error) => return Some(Err(transport(&error))),
                }
            },
            Body::H2(stream) => match stream.data().await? {
                Ok(data) => {
                    // Give the window back, or a long body (a list, a watch) stalls.
                    let _ = stream.flow_control().release_capacity(data.len());
                    Some(Ok(data))
                }
                Err(error) => Some(Err(h2_failure(&error))),
            },
        }
    }
}

/// A shared HTTP/2 connection, (re)opened on demand.
pub type SharedConnection = Arc<Mutex<Option<h2::client::SendRequest<Bytes>>>>;

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: Bytes,
}

/// A response streamed through a callback.
#[derive(Debug)]
pub struct Streamed {
    /// The status.
    pub status: StatusCode,
    /// Body bytes received.
    pub bytes: u64,
    /// The start of the body of an unsuccessful response (the callback sees only successes).
    pub error_body: Bytes,
}

impl Target {
    /// Builds the TLS configuration and credentials for `creds`.
    pub fn new(
        creds: &Credentials,
        protocol: Protocol,
        timeout: Duration,
    ) -> anyhow::Result<Arc<Target>> {
        let url = creds.server.clone();
        let tls = if url.tls {
            let config = tls_config(creds, protocol).with_context(|| creds.source.clone())?;
            let name = match &creds.tls_server_name {
                Some(name) => ServerName::try_from(name.clone()).with_context(|| {
                    format!("{}: invalid tls-server-name {name:?}", creds.source)
                })?,
                None => match url.host {
                    LoopbackHost::Localhost => ServerName::try_from("localhost".to_owned())
                        .context("localhost is not a valid server name")?,
                    LoopbackHost::Ip(ip) => ServerName::IpAddress(ip.into()),
                },
            };
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        let authorization = match &creds.token {
            Some(token) => {
                let mut value =
                    HeaderValue::from_str(&format!("Bearer {token}")).with_context(|| {
                        format!(
                            "{}: the token holds characters not allowed in a header",
                            creds.source
                        )
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let authority =
            HeaderValue::from_str(&url.authority()).context("invalid server authority")?;
        let base = match protocol {
            Protocol::Http2 => format!(
                "{}://{}{}",
                if url.tls { "https" } else { "http" },
                url.authority(),
                url.path_prefix
            ),
            Protocol::Http1 => url.path_prefix.clone(),
        };
        Ok(Arc::new(Target {
            url,
            tls,
            authorization,
            authority,
            base,
            protocol,
            timeout,
        }))
    }

    /// The server URL as configured.
    pub fn url(&self) -> &str {
        &self.url.original
    }

    /// The HTTP version.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    async fn tcp(&self) -> Result<TcpStream, Failure> {
        let mut last = None;
        for address in self.url.addresses() {
            match TcpStream::connect(address).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(error) => last = Some(format!("cannot connect to {address}: {error}")),
            }
        }
        Err(Failure::new(
            "connect",
            last.unwrap_or_else(|| "no address to connect to".into()),
        ))
    }

    async fn connect(&self) -> Result<Sender, Failure> {
        let connecting = async {
            let tcp = self.tcp().await?;
            match &self.tls {
                Some((connector, name)) => {
                    let stream = connector.connect(name.clone(), tcp).await.map_err(|e| {
                        let hint = if self.protocol == Protocol::Http2 {
                            " (if the server does not speak HTTP/2, try --http1)"
                        } else {
                            ""
                        };
                        Failure::new(
                            "tls",
                            format!(
                                "TLS handshake with {} failed: {e}{hint}",
                                self.url.authority()
                            ),
                        )
                    })?;
                    if self.protocol == Protocol::Http2
                        && stream.get_ref().1.alpn_protocol() != Some(b"h2")
                    {
                        return Err(Failure::new(
                            "tls",
                            format!(
                                "{} did not agree to HTTP/2 (ALPN h2); try --http1",
                                self.url.authority()
                            ),
                        ));
                    }
                    self.handshake(stream).await
                }
                None => self.handshake(tcp).await,
            }
        };
        match tokio::time::timeout(self.timeout, connecting).await {
            Ok(result) => result,
            Err(_) => Err(Failure::new(
                "connect",
                format!("connecting to {} timed out", self.url.authority()),
            )),
        }
    }

    async fn handshake<I>(&self, io: I) -> Result<Sender, Failure>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        match self.protocol {
            Protocol::Http1 => {
                let (sender, connection) = http1::handshake(TokioIo::new(io))
                    .await
                    .map_err(|e| handshake_failed(&e))?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(Sender::H1(sender))
            }
            Protocol::Http2 => {
                let (sender, connection) = h2::client::Builder::new()
                    .initial_window_size(STREAM_WINDOW)
                    .initial_connection_window_size(CONNECTION_WINDOW)
                    .handshake::<_, Bytes>(io)
                    .await
                    .map_err(|e| handshake_failed(&e))?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(Sender::H2(sender))
            }
        }
    }

    /// A client that owns its connection (HTTP/1.1, or a private HTTP/2 connection).
    pub fn own_client(self: &Arc<Self>) -> Client {
        Client {
            target: Arc::clone(self),
            slot: Slot::Own(None),
        }
    }

    /// A client on a shared HTTP/2 connection; with HTTP/1.1 it owns its connection.
    pub fn shared_client(self: &Arc<Self>, connection: &SharedConnection) -> Client {
        match self.protocol {
            Protocol::Http1 => self.own_client(),
            Protocol::Http2 => Client {
                target: Arc::clone(self),
                slot: Slot::Shared(Arc::clone(connection)),
            },
        }
    }
}

/// The request handle of a shared HTTP/2 connection, opening it if it is not open (or failed).
async fn shared_handle(
    target: &Target,
    shared: &SharedConnection,
) -> Result<h2::client::SendRequest<Bytes>, Failure> {
    let mut guard = shared.lock().await;
    if let Some(open) = guard.as_ref().filter(|s| !h2_is_closed(s)) {
        return Ok(open.clone());
    }
    let Sender::H2(opened) = target.connect().await? else {
        return Err(Failure::new("connect", "expected an HTTP/2 connection"));
    };
    *guard = Some(opened.clone());
    Ok(opened)
}

/// A new, not yet opened, shared connection.
pub fn shared_connection() -> SharedConnection {
    Arc::new(Mutex::new(None))
}

fn tls_config(creds: &Credentials, protocol: Protocol) -> anyhow::Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("selecting TLS versions")?;
    let builder = if creds.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        let Some(ca) = &creds.ca_pem else {
            bail!("no certificate-authority to verify the server with");
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca) {
            let cert = cert.context("certificate-authority is not valid PEM")?;
            roots
                .add(cert)
                .context("certificate-authority holds an unusable certificate")?;
        }
        if roots.is_empty() {
            bail!("certificate-authority holds no CERTIFICATE block");
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match &creds.client_identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .context("client-certificate is not valid PEM")?;
            if chain.is_empty() {
                bail!("client-certificate holds no CERTIFICATE block");
            }
            let key = PrivateKeyDer::from_pem_slice(key)
                .context("client-key is not a PEM private key")?;
            builder
                .with_client_auth_cert(chain, key)
                .context("client certificate and key rejected")?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = match protocol {
        Protocol::Http2 => vec![b"h2".to_vec()],
        Protocol::Http1 => vec![b"http/1.1".to_vec()],
    };
    Ok(config)
}

/// `insecure-skip-tls-verify`: any server certificate is accepted, but handshake signatures are
/// still checked with the provider's algorithms.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

enum Slot {
    Own(Option<Sender>),
    Shared(SharedConnection),
}

/// One client: sends one request at a time (several clients share an HTTP/2 connection).
pub struct Client {
    target: Arc<Target>,
    slot: Slot,
}

/// A hyper error with its sources, on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A connection whose HTTP handshake failed, of either protocol.
fn handshake_failed(error: &dyn std::error::Error) -> Failure {
    Failure::new(
        "connect",
        format!("HTTP handshake failed: {}", chain(error)),
    )
}

/// A failed HTTP/2 exchange; a reset or GOAWAY names its reason.
fn h2_failure(error: &h2::Error) -> Failure {
    let key = if error.is_io() { "transport" } else { "http2" };
    Failure::new(key, chain(error))
}

fn transport(error: &hyper::Error) -> Failure {
    let key = if error.is_timeout() {
        "timeout"
    } else {
        "transport"
    };
    Failure::new(key, chain(error))
}

impl Client {
    fn build(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<(&str, Bytes)>,
    ) -> Result<Request<Bytes>, Failure> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.target.base))
            .header(ACCEPT, accept)
            .header(
                USER_AGENT,
                concat!("ironplane-load/", env!("CARGO_PKG_VERSION")),
            );
        if self.target.protocol == Protocol::Http1 {
            builder = builder.header(HOST, self.target.authority.clone());
        }
        if let Some(value) = &self.target.authorization {
            builder = builder.header(AUTHORIZATION, value.clone());
        }
        let body = match body {
            Some((content_type, bytes)) => {
                builder = builder
                    .header(CONTENT_TYPE, content_type)
                    .header(CONTENT_LENGTH, bytes.len());
                bytes
            }
            None => Bytes::new(),
        };
        builder.body(body).map_err(|e| {
            Failure::new(
                "request",
                format!("cannot build the request for {path}: {e}"),
            )
        })
    }

    /// Sends a request and returns the response head; the body is the caller's to read.
    async fn send(&mut self, request: Request<Bytes>) -> Result<Response<Body>, Failure> {
        match &mut self.slot {
            Slot::Own(sender) => {
                let mut open = match sender.take() {
                    Some(s) if !s.is_closed() => s,
                    _ => self.target.connect().await?,
                };
                if open.ready().await.is_err() {
                    // The kept-alive connection went away while idle; nothing was sent yet.
                    open = self.target.connect().await?;
                    open.ready().await?;
                }
                let response = open.send(request).await?;
                *sender = Some(open);
                Ok(response)
            }
            Slot::Shared(shared) => {
                let mut handle = shared_handle(&self.target, shared).await?;
                h2_ready(&mut handle).await?;
                h2_send(&mut handle, request).await
            }
        }
    }

    /// Opens this client's connection unless it is open already, so that the measured phase
    /// that follows does not pay for TCP and TLS handshakes.
    pub async fn connect(&mut self) -> Result<(), Failure> {
        match &mut self.slot {
            Slot::Own(sender) => {
                if sender.as_ref().is_none_or(Sender::is_closed) {
                    *sender = Some(self.target.connect().await?);
                }
            }
            Slot::Shared(shared) => {
                shared_handle(&self.target, shared).await?;
            }
        }
        Ok(())
    }

    /// A request whose whole body is read, within the request timeout.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<(&str, Bytes)>,
    ) -> Result<Reply, Failure> {
        let request = self.build(method, path, accept, body)?;
        let timeout = self.target.timeout;
        let exchange = async {
            let response = self.send(request).await?;
            let status = response.status();
            let limit = if status.is_success() {
                BODY_LIMIT
            } else {
                ERROR_BODY_LIMIT
            };
            let body = read_body(response.into_body(), limit).await?;
            Ok(Reply { status, body })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(Failure::timeout(timeout)))
    }

    /// A GET whose successful body is handed to `on_chunk` piece by piece and not kept, within the
    /// request timeout.
    pub async fn call_streaming(
        &mut self,
        path: &str,
        accept: &str,
        mut on_chunk: impl FnMut(&[u8]),
    ) -> Result<Streamed, Failure> {
        let request = self.build(Method::GET, path, accept, None)?;
        let timeout = self.target.timeout;
        let exchange = async {
            let response = self.send(request).await?;
            let status = response.status();
            let mut body = response.into_body();
            if !status.is_success() {
                let error_body = read_body(body, ERROR_BODY_LIMIT).await?;
                return Ok(Streamed {
                    status,
                    bytes: error_body.len() as u64,
                    error_body,
                });
            }
            let mut bytes = 0u64;
            while let Some(data) = body.chunk().await {
                let data = data?;
                bytes += data.len() as u64;
                on_chunk(&data);
            }
            Ok(Streamed {
                status,
                bytes,
                error_body: Bytes::new(),
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(Failure::timeout(timeout)))
    }

    /// A GET whose response head arrives within the request timeout; the body (a watch) is the
    /// caller's to read for as long as it likes.
    pub async fn open(&mut self, path: &str, accept: &str) -> Result<Response<Body>, Failure> {
        let request = self.build(Method::GET, path, accept, None)?;
        let timeout = self.target.timeout;
        tokio::time::timeout(timeout, self.send(request))
            .await
            .unwrap_or_else(|_| Err(Failure::timeout(timeout)))
    }
}

/// Reads a body whole, up to `limit` bytes.
pub async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, Failure> {
    let mut first: Option<Bytes> = None;
    let mut buffer = BytesMut::new();
    while let Some(data) = body.chunk().await {
        let data = data?;
        let have = first.as_ref().map_or(0, Bytes::len) + buffer.len();
        if have + data.len() > limit {
            return Err(Failure::new(
                "too large",
                format!("response body larger than {limit} bytes"),
            ));
        }
        match (&first, buffer.is_empty()) {
            (None, true) => first = Some(data),
            _ => {
                if let Some(head) = first.take() {
                    buffer.extend_from_slice(&head);
                }
                buffer.extend_from_slice(&data);
            }
        }
    }
    Ok(match first {
        Some(only) if buffer.is_empty() => only,
        _ => buffer.freeze(),
    })
}
