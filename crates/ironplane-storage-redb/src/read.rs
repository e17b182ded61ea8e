//! Reads: get and list at the current or a past revision, count, and log replay for watchers.
//!
//! Every read runs in one redb read transaction, which is a consistent snapshot: the revision it
//! reports and the data it returns come from the same commit.

use std::cmp::Ordering;
use std::sync::Arc;

use ironplane_storage::{
    Event, EventKind, GetResponse, KeyValue, ListOptions, ListResponse, Revision, StorageError,
};
use redb::{Database, ReadTransaction, ReadableDatabase};

use crate::arena::{ChunkPool, Ticket, ValueArena, Values};
use crate::engine::EngineError;
use crate::schema::{
    Current, HISTORY, KV, LOG, LogEntry, LogKind, META, META_COMPACT, META_REVISION, Version,
    history_key, matches, prefix_end, rev_i64, split_history_key,
};
use crate::writer::tombstone;

/// The revision and compaction point of a snapshot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Snapshot {
    pub revision: u64,
    pub compact: u64,
}

pub(crate) fn snapshot(txn: &ReadTransaction) -> Result<Snapshot, EngineError> {
    let meta = txn.open_table(META)?;
    let get = |name: &str| -> Result<u64, EngineError> {
        Ok(meta.get(name)?.map(|v| v.value()).unwrap_or(0))
    };
    Ok(Snapshot {
        revision: get(META_REVISION)?,
        compact: get(META_COMPACT)?,
    })
}

/// Which revision a read asks for: `None` or 0 is the snapshot's own.
fn resolve(snap: Snapshot, requested: Option<Revision>) -> Result<u64, StorageError> {
    let requested = match requested {
        None => return Ok(snap.revision),
        Some(r) if r <= 0 => return Ok(snap.revision),
        Some(r) => r,
    };
    let at = u64::try_from(requested).unwrap_or(0);
    if at > snap.revision {
        return Err(StorageError::FutureRevision {
            requested,
            current: rev_i64(snap.revision),
        });
    }
    if at <= snap.compact {
        return Err(StorageError::Compacted {
            requested,
            compact_revision: rev_i64(snap.compact),
        });
    }
    Ok(at)
}

/// Read one key.
pub(crate) fn get(
    db: &Database,
    key: &str,
    revision: Option<Revision>,
) -> Result<GetResponse, StorageError> {
    let txn = db.begin_read().map_err(EngineError::from)?;
    let snap = snapshot(&txn)?;
    let at = resolve(snap, revision)?;
    let kv = get_at(&txn, key, at)?;
    Ok(GetResponse {
        kv,
        revision: rev_i64(at),
    })
}

fn get_at(txn: &ReadTransaction, key: &str, at: u64) -> Result<Option<KeyValue>, EngineError> {
    let kv_table = txn.open_table(KV)?;
    if let Some(guard) = kv_table.get(key.as_bytes())? {
        let current = Current::decode(guard.value())?;
        if current.mod_revision <= at {
            return Ok(Some(current.to_kv(key)));
        }
    }
    let history = txn.open_table(HISTORY)?;
    let low = history_key(key.as_bytes(), 0);
    let high = history_key(key.as_bytes(), at);
    let mut range = history.range(low.as_slice()..=high.as_slice())?;
    if let Some(entry) = range.next_back() {
        let (hkey, record) = entry?;
        let (_, rev) = split_history_key(hkey.value())?;
        let version = Version::decode(record.value())?;
        if version.superseded_at > at {
            return Ok(Some(version.to_kv(key, rev)));
        }
    }
    Ok(None)
}

/// Read a range of keys from one snapshot.
pub(crate) fn list(
    db: &Database,
    pool: Arc<ChunkPool>,
    prefix: &str,
    options: &ListOptions,
) -> Result<ListResponse, StorageError> {
    let start = match &options.start_key {
        Some(start) if !start.starts_with(prefix) => {
            return Err(StorageError::InvalidKey {
                key: start.chars().take(256).collect(),
                reason: "the start key does not begin with the listed prefix",
            });
        }
        Some(start) => range_start(start),
        None => prefix.as_bytes().to_vec(),
    };
    let start = start.as_slice();
    let limit = options.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
    let txn = db.begin_read().map_err(EngineError::from)?;
    let snap = snapshot(&txn)?;
    let at = resolve(snap, options.revision)?;
    let end = prefix_end(prefix.as_bytes());
    let mut found: Vec<(KeyValue, Ticket)> = Vec::new();
    let mut arena = ValueArena::new(pool);
    let more = if at == snap.revision {
        let table = txn.open_table(KV).map_err(EngineError::from)?;
        let mut range = match &end {
            Some(end) => table.range(start..end.as_slice()),
            None => table.range(start..),
        }
        .map_err(EngineError::from)?;
        for entry in range.by_ref() {
            let (key, record) = entry.map_err(EngineError::from)?;
            let key = key_str(key.value())?;
            let (current, value) =
                Current::decode_split(record.value()).map_err(EngineError::from)?;
            found.push((current.to_kv(key), arena.push(value)));
            if found.len() >= limit {
                break;
            }
        }
        found.len() >= limit && range.next().is_some()
    } else {
        let mut merged = PastRange::new(&txn, start, end.as_deref(), at, &mut arena)?;
        while let Some(item) = merged.next_entry()? {
            found.push(item);
            if found.len() >= limit {
                break;
            }
        }
        found.len() >= limit && merged.next_entry()?.is_some()
    };
    let values: Values = arena.finish();
    let kvs = found
        .into_iter()
        .map(|(mut kv, ticket)| {
            kv.value = values.get(ticket);
            kv
        })
        .collect();
    Ok(ListResponse {
        kvs,
        revision: rev_i64(at),
        more,
        remaining: None,
    })
}

/// Where a range that starts at `start` (inclusive) begins in the tables. Keys never contain a
/// NUL byte, so a start with one (such as [`key_after`](ironplane_storage::key_after)'s
/// `key ++ 0x00`) means "after the part before the NUL", which is `that part ++ 0x01`. This
/// matters for the history table, whose keys are `key ++ 0x00 ++ revision`: a raw `key ++ 0x00`
/// bound would take in the key's own history.
fn range_start(start: &str) -> Vec<u8> {
    let bytes = start.as_bytes();
    match bytes.iter().position(|b| *b == 0) {
        None => bytes.to_vec(),
        Some(nul) => {
            let mut out = bytes[..nul].to_vec();
            out.push(1);
            out
        }
    }
}

fn key_str(bytes: &[u8]) -> Result<&str, EngineError> {
    std::str::from_utf8(bytes).map_err(|_| EngineError::Corrupt(crate::schema::corrupt("key")))
}

type KvRange = redb::Range<'static, &'static [u8], &'static [u8]>;

/// The keys of a range as they were at a past revision: the current records that were already
/// valid then, merged in key order with the superseded versions that were valid then. A key has
/// at most one version valid at any revision, so the two never yield the same key.
struct PastRange<'a> {
    current: KvRange,
    history: KvRange,
    at: u64,
    next_current: Option<(KeyValue, Ticket)>,
    next_history: Option<(KeyValue, Ticket)>,
    arena: &'a mut ValueArena,
}

impl<'a> PastRange<'a> {
    fn new(
        txn: &ReadTransaction,
        start: &[u8],
        end: Option<&[u8]>,
        at: u64,
        arena: &'a mut ValueArena,
    ) -> Result<Self, EngineError> {
        let kv = txn.open_table(KV)?;
        let history = txn.open_table(HISTORY)?;
        let current = match end {
            Some(end) => kv.range(start..end)?,
            None => kv.range(start..)?,
        };
        let history = match end {
            Some(end) => history.range(start..end)?,
            None => history.range(start..)?,
        };
        Ok(Self {
            current,
            history,
            at,
            next_current: None,
            next_history: None,
            arena,
        })
    }

    fn fill_current(&mut self) -> Result<(), EngineError> {
        while self.next_current.is_none() {
            let Some(entry) = self.current.next() else {
                return Ok(());
            };
            let (key, record) = entry?;
            if Current::decode_mod_revision(record.value())? <= self.at {
                let key = key_str(key.value())?;
                let (current, value) = Current::decode_split(record.value())?;
                self.next_current = Some((current.to_kv(key), self.arena.push(value)));
            }
        }
        Ok(())
    }

    fn fill_history(&mut self) -> Result<(), EngineError> {
        while self.next_history.is_none() {
            let Some(entry) = self.history.next() else {
                return Ok(());
            };
            let (hkey, record) = entry?;
            let (key, rev) = split_history_key(hkey.value())?;
            if rev <= self.at && Version::decode_superseded_at(record.value())? > self.at {
                let key = key_str(key)?;
                let (version, value) = Version::decode_split(record.value())?;
                self.next_history = Some((version.to_kv(key, rev), self.arena.push(value)));
            }
        }
        Ok(())
    }

    /// The next key in order, with its value's ticket.
    fn next_entry(&mut self) -> Result<Option<(KeyValue, Ticket)>, StorageError> {
        self.fill_current()?;
        self.fill_history()?;
        let order = match (&self.next_current, &self.next_history) {
            (None, None) => return Ok(None),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((c, _)), Some((h, _))) => c.key.as_bytes().cmp(h.key.as_bytes()),
        };
        Ok(if order == Ordering::Greater {
            self.next_history.take()
        } else {
            self.next_current.take()
        })
    }
}

/// Count the keys under a prefix at the current revision.
pub(crate) fn count(db: &Database, prefix: &str) -> Result<u64, StorageError> {
    let txn = db.begin_read().map_err(EngineError::from)?;
    let table = txn.open_table(KV).map_err(EngineError::from)?;
    let end = prefix_end(prefix.as_bytes());
    let range = match &end {
        Some(end) => table.range(prefix.as_bytes()..end.as_slice()),
        None => table.range(prefix.as_bytes()..),
    }
    .map_err(EngineError::from)?;
    let mut n = 0u64;
    for entry in range {
        entry.map_err(EngineError::from)?;
        n += 1;
    }
    Ok(n)
}

/// A piece of the revision log, turned into the events a watcher wants.
pub(crate) struct ReplayChunk {
    pub events: Vec<Event>,
    /// The next revision to read.
    pub next: u64,
    /// Whether `next` is past the last committed revision (of the snapshot read).
    pub reached_end: bool,
}

/// Read up to `max_entries` log entries from revision `from` on, keeping those that match.
pub(crate) fn replay(
    db: &Database,
    from: u64,
    max_entries: usize,
    key: &str,
    prefix: bool,
) -> Result<ReplayChunk, StorageError> {
    let txn = db.begin_read().map_err(EngineError::from)?;
    let snap = snapshot(&txn)?;
    if from.saturating_sub(1) < snap.compact {
        return Err(StorageError::Compacted {
            requested: rev_i64(from.saturating_sub(1)),
            compact_revision: rev_i64(snap.compact),
        });
    }
    let log = txn.open_table(LOG).map_err(EngineError::from)?;
    let mut events = Vec::new();
    let mut next = from;
    if from <= snap.revision {
        let range = log.range(from..=snap.revision).map_err(EngineError::from)?;
        for entry in range.take(max_entries) {
            let (rev, record) = entry.map_err(EngineError::from)?;
            let rev = rev.value();
            if rev != next {
                return Err(StorageError::internal(format!(
                    "revision log has a gap: expected {next}, found {rev}"
                )));
            }
            next = rev + 1;
            let entry_key = key_str(LogEntry::key_of(record.value()).map_err(EngineError::from)?)?;
            if !matches(entry_key, key, prefix) {
                continue;
            }
            let entry = LogEntry::decode(record.value()).map_err(EngineError::from)?;
            events.push(event_at(&txn, &entry, rev)?);
        }
    }
    Ok(ReplayChunk {
        events,
        next,
        reached_end: next > snap.revision,
    })
}

/// Rebuild the event of one log entry.
pub(crate) fn event_at(
    txn: &ReadTransaction,
    entry: &LogEntry,
    rev: u64,
) -> Result<Event, StorageError> {
    let key = entry.key.as_str();
    let missing = |what: &str| {
        StorageError::internal(format!(
            "revision {rev} of {key}: the {what} version is missing"
        ))
    };
    let prev_kv = if entry.prev_mod != 0 {
        let history = txn.open_table(HISTORY).map_err(EngineError::from)?;
        let hkey = history_key(key.as_bytes(), entry.prev_mod);
        let record = history
            .get(hkey.as_slice())
            .map_err(EngineError::from)?
            .ok_or_else(|| missing("previous"))?;
        Some(
            Version::decode(record.value())
                .map_err(EngineError::from)?
                .to_kv(key, entry.prev_mod),
        )
    } else {
        None
    };
    let kv = match entry.kind {
        LogKind::Delete => tombstone(key, rev),
        LogKind::Put => {
            let kv_table = txn.open_table(KV).map_err(EngineError::from)?;
            let current = match kv_table.get(key.as_bytes()).map_err(EngineError::from)? {
                Some(g) => Some(Current::decode(g.value()).map_err(EngineError::from)?),
                None => None,
            };
            match current {
                Some(c) if c.mod_revision == rev => c.to_kv(key),
                _ => {
                    let history = txn.open_table(HISTORY).map_err(EngineError::from)?;
                    let hkey = history_key(key.as_bytes(), rev);
                    let record = history
                        .get(hkey.as_slice())
                        .map_err(EngineError::from)?
                        .ok_or_else(|| missing("written"))?;
                    Version::decode(record.value())
                        .map_err(EngineError::from)?
                        .to_kv(key, rev)
                }
            }
        }
    };
    Ok(Event {
        kind: match entry.kind {
            LogKind::Put => EventKind::Put,
            LogKind::Delete => EventKind::Delete,
        },
        kv,
        prev_kv,
    })
}
