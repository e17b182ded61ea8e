//! The single writer: group commit, revision assignment, compaction steps, event publication.
//!
//! Architecture Invariant: only this thread writes to the database. It takes every write that is
//! waiting, applies them in arrival order inside one redb write transaction (each one validated
//! against the state left by the ones before it, so a failed precondition fails only its own
//! request), makes the group durable once (one fsync for the whole group), and hands the group's
//! events to the watch hub in revision order before its callers are answered.
//!
//! With the write-ahead log (the default), "durable once" is: append the group's changes to the
//! log and have the syncer thread ([`crate::syncer`]) `fdatasync` it and then publish the group,
//! while this thread applies the next group. The groups go on into the same redb transaction,
//! which is committed (with `Durability::None`) when a reader needs what it holds
//! ([`Shared::caught_up`]), when it is 100 ms old, or at a checkpoint: a group costs its B-tree
//! inserts, not a commit.
//! A commit may include a group whose `fdatasync` is still running, and every read waits for
//! durability of what it saw before returning ([`Shared::settled`]), so no caller sees a change
//! that a crash could lose. A record is appended as soon as its group is applied, even while
//! earlier records wait for their `fdatasync` (one `fdatasync` then covers them all); each record
//! carries how far the log was durable when it was written, so that recovery can tell a torn tail
//! of unacknowledged records from damage to acknowledged ones. Every
//! [`wal_checkpoint_interval`](crate::RedbStoreOptions::wal_checkpoint_interval) the writer
//! commits the open transaction and has a thread of its own make a durable redb commit (a
//! checkpoint, [`crate::checkpoint`]); meanwhile groups are applied to an overlay of the tables,
//! and once the commit is done they are applied to the tables, made durable by a short
//! checkpoint on this thread, and the log starts over. Without the log, every group commits with
//! `Durability::Immediate` and is published by this thread. [`recover`] replays the log at open.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ironplane_storage::{Deleted, Event, EventKind, KeyValue, Revision, StorageError};
use redb::{Database, Durability, ReadableTable, Table, WriteTransaction};
use tokio::sync::oneshot;

use crate::checkpoint::{self, Checkpoint, CheckpointView, Overlay};
use crate::engine::{EngineError, Shared, lock, now_ms};
use crate::schema::{
    Current, FORMAT_VERSION, HISTORY, KV, LOG, LogEntry, LogKind, META, META_COMPACT,
    META_COMPACTED_THROUGH, META_FORMAT, META_RETAINED_BYTES, META_REVISION, META_WAL_SEQ, TTL,
    Version, history_key, rev_i64, rev_u64, ttl_key,
};
use crate::syncer::{self, Job, LogProgress, Settle};
use crate::wal::{self, AppendError, Change, ChangeKind, Record, Wal, WalError};

/// The longest the writer keeps groups in one open transaction. A commit's work grows with the
/// pages changed since the last one (redb checksums each and updates the table roots); left to
/// the checkpoint, a second's worth lengthened its pause, and with it the slowest requests.
/// Ten commits a second cost next to nothing against one per group.
const OPEN_TRANSACTION_MAX_AGE: Duration = Duration::from_millis(100);

/// A message to the writer thread.
pub(crate) enum Command {
    /// Apply a write and answer on its channel.
    Write(WriteRequest),
    /// A reader needs what was applied in redb's committed tables: commit the open transaction,
    /// then answer on the channel if there is one.
    Commit(Option<Sender<Result<(), String>>>),
    /// Finish the writes queued before this one, then stop.
    Shutdown,
    /// From the checkpoint thread: its durable commit is done (the writer collects the outcome).
    CheckpointDone,
}

/// One write and where its answer goes.
pub(crate) struct WriteRequest {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Outcome, StorageError>>,
}

/// A write operation, already validated for shape (key and value size).
pub(crate) enum Op {
    Create {
        key: String,
        value: Bytes,
        expiry_ms: u64,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
        expiry_ms: u64,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    /// The TTL sweeper's delete: only if the key is still the version that expired.
    Expire { key: String, expected: u64 },
    /// Move the compaction point.
    Compact { revision: Revision },
}

impl Op {
    fn value_len(&self) -> usize {
        match self {
            Op::Create { value, .. } | Op::Update { value, .. } => value.len(),
            _ => 0,
        }
    }
}

/// What a successful write did.
#[derive(Debug)]
pub(crate) enum Outcome {
    Put(KeyValue),
    Deleted(Deleted),
    Compacted,
    /// An `Expire` whose key had changed since it was found expired.
    Skipped,
}

/// The writer's view of the counters in the meta table.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    pub revision: u64,
    pub compact: u64,
    pub compacted_through: u64,
    pub retained_bytes: u64,
    /// The sequence number of the last write-ahead log record applied to the tables.
    pub wal_seq: u64,
}

impl Counters {
    /// Read the counters from the meta table.
    pub(crate) fn load(db: &Database) -> Result<Self, EngineError> {
        use redb::ReadableDatabase;
        let txn = db.begin_read()?;
        let meta = txn.open_table(META)?;
        let get = |name: &str| -> Result<u64, EngineError> {
            Ok(meta.get(name)?.map(|v| v.value()).unwrap_or(0))
        };
        Ok(Self {
            revision: get(META_REVISION)?,
            compact: get(META_COMPACT)?,
            compacted_through: get(META_COMPACTED_THROUGH)?,
            retained_bytes: get(META_RETAINED_BYTES)?,
            wal_seq: get(META_WAL_SEQ)?,
        })
    }

    fn store(&self, meta: &mut Table<'_, &'static str, u64>) -> Result<(), EngineError> {
        meta.insert(META_REVISION, self.revision)?;
        meta.insert(META_COMPACT, self.compact)?;
        meta.insert(META_COMPACTED_THROUGH, self.compacted_through)?;
        meta.insert(META_RETAINED_BYTES, self.retained_bytes)?;
        meta.insert(META_WAL_SEQ, self.wal_seq)?;
        Ok(())
    }
}

/// Create the tables of a new file, or check the layout version of an existing one.
pub(crate) fn initialize(db: &Database) -> Result<(), StorageError> {
    // The common case, an existing store of this layout, needs no write (and no fsync).
    {
        use redb::ReadableDatabase;
        let txn = db.begin_read().map_err(EngineError::from)?;
        if let Ok(meta) = txn.open_table(META)
            && meta
                .get(META_FORMAT)
                .map_err(EngineError::from)?
                .map(|v| v.value())
                == Some(FORMAT_VERSION)
        {
            return Ok(());
        }
    }
    let txn = db.begin_write().map_err(EngineError::from)?;
    {
        let mut meta = txn.open_table(META).map_err(EngineError::from)?;
        let format = meta
            .get(META_FORMAT)
            .map_err(EngineError::from)?
            .map(|v| v.value());
        match format {
            None => {
                meta.insert(META_FORMAT, FORMAT_VERSION)
                    .map_err(EngineError::from)?;
            }
            Some(FORMAT_VERSION) => {}
            Some(other) => {
                return Err(StorageError::internal(format!(
                    "database layout version {other} is not supported (this build reads {FORMAT_VERSION})"
                )));
            }
        }
        txn.open_table(KV).map_err(EngineError::from)?;
        txn.open_table(HISTORY).map_err(EngineError::from)?;
        txn.open_table(LOG).map_err(EngineError::from)?;
        txn.open_table(TTL).map_err(EngineError::from)?;
    }
    txn.commit().map_err(EngineError::from)?;
    Ok(())
}

/// The revision of a store before its first write. As in etcd, it is 1, not 0: a watch "after
/// revision 0" means "after the current revision", so a list of an empty store at revision 0,
/// followed by a watch from what it returned, would miss every write made in between.
const FIRST_REVISION: u64 = 1;

/// Give a store that has never been written (a new one, or one an earlier build left at
/// revision 0) its first revision. Runs at open after recovery, when the tables hold every
/// logged change, so that no log record can still start at revision 0.
pub(crate) fn ensure_first_revision(db: &Database) -> Result<(), StorageError> {
    if Counters::load(db)?.revision >= FIRST_REVISION {
        return Ok(());
    }
    let mut txn = db.begin_write().map_err(EngineError::from)?;
    txn.set_durability(Durability::Immediate)
        .map_err(EngineError::from)?;
    txn.open_table(META)
        .map_err(EngineError::from)?
        .insert(META_REVISION, FIRST_REVISION)
        .map_err(EngineError::from)?;
    txn.commit().map_err(EngineError::from)?;
    Ok(())
}

/// What a write's caller is told.
pub(crate) type Reply = Result<Outcome, StorageError>;

struct Tables<'t> {
    kv: Table<'t, &'static [u8], &'static [u8]>,
    history: Table<'t, &'static [u8], &'static [u8]>,
    log: Table<'t, u64, &'static [u8]>,
    ttl: Table<'t, &'static [u8], ()>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, EngineError> {
        Ok(Self {
            kv: txn.open_table(KV)?,
            history: txn.open_table(HISTORY)?,
            log: txn.open_table(LOG)?,
            ttl: txn.open_table(TTL)?,
        })
    }
}

/// What [`apply`] validates a write against and changes: redb's tables in the writer's
/// transaction, or, while a checkpoint runs, its [`Overlay`].
pub(crate) trait ApplyTarget {
    /// Make `current` (a first version, at the next revision) the version of `key` unless `key`
    /// has one already; whether it did.
    fn create(
        &mut self,
        counters: &mut Counters,
        key: &str,
        current: &Current,
        now: u64,
    ) -> Result<bool, EngineError>;
    /// The current version of `key`.
    fn current(&self, key: &str) -> Result<Option<Current>, EngineError>;
    /// Make `current` (whose modification revision is the next revision) the version of `key`,
    /// superseding `old`.
    fn put(
        &mut self,
        counters: &mut Counters,
        key: &str,
        current: &Current,
        old: Option<&Current>,
        now: u64,
    ) -> Result<(), EngineError>;
    /// Delete `key`, whose current version is `old`, at the next revision; returns it.
    fn remove(
        &mut self,
        counters: &mut Counters,
        key: &str,
        old: &Current,
        now: u64,
    ) -> Result<u64, EngineError>;
}

impl ApplyTarget for Tables<'_> {
    fn create(
        &mut self,
        counters: &mut Counters,
        key: &str,
        current: &Current,
        now: u64,
    ) -> Result<bool, EngineError> {
        // One B-tree descent instead of a lookup and an insert: insert, and in the rare case that
        // the key was taken, put its version back.
        let taken = self
            .kv
            .insert(key.as_bytes(), current.encode().as_slice())?
            .map(|previous| previous.value().to_vec());
        if let Some(previous) = taken {
            self.kv.insert(key.as_bytes(), previous.as_slice())?;
            return Ok(false);
        }
        index_expiry(self, key, current)?;
        append_log(
            self,
            counters,
            current.mod_revision,
            LogKind::Put,
            now,
            0,
            0,
            key,
        )?;
        Ok(true)
    }

    fn current(&self, key: &str) -> Result<Option<Current>, EngineError> {
        read_current(self, key)
    }

    fn put(
        &mut self,
        counters: &mut Counters,
        key: &str,
        current: &Current,
        old: Option<&Current>,
        now: u64,
    ) -> Result<(), EngineError> {
        put(self, counters, key, current, old, now)
    }

    fn remove(
        &mut self,
        counters: &mut Counters,
        key: &str,
        old: &Current,
        now: u64,
    ) -> Result<u64, EngineError> {
        remove(self, counters, key, old, now)
    }
}

/// Why a group did not commit.
struct GroupFailure {
    error: EngineError,
    /// The group's log record may be on disk although the group was not applied: its outcome is
    /// known only after the next open (whose recovery replays the record if it is whole), so the
    /// writer stops taking writes.
    fatal: bool,
}

impl GroupFailure {
    fn soft(error: impl Into<EngineError>) -> Self {
        Self {
            error: error.into(),
            fatal: false,
        }
    }

    fn fatal(error: impl Into<EngineError>) -> Self {
        Self {
            error: error.into(),
            fatal: true,
        }
    }
}

/// What a committed group produced.
struct Committed {
    counters: Counters,
    results: Vec<Reply>,
    events: Vec<Event>,
}

/// The writer's end of the syncer thread.
pub(crate) struct SyncerHandle {
    jobs: Sender<Job>,
    acks: Receiver<Result<(), WalError>>,
    /// How far the log is written and durable, shared with the syncer.
    progress: Arc<LogProgress>,
    /// The `seq` of the last record sent to be made durable.
    last_sent: u64,
    /// A failure the syncer reported, until the writer is told of it.
    failure: Option<WalError>,
    /// Whether a failure was reported: every later wait fails too.
    failed: bool,
    thread: JoinHandle<()>,
}

fn syncer_stopped() -> WalError {
    WalError::Io {
        path: String::from("(syncer thread)"),
        source: std::io::Error::other("the syncer thread stopped"),
    }
}

impl SyncerHandle {
    pub(crate) fn new(
        jobs: Sender<Job>,
        acks: Receiver<Result<(), WalError>>,
        progress: Arc<LogProgress>,
        thread: JoinHandle<()>,
    ) -> Self {
        let last_sent = progress.durable();
        Self {
            jobs,
            acks,
            progress,
            last_sent,
            failure: None,
            failed: false,
            thread,
        }
    }

    /// Every record up to this `seq` is durable.
    fn durable(&self) -> u64 {
        self.progress.durable()
    }

    /// Note one acknowledgement; the first failure is kept until the writer is told of it.
    fn note(&mut self, ack: Result<(), WalError>) {
        if let Err(failure) = ack
            && !self.failed
            && self.failure.is_none()
        {
            self.failure = Some(failure);
        }
    }

    /// Whether every record sent to be synced has settled (durable, or the syncer failed),
    /// without waiting.
    fn settled(&mut self) -> bool {
        loop {
            match self.acks.try_recv() {
                Ok(ack) => self.note(ack),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.note(Err(syncer_stopped()));
                    break;
                }
            }
        }
        self.failed || self.failure.is_some() || self.durable() >= self.last_sent
    }

    /// The failure the syncer reported, if it did (the first time as it was reported).
    fn reported_failure(&mut self) -> Option<WalError> {
        if let Some(failure) = self.failure.take() {
            self.failed = true;
            return Some(failure);
        }
        self.failed.then(|| WalError::Io {
            path: String::from("(syncer thread)"),
            source: std::io::Error::other("an earlier fdatasync of the log failed"),
        })
    }

    /// Whether the syncer has reported a failure so far, without waiting: no record goes into a
    /// log after a failed `fdatasync`.
    fn check(&mut self) -> Result<(), WalError> {
        self.settled();
        self.reported_failure().map_or(Ok(()), Err)
    }

    /// Wait until every record sent to be synced is durable (or the syncer failed).
    fn wait(&mut self) -> Result<(), WalError> {
        loop {
            if let Some(failure) = self.reported_failure() {
                return Err(failure);
            }
            if self.durable() >= self.last_sent {
                return Ok(());
            }
            // The syncer answers every sync it was sent, in order: an answer is on its way.
            let ack = self.acks.recv().unwrap_or_else(|_| Err(syncer_stopped()));
            self.note(ack);
        }
    }

    /// Have the record `seq`, just appended, made durable (with every record before it).
    fn start_sync(&mut self, seq: u64) -> Result<(), WalError> {
        self.progress.wrote(seq);
        self.jobs
            .send(Job::Sync(seq))
            .map_err(|_| syncer_stopped())?;
        self.last_sent = seq;
        Ok(())
    }

    /// Hand a committed group over; its callers are answered once the records sent to be synced
    /// before it are durable.
    fn hand_over(&mut self, group: Settle) -> Result<(), WalError> {
        self.jobs
            .send(Job::Publish(group))
            .map_err(|_| syncer_stopped())
    }

    /// Let the syncer answer what it holds, and wait for it to stop.
    fn finish(self) {
        drop(self.jobs);
        if self.thread.join().is_err() {
            tracing::error!("the syncer thread panicked");
        }
    }
}

/// The writer thread's state.
pub(crate) struct Writer {
    db: Arc<Database>,
    shared: Arc<Shared>,
    counters: Counters,
    /// The write-ahead log; `None` when the store runs without one.
    wal: Option<Wal>,
    /// The thread that makes logged groups durable and answers them (with the log only).
    syncer: Option<SyncerHandle>,
    /// A `Shutdown` arrived while a group was taking in more writes.
    stop_requested: bool,
    /// Set when the log failed in a way that leaves a group's fate unknown: every later write is
    /// refused (with this message) until the store is reopened, whose recovery settles it.
    failed: Option<String>,
    /// Whether a commit since the last checkpoint was not durable.
    dirty: bool,
    last_checkpoint: Instant,
    /// With the log: the transaction that groups are applied to until a reader asks for them
    /// (or a checkpoint comes), so that many groups share one commit.
    open: Option<WriteTransaction>,
    /// How many groups the open transaction holds.
    open_groups: usize,
    /// When the open transaction began.
    opened: Instant,
    /// Readers asked for a commit while a group was being applied: commit once it is logged.
    commit_wanted: bool,
    /// Whom to tell when that commit is done.
    commit_waiters: Vec<Sender<Result<(), String>>>,
    /// The checkpoint running beside this thread, if one is.
    checkpoint: Option<Checkpoint>,
    /// This thread's own queue, on which the checkpoint thread says it is done.
    wake: Sender<Command>,
}

impl Writer {
    pub(crate) fn new(
        db: Arc<Database>,
        shared: Arc<Shared>,
        counters: Counters,
        wal: Option<Wal>,
        syncer: Option<SyncerHandle>,
        wake: Sender<Command>,
    ) -> Self {
        Self {
            db,
            shared,
            counters,
            wal,
            syncer,
            stop_requested: false,
            failed: None,
            dirty: false,
            last_checkpoint: Instant::now(),
            open: None,
            open_groups: 0,
            opened: Instant::now(),
            commit_wanted: false,
            commit_waiters: Vec::new(),
            checkpoint: None,
            wake,
        }
    }

    /// The writer loop: runs until `Shutdown` or until every sender is gone, then takes a last
    /// checkpoint.
    pub(crate) fn run(mut self, rx: Receiver<Command>) {
        self.serve(&rx);
        self.finish();
    }

    fn serve(&mut self, rx: &Receiver<Command>) {
        let max_ops = self.shared.options.max_batch_ops.max(1);
        let max_bytes = self.shared.options.max_batch_bytes.max(1);
        let busy_budget = self.shared.options.compaction_batch.max(1);
        let idle_budget = busy_budget.saturating_mul(8);
        loop {
            self.maybe_checkpoint();
            // No compaction step while a checkpoint runs: the tables are not the writer's then.
            let compaction_pending = self.checkpoint.is_none()
                && self.counters.compacted_through < self.counters.compact;
            let first = if compaction_pending {
                match rx.try_recv() {
                    Ok(command) => Some(command),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => return,
                }
            } else if let Some(due) = self.checkpoint_due() {
                // Idle with non-durable commits: wait for a write, or checkpoint when due.
                match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                    Ok(command) => Some(command),
                    Err(RecvTimeoutError::Timeout) => {
                        self.start_checkpoint();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match rx.recv() {
                    Ok(command) => Some(command),
                    Err(_) => return,
                }
            };
            let Some(first) = first else {
                // Idle: a compaction-only step.
                if !self.process(Vec::new(), None, idle_budget) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            };
            let mut batch = Vec::new();
            let mut bytes = 0;
            let mut shutdown = false;
            match first {
                Command::Write(request) => {
                    bytes += request.op.value_len();
                    batch.push(request);
                }
                Command::Commit(waiter) => self.want_commit(waiter),
                Command::Shutdown => shutdown = true,
                // Collected by `maybe_checkpoint` at the top of the loop.
                Command::CheckpointDone => {}
            }
            while !shutdown && batch.len() < max_ops && bytes < max_bytes {
                match rx.try_recv() {
                    Ok(Command::Write(request)) => {
                        bytes += request.op.value_len();
                        batch.push(request);
                    }
                    Ok(Command::Commit(waiter)) => self.want_commit(waiter),
                    Ok(Command::Shutdown) => shutdown = true,
                    Ok(Command::CheckpointDone) => {}
                    Err(_) => break,
                }
            }
            // A reader waits for groups already applied, not for this batch: serve it first.
            if self.commit_wanted && self.checkpoint.is_none() {
                self.commit_for_readers();
            }
            if !batch.is_empty() {
                self.process(batch, Some(rx), busy_budget);
            }
            // Requests that came while the batch was applied wait for it to be logged (and, while
            // a checkpoint runs, for the checkpoint: until then the tables are not the writer's).
            if self.checkpoint.is_none() {
                if self.commit_wanted {
                    self.commit_for_readers();
                } else if self.open.is_some() && self.opened.elapsed() >= OPEN_TRANSACTION_MAX_AGE {
                    // A failure stops the store and is logged there; the next write hears of it.
                    let _ = self.commit_open();
                }
            }
            if shutdown || self.stop_requested {
                return;
            }
        }
    }

    /// When the next checkpoint is due, if one is owed and none is running.
    fn checkpoint_due(&self) -> Option<Instant> {
        (self.dirty && self.failed.is_none() && self.checkpoint.is_none())
            .then(|| self.last_checkpoint + self.shared.options.wal_checkpoint_interval)
    }

    /// Note a reader's request for a commit; it is served once the group being gathered is logged.
    fn want_commit(&mut self, waiter: Option<Sender<Result<(), String>>>) {
        self.commit_wanted = true;
        self.commit_waiters.extend(waiter);
    }

    /// Commit the open transaction for the readers waiting for it, and tell them.
    fn commit_for_readers(&mut self) {
        self.commit_wanted = false;
        let result = match &self.failed {
            Some(message) => Err(message.clone()),
            None => self.commit_open(),
        };
        for waiter in self.commit_waiters.drain(..) {
            let _ = waiter.send(result.clone());
        }
    }

    /// Commit the open transaction (without durability: the log holds its groups), so that
    /// readers see its groups. A failure stops the store: the groups are in the log, perhaps
    /// already answered, but no longer in a transaction; the next open's recovery replays them.
    fn commit_open(&mut self) -> Result<(), String> {
        self.shared.commit_request_taken();
        let Some(txn) = self.open.take() else {
            return Ok(());
        };
        self.open_groups = 0;
        let revision = self.counters.revision;
        let seq = self.counters.wal_seq;
        let result = (|| -> Result<(), EngineError> {
            self.counters.store(&mut txn.open_table(META)?)?;
            // Before the commit: a reader that sees these groups must find them counted when it
            // waits for their durability (`Shared::settled`).
            self.shared.committed.store(revision, Ordering::Release);
            txn.commit()?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.shared.mark_visible(seq);
                Ok(())
            }
            Err(err) => {
                tracing::error!(error = %err, "commit of logged groups failed");
                let message = format!(
                    "the store refuses writes until it is reopened: a commit of logged writes \
                     failed: {err}"
                );
                self.shared.mark_failed(&message);
                self.failed = Some(message.clone());
                Err(message)
            }
        }
    }

    /// Collect a finished checkpoint (or wait for one whose overlay has grown past the log's
    /// byte bound); start one if the interval has passed or the log has grown past that bound.
    fn maybe_checkpoint(&mut self) {
        let bound = self.shared.options.wal_checkpoint_bytes;
        if let Some(checkpoint) = &self.checkpoint {
            if checkpoint.is_done() || checkpoint.overlay.logged_bytes >= bound {
                self.finish_checkpoint();
            }
            return;
        }
        let Some(due) = self.checkpoint_due() else {
            return;
        };
        let pending = self.wal.as_ref().map_or(0, Wal::pending_bytes);
        if Instant::now() >= due || pending >= bound {
            self.start_checkpoint();
        }
    }

    /// Commit the open transaction and hand the durable commit to a thread of its own; groups go
    /// to the checkpoint's overlay until it is done ([`crate::checkpoint`]).
    fn start_checkpoint(&mut self) {
        if self.checkpoint.is_some() {
            return;
        }
        if !self.prepare_checkpoint() {
            return;
        }
        match Checkpoint::start(
            &self.db,
            self.shared.options.quick_repair,
            self.counters,
            self.wake.clone(),
        ) {
            Ok(checkpoint) => {
                self.checkpoint = Some(checkpoint);
                *lock(&self.shared.checkpoint_view) =
                    Some(CheckpointView::new(self.counters.revision));
            }
            // Nothing changed yet: checkpoint here, as without the thread.
            Err(err) => {
                tracing::warn!(error = %err, "cannot start a checkpoint thread");
                self.checkpoint();
            }
        }
    }

    /// Wait for the running checkpoint, apply the groups logged meanwhile to the tables, and,
    /// if its commit succeeded, make those durable too and start the log over.
    fn finish_checkpoint(&mut self) {
        let Some(checkpoint) = self.checkpoint.take() else {
            return;
        };
        let (result, overlay) = checkpoint.finish();
        self.finish_checkpoint_with(result, overlay);
        // Reads go back to the tables (the view never serves once they moved past its snapshot).
        lock(&self.shared.checkpoint_view).take();
    }

    fn finish_checkpoint_with(&mut self, result: Result<(), String>, overlay: Overlay) {
        tracing::debug!(
            took = ?self.last_checkpoint.elapsed(),
            groups_meanwhile = overlay.records.len(),
            "checkpoint beside the writer"
        );
        if self.failed.is_some() {
            // The store has stopped; the next open's recovery replays whatever is logged.
            return;
        }
        let nothing_meanwhile = overlay.records.is_empty();
        self.shared
            .groups_during_checkpoints
            .fetch_add(overlay.records.len() as u64, Ordering::Relaxed);
        if !nothing_meanwhile && let Err(err) = self.apply_overlay(overlay) {
            tracing::error!(error = %err, "cannot apply the groups logged during a checkpoint");
            let message = format!(
                "the store refuses writes until it is reopened (whose recovery replays the \
                 logged writes): {err}"
            );
            self.shared.mark_failed(&message);
            self.failed = Some(message);
            return;
        }
        match result {
            // Nothing was logged since the snapshot (and nothing is in flight: the checkpoint
            // began with none): the tables durably hold the whole log.
            Ok(()) if nothing_meanwhile => self.log_starts_over(),
            // The tables are durable up to the snapshot; make the rest durable (a short
            // checkpoint: only the pages of the groups since) and start the log over.
            Ok(()) => self.checkpoint(),
            // The log still holds every record: nothing is lost, the next checkpoint retries.
            Err(err) => tracing::error!(error = %err, "checkpoint failed"),
        }
    }

    /// Apply the groups logged during a checkpoint to a new open transaction, as recovery
    /// replays the log, and check that they lead to the counters the writer has.
    fn apply_overlay(&mut self, overlay: Overlay) -> Result<(), EngineError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)?;
        let mut counters = overlay.base;
        {
            let mut tables = Tables::open(&txn)?;
            replay_records(&mut tables, &mut counters, &overlay.records)
                .map_err(|err| err.into_error(&wal::path_for(&self.shared.path)))?;
        }
        if (counters.revision, counters.compact, counters.wal_seq)
            != (
                self.counters.revision,
                self.counters.compact,
                self.counters.wal_seq,
            )
        {
            return Err(WalError::Corrupt {
                path: wal::path_for(&self.shared.path).display().to_string(),
                detail: format!(
                    "the groups logged during a checkpoint lead to revision {} and record {}, \
                     not {} and {}",
                    counters.revision,
                    counters.wal_seq,
                    self.counters.revision,
                    self.counters.wal_seq
                ),
            }
            .into());
        }
        // Replaying also counted the bytes that history keeps.
        self.counters.retained_bytes = counters.retained_bytes;
        self.open = Some(txn);
        self.open_groups = overlay.records.len();
        self.opened = Instant::now();
        Ok(())
    }

    /// A durable redb commit on this thread, which persists every non-durable commit before it:
    /// the tables now hold every log record, so the log starts over at the front of its file.
    /// Used for the short checkpoint after one that ran beside the writer, and at close.
    fn checkpoint(&mut self) {
        if !self.prepare_checkpoint() {
            return;
        }
        let result = checkpoint::durable_commit(&self.db, self.shared.options.quick_repair);
        tracing::debug!(
            took = ?self.last_checkpoint.elapsed(),
            log_bytes = self.wal.as_ref().map_or(0, Wal::pending_bytes),
            "checkpoint"
        );
        if let Err(err) = result {
            // The log still holds every record: nothing is lost, the next checkpoint retries.
            tracing::error!(error = %err, "checkpoint failed");
            return;
        }
        self.log_starts_over();
    }

    /// What every checkpoint does first: start its clock, let the group in flight reach the log
    /// (so that the log starts over only once every record before the checkpoint is settled)
    /// and commit the open transaction. False if either failed (logged; the store has stopped).
    fn prepare_checkpoint(&mut self) -> bool {
        self.last_checkpoint = Instant::now();
        if let Err(err) = self.settle_in_flight() {
            tracing::error!(error = %err, "checkpoint skipped");
            return false;
        }
        self.commit_open().is_ok()
    }

    /// The tables durably hold every record in the log: start it over at the front of its file.
    fn log_starts_over(&mut self) {
        self.dirty = false;
        self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
        if let Some(wal) = &mut self.wal {
            wal.restart();
            // A burst of large groups may have grown the file far past its usual size.
            let limit = self
                .shared
                .options
                .wal_checkpoint_bytes
                .saturating_mul(2)
                .saturating_add(wal::GROW_BYTES);
            if wal.file_bytes() > limit
                && let Err(err) = wal.shrink()
            {
                tracing::warn!(error = %err, "cannot shrink the write-ahead log");
            }
        }
    }

    /// At shutdown: a last checkpoint, and an empty log, so that the next open reads nothing.
    fn finish(&mut self) {
        let _ = self.settle_in_flight();
        // The checkpoint thread must be done with the file before the store closes it.
        self.finish_checkpoint();
        if let Some(syncer) = self.syncer.take() {
            syncer.finish();
        }
        if self.failed.is_some() {
            // Leave the log as it is: the next open replays whatever is whole in it.
            return;
        }
        if self.dirty {
            self.checkpoint();
        }
        if !self.dirty
            && let Some(wal) = &mut self.wal
            && let Err(err) = wal.shrink()
        {
            tracing::warn!(error = %err, "cannot empty the write-ahead log at close");
        }
    }

    /// Wait for the group in flight to be durable; a failed `fdatasync` stops the store.
    fn settle_in_flight(&mut self) -> Result<(), WalError> {
        let Some(syncer) = &mut self.syncer else {
            return Ok(());
        };
        syncer.wait().inspect_err(|err| {
            let message = format!(
                "the store refuses writes until it is reopened: its write-ahead log failed: {err}"
            );
            self.shared.mark_failed(&message);
            self.failed = Some(message);
        })
    }

    /// Apply one group in one transaction and commit it; then publish and answer it here
    /// (without the log) or hand it to the syncer. While an earlier group's `fdatasync` runs,
    /// writes already waiting on `arrivals` join the group. Returns whether the commit succeeded.
    fn process(
        &mut self,
        batch: Vec<WriteRequest>,
        arrivals: Option<&Receiver<Command>>,
        compaction_budget: usize,
    ) -> bool {
        let (mut ops, mut replies): (Vec<Op>, Vec<_>) =
            batch.into_iter().map(|r| (r.op, r.reply)).unzip();
        if let Some(message) = &self.failed {
            for reply in replies {
                let _ = reply.send(Err(StorageError::Unavailable(message.clone())));
            }
            return false;
        }
        match self.commit_group(&mut ops, &mut replies, arrivals, compaction_budget) {
            Ok(Committed {
                counters,
                results,
                events,
            }) => {
                self.counters = counters;
                let group = Settle {
                    seq: counters.wal_seq,
                    revision: counters.revision,
                    compact: counters.compact,
                    expiries: ops
                        .iter()
                        .filter_map(|op| match op {
                            Op::Create { expiry_ms, .. } | Op::Update { expiry_ms, .. }
                                if *expiry_ms != 0 =>
                            {
                                Some(*expiry_ms)
                            }
                            _ => None,
                        })
                        .collect(),
                    events,
                    answers: replies.into_iter().zip(results).collect(),
                };
                match &mut self.syncer {
                    Some(syncer) => {
                        if let Err(err) = syncer.hand_over(group) {
                            tracing::error!(error = %err, "cannot hand a group to the syncer");
                            let message =
                                format!("the store refuses writes until it is reopened: {err}");
                            self.shared.mark_failed(&message);
                            self.failed = Some(message);
                            return false;
                        }
                    }
                    None => syncer::publish(&self.shared, group),
                }
                true
            }
            Err(GroupFailure { error, fatal }) => {
                tracing::error!(error = %error, writes = replies.len(), fatal, "group commit failed");
                let message = if fatal {
                    format!(
                        "group commit failed; whether its writes were made is known only once \
                         the store is reopened: {error}"
                    )
                } else {
                    format!("group commit failed: {error}")
                };
                for reply in replies {
                    let _ = reply.send(Err(StorageError::internal(message.clone())));
                }
                if fatal {
                    // The open transaction, if there was one, went with the group.
                    self.open_groups = 0;
                    let message = self.failed.get_or_insert_with(|| {
                        format!(
                            "the store refuses writes until it is reopened (whose recovery \
                             replays the logged writes): {error}"
                        )
                    });
                    // Readers waiting for this group to become durable wait no more.
                    self.shared.mark_failed(message);
                    return false;
                }
                // The transaction (or the overlay) was rolled back; start again from what is
                // committed. A soft failure means no logged group was held: the overlay holds
                // only the failed group's changes.
                if let Some(checkpoint) = &mut self.checkpoint {
                    checkpoint.overlay.discard_unlogged();
                }
                match Counters::load(&self.db) {
                    Ok(counters) => self.counters = counters,
                    Err(err) => tracing::error!(error = %err, "cannot reload counters"),
                }
                false
            }
        }
    }

    fn commit_group(
        &mut self,
        ops: &mut Vec<Op>,
        replies: &mut Vec<oneshot::Sender<Reply>>,
        arrivals: Option<&Receiver<Command>>,
        compaction_budget: usize,
    ) -> Result<Committed, GroupFailure> {
        // While a checkpoint runs, the group goes to its overlay instead of the tables.
        let mut checkpoint = self.checkpoint.take();
        let result = self.commit_group_to(
            checkpoint.as_mut().map(|c| &mut c.overlay),
            ops,
            replies,
            arrivals,
            compaction_budget,
        );
        self.checkpoint = checkpoint;
        result
    }

    fn commit_group_to(
        &mut self,
        mut overlay: Option<&mut Overlay>,
        ops: &mut Vec<Op>,
        replies: &mut Vec<oneshot::Sender<Reply>>,
        arrivals: Option<&Receiver<Command>>,
        compaction_budget: usize,
    ) -> Result<Committed, GroupFailure> {
        let logged = self.wal.is_some();
        let mut group = Group {
            counters: self.counters,
            results: Vec::with_capacity(ops.len()),
            events: Vec::with_capacity(ops.len()),
            changes: Vec::new(),
            now: now_ms(),
            commit_asked: false,
            commit_waiters: Vec::new(),
            stop: false,
        };
        // Dropping a transaction (or an overlay) that holds logged groups would lose them until
        // the next open: any failure then stops the store.
        let holds_logged =
            self.open_groups > 0 || overlay.as_ref().is_some_and(|o| !o.records.is_empty());
        let failure = |error: EngineError| {
            if holds_logged {
                GroupFailure::fatal(error)
            } else {
                GroupFailure::soft(error)
            }
        };
        // While the previous group's fdatasync runs, this group cannot be logged yet: the writes
        // that arrive meanwhile join it instead of waiting for the next group.
        let options = &self.shared.options;
        let gather = match (self.syncer.as_mut(), arrivals) {
            (Some(syncer), Some(arrivals)) => Some(Gather {
                arrivals,
                syncer,
                max_ops: options.max_batch_ops.max(1),
                max_bytes: options.max_batch_bytes.max(1),
            }),
            _ => None,
        };
        let (applied, txn) = match overlay.as_deref_mut() {
            Some(overlay) => (apply_group(overlay, ops, replies, &mut group, gather), None),
            None => {
                let txn = match self.open.take() {
                    Some(txn) => txn,
                    None => {
                        self.opened = Instant::now();
                        let mut txn = self.db.begin_write().map_err(GroupFailure::soft)?;
                        if logged {
                            // Durable through the log; the checkpoint makes the tables durable
                            // later.
                            txn.set_durability(Durability::None)
                                .map_err(GroupFailure::soft)?;
                        } else {
                            txn.set_durability(Durability::Immediate)
                                .map_err(GroupFailure::soft)?;
                            if self.shared.options.quick_repair {
                                txn.set_quick_repair(true);
                            }
                        }
                        txn
                    }
                };
                let applied = (|| -> Result<(), EngineError> {
                    let mut tables = Tables::open(&txn)?;
                    apply_group(&mut tables, ops, replies, &mut group, gather)?;
                    if group.counters.compacted_through < group.counters.compact {
                        compact_step(&mut tables, &mut group.counters, compaction_budget)?;
                    }
                    if !logged {
                        group.counters.store(&mut txn.open_table(META)?)?;
                    }
                    Ok(())
                })();
                (applied, Some(txn))
            }
        };
        let Group {
            mut counters,
            results,
            events,
            changes,
            now,
            commit_asked,
            mut commit_waiters,
            stop,
        } = group;
        self.stop_requested |= stop;
        self.commit_wanted |= commit_asked;
        self.commit_waiters.append(&mut commit_waiters);
        applied.map_err(failure)?;
        if logged && (!changes.is_empty() || counters.compact != self.counters.compact) {
            counters.wal_seq += 1;
        }
        match (&mut self.wal, txn) {
            (Some(wal), txn) if counters.wal_seq != self.counters.wal_seq => {
                let record = Record {
                    seq: counters.wal_seq,
                    base_revision: self.counters.revision,
                    commit_ms: now,
                    compact: counters.compact,
                    durable: self.syncer.as_ref().map_or(0, SyncerHandle::durable),
                    changes,
                };
                let encoded = record.encode().map_err(|err| failure(err.into()))?;
                // Appended at once, even while earlier records wait for their `fdatasync`: one
                // `fdatasync` then covers them all, and the durable mark tells recovery which of
                // them a torn tail may hold. Not after a failed `fdatasync`; a failure to make
                // room rolls this group back (dropping `txn`).
                if let Some(syncer) = &mut self.syncer {
                    syncer.check().map_err(GroupFailure::fatal)?;
                }
                wal.write(&encoded).map_err(|err| match err {
                    AppendError::NotWritten(err) => failure(err.into()),
                    AppendError::Unknown(err) => GroupFailure::fatal(err),
                })?;
                if let Some(syncer) = &mut self.syncer {
                    syncer
                        .start_sync(counters.wal_seq)
                        .map_err(GroupFailure::fatal)?;
                }
                // The record is in the file: from here on the group lives in the open
                // transaction until a reader, the transaction's age or a checkpoint commits it
                // (`commit_open`), or in the overlay until the checkpoint is done.
                match (txn, overlay) {
                    (Some(txn), _) => {
                        self.open = Some(txn);
                        self.open_groups += 1;
                    }
                    (None, Some(overlay)) => overlay.logged(record),
                    (None, None) => {}
                }
            }
            // Nothing to log (refused writes, compaction steps): what changed waits in the open
            // transaction (or the overlay) with the rest.
            (Some(_), txn) => {
                if let Some(txn) = txn {
                    self.open = Some(txn);
                }
            }
            (None, Some(txn)) => txn.commit().map_err(GroupFailure::soft)?,
            // Without the log there are no checkpoints, hence no overlay.
            (None, None) => {}
        }
        if self.wal.is_some() {
            self.dirty = true;
        }
        Ok(Committed {
            counters,
            results,
            events,
        })
    }
}

/// A group being applied: what it has done so far.
struct Group {
    counters: Counters,
    results: Vec<Reply>,
    events: Vec<Event>,
    changes: Vec<Change>,
    now: u64,
    /// A reader asked for a commit while the group took in writes.
    commit_asked: bool,
    commit_waiters: Vec<Sender<Result<(), String>>>,
    /// A `Shutdown` arrived while the group took in writes.
    stop: bool,
}

/// Where a group takes in the writes that wait while an earlier group's `fdatasync` runs.
struct Gather<'a> {
    arrivals: &'a Receiver<Command>,
    syncer: &'a mut SyncerHandle,
    max_ops: usize,
    max_bytes: usize,
}

/// Apply `ops` in order to `target`, then (with `gather`) every write already waiting, while an
/// earlier record is not yet durable.
fn apply_group<T: ApplyTarget>(
    target: &mut T,
    ops: &mut Vec<Op>,
    replies: &mut Vec<oneshot::Sender<Reply>>,
    group: &mut Group,
    gather: Option<Gather<'_>>,
) -> Result<(), EngineError> {
    for op in ops.iter() {
        let result = apply(
            target,
            &mut group.counters,
            op,
            group.now,
            &mut group.events,
            &mut group.changes,
        )?;
        group.results.push(result);
    }
    let Some(Gather {
        arrivals,
        syncer,
        max_ops,
        max_bytes,
    }) = gather
    else {
        return Ok(());
    };
    let mut bytes: usize = ops.iter().map(Op::value_len).sum();
    while ops.len() < max_ops && bytes < max_bytes && !syncer.settled() {
        match arrivals.try_recv() {
            Ok(Command::Write(request)) => {
                bytes += request.op.value_len();
                // Its caller hears of the group's failure too, should apply fail.
                replies.push(request.reply);
                let result = apply(
                    target,
                    &mut group.counters,
                    &request.op,
                    group.now,
                    &mut group.events,
                    &mut group.changes,
                )?;
                group.results.push(result);
                ops.push(request.op);
            }
            // A reader waits for what is applied: log this group and commit.
            Ok(Command::Commit(waiter)) => {
                group.commit_asked = true;
                group.commit_waiters.extend(waiter);
                break;
            }
            Ok(Command::Shutdown) => {
                group.stop = true;
                break;
            }
            // The writer looks at the checkpoint between groups.
            Ok(Command::CheckpointDone) => {}
            // Nothing waiting: wait for the acknowledgement itself.
            Err(_) => break,
        }
    }
    Ok(())
}

/// Replay the write-ahead log at `path` into the database: every whole record after the last one
/// the tables hold, in order, in one durable transaction. Runs at open, before the writer starts;
/// returns how many changes it replayed.
pub(crate) fn recover(
    db: &Database,
    path: &Path,
    quick_repair: bool,
) -> Result<usize, EngineError> {
    let mut counters = Counters::load(db)?;
    let records = wal::read(path, counters.wal_seq)?;
    if records.is_empty() {
        return Ok(0);
    }
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    if quick_repair {
        txn.set_quick_repair(true);
    }
    let replayed = {
        let mut tables = Tables::open(&txn)?;
        let replayed = replay_records(&mut tables, &mut counters, &records)
            .map_err(|err| err.into_error(path))?;
        counters.store(&mut txn.open_table(META)?)?;
        replayed
    };
    txn.commit()?;
    tracing::info!(
        records = records.len(),
        changes = replayed,
        revision = counters.revision,
        "replayed the write-ahead log"
    );
    Ok(replayed)
}

/// Apply logged records to the tables, each checked to follow the state before it; returns how
/// many changes they held. Recovery replays the log this way, and the writer the groups logged
/// during a checkpoint. `Err` describes a record that does not follow.
fn replay_records(
    tables: &mut Tables<'_>,
    counters: &mut Counters,
    records: &[Record],
) -> Result<usize, Replay> {
    let mut replayed = 0;
    for record in records {
        if record.seq != counters.wal_seq + 1 || record.base_revision != counters.revision {
            return Err(Replay::Mismatch(format!(
                "record {} starts after revision {}, but the database holds record {} and \
                 revision {}",
                record.seq, record.base_revision, counters.wal_seq, counters.revision
            )));
        }
        for change in &record.changes {
            replay_change(tables, counters, change, record.commit_ms).map_err(|err| match err {
                Replay::Mismatch(detail) => {
                    Replay::Mismatch(format!("record {}: {detail}", record.seq))
                }
                other => other,
            })?;
            replayed += 1;
        }
        if record.compact > counters.revision {
            return Err(Replay::Mismatch(format!(
                "record {} compacts through {} beyond its revision {}",
                record.seq, record.compact, counters.revision
            )));
        }
        counters.compact = counters.compact.max(record.compact);
        counters.wal_seq = record.seq;
    }
    Ok(replayed)
}

enum Replay {
    Engine(EngineError),
    /// The change does not apply to the state it was recorded on.
    Mismatch(String),
}

impl Replay {
    /// The error to report for the log at `path`.
    fn into_error(self, path: &Path) -> EngineError {
        match self {
            Replay::Engine(err) => err,
            Replay::Mismatch(detail) => WalError::Corrupt {
                path: path.display().to_string(),
                detail,
            }
            .into(),
        }
    }
}

impl From<EngineError> for Replay {
    fn from(err: EngineError) -> Self {
        Replay::Engine(err)
    }
}

/// Apply one logged change again, checking that it finds the state it was made on.
fn replay_change(
    t: &mut Tables<'_>,
    counters: &mut Counters,
    change: &Change,
    commit_ms: u64,
) -> Result<(), Replay> {
    let rev = counters.revision + 1;
    if change.kind == ChangeKind::Put && change.prev_mod == 0 {
        // A create (most of a log): one B-tree descent, as when it was made; the key must be free.
        if (change.create_revision, change.version) != (rev, 1) {
            return Err(Replay::Mismatch(format!(
                "revision {rev} creates {} with create revision {} and version {}",
                change.key, change.create_revision, change.version
            )));
        }
        let current = Current {
            create_revision: rev,
            mod_revision: rev,
            version: 1,
            expiry_ms: change.expiry_ms,
            value: change.value.clone(),
        };
        if !t.create(counters, &change.key, &current, commit_ms)? {
            let found = read_current(t, &change.key)?.map_or(0, |o| o.mod_revision);
            return Err(Replay::Mismatch(format!(
                "revision {rev} creates {}, but the database has it at {found}",
                change.key
            )));
        }
        return Ok(());
    }
    let old = read_current(t, &change.key)?;
    let found = old.as_ref().map_or(0, |o| o.mod_revision);
    if found != change.prev_mod {
        return Err(Replay::Mismatch(format!(
            "revision {rev} changes {} at revision {}, but the database has it at {found}",
            change.key, change.prev_mod
        )));
    }
    match change.kind {
        ChangeKind::Put => {
            let expected = match &old {
                None => (rev, 1),
                Some(old) => (old.create_revision, old.version + 1),
            };
            if (change.create_revision, change.version) != expected {
                return Err(Replay::Mismatch(format!(
                    "revision {rev} puts {} with create revision {} and version {}, expected {:?}",
                    change.key, change.create_revision, change.version, expected
                )));
            }
            let current = Current {
                create_revision: change.create_revision,
                mod_revision: rev,
                version: change.version,
                expiry_ms: change.expiry_ms,
                value: change.value.clone(),
            };
            put(t, counters, &change.key, &current, old.as_ref(), commit_ms)?;
        }
        ChangeKind::Delete => match &old {
            Some(old) => {
                remove(t, counters, &change.key, old, commit_ms)?;
            }
            None => {
                return Err(Replay::Mismatch(format!(
                    "revision {rev} deletes {}, which does not exist",
                    change.key
                )));
            }
        },
    }
    Ok(())
}

/// The log record's description of a put.
fn put_change(key: &str, current: &Current, prev_mod: u64) -> Change {
    Change {
        kind: ChangeKind::Put,
        key: key.to_owned(),
        prev_mod,
        create_revision: current.create_revision,
        version: current.version,
        expiry_ms: current.expiry_ms,
        value: current.value.clone(),
    }
}

/// Apply one operation on top of the group so far. `Ok(Err(..))` is a refused request (the group
/// goes on); `Err(..)` is an engine failure (the group is abandoned). Each accepted change is
/// added to `events` and, as the log will record it, to `changes`.
fn apply<T: ApplyTarget>(
    t: &mut T,
    counters: &mut Counters,
    op: &Op,
    now: u64,
    events: &mut Vec<Event>,
    changes: &mut Vec<Change>,
) -> Result<Reply, EngineError> {
    match op {
        Op::Create {
            key,
            value,
            expiry_ms,
        } => {
            let rev = counters.revision + 1;
            let current = Current {
                create_revision: rev,
                mod_revision: rev,
                version: 1,
                expiry_ms: *expiry_ms,
                value: value.clone(),
            };
            if !t.create(counters, key, &current, now)? {
                return Ok(Err(StorageError::AlreadyExists { key: key.clone() }));
            }
            changes.push(put_change(key, &current, 0));
            let kv = current.to_kv(key);
            events.push(Event {
                kind: EventKind::Put,
                kv: kv.clone(),
                prev_kv: None,
            });
            Ok(Ok(Outcome::Put(kv)))
        }
        Op::Update {
            key,
            value,
            expected,
            expiry_ms,
        } => {
            let Some(old) = t.current(key)? else {
                return Ok(Err(StorageError::NotFound { key: key.clone() }));
            };
            if rev_i64(old.mod_revision) != *expected {
                return Ok(Err(StorageError::Conflict {
                    key: key.clone(),
                    expected: *expected,
                    current: Box::new(old.to_kv(key)),
                }));
            }
            let current = Current {
                create_revision: old.create_revision,
                mod_revision: counters.revision + 1,
                version: old.version + 1,
                expiry_ms: *expiry_ms,
                value: value.clone(),
            };
            t.put(counters, key, &current, Some(&old), now)?;
            changes.push(put_change(key, &current, old.mod_revision));
            let kv = current.to_kv(key);
            events.push(Event {
                kind: EventKind::Put,
                kv: kv.clone(),
                prev_kv: Some(old.to_kv(key)),
            });
            Ok(Ok(Outcome::Put(kv)))
        }
        Op::Delete { key, expected } => {
            let Some(old) = t.current(key)? else {
                return Ok(Err(StorageError::NotFound { key: key.clone() }));
            };
            if let Some(expected) = expected
                && rev_i64(old.mod_revision) != *expected
            {
                return Ok(Err(StorageError::Conflict {
                    key: key.clone(),
                    expected: *expected,
                    current: Box::new(old.to_kv(key)),
                }));
            }
            Ok(Ok(delete(t, counters, key, &old, now, events, changes)?))
        }
        Op::Expire { key, expected } => {
            let Some(old) = t.current(key)? else {
                return Ok(Ok(Outcome::Skipped));
            };
            if old.mod_revision != *expected || old.expiry_ms == 0 || old.expiry_ms > now {
                return Ok(Ok(Outcome::Skipped));
            }
            Ok(Ok(delete(t, counters, key, &old, now, events, changes)?))
        }
        Op::Compact { revision } => {
            let revision = rev_u64(*revision);
            if revision > counters.revision {
                return Ok(Err(StorageError::FutureRevision {
                    requested: rev_i64(revision),
                    current: rev_i64(counters.revision),
                }));
            }
            counters.compact = counters.compact.max(revision);
            Ok(Ok(Outcome::Compacted))
        }
    }
}

fn read_current(t: &Tables<'_>, key: &str) -> Result<Option<Current>, EngineError> {
    match t.kv.get(key.as_bytes())? {
        Some(guard) => Ok(Some(Current::decode(guard.value())?)),
        None => Ok(None),
    }
}

fn write_current(t: &mut Tables<'_>, key: &str, current: &Current) -> Result<(), EngineError> {
    t.kv.insert(key.as_bytes(), current.encode().as_slice())?;
    index_expiry(t, key, current)
}

/// Index `current`'s expiry, if it has one, for the TTL sweep.
fn index_expiry(t: &mut Tables<'_>, key: &str, current: &Current) -> Result<(), EngineError> {
    if current.expiry_ms != 0 {
        t.ttl
            .insert(ttl_key(current.expiry_ms, key.as_bytes()).as_slice(), ())?;
    }
    Ok(())
}

/// Move `old` into the history as superseded at `rev`, and drop its TTL index entry. Returns the
/// bytes the history record takes.
fn supersede(
    t: &mut Tables<'_>,
    counters: &mut Counters,
    key: &str,
    old: &Current,
    rev: u64,
) -> Result<u64, EngineError> {
    let hkey = history_key(key.as_bytes(), old.mod_revision);
    let record = Version::encode(old.create_revision, old.version, rev, &old.value);
    t.history.insert(hkey.as_slice(), record.as_slice())?;
    if old.expiry_ms != 0 {
        t.ttl
            .remove(ttl_key(old.expiry_ms, key.as_bytes()).as_slice())?;
    }
    let bytes = (hkey.len() + record.len()) as u64;
    counters.retained_bytes = counters.retained_bytes.saturating_add(bytes);
    Ok(bytes)
}

/// Write `current` (whose modification revision is the next revision) as the version of `key`,
/// superseding `old` if there is one, and log it. The one place a put touches the tables: the
/// writer and the log replay both come here.
fn put(
    t: &mut Tables<'_>,
    counters: &mut Counters,
    key: &str,
    current: &Current,
    old: Option<&Current>,
    now: u64,
) -> Result<(), EngineError> {
    let rev = current.mod_revision;
    let (prev_mod, prev_bytes) = match old {
        Some(old) => (old.mod_revision, supersede(t, counters, key, old, rev)?),
        None => (0, 0),
    };
    write_current(t, key, current)?;
    append_log(
        t,
        counters,
        rev,
        LogKind::Put,
        now,
        prev_mod,
        prev_bytes,
        key,
    )
}

/// Delete `key`, whose current version is `old`, at the next revision, and log it. Returns the
/// revision. Like [`put`], shared by the writer and the log replay.
fn remove(
    t: &mut Tables<'_>,
    counters: &mut Counters,
    key: &str,
    old: &Current,
    now: u64,
) -> Result<u64, EngineError> {
    let rev = counters.revision + 1;
    let prev_bytes = supersede(t, counters, key, old, rev)?;
    t.kv.remove(key.as_bytes())?;
    append_log(
        t,
        counters,
        rev,
        LogKind::Delete,
        now,
        old.mod_revision,
        prev_bytes,
        key,
    )?;
    Ok(rev)
}

fn delete<T: ApplyTarget>(
    t: &mut T,
    counters: &mut Counters,
    key: &str,
    old: &Current,
    now: u64,
    events: &mut Vec<Event>,
    changes: &mut Vec<Change>,
) -> Result<Outcome, EngineError> {
    let rev = t.remove(counters, key, old, now)?;
    changes.push(Change {
        kind: ChangeKind::Delete,
        key: key.to_owned(),
        prev_mod: old.mod_revision,
        create_revision: 0,
        version: 0,
        expiry_ms: 0,
        value: Bytes::new(),
    });
    let prev_kv = old.to_kv(key);
    events.push(Event {
        kind: EventKind::Delete,
        kv: tombstone(key, rev),
        prev_kv: Some(prev_kv.clone()),
    });
    Ok(Outcome::Deleted(Deleted {
        prev_kv,
        revision: rev_i64(rev),
    }))
}

/// The `kv` of a delete event.
pub(crate) fn tombstone(key: &str, rev: u64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Bytes::new(),
        create_revision: 0,
        mod_revision: rev_i64(rev),
        version: 0,
    }
}

#[allow(clippy::too_many_arguments)]
fn append_log(
    t: &mut Tables<'_>,
    counters: &mut Counters,
    rev: u64,
    kind: LogKind,
    now: u64,
    prev_mod: u64,
    prev_bytes: u64,
    key: &str,
) -> Result<(), EngineError> {
    let entry = LogEntry {
        kind,
        commit_ms: now,
        prev_mod,
        prev_bytes,
        key: key.to_owned(),
    }
    .encode();
    t.log.insert(rev, entry.as_slice())?;
    counters.retained_bytes = counters.retained_bytes.saturating_add(entry.len() as u64);
    counters.revision = rev;
    Ok(())
}

/// Physically remove up to `budget` revisions of history at or below the compaction point: each
/// log entry goes, and so does the version it superseded (no read above the compaction point can
/// see a version superseded at or below it).
fn compact_step(
    t: &mut Tables<'_>,
    counters: &mut Counters,
    budget: usize,
) -> Result<(), EngineError> {
    let mut done = 0;
    while counters.compacted_through < counters.compact && done < budget {
        let rev = counters.compacted_through + 1;
        let removed = t.log.remove(rev)?.map(|g| g.value().to_vec());
        if let Some(bytes) = removed {
            counters.retained_bytes = counters.retained_bytes.saturating_sub(bytes.len() as u64);
            let entry = LogEntry::decode(&bytes)?;
            if entry.prev_mod != 0 {
                let hkey = history_key(entry.key.as_bytes(), entry.prev_mod);
                let record_len = t.history.remove(hkey.as_slice())?.map(|g| g.value().len());
                if let Some(len) = record_len {
                    counters.retained_bytes = counters
                        .retained_bytes
                        .saturating_sub((hkey.len() + len) as u64);
                }
            }
        }
        counters.compacted_through = rev;
        done += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    // Test code: a failed expectation is a failed test.
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn create_of(key: &str, revision: u64) -> Change {
        Change {
            kind: ChangeKind::Put,
            key: key.into(),
            prev_mod: 0,
            create_revision: revision,
            version: 1,
            expiry_ms: 0,
            value: Bytes::from_static(b"v"),
        }
    }

    /// After the syncer reports a failed `fdatasync`, the writer hears of it before its next
    /// append, and every later check and wait fails too.
    #[test]
    fn a_failed_fdatasync_stops_the_appends() {
        let (jobs, sent) = std::sync::mpsc::channel();
        let (acks_tx, acks) = std::sync::mpsc::channel();
        let progress = Arc::new(LogProgress::new(5));
        let mut syncer = SyncerHandle::new(jobs, acks, progress, std::thread::spawn(|| ()));
        assert!(syncer.settled(), "nothing sent yet");
        syncer.check().unwrap();
        syncer.start_sync(6).unwrap();
        assert!(matches!(sent.try_recv(), Ok(Job::Sync(6))));
        assert!(!syncer.settled(), "record 6 is not durable yet");
        syncer.check().unwrap();
        acks_tx
            .send(Err(WalError::Io {
                path: "log".into(),
                source: std::io::Error::other("disk gone"),
            }))
            .unwrap();
        let first = syncer.check().unwrap_err();
        assert!(first.to_string().contains("disk gone"), "{first}");
        assert!(syncer.settled());
        assert!(syncer.check().is_err(), "and for good");
        assert!(syncer.wait().is_err());
    }

    /// A logged create is replayed with one insert; it must find its key free, as it was when the
    /// create was made, or the log does not belong to this database.
    #[test]
    fn a_replayed_create_must_find_its_key_free() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("store.redb")).unwrap();
        initialize(&db).unwrap();
        let mut counters = Counters::load(&db).unwrap();
        let base = counters.revision;
        let txn = db.begin_write().unwrap();
        let mut tables = Tables::open(&txn).unwrap();
        let first = Record {
            seq: counters.wal_seq + 1,
            base_revision: base,
            commit_ms: 1,
            compact: counters.compact,
            durable: 0,
            changes: vec![create_of("/k", base + 1)],
        };
        assert_eq!(
            replay_records(&mut tables, &mut counters, std::slice::from_ref(&first)).ok(),
            Some(1)
        );
        assert_eq!(counters.revision, base + 1);
        assert_eq!(
            read_current(&tables, "/k").unwrap().unwrap().mod_revision,
            base + 1
        );

        // The same key created again: refused, and the key keeps its version.
        let again = Record {
            seq: first.seq + 1,
            base_revision: base + 1,
            changes: vec![create_of("/k", base + 2)],
            ..first.clone()
        };
        let Err(Replay::Mismatch(detail)) =
            replay_records(&mut tables, &mut counters, std::slice::from_ref(&again))
        else {
            panic!("a create of an existing key was replayed");
        };
        assert!(detail.contains("/k"), "{detail}");
        assert_eq!(
            read_current(&tables, "/k").unwrap().unwrap().mod_revision,
            base + 1
        );

        // A create whose recorded version does not start the key's life: refused.
        let mut counters = Counters::load(&db).unwrap();
        counters.revision = base + 1;
        counters.wal_seq = first.seq;
        let odd = Record {
            changes: vec![Change {
                version: 2,
                ..create_of("/other", base + 2)
            }],
            ..again
        };
        assert!(matches!(
            replay_records(&mut tables, &mut counters, &[odd]),
            Err(Replay::Mismatch(_))
        ));
        assert!(read_current(&tables, "/other").unwrap().is_none());
    }
}
