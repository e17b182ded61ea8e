//! The single writer: group commit, revision assignment, compaction steps, event publication.
//!
//! Architecture Invariant: only this thread writes to the database. It takes every write that is
//! waiting, applies them in arrival order inside one redb write transaction (each one validated
//! against the state left by the ones before it, so a failed precondition fails only its own
//! request), makes the group durable once (one fsync for the whole group), commits, then hands the
//! group's events to the watch hub in revision order and only then answers the callers.
//!
//! With the write-ahead log (the default), "durable once" is: append the group's changes to the
//! log and `fdatasync` it *while the transaction is still open* (so no reader can see a change
//! that a crash could lose), then commit the transaction with `Durability::None`. Every
//! [`wal_checkpoint_interval`](crate::RedbStoreOptions::wal_checkpoint_interval) the writer makes
//! a durable redb commit (a checkpoint) and starts the log over. Without it, every group commits
//! with `Durability::Immediate`. [`recover`] replays the log at open.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ironplane_storage::{Deleted, Event, EventKind, KeyValue, Revision, StorageError};
use redb::{Database, Durability, ReadableTable, Table, WriteTransaction};
use tokio::sync::oneshot;

use crate::engine::{EngineError, Shared, now_ms};
use crate::schema::{
    Current, FORMAT_VERSION, HISTORY, KV, LOG, LogEntry, LogKind, META, META_COMPACT,
    META_COMPACTED_THROUGH, META_FORMAT, META_RETAINED_BYTES, META_REVISION, META_WAL_SEQ, TTL,
    Version, history_key, rev_i64, rev_u64, ttl_key,
};
use crate::wal::{self, AppendError, Change, ChangeKind, Record, Wal, WalError};

/// A message to the writer thread.
pub(crate) enum Command {
    /// Apply a write and answer on its channel.
    Write(WriteRequest),
    /// Finish the writes queued before this one, then stop.
    Shutdown,
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

type Reply = Result<Outcome, StorageError>;

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

/// The writer thread's state.
pub(crate) struct Writer {
    db: Arc<Database>,
    shared: Arc<Shared>,
    counters: Counters,
    linger: Duration,
    /// The write-ahead log; `None` when the store runs without one.
    wal: Option<Wal>,
    /// Set when the log failed in a way that leaves a group's fate unknown: every later write is
    /// refused (with this message) until the store is reopened, whose recovery settles it.
    failed: Option<String>,
    /// Whether a commit since the last checkpoint was not durable.
    dirty: bool,
    last_checkpoint: Instant,
}

impl Writer {
    pub(crate) fn new(
        db: Arc<Database>,
        shared: Arc<Shared>,
        counters: Counters,
        wal: Option<Wal>,
    ) -> Self {
        let linger = shared.options.group_commit_linger;
        Self {
            db,
            shared,
            counters,
            linger,
            wal,
            failed: None,
            dirty: false,
            last_checkpoint: Instant::now(),
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
            let compaction_pending = self.counters.compacted_through < self.counters.compact;
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
                        self.checkpoint();
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
                if !self.process(Vec::new(), idle_budget) {
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
                Command::Shutdown => shutdown = true,
            }
            while !shutdown && batch.len() < max_ops && bytes < max_bytes {
                match rx.try_recv() {
                    Ok(Command::Write(request)) => {
                        bytes += request.op.value_len();
                        batch.push(request);
                    }
                    Ok(Command::Shutdown) => shutdown = true,
                    Err(_) => break,
                }
            }
            // Group commit linger: while the previous group committed, only part of the
            // concurrent writers could queue up; the ones just answered come back within
            // microseconds. Wait briefly for them (by the count of callers waiting on a write),
            // so that groups stay large instead of alternating between two half-size cohorts.
            // A lone writer never waits.
            if !shutdown && self.linger > Duration::ZERO {
                let deadline = Instant::now() + self.linger;
                while batch.len() < max_ops && bytes < max_bytes {
                    let waiting = self.shared.waiting_writes.load(Ordering::Acquire);
                    if batch.len() >= waiting {
                        break;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left) {
                        Ok(Command::Write(request)) => {
                            bytes += request.op.value_len();
                            batch.push(request);
                        }
                        Ok(Command::Shutdown) => {
                            shutdown = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            if !batch.is_empty() {
                self.process(batch, busy_budget);
            }
            if shutdown {
                return;
            }
        }
    }

    /// When the next checkpoint is due, if one is owed.
    fn checkpoint_due(&self) -> Option<Instant> {
        (self.dirty && self.failed.is_none())
            .then(|| self.last_checkpoint + self.shared.options.wal_checkpoint_interval)
    }

    /// Checkpoint if the interval has passed or the log has grown past its byte bound.
    fn maybe_checkpoint(&mut self) {
        let Some(due) = self.checkpoint_due() else {
            return;
        };
        let pending = self.wal.as_ref().map_or(0, Wal::pending_bytes);
        if Instant::now() >= due || pending >= self.shared.options.wal_checkpoint_bytes {
            self.checkpoint();
        }
    }

    /// A durable redb commit, which persists every non-durable commit before it: the tables now
    /// hold every log record, so the log starts over at the front of its file.
    fn checkpoint(&mut self) {
        self.last_checkpoint = Instant::now();
        let result = (|| -> Result<(), EngineError> {
            let mut txn = self.db.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            if self.shared.options.quick_repair {
                txn.set_quick_repair(true);
            }
            txn.commit()?;
            Ok(())
        })();
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
        self.dirty = false;
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

    /// Apply one group in one transaction, commit it, publish and answer. Returns whether the
    /// commit succeeded.
    fn process(&mut self, batch: Vec<WriteRequest>, compaction_budget: usize) -> bool {
        let (ops, replies): (Vec<Op>, Vec<_>) = batch.into_iter().map(|r| (r.op, r.reply)).unzip();
        if let Some(message) = &self.failed {
            for reply in replies {
                let _ = reply.send(Err(StorageError::Unavailable(message.clone())));
            }
            return false;
        }
        match self.commit_group(&ops, compaction_budget) {
            Ok(Committed {
                counters,
                results,
                events,
            }) => {
                self.counters = counters;
                self.shared
                    .revision
                    .store(rev_i64(counters.revision), Ordering::Release);
                self.shared
                    .compact_revision
                    .store(rev_i64(counters.compact), Ordering::Release);
                for op in &ops {
                    if let Op::Create { expiry_ms, .. } | Op::Update { expiry_ms, .. } = op {
                        self.shared.note_expiry(*expiry_ms);
                    }
                }
                if !events.is_empty() {
                    self.shared.hub.publish(events);
                }
                for (reply, result) in replies.into_iter().zip(results) {
                    // A caller that gave up no longer listens; its write stands.
                    let _ = reply.send(result);
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
                    self.failed = Some(format!(
                        "the store refuses writes until it is reopened: its write-ahead log \
                         failed: {error}"
                    ));
                    return false;
                }
                // The transaction was rolled back; start again from what is committed.
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
        ops: &[Op],
        compaction_budget: usize,
    ) -> Result<Committed, GroupFailure> {
        let mut counters = self.counters;
        let mut results = Vec::with_capacity(ops.len());
        let mut events = Vec::with_capacity(ops.len());
        let mut changes = Vec::new();
        let logged = self.wal.is_some();
        let now = now_ms();
        let mut txn = self.db.begin_write().map_err(GroupFailure::soft)?;
        if logged {
            // Durable through the log; the checkpoint makes the tables durable later.
            txn.set_durability(Durability::None)
                .map_err(GroupFailure::soft)?;
        } else {
            txn.set_durability(Durability::Immediate)
                .map_err(GroupFailure::soft)?;
            if self.shared.options.quick_repair {
                txn.set_quick_repair(true);
            }
        }
        (|| -> Result<(), EngineError> {
            let mut tables = Tables::open(&txn)?;
            for op in ops {
                let result = apply(
                    &mut tables,
                    &mut counters,
                    op,
                    now,
                    &mut events,
                    &mut changes,
                )?;
                results.push(result);
            }
            if counters.compacted_through < counters.compact {
                compact_step(&mut tables, &mut counters, compaction_budget)?;
            }
            if logged && (!changes.is_empty() || counters.compact != self.counters.compact) {
                counters.wal_seq += 1;
            }
            counters.store(&mut txn.open_table(META)?)
        })()
        .map_err(GroupFailure::soft)?;
        match &mut self.wal {
            Some(wal) if counters.wal_seq != self.counters.wal_seq => {
                let record = Record {
                    seq: counters.wal_seq,
                    base_revision: self.counters.revision,
                    commit_ms: now,
                    compact: counters.compact,
                    changes,
                }
                .encode()
                .map_err(GroupFailure::soft)?;
                // The transaction is still open: no reader sees the group before its record is
                // durable. Dropping `txn` on an error rolls the group back.
                wal.append(&record).map_err(|err| match err {
                    AppendError::NotWritten(err) => GroupFailure::soft(err),
                    AppendError::Unknown(err) => GroupFailure::fatal(err),
                })?;
                // The record is durable: a failure now leaves the group in the log but not in the
                // tables, so its fate is settled only by the next open.
                txn.commit().map_err(GroupFailure::fatal)?;
            }
            _ => txn.commit().map_err(GroupFailure::soft)?,
        }
        if logged {
            self.dirty = true;
        }
        Ok(Committed {
            counters,
            results,
            events,
        })
    }
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
    let mismatch = |detail: String| -> EngineError {
        WalError::Corrupt {
            path: path.display().to_string(),
            detail,
        }
        .into()
    };
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    if quick_repair {
        txn.set_quick_repair(true);
    }
    let mut replayed = 0;
    {
        let mut tables = Tables::open(&txn)?;
        for record in &records {
            if record.seq != counters.wal_seq + 1 || record.base_revision != counters.revision {
                return Err(mismatch(format!(
                    "record {} starts after revision {}, but the database holds record {} and \
                     revision {}",
                    record.seq, record.base_revision, counters.wal_seq, counters.revision
                )));
            }
            for change in &record.changes {
                replay_change(&mut tables, &mut counters, change, record.commit_ms).map_err(
                    |err| match err {
                        Replay::Engine(err) => err,
                        Replay::Mismatch(detail) => {
                            mismatch(format!("record {}: {detail}", record.seq))
                        }
                    },
                )?;
                replayed += 1;
            }
            if record.compact > counters.revision {
                return Err(mismatch(format!(
                    "record {} compacts through {} beyond its revision {}",
                    record.seq, record.compact, counters.revision
                )));
            }
            counters.compact = counters.compact.max(record.compact);
            counters.wal_seq = record.seq;
        }
        counters.store(&mut txn.open_table(META)?)?;
    }
    txn.commit()?;
    tracing::info!(
        records = records.len(),
        changes = replayed,
        revision = counters.revision,
        "replayed the write-ahead log"
    );
    Ok(replayed)
}

enum Replay {
    Engine(EngineError),
    /// The change does not apply to the state it was recorded on.
    Mismatch(String),
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
fn apply(
    t: &mut Tables<'_>,
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
            if t.kv.get(key.as_bytes())?.is_some() {
                return Ok(Err(StorageError::AlreadyExists { key: key.clone() }));
            }
            let rev = counters.revision + 1;
            let current = Current {
                create_revision: rev,
                mod_revision: rev,
                version: 1,
                expiry_ms: *expiry_ms,
                value: value.clone(),
            };
            put(t, counters, key, &current, None, now)?;
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
            let Some(old) = read_current(t, key)? else {
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
            put(t, counters, key, &current, Some(&old), now)?;
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
            let Some(old) = read_current(t, key)? else {
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
            let Some(old) = read_current(t, key)? else {
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

fn delete(
    t: &mut Tables<'_>,
    counters: &mut Counters,
    key: &str,
    old: &Current,
    now: u64,
    events: &mut Vec<Event>,
    changes: &mut Vec<Change>,
) -> Result<Outcome, EngineError> {
    let rev = remove(t, counters, key, old, now)?;
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
