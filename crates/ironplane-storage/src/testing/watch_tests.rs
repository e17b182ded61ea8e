//! The watch behaviours: where a watch starts, what it matches, delete events, delayed readers,
//! cancellation, slow watchers, compaction, progress, resumption, and the six guarantees.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use rand::Rng;

use crate::{EventKind, StorageError, WatchMessage, WatchRequest};

use super::guarantees::{assert_reliable, assert_resumable};
use super::{
    PROMPTLY, Recorded, TestStore, assert_no_event, current_revision, is_compacted, overwrite, put,
    read_events, read_until_progress, rng, val,
};

fn prefix(key: &str, after: i64) -> WatchRequest {
    WatchRequest {
        key: key.into(),
        prefix: true,
        after,
        progress_notify: false,
    }
}

/// A watch from 0 starts now: it sees the changes made after it started, and none before.
pub async fn watch_from_now(store: TestStore) {
    let a = put(&*store, "/w/a", "a1").await;
    let mut watch = store.watch(prefix("/w/", 0)).await.unwrap();
    let b = put(&*store, "/w/b", "b1").await;
    let b2 = overwrite(&*store, "/w/b", "b2").await;
    let deleted = store.delete("/w/a", None).await.unwrap();
    let recorded = read_events(&mut watch, 3).await;
    recorded.assert_guarantees();
    let events = recorded.events();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events[0].is_create());
    assert_eq!(events[0].kv, b);
    assert_eq!(events[1].kind, EventKind::Put);
    assert_eq!(events[1].kv, b2);
    assert_eq!(events[1].prev_kv.as_ref(), Some(&b));
    assert_eq!(events[2].kind, EventKind::Delete);
    assert_eq!(events[2].revision(), deleted.revision);
    assert_eq!(events[2].prev_kv.as_ref(), Some(&a));
    assert_no_event(&mut watch, Duration::from_millis(100)).await;
}

/// List, then watch from the list's revision, on a store that was never written: every change
/// made in between is delivered. (The list's revision cannot be 0, which a watch reads as "from
/// now": a cache starting on a new store would miss what was written meanwhile.)
pub async fn watch_from_an_empty_list(store: TestStore) {
    let listed = store.list("/w/", Default::default()).await.unwrap();
    assert!(listed.kvs.is_empty());
    assert!(
        listed.revision > 0,
        "an empty store listed at revision {}",
        listed.revision
    );
    let a = put(&*store, "/w/a", "a1").await;
    let mut watch = store.watch(prefix("/w/", listed.revision)).await.unwrap();
    let b = put(&*store, "/w/b", "b1").await;
    let recorded = read_events(&mut watch, 2).await;
    recorded.assert_guarantees();
    let events = recorded.events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].kv, a);
    assert_eq!(events[1].kv, b);
}

/// A watch from revision R delivers exactly the changes after R, including ones made before the
/// watch started.
pub async fn watch_from_revision(store: TestStore) {
    let mut kvs = Vec::new();
    for i in 0..5 {
        kvs.push(put(&*store, &format!("/w/{i}"), "x").await);
    }
    let mut watch = store
        .watch(prefix("/w/", kvs[1].mod_revision))
        .await
        .unwrap();
    let later = put(&*store, "/w/later", "x").await;
    let recorded = read_events(&mut watch, 4).await;
    recorded.assert_guarantees();
    let got: Vec<_> = recorded.events().into_iter().map(|e| e.kv).collect();
    assert_eq!(
        got,
        vec![kvs[2].clone(), kvs[3].clone(), kvs[4].clone(), later]
    );
    assert_no_event(&mut watch, Duration::from_millis(100)).await;
}

/// A prefix watch of `/ns1/` ignores `/ns10/...` and other prefixes.
pub async fn watch_prefix_boundary(store: TestStore) {
    let mut watch = store.watch(prefix("/ns1/", 0)).await.unwrap();
    put(&*store, "/ns10/x", "x").await;
    let mine = put(&*store, "/ns1/y", "y").await;
    put(&*store, "/ns2/z", "z").await;
    put(&*store, "/ns1", "bare").await;
    let events = read_events(&mut watch, 1).await.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kv, mine);
    assert_no_event(&mut watch, Duration::from_millis(100)).await;
}

/// A watch of one key sees that key only (not keys it is a prefix of).
pub async fn watch_single_key(store: TestStore) {
    let mut watch = store
        .watch(WatchRequest {
            key: "/pods/ns/a".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    put(&*store, "/pods/ns/ab", "x").await;
    put(&*store, "/pods/ns/b", "x").await;
    let a = put(&*store, "/pods/ns/a", "x").await;
    let events = read_events(&mut watch, 1).await.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kv, a);
    assert_no_event(&mut watch, Duration::from_millis(100)).await;
}

/// A delete event carries the revision of the deletion, the last state as `prev_kv`, and an empty
/// key-value with zero create revision and version.
pub async fn watch_delete_event(store: TestStore) {
    let created = put(&*store, "/pods/ns/foo", "v1").await;
    let updated = overwrite(&*store, "/pods/ns/foo", "v2").await;
    let mut watch = store
        .watch(prefix("/pods/", updated.mod_revision))
        .await
        .unwrap();
    let deleted = store
        .delete("/pods/ns/foo", Some(updated.mod_revision))
        .await
        .unwrap();
    let events = read_events(&mut watch, 1).await.events();
    let event = &events[0];
    assert_eq!(event.kind, EventKind::Delete);
    assert_eq!(event.revision(), deleted.revision);
    assert_eq!(
        event.kv.mod_revision, deleted.revision,
        "the latest revision, not the object's"
    );
    assert!(event.kv.value.is_empty());
    assert_eq!(event.kv.create_revision, 0);
    assert_eq!(event.kv.version, 0);
    assert_eq!(event.prev_kv.as_ref(), Some(&updated));
    // From before the update, the delete still comes last with the same content.
    let mut from_start = store
        .watch(prefix("/pods/", created.mod_revision))
        .await
        .unwrap();
    let events = read_events(&mut from_start, 2).await.events();
    assert_eq!(events[1], *event);
}

/// A watcher that starts reading late still gets every change, in order.
pub async fn watch_delayed_delivery(store: TestStore) {
    let mut watch = store.watch(prefix("/d/", 0)).await.unwrap();
    let mut expected = Vec::new();
    for i in 0..30 {
        let key = format!("/d/{}", i % 4);
        let kv = match store.get(&key, None).await.unwrap().kv {
            Some(kv) => {
                store
                    .update(&key, val(&i.to_string()), kv.mod_revision, None)
                    .await
            }
            None => store.create(&key, val(&i.to_string()), None).await,
        };
        expected.push(kv.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let recorded = read_events(&mut watch, 30).await;
    recorded.assert_guarantees();
    let got: Vec<_> = recorded.events().into_iter().map(|e| e.kv).collect();
    assert_eq!(got, expected);
}

/// Dropping watches cancels them; writers and other watchers carry on.
pub async fn watch_cancel(store: TestStore) {
    let mut keep = store.watch(prefix("/x/", 0)).await.unwrap();
    for _ in 0..50 {
        let watch = store.watch(prefix("/x/", 0)).await.unwrap();
        drop(watch);
    }
    let dropped_late = store.watch(prefix("/x/", 0)).await.unwrap();
    put(&*store, "/x/1", "x").await;
    drop(dropped_late);
    for i in 2..10 {
        put(&*store, &format!("/x/{i}"), "x").await;
    }
    let events = read_events(&mut keep, 9).await.events();
    assert_eq!(events.len(), 9);
}

/// A watcher that is not read falls behind and is ended with `WatcherTooSlow` after what was
/// queued, while writers and a watcher that keeps up are not held back.
pub async fn slow_watcher(store: TestStore) {
    let writes = store.watcher_queue * 2 + 20;
    let mut slow = store.watch(prefix("/slow/", 0)).await.unwrap();
    let mut fast = store.watch(prefix("/slow/", 0)).await.unwrap();
    let reader = tokio::spawn(async move {
        let recorded = read_events(&mut fast, writes).await;
        recorded.assert_guarantees();
        recorded.events()
    });
    let started = tokio::time::Instant::now();
    let mut kv = put(&*store, "/slow/k", "0").await;
    for i in 1..writes {
        kv = store
            .update("/slow/k", val(&i.to_string()), kv.mod_revision, None)
            .await
            .unwrap();
    }
    let fast_events = tokio::time::timeout(PROMPTLY, reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fast_events.len(), writes);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "writers were held back: {:?}",
        started.elapsed()
    );
    // The slow watcher gets a gap-free prefix of the changes, then the error, then the end.
    let mut delivered = Vec::new();
    loop {
        match tokio::time::timeout(PROMPTLY, slow.next()).await.unwrap() {
            Some(Ok(WatchMessage::Events(events))) => delivered.extend(events),
            Some(Ok(WatchMessage::Progress(_))) => {}
            Some(Err(StorageError::WatcherTooSlow)) => break,
            Some(Err(other)) => panic!("expected WatcherTooSlow, got {other}"),
            None => panic!("the slow watcher ended without WatcherTooSlow"),
        }
    }
    assert!(delivered.len() < writes);
    assert_eq!(delivered[..], fast_events[..delivered.len()]);
    assert!(
        slow.next().await.is_none(),
        "the watch ends after the error"
    );
    // Watching again works.
    let mut again = store.watch(prefix("/slow/", 0)).await.unwrap();
    overwrite(&*store, "/slow/k", "after").await;
    assert_eq!(read_events(&mut again, 1).await.events().len(), 1);
}

/// A watch from a compacted revision fails with `Compacted`; from the compaction point on it
/// works.
pub async fn watch_compacted(store: TestStore) {
    let mut kvs = Vec::new();
    for i in 0..4 {
        kvs.push(put(&*store, &format!("/wc/{i}"), "x").await);
    }
    let point = kvs[2].mod_revision;
    store.compact(point).await.unwrap();
    match store.watch(prefix("/wc/", kvs[0].mod_revision)).await {
        Err(err) => assert!(is_compacted(&err), "{err}"),
        Ok(mut watch) => match tokio::time::timeout(PROMPTLY, watch.next()).await.unwrap() {
            Some(Err(err)) => assert!(is_compacted(&err), "{err}"),
            other => panic!("expected Compacted, got {other:?}"),
        },
    }
    let mut watch = store.watch(prefix("/wc/", point)).await.unwrap();
    let events = read_events(&mut watch, 1).await.events();
    assert_eq!(events[0].kv, kvs[3]);
}

/// `request_progress` answers with the current revision after every earlier event, including
/// revisions of keys the watch does not match; progress never goes backwards.
pub async fn progress_request(store: TestStore) {
    let mut watch = store.watch(prefix("/p/", 0)).await.unwrap();
    let a = put(&*store, "/p/a", "x").await;
    let mut recorded = read_until_progress(&mut watch, a.mod_revision).await;
    assert_eq!(recorded.events().len(), 1);
    let other = put(&*store, "/q/x", "x").await;
    recorded.messages.extend(
        read_until_progress(&mut watch, other.mod_revision)
            .await
            .messages,
    );
    let b = put(&*store, "/p/b", "x").await;
    recorded
        .messages
        .extend(read_events(&mut watch, 1).await.messages);
    watch.request_progress();
    let now = current_revision(&*store).await;
    recorded
        .messages
        .extend(read_until_progress(&mut watch, now).await.messages);
    recorded.assert_guarantees();
    let events = recorded.events();
    assert_eq!(events.iter().map(|e| &e.kv).collect::<Vec<_>>(), [&a, &b]);
    assert!(recorded.last_progress() >= Some(b.mod_revision));
}

/// With `progress_notify`, an idle watcher is told on its own when the store has moved on.
pub async fn progress_notify(store: TestStore) {
    let mut watch = store
        .watch(WatchRequest {
            key: "/idle/".into(),
            prefix: true,
            after: 0,
            progress_notify: true,
        })
        .await
        .unwrap();
    let other = put(&*store, "/busy/x", "x").await;
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    loop {
        match tokio::time::timeout_at(deadline, watch.next()).await {
            Err(_) => panic!("no progress notification in time"),
            Ok(Some(Ok(WatchMessage::Progress(rev)))) if rev >= other.mod_revision => break,
            Ok(Some(Ok(WatchMessage::Progress(_)))) => {}
            Ok(other) => panic!("unexpected {other:?}"),
        }
    }
}

/// A watch resumed after any revision of a range delivers exactly the changes after it, whether
/// they come from memory or from the log.
pub async fn watch_resume_every_revision(store: TestStore) {
    // `after: 0` means "from now", so start from a real revision.
    let start = put(&*store, "/start", "x").await.mod_revision;
    for i in 0..40 {
        let key = format!("/r/{}", i % 5);
        match i % 7 {
            3 => {
                put(&*store, &format!("/x/{i}"), "outside").await;
            }
            6 => {
                let _ = store.delete(&key, None).await;
            }
            _ => {
                let kv = store.get(&key, None).await.unwrap().kv;
                match kv {
                    Some(kv) => {
                        store
                            .update(&key, val(&i.to_string()), kv.mod_revision, None)
                            .await
                    }
                    None => store.create(&key, val(&i.to_string()), None).await,
                }
                .unwrap();
            }
        }
    }
    let end = current_revision(&*store).await;
    let mut reference = store.watch(prefix("/", start)).await.unwrap();
    let all = read_events(&mut reference, usize::try_from(end - start).unwrap())
        .await
        .events();
    let revisions: Vec<_> = all.iter().map(|e| e.revision()).collect();
    assert_eq!(
        revisions,
        (start + 1..=end).collect::<Vec<_>>(),
        "the log has no gap"
    );
    for after in start..=end {
        let request = prefix("/r/", after);
        let expected: Vec<_> = all
            .iter()
            .filter(|e| e.revision() > after && e.kv.key.starts_with("/r/"))
            .cloned()
            .collect();
        let mut watch = store.watch(request.clone()).await.unwrap();
        let recorded = read_until_progress(&mut watch, end).await;
        recorded.assert_guarantees();
        assert_reliable(&recorded.events(), &all, &request);
        assert_eq!(recorded.events(), expected, "after {after}");
    }
}

/// Several watchers during concurrent random writes and progress requests: each one's recording
/// is ordered, unique, atomic, bookmarkable, reliable against the full change log, and resumable.
pub async fn watch_guarantees_under_load(store: TestStore) {
    let start = put(&*store, "/start", "x").await.mod_revision;
    let requests = [
        prefix("/", start),
        prefix("/g/", start),
        WatchRequest {
            key: "/g/1".into(),
            ..prefix("", start)
        },
        prefix("/h/", start),
    ];
    let mut watchers = Vec::new();
    for request in &requests {
        watchers.push(store.watch(request.clone()).await.unwrap());
    }
    let mut writers = Vec::new();
    for t in 0..4 {
        let store = store.shared();
        writers.push(tokio::spawn(async move {
            let mut rng = rng();
            for i in 0..25 {
                let dir = if rng.random_bool(0.7) { "g" } else { "h" };
                let key = format!("/{dir}/{}", rng.random_range(0..4));
                let value = val(&format!("{t}-{i}"));
                let result = match store.get(&key, None).await.unwrap().kv {
                    Some(kv) if rng.random_bool(0.2) => {
                        store.delete(&key, Some(kv.mod_revision)).await.map(|_| ())
                    }
                    Some(kv) => store
                        .update(&key, value, kv.mod_revision, None)
                        .await
                        .map(|_| ()),
                    None => store.create(&key, value, None).await.map(|_| ()),
                };
                match result {
                    Ok(()) | Err(StorageError::Conflict { .. }) => {}
                    Err(StorageError::AlreadyExists { .. } | StorageError::NotFound { .. }) => {}
                    Err(err) => panic!("write failed: {err}"),
                }
            }
        }));
    }
    // Read every watcher while the writers run, asking for progress now and then; once the
    // writers are done, read until progress reaches the final revision.
    let target = Arc::new(AtomicI64::new(i64::MAX));
    let mut readers = Vec::new();
    for mut watch in watchers {
        let target = target.clone();
        readers.push(tokio::spawn(async move {
            let mut recorded = Recorded::default();
            let mut rng = rng();
            let deadline = tokio::time::Instant::now() + PROMPTLY * 2;
            loop {
                let goal = target.load(Ordering::SeqCst);
                if recorded.last_progress().is_some_and(|p| p >= goal) {
                    return recorded;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the watch did not catch up"
                );
                if goal != i64::MAX || rng.random_bool(0.2) {
                    watch.request_progress();
                }
                match tokio::time::timeout(Duration::from_millis(200), watch.next()).await {
                    Err(_) => {}
                    Ok(Some(Ok(message))) => recorded.messages.push(message),
                    Ok(other) => panic!("the watch failed or ended: {other:?}"),
                }
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let end = current_revision(&*store).await;
    target.store(end, Ordering::SeqCst);
    let mut results = Vec::new();
    for reader in readers {
        results.push(reader.await.unwrap());
    }
    let reference = results[0].events();
    let revisions: Vec<_> = reference.iter().map(|e| e.revision()).collect();
    assert_eq!(
        revisions,
        (start + 1..=end).collect::<Vec<_>>(),
        "reliable: the full log"
    );
    for (request, recorded) in requests.iter().zip(&results) {
        recorded.assert_guarantees();
        assert_reliable(&recorded.events(), &reference, request);
    }
    let picks = [
        0,
        reference.len() / 3,
        reference.len() / 2,
        reference.len().saturating_sub(2),
    ];
    assert_resumable(&*store, &requests[0], &reference, picks).await;
    let g_events = results[1].events();
    assert_resumable(&*store, &requests[1], &g_events, [0, g_events.len() / 2]).await;
}
