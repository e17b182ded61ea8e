//! The store behaviours: create, get, update, delete, list, count, guaranteed update, compaction,
//! concurrency, linearizability and bad input.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use crate::{
    Deleted, EventKind, GetResponse, GuaranteedUpdateError, KeyValue, ListOptions, ListResponse,
    MAX_KEY_BYTES, MAX_VALUE_BYTES, Revision, Storage, StorageError, StoreStatus, UpdateOutcome,
    Watch, WatchRequest, key_after,
};

use super::linearizability::{self, Clock, Op, Outcome, Record};
use super::{
    PROMPTLY, TestStore, current_revision, is_compacted, overwrite, put, read_events, rng, val,
};

/// A create returns the new key at a new revision, version 1, and get returns the same.
pub async fn create(store: TestStore) {
    let before = current_revision(&*store).await;
    let kv = put(&*store, "/pods/test-ns/foo", "v1").await;
    assert_eq!(kv.key, "/pods/test-ns/foo");
    assert_eq!(kv.value, val("v1"));
    assert_eq!(kv.version, 1);
    assert_eq!(kv.create_revision, kv.mod_revision);
    assert_eq!(kv.mod_revision, before + 1, "one change, one revision");
    let got = store.get("/pods/test-ns/foo", None).await.unwrap();
    assert_eq!(got.kv.as_ref(), Some(&kv));
    assert_eq!(got.revision, kv.mod_revision);
    let second = put(&*store, "/pods/test-ns/bar", "v1").await;
    assert_eq!(second.mod_revision, kv.mod_revision + 1);
    assert_eq!(current_revision(&*store).await, second.mod_revision);
}

/// Creating an existing key fails with `AlreadyExists` and changes nothing.
pub async fn create_existing_key(store: TestStore) {
    let kv = put(&*store, "/pods/test-ns/foo", "v1").await;
    let err = store
        .create("/pods/test-ns/foo", val("v2"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::AlreadyExists { ref key } if key == "/pods/test-ns/foo"),
        "{err}"
    );
    assert_eq!(
        current_revision(&*store).await,
        kv.mod_revision,
        "no revision was used"
    );
    let got = store.get("/pods/test-ns/foo", None).await.unwrap().kv;
    assert_eq!(got, Some(kv));
}

/// A key created with a TTL is deleted, with a delete event, once the TTL passes; an update
/// without a TTL removes the TTL.
pub async fn create_with_ttl(store: TestStore) {
    let ttl = Some(Duration::from_millis(300));
    let doomed = store
        .create("/events/ns/doomed", val("x"), ttl)
        .await
        .unwrap();
    let kept = store
        .create("/events/ns/kept", val("x"), ttl)
        .await
        .unwrap();
    let kept = store
        .update("/events/ns/kept", val("y"), kept.mod_revision, None)
        .await
        .unwrap();
    let forever = put(&*store, "/events/ns/forever", "z").await;
    let mut watch = store
        .watch(WatchRequest {
            key: "/events/ns/".into(),
            prefix: true,
            after: doomed.mod_revision,
            progress_notify: false,
        })
        .await
        .unwrap();
    // The update and the create that follow `doomed`, then the expiry.
    let recorded = read_events(&mut watch, 4).await;
    recorded.assert_guarantees();
    let events = recorded.events();
    let expiry = events.last().unwrap();
    assert_eq!(expiry.kind, EventKind::Delete, "{events:?}");
    assert_eq!(expiry.kv.key, "/events/ns/doomed");
    assert_eq!(expiry.prev_kv.as_ref(), Some(&doomed));
    assert!(expiry.revision() > forever.mod_revision);
    assert_eq!(store.get("/events/ns/doomed", None).await.unwrap().kv, None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.get("/events/ns/kept", None).await.unwrap().kv,
        Some(kept)
    );
    assert_eq!(
        store.get("/events/ns/forever", None).await.unwrap().kv,
        Some(forever)
    );
}

/// Get at the current revision, at past revisions, at a future revision, of a missing key, and
/// at a compacted revision.
pub async fn get(store: TestStore) {
    let created = put(&*store, "/pods/test-ns/foo", "v1").await;
    let updated = overwrite(&*store, "/pods/test-ns/foo", "v2").await;
    let other = put(&*store, "/pods/test-ns/bar", "b").await;

    let check = |resp: GetResponse, kv: Option<&KeyValue>, revision: Revision| {
        assert_eq!(resp.kv.as_ref(), kv);
        assert_eq!(resp.revision, revision);
    };
    check(
        store.get("/pods/test-ns/foo", None).await.unwrap(),
        Some(&updated),
        other.mod_revision,
    );
    check(
        store
            .get("/pods/test-ns/foo", Some(created.mod_revision))
            .await
            .unwrap(),
        Some(&created),
        created.mod_revision,
    );
    check(
        store
            .get("/pods/test-ns/foo", Some(updated.mod_revision))
            .await
            .unwrap(),
        Some(&updated),
        updated.mod_revision,
    );
    check(
        store
            .get("/pods/test-ns/foo", Some(other.mod_revision))
            .await
            .unwrap(),
        Some(&updated),
        other.mod_revision,
    );
    // Before the key existed.
    check(
        store
            .get("/pods/test-ns/bar", Some(updated.mod_revision))
            .await
            .unwrap(),
        None,
        updated.mod_revision,
    );
    check(
        store.get("/pods/non-existing", None).await.unwrap(),
        None,
        other.mod_revision,
    );
    let err = store
        .get("/pods/test-ns/foo", Some(Revision::MAX))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::FutureRevision { .. }), "{err}");

    // A deleted key is still readable in the past.
    let deleted = store.delete("/pods/test-ns/foo", None).await.unwrap();
    check(
        store.get("/pods/test-ns/foo", None).await.unwrap(),
        None,
        deleted.revision,
    );
    check(
        store
            .get("/pods/test-ns/foo", Some(deleted.revision - 1))
            .await
            .unwrap(),
        Some(&updated),
        deleted.revision - 1,
    );

    store.compact(updated.mod_revision).await.unwrap();
    let err = store
        .get("/pods/test-ns/foo", Some(created.mod_revision))
        .await
        .unwrap_err();
    assert!(is_compacted(&err), "{err}");
    let err = store
        .get("/pods/test-ns/foo", Some(updated.mod_revision))
        .await
        .unwrap_err();
    assert!(is_compacted(&err), "at the compaction point itself: {err}");
    check(
        store
            .get("/pods/test-ns/foo", Some(other.mod_revision))
            .await
            .unwrap(),
        Some(&updated),
        other.mod_revision,
    );
}

/// Compare-and-swap update: success, stale revision, missing key.
pub async fn update(store: TestStore) {
    let created = put(&*store, "/pods/test-ns/foo", "v1").await;
    let updated = store
        .update("/pods/test-ns/foo", val("v2"), created.mod_revision, None)
        .await
        .unwrap();
    assert_eq!(updated.value, val("v2"));
    assert_eq!(updated.version, 2);
    assert_eq!(updated.create_revision, created.create_revision);
    assert_eq!(updated.mod_revision, created.mod_revision + 1);
    let err = store
        .update("/pods/test-ns/foo", val("v3"), created.mod_revision, None)
        .await
        .unwrap_err();
    match err {
        StorageError::Conflict {
            key,
            expected,
            current,
        } => {
            assert_eq!(key, "/pods/test-ns/foo");
            assert_eq!(expected, created.mod_revision);
            assert_eq!(*current, updated, "the conflict carries the current state");
        }
        other => panic!("expected a conflict, got {other}"),
    }
    let err = store
        .update("/pods/missing", val("v"), 1, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::NotFound { .. }), "{err}");
    assert_eq!(
        current_revision(&*store).await,
        updated.mod_revision,
        "failed writes use no revision"
    );
}

/// Delete without a precondition returns the last state at a new revision; a missing key is
/// `NotFound`.
pub async fn unconditional_delete(store: TestStore) {
    let stored = put(&*store, "/pods/test-ns/foo", "v1").await;
    let Deleted { prev_kv, revision } = store.delete("/pods/test-ns/foo", None).await.unwrap();
    assert_eq!(prev_kv, stored);
    assert_eq!(revision, stored.mod_revision + 1);
    assert_eq!(store.get("/pods/test-ns/foo", None).await.unwrap().kv, None);
    let err = store.delete("/pods/test-ns/foo", None).await.unwrap_err();
    assert!(matches!(err, StorageError::NotFound { .. }), "{err}");
    let err = store.delete("/pods/non-existing", None).await.unwrap_err();
    assert!(matches!(err, StorageError::NotFound { .. }), "{err}");
    // The key can be created again, as a new incarnation.
    let again = put(&*store, "/pods/test-ns/foo", "v2").await;
    assert_eq!(again.version, 1);
    assert_eq!(again.create_revision, revision + 1);
}

/// Delete with a precondition: a mismatch is a `Conflict` and deletes nothing.
pub async fn conditional_delete(store: TestStore) {
    let stored = put(&*store, "/pods/test-ns/foo", "v1").await;
    let err = store
        .delete("/pods/test-ns/foo", Some(stored.mod_revision + 100))
        .await
        .unwrap_err();
    match err {
        StorageError::Conflict { current, .. } => assert_eq!(*current, stored),
        other => panic!("expected a conflict, got {other}"),
    }
    assert_eq!(
        store.get("/pods/test-ns/foo", None).await.unwrap().kv,
        Some(stored.clone())
    );
    let deleted = store
        .delete("/pods/test-ns/foo", Some(stored.mod_revision))
        .await
        .unwrap();
    assert_eq!(deleted.prev_kv, stored);
}

/// A delete whose precondition was read before a concurrent update fails; retrying with the
/// state the conflict reports succeeds and returns the updated object.
pub async fn delete_with_stale_precondition(store: TestStore) {
    let original = put(&*store, "/pods/test-ns/foo", "v1").await;
    let updated = overwrite(&*store, "/pods/test-ns/foo", "v2").await;
    let err = store
        .delete("/pods/test-ns/foo", Some(original.mod_revision))
        .await
        .unwrap_err();
    let current = match err {
        StorageError::Conflict { current, .. } => *current,
        other => panic!("expected a conflict, got {other}"),
    };
    assert_eq!(current, updated);
    let deleted = store
        .delete("/pods/test-ns/foo", Some(current.mod_revision))
        .await
        .unwrap();
    assert_eq!(deleted.prev_kv, updated);
    assert_eq!(store.get("/pods/test-ns/foo", None).await.unwrap().kv, None);
}

fn keys(resp: &ListResponse) -> Vec<&str> {
    resp.kvs.iter().map(|kv| kv.key.as_str()).collect()
}

fn page(limit: usize, revision: Option<Revision>, start: Option<&str>) -> ListOptions {
    ListOptions {
        limit: Some(limit),
        revision,
        start_key: start.map(str::to_owned),
    }
}

/// A prefix lists only its own keys, in byte order; `/ns1/` never returns `/ns10/...`.
pub async fn list_prefix(store: TestStore) {
    for key in ["/ns1/b", "/ns10/c", "/ns1/a", "/ns2/d", "/ns1"] {
        put(&*store, key, key).await;
    }
    let rev = current_revision(&*store).await;
    let check = |resp: ListResponse, expected: &[&str]| {
        assert_eq!(keys(&resp), expected);
        assert_eq!(resp.revision, rev);
        assert!(!resp.more);
        for kv in &resp.kvs {
            assert_eq!(kv.value, val(&kv.key));
        }
    };
    check(
        store.list("/ns1/", ListOptions::default()).await.unwrap(),
        &["/ns1/a", "/ns1/b"],
    );
    check(
        store.list("/ns10/", ListOptions::default()).await.unwrap(),
        &["/ns10/c"],
    );
    check(
        store.list("/ns2/", ListOptions::default()).await.unwrap(),
        &["/ns2/d"],
    );
    check(
        store.list("/none/", ListOptions::default()).await.unwrap(),
        &[],
    );
    check(
        store.list("/", ListOptions::default()).await.unwrap(),
        &["/ns1", "/ns1/a", "/ns1/b", "/ns10/c", "/ns2/d"],
    );
}

/// A list at a past revision returns that snapshot: later creates absent, later deletes present,
/// values as they were.
pub async fn list_at_revision(store: TestStore) {
    let a = put(&*store, "/pods/a", "a1").await;
    let b = put(&*store, "/pods/b", "b1").await;
    let c = put(&*store, "/pods/c", "c1").await;
    let snapshot = c.mod_revision;
    let a2 = overwrite(&*store, "/pods/a", "a2").await;
    store.delete("/pods/b", None).await.unwrap();
    let d = put(&*store, "/pods/d", "d1").await;
    let c2 = overwrite(&*store, "/pods/c", "c2").await;

    let old = store
        .list(
            "/pods/",
            ListOptions {
                revision: Some(snapshot),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(old.revision, snapshot);
    assert_eq!(old.kvs, vec![a, b.clone(), c]);
    let now = store.list("/pods/", ListOptions::default()).await.unwrap();
    assert_eq!(now.kvs, vec![a2, c2.clone(), d.clone()]);
    assert_eq!(now.revision, c2.mod_revision);
    // Paged in the past.
    let first = store
        .list("/pods/", page(2, Some(snapshot), None))
        .await
        .unwrap();
    assert_eq!(keys(&first), ["/pods/a", "/pods/b"]);
    assert!(first.more);
    let second = store
        .list(
            "/pods/",
            page(2, Some(snapshot), Some(&key_after("/pods/b"))),
        )
        .await
        .unwrap();
    assert_eq!(keys(&second), ["/pods/c"]);
    assert!(!second.more);
    // Between two changes.
    let mid = store
        .list(
            "/pods/",
            ListOptions {
                revision: Some(d.mod_revision - 1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(keys(&mid), ["/pods/a", "/pods/c"]);
}

/// `limit` cuts a page and sets `more`; `remaining`, when given, is exact; no limit (or 0)
/// returns everything.
pub async fn list_limit(store: TestStore) {
    for key in ["/l/a", "/l/b", "/l/c"] {
        put(&*store, key, "x").await;
    }
    let all = store.list("/l/", page(3, None, None)).await.unwrap();
    assert_eq!(keys(&all), ["/l/a", "/l/b", "/l/c"]);
    assert!(!all.more);
    let two = store.list("/l/", page(2, None, None)).await.unwrap();
    assert_eq!(keys(&two), ["/l/a", "/l/b"]);
    assert!(two.more);
    if let Some(remaining) = two.remaining {
        assert_eq!(remaining, 1);
    }
    let unlimited = store.list("/l/", ListOptions::default()).await.unwrap();
    assert_eq!(unlimited.kvs.len(), 3);
    let zero = store.list("/l/", page(0, None, None)).await.unwrap();
    assert_eq!(zero.kvs.len(), 3, "a limit of 0 means no limit");
    let tail = store
        .list("/l/", page(5, None, Some("/l/b")))
        .await
        .unwrap();
    assert_eq!(keys(&tail), ["/l/b", "/l/c"], "start_key is inclusive");
}

/// Pages read at the first page's revision see one snapshot even when writes happen between
/// pages; continuing at the latest revision sees the writes.
pub async fn list_continuation(store: TestStore) {
    let mut originals = Vec::new();
    for key in ["/c/k1", "/c/k2", "/c/k3", "/c/k4", "/c/k5"] {
        originals.push(put(&*store, key, "orig").await);
    }
    let first = store.list("/c/", page(2, None, None)).await.unwrap();
    assert_eq!(keys(&first), ["/c/k1", "/c/k2"]);
    assert!(first.more);
    let snapshot = first.revision;

    overwrite(&*store, "/c/k3", "changed").await;
    store.delete("/c/k4", None).await.unwrap();
    put(&*store, "/c/k2a", "new").await;
    put(&*store, "/c/k6", "new").await;

    let mut rest = Vec::new();
    let mut start = key_after("/c/k2");
    loop {
        let next = store
            .list("/c/", page(2, Some(snapshot), Some(&start)))
            .await
            .unwrap();
        assert_eq!(
            next.revision, snapshot,
            "every page comes from the first page's snapshot"
        );
        rest.extend(next.kvs.iter().cloned());
        if !next.more {
            break;
        }
        start = key_after(&next.kvs.last().unwrap().key);
    }
    assert_eq!(rest, originals[2..].to_vec());

    let latest = store
        .list(
            "/c/",
            ListOptions {
                start_key: Some(key_after("/c/k2")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(keys(&latest), ["/c/k2a", "/c/k3", "/c/k5", "/c/k6"]);
    assert_eq!(latest.kvs[1].value, val("changed"));
}

/// Continuing a paginated list after its snapshot was compacted fails with `Compacted`; the API
/// then continues inconsistently, at the latest revision, from the same key.
pub async fn list_continuation_after_compaction(store: TestStore) {
    for key in ["/c/k1", "/c/k2", "/c/k3"] {
        put(&*store, key, "orig").await;
    }
    let first = store.list("/c/", page(1, None, None)).await.unwrap();
    assert_eq!(keys(&first), ["/c/k1"]);
    overwrite(&*store, "/c/k2", "changed").await;
    let now = current_revision(&*store).await;
    store.compact(now).await.unwrap();

    let start = key_after("/c/k1");
    let err = store
        .list("/c/", page(1, Some(first.revision), Some(&start)))
        .await
        .unwrap_err();
    assert!(is_compacted(&err), "{err}");
    let inconsistent = store
        .list("/c/", page(10, None, Some(&start)))
        .await
        .unwrap();
    assert_eq!(keys(&inconsistent), ["/c/k2", "/c/k3"]);
    assert_eq!(inconsistent.kvs[0].value, val("changed"));
    assert_eq!(inconsistent.revision, now);
}

/// List up to `want` keys under `prefix` that satisfy `keep`, reading pages of `page_size` from
/// one snapshot, as the API server does for a list with a field selector. Returns the matches,
/// the snapshot revision, whether the range was exhausted, and how many pages it took.
pub async fn list_matching(
    store: &dyn Storage,
    prefix: &str,
    page_size: usize,
    want: usize,
    keep: impl Fn(&KeyValue) -> bool,
) -> (Vec<KeyValue>, Revision, bool, usize) {
    let mut found = Vec::new();
    let mut revision = None;
    let mut start: Option<String> = None;
    let mut pages = 0;
    loop {
        let resp = store
            .list(
                prefix,
                ListOptions {
                    limit: Some(page_size),
                    revision,
                    start_key: start.clone(),
                },
            )
            .await
            .unwrap();
        pages += 1;
        if let Some(r) = revision {
            assert_eq!(resp.revision, r);
        }
        revision = Some(resp.revision);
        for kv in &resp.kvs {
            if keep(kv) && found.len() < want {
                found.push(kv.clone());
            }
        }
        let Some(last) = resp.kvs.last() else {
            return (found, resp.revision, true, pages);
        };
        if !resp.more {
            return (found, resp.revision, true, pages);
        }
        if found.len() >= want {
            return (found, resp.revision, false, pages);
        }
        start = Some(key_after(&last.key));
    }
}

/// Paging through many keys of which few match finds every match, in order, from one snapshot,
/// even when matching keys are written while the pages are read.
pub async fn list_paging_rare_matches(store: TestStore) {
    let mut expected = Vec::new();
    for i in 0..60 {
        let value = if i % 10 == 9 { "match" } else { "other" };
        let kv = put(&*store, &format!("/rare/{i:03}"), value).await;
        if value == "match" {
            expected.push(kv);
        }
    }
    let is_match = |kv: &KeyValue| kv.value == val("match");
    let (found, _, exhausted, pages) = list_matching(&*store, "/rare/", 7, 100, is_match).await;
    assert_eq!(found, expected);
    assert!(exhausted);
    assert!(pages >= 9);
    let (first_two, _, exhausted, _) = list_matching(&*store, "/rare/", 7, 2, is_match).await;
    assert_eq!(first_two, expected[..2].to_vec());
    assert!(!exhausted);
    // Only the very last key matches, and writes land between pages.
    let writer = store.shared();
    let background = tokio::spawn(async move {
        for i in 0..20 {
            let key = format!("/rare/{:03}x", i * 3);
            writer.create(&key, val("match"), None).await.unwrap();
        }
    });
    let last_only = |kv: &KeyValue| kv.key == "/rare/059";
    let (found, revision, _, _) = list_matching(&*store, "/rare/", 1, 1, last_only).await;
    background.await.unwrap();
    assert_eq!(keys_of(&found), ["/rare/059"]);
    let (snapshot_matches, _, _, _) = list_matching(&*store, "/rare/", 5, 100, is_match).await;
    assert!(
        snapshot_matches.len() > expected.len(),
        "the new keys are visible now"
    );
    let at_revision = store
        .list(
            "/rare/",
            ListOptions {
                revision: Some(revision),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        at_revision.kvs.iter().filter(|kv| is_match(kv)).count(),
        expected.len() + at_revision.kvs.len() - 60
    );
}

fn keys_of(kvs: &[KeyValue]) -> Vec<&str> {
    kvs.iter().map(|kv| kv.key.as_str()).collect()
}

/// Count follows creates and deletes and respects prefix boundaries.
pub async fn count(store: TestStore) {
    assert_eq!(store.count("/ns1/").await.unwrap(), 0);
    for key in ["/ns1/a", "/ns1/b", "/ns10/a", "/ns2/a"] {
        put(&*store, key, "x").await;
    }
    assert_eq!(store.count("/ns1/").await.unwrap(), 2);
    assert_eq!(store.count("/ns1").await.unwrap(), 3);
    assert_eq!(store.count("/").await.unwrap(), 4);
    store.delete("/ns1/a", None).await.unwrap();
    assert_eq!(store.count("/ns1/").await.unwrap(), 1);
}

/// `guaranteed_update` creates a missing key, updates an existing one, and leaves it alone when
/// the transform says so.
pub async fn guaranteed_update(store: TestStore) {
    let key = "/pods/test-ns/foo";
    let created = match crate::guaranteed_update(&*store, key, None, |cur| {
        assert!(cur.is_none());
        Ok::<_, ()>(Some(val("1")))
    })
    .await
    .unwrap()
    {
        UpdateOutcome::Written(kv) => kv,
        other => panic!("expected a write, got {other:?}"),
    };
    assert_eq!(created.version, 1);
    let updated = match crate::guaranteed_update(&*store, key, None, |cur| {
        assert_eq!(cur, Some(&created));
        Ok::<_, ()>(Some(val("2")))
    })
    .await
    .unwrap()
    {
        UpdateOutcome::Written(kv) => kv,
        other => panic!("expected a write, got {other:?}"),
    };
    assert_eq!(updated.version, 2);
    assert_eq!(updated.value, val("2"));
    let unchanged = crate::guaranteed_update(&*store, key, None, |_| Ok::<_, ()>(None))
        .await
        .unwrap();
    assert_eq!(unchanged, UpdateOutcome::Unchanged(Some(updated.clone())));
    let refused = crate::guaranteed_update(&*store, key, None, |_| Err::<Option<Bytes>, _>("no"))
        .await
        .unwrap_err();
    assert!(matches!(refused, GuaranteedUpdateError::Transform("no")));
    assert_eq!(store.get(key, None).await.unwrap().kv, Some(updated));
}

/// A store wrapper that slips one conflicting update in before the first update it forwards.
struct Interloper {
    inner: Arc<dyn Storage>,
    armed: AtomicBool,
}

#[async_trait::async_trait]
impl Storage for Interloper {
    async fn get(
        &self,
        key: &str,
        revision: Option<Revision>,
    ) -> Result<GetResponse, StorageError> {
        self.inner.get(key, revision).await
    }
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResponse, StorageError> {
        self.inner.list(prefix, options).await
    }
    async fn count(&self, prefix: &str) -> Result<u64, StorageError> {
        self.inner.count(prefix).await
    }
    async fn create(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, StorageError> {
        self.inner.create(key, value, ttl).await
    }
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, StorageError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            overwrite(&*self.inner, key, "interloper").await;
        }
        self.inner.update(key, value, expected, ttl).await
    }
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted, StorageError> {
        self.inner.delete(key, expected).await
    }
    async fn watch(&self, request: WatchRequest) -> Result<Watch, StorageError> {
        self.inner.watch(request).await
    }
    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        self.inner.compact(revision).await
    }
    async fn status(&self) -> Result<StoreStatus, StorageError> {
        self.inner.status().await
    }
}

/// `guaranteed_update` that loses a race retries with the state the conflict reported and keeps
/// the other writer's change.
pub async fn guaranteed_update_with_conflict(store: TestStore) {
    let key = "/pods/test-ns/foo";
    put(&*store, key, "start").await;
    let racing = Interloper {
        inner: store.shared(),
        armed: AtomicBool::new(true),
    };
    let calls = AtomicUsize::new(0);
    let seen = std::sync::Mutex::new(Vec::new());
    let outcome = crate::guaranteed_update(&racing, key, None, |cur| {
        calls.fetch_add(1, Ordering::SeqCst);
        let cur = cur.expect("the key exists");
        seen.lock().unwrap().push(cur.value.clone());
        let mut value = cur.value.to_vec();
        value.extend_from_slice(b"+mine");
        Ok::<_, ()>(Some(Bytes::from(value)))
    })
    .await
    .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one conflict, one retry");
    assert_eq!(*seen.lock().unwrap(), vec![val("start"), val("interloper")]);
    let UpdateOutcome::Written(kv) = outcome else {
        panic!("expected a write");
    };
    assert_eq!(kv.value, val("interloper+mine"));
    assert_eq!(kv.version, 3);
}

/// Many tasks CAS-increment a few counters; no increment is lost.
pub async fn concurrent_cas_increments(store: TestStore) {
    const TASKS: usize = 8;
    const PER_TASK: usize = 20;
    const KEYS: usize = 3;
    for k in 0..KEYS {
        put(&*store, &format!("/counters/{k}"), "0").await;
    }
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.shared();
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                let key = format!("/counters/{}", (t + i) % KEYS);
                crate::guaranteed_update(&*store, &key, None, |cur| {
                    let n: u64 = std::str::from_utf8(&cur.expect("exists").value)
                        .unwrap()
                        .parse()
                        .unwrap();
                    Ok::<_, ()>(Some(val(&(n + 1).to_string())))
                })
                .await
                .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut total = 0;
    for k in 0..KEYS {
        let kv = store
            .get(&format!("/counters/{k}"), None)
            .await
            .unwrap()
            .kv
            .unwrap();
        let n: usize = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
        assert_eq!(kv.version as usize, n + 1, "every write is one increment");
        total += n;
    }
    assert_eq!(total, TASKS * PER_TASK);
}

/// Concurrent random get/create/CAS-update/delete on a few keys; the recorded history must be
/// linearizable against a per-key register with compare-and-swap.
pub async fn linearizable_history(store: TestStore) {
    const TASKS: usize = 5;
    const OPS: usize = 24;
    const KEYS: [&str; 3] = ["/lin/a", "/lin/b", "/lin/c"];
    let clock = Arc::new(Clock::default());
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.shared();
        let clock = clock.clone();
        tasks.push(tokio::spawn(async move {
            let mut history = Vec::new();
            let mut seed = rng();
            for i in 0..OPS {
                let key = KEYS[seed.random_range(0..KEYS.len())];
                // Guess the revision from a read, as clients do; sometimes guess wrong on purpose.
                let known = store
                    .get(key, None)
                    .await
                    .unwrap()
                    .kv
                    .map(|kv| kv.mod_revision);
                let expected = match (known, seed.random_range(0..4)) {
                    (Some(r), 0) => r - 1,
                    (Some(r), _) => r,
                    (None, _) => 1,
                };
                let value = val(&format!("{t}-{i}"));
                let op = match seed.random_range(0..5) {
                    0 => Op::Get,
                    1 => Op::Create(value),
                    2 | 3 => Op::Update { value, expected },
                    _ => Op::Delete(if seed.random_bool(0.5) {
                        Some(expected)
                    } else {
                        None
                    }),
                };
                let invoked = clock.tick();
                let outcome = match &op {
                    Op::Get => store
                        .get(key, None)
                        .await
                        .map(|r| Outcome::Got(r.kv.map(|kv| (kv.value, kv.mod_revision)))),
                    Op::Create(value) => store
                        .create(key, value.clone(), None)
                        .await
                        .map(|kv| Outcome::Written(kv.mod_revision)),
                    Op::Update { value, expected } => store
                        .update(key, value.clone(), *expected, None)
                        .await
                        .map(|kv| Outcome::Written(kv.mod_revision)),
                    Op::Delete(expected) => store
                        .delete(key, *expected)
                        .await
                        .map(|d| Outcome::Deleted(d.revision)),
                };
                let responded = clock.tick();
                let outcome = match outcome {
                    Ok(outcome) => outcome,
                    Err(StorageError::AlreadyExists { .. }) => Outcome::AlreadyExists,
                    Err(StorageError::NotFound { .. }) => Outcome::NotFound,
                    Err(StorageError::Conflict { .. }) => Outcome::Conflict,
                    Err(err) => panic!("unexpected error: {err}"),
                };
                history.push(Record {
                    key: key.to_owned(),
                    op,
                    outcome,
                    invoked,
                    responded,
                });
            }
            history
        }));
    }
    let mut history = Vec::new();
    for task in tasks {
        history.extend(task.await.unwrap());
    }
    if let Err(violation) = linearizability::check(&history) {
        panic!("the history is not linearizable: {violation}");
    }
}

/// Compaction moves forward only, refuses the future, and is reported by status.
pub async fn compact_and_status(store: TestStore) {
    put(&*store, "/c/a", "1").await;
    let kv = overwrite(&*store, "/c/a", "2").await;
    let status = store.status().await.unwrap();
    assert_eq!(status.revision, kv.mod_revision);
    let err = store.compact(status.revision + 10).await.unwrap_err();
    assert!(matches!(err, StorageError::FutureRevision { .. }), "{err}");
    store.compact(kv.mod_revision - 1).await.unwrap();
    assert_eq!(
        store.status().await.unwrap().compact_revision,
        kv.mod_revision - 1
    );
    store.compact(kv.mod_revision - 1).await.unwrap();
    store.compact(1).await.unwrap();
    assert_eq!(
        store.status().await.unwrap().compact_revision,
        kv.mod_revision - 1,
        "compaction never goes back"
    );
    // The store keeps working, and the latest state is intact.
    assert_eq!(store.get("/c/a", None).await.unwrap().kv, Some(kv));
    put(&*store, "/c/b", "1").await;
    let list = store.list("/c/", ListOptions::default()).await.unwrap();
    assert_eq!(keys(&list), ["/c/a", "/c/b"]);
}

/// Empty keys, oversized keys and values, and NUL bytes are refused with clear errors, and
/// nothing is written.
pub async fn bad_input(store: TestStore) {
    let before = current_revision(&*store).await;
    let invalid =
        |err: StorageError| assert!(matches!(err, StorageError::InvalidKey { .. }), "{err}");
    invalid(store.create("", val("x"), None).await.unwrap_err());
    invalid(store.get("", None).await.unwrap_err());
    invalid(store.update("", val("x"), 1, None).await.unwrap_err());
    invalid(store.delete("", None).await.unwrap_err());
    invalid(store.create("/a\0b", val("x"), None).await.unwrap_err());
    invalid(
        store
            .create(&"k".repeat(MAX_KEY_BYTES + 1), val("x"), None)
            .await
            .unwrap_err(),
    );
    invalid(
        store
            .watch(WatchRequest {
                key: String::new(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    let big = Bytes::from(vec![b'x'; MAX_VALUE_BYTES + 1]);
    match store.create("/big", big.clone(), None).await.unwrap_err() {
        StorageError::ValueTooLarge { size, limit, .. } => {
            assert_eq!(size, MAX_VALUE_BYTES + 1);
            assert_eq!(limit, MAX_VALUE_BYTES);
        }
        other => panic!("expected ValueTooLarge, got {other}"),
    }
    assert_eq!(
        current_revision(&*store).await,
        before,
        "nothing was written"
    );
    let biggest = Bytes::from(vec![b'x'; MAX_VALUE_BYTES]);
    let kv = store.create("/big", biggest.clone(), None).await.unwrap();
    assert!(matches!(
        store
            .update("/big", big, kv.mod_revision, None)
            .await
            .unwrap_err(),
        StorageError::ValueTooLarge { .. }
    ));
    assert_eq!(
        store.get("/big", None).await.unwrap().kv.unwrap().value,
        biggest
    );
    // The store is healthy after all that.
    let _ = tokio::time::timeout(PROMPTLY, put(&*store, "/after", "ok"))
        .await
        .unwrap();
}
