//! The shared state of an open store and the engine error type.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ironplane_storage::StorageError;
use redb::Database;

use crate::RedbStoreOptions;
use crate::arena::ChunkPool;
use crate::schema::Corrupt;
use crate::watch::Hub;

/// An engine failure: redb itself, or a record that does not decode.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EngineError {
    /// redb failed (I/O, a full disk, a damaged file).
    #[error(transparent)]
    Redb(#[from] redb::Error),
    /// A record did not decode.
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
    /// The write-ahead log failed or is damaged.
    #[error(transparent)]
    Wal(#[from] crate::wal::WalError),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for EngineError {
            fn from(err: $t) -> Self {
                EngineError::Redb(err.into())
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError,
    redb::SetDurabilityError
);

impl From<EngineError> for StorageError {
    fn from(err: EngineError) -> Self {
        StorageError::internal(err)
    }
}

/// Milliseconds since the Unix epoch, by the wall clock.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Lock a mutex, shrugging off poisoning: every critical section here leaves its data valid.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the front end, the writer, the housekeeper and the watchers share.
pub(crate) struct Shared {
    /// The database while the store is open; `None` after `close`.
    db: RwLock<Option<Arc<Database>>>,
    /// The database file.
    pub path: PathBuf,
    pub options: RedbStoreOptions,
    pub hub: Arc<Hub>,
    /// The last committed revision.
    pub revision: AtomicI64,
    /// The committed compaction point.
    pub compact_revision: AtomicI64,
    /// The earliest expiry the housekeeper may have to act on (unix ms).
    pub ttl_due: AtomicU64,
    /// How many callers are waiting for a write to be answered (the writer's linger uses it).
    pub waiting_writes: AtomicUsize,
    /// Pooled buffers for the values of large reads.
    pub chunks: Arc<ChunkPool>,
    /// Set once by `close`.
    pub closed: AtomicBool,
    /// Wakes the housekeeper (a new early TTL, or shutdown); the flag means "shut down".
    pub wake: (Mutex<bool>, Condvar),
}

impl Shared {
    pub(crate) fn new(db: Arc<Database>, options: RedbStoreOptions, hub: Arc<Hub>) -> Self {
        Self {
            db: RwLock::new(Some(db)),
            path: options.path.clone(),
            options,
            hub,
            revision: AtomicI64::new(0),
            compact_revision: AtomicI64::new(0),
            ttl_due: AtomicU64::new(0),
            waiting_writes: AtomicUsize::new(0),
            chunks: Arc::new(ChunkPool::default()),
            closed: AtomicBool::new(false),
            wake: (Mutex::new(false), Condvar::new()),
        }
    }

    /// The database, or `Closed`.
    pub(crate) fn db(&self) -> Result<Arc<Database>, StorageError> {
        let guard = self.db.read().unwrap_or_else(|p| p.into_inner());
        guard.clone().ok_or(StorageError::Closed)
    }

    /// Forget the database (the file closes once in-flight reads finish).
    pub(crate) fn drop_db(&self) {
        let mut guard = self.db.write().unwrap_or_else(|p| p.into_inner());
        guard.take();
    }

    /// Note a new expiry; wakes the housekeeper when it is earlier than what it waits for.
    pub(crate) fn note_expiry(&self, expiry_ms: u64) {
        if expiry_ms != 0 && self.ttl_due.fetch_min(expiry_ms, Ordering::AcqRel) > expiry_ms {
            self.wake.1.notify_all();
        }
    }
}
