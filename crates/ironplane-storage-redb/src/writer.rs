//! The single writer: group commit, revision assignment, compaction steps, event publication.
//!
//! Architecture Invariant: only this thread writes to the database. It takes every write that is
//! waiting, applies them in arrival order inside one redb write transaction (each one validated
//! against the state left by the ones before it, so a failed precondition fails only its own
//! request), commits once with `Durability::Immediate` (one fsync for the whole group), then hands
//! the group's events to the watch hub in revision order and only then answers the callers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use bytes::Bytes;
use ironplane_storage::{Deleted, Event, EventKind, KeyValue, Revision, StorageError};
use redb::{Database, Durability, ReadableTable, Table};
use tokio::sync::oneshot;

use crate::engine::{EngineError, Shared, now_ms};
use crate::schema::{
    Current, FORMAT_VERSION, HISTORY, KV, LOG, LogEntry, LogKind, META, META_COMPACT,
    META_COMPACTED_THROUGH, META_FORMAT, META_RETAINED_BYTES, META_REVISION, TTL, Version,
    history_key, rev_i64, rev_u64, ttl_key,
};

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
        })
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

/// The writer thread's state.
pub(crate) struct Writer {
    db: Arc<Database>,
    shared: Arc<Shared>,
    counters: Counters,
    linger: Duration,
}

impl Writer {
    pub(crate) fn new(db: Arc<Database>, shared: Arc<Shared>, counters: Counters) -> Self {
        let linger = shared.options.group_commit_linger;
        Self {
            db,
            shared,
            counters,
            linger,
        }
    }

    /// The writer loop: runs until `Shutdown` or until every sender is gone.
    pub(crate) fn run(mut self, rx: Receiver<Command>) {
        let max_ops = self.shared.options.max_batch_ops.max(1);
        let max_bytes = self.shared.options.max_batch_bytes.max(1);
        let busy_budget = self.shared.options.compaction_batch.max(1);
        let idle_budget = busy_budget.saturating_mul(8);
        loop {
            let compaction_pending = self.counters.compacted_through < self.counters.compact;
            let first = if compaction_pending {
                match rx.try_recv() {
                    Ok(command) => Some(command),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => return,
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
                let deadline = std::time::Instant::now() + self.linger;
                while batch.len() < max_ops && bytes < max_bytes {
                    let waiting = self.shared.waiting_writes.load(Ordering::Acquire);
                    if batch.len() >= waiting {
                        break;
                    }
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
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

    /// Apply one group in one transaction, commit it, publish and answer. Returns whether the
    /// commit succeeded.
    fn process(&mut self, batch: Vec<WriteRequest>, compaction_budget: usize) -> bool {
        let (ops, replies): (Vec<Op>, Vec<_>) = batch.into_iter().map(|r| (r.op, r.reply)).unzip();
        match self.commit_group(&ops, compaction_budget) {
            Ok((counters, results, events)) => {
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
            Err(err) => {
                tracing::error!(error = %err, writes = replies.len(), "group commit failed");
                let message = err.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StorageError::internal(format!(
                        "group commit failed: {message}"
                    ))));
                }
                // The transaction was rolled back; start again from what is on disk.
                match Counters::load(&self.db) {
                    Ok(counters) => self.counters = counters,
                    Err(err) => tracing::error!(error = %err, "cannot reload counters"),
                }
                false
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn commit_group(
        &self,
        ops: &[Op],
        compaction_budget: usize,
    ) -> Result<(Counters, Vec<Reply>, Vec<Event>), EngineError> {
        let mut counters = self.counters;
        let mut results = Vec::with_capacity(ops.len());
        let mut events = Vec::with_capacity(ops.len());
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        if self.shared.options.quick_repair {
            txn.set_quick_repair(true);
        }
        {
            let mut tables = Tables {
                kv: txn.open_table(KV)?,
                history: txn.open_table(HISTORY)?,
                log: txn.open_table(LOG)?,
                ttl: txn.open_table(TTL)?,
            };
            let now = now_ms();
            for op in ops {
                let result = apply(&mut tables, &mut counters, op, now, &mut events)?;
                results.push(result);
            }
            if counters.compacted_through < counters.compact {
                compact_step(&mut tables, &mut counters, compaction_budget)?;
            }
            let mut meta = txn.open_table(META)?;
            meta.insert(META_REVISION, counters.revision)?;
            meta.insert(META_COMPACT, counters.compact)?;
            meta.insert(META_COMPACTED_THROUGH, counters.compacted_through)?;
            meta.insert(META_RETAINED_BYTES, counters.retained_bytes)?;
        }
        txn.commit()?;
        Ok((counters, results, events))
    }
}

/// Apply one operation on top of the group so far. `Ok(Err(..))` is a refused request (the group
/// goes on); `Err(..)` is an engine failure (the group is abandoned).
fn apply(
    t: &mut Tables<'_>,
    counters: &mut Counters,
    op: &Op,
    now: u64,
    events: &mut Vec<Event>,
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
            write_current(t, key, &current)?;
            append_log(t, counters, rev, LogKind::Put, now, 0, 0, key)?;
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
            let rev = counters.revision + 1;
            let prev_bytes = supersede(t, counters, key, &old, rev)?;
            let current = Current {
                create_revision: old.create_revision,
                mod_revision: rev,
                version: old.version + 1,
                expiry_ms: *expiry_ms,
                value: value.clone(),
            };
            write_current(t, key, &current)?;
            append_log(
                t,
                counters,
                rev,
                LogKind::Put,
                now,
                old.mod_revision,
                prev_bytes,
                key,
            )?;
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
            Ok(Ok(delete(t, counters, key, &old, now, events)?))
        }
        Op::Expire { key, expected } => {
            let Some(old) = read_current(t, key)? else {
                return Ok(Ok(Outcome::Skipped));
            };
            if old.mod_revision != *expected || old.expiry_ms == 0 || old.expiry_ms > now {
                return Ok(Ok(Outcome::Skipped));
            }
            Ok(Ok(delete(t, counters, key, &old, now, events)?))
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

fn delete(
    t: &mut Tables<'_>,
    counters: &mut Counters,
    key: &str,
    old: &Current,
    now: u64,
    events: &mut Vec<Event>,
) -> Result<Outcome, EngineError> {
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
