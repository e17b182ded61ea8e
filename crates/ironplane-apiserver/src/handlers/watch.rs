//! watch: newline-delimited JSON events over a chunked response, from the watch cache. Starts
//! with the current state (resourceVersion unset or 0, or sendInitialEvents, ended by a bookmark
//! carrying `k8s.io/initial-events-end`), or resumes after a resourceVersion; sends bookmarks on
//! request; ends at its timeout, when the server shuts down, or when the watcher falls behind.

use std::sync::Arc;
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http_body_util::BodyExt as _;
use ironplane_apimachinery::codec::{Format, Target};
use ironplane_apimachinery::table::{IncludeObject, partial_object_metadata};
use ironplane_apimachinery::watch::{EventType, INITIAL_EVENTS_END_ANNOTATION, encode_event};
use ironplane_apimachinery::{ApiError, ListMeta, ObjectMeta};
use ironplane_registry::cacher::{CacheEvent, CacheWatcher, CachedObject, ChangeKind, WatchStart};
use ironplane_registry::predicate::SelectionPredicate;
use ironplane_registry::store::parse_resource_version;
use tokio::sync::watch as signal;

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
    let body = match started {
        Ok(watcher) => WatchBody::start(watcher, context, shutdown),
        Err(err) if matches!(err.code(), 410 | 504) => {
            // Upstream's cache answers these inside an established watch, as an ERROR event.
            let frame = encode_event(
                EventType::Error,
                &ironplane_apimachinery::codec::to_json(err.status.as_ref()),
            );
            body::full(frame)
        }
        Err(err) => return Err(err),
    };
    Ok(responses::response(
        StatusCode::OK,
        &content_type(&negotiated),
        body,
    ))
}

/// The most bytes of frames one poll gathers into a single write.
const FRAME_BATCH_BYTES: usize = 64 * 1024;

/// A watch response body: it pulls events straight from the cache watcher's queue when the
/// connection is ready for more, so a watch costs no task of its own, and events that queued up
/// meanwhile leave in one write.
struct WatchBody {
    watcher: CacheWatcher,
    context: WatchContext,
    initial: std::vec::IntoIter<Arc<CachedObject>>,
    backlog: std::vec::IntoIter<Arc<CacheEvent>>,
    initial_end_pending: bool,
    last_revision: i64,
    bookmarks: Option<tokio::time::Interval>,
    /// When the watch ends; compared on every poll, waited on only when idle.
    deadline_at: tokio::time::Instant,
    deadline: Pin<Box<tokio::time::Sleep>>,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    done: bool,
}

/// Frames ready to leave: one is passed on as it is (a shared encoding, no copy); several are
/// joined into one write.
#[derive(Default)]
struct Frames {
    first: Option<Bytes>,
    joined: BytesMut,
    len: usize,
}

impl Frames {
    fn push(&mut self, frame: Bytes) {
        self.len += frame.len();
        match self.first.take() {
            None if self.joined.is_empty() => self.first = Some(frame),
            None => self.joined.extend_from_slice(&frame),
            Some(first) => {
                self.joined.extend_from_slice(&first);
                self.joined.extend_from_slice(&frame);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn into_bytes(self) -> Bytes {
        match self.first {
            Some(first) => first,
            None => self.joined.freeze(),
        }
    }
}

impl WatchBody {
    fn start(
        mut watcher: CacheWatcher,
        context: WatchContext,
        mut shutdown: signal::Receiver<bool>,
    ) -> body::Body {
        let initial = std::mem::take(&mut watcher.initial).into_iter();
        let backlog = std::mem::take(&mut watcher.backlog).into_iter();
        let bookmarks = context.bookmarks.then(|| {
            let mut interval = tokio::time::interval_at(
                tokio::time::Instant::now() + context.bookmark_interval,
                context.bookmark_interval,
            );
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        let deadline_at = tokio::time::Instant::now() + context.timeout;
        let deadline = Box::pin(tokio::time::sleep_until(deadline_at));
        let stop: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
            while !*shutdown.borrow_and_update() {
                if shutdown.changed().await.is_err() {
                    return;
                }
            }
        });
        WatchBody {
            last_revision: watcher.start_revision,
            initial_end_pending: context.send_initial_end,
            watcher,
            context,
            initial,
            backlog,
            bookmarks,
            deadline_at,
            deadline,
            shutdown: stop,
            done: false,
        }
        .boxed_unsync()
    }

    /// Gather frames that are ready without waiting: initial state, the end-of-initial bookmark,
    /// the backlog, then whatever live events are queued. Ready when the watcher's queue closed.
    fn gather(&mut self, cx: &mut Context<'_>, out: &mut Frames) -> Poll<()> {
        while out.len < FRAME_BATCH_BYTES {
            if let Some(object) = self.initial.next() {
                out.push(encode_object(&self.context, EventType::Added, &object));
                continue;
            }
            if self.initial_end_pending {
                self.initial_end_pending = false;
                out.push(bookmark(&self.context, self.watcher.start_revision, true));
                continue;
            }
            if let Some(event) = self.backlog.next() {
                self.last_revision = event.revision;
                if let Some(frame) = encode_change(&self.context, &event) {
                    out.push(frame);
                }
                continue;
            }
            match self.watcher.events.poll_recv(cx) {
                Poll::Ready(Some(event)) => {
                    self.last_revision = event.revision;
                    if let Some(frame) = encode_change(&self.context, &event) {
                        out.push(frame);
                    }
                }
                // The cache cut this watcher off (it fell behind) or restarted: end the watch so
                // the client resumes from its last resourceVersion.
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => break,
            }
        }
        Poll::Pending
    }
}

impl http_body::Body for WatchBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::convert::Infallible>>> {
        let this = &mut *self;
        if this.done || tokio::time::Instant::now() >= this.deadline_at {
            this.done = true;
            return Poll::Ready(None);
        }
        let mut out = Frames::default();
        let ended = this.gather(cx, &mut out).is_ready();
        if out.is_empty()
            && !ended
            && let Some(bookmarks) = this.bookmarks.as_mut()
            && bookmarks.poll_tick(cx).is_ready()
        {
            // Every event up to the cache's revision reached our queue before the revision was
            // published, and the queue is empty: the bookmark overtakes nothing.
            let revision = this.context.scope_strategy.store.cache().revision();
            if revision >= this.last_revision {
                this.last_revision = revision;
                out.push(bookmark(&this.context, revision, false));
            }
        }
        if ended {
            this.done = true;
        }
        if !out.is_empty() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(out.into_bytes()))));
        }
        if this.done {
            return Poll::Ready(None);
        }
        // Idle: only now wait on the deadline and on shutdown (polling them on every event would
        // cost a timer registration per frame).
        if this.shutdown.as_mut().poll(cx).is_ready() || this.deadline.as_mut().poll(cx).is_ready()
        {
            this.done = true;
            return Poll::Ready(None);
        }
        Poll::Pending
    }
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
