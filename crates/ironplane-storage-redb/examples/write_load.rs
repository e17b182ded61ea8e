//! A write load against the embedded store: `cargo run --release -p ironplane-storage-redb
//! --example write_load -- [writers] [writes] [value bytes]`. Prints creates per second, the
//! latency of one create (p50, p99, max) and how long the close took (its final checkpoint).
//!
//! `WAL=off` runs the store without its write-ahead log (every group a durable redb commit);
//! `CHECKPOINT_MS=n` sets the log's checkpoint interval.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ironplane_storage::Storage;
use ironplane_storage_redb::{RedbStore, RedbStoreOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let writers = args.next().transpose()?.unwrap_or(32);
    let writes = args.next().transpose()?.unwrap_or(20_000);
    let size = args.next().transpose()?.unwrap_or(1024);
    let dir = tempfile::tempdir()?;
    let mut options = RedbStoreOptions::new(dir.path().join("load.redb"));
    if let Ok(ms) = std::env::var("CHECKPOINT_MS") {
        options = options.wal_checkpoint_interval(std::time::Duration::from_millis(ms.parse()?));
    }
    if std::env::var("WAL").as_deref() == Ok("off") {
        options = options.wal(false);
    }
    let store = Arc::new(RedbStore::open(options)?);
    let value = Bytes::from(vec![b'v'; size]);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in (w..writes).step_by(writers) {
                let started = Instant::now();
                store
                    .create(&format!("/registry/load/{i:09}"), value.clone(), None)
                    .await?;
                latencies.push(started.elapsed());
            }
            Ok::<_, ironplane_storage::StorageError>(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(writes);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let closing = Instant::now();
    store.close();
    println!(
        "{writes} creates of {size} B with {writers} writers: {:.0}/s ({elapsed:?}); \
         latency p50 {:?} p99 {:?} max {:?}; close {:?}",
        writes as f64 / elapsed.as_secs_f64(),
        at(0.5),
        at(0.99),
        latencies.last().copied().unwrap_or_default(),
        closing.elapsed(),
    );
    Ok(())
}
