//! The shared state of an open store and the engine error type.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ironplane_storage::StorageError;
use redb::Database;

use crate::RedbStoreOptions;
use crate::arena::ChunkPool;
use crate::checkpoint::CheckpointView;
use crate::schema::{Corrupt, rev_i64};
use crate::watch::Hub;
use crate::writer::Command;

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

/// How far the writer has come, as readers wait for it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Progress {
    /// Every committed group up to this revision is durable.
    pub durable: u64,
    /// Every logged group up to this sequence number (the write-ahead log's numbering, which
    /// counts every group that changed the revision or the compaction point) is committed in
    /// redb's tables.
    pub visible: u64,
    /// Why no later group will become durable or visible.
    pub failed: Option<Arc<str>>,
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
    /// The log sequence number of the last published group: what a read must find in the tables.
    pub published_seq: AtomicU64,
    /// Every group up to this log sequence number is in redb's committed tables, where readers
    /// find it. Without the log both stay at their value at open: every group commits at once.
    visible_seq: AtomicU64,
    /// Wakes readers waiting in [`Shared::settled`] and [`Shared::caught_up`].
    progress: tokio::sync::watch::Sender<Progress>,
    /// A reader has asked the writer to commit its open transaction and has not been served yet.
    commit_requested: AtomicBool,
    /// The writer's queue, for those requests.
    writer: Sender<Command>,
    /// The committed compaction point.
    pub compact_revision: AtomicI64,
    /// The earliest expiry the housekeeper may have to act on (unix ms).
    pub ttl_due: AtomicU64,
    /// Pooled buffers for the values of large reads.
    pub chunks: Arc<ChunkPool>,
    /// Set once by `close`.
    pub closed: AtomicBool,
    /// While a checkpoint runs beside the writer: what was published since its snapshot.
    pub checkpoint_view: Mutex<Option<CheckpointView>>,
    /// Checkpoints completed (the log started over), for [`crate::StoreStats`].
    pub checkpoints: AtomicU64,
    /// Logged groups applied to a checkpoint's overlay, for [`crate::StoreStats`].
    pub groups_during_checkpoints: AtomicU64,
    /// Wakes the housekeeper (a new early TTL, or shutdown); the flag means "shut down".
    pub wake: (Mutex<bool>, Condvar),
}

impl Shared {
    pub(crate) fn new(
        db: Arc<Database>,
        options: RedbStoreOptions,
        hub: Arc<Hub>,
        writer: Sender<Command>,
    ) -> Self {
        Self {
            db: RwLock::new(Some(db)),
            path: options.path.clone(),
            options,
            hub,
            revision: AtomicI64::new(0),
            committed: AtomicU64::new(0),
            durable_revision: AtomicU64::new(0),
            published_seq: AtomicU64::new(0),
            visible_seq: AtomicU64::new(0),
            progress: tokio::sync::watch::Sender::new(Progress::default()),
            commit_requested: AtomicBool::new(false),
            writer,
            compact_revision: AtomicI64::new(0),
            ttl_due: AtomicU64::new(0),
            chunks: Arc::new(ChunkPool::default()),
            closed: AtomicBool::new(false),
            checkpoint_view: Mutex::new(None),
            checkpoints: AtomicU64::new(0),
            groups_during_checkpoints: AtomicU64::new(0),
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

    /// Set the revisions of an opened store: everything committed is durable and visible.
    pub(crate) fn start_at(&self, revision: u64, compact: u64, seq: u64) {
        self.revision.store(rev_i64(revision), Ordering::Release);
        self.compact_revision
            .store(rev_i64(compact), Ordering::Release);
        self.committed.store(revision, Ordering::Release);
        self.mark_durable(revision);
        self.published_seq.store(seq, Ordering::Release);
        self.mark_visible(seq);
    }

    /// Every group committed up to `revision` is durable.
    pub(crate) fn mark_durable(&self, revision: u64) {
        if self.durable_revision.fetch_max(revision, Ordering::AcqRel) < revision {
            self.progress
                .send_modify(|p| p.durable = p.durable.max(revision));
        }
    }

    /// Every group up to log sequence number `seq` is committed in redb's tables.
    pub(crate) fn mark_visible(&self, seq: u64) {
        if self.visible_seq.fetch_max(seq, Ordering::AcqRel) < seq {
            self.progress
                .send_modify(|p| p.visible = p.visible.max(seq));
        }
    }

    /// No group after the durable (or the visible) revision will become durable (or visible):
    /// the log or a commit failed.
    pub(crate) fn mark_failed(&self, message: &str) {
        self.progress
            .send_modify(|p| p.failed = Some(Arc::from(message)));
    }

    /// Wait until redb's tables hold every published group, so that a read sees every write
    /// acknowledged before it began. With the log, the writer applies group after group to one
    /// open transaction and commits it when a reader asks (or every 100 ms, or at a checkpoint):
    /// this asks, and waits for at most the group being applied and one commit.
    pub(crate) async fn caught_up(&self) -> Result<(), StorageError> {
        let Some(target) = self.tables_behind() else {
            return Ok(());
        };
        if !self.commit_requested.swap(true, Ordering::AcqRel)
            && self.writer.send(Command::Commit(None)).is_err()
        {
            self.commit_requested.store(false, Ordering::Release);
            return Err(StorageError::Closed);
        }
        self.wait_for(|p| p.visible >= target).await
    }

    /// [`caught_up`](Self::caught_up) for threads outside the async runtime (the housekeeper, the
    /// consistency check): blocks until the writer has committed what it applied.
    pub(crate) fn caught_up_blocking(&self) -> Result<(), StorageError> {
        if self.tables_behind().is_none() {
            return Ok(());
        }
        let (done, wait) = std::sync::mpsc::channel();
        self.writer
            .send(Command::Commit(Some(done)))
            .map_err(|_| StorageError::Closed)?;
        wait.recv()
            .map_err(|_| StorageError::Closed)?
            .map_err(StorageError::Unavailable)
    }

    /// The log sequence number of the last published group, when redb's committed tables do not
    /// hold it yet.
    pub(crate) fn tables_behind(&self) -> Option<u64> {
        let target = self.published_seq.load(Ordering::Acquire);
        (self.visible_seq.load(Ordering::Acquire) < target).then_some(target)
    }

    /// The writer took the pending commit request: the next reader that finds the tables behind
    /// asks again.
    pub(crate) fn commit_request_taken(&self) {
        self.commit_requested.store(false, Ordering::Release);
    }

    /// Wait until every group committed so far is durable, so that no read returns, and no
    /// watcher is shown, a change that a crash could still lose. Called after a read: what it
    /// saw was committed by then. Under writes this waits for at most two `fdatasync`s (the one
    /// running and the one that covers the records appended meanwhile).
    pub(crate) async fn settled(&self) -> Result<(), StorageError> {
        let target = self.committed.load(Ordering::Acquire);
        if self.durable_revision.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        self.wait_for(|p| p.durable >= target).await
    }

    /// Wait until `reached` holds, or fail with `Unavailable` once the writer has failed short
    /// of it.
    async fn wait_for(&self, reached: impl Fn(&Progress) -> bool) -> Result<(), StorageError> {
        let mut progress = self.progress.subscribe();
        let state = progress
            .wait_for(|p| reached(p) || p.failed.is_some())
            .await
            .map_err(|_| StorageError::Closed)?;
        match &state.failed {
            Some(message) if !reached(&state) => {
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

    /// The outcome of a spawned wait, which must come within five seconds.
    async fn outcome(
        reader: tokio::task::JoinHandle<Result<(), StorageError>>,
    ) -> Result<(), StorageError> {
        tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .unwrap()
            .unwrap()
    }

    fn shared(dir: &tempfile::TempDir) -> Arc<Shared> {
        shared_and_writer(dir).0
    }

    /// A shared state at revision 7 (log record 3), and the writer's end of its queue.
    fn shared_and_writer(
        dir: &tempfile::TempDir,
    ) -> (Arc<Shared>, std::sync::mpsc::Receiver<Command>) {
        let path = dir.path().join("settled.redb");
        let db = Arc::new(Database::create(&path).unwrap());
        let hub = Arc::new(Hub::new(0, 16, 16, 1 << 20));
        let (writer, queue) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared::new(db, RedbStoreOptions::new(path), hub, writer));
        shared.start_at(7, 0, 3);
        (shared, queue)
    }

    #[tokio::test]
    async fn a_read_has_the_writer_commit_what_was_published() {
        let dir = tempfile::tempdir().unwrap();
        let (shared, queue) = shared_and_writer(&dir);
        // The tables hold every published group: no request, no wait.
        shared.caught_up().await.unwrap();
        assert!(queue.try_recv().is_err());

        // Two groups were published but are still in the writer's open transaction.
        shared.published_seq.store(5, Ordering::Release);
        let first = tokio::spawn({
            let shared = shared.clone();
            async move { shared.caught_up().await }
        });
        let second = tokio::spawn({
            let shared = shared.clone();
            async move { shared.caught_up().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(queue.try_recv(), Ok(Command::Commit(None))));
        assert!(
            queue.try_recv().is_err(),
            "readers waiting together ask for one commit"
        );
        assert!(!first.is_finished() && !second.is_finished());
        shared.mark_visible(4);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !first.is_finished(),
            "returned before the last group was visible"
        );
        shared.commit_request_taken();
        shared.mark_visible(5);
        for reader in [first, second] {
            outcome(reader).await.unwrap();
        }

        // Once the writer has taken the request, the next reader that finds it behind asks again.
        shared.published_seq.store(6, Ordering::Release);
        let third = tokio::spawn({
            let shared = shared.clone();
            async move { shared.caught_up().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(matches!(queue.try_recv(), Ok(Command::Commit(None))));
        // The commit fails: the reader hears why instead of waiting forever.
        shared.mark_failed("a commit failed");
        let result = outcome(third).await;
        assert!(
            matches!(&result, Err(StorageError::Unavailable(m)) if m == "a commit failed"),
            "{result:?}"
        );
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
        outcome(reader).await.unwrap();
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
        let result = outcome(reader).await;
        assert!(
            matches!(&result, Err(StorageError::Unavailable(m)) if m == "the log failed"),
            "{result:?}"
        );
        // What was durable before the failure still reads.
        shared.committed.store(7, Ordering::Release);
        shared.settled().await.unwrap();
    }
}
