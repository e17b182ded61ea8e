//! The consistency check: walks every table and reports where they disagree.
//!
//! Used by the crash test after every reopen, and available to repair tools.

use std::collections::BTreeMap;

use ironplane_storage::{Revision, StorageError};
use redb::{Database, ReadableDatabase, ReadableTable};

use crate::engine::EngineError;
use crate::schema::{
    Current, HISTORY, KV, LOG, LogEntry, LogKind, META, META_COMPACT, META_COMPACTED_THROUGH,
    META_RETAINED_BYTES, META_REVISION, TTL, Version, history_key, rev_i64, split_history_key,
    split_ttl_key,
};

/// What [`RedbStore::check_consistency`](crate::RedbStore::check_consistency) found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsistencyReport {
    /// The current revision.
    pub revision: Revision,
    /// The compaction point.
    pub compact_revision: Revision,
    /// How many keys exist.
    pub keys: u64,
    /// How many superseded versions are kept.
    pub history_versions: u64,
    /// How many log entries are kept.
    pub log_entries: u64,
    /// Every disagreement found; empty for a healthy store.
    pub problems: Vec<String>,
}

impl ConsistencyReport {
    /// Whether no problem was found.
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

fn e<T>(r: Result<T, impl Into<EngineError>>) -> Result<T, StorageError> {
    r.map_err(|err| StorageError::from(err.into()))
}

/// Run every check in one read snapshot.
pub(crate) fn check(db: &Database) -> Result<ConsistencyReport, StorageError> {
    let txn = e(db.begin_read())?;
    let meta = e(txn.open_table(META))?;
    let meta_get = |name: &str| -> Result<u64, StorageError> {
        Ok(e(meta.get(name))?.map(|v| v.value()).unwrap_or(0))
    };
    let revision = meta_get(META_REVISION)?;
    let compact = meta_get(META_COMPACT)?;
    let compacted_through = meta_get(META_COMPACTED_THROUGH)?;
    let retained = meta_get(META_RETAINED_BYTES)?;
    let mut report = ConsistencyReport {
        revision: rev_i64(revision),
        compact_revision: rev_i64(compact),
        ..ConsistencyReport::default()
    };
    let problems = &mut report.problems;
    if compacted_through > compact || compact > revision {
        problems.push(format!(
            "counters out of order: compacted through {compacted_through}, compact {compact}, revision {revision}"
        ));
    }

    // The log: exactly the revisions (compacted_through, revision], each decodable; except that
    // a store starts at revision 1 without a change (stores of earlier builds started at 0, and
    // their first change took revision 1).
    let log = e(txn.open_table(LOG))?;
    let mut entries: BTreeMap<u64, LogEntry> = BTreeMap::new();
    let mut recomputed = 0u64;
    let first_logged = e(log.first())?.map(|(rev, _)| rev.value());
    let mut expected = compacted_through + 1;
    if compacted_through == 0 && first_logged != Some(1) {
        expected = 2;
    }
    for item in e(log.iter())? {
        let (rev, record) = e(item)?;
        let rev = rev.value();
        if rev != expected {
            problems.push(format!("log: expected revision {expected}, found {rev}"));
        }
        expected = rev + 1;
        recomputed += record.value().len() as u64;
        match LogEntry::decode(record.value()) {
            Ok(entry) => {
                entries.insert(rev, entry);
            }
            Err(err) => problems.push(format!("log {rev}: {err}")),
        }
    }
    if expected != revision + 1 {
        problems.push(format!(
            "log ends at {} but the revision is {revision}",
            expected - 1
        ));
    }
    report.log_entries = entries.len() as u64;

    // Current records.
    let kv = e(txn.open_table(KV))?;
    let mut expiries = BTreeMap::new();
    for item in e(kv.iter())? {
        let (key, record) = e(item)?;
        let key = String::from_utf8_lossy(key.value()).into_owned();
        report.keys += 1;
        let current = match Current::decode(record.value()) {
            Ok(current) => current,
            Err(err) => {
                problems.push(format!("kv {key}: {err}"));
                continue;
            }
        };
        if current.mod_revision > revision
            || current.create_revision > current.mod_revision
            || current.version == 0
        {
            problems.push(format!("kv {key}: bad revisions {current:?}"));
        }
        if current.mod_revision > compacted_through {
            match entries.get(&current.mod_revision) {
                Some(entry) if entry.key == key && entry.kind == LogKind::Put => {}
                other => problems.push(format!(
                    "kv {key} at {}: log says {other:?}",
                    current.mod_revision
                )),
            }
        }
        if current.expiry_ms != 0 {
            expiries.insert(key, current.expiry_ms);
        }
    }

    // Superseded versions.
    let history = e(txn.open_table(HISTORY))?;
    for item in e(history.iter())? {
        let (hkey, record) = e(item)?;
        report.history_versions += 1;
        recomputed += (hkey.value().len() + record.value().len()) as u64;
        let (key, rev) = match split_history_key(hkey.value()) {
            Ok((key, rev)) => (String::from_utf8_lossy(key).into_owned(), rev),
            Err(err) => {
                problems.push(format!("history: {err}"));
                continue;
            }
        };
        let superseded = match Version::decode(record.value()) {
            Ok(version) => version.superseded_at,
            Err(err) => {
                problems.push(format!("history {key}@{rev}: {err}"));
                continue;
            }
        };
        if superseded <= rev || superseded > revision {
            problems.push(format!("history {key}@{rev}: superseded at {superseded}"));
        }
        if superseded <= compacted_through {
            problems.push(format!(
                "history {key}@{rev}: superseded at {superseded}, which is compacted"
            ));
        } else {
            match entries.get(&superseded) {
                Some(entry) if entry.key == key && entry.prev_mod == rev => {}
                other => problems.push(format!(
                    "history {key}@{rev}: the superseding log entry is {other:?}"
                )),
            }
        }
    }

    // Every log entry's own state and previous state are readable.
    for (rev, entry) in &entries {
        let key = entry.key.as_bytes();
        if entry.kind == LogKind::Put {
            let in_kv = match e(kv.get(key))? {
                Some(g) => Current::decode_mod_revision(g.value()).ok() == Some(*rev),
                None => false,
            };
            if !in_kv && e(history.get(history_key(key, *rev).as_slice()))?.is_none() {
                problems.push(format!(
                    "log {rev}: the written version of {} is missing",
                    entry.key
                ));
            }
        }
        if entry.prev_mod != 0 {
            match e(history.get(history_key(key, entry.prev_mod).as_slice()))? {
                Some(g) if Version::decode_superseded_at(g.value()).ok() == Some(*rev) => {}
                _ => problems.push(format!(
                    "log {rev}: the previous version {} of {} is missing",
                    entry.prev_mod, entry.key
                )),
            }
        }
    }

    // The TTL index mirrors the expiries of current records.
    let ttl = e(txn.open_table(TTL))?;
    let mut indexed = BTreeMap::new();
    for item in e(ttl.iter())? {
        let (index_key, _) = e(item)?;
        match split_ttl_key(index_key.value()) {
            Ok((expiry, key)) => {
                indexed.insert(String::from_utf8_lossy(key).into_owned(), expiry);
            }
            Err(err) => problems.push(format!("ttl: {err}")),
        }
    }
    if indexed != expiries {
        problems.push(format!(
            "ttl index has {} entries, current records {} expiries, or they differ",
            indexed.len(),
            expiries.len()
        ));
    }
    if recomputed != retained {
        problems.push(format!(
            "retained bytes: counter {retained}, recomputed {recomputed}"
        ));
    }
    Ok(report)
}
