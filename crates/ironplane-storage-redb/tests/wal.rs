//! The write-ahead log seen from outside: a crash between a group's log fsync and the next
//! checkpoint (simulated by copying the files of a live store: the redb file then holds only its
//! last durable commit), a torn last record, a damaged record in the middle, turning the log off,
//! and a clean close that leaves an empty log.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use ironplane_storage::testing::{put, read_events};
use ironplane_storage::{KeyValue, ListOptions, Storage, StorageError, WatchRequest};
use ironplane_storage_redb::{RedbStore, RedbStoreOptions};

fn db_path(dir: &Path) -> PathBuf {
    dir.join("store.redb")
}

fn wal_path(dir: &Path) -> PathBuf {
    dir.join("store.redb-wal")
}

/// Options under which nothing is checkpointed until close.
fn no_checkpoints(dir: &Path) -> RedbStoreOptions {
    RedbStoreOptions::new(db_path(dir))
        .cache_size_bytes(16 * 1024 * 1024)
        .wal_checkpoint_interval(Duration::from_secs(3600))
        .wal_checkpoint_bytes(u64::MAX)
        // No background compaction to race with the copies.
        .history_window(None)
        .history_max_bytes(None)
}

/// What a crash would leave on disk now: the files as they are, while the store stays open (the
/// redb file holds its last durable commit; its later commits live in memory and in the log).
fn crash_image(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    std::fs::copy(db_path(from), db_path(to.path())).unwrap();
    std::fs::copy(wal_path(from), wal_path(to.path())).unwrap();
    to
}

/// The revision of the last durable commit of a redb file, read with redb itself.
fn durable_revision(path: &Path) -> u64 {
    use redb::{ReadableDatabase, TableDefinition};
    const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    meta.get("revision")
        .unwrap()
        .map(|v| v.value())
        .unwrap_or(0)
}

/// Creates (some with a TTL), updates, deletes and a compaction; returns the state afterwards.
async fn write_a_history(store: &RedbStore) -> Vec<KeyValue> {
    let mut kvs = Vec::new();
    for i in 0..40 {
        let key = format!("/h/k{i:02}");
        let ttl = (i % 4 == 0).then_some(Duration::from_secs(3600));
        let kv = store
            .create(
                &key,
                Bytes::from(format!("v{i}-{}", "x".repeat(i * 50))),
                ttl,
            )
            .await
            .unwrap();
        kvs.push(kv);
    }
    for i in (0..40).step_by(3) {
        let kv = &kvs[i];
        // Renews the TTL of some, drops it from others.
        let ttl = (i % 2 == 0).then_some(Duration::from_secs(7200));
        kvs[i] = store
            .update(&kv.key, Bytes::from(format!("u{i}")), kv.mod_revision, ttl)
            .await
            .unwrap();
    }
    let middle = kvs[10].mod_revision;
    store.compact(middle).await.unwrap();
    for i in (1..40).step_by(7) {
        store
            .delete(&kvs[i].key, Some(kvs[i].mod_revision))
            .await
            .unwrap();
    }
    store.list("/h/", ListOptions::default()).await.unwrap().kvs
}

async fn events_after(store: &RedbStore, after: i64, n: usize) -> Vec<ironplane_storage::Event> {
    let mut watch = store
        .watch(WatchRequest {
            key: "/h/".into(),
            prefix: true,
            after,
            progress_notify: false,
        })
        .await
        .unwrap();
    let recorded = read_events(&mut watch, n).await;
    recorded.assert_guarantees();
    recorded.events().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_replays_what_the_last_checkpoint_missed() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(no_checkpoints(dir.path())).unwrap();
    let state = write_a_history(&store).await;
    let status = store.status().await.unwrap();
    let changes = usize::try_from(status.revision - status.compact_revision).unwrap();
    let events = events_after(&store, status.compact_revision, changes).await;

    let image = crash_image(dir.path());
    assert!(
        durable_revision(&db_path(image.path())) < u64::try_from(status.revision).unwrap(),
        "the redb file alone must lack the writes, or this test proves nothing"
    );
    let image2 = crash_image(dir.path());

    let recovered = RedbStore::open(no_checkpoints(image.path())).unwrap();
    let report = recovered.check_consistency().unwrap();
    assert!(report.is_consistent(), "{:#?}", report.problems);
    let again = recovered.status().await.unwrap();
    assert_eq!(again.revision, status.revision);
    assert_eq!(again.compact_revision, status.compact_revision);
    assert_eq!(
        recovered
            .list("/h/", ListOptions::default())
            .await
            .unwrap()
            .kvs,
        state
    );
    // The same history, event for event (values, previous values, revisions).
    assert_eq!(
        events_after(&recovered, status.compact_revision, changes).await,
        events
    );
    // Past reads, and the compaction point, survive.
    let past = recovered
        .get(&state[0].key, Some(status.compact_revision + 1))
        .await;
    assert!(past.is_ok(), "{past:?}");
    assert!(matches!(
        recovered.get(&state[0].key, Some(1)).await,
        Err(StorageError::Compacted { .. })
    ));
    // The recovered store goes on at the next revision.
    let next = put(&recovered, "/h/next", "n").await;
    assert_eq!(next.mod_revision, status.revision + 1);
    recovered.close();
    drop(recovered);

    // The recovery was made durable: the redb file alone now has everything, the log is empty.
    assert_eq!(
        durable_revision(&db_path(image.path())),
        u64::try_from(next.mod_revision).unwrap()
    );
    assert_eq!(
        std::fs::metadata(wal_path(image.path())).unwrap().len(),
        4096
    );

    // Opening without the log replays it too, then removes it.
    let without = RedbStore::open(no_checkpoints(image2.path()).wal(false)).unwrap();
    assert_eq!(
        without
            .list("/h/", ListOptions::default())
            .await
            .unwrap()
            .kvs,
        state
    );
    assert!(!wal_path(image2.path()).exists());
    let next = put(&without, "/h/next", "n").await;
    assert_eq!(next.mod_revision, status.revision + 1);
    without.close();
    drop(without);
    assert_eq!(
        durable_revision(&db_path(image2.path())),
        u64::try_from(next.mod_revision).unwrap()
    );
    store.close();
}

/// The offset of the last non-zero byte of the log: inside its last record (the file is zeros
/// beyond the records of its first pass).
fn last_record_byte(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    bytes.iter().rposition(|b| *b != 0).unwrap()
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_record_ends_the_log_and_a_damaged_middle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(no_checkpoints(dir.path())).unwrap();
    let state = write_a_history(&store).await;
    let before_last = store.status().await.unwrap().revision;
    // The last group: one create alone.
    let last = put(&store, "/h/last", "the last one").await;

    // A crash while the last record was written: its group was never acknowledged (the answer
    // waits for the fsync), and it is dropped; everything before it is there.
    let torn = crash_image(dir.path());
    flip(
        &wal_path(torn.path()),
        last_record_byte(&wal_path(torn.path())),
    );
    let recovered = RedbStore::open(no_checkpoints(torn.path())).unwrap();
    assert_eq!(recovered.status().await.unwrap().revision, before_last);
    assert_eq!(recovered.get("/h/last", None).await.unwrap().kv, None);
    assert_eq!(
        recovered
            .list("/h/", ListOptions::default())
            .await
            .unwrap()
            .kvs,
        state
    );
    let report = recovered.check_consistency().unwrap();
    assert!(report.is_consistent(), "{:#?}", report.problems);
    // The revision of the lost group is given again, to the next write.
    assert_eq!(
        put(&recovered, "/h/other", "o").await.mod_revision,
        last.mod_revision
    );
    recovered.close();

    // A damaged record followed by good ones: acknowledged writes would be lost, so the open
    // fails and says why, and leaves the files alone.
    let damaged = crash_image(dir.path());
    let wal = wal_path(damaged.path());
    flip(&wal, 4096 + 60);
    let copy = std::fs::read(&wal).unwrap();
    let err = RedbStore::open(no_checkpoints(damaged.path())).unwrap_err();
    assert!(
        matches!(&err, StorageError::Internal(_)) && err.to_string().contains("damaged"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&wal).unwrap(),
        copy,
        "the log is left for inspection"
    );
    store.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_keep_the_log_short_and_close_empties_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = RedbStoreOptions::new(db_path(dir.path()))
        .cache_size_bytes(16 * 1024 * 1024)
        .wal_checkpoint_interval(Duration::from_millis(20));
    let store = RedbStore::open(options.clone()).unwrap();
    let first = put(&store, "/c/first", "1").await;
    // A checkpoint follows within the interval even when no write comes: the redb file catches
    // up by itself.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let image = crash_image(dir.path());
    assert_eq!(
        durable_revision(&db_path(image.path())),
        u64::try_from(first.mod_revision).unwrap()
    );
    for i in 0..200 {
        put(&store, &format!("/c/{i}"), "v").await;
    }
    let status = store.status().await.unwrap();
    store.close();
    drop(store);
    assert_eq!(
        std::fs::metadata(wal_path(dir.path())).unwrap().len(),
        4096,
        "a clean close leaves only the header"
    );
    assert_eq!(
        durable_revision(&db_path(dir.path())),
        u64::try_from(status.revision).unwrap()
    );
    let store = RedbStore::open(options).unwrap();
    assert_eq!(store.status().await.unwrap().revision, status.revision);
    store.close();
}
