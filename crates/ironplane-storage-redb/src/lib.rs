//! Ironplane's embedded durable store on redb: the default backend, no separate database needed.
//!
//! [`RedbStore`] implements the [`Storage`] contract on one redb file:
//!
//! - **Durable**: a write is answered only after it is on disk (fsynced): in the write-ahead log,
//!   whose record of the group a syncer thread fsyncs while the writer applies the next group, or
//!   (without the log) in a redb commit with `Durability::Immediate`. No read returns what is not
//!   yet durable. It survives `kill -9` and power loss; the log is replayed at open and folded
//!   into the redb file by periodic durable commits (checkpoints), which run on a thread of
//!   their own while the writer goes on.
//! - **Group commit**: one writer thread takes every write waiting at that moment (and, while the
//!   previous group's fsync runs, every write that arrives meanwhile) and pays one fsync for all
//!   of them, so throughput rises with concurrency. With the log, successive groups share one redb
//!   transaction, committed when a reader needs it, every 100 ms, or at a checkpoint.
//! - **History**: superseded versions and a revision log are kept for past reads, paginated lists
//!   and watch resumption, compacted in the background by a time window and a byte bound.
//! - **Watches** are served from an in-memory ring of recent events, or replayed from the log.
//! - **Startup** reads a few counters, not the data: opening a large store takes milliseconds.
//!
//! docs/storage.md describes the on-disk layout, the commit protocol and the durability promise.
//!
//! ```no_run
//! # async fn example() -> Result<(), ironplane_storage::StorageError> {
//! use ironplane_storage::Storage;
//! use ironplane_storage_redb::{RedbStore, RedbStoreOptions};
//!
//! let store = RedbStore::open(RedbStoreOptions::new("/var/lib/ironplane/store.redb"))?;
//! let kv = store.create("/registry/configmaps/default/a", "{}".into(), None).await?;
//! assert_eq!(kv.version, 1);
//! store.close();
//! # Ok(()) }
//! ```

mod arena;
mod check;
mod checkpoint;
mod engine;
mod housekeeping;
mod options;
mod read;
mod schema;
mod syncer;
mod wal;
mod watch;
mod writer;

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use ironplane_storage::{
    Deleted, GetResponse, KeyValue, ListOptions, ListResponse, MAX_KEY_BYTES, Revision, Storage,
    StorageError, StoreStatus, Watch, WatchRequest, validate_key, validate_write,
};
use tokio::sync::oneshot;

pub use check::ConsistencyReport;
pub use options::RedbStoreOptions;

use engine::{EngineError, Shared, lock, now_ms};
use schema::rev_i64;
use watch::Hub;
use writer::{Command, Counters, Op, Outcome, WriteRequest, Writer};

/// Counters of an open store's background work ([`RedbStore::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Checkpoints completed since the store opened: durable commits of the tables after which
    /// the write-ahead log started over.
    pub checkpoints: u64,
    /// Groups that were logged and answered while a checkpoint was writing the tables (applied
    /// to its overlay, then to the tables once it was done).
    pub groups_during_checkpoints: u64,
}

/// The embedded store. Cheap to share behind an `Arc`; every method may be called concurrently.
///
/// Dropping it (or calling [`close`](Self::close)) finishes the writes already queued, ends every
/// watch and releases the file.
pub struct RedbStore {
    shared: Arc<Shared>,
    writer: Sender<Command>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.shared.path)
            .field("revision", &self.shared.revision.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Open (or create) the store described by `options`.
    ///
    /// Opening reads the counters in the meta table and the write-ahead log, which is empty after
    /// a clean close. After a crash, redb first repairs its allocator state, which walks the file
    /// unless [`quick_repair`](RedbStoreOptions::quick_repair) was on while it was written; then
    /// the log's records that the file lacks are replayed (at most a checkpoint interval's worth)
    /// and made durable.
    ///
    /// A damaged log (a bad record followed by valid newer ones, or records that do not follow
    /// the database) fails the open with [`StorageError::Internal`]: acknowledged writes would
    /// otherwise be lost silently.
    pub fn open(options: RedbStoreOptions) -> Result<Self, StorageError> {
        let db = redb::Builder::new()
            .set_cache_size(options.cache_size_bytes)
            .create(&options.path)
            .map_err(|err| match err {
                redb::DatabaseError::DatabaseAlreadyOpen => StorageError::Unavailable(format!(
                    "{} is already open in another process or store",
                    options.path.display()
                )),
                other => EngineError::from(other).into(),
            })?;
        writer::initialize(&db)?;
        // Recover whatever the log holds, whether or not the store keeps using one.
        let wal_path = wal::path_for(&options.path);
        writer::recover(&db, &wal_path, options.quick_repair)?;
        writer::ensure_first_revision(&db)?;
        let wal = if options.wal {
            Some(wal::Wal::open(&wal_path).map_err(EngineError::from)?)
        } else {
            wal::remove(&wal_path).map_err(EngineError::from)?;
            None
        };
        let counters = Counters::load(&db)?;
        let db = Arc::new(db);
        let hub = Arc::new(Hub::new(
            schema::rev_i64(counters.revision),
            options.watcher_queue,
            options.event_ring_capacity,
            options.event_ring_max_bytes,
        ));
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared::new(db.clone(), options, hub, tx.clone()));
        shared.start_at(counters.revision, counters.compact, counters.wal_seq);
        let mut threads = Vec::new();
        // With the log, a second thread waits for each group's fdatasync (and answers it) while
        // the writer applies the next group.
        let syncer = match &wal {
            Some(wal) => {
                let log = wal.sync_handle().map_err(EngineError::from)?;
                let (jobs, job_rx) = mpsc::channel();
                let (ack_tx, acks) = mpsc::channel();
                let syncer_shared = shared.clone();
                let progress = Arc::new(syncer::LogProgress::new(counters.wal_seq));
                let syncer_progress = progress.clone();
                let thread = std::thread::Builder::new()
                    .name("ironplane-redb-syncer".into())
                    .spawn(move || syncer::run(syncer_shared, log, syncer_progress, job_rx, ack_tx))
                    .map_err(StorageError::internal)?;
                Some(writer::SyncerHandle::new(jobs, acks, progress, thread))
            }
            None => None,
        };
        let writer = Writer::new(db, shared.clone(), counters, wal, syncer, tx.clone());
        threads.push(
            std::thread::Builder::new()
                .name("ironplane-redb-writer".into())
                .spawn(move || writer.run(rx))
                .map_err(StorageError::internal)?,
        );
        let house_shared = shared.clone();
        let house_tx = tx.clone();
        let housekeeper = std::thread::Builder::new()
            .name("ironplane-redb-housekeeper".into())
            .spawn(move || housekeeping::run(house_shared, house_tx));
        let store = Self {
            shared,
            writer: tx,
            threads: Mutex::new(threads),
        };
        // From here on, dropping `store` stops the writer.
        lock(&store.threads).push(housekeeper.map_err(StorageError::internal)?);
        Ok(store)
    }

    /// Open (or create) the store at `path` with the default options.
    pub fn open_path(path: impl Into<std::path::PathBuf>) -> Result<Self, StorageError> {
        Self::open(RedbStoreOptions::new(path))
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &RedbStoreOptions {
        &self.shared.options
    }

    /// How many watchers are currently live (registered for new events).
    pub fn live_watchers(&self) -> usize {
        self.shared.hub.live_watchers()
    }

    /// Counters of the store's background work since it opened.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            checkpoints: self.shared.checkpoints.load(Ordering::Relaxed),
            groups_during_checkpoints: self
                .shared
                .groups_during_checkpoints
                .load(Ordering::Relaxed),
        }
    }

    /// Finish the writes already queued, end every watch and release the file. Later calls fail
    /// with [`StorageError::Closed`]. Blocks for at most one group commit; calling it twice is
    /// harmless.
    pub fn close(&self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        {
            let mut stop = lock(&self.shared.wake.0);
            *stop = true;
            self.shared.wake.1.notify_all();
        }
        // The writer drains what was queued before this message, then stops.
        let _ = self.writer.send(Command::Shutdown);
        let threads = std::mem::take(&mut *lock(&self.threads));
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!("a storage thread panicked");
            }
        }
        self.shared.hub.close();
        self.shared.drop_db();
    }

    /// Walk every table and check that they agree (see [`ConsistencyReport`]). Reads the whole
    /// store: meant for tests and repair tools, not for the serving path.
    pub fn check_consistency(&self) -> Result<ConsistencyReport, StorageError> {
        let db = self.shared.db()?;
        self.shared.caught_up_blocking()?;
        check::check(&db)
    }

    fn ensure_open(&self) -> Result<(), StorageError> {
        if self.shared.closed.load(Ordering::Acquire) {
            Err(StorageError::Closed)
        } else {
            Ok(())
        }
    }

    /// A key's current version while a checkpoint runs beside the writer: from the groups
    /// published since its snapshot, or from the committed tables while they hold exactly that
    /// snapshot; `None` when neither can answer (then the read waits for the tables). Everything
    /// it returns is published, hence durable.
    fn get_beside_checkpoint(
        &self,
        db: &redb::Database,
        key: &str,
    ) -> Result<Option<GetResponse>, StorageError> {
        let (base, revision, changed) = {
            let view = lock(&self.shared.checkpoint_view);
            let Some(view) = view.as_ref() else {
                return Ok(None);
            };
            // Every published group must have gone through the view.
            let published = self.shared.revision.load(Ordering::Acquire);
            if rev_i64(view.revision) != published {
                return Ok(None);
            }
            (view.base, published, view.changed.get(key).cloned())
        };
        if let Some(kv) = changed {
            return Ok(Some(GetResponse { kv, revision }));
        }
        let snapshot = read::get(db, key, None)?;
        if snapshot.revision != rev_i64(base) {
            return Ok(None);
        }
        Ok(Some(GetResponse {
            kv: snapshot.kv,
            revision,
        }))
    }

    async fn submit(&self, op: Op) -> Result<Outcome, StorageError> {
        self.ensure_open()?;
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(Command::Write(WriteRequest { op, reply }))
            .map_err(|_| StorageError::Closed)?;
        rx.await.map_err(|_| StorageError::Closed)?
    }

    async fn blocking<T, F>(&self, read: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&redb::Database) -> Result<T, StorageError> + Send + 'static,
    {
        self.ensure_open()?;
        let db = self.shared.db()?;
        self.shared.caught_up().await?;
        let value = run_blocking(move || read(&db)).await?;
        self.shared.settled().await?;
        Ok(value)
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// Run a read that may take a while off the async workers: on tokio's blocking pool when there is
/// a runtime, inline otherwise (so that a caller outside tokio gets an answer, not a panic).
pub(crate) async fn run_blocking<T, F>(read: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StorageError> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(read)
            .await
            .map_err(StorageError::internal)?,
        Err(_) => read(),
    }
}

fn expiry(ttl: Option<Duration>) -> u64 {
    match ttl {
        None => 0,
        Some(ttl) => now_ms()
            .saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .max(1),
    }
}

fn validate_prefix(prefix: &str) -> Result<(), StorageError> {
    if prefix.len() > MAX_KEY_BYTES || prefix.contains('\0') {
        // Reuse the key checks for their messages; an empty prefix (everything) is fine.
        validate_key(prefix)?;
    }
    Ok(())
}

fn unexpected(outcome: Outcome) -> StorageError {
    StorageError::internal(format!(
        "the writer answered with an unexpected {outcome:?}"
    ))
}

#[async_trait::async_trait]
impl Storage for RedbStore {
    async fn get(
        &self,
        key: &str,
        revision: Option<Revision>,
    ) -> Result<GetResponse, StorageError> {
        validate_key(key)?;
        self.ensure_open()?;
        let db = self.shared.db()?;
        if revision.is_none()
            && self.shared.tables_behind().is_some()
            && let Some(response) = self.get_beside_checkpoint(&db, key)?
        {
            return Ok(response);
        }
        self.shared.caught_up().await?;
        let response = read::get(&db, key, revision)?;
        self.shared.settled().await?;
        Ok(response)
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResponse, StorageError> {
        validate_prefix(prefix)?;
        let prefix = prefix.to_owned();
        let pool = self.shared.chunks.clone();
        self.blocking(move |db| read::list(db, pool, &prefix, &options))
            .await
    }

    async fn count(&self, prefix: &str) -> Result<u64, StorageError> {
        validate_prefix(prefix)?;
        let prefix = prefix.to_owned();
        self.blocking(move |db| read::count(db, &prefix)).await
    }

    async fn create(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, StorageError> {
        validate_write(key, &value)?;
        let op = Op::Create {
            key: key.to_owned(),
            value,
            expiry_ms: expiry(ttl),
        };
        match self.submit(op).await? {
            Outcome::Put(kv) => Ok(kv),
            other => Err(unexpected(other)),
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, StorageError> {
        validate_write(key, &value)?;
        let op = Op::Update {
            key: key.to_owned(),
            value,
            expected,
            expiry_ms: expiry(ttl),
        };
        match self.submit(op).await? {
            Outcome::Put(kv) => Ok(kv),
            other => Err(unexpected(other)),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted, StorageError> {
        validate_key(key)?;
        let op = Op::Delete {
            key: key.to_owned(),
            expected,
        };
        match self.submit(op).await? {
            Outcome::Deleted(deleted) => Ok(deleted),
            other => Err(unexpected(other)),
        }
    }

    async fn watch(&self, request: WatchRequest) -> Result<Watch, StorageError> {
        if request.prefix {
            validate_prefix(&request.key)?;
        } else {
            validate_key(&request.key)?;
        }
        self.ensure_open()?;
        watch::start(&self.shared, request)
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        if revision <= 0 {
            return Ok(());
        }
        match self.submit(Op::Compact { revision }).await? {
            Outcome::Compacted => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn status(&self) -> Result<StoreStatus, StorageError> {
        self.ensure_open()?;
        let db = self.shared.db()?;
        self.shared.caught_up().await?;
        let snap = {
            use redb::ReadableDatabase;
            let txn = db.begin_read().map_err(EngineError::from)?;
            read::snapshot(&txn)?
        };
        self.shared.settled().await?;
        let db_size_bytes = std::fs::metadata(&self.shared.path).ok().map(|m| m.len());
        Ok(StoreStatus {
            revision: schema::rev_i64(snap.revision),
            compact_revision: schema::rev_i64(snap.compact),
            db_size_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failed expectation is a failed test.
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use bytes::Bytes;
    use ironplane_storage::Storage;

    use super::*;

    /// The writer copies the log's durable point into each record: a write that waited for the
    /// one before it finds that one durable, and no record claims itself or a later one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_carry_the_durable_point_they_were_written_at() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let store = std::sync::Arc::new(
            RedbStore::open(
                RedbStoreOptions::new(path.clone())
                    .wal_checkpoint_interval(Duration::from_secs(3600))
                    .wal_checkpoint_bytes(u64::MAX),
            )
            .unwrap(),
        );
        for i in 0..20 {
            store
                .create(&format!("/seq/{i}"), Bytes::from("v"), None)
                .await
                .unwrap();
        }
        let sequential = wal::read(&wal::path_for(&path), 0).unwrap();
        assert!(sequential.len() >= 20, "{} records", sequential.len());
        let tail = &sequential[sequential.len() - 20..];
        for record in tail {
            assert_eq!(record.durable, record.seq - 1, "record {}", record.seq);
        }
        let writes: Vec<_> = (0..64)
            .map(|i| {
                let store = std::sync::Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .create(&format!("/par/{i}"), Bytes::from("v"), None)
                        .await
                        .unwrap();
                })
            })
            .collect();
        for write in writes {
            write.await.unwrap();
        }
        let all = wal::read(&wal::path_for(&path), 0).unwrap();
        assert!(all.len() > sequential.len());
        for pair in all.windows(2) {
            assert!(pair[1].durable >= pair[0].durable, "marks never go back");
        }
        for record in &all {
            assert!(record.durable < record.seq, "record {}", record.seq);
        }
        store.close();
    }
}
