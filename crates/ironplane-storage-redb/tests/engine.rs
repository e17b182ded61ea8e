//! Behaviours of the embedded backend beyond the contract: persistence across reopen, startup
//! time, background compaction (by time and by bytes, in small steps), and a clean close.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ironplane_storage::testing::{put, read_events, read_until_progress};
use ironplane_storage::{ListOptions, Storage, StorageError, WatchRequest};
use ironplane_storage_redb::{RedbStore, RedbStoreOptions};

fn options(dir: &tempfile::TempDir) -> RedbStoreOptions {
    RedbStoreOptions::new(dir.path().join("store.redb")).cache_size_bytes(16 * 1024 * 1024)
}

fn assert_consistent(store: &RedbStore) -> ironplane_storage_redb::ConsistencyReport {
    let report = store.check_consistency().unwrap();
    assert!(report.is_consistent(), "{:#?}", report.problems);
    report
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_data_history_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(options(&dir)).unwrap();
    let a1 = put(&store, "/p/a", "a1").await;
    let a2 = store
        .update("/p/a", Bytes::from("a2"), a1.mod_revision, None)
        .await
        .unwrap();
    let b = put(&store, "/p/b", "b").await;
    let deleted = store.delete("/p/b", None).await.unwrap();
    let t = store
        .create("/p/t", Bytes::from("t"), Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_consistent(&store);
    store.close();
    assert!(matches!(
        store.get("/p/a", None).await,
        Err(StorageError::Closed)
    ));
    assert!(matches!(put_err(&store).await, StorageError::Closed));
    drop(store);

    let store = RedbStore::open(options(&dir)).unwrap();
    let report = assert_consistent(&store);
    assert_eq!(report.revision, t.mod_revision);
    assert_eq!(store.get("/p/a", None).await.unwrap().kv, Some(a2.clone()));
    assert_eq!(
        store.get("/p/a", Some(a1.mod_revision)).await.unwrap().kv,
        Some(a1.clone())
    );
    assert_eq!(
        store.get("/p/b", Some(b.mod_revision)).await.unwrap().kv,
        Some(b.clone())
    );
    assert_eq!(store.get("/p/b", None).await.unwrap().kv, None);
    // A watch from the first revision replays the log from disk (the ring is empty after a
    // restart), then goes live.
    let mut watch = store
        .watch(WatchRequest {
            key: "/p/".into(),
            prefix: true,
            after: a1.mod_revision,
            progress_notify: false,
        })
        .await
        .unwrap();
    let events = read_events(&mut watch, 4).await;
    events.assert_guarantees();
    let events = events.events();
    let revisions: Vec<_> = events.iter().map(|e| e.revision()).collect();
    assert_eq!(
        revisions,
        (a2.mod_revision..=t.mod_revision).collect::<Vec<_>>()
    );
    assert_eq!(events[0].prev_kv, Some(a1.clone()));
    assert_eq!(events[2].revision(), deleted.revision);
    assert_eq!(events[2].prev_kv, Some(b.clone()));
    let c = put(&store, "/p/c", "c").await;
    assert_eq!(c.mod_revision, t.mod_revision + 1, "revisions continue");
    assert_eq!(read_events(&mut watch, 1).await.events()[0].kv, c);
}

async fn put_err(store: &RedbStore) -> StorageError {
    store
        .create("/closed", Bytes::from("x"), None)
        .await
        .unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_store_of_100k_objects_is_fast() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(options(&dir)).unwrap());
    let value = Bytes::from(vec![b'v'; 100]);
    let mut tasks = Vec::new();
    const WRITERS: usize = 500;
    const OBJECTS: usize = 100_000;
    for w in 0..WRITERS {
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..OBJECTS).step_by(WRITERS) {
                store
                    .create(&format!("/registry/pods/ns/{i:06}"), value.clone(), None)
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let store = Arc::into_inner(store).unwrap();
    store.close();
    drop(store);
    let started = Instant::now();
    let store = RedbStore::open(options(&dir)).unwrap();
    let opened = started.elapsed();
    let status = store.status().await.unwrap();
    let first = store.get("/registry/pods/ns/000000", None).await.unwrap();
    let elapsed = started.elapsed();
    // A store starts at revision 1; each create took the next one.
    assert_eq!(status.revision, OBJECTS as i64 + 1);
    assert!(first.kv.is_some());
    eprintln!("opened a store of {OBJECTS} objects in {opened:?} (first read after {elapsed:?})");
    // Milliseconds in a release build; a debug build on a busy machine gets some slack.
    assert!(elapsed < Duration::from_secs(1), "startup took {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_by_time_window() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&dir)
        .history_window(Some(Duration::from_millis(300)))
        .compaction_check_interval(Duration::from_millis(50));
    options.compaction_batch = 4;
    let store = RedbStore::open(options).unwrap();
    let mut kv = put(&store, "/w/a", "0").await;
    let first = kv.clone();
    for i in 1..50 {
        kv = store
            .update("/w/a", Bytes::from(i.to_string()), kv.mod_revision, None)
            .await
            .unwrap();
    }
    let last = kv.mod_revision;
    // The newest revision itself stays readable (as on etcd, whose compaction point is readable).
    wait_for("compaction to the window", async || {
        store.status().await.unwrap().compact_revision >= last - 1
    })
    .await;
    assert!(matches!(
        store.get("/w/a", Some(first.mod_revision)).await,
        Err(StorageError::Compacted { .. })
    ));
    // Compaction proceeds in small steps; once done, only the newest revision's log entry and the
    // current version are left.
    wait_for("physical compaction", async || {
        store.check_consistency().unwrap().log_entries <= 1
    })
    .await;
    let report = assert_consistent(&store);
    // The one past version left is the newest event's previous value, which a watch resuming
    // just before it still needs.
    assert!(report.history_versions <= 1, "{report:?}");
    assert_eq!(store.get("/w/a", None).await.unwrap().kv, Some(kv.clone()));
    // A recent change stays readable in the past until the window passes.
    let newer = store
        .update("/w/a", Bytes::from("new"), kv.mod_revision, None)
        .await
        .unwrap();
    let newest = store
        .update("/w/a", Bytes::from("newest"), newer.mod_revision, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .get("/w/a", Some(newer.mod_revision))
            .await
            .unwrap()
            .kv,
        Some(newer)
    );
    assert!(store.status().await.unwrap().compact_revision < newest.mod_revision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_by_byte_bound() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(&dir)
        .history_window(None)
        .history_max_bytes(Some(64 * 1024))
        .compaction_check_interval(Duration::from_millis(50));
    let store = RedbStore::open(options).unwrap();
    let value = Bytes::from(vec![b'x'; 1024]);
    let mut kv = store.create("/b/a", value.clone(), None).await.unwrap();
    for _ in 0..300 {
        kv = store
            .update("/b/a", value.clone(), kv.mod_revision, None)
            .await
            .unwrap();
    }
    wait_for("compaction by bytes", async || {
        let report = store.check_consistency().unwrap();
        report.compact_revision > 0 && report.history_versions < 100
    })
    .await;
    assert_consistent(&store);
    let status = store.status().await.unwrap();
    assert!(
        status.compact_revision < kv.mod_revision,
        "recent history is kept"
    );
    assert_eq!(store.get("/b/a", None).await.unwrap().kv, Some(kv));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_compaction_interleaves_with_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&dir).history_window(None).history_max_bytes(None);
    options.compaction_batch = 8;
    let store = Arc::new(RedbStore::open(options).unwrap());
    for i in 0..20 {
        put(&*store, &format!("/m/{i:02}"), "0").await;
    }
    for round in 0..10 {
        for i in 0..20 {
            let key = format!("/m/{i:02}");
            let kv = store.get(&key, None).await.unwrap().kv.unwrap();
            store
                .update(&key, Bytes::from(round.to_string()), kv.mod_revision, None)
                .await
                .unwrap();
        }
    }
    let point = store.status().await.unwrap().revision - 20;
    store.compact(point).await.unwrap();
    // Writers keep going while compaction removes history in steps of 8 entries.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                put(&*store, &format!("/n/{i:02}"), "x").await;
            }
        })
    };
    let listed = store
        .list(
            "/m/",
            ListOptions {
                revision: Some(point + 1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.kvs.len(), 20);
    writer.await.unwrap();
    wait_for("physical compaction", async || {
        store.check_consistency().unwrap().log_entries <= 40
    })
    .await;
    let report = assert_consistent(&store);
    assert!(report.history_versions <= 20, "{report:?}");
    let mut watch = store
        .watch(WatchRequest {
            key: "/".into(),
            prefix: true,
            after: point,
            progress_notify: false,
        })
        .await
        .unwrap();
    let now = store.status().await.unwrap().revision;
    let recorded = read_until_progress(&mut watch, now).await;
    assert_eq!(recorded.events().len() as i64, now - point);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_finishes_queued_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(options(&dir)).unwrap());
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("/q/{i:03}");
            (
                key.clone(),
                store.create(&key, Bytes::from("x"), None).await,
            )
        }));
    }
    tokio::time::sleep(Duration::from_millis(2)).await;
    store.close();
    let mut written = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (key, Ok(_)) => written.push(key),
            (_, Err(StorageError::Closed)) => {}
            (key, Err(err)) => panic!("{key}: {err}"),
        }
    }
    drop(store);
    let store = RedbStore::open(options(&dir)).unwrap();
    assert_consistent(&store);
    for key in written {
        assert!(
            store.get(&key, None).await.unwrap().kv.is_some(),
            "{key} lost"
        );
    }
}

#[tokio::test]
async fn a_second_open_of_the_same_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _store = RedbStore::open(options(&dir)).unwrap();
    let err = RedbStore::open(options(&dir)).unwrap_err();
    assert!(matches!(err, StorageError::Unavailable(_)), "{err}");
}

/// Writers and readers go on while checkpoints write the tables: each write is validated against
/// the writes before it (a few keys per writer, so a key is written several times during one
/// checkpoint), a read after an acknowledged write sees it, compaction moves on meanwhile, and the
/// groups applied to a checkpoint's overlay reach the tables (consistent, and the same after a
/// reopen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_reads_go_on_while_a_checkpoint_runs() {
    const WRITERS: usize = 8;
    const KEYS: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let open = || RedbStore::open(options(&dir).wal_checkpoint_interval(Duration::from_millis(20)));
    let store = Arc::new(open().unwrap());
    // Keys nobody changes: a read during a checkpoint finds them in its snapshot.
    let mut unchanged = Vec::new();
    for i in 0..WRITERS {
        unchanged.push(put(&*store, &format!("/fixed/{i}"), &format!("fixed {i}")).await);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut tasks = Vec::new();
    for (writer, fixed) in unchanged.into_iter().enumerate() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Each writer owns its keys: (value, modification revision) of each, or none.
            let mut model: Vec<Option<(String, i64)>> = vec![None; KEYS];
            let mut step = 0usize;
            while (step < 400
                || store.stats().groups_during_checkpoints < 20
                || store.stats().checkpoints < 3)
                && Instant::now() < deadline
            {
                let k = step % KEYS;
                let key = format!("/overlay/{writer}/{k:03}");
                // A kilobyte per value, so that each checkpoint has pages to write.
                let value = format!("{writer}-{step}-{}", "v".repeat(1024));
                model[k] = match (&model[k], step % 5) {
                    (None, _) => {
                        let kv = store
                            .create(&key, Bytes::from(value.clone()), None)
                            .await
                            .unwrap();
                        Some((value, kv.mod_revision))
                    }
                    (Some((_, rev)), 4) => {
                        store.delete(&key, Some(*rev)).await.unwrap();
                        None
                    }
                    (Some((_, rev)), _) => {
                        let kv = store
                            .update(&key, Bytes::from(value.clone()), *rev, None)
                            .await
                            .unwrap();
                        Some((value, kv.mod_revision))
                    }
                };
                // A read waits for the checkpoint to end; most writes do not read.
                if step % 16 != 15 {
                    step += 1;
                    continue;
                }
                let read = store.get(&key, None).await.unwrap().kv;
                assert_eq!(
                    read.map(|kv| (
                        String::from_utf8(kv.value.to_vec()).unwrap(),
                        kv.mod_revision
                    )),
                    model[k],
                    "{key} read back after its write"
                );
                let read = store.get(&fixed.key, None).await.unwrap();
                assert_eq!(read.kv.as_ref(), Some(&fixed), "{} read back", fixed.key);
                step += 1;
            }
            model
        }));
    }
    // Compaction requests are writes too (they move the compaction point in a logged group).
    let compactor = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut compacted = 0;
            while Instant::now() < deadline && store.stats().checkpoints < 3 {
                tokio::time::sleep(Duration::from_millis(15)).await;
                let point = store.status().await.unwrap().revision - 50;
                if point > compacted {
                    store.compact(point).await.unwrap();
                    compacted = point;
                }
            }
            compacted
        })
    };
    let mut expected = Vec::new();
    for (writer, task) in tasks.into_iter().enumerate() {
        for (k, entry) in task.await.unwrap().into_iter().enumerate() {
            if let Some(entry) = entry {
                expected.push((format!("/overlay/{writer}/{k:03}"), entry));
            }
        }
    }
    expected.sort();
    assert!(compactor.await.unwrap() > 0, "nothing was compacted");
    let stats = store.stats();
    assert!(
        stats.groups_during_checkpoints > 0 && stats.checkpoints > 0,
        "no group was written while a checkpoint ran: {stats:?}"
    );
    let listed = |store: Arc<RedbStore>| async move {
        let list = store
            .list("/overlay/", ListOptions::default())
            .await
            .unwrap();
        list.kvs
            .into_iter()
            .map(|kv| {
                let value = String::from_utf8(kv.value.to_vec()).unwrap();
                (kv.key, (value, kv.mod_revision))
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(listed(store.clone()).await, expected);
    assert_consistent(&store);
    store.close();
    drop(store);

    let store = Arc::new(open().unwrap());
    assert_consistent(&store);
    assert_eq!(listed(store.clone()).await, expected);
}
