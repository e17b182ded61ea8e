//! Criterion benchmarks of the embedded store: durable creates under 32 concurrent writers, a range
//! list of 10,000 values, and the fan-out of one event to 1,000 prefix watchers.
//!
//! Run with `cargo bench -p ironplane-storage-redb --bench store`; docs/PERFORMANCE.md has the
//! figures and how they were taken.

// Benchmark code: a failure aborts the run, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ironplane_storage::{ListOptions, Storage, WatchMessage, WatchRequest};
use ironplane_storage_redb::{RedbStore, RedbStoreOptions};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

const WRITERS: u64 = 32;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn open(dir: &tempfile::TempDir) -> Arc<RedbStore> {
    let options = RedbStoreOptions::new(dir.path().join("bench.redb"));
    Arc::new(RedbStore::open(options).expect("open the store"))
}

fn value_1kib() -> Bytes {
    Bytes::from(vec![b'v'; 1024])
}

/// Durable creates of 1 KiB values from 32 concurrent writers. One iteration is one create.
fn durable_create(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let next = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group("durable_create_1KiB");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(1));
    group.bench_function("32_writers", |b| {
        b.iter_custom(|iters| {
            let per_writer = iters.div_ceil(WRITERS);
            rt.block_on(async {
                let start = Instant::now();
                let mut tasks = Vec::new();
                for _ in 0..WRITERS {
                    let store = store.clone();
                    let next = next.clone();
                    tasks.push(tokio::spawn(async move {
                        for _ in 0..per_writer {
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            let key = format!("/registry/bench/create/{n:012}");
                            store
                                .create(&key, value_1kib(), None)
                                .await
                                .expect("create");
                        }
                    }));
                }
                for task in tasks {
                    task.await.expect("writer");
                }
                // Scale to the iterations asked for (the last writer round may do a few more).
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per_writer * WRITERS) as f64)
            })
        })
    });
    group.finish();
}

/// A list of a prefix holding 10,000 values of 1 KiB, at the current revision.
fn range_list(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in (w..10_000).step_by(WRITERS as usize) {
                    let key = format!("/registry/bench/list/{i:05}");
                    store
                        .create(&key, value_1kib(), None)
                        .await
                        .expect("create");
                }
            }));
        }
        for task in tasks {
            task.await.expect("writer");
        }
        // Something outside the prefix on both sides.
        store
            .create("/registry/bench/lisa", value_1kib(), None)
            .await
            .expect("create");
        store
            .create("/registry/bench/lisu", value_1kib(), None)
            .await
            .expect("create");
    });
    let mut group = c.benchmark_group("range_list");
    group.sample_size(50);
    group.bench_function("10000_x_1KiB", |b| {
        b.iter(|| {
            let resp = rt
                .block_on(store.list("/registry/bench/list/", ListOptions::default()))
                .expect("list");
            assert_eq!(resp.kvs.len(), 10_000);
            resp
        })
    });
    group.finish();
}

/// One write, delivered to 1,000 watchers of its prefix: the time from issuing the (durable)
/// write until the last watcher has the event.
fn watch_fanout(c: &mut Criterion) {
    const WATCHERS: usize = 1000;
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let delivered = Arc::new(AtomicUsize::new(0));
    let all_in = Arc::new(Notify::new());
    rt.block_on(async {
        for _ in 0..WATCHERS {
            let mut watch = store
                .watch(WatchRequest {
                    key: "/registry/bench/fanout/".into(),
                    prefix: true,
                    after: 0,
                    progress_notify: false,
                })
                .await
                .expect("watch");
            let delivered = delivered.clone();
            let all_in = all_in.clone();
            tokio::spawn(async move {
                while let Some(Ok(message)) = watch.next().await {
                    if let WatchMessage::Events(events) = message {
                        let n = delivered.fetch_add(events.len(), Ordering::AcqRel) + events.len();
                        if n.is_multiple_of(WATCHERS) {
                            all_in.notify_one();
                        }
                    }
                }
            });
        }
    });
    let mut group = c.benchmark_group("watch_fanout");
    group.sample_size(50);
    let counter = AtomicU64::new(0);
    group.bench_function("1_event_to_1000_prefix_watchers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let before = delivered.load(Ordering::Acquire);
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let start = Instant::now();
                    let key = format!("/registry/bench/fanout/{n}");
                    store
                        .create(&key, value_1kib(), None)
                        .await
                        .expect("create");
                    while delivered.load(Ordering::Acquire) < before + WATCHERS {
                        let _ = tokio::time::timeout(Duration::from_millis(50), all_in.notified())
                            .await;
                    }
                    total += start.elapsed();
                }
                total
            })
        })
    });
    group.finish();
}

criterion_group!(benches, durable_create, range_list, watch_fanout);
criterion_main!(benches);
