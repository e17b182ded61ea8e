//! The storage contract suite, run unchanged against etcd: each behaviour gets its own etcd
//! process on free loopback ports (revisions and compaction are global to an etcd, so behaviours
//! cannot share one).

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(not(etcd_missing))]
mod suite {
    use std::sync::Arc;
    use std::time::Duration;

    use ironplane_storage::testing::TestStore;
    use ironplane_storage_etcd::testing::{EtcdCluster, require_etcd};
    use ironplane_storage_etcd::{EtcdOptions, EtcdStore, KeyMap};

    /// Watcher queue used by the suite: small, so that the slow-watcher test overflows it quickly.
    const WATCHER_QUEUE: usize = 32;

    /// A store on a fresh etcd. Keys are stored under `/suite` (the suite's keys have no root), so
    /// the key translation is exercised too; a tiny event ring makes watches that start in the
    /// past replay etcd's history as well as the ring.
    async fn new_store() -> TestStore {
        require_etcd().expect("etcd is installed (this file is compiled only when it is)");
        let etcd = EtcdCluster::start();
        let options = EtcdOptions::new(etcd.endpoints())
            .keys(KeyMap::new("", "/suite"))
            .watcher_queue(WATCHER_QUEUE)
            .progress_interval(Duration::from_millis(100))
            .event_ring_capacity(8);
        let store = EtcdStore::connect(options).await.expect("connect to etcd");
        TestStore::new(Arc::new(store), WATCHER_QUEUE).with_guard(etcd)
    }

    ironplane_storage::storage_contract_suite!(new_store);
}

/// Where etcd is not installed (and not in CI), the suite is not compiled in; this says so.
#[cfg(etcd_missing)]
#[test]
fn contract_suite() {
    assert!(ironplane_storage_etcd::testing::require_etcd().is_none());
}
