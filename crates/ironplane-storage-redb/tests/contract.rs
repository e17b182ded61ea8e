//! The storage contract suite, run against the embedded redb backend.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use ironplane_storage::testing::TestStore;
use ironplane_storage_redb::{RedbStore, RedbStoreOptions};

/// Watcher queue used by the suite: small, so that the slow-watcher test overflows it quickly.
const WATCHER_QUEUE: usize = 32;

/// A fresh store in its own temporary directory, with short intervals and a tiny event ring (so
/// that watch resumption exercises the on-disk replay as well as the ring), and the write-ahead
/// log at its defaults.
async fn new_store() -> TestStore {
    open(|options| options).await
}

async fn open(adjust: impl FnOnce(RedbStoreOptions) -> RedbStoreOptions) -> TestStore {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = RedbStoreOptions::new(dir.path().join("store.redb"))
        .watcher_queue(WATCHER_QUEUE)
        .progress_interval(Duration::from_millis(100))
        .ttl_sweep_interval(Duration::from_millis(100))
        .event_ring_capacity(8)
        .cache_size_bytes(16 * 1024 * 1024);
    let store = RedbStore::open(adjust(options)).expect("open the store");
    TestStore::new(Arc::new(store), WATCHER_QUEUE).with_guard(dir)
}

ironplane_storage::storage_contract_suite!(new_store);

/// The same suite with a checkpoint after nearly every group, so that checkpoints (durable
/// commits, the log starting over) interleave with every kind of write, read and watch.
mod frequent_checkpoints {
    use super::*;

    async fn new_store() -> TestStore {
        open(|options| {
            options
                .wal_checkpoint_interval(Duration::from_millis(1))
                .wal_checkpoint_bytes(16 * 1024)
        })
        .await
    }

    ironplane_storage::storage_contract_suite!(new_store);
}

/// The same suite without the write-ahead log: every group a durable redb commit.
mod without_wal {
    use super::*;

    async fn new_store() -> TestStore {
        open(|options| options.wal(false)).await
    }

    ironplane_storage::storage_contract_suite!(new_store);
}
