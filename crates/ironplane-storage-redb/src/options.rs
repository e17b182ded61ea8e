//! How to open a store: the file, the history it keeps, and the limits on watchers and batches.

use std::path::PathBuf;
use std::time::Duration;

/// Options for [`RedbStore::open`](crate::RedbStore::open). Start from [`RedbStoreOptions::new`]
/// and change the fields you care about; the defaults suit an API server.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedbStoreOptions {
    /// The database file. It is created if missing; its directory must exist.
    pub path: PathBuf,
    /// Keep at least this much history (by commit time) for past reads and watch resumption;
    /// older history is compacted in the background. `None` turns time-based compaction off.
    /// Default: 5 minutes, etcd's compaction interval in Kubernetes.
    pub history_window: Option<Duration>,
    /// Compact sooner when the bytes kept only for history (superseded versions and log entries)
    /// exceed this. `None` turns the bound off. Default: 512 MiB.
    pub history_max_bytes: Option<u64>,
    /// How often the background compactor looks at the window and the byte bound. Default: 5 s.
    pub compaction_check_interval: Duration,
    /// How many log entries one compaction step removes when writes are waiting; idle steps take
    /// eight times as many. Default: 256.
    pub compaction_batch: usize,
    /// How long a watcher with `progress_notify` may stay idle before it is told the current
    /// revision. Default: 1 s.
    pub progress_interval: Duration,
    /// How often expired keys are looked for, at most (a write with a shorter TTL wakes the
    /// sweeper earlier). Default: 1 s.
    pub ttl_sweep_interval: Duration,
    /// How many messages may wait for one watcher; a watcher with a full queue is ended with
    /// `WatcherTooSlow`. One message carries the matching events of one group commit.
    /// Default: 1024.
    pub watcher_queue: usize,
    /// How many recent events are kept in memory for watchers that start slightly in the past;
    /// older starts replay the on-disk log. Default: 16384.
    pub event_ring_capacity: usize,
    /// A byte bound on the same in-memory ring. Default: 64 MiB.
    pub event_ring_max_bytes: usize,
    /// The most writes one group commit takes. Default: 4096.
    pub max_batch_ops: usize,
    /// The most value bytes one group commit takes (a single larger write still goes alone).
    /// Default: 32 MiB.
    pub max_batch_bytes: usize,
    /// redb's page cache. Default: 256 MiB.
    pub cache_size_bytes: usize,
    /// redb's quick-repair mode: every durable commit also saves the allocator state (and commits
    /// in two phases), so that reopening after a crash needs no scan of the whole file. With the
    /// write-ahead log only checkpoints are durable commits, so it costs a second fsync per
    /// checkpoint; without the log, a second fsync per group commit. Default: off (a clean close
    /// never needs the scan).
    pub quick_repair: bool,
    /// Make groups durable through a write-ahead log (`<path>-wal`): one sequential append and
    /// one `fdatasync` per group, with the redb file made durable only at checkpoints. Off, every
    /// group is a durable redb commit (several scattered page writes and an fsync: slower, but no
    /// second file). Either way a log left by an earlier run is replayed at open. Default: on.
    pub wal: bool,
    /// The longest time between checkpoints while writes come in: a durable redb commit that
    /// takes in every logged group, after which the log starts over. It bounds the log (and so
    /// the replay after a crash) in time. A checkpoint holds writes up while it writes out the
    /// pages changed since the last one, scattered over the file; pages changed again before the
    /// next checkpoint are written once, so a longer interval pauses writes for less time in all
    /// (on a 2-core VM at full speed with 1 KiB creates: about 28 ms every 100 ms, or 75 ms every
    /// second) but for longer at a time. Default: 1 s.
    pub wal_checkpoint_interval: Duration,
    /// Checkpoint sooner once the log holds this many bytes since the last checkpoint; it bounds
    /// the log file and the replay in size. Default: 16 MiB.
    pub wal_checkpoint_bytes: u64,
}

impl RedbStoreOptions {
    /// The defaults, for the database file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            history_window: Some(Duration::from_secs(300)),
            history_max_bytes: Some(512 * 1024 * 1024),
            compaction_check_interval: Duration::from_secs(5),
            compaction_batch: 256,
            progress_interval: Duration::from_secs(1),
            ttl_sweep_interval: Duration::from_secs(1),
            watcher_queue: 1024,
            event_ring_capacity: 16384,
            event_ring_max_bytes: 64 * 1024 * 1024,
            max_batch_ops: 4096,
            max_batch_bytes: 32 * 1024 * 1024,
            cache_size_bytes: 256 * 1024 * 1024,
            quick_repair: false,
            wal: true,
            wal_checkpoint_interval: Duration::from_secs(1),
            wal_checkpoint_bytes: 16 * 1024 * 1024,
        }
    }

    /// Set [`history_window`](Self::history_window).
    pub fn history_window(mut self, window: Option<Duration>) -> Self {
        self.history_window = window;
        self
    }

    /// Set [`history_max_bytes`](Self::history_max_bytes).
    pub fn history_max_bytes(mut self, bytes: Option<u64>) -> Self {
        self.history_max_bytes = bytes;
        self
    }

    /// Set [`compaction_check_interval`](Self::compaction_check_interval).
    pub fn compaction_check_interval(mut self, interval: Duration) -> Self {
        self.compaction_check_interval = interval;
        self
    }

    /// Set [`progress_interval`](Self::progress_interval).
    pub fn progress_interval(mut self, interval: Duration) -> Self {
        self.progress_interval = interval;
        self
    }

    /// Set [`ttl_sweep_interval`](Self::ttl_sweep_interval).
    pub fn ttl_sweep_interval(mut self, interval: Duration) -> Self {
        self.ttl_sweep_interval = interval;
        self
    }

    /// Set [`watcher_queue`](Self::watcher_queue).
    pub fn watcher_queue(mut self, messages: usize) -> Self {
        self.watcher_queue = messages;
        self
    }

    /// Set [`event_ring_capacity`](Self::event_ring_capacity).
    pub fn event_ring_capacity(mut self, events: usize) -> Self {
        self.event_ring_capacity = events;
        self
    }

    /// Set [`cache_size_bytes`](Self::cache_size_bytes).
    pub fn cache_size_bytes(mut self, bytes: usize) -> Self {
        self.cache_size_bytes = bytes;
        self
    }

    /// Set [`quick_repair`](Self::quick_repair).
    pub fn quick_repair(mut self, enabled: bool) -> Self {
        self.quick_repair = enabled;
        self
    }

    /// Set [`wal`](Self::wal).
    pub fn wal(mut self, enabled: bool) -> Self {
        self.wal = enabled;
        self
    }

    /// Set [`wal_checkpoint_interval`](Self::wal_checkpoint_interval).
    pub fn wal_checkpoint_interval(mut self, interval: Duration) -> Self {
        self.wal_checkpoint_interval = interval;
        self
    }

    /// Set [`wal_checkpoint_bytes`](Self::wal_checkpoint_bytes).
    pub fn wal_checkpoint_bytes(mut self, bytes: u64) -> Self {
        self.wal_checkpoint_bytes = bytes;
        self
    }
}
