//! The storage contract that every Ironplane backend implements.
//!
//! The contract is etcd's data model, which is what upstream's storage interface sits on: one global
//! revision that grows by one with every committed change (the API calls it `resourceVersion`), keys
//! that remember when they were created and last modified, compare-and-swap writes, and watches that
//! replay every change after a revision, in order, exactly once.
//!
//! Nothing here knows about Kubernetes objects: keys are strings such as
//! `/registry/configmaps/default/name` and values are opaque bytes (the registry stores JSON).
//!
//! Backends live in their own crates (`ironplane-storage-redb`, `ironplane-storage-etcd`); each one
//! runs the same contract suite from [`testing`] (behind the `testing` feature).

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, Stream};

#[cfg(feature = "testing")]
pub mod testing;

/// A store revision. Revisions start at 1 and grow by exactly one with every committed change.
/// In requests, 0 means "the current revision".
pub type Revision = i64;

/// The largest value a backend accepts: 1.5 MiB, etcd's default `--max-request-bytes`, which is
/// what bounds the size of a Kubernetes object upstream.
pub const MAX_VALUE_BYTES: usize = 1536 * 1024;

/// The longest key a backend accepts. etcd has no separate key limit; this keeps keys sane.
pub const MAX_KEY_BYTES: usize = 4096;

/// One key's state at one revision.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, for example `/registry/configmaps/default/settings`.
    pub key: String,
    /// The stored bytes.
    pub value: Bytes,
    /// The revision that created this incarnation of the key.
    pub create_revision: Revision,
    /// The revision of the last change to the key.
    pub mod_revision: Revision,
    /// How many times the key has been written since it was created (1 after the create).
    pub version: i64,
}

impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValue")
            .field("key", &self.key)
            .field("value_len", &self.value.len())
            .field("create_revision", &self.create_revision)
            .field("mod_revision", &self.mod_revision)
            .field("version", &self.version)
            .finish()
    }
}

/// What a change did to its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or modified; `Event::kv` holds the new state.
    Put,
    /// The key was deleted (explicitly or because its TTL expired).
    Delete,
}

/// One committed change, as a watcher sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// For a put, the new state. For a delete, the key with `mod_revision` set to the revision of
    /// the deletion, an empty value, and `create_revision` and `version` set to 0.
    pub kv: KeyValue,
    /// The state before the change: absent for a create, present for modifications and deletions.
    pub prev_kv: Option<KeyValue>,
}

impl Event {
    /// The revision at which the change was committed.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }

    /// Whether this put created the key (rather than modifying it).
    pub fn is_create(&self) -> bool {
        self.kind == EventKind::Put && self.prev_kv.is_none()
    }
}

/// What a watch delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchMessage {
    /// Changes in revision order. A batch never splits the changes of one revision.
    Events(Vec<Event>),
    /// Progress: every change up to and including this revision that matches the watch has already
    /// been delivered. Never below a revision already delivered or announced (it may repeat one,
    /// for example when progress is requested again while nothing has changed).
    Progress(Revision),
}

/// A request to watch a key or a prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchRequest {
    /// The key, or the prefix when `prefix` is set.
    pub key: String,
    /// Watch every key that starts with `key`.
    pub prefix: bool,
    /// Deliver the changes committed after this revision. 0 starts after the current revision.
    /// A watch fails with [`StorageError::Compacted`] only when this is below the compaction
    /// point: the changes after the compaction point itself are all kept.
    pub after: Revision,
    /// Send `WatchMessage::Progress` on the backend's own schedule while there are no events, in
    /// addition to the progress that `Watch::request_progress` asks for.
    pub progress_notify: bool,
}

/// Asks a watch's backend for a progress message. Backends implement it; users call
/// [`Watch::request_progress`].
pub trait ProgressRequester: Send + Sync {
    /// Ask for a `WatchMessage::Progress` at the backend's current revision, delivered after every
    /// event up to that revision.
    fn request_progress(&self);
}

/// A running watch: a stream of messages that ends with an error (for example
/// [`StorageError::Compacted`] or [`StorageError::WatcherTooSlow`]) or when the store closes.
/// Dropping it cancels the watch.
pub struct Watch {
    stream: BoxStream<'static, Result<WatchMessage, StorageError>>,
    progress: Arc<dyn ProgressRequester>,
}

impl Watch {
    /// Wrap a backend's stream and progress requester.
    pub fn new(
        stream: BoxStream<'static, Result<WatchMessage, StorageError>>,
        progress: Arc<dyn ProgressRequester>,
    ) -> Self {
        Self { stream, progress }
    }

    /// Ask for a progress message at the current revision (see [`ProgressRequester`]).
    pub fn request_progress(&self) {
        self.progress.request_progress();
    }

    /// A handle that asks for progress on this watch from elsewhere (for example a reader
    /// waiting for a cache to catch up while the cache's task reads the stream).
    pub fn progress_requester(&self) -> Arc<dyn ProgressRequester> {
        self.progress.clone()
    }

    /// The next message, or `None` once the watch has ended.
    pub async fn next(&mut self) -> Option<Result<WatchMessage, StorageError>> {
        futures::StreamExt::next(&mut self.stream).await
    }
}

impl Stream for Watch {
    type Item = Result<WatchMessage, StorageError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.stream.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

/// How to read a range of keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Return at most this many keys; `None` returns them all.
    pub limit: Option<usize>,
    /// Read the snapshot at this revision; `None` reads the current one. Paginated reads pass the
    /// revision of their first page so that every page comes from one snapshot.
    pub revision: Option<Revision>,
    /// Start at this key (inclusive) instead of at the prefix itself; it must start with the prefix.
    pub start_key: Option<String>,
}

/// A page of keys from one snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListResponse {
    /// The keys, in byte order.
    pub kvs: Vec<KeyValue>,
    /// The revision of the snapshot that was read.
    pub revision: Revision,
    /// Whether keys remain after this page; continue with `start_key` just after the last key.
    pub more: bool,
    /// How many keys remain after this page, when the backend knows it cheaply.
    pub remaining: Option<u64>,
}

/// The answer to a get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetResponse {
    /// The key's state, or `None` when it does not exist at that revision.
    pub kv: Option<KeyValue>,
    /// The revision of the snapshot that was read.
    pub revision: Revision,
}

/// The outcome of a delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deleted {
    /// The key's last state before the deletion.
    pub prev_kv: KeyValue,
    /// The revision of the deletion itself.
    pub revision: Revision,
}

/// A backend's health and position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStatus {
    /// The current revision.
    pub revision: Revision,
    /// Revisions at or below this one have been compacted away (0 if nothing has been).
    pub compact_revision: Revision,
    /// The size of the backend's data on disk, in bytes, when known.
    pub db_size_bytes: Option<u64>,
}

/// Why a storage operation failed. Callers branch on the variant; the API server maps each one to
/// its `metav1.Status` in one place.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The key does not exist (get of a specific revision, update, delete).
    #[error("key not found: {key}")]
    NotFound {
        /// The missing key.
        key: String,
    },
    /// A create found the key already present.
    #[error("key already exists: {key}")]
    AlreadyExists {
        /// The existing key.
        key: String,
    },
    /// A compare-and-swap found a different modification revision; `current` is what is stored now.
    #[error("key {key} was modified: expected revision {expected}, found {}", current.mod_revision)]
    Conflict {
        /// The contested key.
        key: String,
        /// The modification revision the caller expected.
        expected: Revision,
        /// The key's current state, so that a retry needs no second read.
        current: Box<KeyValue>,
    },
    /// The requested revision is older than the oldest one still kept.
    #[error("required revision {requested} has been compacted; the oldest kept is {}", compact_revision + 1)]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The compaction point: revisions at or below it are gone.
        compact_revision: Revision,
    },
    /// The requested revision has not happened yet.
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
    /// The key is empty, too long, or otherwise unusable.
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The rejected key.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The value is larger than the backend accepts.
    #[error("value for {key} is {size} bytes, over the limit of {limit} bytes")]
    ValueTooLarge {
        /// The key being written.
        key: String,
        /// The value's size.
        size: usize,
        /// The backend's limit.
        limit: usize,
    },
    /// A watcher did not keep up with the changes and was ended; it should re-list and re-watch.
    #[error("watcher fell too far behind and was ended")]
    WatcherTooSlow,
    /// The backend cannot be reached or did not answer in time (etcd down, for example).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The store has been closed.
    #[error("storage is closed")]
    Closed,
    /// Anything else: an I/O error, a corrupt record, a backend bug.
    #[error("storage internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StorageError {
    /// Wrap any error as [`StorageError::Internal`].
    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StorageError::Internal(err.into())
    }
}

/// The storage contract. Every method is safe to call concurrently.
///
/// Architecture Invariant: revisions are assigned in commit order, and every watch delivers the
/// changes it matches in revision order, each exactly once, with no gaps.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Read a key at the current revision, or at `revision` if given.
    async fn get(&self, key: &str, revision: Option<Revision>)
    -> Result<GetResponse, StorageError>;

    /// Read the keys that start with `prefix`, in byte order, from one snapshot.
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResponse, StorageError>;

    /// Count the keys that start with `prefix` at the current revision.
    async fn count(&self, prefix: &str) -> Result<u64, StorageError>;

    /// Create `key` if it does not exist. With a TTL, the key is deleted (with a delete event) once
    /// the TTL has passed.
    async fn create(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, StorageError>;

    /// Replace `key`'s value if its modification revision is still `expected`. The TTL, if given,
    /// starts again from now; without one the key keeps no TTL.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, StorageError>;

    /// Delete `key`, only if its modification revision is `expected` when one is given.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted, StorageError>;

    /// Watch a key or a prefix.
    async fn watch(&self, request: WatchRequest) -> Result<Watch, StorageError>;

    /// Drop the history at and below `revision`: reads and watches of those revisions then fail
    /// with [`StorageError::Compacted`]. Compacting at or below the current compaction point does
    /// nothing; a revision above the current one fails with [`StorageError::FutureRevision`].
    async fn compact(&self, revision: Revision) -> Result<(), StorageError>;

    /// The current revision, compaction point and size.
    async fn status(&self) -> Result<StoreStatus, StorageError>;
}

/// The checks every backend applies to a write before it reaches the engine.
pub fn validate_write(key: &str, value: &[u8]) -> Result<(), StorageError> {
    validate_key(key)?;
    if value.len() > MAX_VALUE_BYTES {
        return Err(StorageError::ValueTooLarge {
            key: key.to_owned(),
            size: value.len(),
            limit: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

/// The checks every backend applies to a key.
pub fn validate_key(key: &str) -> Result<(), StorageError> {
    let reason = if key.is_empty() {
        "the key is empty"
    } else if key.len() > MAX_KEY_BYTES {
        "the key is longer than 4096 bytes"
    } else if key.contains('\0') {
        "the key contains a NUL byte"
    } else {
        return Ok(());
    };
    Err(StorageError::InvalidKey {
        key: key.chars().take(256).collect(),
        reason,
    })
}

/// The smallest key that sorts after `key`: where a paginated list continues.
pub fn key_after(key: &str) -> String {
    let mut next = String::with_capacity(key.len() + 1);
    next.push_str(key);
    next.push('\0');
    next
}

/// Read, transform and compare-and-swap until the write lands: upstream's GuaranteedUpdate.
///
/// `transform` sees the current state (`None` if the key does not exist) and returns the new value,
/// or `Ok(None)` to leave the key alone. A conflict retries with the state the conflict reported, so
/// contention costs no extra reads.
pub async fn guaranteed_update<S, E, F>(
    store: &S,
    key: &str,
    ttl: Option<Duration>,
    mut transform: F,
) -> Result<UpdateOutcome, GuaranteedUpdateError<E>>
where
    S: Storage + ?Sized,
    F: FnMut(Option<&KeyValue>) -> Result<Option<Bytes>, E>,
{
    let mut current = store
        .get(key, None)
        .await
        .map_err(GuaranteedUpdateError::Storage)?
        .kv;
    loop {
        let Some(value) = transform(current.as_ref()).map_err(GuaranteedUpdateError::Transform)?
        else {
            return Ok(UpdateOutcome::Unchanged(current));
        };
        let written = match &current {
            None => store.create(key, value, ttl).await,
            Some(kv) => store.update(key, value, kv.mod_revision, ttl).await,
        };
        match written {
            Ok(kv) => return Ok(UpdateOutcome::Written(kv)),
            Err(StorageError::Conflict { current: now, .. }) => current = Some(*now),
            Err(StorageError::AlreadyExists { .. }) | Err(StorageError::NotFound { .. }) => {
                current = store
                    .get(key, None)
                    .await
                    .map_err(GuaranteedUpdateError::Storage)?
                    .kv;
            }
            Err(err) => return Err(GuaranteedUpdateError::Storage(err)),
        }
    }
}

/// What [`guaranteed_update`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// The new value was committed.
    Written(KeyValue),
    /// The transform chose not to write; this is the state it saw.
    Unchanged(Option<KeyValue>),
}

/// Why [`guaranteed_update`] failed.
#[derive(Debug, thiserror::Error)]
pub enum GuaranteedUpdateError<E> {
    /// The store failed.
    #[error(transparent)]
    Storage(StorageError),
    /// The transform refused the current state.
    #[error("update rejected")]
    Transform(E),
}
