//! A write load against the embedded store: `cargo run --release -p ironplane-storage-redb
//! --example write_load -- [writers] [writes] [value bytes]`. Prints creates per second.

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
    let store = Arc::new(RedbStore::open(RedbStoreOptions::new(
        dir.path().join("load.redb"),
    ))?);
    let value = Bytes::from(vec![b'v'; size]);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..writes).step_by(writers) {
                store
                    .create(&format!("/registry/load/{i:09}"), value.clone(), None)
                    .await?;
            }
            Ok::<_, ironplane_storage::StorageError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = start.elapsed();
    println!(
        "{writes} creates of {size} B with {writers} writers: {:.0}/s ({elapsed:?})",
        writes as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
