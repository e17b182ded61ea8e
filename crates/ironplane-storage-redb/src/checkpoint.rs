//! Checkpoints that run beside the writer: a thread makes redb's tables durable while the writer
//! goes on validating, logging and publishing groups against an overlay.
//!
//! A checkpoint is a durable redb commit: redb writes every page changed since the last one into
//! its file and fsyncs it, which takes tens of milliseconds under load. redb has one writer at a
//! time, so while that commit runs the writer cannot touch the tables; left on the writer thread,
//! every client waited for it. Instead the writer commits its open transaction (without
//! durability), opens a read snapshot of the result and hands the durable commit to a thread of
//! its own. Until that thread is done, groups are applied to an [`Overlay`]: each key's version
//! is looked up in the overlay first and in the snapshot second, and each change lands in the
//! overlay. Groups are logged and published exactly as usual (the write-ahead log is what makes
//! them durable); readers that need them in the tables wait, as they wait for any commit.
//!
//! Reads of a key's current version need not wait either: the groups published since the
//! snapshot also go into a [`CheckpointView`], and while the committed tables still hold exactly
//! the snapshot, the view over them is the store's state at its last published revision.
//!
//! When the commit is done, the writer applies the groups logged meanwhile to a new transaction
//! the way recovery replays the log ([`crate::writer`]), and then runs a short checkpoint of its
//! own for those groups' pages before the log starts over: the log may only start over once the
//! tables durably hold every record in it.
//!
//! Architecture Invariant: while a checkpoint runs, the writer begins no write transaction and
//! applies no compaction step; the overlay holds every change made since the snapshot, and the
//! log holds each of them in a record after the snapshot's.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use ironplane_storage::{Event, EventKind, KeyValue};
use redb::{Database, Durability, ReadOnlyTable, ReadableDatabase};

use crate::engine::EngineError;
use crate::schema::{Current, KV};
use crate::wal::Record;
use crate::writer::{ApplyTarget, Command, Counters};

/// A checkpoint in progress: the thread running the durable commit, and the groups applied
/// since the snapshot.
pub(crate) struct Checkpoint {
    thread: JoinHandle<Result<(), String>>,
    /// Set by the thread when its commit is done, before it says so on the writer's queue (the
    /// thread itself may not have ended yet when the writer reads that).
    done: Arc<AtomicBool>,
    pub overlay: Overlay,
}

impl Checkpoint {
    /// Start a durable commit of everything committed so far on a thread of its own, and an
    /// overlay on a snapshot of the same state. The thread sends [`Command::CheckpointDone`] on
    /// `wake` when it finishes. The caller must have committed its open transaction.
    pub(crate) fn start(
        db: &Arc<Database>,
        quick_repair: bool,
        counters: Counters,
        wake: Sender<Command>,
    ) -> Result<Self, EngineError> {
        let snapshot = db.begin_read()?;
        let kv = snapshot.open_table(KV)?;
        let db = db.clone();
        let done = Arc::new(AtomicBool::new(false));
        let done_in_thread = done.clone();
        let thread = std::thread::Builder::new()
            .name("ironplane-redb-checkpoint".into())
            .spawn(move || {
                let result = durable_commit(&db, quick_repair).map_err(|err| err.to_string());
                done_in_thread.store(true, Ordering::Release);
                let _ = wake.send(Command::CheckpointDone);
                result
            })
            .map_err(|err| EngineError::Redb(redb::Error::Io(err)))?;
        Ok(Self {
            thread,
            done,
            overlay: Overlay {
                kv,
                changed: HashMap::new(),
                records: Vec::new(),
                logged_bytes: 0,
                base: counters,
            },
        })
    }

    /// Whether the durable commit has finished (its outcome waits in [`Checkpoint::finish`]).
    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Wait for the durable commit and return its outcome with the overlay.
    pub(crate) fn finish(self) -> (Result<(), String>, Overlay) {
        let result = self
            .thread
            .join()
            .unwrap_or_else(|_| Err(String::from("the checkpoint thread panicked")));
        (result, self.overlay)
    }
}

/// The durable commit itself: an empty transaction committed with `Durability::Immediate`, which
/// persists every non-durable commit before it.
pub(crate) fn durable_commit(db: &Database, quick_repair: bool) -> Result<(), EngineError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    if quick_repair {
        txn.set_quick_repair(true);
    }
    txn.commit()?;
    Ok(())
}

/// The state groups are applied to while a checkpoint runs: the changes since the snapshot, over
/// the snapshot's `kv` table.
pub(crate) struct Overlay {
    kv: ReadOnlyTable<&'static [u8], &'static [u8]>,
    /// Each key changed since the snapshot: its version now, or `None` once deleted.
    changed: HashMap<String, Option<Current>>,
    /// The records logged since the snapshot, in order: what the tables still lack.
    pub records: Vec<Record>,
    /// The size of those records' values, to bound the overlay.
    pub logged_bytes: u64,
    /// The counters of the snapshot: where replaying `records` starts.
    pub base: Counters,
}

impl Overlay {
    /// Keep a logged group's record, to apply it to the tables after the checkpoint.
    pub(crate) fn logged(&mut self, record: Record) {
        self.logged_bytes = self.logged_bytes.saturating_add(
            record
                .changes
                .iter()
                .map(|c| (c.key.len() + c.value.len()) as u64)
                .sum::<u64>(),
        );
        self.records.push(record);
    }

    /// Forget the changes of a group that failed before it was logged. Only valid while no group
    /// is logged: the changes of logged groups cannot be told apart from the failed one's.
    pub(crate) fn discard_unlogged(&mut self) {
        debug_assert!(self.records.is_empty());
        self.changed.clear();
    }
}

impl ApplyTarget for Overlay {
    fn create(
        &mut self,
        counters: &mut Counters,
        key: &str,
        current: &Current,
        now: u64,
    ) -> Result<bool, EngineError> {
        let taken = match self.changed.get(key) {
            Some(version) => version.is_some(),
            None => self.kv.get(key.as_bytes())?.is_some(),
        };
        if taken {
            return Ok(false);
        }
        self.put(counters, key, current, None, now)?;
        Ok(true)
    }

    fn current(&self, key: &str) -> Result<Option<Current>, EngineError> {
        match self.changed.get(key) {
            Some(version) => Ok(version.clone()),
            None => match self.kv.get(key.as_bytes())? {
                Some(guard) => Ok(Some(Current::decode(guard.value())?)),
                None => Ok(None),
            },
        }
    }

    fn put(
        &mut self,
        counters: &mut Counters,
        key: &str,
        current: &Current,
        _old: Option<&Current>,
        _now: u64,
    ) -> Result<(), EngineError> {
        self.changed.insert(key.to_owned(), Some(current.clone()));
        counters.revision = current.mod_revision;
        Ok(())
    }

    fn remove(
        &mut self,
        counters: &mut Counters,
        key: &str,
        _old: &Current,
        _now: u64,
    ) -> Result<u64, EngineError> {
        let rev = counters.revision + 1;
        self.changed.insert(key.to_owned(), None);
        counters.revision = rev;
        Ok(rev)
    }
}

/// The keys changed by the groups published since a running checkpoint's snapshot, kept by the
/// syncer as it publishes them. While the committed tables hold exactly the snapshot (revision
/// `base`: nothing is committed while the checkpoint runs) and every published group went
/// through the view, a key's current version is its version here, or else in the tables.
pub(crate) struct CheckpointView {
    /// The snapshot's revision.
    pub base: u64,
    /// The revision of the last group published into the view.
    pub revision: u64,
    /// Each key changed since the snapshot: its published version, or `None` once deleted.
    pub changed: HashMap<String, Option<KeyValue>>,
}

impl CheckpointView {
    pub(crate) fn new(base: u64) -> Self {
        Self {
            base,
            revision: base,
            changed: HashMap::new(),
        }
    }

    /// Take in a group being published.
    pub(crate) fn publish(&mut self, events: &[Event], revision: u64) {
        for event in events {
            let version = match event.kind {
                EventKind::Put => Some(event.kv.clone()),
                EventKind::Delete => None,
            };
            self.changed.insert(event.kv.key.clone(), version);
        }
        self.revision = self.revision.max(revision);
    }
}
