//! The watch cache: one per resource, kept current from the store's watch, holding each
//! object's encoded bytes so that a list is mostly a copy of pointers and each change is encoded
//! once whatever the number of watchers.
//!
//! A reflector task lists the resource's prefix, then follows the store's watch from that
//! revision. Every change is applied under one lock that also registers watchers, so a watcher
//! sees its backlog and then live events with no gap and no duplicate. Watchers have bounded
//! queues: one that cannot keep up is cut off (its watch ends and the client resumes from its last
//! resourceVersion) instead of slowing the writer or other watchers.
//!
//! Architecture Invariant: the cache applies store events in revision order and publishes each
//! one to watchers in that order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ironplane_apimachinery::labels::LabelSet;
use ironplane_apimachinery::watch::{EventType, encode_event};
use ironplane_apimachinery::{ApiError, Object};
use ironplane_storage::{
    EventKind, KeyValue, ListOptions as StorageListOptions, Revision, Storage, StorageError,
    WatchMessage, WatchRequest,
};
use tokio::sync::{mpsc, watch};

use crate::strategy::Strategy;

/// One object as the cache holds it: its encoding and what selectors read, nothing more (memory
/// here grows with the number of objects).
#[derive(Debug)]
pub struct CachedObject {
    /// The storage key (`.../{namespace}/{name}` or `.../{name}`), shared with the cache's
    /// index.
    pub key: Arc<str>,
    /// The revision this state was written at (its resourceVersion).
    pub revision: Revision,
    /// The object's JSON, resourceVersion included.
    pub json: Bytes,
    /// `metadata.labels`.
    pub labels: LabelSet,
    /// Selectable fields other than `metadata.name` and `metadata.namespace` (which the key
    /// holds), and their values.
    pub fields: Box<[(&'static str, String)]>,
    /// Whether the key ends in `{namespace}/{name}`.
    namespaced: bool,
}

impl CachedObject {
    /// Build from a decoded object whose resourceVersion is already set.
    pub fn new(key: &str, revision: Revision, object: &Object, strategy: &dyn Strategy) -> Self {
        let fields = strategy
            .selectable_fields(object)
            .into_iter()
            .filter(|(name, _)| !matches!(*name, "metadata.name" | "metadata.namespace"))
            .collect();
        // The encoder's buffer grows by doubling; a cached encoding lives as long as its object,
        // so give back the slack (up to half of it) before keeping it.
        let mut json = object.to_json();
        json.shrink_to_fit();
        CachedObject {
            key: Arc::from(key),
            revision,
            json: Bytes::from(json),
            labels: LabelSet::from(&object.metadata.labels),
            fields,
            namespaced: strategy.info().namespaced,
        }
    }

    /// The object's name, from its key.
    pub fn name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or_default()
    }

    /// The object's namespace, from its key (empty for cluster-scoped objects).
    pub fn namespace(&self) -> &str {
        if !self.namespaced {
            return "";
        }
        let mut segments = self.key.rsplit('/');
        segments.next();
        segments.next().unwrap_or_default()
    }

    /// The value of a selectable field.
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "metadata.name" => Some(self.name()),
            "metadata.namespace" if self.namespaced => Some(self.namespace()),
            _ => self
                .fields
                .iter()
                .find(|(field, _)| *field == name)
                .map(|(_, value)| value.as_str()),
        }
    }

    /// Decode the cached JSON.
    pub fn decode(&self) -> Result<Object, ApiError> {
        Object::from_json(&self.json).map_err(ApiError::internal)
    }
}

/// What a change did, as watchers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created.
    Added,
    /// Modified.
    Modified,
    /// Deleted.
    Deleted,
}

/// One change in the cache's event window.
#[derive(Debug)]
pub struct CacheEvent {
    /// What happened.
    pub kind: ChangeKind,
    /// The revision of the change.
    pub revision: Revision,
    /// The new state; for a deletion, the last state with its resourceVersion set to the
    /// revision of the deletion.
    pub object: Arc<CachedObject>,
    /// The state before the change.
    pub prev: Option<Arc<CachedObject>>,
    at: Instant,
    frame: OnceLock<Bytes>,
}

impl CacheEvent {
    /// The bytes this event keeps alive, for the window's byte bound.
    fn retained_bytes(&self) -> usize {
        self.object.json.len() + self.prev.as_ref().map_or(0, |prev| prev.json.len())
    }

    /// The JSON watch frame of this event as its own kind says (ADDED, MODIFIED, DELETED),
    /// encoded once and shared by every watcher.
    pub fn json_frame(&self) -> Bytes {
        self.frame
            .get_or_init(|| {
                let event_type = match self.kind {
                    ChangeKind::Added => EventType::Added,
                    ChangeKind::Modified => EventType::Modified,
                    ChangeKind::Deleted => EventType::Deleted,
                };
                Bytes::from(encode_event(event_type, &self.object.json))
            })
            .clone()
    }
}

/// Decides which objects a watcher or list sees.
pub type Predicate = Arc<dyn Fn(&CachedObject) -> bool + Send + Sync>;

/// A watch registered with the cache.
pub struct CacheWatcher {
    /// Events before registration that the watcher must see first (resumed watches).
    pub backlog: Vec<Arc<CacheEvent>>,
    /// Current objects to send as ADDED first (watches that start with the initial state).
    pub initial: Vec<Arc<CachedObject>>,
    /// The cache revision at registration: the initial state's revision.
    pub start_revision: Revision,
    /// Live events. Closed when the watcher is cut off or the cache restarts.
    pub events: mpsc::Receiver<Arc<CacheEvent>>,
    id: u64,
    cache: Weak<CacheShared>,
}

impl Drop for CacheWatcher {
    fn drop(&mut self) {
        if let Some(shared) = self.cache.upgrade()
            && let Ok(mut inner) = shared.inner.write()
        {
            inner.watchers.remove(&self.id);
        }
    }
}

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchStart {
    /// Send the current state as ADDED events, then changes.
    InitialState,
    /// Send the changes after this revision.
    After(Revision),
}

/// A page of a list served from the cache.
#[derive(Debug)]
pub struct CacheListPage {
    /// Matching objects, in key order.
    pub items: Vec<Arc<CachedObject>>,
    /// The cache revision the page was read at.
    pub revision: Revision,
    /// Where the next page starts, when there is one.
    pub next_key: Option<String>,
    /// How many matching objects follow, when counted.
    pub remaining: Option<u64>,
}

/// Tuning for a watch cache.
#[derive(Clone, Debug)]
pub struct CacheOptions {
    /// The most events kept for resuming watches.
    pub max_events: usize,
    /// How long events are kept for resuming watches.
    pub event_window: Duration,
    /// The most bytes of object encodings the event window may hold (an event counts its object
    /// and the previous state, even when the current state shares them).
    pub max_event_bytes: usize,
    /// Queue length per watcher before it is cut off.
    pub watcher_queue: usize,
    /// How long a reader waits for the cache to reach a requested revision.
    pub freshness_timeout: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            max_events: 100_000,
            event_window: Duration::from_secs(300),
            max_event_bytes: 64 * 1024 * 1024,
            watcher_queue: 4096,
            freshness_timeout: Duration::from_secs(3),
        }
    }
}

struct WatcherSlot {
    predicate: Predicate,
    sender: mpsc::Sender<Arc<CacheEvent>>,
}

#[derive(Default)]
struct Inner {
    objects: BTreeMap<Arc<str>, Arc<CachedObject>>,
    revision: Revision,
    ready: bool,
    events: VecDeque<Arc<CacheEvent>>,
    /// What the events in the window hold, as `CacheEvent::retained_bytes` counts it.
    event_bytes: usize,
    /// Watches may resume after any revision at or above this one.
    resumable_from: Revision,
    watchers: HashMap<u64, WatcherSlot>,
    next_watcher: u64,
}

struct CacheShared {
    inner: RwLock<Inner>,
}

/// The watch cache of one resource.
pub struct WatchCache {
    shared: Arc<CacheShared>,
    strategy: Arc<dyn Strategy>,
    storage: Arc<dyn Storage>,
    prefix: String,
    options: CacheOptions,
    revision_sender: watch::Sender<Revision>,
    progress: Mutex<Option<Arc<dyn ironplane_storage::ProgressRequester>>>,
    /// For unfiltered paginated lists: the remaining count at each recently returned continue
    /// key of a list prefix (and the revision it holds at), so that a pass of pages counts the collection once
    /// instead of once per page.
    remaining_after: Mutex<HashMap<(String, String), (Revision, u64)>>,
}

/// The most continue keys whose remaining count is remembered.
const REMAINING_MEMO: usize = 256;

impl WatchCache {
    /// Create the cache for keys under `prefix` and start its reflector on the current Tokio
    /// runtime.
    pub fn start(
        storage: Arc<dyn Storage>,
        strategy: Arc<dyn Strategy>,
        prefix: String,
        options: CacheOptions,
    ) -> Arc<Self> {
        let (revision_sender, _) = watch::channel(0);
        let cache = Arc::new(WatchCache {
            shared: Arc::new(CacheShared {
                inner: RwLock::new(Inner::default()),
            }),
            strategy,
            storage,
            prefix,
            options,
            revision_sender,
            progress: Mutex::new(None),
            remaining_after: Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&cache);
        tokio::spawn(reflect(weak));
        cache
    }

    /// The resource's key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The revision the cache has caught up with.
    pub fn revision(&self) -> Revision {
        *self.revision_sender.borrow()
    }

    /// Wait until the cache has seen every change up to `revision`; 504 Timeout
    /// (ResourceVersionTooLarge) if it does not get there in time.
    pub async fn wait_until_fresh(&self, revision: Revision) -> Result<(), ApiError> {
        let mut receiver = self.revision_sender.subscribe();
        let deadline = tokio::time::Instant::now() + self.options.freshness_timeout;
        loop {
            let current = *receiver.borrow_and_update();
            if current >= revision && self.is_ready() {
                return Ok(());
            }
            self.request_progress();
            let wait = tokio::time::timeout_at(deadline, receiver.changed()).await;
            match wait {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => {
                    return Err(ApiError::service_unavailable("the watch cache is closed"));
                }
                Err(_) => {
                    let current = *receiver.borrow();
                    if current >= revision && self.is_ready() {
                        return Ok(());
                    }
                    return Err(too_large_resource_version(revision, current));
                }
            }
        }
    }

    /// Wait until the cache is as current as the store: what a consistent read needs.
    pub async fn wait_consistent(&self) -> Result<(), ApiError> {
        let status = self
            .storage
            .status()
            .await
            .map_err(crate::store::storage_error_to_status_plain)?;
        self.wait_until_fresh(status.revision).await
    }

    /// Whether the first list has completed.
    pub fn is_ready(&self) -> bool {
        self.shared
            .inner
            .read()
            .map(|inner| inner.ready)
            .unwrap_or(false)
    }

    fn request_progress(&self) {
        if let Ok(guard) = self.progress.lock()
            && let Some(requester) = guard.as_ref()
        {
            requester.request_progress();
        }
    }

    /// One object by key.
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        let inner = self.shared.inner.read().ok()?;
        inner.objects.get(key).cloned()
    }

    /// Read a page of objects under `key_prefix` that satisfy `predicate`, starting at
    /// `start_key`, at most `limit` of them. A page that fills up gets a next key when any key
    /// follows it (matching or not, as upstream's paging does); `count_remaining` also counts
    /// what follows (only meaningful for an unfiltered list).
    pub fn list(
        &self,
        key_prefix: &str,
        start_key: Option<&str>,
        limit: Option<usize>,
        predicate: &(dyn Fn(&CachedObject) -> bool + Send + Sync),
        count_remaining: bool,
    ) -> Result<CacheListPage, ApiError> {
        let inner = self
            .shared
            .inner
            .read()
            .map_err(|_| ApiError::internal("watch cache lock poisoned"))?;
        let start = start_key.unwrap_or(key_prefix);
        let end = prefix_end(key_prefix);
        let mut range = inner.objects.range::<str, _>((
            Bound::Included(start),
            end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        ));
        let mut items = Vec::new();
        let limit = limit.unwrap_or(usize::MAX);
        for (_, object) in range.by_ref() {
            if predicate(object) {
                items.push(object.clone());
                if items.len() >= limit {
                    break;
                }
            }
        }
        let mut next_key = None;
        let mut remaining = None;
        if items.len() >= limit {
            let rest = if count_remaining {
                // Every object counts in an unfiltered list: what was left after the previous
                // page, less this page, unless the collection changed since.
                let known = start_key.and_then(|start| {
                    self.remaining_after
                        .lock()
                        .ok()?
                        .get(&(key_prefix.to_owned(), start.to_owned()))
                        .filter(|(revision, _)| *revision == inner.revision)
                        .map(|(_, before)| before.saturating_sub(items.len() as u64))
                });
                known.unwrap_or_else(|| range.count() as u64)
            } else {
                u64::from(range.next().is_some())
            };
            if rest > 0 {
                next_key = items
                    .last()
                    .map(|last: &Arc<CachedObject>| ironplane_storage::key_after(&last.key));
                remaining = count_remaining.then_some(rest);
                if count_remaining
                    && let (Some(next), Ok(mut memo)) =
                        (next_key.as_ref(), self.remaining_after.lock())
                {
                    if memo.len() >= REMAINING_MEMO {
                        memo.clear();
                    }
                    memo.insert(
                        (key_prefix.to_owned(), next.clone()),
                        (inner.revision, rest),
                    );
                }
            }
        }
        Ok(CacheListPage {
            items,
            revision: inner.revision,
            remaining,
            next_key,
        })
    }

    /// Register a watcher. `predicate` filters events (the caller turns selector transitions into
    /// ADDED/DELETED as upstream does).
    pub fn watch(
        &self,
        start: WatchStart,
        key_prefix: &str,
        predicate: Predicate,
    ) -> Result<CacheWatcher, ApiError> {
        let mut inner = self
            .shared
            .inner
            .write()
            .map_err(|_| ApiError::internal("watch cache lock poisoned"))?;
        let mut backlog = Vec::new();
        let mut initial = Vec::new();
        match start {
            WatchStart::InitialState => {
                let end = prefix_end(key_prefix);
                let range = inner.objects.range::<str, _>((
                    Bound::Included(key_prefix),
                    end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                ));
                for (_, object) in range {
                    if predicate(object) {
                        initial.push(object.clone());
                    }
                }
            }
            WatchStart::After(revision) => {
                if revision < inner.resumable_from {
                    return Err(ApiError::expired(format!(
                        "too old resource version: {revision} ({})",
                        inner.resumable_from
                    )));
                }
                let first = inner
                    .events
                    .partition_point(|event| event.revision <= revision);
                backlog.extend(
                    inner
                        .events
                        .iter()
                        .skip(first)
                        .filter(|event| event.object.key.starts_with(key_prefix))
                        .cloned(),
                );
            }
        }
        let (sender, events) = mpsc::channel(self.options.watcher_queue);
        let id = inner.next_watcher;
        inner.next_watcher += 1;
        let prefix = key_prefix.to_owned();
        let scoped: Predicate = Arc::new(move |object: &CachedObject| {
            object.key.starts_with(&prefix) && predicate(object)
        });
        inner.watchers.insert(
            id,
            WatcherSlot {
                predicate: scoped,
                sender,
            },
        );
        Ok(CacheWatcher {
            backlog,
            initial,
            start_revision: inner.revision,
            events,
            id,
            cache: Arc::downgrade(&self.shared),
        })
    }

    /// A watch that starts before the cache's event window: the store replays the changes after
    /// `after` from its own history, then keeps following. Upstream answers 410 here; the store
    /// usually still has the history, so clients need not re-list. 410 only when the store has
    /// compacted it too.
    pub async fn watch_from_storage(
        self: &Arc<Self>,
        after: Revision,
        key_prefix: &str,
    ) -> Result<CacheWatcher, ApiError> {
        let mut watch = match self
            .storage
            .watch(WatchRequest {
                key: key_prefix.to_owned(),
                prefix: true,
                after,
                progress_notify: false,
            })
            .await
        {
            Ok(watch) => watch,
            Err(StorageError::Compacted {
                compact_revision, ..
            }) => {
                return Err(ApiError::expired(format!(
                    "too old resource version: {after} ({compact_revision})"
                )));
            }
            Err(err) => return Err(crate::store::storage_error_to_status_plain(err)),
        };
        let (sender, events) = mpsc::channel(self.options.watcher_queue);
        let cache = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(Ok(WatchMessage::Events(batch))) = watch.next().await {
                let Some(cache) = cache.upgrade() else { return };
                for event in &batch {
                    let Some(change) = cache.translate(event) else {
                        continue;
                    };
                    if sender.send(Arc::new(change)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(CacheWatcher {
            backlog: Vec::new(),
            initial: Vec::new(),
            start_revision: after,
            events,
            id: u64::MAX,
            cache: Weak::new(),
        })
    }

    /// A store event as the cache would have recorded it.
    fn translate(&self, event: &ironplane_storage::Event) -> Option<CacheEvent> {
        let revision = event.revision();
        let prev = event
            .prev_kv
            .as_ref()
            .and_then(|prev| self.cache_value(prev, prev.mod_revision).ok())
            .map(Arc::new);
        let (kind, object) = match event.kind {
            EventKind::Put => (
                if prev.is_some() {
                    ChangeKind::Modified
                } else {
                    ChangeKind::Added
                },
                self.cache_value(&event.kv, revision).ok()?,
            ),
            EventKind::Delete => (
                ChangeKind::Deleted,
                self.cache_value(event.prev_kv.as_ref()?, revision).ok()?,
            ),
        };
        Some(CacheEvent {
            kind,
            revision,
            object: Arc::new(object),
            prev,
            at: Instant::now(),
            frame: OnceLock::new(),
        })
    }

    /// How many watchers are registered.
    pub fn watcher_count(&self) -> usize {
        self.shared
            .inner
            .read()
            .map(|inner| inner.watchers.len())
            .unwrap_or(0)
    }

    /// Decode a stored value into a cached object with its resourceVersion set.
    pub(crate) fn cache_value(
        &self,
        kv: &KeyValue,
        revision: Revision,
    ) -> Result<CachedObject, ApiError> {
        // The common case: kinds whose selectable fields all come from the key need only the
        // labels, and the resourceVersion can be spliced into the stored encoding. This is what
        // keeps startup and every write cheap; other kinds decode the object.
        if !self.strategy.has_extra_selectable_fields()
            && !self.strategy.converts()
            && let Some(json) =
                ironplane_apimachinery::object::splice_resource_version(&kv.value, revision)
        {
            // The splice allocates exactly what it writes: nothing to give back here.
            let labels =
                ironplane_apimachinery::object::labels_of(&json).map_err(ApiError::internal)?;
            return Ok(CachedObject {
                key: Arc::from(kv.key.as_str()),
                revision,
                json: Bytes::from(json),
                labels,
                fields: Box::default(),
                namespaced: self.strategy.info().namespaced,
            });
        }
        let mut object = Object::from_json(&kv.value).map_err(ApiError::internal)?;
        if self.strategy.converts() {
            object = self.strategy.stored_to_served(object);
        }
        object.metadata.resource_version = revision.to_string();
        Ok(CachedObject::new(
            &kv.key,
            revision,
            &object,
            self.strategy.as_ref(),
        ))
    }

    /// Replace the whole state after a (re)list, cutting off every watcher.
    fn replace(&self, objects: BTreeMap<Arc<str>, Arc<CachedObject>>, revision: Revision) {
        if let Ok(mut inner) = self.shared.inner.write() {
            inner.objects = objects;
            inner.revision = revision;
            inner.events.clear();
            inner.event_bytes = 0;
            inner.resumable_from = revision;
            inner.watchers.clear();
            inner.ready = true;
        }
        self.revision_sender.send_replace(revision);
    }

    /// Apply one batch of store events.
    fn apply(&self, events: Vec<ironplane_storage::Event>) -> Result<(), ApiError> {
        let mut prepared = Vec::with_capacity(events.len());
        for event in &events {
            let revision = event.revision();
            let object = match event.kind {
                EventKind::Put => self.cache_value(&event.kv, revision)?,
                EventKind::Delete => match &event.prev_kv {
                    Some(prev) => self.cache_value(prev, revision)?,
                    None => continue,
                },
            };
            prepared.push((event.kind, revision, Arc::new(object)));
        }
        let mut last_revision = None;
        if let Ok(mut inner) = self.shared.inner.write() {
            let now = Instant::now();
            for (kind, revision, object) in prepared {
                let prev = match kind {
                    EventKind::Put => inner.objects.insert(object.key.clone(), object.clone()),
                    EventKind::Delete => inner.objects.remove(&object.key),
                };
                let change = match (kind, &prev) {
                    (EventKind::Delete, _) => ChangeKind::Deleted,
                    (EventKind::Put, None) => ChangeKind::Added,
                    (EventKind::Put, Some(_)) => ChangeKind::Modified,
                };
                let event = Arc::new(CacheEvent {
                    kind: change,
                    revision,
                    object,
                    prev,
                    at: now,
                    frame: OnceLock::new(),
                });
                inner.revision = revision;
                inner.event_bytes += event.retained_bytes();
                inner.events.push_back(event.clone());
                dispatch(&mut inner, &event);
                last_revision = Some(revision);
            }
            self.trim(&mut inner, now);
        }
        if let Some(revision) = last_revision {
            self.revision_sender.send_replace(revision);
        }
        Ok(())
    }

    fn trim(&self, inner: &mut Inner, now: Instant) {
        while let Some(front) = inner.events.front() {
            let too_many = inner.events.len() > self.options.max_events;
            let too_old = now.duration_since(front.at) > self.options.event_window;
            let too_big = inner.event_bytes > self.options.max_event_bytes;
            if !(too_many || too_old || too_big) {
                break;
            }
            let (revision, bytes) = (front.revision, front.retained_bytes());
            inner.resumable_from = revision;
            inner.event_bytes = inner.event_bytes.saturating_sub(bytes);
            inner.events.pop_front();
        }
    }

    fn progress(&self, revision: Revision) {
        let mut advanced = false;
        if let Ok(mut inner) = self.shared.inner.write() {
            if revision > inner.revision {
                inner.revision = revision;
                advanced = true;
            }
            // Progress arrives about once a second: the moment to let old events go when idle.
            self.trim(&mut inner, Instant::now());
        }
        if advanced {
            self.revision_sender.send_replace(revision);
        }
    }
}

/// The smallest key after every key that starts with `prefix` (`None` when there is none).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7f {
            bytes.push(last + 1);
            return String::from_utf8(bytes).ok();
        }
    }
    None
}

/// Offer an event to every watcher it concerns; cut off those whose queue is full.
fn dispatch(inner: &mut Inner, event: &Arc<CacheEvent>) {
    let mut cut_off = Vec::new();
    for (id, slot) in &inner.watchers {
        let now_matches = (slot.predicate)(&event.object);
        let before_matched = event
            .prev
            .as_ref()
            .is_some_and(|prev| (slot.predicate)(prev));
        if !now_matches && !before_matched {
            continue;
        }
        if slot.sender.try_send(event.clone()).is_err() {
            cut_off.push(*id);
        }
    }
    for id in cut_off {
        inner.watchers.remove(&id);
    }
}

/// 504 for a resourceVersion the cache has not reached in time, as upstream words it.
pub fn too_large_resource_version(requested: Revision, current: Revision) -> ApiError {
    let mut err = ApiError::timeout(
        &format!("Too large resource version: {requested}, current: {current}"),
        1,
    );
    if let Some(details) = err.status.details.as_mut() {
        details
            .causes
            .push(ironplane_apimachinery::status::StatusCause {
                reason: "ResourceVersionTooLarge".into(),
                message: "Too large resource version".into(),
                field: String::new(),
            });
    }
    err
}

/// The reflector: list, then watch from the list's revision; on any watch failure, list again.
async fn reflect(cache: Weak<WatchCache>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(strong) = cache.upgrade() else {
            return;
        };
        match strong.list_and_watch().await {
            Ok(()) => return,
            Err(err) => {
                // A closed store is the end of the process, not something to recover from.
                if matches!(strong.storage.status().await, Err(StorageError::Closed)) {
                    tracing::debug!(prefix = %strong.prefix, "storage closed: watch cache stops");
                    return;
                }
                tracing::warn!(prefix = %strong.prefix, error = %err, "watch cache restarting");
            }
        }
        drop(strong);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

impl WatchCache {
    async fn list_and_watch(&self) -> Result<(), StorageError> {
        // Small pages: the storage's page buffers are transient, and a big one would leave its
        // high-water mark in the process long after startup.
        const PAGE: usize = 1_000;
        let first = self
            .storage
            .list(
                &self.prefix,
                StorageListOptions {
                    limit: Some(PAGE),
                    ..Default::default()
                },
            )
            .await?;
        let revision = first.revision;
        let mut objects = BTreeMap::new();
        let mut page = first;
        loop {
            // Read the next page while this one is decoded: the two halves of the work then run
            // on both cores, which is most of the startup time of a large store.
            let next = match page.kvs.last() {
                Some(last) if page.more => {
                    let storage = self.storage.clone();
                    let prefix = self.prefix.clone();
                    let start = ironplane_storage::key_after(&last.key);
                    Some(tokio::spawn(async move {
                        storage
                            .list(
                                &prefix,
                                StorageListOptions {
                                    limit: Some(PAGE),
                                    revision: Some(revision),
                                    start_key: Some(start),
                                },
                            )
                            .await
                    }))
                }
                _ => None,
            };
            for kv in &page.kvs {
                match self.cache_value(kv, kv.mod_revision) {
                    Ok(object) => {
                        let object = Arc::new(object);
                        objects.insert(object.key.clone(), object);
                    }
                    Err(err) => {
                        tracing::error!(key = %kv.key, error = %err, "undecodable object skipped")
                    }
                }
            }
            let Some(next) = next else { break };
            page = next
                .await
                .map_err(|err| StorageError::internal(err.to_string()))??;
        }
        let mut watch = self
            .storage
            .watch(WatchRequest {
                key: self.prefix.clone(),
                prefix: true,
                after: revision,
                progress_notify: true,
            })
            .await?;
        if let Ok(mut guard) = self.progress.lock() {
            *guard = Some(watch.progress_requester());
        }
        self.replace(objects, revision);
        while let Some(message) = watch.next().await {
            match message? {
                WatchMessage::Events(events) => {
                    if let Err(err) = self.apply(events) {
                        return Err(StorageError::internal(err.to_string()));
                    }
                }
                WatchMessage::Progress(revision) => self.progress(revision),
            }
        }
        Err(StorageError::Closed)
    }
}
