//! How long opening a store of many objects takes, after a clean close and after a crash:
//! `cargo run --release -p ironplane-storage-redb --example open_time -- [objects] [value bytes]`.
//!
//! The crash is simulated by copying the files of the live store (its redb file then holds only
//! the last checkpoint): with checkpoints only by bytes, the log holds up to
//! `wal_checkpoint_bytes` (16 MiB) of writes, the most a crash can leave to replay. Set
//! `QUICK_REPAIR=1` for redb's quick-repair mode (durable commits save the allocator state, so the
//! reopen after a crash need not rebuild it), and `WAL=off` to run without the write-ahead log.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ironplane_storage::Storage;
use ironplane_storage_redb::{RedbStore, RedbStoreOptions};

fn options(path: &Path) -> RedbStoreOptions {
    RedbStoreOptions::new(path)
        .quick_repair(std::env::var_os("QUICK_REPAIR").is_some())
        .wal_checkpoint_interval(Duration::from_secs(3600))
        .wal(std::env::var("WAL").as_deref() != Ok("off"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let objects = args.next().transpose()?.unwrap_or(100_000);
    let size = args.next().transpose()?.unwrap_or(1024);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("open.redb");
    let store = Arc::new(RedbStore::open(options(&path))?);
    let value = Bytes::from(vec![b'v'; size]);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..256 {
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..objects).step_by(256) {
                store
                    .create(&format!("/registry/pods/ns/{i:07}"), value.clone(), None)
                    .await?;
            }
            Ok::<_, ironplane_storage::StorageError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    println!(
        "wrote {objects} objects of {size} B in {:?}",
        started.elapsed()
    );

    // A crash image: the files as they are while the store is open and idle.
    let crashed = tempfile::tempdir()?;
    let crashed_path = crashed.path().join("open.redb");
    std::fs::copy(&path, &crashed_path)?;
    let wal = |p: &Path| p.with_file_name("open.redb-wal");
    let log_bytes = std::fs::copy(wal(&path), wal(&crashed_path)).unwrap_or(0);
    store.close();
    drop(store);

    let size_on_disk = std::fs::metadata(&path)?.len();
    let started = Instant::now();
    let store = RedbStore::open(options(&path))?;
    let status = store.status().await?;
    println!(
        "reopened after a clean close ({} MiB, revision {}) in {:?}",
        size_on_disk / (1024 * 1024),
        status.revision,
        started.elapsed()
    );
    store.close();

    let started = Instant::now();
    let store = RedbStore::open(options(&crashed_path))?;
    let elapsed = started.elapsed();
    let recovered = store.status().await?;
    println!(
        "reopened after a crash (log file {} MiB, revision {}) in {elapsed:?}",
        log_bytes / (1024 * 1024),
        recovered.revision,
    );
    if recovered.revision != status.revision {
        return Err(format!(
            "the crash image recovered revision {}, not {}",
            recovered.revision, status.revision
        )
        .into());
    }
    Ok(())
}
