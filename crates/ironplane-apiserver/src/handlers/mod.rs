//! The resource handlers: routing a resource request to its resource and verb, one module per
//! kind of work as upstream's `endpoints/handlers` (reads, watch, writes), and writing objects
//! in the negotiated form.

mod decode;
pub mod options;
mod read;
mod watch;
mod write;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use ironplane_apimachinery::codec::{self, Negotiated, Offers, Target};
use ironplane_apimachinery::table::{IncludeObject, Table, TableRow, partial_object_metadata};
use ironplane_apimachinery::{ApiError, ListMeta, Object};
use ironplane_registry::Registry;
use ironplane_registry::registry::Resource;
use tokio::sync::watch as signal;

use crate::admission::Admission;
use crate::body::{Request, Response};
use crate::request_info::RequestInfo;
use crate::responses::{self, status_response};

/// Tuning for the handlers.
#[derive(Clone, Debug)]
pub struct HandlerOptions {
    /// How often a watch with `allowWatchBookmarks` gets a bookmark.
    pub bookmark_interval: Duration,
    /// The default and maximum watch duration when the client sets none (upstream picks a
    /// random value between this and twice it).
    pub min_watch_timeout: Duration,
}

impl Default for HandlerOptions {
    fn default() -> Self {
        HandlerOptions {
            bookmark_interval: Duration::from_secs(60),
            min_watch_timeout: Duration::from_secs(1800),
        }
    }
}

/// The future of one resource request.
pub type ServeFuture<'a> = std::pin::Pin<Box<dyn Future<Output = Response> + Send + 'a>>;

/// Serves resource requests for the registry's resources.
pub struct ResourceHandler {
    registry: Arc<Registry>,
    admission: Arc<Admission>,
    options: HandlerOptions,
    shutdown: signal::Receiver<bool>,
}

/// Everything a verb handler needs to know about its request.
pub(crate) struct Scope {
    pub resource: Arc<Resource>,
    pub info: RequestInfo,
    /// The namespace the request addresses; `None` for cluster-scoped resources.
    pub namespace: Option<String>,
    pub pretty: bool,
    pub accept: Option<String>,
    pub content_type: Option<String>,
    pub query: Option<String>,
}

impl Scope {
    fn negotiate(&self, list: bool) -> Result<Negotiated, ApiError> {
        let offers = Offers {
            table: true,
            partial_object_metadata: !list,
            partial_object_metadata_list: list,
            discovery: false,
        };
        codec::negotiate(self.accept.as_deref(), offers)
            .ok_or_else(|| ApiError::not_acceptable(&codec::OFFERED_MEDIA_TYPES))
    }

    fn query(&self) -> options::Query<'_> {
        options::Query::new(self.query.as_deref())
    }

    fn error(&self, err: &ApiError) -> Response {
        status_response(err, self.pretty)
    }

    /// A verb's result as the response.
    fn respond(&self, result: Result<Response, ApiError>) -> Response {
        result.unwrap_or_else(|err| self.error(&err))
    }
}

impl ResourceHandler {
    /// Handlers for these resources.
    pub fn new(
        registry: Arc<Registry>,
        admission: Arc<Admission>,
        options: HandlerOptions,
        shutdown: signal::Receiver<bool>,
    ) -> Self {
        ResourceHandler {
            registry,
            admission,
            options,
            shutdown,
        }
    }

    /// Whether a group version is served here.
    pub fn serves_group_version(&self, group: &str, version: &str) -> bool {
        self.registry
            .resources()
            .iter()
            .any(|resource| resource.info().group == group && resource.info().version == version)
    }

    /// Serve a resource request whose group version is served here. The checks that need no I/O
    /// run first; the verb's future is then boxed at its own size (one future for every verb was
    /// as large as the largest of them, 6 KiB, all of it copied into each request's task).
    pub fn serve(&self, request: Request, info: RequestInfo) -> ServeFuture<'_> {
        let pretty = responses::wants_pretty(&request);
        let scope = match self.scope(&request, info, pretty) {
            Ok(scope) => scope,
            Err(err) => return Box::pin(std::future::ready(status_response(&err, pretty))),
        };
        match scope.info.verb.as_str() {
            "get" => Box::pin(async move { scope.respond(read::get(&scope).await) }),
            "list" => Box::pin(async move { scope.respond(read::list(&scope).await) }),
            "watch" => {
                let shutdown = self.shutdown.clone();
                Box::pin(async move {
                    scope.respond(watch::watch(&scope, &self.options, shutdown).await)
                })
            }
            "create" => Box::pin(async move {
                scope.respond(write::create(&scope, request, &self.admission).await)
            }),
            "update" => {
                Box::pin(async move { scope.respond(write::update(&scope, request).await) })
            }
            "patch" => Box::pin(async move { scope.respond(write::patch(&scope, request).await) }),
            "delete" => {
                Box::pin(async move { scope.respond(write::delete(&scope, request).await) })
            }
            "deletecollection" => {
                Box::pin(
                    async move { scope.respond(write::delete_collection(&scope, request).await) },
                )
            }
            _ => Box::pin(std::future::ready(
                scope.error(&ApiError::method_not_allowed()),
            )),
        }
    }

    /// What a resource request addresses, or why it is refused (unknown resource, wrong scope,
    /// a verb the path or the resource does not allow).
    fn scope(&self, request: &Request, info: RequestInfo, pretty: bool) -> Result<Scope, ApiError> {
        let Some(resource) = self
            .registry
            .get(&info.api_group, &info.api_version, &info.resource)
            .cloned()
        else {
            return Err(ApiError::not_found_path());
        };
        let resource_info = resource.info();
        let namespaced = resource_info.namespaced;
        // Namespaced kinds are addressed inside a namespace, or listed and watched across all of
        // them; cluster-scoped kinds are never inside one (a namespace's path names itself).
        let is_namespace_kind =
            resource_info.group.is_empty() && resource_info.resource == "namespaces";
        let named_path = info.parts.len() >= 2;
        let namespace = if namespaced {
            (!info.namespace.is_empty()).then(|| info.namespace.clone())
        } else {
            None
        };
        if !namespaced && !is_namespace_kind && !info.namespace.is_empty() {
            return Err(ApiError::not_found_path());
        }
        if namespaced && namespace.is_none() {
            if named_path {
                return Err(ApiError::not_found_path());
            }
            if !matches!(info.verb.as_str(), "list" | "watch") {
                return Err(ApiError::method_not_allowed());
            }
        }
        let allowed_here = if named_path {
            matches!(
                info.verb.as_str(),
                "get" | "update" | "patch" | "delete" | "watch"
            )
        } else {
            matches!(
                info.verb.as_str(),
                "list" | "watch" | "create" | "deletecollection"
            )
        };
        if !allowed_here {
            return Err(ApiError::method_not_allowed());
        }
        if !info.subresource.is_empty() {
            let Some(sub) = resource_info
                .subresources
                .iter()
                .find(|s| s.name == info.subresource)
            else {
                return Err(ApiError::not_found_path());
            };
            if !sub.verbs.contains(&info.verb) {
                return Err(ApiError::method_not_allowed());
            }
        } else if !resource_info.supports(&info.verb) {
            return Err(ApiError::method_not_allowed());
        }
        let header = |name: http::header::HeaderName| {
            request
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Scope {
            accept: header(http::header::ACCEPT),
            content_type: header(http::header::CONTENT_TYPE),
            query: request.uri().query().map(str::to_owned),
            resource,
            namespace,
            pretty,
            info,
        })
    }
}

/// The content type of a negotiated response.
pub(crate) fn content_type(negotiated: &Negotiated) -> String {
    match &negotiated.target {
        Target::Object => negotiated.format.content_type().to_owned(),
        Target::Table { version } => format!(
            "{};as=Table;v={version};g=meta.k8s.io",
            negotiated.format.content_type()
        ),
        Target::PartialObjectMetadata { version } => format!(
            "{};as=PartialObjectMetadata;v={version};g=meta.k8s.io",
            negotiated.format.content_type()
        ),
        Target::PartialObjectMetadataList { version } => format!(
            "{};as=PartialObjectMetadataList;v={version};g=meta.k8s.io",
            negotiated.format.content_type()
        ),
        Target::DiscoveryList { version } => format!(
            "{};g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList",
            negotiated.format.content_type()
        ),
    }
}

/// One row of a table for an object.
pub(crate) fn table_row(
    scope: &Scope,
    object: &Object,
    include: IncludeObject,
    version: &str,
) -> TableRow {
    let now = jiff::Timestamp::now();
    let cells = scope.resource.store.strategy().table_row(object, now);
    let embedded = match include {
        IncludeObject::None => None,
        IncludeObject::Metadata => Some(partial_object_metadata(version, &object.metadata)),
        IncludeObject::Object => Some(object.to_value()),
    };
    TableRow {
        cells,
        object: embedded,
    }
}

/// A table of objects.
pub(crate) fn table(
    scope: &Scope,
    objects: &[Object],
    list_meta: ListMeta,
    include: IncludeObject,
    version: &str,
) -> Table {
    Table {
        kind: "Table",
        api_version: format!("meta.k8s.io/{version}"),
        metadata: list_meta,
        column_definitions: scope.resource.store.strategy().table_columns(),
        rows: objects
            .iter()
            .map(|object| table_row(scope, object, include, version))
            .collect(),
    }
}

/// Write one object in the negotiated form.
pub(crate) fn object_response(
    scope: &Scope,
    code: StatusCode,
    object: &Object,
    negotiated: &Negotiated,
    warnings: &[String],
) -> Response {
    let include = scope
        .query()
        .get("includeObject")
        .and_then(|value| IncludeObject::parse(&value))
        .unwrap_or_default();
    let content_type = content_type(negotiated);
    let mut response = match &negotiated.target {
        Target::Table { version } => {
            let table = table(
                scope,
                std::slice::from_ref(object),
                ListMeta {
                    resource_version: object.metadata.resource_version.clone(),
                    ..Default::default()
                },
                include,
                version,
            );
            responses::value_response(code, &table, negotiated.format, &content_type, scope.pretty)
        }
        Target::PartialObjectMetadata { version } => {
            let partial = partial_object_metadata(version, &object.metadata);
            responses::value_response(
                code,
                &partial,
                negotiated.format,
                &content_type,
                scope.pretty,
            )
        }
        _ => {
            responses::value_response(code, object, negotiated.format, &content_type, scope.pretty)
        }
    };
    add_warnings(&mut response, warnings);
    response
}

/// Add `Warning: 299 - "..."` headers.
pub(crate) fn add_warnings(response: &mut Response, warnings: &[String]) {
    for warning in warnings {
        let text = format!(
            "299 - {}",
            ironplane_apimachinery::status::go_quote(warning)
        );
        if let Ok(value) = http::HeaderValue::from_str(&text) {
            response.headers_mut().append("warning", value);
        }
    }
}
