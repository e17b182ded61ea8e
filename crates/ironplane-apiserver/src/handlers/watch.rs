//! watch: newline-delimited JSON events over a chunked response, from the watch cache. Starts
//! with the current state (resourceVersion unset or 0, or sendInitialEvents, ended by a bookmark
//! carrying `k8s.io/initial-events-end`), or resumes after a resourceVersion; sends bookmarks on
//! request; ends at its timeout, when the server shuts down, or when the watcher falls behind.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use ironplane_apimachinery::codec::{Format, Target};
use ironplane_apimachinery::table::{IncludeObject, partial_object_metadata};
use ironplane_apimachinery::watch::{EventType, INITIAL_EVENTS_END_ANNOTATION, encode_event};
use ironplane_apimachinery::{ApiError, ListMeta, ObjectMeta};
use ironplane_registry::cacher::{CacheEvent, CacheWatcher, CachedObject, ChangeKind, WatchStart};
use ironplane_registry::predicate::SelectionPredicate;
use ironplane_registry::store::parse_resource_version;
use tokio::sync::{mpsc, watch as signal};

use super::options::ListParams;
use super::{HandlerOptions, Scope, content_type, table};
use crate::body::{self, Response};
use crate::responses;

/// How the events of one watch are encoded.
#[derive(Clone)]
enum Encoding {
    /// The objects themselves (cached frames are reused).
    Object,
    /// One-row tables.
    Table {
        version: String,
        include: IncludeObject,
    },
    /// Metadata only.
    Metadata { version: String },
}

struct WatchContext {
    encoding: Encoding,
    predicate: SelectionPredicate,
    kind: String,
    api_version: String,
    bookmarks: bool,
    bookmark_interval: Duration,
    timeout: Duration,
    send_initial_end: bool,
    scope_strategy: Arc<ironplane_registry::registry::Resource>,
}

/// A watch request.
pub(crate) async fn watch(
    scope: &Scope,
    options: &HandlerOptions,
    shutdown: signal::Receiver<bool>,
) -> Result<Response, ApiError> {
    let negotiated = scope.negotiate(false)?;
    if negotiated.format != Format::Json {
        return Err(ApiError::not_acceptable(&[
            ironplane_apimachinery::codec::JSON,
        ]));
    }
    let strategy = scope.resource.store.strategy().clone();
    let mut params = ListParams::parse(&scope.query(), strategy.as_ref(), true)?;
    if !scope.info.name.is_empty() && scope.info.parts.len() >= 2 {
        // A watch of one named object: upstream turns the name into a field selector.
        let by_name = ironplane_apimachinery::fields::Selector::one_term_equal(
            "metadata.name",
            &scope.info.name,
        );
        params.predicate.fields = ironplane_apimachinery::fields::Selector::and(&[
            params.predicate.fields.clone(),
            by_name,
        ]);
    }
    let send_initial = params.send_initial_events == Some(true);
    let (start, consistent) = match params.resource_version.as_deref() {
        _ if send_initial => (WatchStart::InitialState, params.resource_version.is_none()),
        None => (WatchStart::InitialState, true),
        Some("0") => (WatchStart::InitialState, false),
        Some(rv) => (WatchStart::After(parse_resource_version(rv)?), false),
    };
    let start = match (start, send_initial, params.resource_version.as_deref()) {
        (WatchStart::InitialState, true, Some(rv)) if rv != "0" => {
            // sendInitialEvents from a resourceVersion: at least that fresh, then the state.
            scope
                .resource
                .store
                .cache()
                .wait_until_fresh(parse_resource_version(rv)?)
                .await?;
            WatchStart::InitialState
        }
        (start, _, _) => start,
    };
    let encoding = match &negotiated.target {
        Target::Table { version } => Encoding::Table {
            version: version.clone(),
            include: params.include_object,
        },
        Target::PartialObjectMetadata { version } => Encoding::Metadata {
            version: version.clone(),
        },
        _ => Encoding::Object,
    };
    let timeout = match params.timeout_seconds {
        Some(seconds) if seconds > 0 => Duration::from_secs(seconds as u64),
        _ => {
            let base = options.min_watch_timeout;
            let jitter = rand::random::<f64>();
            base + base.mul_f64(jitter)
        }
    };
    let context = WatchContext {
        encoding,
        predicate: params.predicate.clone(),
        kind: scope.resource.info().kind.clone(),
        api_version: scope.resource.info().api_version(),
        bookmarks: params.allow_bookmarks,
        bookmark_interval: options.bookmark_interval,
        timeout,
        send_initial_end: send_initial,
        scope_strategy: scope.resource.clone(),
    };
    let (sender, receiver) = mpsc::channel::<Bytes>(64);
    let started = scope
        .resource
        .store
        .watch(
            scope.namespace.as_deref(),
            params.predicate,
            start,
            consistent,
        )
        .await;
    match started {
        Ok(watcher) => {
            tokio::spawn(run(watcher, context, sender, shutdown));
        }
        Err(err) if matches!(err.code(), 410 | 504) => {
            // Upstream's cache answers these inside an established watch, as an ERROR event.
            let frame = encode_event(
                EventType::Error,
                &ironplane_apimachinery::codec::to_json(err.status.as_ref()),
            );
            let _ = sender.try_send(Bytes::from(frame));
            drop(sender);
        }
        Err(err) => return Err(err),
    }
    let mut response = responses::response(
        StatusCode::OK,
        &content_type(&negotiated),
        body::channel(receiver),
    );
    response.headers_mut().remove(http::header::CACHE_CONTROL);
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache, private"),
    );
    Ok(response)
}

async fn run(
    mut watcher: CacheWatcher,
    context: WatchContext,
    sender: mpsc::Sender<Bytes>,
    mut shutdown: signal::Receiver<bool>,
) {
    let deadline = tokio::time::Instant::now() + context.timeout;
    let mut last_revision = watcher.start_revision;
    for object in std::mem::take(&mut watcher.initial) {
        if !send(&sender, encode_object(&context, EventType::Added, &object)).await {
            return;
        }
    }
    if context.send_initial_end {
        let frame = bookmark(&context, watcher.start_revision, true);
        if !send(&sender, frame).await {
            return;
        }
    }
    for event in std::mem::take(&mut watcher.backlog) {
        last_revision = event.revision;
        if let Some(frame) = encode_change(&context, &event)
            && !send(&sender, frame).await
        {
            return;
        }
    }
    let cache = context.scope_strategy.store.cache().clone();
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + context.bookmark_interval,
        context.bookmark_interval,
    );
    loop {
        tokio::select! {
            event = watcher.events.recv() => {
                let Some(event) = event else { return };
                last_revision = event.revision;
                if let Some(frame) = encode_change(&context, &event)
                    && !send(&sender, frame).await {
                        return;
                    }
            }
            _ = ticker.tick(), if context.bookmarks => {
                // Every event up to the cache's revision has reached our queue once the revision is
                // published; with the queue empty the bookmark cannot overtake an event.
                let revision = cache.revision();
                if watcher.events.is_empty() && revision >= last_revision {
                    last_revision = revision;
                    if !send(&sender, bookmark(&context, revision, false)).await {
                        return;
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => return,
            _ = shutdown.changed() => return,
            _ = sender.closed() => return,
        }
    }
}

async fn send(sender: &mpsc::Sender<Bytes>, frame: Bytes) -> bool {
    sender.send(frame).await.is_ok()
}

/// The frame of a change, or nothing when the watcher's selector did not and does not match.
fn encode_change(context: &WatchContext, event: &Arc<CacheEvent>) -> Option<Bytes> {
    let now = context.predicate.matches(&event.object);
    let before = event
        .prev
        .as_ref()
        .is_some_and(|prev| context.predicate.matches(prev));
    let event_type = match (event.kind, before, now) {
        (ChangeKind::Deleted, _, _) => EventType::Deleted,
        (ChangeKind::Added, _, true) => EventType::Added,
        (ChangeKind::Modified, true, true) => EventType::Modified,
        (ChangeKind::Modified, false, true) => EventType::Added,
        (ChangeKind::Modified, true, false) => EventType::Deleted,
        _ => return None,
    };
    let natural = matches!(
        (event.kind, event_type),
        (ChangeKind::Added, EventType::Added)
            | (ChangeKind::Modified, EventType::Modified)
            | (ChangeKind::Deleted, EventType::Deleted)
    );
    if natural && matches!(context.encoding, Encoding::Object) {
        return Some(event.json_frame());
    }
    Some(encode_object(context, event_type, &event.object))
}

fn encode_object(context: &WatchContext, event_type: EventType, object: &CachedObject) -> Bytes {
    let json = match &context.encoding {
        Encoding::Object => return Bytes::from(encode_event(event_type, &object.json)),
        Encoding::Table { version, include } => match object.decode() {
            Ok(decoded) => {
                let scope_table = table_for(context, &decoded, *include, version, object.revision);
                ironplane_apimachinery::codec::to_json(&scope_table)
            }
            Err(err) => ironplane_apimachinery::codec::to_json(err.status.as_ref()),
        },
        Encoding::Metadata { version } => match object.decode() {
            Ok(decoded) => ironplane_apimachinery::codec::to_json(&partial_object_metadata(
                version,
                &decoded.metadata,
            )),
            Err(err) => ironplane_apimachinery::codec::to_json(err.status.as_ref()),
        },
    };
    Bytes::from(encode_event(event_type, &json))
}

fn table_for(
    context: &WatchContext,
    object: &ironplane_apimachinery::Object,
    include: IncludeObject,
    version: &str,
    revision: i64,
) -> ironplane_apimachinery::table::Table {
    let scope = Scope {
        resource: context.scope_strategy.clone(),
        info: Default::default(),
        namespace: None,
        pretty: false,
        accept: None,
        content_type: None,
        query: None,
    };
    table(
        &scope,
        std::slice::from_ref(object),
        ListMeta {
            resource_version: revision.to_string(),
            ..Default::default()
        },
        include,
        version,
    )
}

/// A BOOKMARK: an object of the watched kind carrying only a resourceVersion (and, at the end of
/// the initial events, the annotation that says so).
fn bookmark(context: &WatchContext, revision: i64, initial_end: bool) -> Bytes {
    let mut metadata = ObjectMeta {
        resource_version: revision.to_string(),
        ..Default::default()
    };
    if initial_end {
        metadata
            .annotations
            .insert(INITIAL_EVENTS_END_ANNOTATION.into(), "true".into());
    }
    let object = ironplane_apimachinery::Object {
        api_version: context.api_version.clone(),
        kind: context.kind.clone(),
        metadata,
        fields: Default::default(),
    };
    let json = match &context.encoding {
        Encoding::Object => object.to_json(),
        Encoding::Table { version, .. } => {
            ironplane_apimachinery::codec::to_json(&ironplane_apimachinery::table::Table {
                kind: "Table",
                api_version: format!("meta.k8s.io/{version}"),
                metadata: ListMeta {
                    resource_version: revision.to_string(),
                    ..Default::default()
                },
                column_definitions: Vec::new(),
                rows: Vec::new(),
            })
        }
        Encoding::Metadata { version } => ironplane_apimachinery::codec::to_json(
            &partial_object_metadata(version, &object.metadata),
        ),
    };
    Bytes::from(encode_event(EventType::Bookmark, &json))
}
