//! The syncer thread: makes each logged group durable (`fdatasync` of the write-ahead log), then
//! publishes it (revision, events) and answers its callers, while the writer thread goes on to
//! apply the next group.
//!
//! The writer appends records without waiting for earlier ones to be durable; one `fdatasync`
//! covers every record appended before it starts, so while one runs, the records appended behind
//! it wait for the next, which starts as soon as it returns. [`LogProgress`] says how far the log
//! is written and durable; the writer copies the durable point into each record, which is how
//! recovery tells a torn tail (no record beyond the damage was known durable, so none was
//! acknowledged) from damage to acknowledged records. Jobs run in the order the writer sends them,
//! so a group is published only after an `fdatasync` that covers its record (the writer sends
//! [`Job::Publish`] after the record's [`Job::Sync`]), and groups are published in revision
//! order.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};

use ironplane_storage::{Event, StorageError};
use tokio::sync::oneshot;

use crate::engine::{Shared, lock};
use crate::schema::rev_i64;
use crate::wal::WalError;
use crate::writer::Reply;

/// What the writer hands the syncer, in order.
pub(crate) enum Job {
    /// The log record with this `seq` was just appended: make it durable (unless an earlier
    /// `fdatasync` already did) and acknowledge.
    Sync(u64),
    /// An applied group: publish it and answer its callers (every `Sync` sent before it is done
    /// by then). Groups with nothing to log come only as this, keeping their place in the order.
    Publish(Settle),
}

/// One applied group on its way to its callers.
pub(crate) struct Settle {
    /// The log sequence number after the group.
    pub seq: u64,
    /// The revision after the group.
    pub revision: u64,
    /// The compaction point after the group.
    pub compact: u64,
    /// The expiry (unix ms) of every value the group wrote with a TTL.
    pub expiries: Vec<u64>,
    pub events: Vec<Event>,
    /// Each caller's channel and its answer.
    pub answers: Vec<(oneshot::Sender<Reply>, Reply)>,
}

/// Make a group visible to watchers and readers and answer its callers: the last step of a
/// write, whether the group was made durable by the syncer or by a durable redb commit.
pub(crate) fn publish(shared: &Shared, group: Settle) {
    // Into the checkpoint's view first: a reader that finds the view at the published revision
    // must find this group in it.
    if let Some(view) = lock(&shared.checkpoint_view).as_mut() {
        view.publish(&group.events, group.revision);
    }
    shared
        .revision
        .store(rev_i64(group.revision), Ordering::Release);
    shared
        .compact_revision
        .store(rev_i64(group.compact), Ordering::Release);
    shared.mark_durable(group.revision);
    shared.published_seq.store(group.seq, Ordering::Release);
    for expiry in group.expiries {
        shared.note_expiry(expiry);
    }
    if !group.events.is_empty() {
        shared.hub.publish(group.events);
    }
    for (reply, result) in group.answers {
        // A caller that gave up no longer listens; its write stands.
        let _ = reply.send(result);
    }
}

/// The syncer loop: runs until the writer drops its end of `jobs`. Each `Sync` is acknowledged
/// on `acks` (with the failure, if its `fdatasync` failed) as soon as it is done; the writer
/// looks at the acknowledgements for a failure before each append and waits for them only to
/// settle the log before a checkpoint. After a failure every later group is refused: it is
/// applied in redb but will never be durable.
pub(crate) fn run(
    shared: Arc<Shared>,
    log: File,
    progress: Arc<LogProgress>,
    jobs: Receiver<Job>,
    acks: Sender<Result<(), WalError>>,
) {
    let mut failed: Option<String> = None;
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Sync(seq) => sync(&shared, &log, &progress, seq, &acks, &mut failed),
            Job::Publish(group) => match &failed {
                None => publish(&shared, group),
                // The group is applied in redb but will never be durable: its fate (and that
                // of every group after it) is settled only by the next open's recovery.
                Some(message) => {
                    for (reply, _) in group.answers {
                        let _ = reply.send(Err(StorageError::internal(format!(
                            "group commit failed; whether its writes were made is known only \
                             once the store is reopened: {message}"
                        ))));
                    }
                }
            },
        }
    }
}

/// Make record `seq` durable and acknowledge: one `fdatasync` covers every record appended
/// before it starts, so a record appended meanwhile may find itself durable already. A failure
/// fails the store; every later sync is refused.
fn sync(
    shared: &Shared,
    log: &File,
    progress: &LogProgress,
    seq: u64,
    acks: &Sender<Result<(), WalError>>,
    failed: &mut Option<String>,
) {
    let path = || crate::wal::path_for(&shared.path).display().to_string();
    if let Some(message) = failed {
        let _ = acks.send(Err(WalError::Io {
            path: path(),
            source: std::io::Error::other(message.clone()),
        }));
        return;
    }
    if progress.durable() >= seq {
        let _ = acks.send(Ok(()));
        return;
    }
    // Read before the call: every record up to here is in the file, so the call covers it.
    let covered = progress.written.load(Ordering::Acquire);
    if let Err(err) = log.sync_data() {
        let error = WalError::Io {
            path: path(),
            source: err,
        };
        tracing::error!(error = %error, "write-ahead log fdatasync failed");
        let message = error.to_string();
        shared.mark_failed(&format!(
            "the store refuses writes until it is reopened: its write-ahead log failed: {message}"
        ));
        let _ = acks.send(Err(error));
        *failed = Some(message);
        return;
    }
    progress.durable.store(covered, Ordering::Release);
    let _ = acks.send(Ok(()));
}

/// How far the log is written and durable, by record `seq`: the writer notes each append, the
/// syncer each `fdatasync`. Both start at the last record the database holds.
pub(crate) struct LogProgress {
    written: AtomicU64,
    durable: AtomicU64,
}

impl LogProgress {
    pub(crate) fn new(applied_seq: u64) -> Self {
        Self {
            written: AtomicU64::new(applied_seq),
            durable: AtomicU64::new(applied_seq),
        }
    }

    /// Record `seq` is in the file (its `pwrite` returned).
    pub(crate) fn wrote(&self, seq: u64) {
        self.written.store(seq, Ordering::Release);
    }

    /// Every record up to this `seq` is durable.
    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }
}
