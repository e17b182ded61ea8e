//! How long opening a store of many objects takes: `cargo run --release -p
//! ironplane-storage-redb --example open_time -- [objects] [value bytes]`.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ironplane_storage::Storage;
use ironplane_storage_redb::{RedbStore, RedbStoreOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let objects = args.next().transpose()?.unwrap_or(100_000);
    let size = args.next().transpose()?.unwrap_or(1024);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("open.redb");
    let store = Arc::new(RedbStore::open(RedbStoreOptions::new(&path))?);
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
    store.close();
    drop(store);
    let size_on_disk = std::fs::metadata(&path)?.len();
    let started = Instant::now();
    let store = RedbStore::open(RedbStoreOptions::new(&path))?;
    let status = store.status().await?;
    println!(
        "reopened ({} MiB, revision {}) in {:?}",
        size_on_disk / (1024 * 1024),
        status.revision,
        started.elapsed()
    );
    Ok(())
}
