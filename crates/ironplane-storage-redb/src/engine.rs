//! The shared state of an open store and the engine error type.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ironplane_storage::StorageError;
use redb::Database;

use crate::RedbStoreOptions;
use crate::arena::ChunkPool;
use crate::schema::{Corrupt, rev_i64};
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
    /// The revision of the last published group (durable, its events handed to the hub).
    pub revision: AtomicI64,
    /// The revision of the last group the writer committed to redb, durable or not yet: with the
    /// write-ahead log a group is committed while its record's `fdatasync` is still running.
    pub committed: AtomicU64,
    /// Every committed group up to this revision is durable.
    durable_revision: AtomicU64,
    /// Wakes readers waiting in [`Shared::settled`]: the durable revision, or why no later group
    /// will become durable.
    durable: tokio::sync::watch::Sender<(u64, Option<Arc<str>>)>,
    /// The committed compaction point.
    pub compact_revision: AtomicI64,
    /// The earliest expiry the housekeeper may have to act on (unix ms).
    pub ttl_due: AtomicU64,
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
            committed: AtomicU64::new(0),
            durable_revision: AtomicU64::new(0),
            durable: tokio::sync::watch::Sender::new((0, None)),
            compact_revision: AtomicI64::new(0),
            ttl_due: AtomicU64::new(0),
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

    /// Set the revisions of an opened store: everything committed is durable.
    pub(crate) fn start_at(&self, revision: u64, compact: u64) {
        self.revision.store(rev_i64(revision), Ordering::Release);
        self.compact_revision
            .store(rev_i64(compact), Ordering::Release);
        self.committed.store(revision, Ordering::Release);
        self.mark_durable(revision);
    }

    /// Every group committed up to `revision` is durable.
    pub(crate) fn mark_durable(&self, revision: u64) {
        if self.durable_revision.fetch_max(revision, Ordering::AcqRel) < revision {
            self.durable.send_modify(|(durable, _)| *durable = revision);
        }
    }

    /// No committed group after the durable revision will become durable (the log failed).
    pub(crate) fn mark_failed(&self, message: &str) {
        self.durable
            .send_modify(|(_, failed)| *failed = Some(Arc::from(message)));
    }

    /// Wait until every group committed so far is durable, so that no read returns, and no
    /// watcher is shown, a change that a crash could still lose. Called after a read: what it
    /// saw was committed by then. Under writes this waits for at most one `fdatasync`.
    pub(crate) async fn settled(&self) -> Result<(), StorageError> {
        let target = self.committed.load(Ordering::Acquire);
        if self.durable_revision.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        let mut durable = self.durable.subscribe();
        let state = durable
            .wait_for(|(revision, failed)| *revision >= target || failed.is_some())
            .await
            .map_err(|_| StorageError::Closed)?;
        match &state.1 {
            Some(message) if state.0 < target => {
                Err(StorageError::Unavailable(message.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Note a new expiry; wakes the housekeeper when it is earlier than what it waits for.
    pub(crate) fn note_expiry(&self, expiry_ms: u64) {
        if expiry_ms != 0 && self.ttl_due.fetch_min(expiry_ms, Ordering::AcqRel) > expiry_ms {
            self.wake.1.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn shared(dir: &tempfile::TempDir) -> Arc<Shared> {
        let path = dir.path().join("settled.redb");
        let db = Arc::new(Database::create(&path).unwrap());
        let hub = Arc::new(Hub::new(0, 16, 16, 1 << 20));
        let shared = Arc::new(Shared::new(db, RedbStoreOptions::new(path), hub));
        shared.start_at(7, 0);
        shared
    }

    #[tokio::test]
    async fn a_read_waits_until_what_it_may_have_seen_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared(&dir);
        // Everything committed is durable: no wait.
        shared.settled().await.unwrap();

        // A group is committed (readers may see it) but its fdatasync is still running.
        shared.committed.store(9, Ordering::Release);
        let reader = tokio::spawn({
            let shared = shared.clone();
            async move { shared.settled().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !reader.is_finished(),
            "returned before the group was durable"
        );
        shared.mark_durable(8);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !reader.is_finished(),
            "returned before the whole group was durable"
        );
        shared.mark_durable(9);
        tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_failed_log_ends_the_wait_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared(&dir);
        shared.committed.store(8, Ordering::Release);
        let reader = tokio::spawn({
            let shared = shared.clone();
            async move { shared.settled().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        shared.mark_failed("the log failed");
        let result = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(&result, Err(StorageError::Unavailable(m)) if m == "the log failed"),
            "{result:?}"
        );
        // What was durable before the failure still reads.
        shared.committed.store(7, Ordering::Release);
        shared.settled().await.unwrap();
    }
}
