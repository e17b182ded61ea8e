//! The housekeeper thread: periodic watch progress, the TTL sweeper and automatic compaction.
//!
//! It never writes to the database itself: expired keys and compaction points go through the
//! writer like any other write, so they get revisions, events and the same durability.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use ironplane_storage::StorageError;
use redb::{ReadableDatabase, ReadableTable};
use tokio::sync::oneshot;

use crate::engine::{EngineError, Shared, lock, now_ms};
use crate::read::snapshot;
use crate::schema::{
    Current, KV, LOG, LogEntry, META, META_COMPACTED_THROUGH, META_RETAINED_BYTES, TTL, rev_i64,
    split_ttl_key, ttl_key,
};
use crate::writer::{Command, Op, Outcome, WriteRequest};

/// The most expired keys one sweep deletes.
const SWEEP_BATCH: usize = 1000;
/// The most log entries one byte-bound scan looks at.
const BYTE_SCAN_LIMIT: usize = 1_000_000;

/// Run until the store shuts down.
pub(crate) fn run(shared: Arc<Shared>, writer: Sender<Command>) {
    let options = shared.options.clone();
    let progress_tick = (options.progress_interval / 2).max(Duration::from_millis(10));
    let mut next_progress = Instant::now() + progress_tick;
    let mut next_compaction = Instant::now() + options.compaction_check_interval;
    loop {
        let now = Instant::now();
        let ttl_due = shared.ttl_due.load(Ordering::Acquire);
        let ttl_wait =
            Duration::from_millis(ttl_due.saturating_sub(now_ms())).min(options.ttl_sweep_interval);
        let wait = ttl_wait
            .min(next_progress.saturating_duration_since(now))
            .min(next_compaction.saturating_duration_since(now));
        {
            let guard = lock(&shared.wake.0);
            if *guard {
                return;
            }
            let (guard, _) = shared
                .wake
                .1
                .wait_timeout(guard, wait)
                .unwrap_or_else(|p| p.into_inner());
            if *guard {
                return;
            }
        }
        let now = Instant::now();
        if now >= next_progress {
            shared.hub.tick_progress(options.progress_interval);
            next_progress = now + progress_tick;
        }
        if now_ms() >= shared.ttl_due.load(Ordering::Acquire)
            && let Err(err) = sweep(&shared, &writer)
        {
            tracing::warn!(error = %err, "TTL sweep failed");
            shared.ttl_due.store(now_ms() + 1000, Ordering::Release);
        }
        if now >= next_compaction {
            if let Err(err) = auto_compact(&shared, &writer) {
                tracing::warn!(error = %err, "automatic compaction failed");
            }
            next_compaction = Instant::now() + options.compaction_check_interval;
        }
    }
}

fn submit(
    writer: &Sender<Command>,
    op: Op,
) -> Result<oneshot::Receiver<Result<Outcome, StorageError>>, StorageError> {
    let (reply, rx) = oneshot::channel();
    writer
        .send(Command::Write(WriteRequest { op, reply }))
        .map_err(|_| StorageError::Closed)?;
    Ok(rx)
}

/// Delete the keys whose TTL has passed, then note when the next one is due.
fn sweep(shared: &Shared, writer: &Sender<Command>) -> Result<(), StorageError> {
    let db = shared.db()?;
    // The expiry index of the latest writes may still be in the writer's open transaction.
    shared.caught_up_blocking()?;
    let now = now_ms();
    let mut expired = Vec::new();
    {
        let txn = db.begin_read().map_err(EngineError::from)?;
        let ttl = txn.open_table(TTL).map_err(EngineError::from)?;
        let kv = txn.open_table(KV).map_err(EngineError::from)?;
        let end = ttl_key(now.saturating_add(1), b"");
        for entry in ttl
            .range(..end.as_slice())
            .map_err(EngineError::from)?
            .take(SWEEP_BATCH)
        {
            let (index_key, _) = entry.map_err(EngineError::from)?;
            let index_key = index_key.value();
            let (_, key) = split_ttl_key(index_key).map_err(EngineError::from)?;
            let Ok(key) = std::str::from_utf8(key) else {
                continue;
            };
            if let Some(record) = kv.get(key.as_bytes()).map_err(EngineError::from)? {
                let current = Current::decode(record.value()).map_err(EngineError::from)?;
                expired.push((key.to_owned(), current.mod_revision));
            }
        }
    }
    let mut replies = Vec::with_capacity(expired.len());
    for (key, expected) in expired {
        replies.push(submit(writer, Op::Expire { key, expected })?);
    }
    for reply in replies {
        match reply.blocking_recv() {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "TTL delete failed"),
            Err(_) => return Err(StorageError::Closed),
        }
    }
    // When is the next key due? (Once the deletes above are in the tables.)
    shared.caught_up_blocking()?;
    let txn = db.begin_read().map_err(EngineError::from)?;
    let ttl = txn.open_table(TTL).map_err(EngineError::from)?;
    let next = match ttl.first().map_err(EngineError::from)? {
        Some((index_key, _)) => {
            split_ttl_key(index_key.value())
                .map_err(EngineError::from)?
                .0
        }
        None => u64::MAX,
    };
    // Never spin: a key that could not be deleted is looked at again a little later.
    let next = next.max(now_ms() + 20);
    // A write that raced with this read lowered `ttl_due` already; keep the earlier one.
    let _ = shared
        .ttl_due
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |due| {
            (due <= now).then_some(next)
        });
    Ok(())
}

/// Pick a compaction point from the time window and the byte bound, and ask the writer for it.
fn auto_compact(shared: &Shared, writer: &Sender<Command>) -> Result<(), StorageError> {
    let options = &shared.options;
    if options.history_window.is_none() && options.history_max_bytes.is_none() {
        return Ok(());
    }
    let db = shared.db()?;
    let txn = db.begin_read().map_err(EngineError::from)?;
    let snap = snapshot(&txn)?;
    let meta = txn.open_table(META).map_err(EngineError::from)?;
    let meta_get = |name: &str| -> Result<u64, StorageError> {
        Ok(meta
            .get(name)
            .map_err(EngineError::from)?
            .map(|v| v.value())
            .unwrap_or(0))
    };
    let compacted_through = meta_get(META_COMPACTED_THROUGH)?;
    let retained = meta_get(META_RETAINED_BYTES)?;
    let log = txn.open_table(LOG).map_err(EngineError::from)?;
    let mut target = snap.compact;
    if snap.revision <= snap.compact {
        return Ok(());
    }
    if let Some(window) = options.history_window {
        let cutoff = now_ms().saturating_sub(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
        let commit_ms = |rev: u64| -> Result<u64, StorageError> {
            match log.get(rev).map_err(EngineError::from)? {
                Some(g) => Ok(LogEntry::decode_commit_ms(g.value()).map_err(EngineError::from)?),
                None => Err(StorageError::internal(format!(
                    "revision log is missing revision {rev}"
                ))),
            }
        };
        // The newest revision committed at or before the cutoff, by binary search over the
        // revisions still kept (commit times never decrease along the log, save for clock steps).
        // They start at the first one logged: a store's first revision is not a change.
        let first_kept = log
            .range(snap.compact + 1..=snap.revision)
            .map_err(EngineError::from)?
            .next()
            .transpose()
            .map_err(EngineError::from)?
            .map(|(rev, _)| rev.value());
        let (mut lo, mut hi) = (first_kept.unwrap_or(snap.revision), snap.revision);
        if first_kept.is_some() && commit_ms(lo)? <= cutoff {
            while lo < hi {
                let mid = lo + (hi - lo).div_ceil(2);
                if commit_ms(mid)? <= cutoff {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            target = target.max(lo);
        }
    }
    if let Some(max_bytes) = options.history_max_bytes
        && retained > max_bytes
        && compacted_through >= snap.compact
    {
        // Free enough to get back to 90% of the bound.
        let need = retained - max_bytes / 10 * 9;
        let mut freed = 0u64;
        let mut rev = snap.compact;
        let range = log
            .range(snap.compact + 1..=snap.revision)
            .map_err(EngineError::from)?;
        for entry in range.take(BYTE_SCAN_LIMIT) {
            let (r, record) = entry.map_err(EngineError::from)?;
            let entry = LogEntry::decode(record.value()).map_err(EngineError::from)?;
            freed += record.value().len() as u64 + entry.prev_bytes;
            rev = r.value();
            if freed >= need {
                break;
            }
        }
        target = target.max(rev);
    }
    drop(log);
    drop(meta);
    drop(txn);
    // Never compact the newest revision: reads and watches pinned at the current revision (a
    // paginated list, a watch cache starting up on an idle store) must keep working, as on etcd,
    // whose compaction point stays readable.
    target = target.min(snap.revision.saturating_sub(1));
    if target > snap.compact {
        tracing::debug!(revision = target, "automatic compaction");
        let reply = submit(
            writer,
            Op::Compact {
                revision: rev_i64(target),
            },
        )?;
        match reply.blocking_recv() {
            Ok(result) => {
                result?;
            }
            Err(_) => return Err(StorageError::Closed),
        }
    }
    Ok(())
}
