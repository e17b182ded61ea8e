//! The server chain, as upstream builds it: the aggregator (APIService proxying), then the core
//! server (built-in resources, discovery, health, version), then the apiextensions server (CRDs),
//! then a not-found handler. Each link serves what it owns and hands everything else to the next.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::StatusCode;
use ironplane_apimachinery::codec;
use ironplane_registry::Registry;
use serde::Serialize;

use crate::body::{self, Request, Response};
use crate::discovery::Discovery;
use crate::filters::{FilterFuture, Handler};
use crate::handlers::ResourceHandler;
use crate::health::Health;
use crate::request_info::RequestInfo;
use crate::responses;

/// What a link did with a request.
pub enum Handled {
    /// It answered.
    Served(Response),
    /// It does not own the request; the next link gets it.
    Delegated(Request),
}

/// The future a link returns.
pub type LinkFuture<'a> = Pin<Box<dyn Future<Output = Handled> + Send + 'a>>;

/// One link of the chain.
pub trait ChainLink: Send + Sync + 'static {
    /// Serve the request or hand it back.
    fn handle(&self, request: Request) -> LinkFuture<'_>;
}

/// The aggregator: proxies the groups of registered APIServices to their servers. None are
/// registered yet, so it delegates everything.
pub struct Aggregator;

impl ChainLink for Aggregator {
    fn handle(&self, request: Request) -> LinkFuture<'_> {
        Box::pin(async move { Handled::Delegated(request) })
    }
}

/// The apiextensions server: serves CustomResourceDefinitions and custom resources. None yet,
/// so it delegates everything.
pub struct ApiExtensions;

impl ChainLink for ApiExtensions {
    fn handle(&self, request: Request) -> LinkFuture<'_> {
        Box::pin(async move { Handled::Delegated(request) })
    }
}

/// `/version`, in the shape of upstream's `version.Info`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// Major version of the Kubernetes API served.
    pub major: String,
    /// Minor version of the Kubernetes API served.
    pub minor: String,
    /// The version clients key on (kubectl picks its own version from it).
    pub git_version: String,
    /// The commit Ironplane was built from, when known.
    pub git_commit: String,
    /// `clean` or `dirty`.
    pub git_tree_state: String,
    /// Build date.
    pub build_date: String,
    /// The compiler's version.
    pub go_version: String,
    /// The compiler.
    pub compiler: String,
    /// `os/arch`.
    pub platform: String,
}

impl VersionInfo {
    /// The version Ironplane reports: the Kubernetes API it serves.
    pub fn current() -> Self {
        VersionInfo {
            major: "1".into(),
            minor: "32".into(),
            git_version: "v1.32.6".into(),
            git_commit: option_env!("IRONPLANE_GIT_COMMIT")
                .unwrap_or("unknown")
                .into(),
            git_tree_state: "clean".into(),
            build_date: option_env!("IRONPLANE_BUILD_DATE")
                .unwrap_or("1970-01-01T00:00:00Z")
                .into(),
            go_version: "rust".into(),
            compiler: "rustc".into(),
            platform: format!("{}/{}", std::env::consts::OS, go_arch()),
        }
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The core server: built-in resources, their discovery, health and version.
pub struct CoreServer {
    registry: Arc<Registry>,
    resources: ResourceHandler,
    health: Arc<Health>,
    server_address: String,
}

impl CoreServer {
    /// The core server over a registry.
    pub fn new(
        registry: Arc<Registry>,
        resources: ResourceHandler,
        health: Arc<Health>,
        server_address: String,
    ) -> Self {
        CoreServer {
            registry,
            resources,
            health,
            server_address,
        }
    }

    fn owns_group_version(&self, info: &RequestInfo) -> bool {
        self.resources
            .serves_group_version(&info.api_group, &info.api_version)
    }
}

impl ChainLink for CoreServer {
    fn handle(&self, request: Request) -> LinkFuture<'_> {
        Box::pin(async move {
            let mut request = request;
            if let Some(info) = request.extensions().get::<RequestInfo>()
                && info.is_resource_request
            {
                if !self.owns_group_version(info) {
                    return Handled::Delegated(request);
                }
                // Served here: the handlers own the info from now on (no copy per request).
                let info = request
                    .extensions_mut()
                    .remove::<RequestInfo>()
                    .unwrap_or_default();
                return Handled::Served(self.resources.serve(request, info).await);
            }
            let path = request.uri().path().to_owned();
            let pretty = responses::wants_pretty(&request);
            if path == "/version" || path == "/version/" {
                let bytes = codec::to_json_pretty(&VersionInfo::current());
                return Handled::Served(responses::response(
                    StatusCode::OK,
                    codec::JSON,
                    body::full(bytes),
                ));
            }
            if let Some(response) = self.health.serve(&path, request.uri().query()).await {
                return Handled::Served(response);
            }
            let accept = request
                .headers()
                .get(http::header::ACCEPT)
                .and_then(|value| value.to_str().ok());
            if let Some(response) =
                crate::openapi::OpenApi::new(&self.registry).serve(&path, accept)
            {
                return Handled::Served(response);
            }
            let header = |name| {
                request
                    .headers()
                    .get(name)
                    .and_then(|value: &http::HeaderValue| value.to_str().ok())
            };
            let discovery = Discovery::new(&self.registry, &self.server_address);
            if let Some(response) = discovery.serve(
                &path,
                header(http::header::ACCEPT),
                header(http::header::IF_NONE_MATCH),
                pretty,
            ) {
                return Handled::Served(response);
            }
            Handled::Delegated(request)
        })
    }
}

/// The whole chain, the last handler behind the filters.
#[derive(Clone)]
pub struct ServerChain {
    links: Arc<Vec<Arc<dyn ChainLink>>>,
}

impl ServerChain {
    /// aggregator → core → apiextensions → not found.
    pub fn new(core: CoreServer) -> Self {
        ServerChain {
            links: Arc::new(vec![
                Arc::new(Aggregator),
                Arc::new(core),
                Arc::new(ApiExtensions),
            ]),
        }
    }
}

impl Handler for ServerChain {
    fn handle(&self, request: Request) -> FilterFuture {
        let links = self.links.clone();
        Box::pin(async move {
            let mut request = request;
            for link in links.iter() {
                match link.handle(request).await {
                    Handled::Served(response) => return response,
                    Handled::Delegated(next) => request = next,
                }
            }
            responses::plain_not_found()
        })
    }
}
