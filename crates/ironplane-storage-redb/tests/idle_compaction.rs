//! Automatic compaction on an idle store keeps the newest revision readable, so that a paginated
//! list or a watch pinned at the current revision still works after the history window has passed
//! (a watch cache starting on a store that has been idle for longer than the window does exactly
//! that).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use ironplane_storage::{ListOptions, Storage, WatchRequest};
use ironplane_storage_redb::{RedbStore, RedbStoreOptions};

#[tokio::test]
async fn auto_compaction_keeps_the_current_revision_readable() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = RedbStoreOptions::new(dir.path().join("store.redb"));
    options.history_window = Some(Duration::ZERO);
    options.compaction_check_interval = Duration::from_millis(20);
    let store = RedbStore::open(options).unwrap();
    for index in 0..5 {
        store
            .create(&format!("/p/{index}"), Bytes::from_static(b"v"), None)
            .await
            .unwrap();
    }
    // Let the housekeeper compact everything it may.
    let current = store.status().await.unwrap().revision;
    for _ in 0..100 {
        if store.status().await.unwrap().compact_revision >= current - 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = store.status().await.unwrap();
    assert_eq!(status.compact_revision, current - 1, "{status:?}");
    let first = store
        .list(
            "/p/",
            ListOptions {
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first.revision, current);
    let next = store
        .list(
            "/p/",
            ListOptions {
                limit: Some(2),
                revision: Some(first.revision),
                start_key: Some(ironplane_storage::key_after(&first.kvs[1].key)),
            },
        )
        .await
        .unwrap();
    assert_eq!(next.kvs.len(), 2);
    store
        .watch(WatchRequest {
            key: "/p/".into(),
            prefix: true,
            after: current,
            progress_notify: false,
        })
        .await
        .unwrap();
    store.close();
}
