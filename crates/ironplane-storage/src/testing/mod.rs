//! The storage contract suite: the behaviours every backend must show, written once.
//!
//! A backend runs the whole suite with one macro invocation in one of its test files:
//!
//! ```ignore
//! async fn new_store() -> ironplane_storage::testing::TestStore {
//!     /* open an empty store of this backend, configured as TestStore's docs ask */
//! }
//! ironplane_storage::storage_contract_suite!(new_store);
//! ```
//!
//! That expands to one `#[test]` per behaviour, each on a fresh store from the factory and a
//! two-worker tokio runtime. The behaviours follow upstream's `k8s.io/apiserver`
//! `pkg/storage/testing` (store and watcher tests), expressed against this crate's contract, plus
//! a concurrency test, watch resumption from every revision, a linearizability check and the six
//! watch guarantees of etcd's robustness tests ([`guarantees`]).
//!
//! Each behaviour is also a public `async fn(TestStore)` in [`store_tests`] or [`watch_tests`],
//! so a backend can call one directly while debugging.

// Test code: a failed expectation is a failed test, so unwrap and expect say what they mean here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod guarantees;
pub mod linearizability;
pub mod store_tests;
pub mod watch_tests;

use std::any::Any;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::{Event, KeyValue, Revision, Storage, StorageError, Watch, WatchMessage};

/// How long one behaviour may take before it is reported as hung.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the suite waits for something that should happen promptly (an event, a progress
/// notification, a TTL expiry).
pub const PROMPTLY: Duration = Duration::from_secs(10);

/// An empty store for one behaviour, with what the suite needs to know about it.
///
/// The factory must return a store of its own (no other test writes to it), configured so that:
/// - a watcher's queue holds [`watcher_queue`](Self::watcher_queue) messages (keep it small, at
///   most a few hundred: the slow-watcher test writes about twice as many changes one by one);
/// - watchers with `progress_notify` hear progress within a second of going idle;
/// - keys whose TTL has passed are deleted within about a second.
pub struct TestStore {
    store: Arc<dyn Storage>,
    /// How many messages a watcher's queue holds before the watcher is ended as too slow.
    pub watcher_queue: usize,
    _guard: Box<dyn Any + Send + Sync>,
}

impl TestStore {
    /// Wrap a store whose watchers queue `watcher_queue` messages at most.
    pub fn new(store: Arc<dyn Storage>, watcher_queue: usize) -> Self {
        Self {
            store,
            watcher_queue,
            _guard: Box::new(()),
        }
    }

    /// Keep `guard` (a temporary directory, a child process) alive as long as the store.
    pub fn with_guard(mut self, guard: impl Any + Send + Sync) -> Self {
        self._guard = Box::new(guard);
        self
    }

    /// The store, shared.
    pub fn shared(&self) -> Arc<dyn Storage> {
        self.store.clone()
    }
}

impl Deref for TestStore {
    type Target = dyn Storage;

    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

/// Run one behaviour: build a two-worker runtime, make a store with `factory`, run `test` on it
/// with [`TEST_TIMEOUT`]. The macro's tests call this.
pub fn run<F, FF, T, TF>(factory: F, test: T)
where
    F: FnOnce() -> FF,
    FF: Future<Output = TestStore>,
    T: FnOnce(TestStore) -> TF,
    TF: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build a tokio runtime");
    runtime.block_on(async move {
        let store = factory().await;
        tokio::time::timeout(TEST_TIMEOUT, test(store))
            .await
            .expect("the behaviour did not finish in time");
    });
}

/// Expand to one test per behaviour of the contract suite, each on a fresh store from `$factory`
/// (a path to an `async fn() -> TestStore`).
#[macro_export]
macro_rules! storage_contract_suite {
    ($factory:path) => {
        $crate::storage_contract_suite!(@tests $factory;
            store_tests::create,
            store_tests::create_existing_key,
            store_tests::create_with_ttl,
            store_tests::get,
            store_tests::update,
            store_tests::unconditional_delete,
            store_tests::conditional_delete,
            store_tests::delete_with_stale_precondition,
            store_tests::list_prefix,
            store_tests::list_at_revision,
            store_tests::list_limit,
            store_tests::list_continuation,
            store_tests::list_continuation_after_compaction,
            store_tests::list_paging_rare_matches,
            store_tests::count,
            store_tests::guaranteed_update,
            store_tests::guaranteed_update_with_conflict,
            store_tests::concurrent_cas_increments,
            store_tests::linearizable_history,
            store_tests::compact_and_status,
            store_tests::bad_input,
            watch_tests::watch_from_now,
            watch_tests::watch_from_an_empty_list,
            watch_tests::watch_from_revision,
            watch_tests::watch_prefix_boundary,
            watch_tests::watch_single_key,
            watch_tests::watch_delete_event,
            watch_tests::watch_delayed_delivery,
            watch_tests::watch_cancel,
            watch_tests::slow_watcher,
            watch_tests::watch_compacted,
            watch_tests::progress_request,
            watch_tests::progress_notify,
            watch_tests::watch_resume_every_revision,
            watch_tests::watch_guarantees_under_load,
        );
    };
    (@tests $factory:path; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::testing::run($factory, $crate::testing::$module::$name);
            }
        )*
    };
}

/// A random generator that can cross `.await` points in spawned tasks; its seed is printed so
/// that a failure can be replayed by hand.
pub fn rng() -> rand::rngs::StdRng {
    use rand::SeedableRng;
    let seed: u64 = rand::random();
    eprintln!("random seed: {seed}");
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// The value bytes of a string.
pub fn val(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Create `key` with `value`, failing the test on error.
pub async fn put(store: &dyn Storage, key: &str, value: &str) -> KeyValue {
    store
        .create(key, val(value), None)
        .await
        .unwrap_or_else(|err| panic!("create {key}: {err}"))
}

/// Replace `key`'s value whatever its revision, failing the test on error.
pub async fn overwrite(store: &dyn Storage, key: &str, value: &str) -> KeyValue {
    let current = store.get(key, None).await.unwrap().kv.expect("key exists");
    store
        .update(key, val(value), current.mod_revision, None)
        .await
        .unwrap_or_else(|err| panic!("update {key}: {err}"))
}

/// The store's current revision.
pub async fn current_revision(store: &dyn Storage) -> Revision {
    store.status().await.expect("status").revision
}

/// What a watch delivered, message by message.
#[derive(Debug, Default, Clone)]
pub struct Recorded {
    /// Every message, in order.
    pub messages: Vec<WatchMessage>,
}

impl Recorded {
    /// The events of every message, in order.
    pub fn events(&self) -> Vec<Event> {
        self.messages
            .iter()
            .flat_map(|m| match m {
                WatchMessage::Events(events) => events.clone(),
                WatchMessage::Progress(_) => Vec::new(),
            })
            .collect()
    }

    /// The highest progress revision announced.
    pub fn last_progress(&self) -> Option<Revision> {
        self.messages
            .iter()
            .filter_map(|m| match m {
                WatchMessage::Progress(r) => Some(*r),
                WatchMessage::Events(_) => None,
            })
            .max()
    }

    /// Check the guarantees that one recording shows on its own: ordered, unique, atomic and
    /// bookmarkable.
    pub fn assert_guarantees(&self) {
        let events = self.events();
        guarantees::assert_ordered(&events);
        guarantees::assert_unique(&events);
        guarantees::assert_atomic(&self.messages);
        guarantees::assert_bookmarkable(&self.messages);
    }
}

/// Read `watch` until it has delivered `n` events (or more), failing after [`PROMPTLY`].
pub async fn read_events(watch: &mut Watch, n: usize) -> Recorded {
    let mut recorded = Recorded::default();
    while recorded.events().len() < n {
        let message = next_message(watch).await;
        recorded.messages.push(message);
    }
    recorded
}

/// Read `watch` until a progress message at or above `revision` arrives, asking for progress
/// now and then.
pub async fn read_until_progress(watch: &mut Watch, revision: Revision) -> Recorded {
    let mut recorded = Recorded::default();
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    watch.request_progress();
    loop {
        let message = match tokio::time::timeout_at(deadline, watch.next()).await {
            Err(_) => panic!("no progress at {revision} in time; got {recorded:?}"),
            Ok(None) => panic!("the watch ended before progress at {revision}"),
            Ok(Some(Err(err))) => panic!("the watch failed: {err}"),
            Ok(Some(Ok(message))) => message,
        };
        let done = matches!(message, WatchMessage::Progress(r) if r >= revision);
        if matches!(message, WatchMessage::Progress(_)) && !done {
            watch.request_progress();
        }
        recorded.messages.push(message);
        if done {
            return recorded;
        }
    }
}

/// The next message, failing on error, end, or after [`PROMPTLY`].
pub async fn next_message(watch: &mut Watch) -> WatchMessage {
    match tokio::time::timeout(PROMPTLY, watch.next()).await {
        Err(_) => panic!("no watch message in time"),
        Ok(None) => panic!("the watch ended unexpectedly"),
        Ok(Some(Err(err))) => panic!("the watch failed: {err}"),
        Ok(Some(Ok(message))) => message,
    }
}

/// Assert that `watch` delivers no event within `wait` (progress messages are fine).
pub async fn assert_no_event(watch: &mut Watch, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, watch.next()).await {
            Err(_) => return,
            Ok(Some(Ok(WatchMessage::Progress(_)))) => {}
            Ok(other) => panic!("expected no event, got {other:?}"),
        }
    }
}

/// Whether `err` is `Compacted`.
pub fn is_compacted(err: &StorageError) -> bool {
    matches!(err, StorageError::Compacted { .. })
}
