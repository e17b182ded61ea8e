//! Serving: bind, accept TLS connections (HTTP/2 and HTTP/1.1), attach each connection's
//! client-certificate identity to its requests, run the filter chain and the server chain, and
//! shut down gracefully (readyz fails first, in-flight requests finish, watches end).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use ironplane_registry::Registry;
use ironplane_registry::cacher::CacheOptions;
use ironplane_storage::Storage;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::admission::Admission;
use crate::authn::{PeerIdentity, TokenAuthenticator, UserInfo};
use crate::body::{Request, Response};
use crate::chain::{CoreServer, ServerChain};
use crate::filters::{
    AllowAuthenticated, Authentication, Authorization, MaxInFlight, Next, PanicRecovery,
    PriorityAndFairness, Timeout, WithRequestInfo,
};
use crate::handlers::{HandlerOptions, ResourceHandler};
use crate::health::Health;

/// Everything the server needs besides its storage.
pub struct ServerConfig {
    /// Address to listen on (`--bind-address`).
    pub bind_address: IpAddr,
    /// Port to listen on; 0 picks a free one (`--secure-port`).
    pub secure_port: u16,
    /// TLS serving configuration (certificate, key, client CA).
    pub tls: Arc<rustls::ServerConfig>,
    /// Static bearer tokens (`--token-auth-file`).
    pub tokens: TokenAuthenticator,
    /// `--request-timeout`.
    pub request_timeout: Duration,
    /// `--max-requests-inflight`.
    pub max_requests_inflight: usize,
    /// `--max-mutating-requests-inflight`.
    pub max_mutating_requests_inflight: usize,
    /// `--enable-priority-and-fairness`: queue requests by priority level (the two limits above
    /// summed, then shared out) rather than refuse each kind past its own limit.
    pub enable_priority_and_fairness: bool,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// Handler tuning (bookmarks, watch timeouts).
    pub handler_options: HandlerOptions,
    /// Watch cache tuning.
    pub cache_options: CacheOptions,
    /// The CA that verifies client certificates, published in
    /// `kube-system/extension-apiserver-authentication` as upstream does.
    pub client_ca_pem: Option<String>,
}

impl ServerConfig {
    /// A configuration with upstream's defaults around the given TLS setup.
    pub fn new(tls: Arc<rustls::ServerConfig>) -> Self {
        ServerConfig {
            bind_address: IpAddr::from([127, 0, 0, 1]),
            secure_port: 6443,
            tls,
            tokens: TokenAuthenticator::default(),
            request_timeout: Duration::from_secs(60),
            max_requests_inflight: 400,
            max_mutating_requests_inflight: 200,
            enable_priority_and_fairness: true,
            shutdown_timeout: Duration::from_secs(60),
            handler_options: HandlerOptions::default(),
            cache_options: CacheOptions::default(),
            client_ca_pem: None,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The bootstrap objects could not be created.
    #[error("cannot create the system namespaces: {0}")]
    Bootstrap(String),
}

/// A running server.
pub struct Server {
    local_addr: SocketAddr,
    health: Arc<Health>,
    stop: watch::Sender<bool>,
    accept_loop: JoinHandle<()>,
    registry: Arc<Registry>,
}

impl Server {
    /// Build the registry on `storage`, create the system namespaces, bind and start serving.
    pub async fn start(
        config: ServerConfig,
        storage: Arc<dyn Storage>,
    ) -> Result<Server, ServeError> {
        let registry = Arc::new(Registry::new(storage.clone(), config.cache_options.clone()));
        registry
            .bootstrap(config.client_ca_pem.as_deref())
            .await
            .map_err(|err| ServeError::Bootstrap(err.to_string()))?;
        let address = SocketAddr::new(config.bind_address, config.secure_port);
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| ServeError::Bind { address, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServeError::Bind { address, source })?;
        let (stop, stop_signal) = watch::channel(false);
        let health = Arc::new(Health::new(storage, registry.clone()));
        let handler = ResourceHandler::new(
            registry.clone(),
            Arc::new(Admission::new(registry.clone())),
            config.handler_options.clone(),
            stop_signal.clone(),
        );
        let core = CoreServer::new(
            registry.clone(),
            handler,
            health.clone(),
            local_addr.to_string(),
        );
        let service = build_handler_chain(&config, ServerChain::new(core));
        let acceptor = TlsAcceptor::from(config.tls.clone());
        let accept_loop = tokio::spawn(accept_loop(
            listener,
            acceptor,
            service,
            stop_signal,
            config.shutdown_timeout,
        ));
        Ok(Server {
            local_addr,
            health,
            stop,
            accept_loop,
            registry,
        })
    }

    /// The address the server listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The registry being served.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Shut down gracefully: readyz fails, the listener closes, watches end, and in-flight
    /// requests get up to the shutdown timeout to finish.
    pub async fn shutdown(self) {
        self.health.begin_shutdown();
        let _ = self.stop.send(true);
        let _ = self.accept_loop.await;
    }
}

/// The filter chain in front of the server chain, outermost first.
fn build_handler_chain(config: &ServerConfig, chain: ServerChain) -> Next {
    let authorized = Next::new(chain)
        .with(Timeout::new(config.request_timeout))
        .with(Authorization::new(Arc::new(AllowAuthenticated)));
    let admitted = if config.enable_priority_and_fairness {
        authorized.with(PriorityAndFairness::new(
            config.max_requests_inflight + config.max_mutating_requests_inflight,
            config.request_timeout,
        ))
    } else {
        authorized.with(MaxInFlight::new(
            config.max_requests_inflight,
            config.max_mutating_requests_inflight,
        ))
    };
    admitted
        .with(Authentication::new(Arc::new(config.tokens.clone())))
        .with(WithRequestInfo)
        .with(PanicRecovery)
}

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    service: Next,
    mut stop: watch::Receiver<bool>,
    shutdown_timeout: Duration,
) {
    let graceful = GracefulShutdown::new();
    let builder = Arc::new({
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http2().max_concurrent_streams(1000);
        builder
    });
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => break,
        };
        let (tcp, _) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = service.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certificates| certificates.first())
                .and_then(|certificate| crate::tls::client_identity(certificate.as_ref()))
                .map(|(name, groups)| Arc::new(UserInfo::from_certificate(name, groups)));
            let peer = PeerIdentity(identity);
            let per_connection = hyper::service::service_fn(move |mut request: Request| {
                request.extensions_mut().insert(peer.clone());
                let response = service.run(request);
                async move { Ok::<Response, Infallible>(response.await) }
            });
            let connection =
                builder.serve_connection_with_upgrades(TokioIo::new(tls), per_connection);
            if let Err(err) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown timed out with requests still in flight");
    }
}
