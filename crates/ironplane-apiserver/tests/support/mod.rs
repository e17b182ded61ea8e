//! A test server on 127.0.0.1:0 over HTTPS with a fresh embedded store, and a small HTTPS client
//! that authenticates with an admin client certificate, a bearer token, or not at all.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use ironplane_apiserver::authn::TokenAuthenticator;
use ironplane_apiserver::handlers::HandlerOptions;
use ironplane_apiserver::{Server, ServerConfig};
use ironplane_storage_redb::{RedbStore, RedbStoreOptions};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The bearer token the test server accepts (user `token-admin`, group `system:masters`).
pub const TOKEN: &str = "test-token";

/// Who a request comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// The admin client certificate.
    Certificate,
    /// The static token.
    Token,
    /// A token the server does not know.
    BadToken,
    /// Nothing.
    Anonymous,
}

struct Pki {
    ca_pem: String,
    serving_pem: String,
    serving_key: String,
    client_chain: Vec<CertificateDer<'static>>,
    client_key_der: Vec<u8>,
}

fn mint() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "test-ca");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let serving_key = KeyPair::generate().unwrap();
    let serving_params =
        CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let serving = serving_params.signed_by(&serving_key, &issuer).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "admin");
    client_params
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        serving_pem: serving.pem(),
        serving_key: serving_key.serialize_pem(),
        client_chain: vec![client.der().clone()],
        client_key_der: client_key.serialize_der(),
    }
}

/// A running server and a client for it.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    server: Option<Server>,
    store: Arc<RedbStore>,
    dir: tempfile::TempDir,
    connector: TlsConnector,
    anonymous_connector: TlsConnector,
}

/// A response, fully read.
#[derive(Debug)]
pub struct TestResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl TestResponse {
    /// The body as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!("not JSON ({err}): {}", String::from_utf8_lossy(&self.body))
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

impl TestServer {
    /// Start a server with default options.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Start a server, letting the test adjust its configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_on(adjust, |store| store).await
    }

    /// Start a server on the fresh store as `wrap` presents it (a test may interpose on storage).
    pub async fn start_on(
        adjust: impl FnOnce(&mut ServerConfig),
        wrap: impl FnOnce(Arc<dyn ironplane_storage::Storage>) -> Arc<dyn ironplane_storage::Storage>,
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pki = mint();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            RedbStore::open(RedbStoreOptions::new(dir.path().join("store.redb"))).unwrap(),
        );
        let tls = ironplane_apiserver::tls::server_config(
            &pki.serving_pem,
            &pki.serving_key,
            Some(&pki.ca_pem),
        )
        .unwrap();
        let mut config = ServerConfig::new(tls);
        config.secure_port = 0;
        config.tokens =
            TokenAuthenticator::parse(&format!("{TOKEN},token-admin,uid-1,\"system:masters\"\n"))
                .unwrap();
        config.handler_options = HandlerOptions {
            bookmark_interval: Duration::from_millis(200),
            ..Default::default()
        };
        adjust(&mut config);
        let server = Server::start(config, wrap(store.clone())).await.unwrap();
        let addr = server.local_addr();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pem_certs(&pki.ca_pem) {
            roots.add(cert).unwrap();
        }
        let with_cert = rustls::ClientConfig::builder()
            .with_root_certificates(roots.clone())
            .with_client_auth_cert(
                pki.client_chain.clone(),
                PrivateKeyDer::try_from(pki.client_key_der.clone()).unwrap(),
            )
            .unwrap();
        let without_cert = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TestServer {
            addr,
            server: Some(server),
            store,
            dir,
            connector: TlsConnector::from(Arc::new(with_cert)),
            anonymous_connector: TlsConnector::from(Arc::new(without_cert)),
        }
    }

    /// The storage directory (for reopening tests).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Send a request and read the whole response.
    pub async fn send(
        &self,
        credentials: Credentials,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> TestResponse {
        let mut sender = self.connect(credentials).await;
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        match credentials {
            Credentials::Token => {
                builder = builder.header("authorization", format!("Bearer {TOKEN}"))
            }
            Credentials::BadToken => builder = builder.header("authorization", "Bearer nope"),
            _ => {}
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(Full::new(body.into())).unwrap();
        let response = sender.send_request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    async fn connect(
        &self,
        credentials: Credentials,
    ) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let connector = if credentials == Credentials::Certificate {
            &self.connector
        } else {
            &self.anonymous_connector
        };
        let tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(connection);
        sender
    }

    /// Open a streaming request (watches): returns the status, headers and a body to read frames
    /// from.
    pub async fn stream(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, hyper::body::Incoming) {
        let mut sender = self.connect(Credentials::Certificate).await;
        let mut builder = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header("host", "localhost");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = sender
            .send_request(builder.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        (parts.status, parts.headers, body)
    }

    /// GET as the admin.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(
            Credentials::Certificate,
            Method::GET,
            path,
            &[],
            Bytes::new(),
        )
        .await
    }

    /// POST JSON as the admin.
    pub async fn post(&self, path: &str, body: &Value) -> TestResponse {
        self.send_json(Method::POST, path, body).await
    }

    /// PUT JSON as the admin.
    pub async fn put(&self, path: &str, body: &Value) -> TestResponse {
        self.send_json(Method::PUT, path, body).await
    }

    /// DELETE as the admin.
    pub async fn delete(&self, path: &str) -> TestResponse {
        self.send(
            Credentials::Certificate,
            Method::DELETE,
            path,
            &[],
            Bytes::new(),
        )
        .await
    }

    /// Send JSON as the admin.
    pub async fn send_json(&self, method: Method, path: &str, body: &Value) -> TestResponse {
        self.send(
            Credentials::Certificate,
            method,
            path,
            &[("content-type", "application/json")],
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    /// PATCH as the admin with a patch type.
    pub async fn patch(&self, path: &str, content_type: &str, body: &Value) -> TestResponse {
        self.send(
            Credentials::Certificate,
            Method::PATCH,
            path,
            &[("content-type", content_type)],
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    /// Shut the server down gracefully and close the store.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.close())
            .await
            .unwrap();
    }
}

fn rustls_pem_certs(pem: &str) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|cert| cert.unwrap())
        .collect()
}

/// Read the next newline-delimited JSON frame from a watch body, waiting at most `timeout`.
pub struct FrameReader {
    body: hyper::body::Incoming,
    buffer: Vec<u8>,
}

impl FrameReader {
    /// Read frames from a body.
    pub fn new(body: hyper::body::Incoming) -> Self {
        FrameReader {
            body,
            buffer: Vec::new(),
        }
    }

    /// The next frame, or `None` when the stream ends or nothing arrives in time.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buffer.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).unwrap());
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()??;
            if let Ok(data) = frame.unwrap().into_data() {
                self.buffer.extend_from_slice(&data);
            }
        }
    }
}

/// A ConfigMap body.
pub fn configmap(name: &str, data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(key, value)| (key.to_string(), Value::String(value.to_string())))
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}
