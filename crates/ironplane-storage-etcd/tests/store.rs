//! What only the etcd backend has: the key layout in etcd, several stores sharing one etcd, the
//! coordinated compactor, and prompt failures while etcd is down.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use etcd_client::GetOptions;
use ironplane_storage::{ListOptions, Storage, StorageError, WatchMessage, WatchRequest};
use ironplane_storage_etcd::testing::{EtcdCluster, require_etcd};
use ironplane_storage_etcd::{EtcdOptions, EtcdStore, KeyMap};

async fn raw_keys(etcd: &EtcdCluster) -> Vec<String> {
    let mut client = etcd_client::Client::connect(etcd.endpoints(), None)
        .await
        .unwrap();
    let response = client
        .get("", Some(GetOptions::new().with_all_keys().with_keys_only()))
        .await
        .unwrap();
    response
        .kvs()
        .iter()
        .map(|kv| kv.key_str().unwrap().to_owned())
        .collect()
}

/// With the default layout, keys land in etcd exactly as the registry names them; another
/// `--etcd-prefix` replaces the `/registry` root.
#[tokio::test]
async fn key_layout() {
    if require_etcd().is_none() {
        return;
    }
    let etcd = EtcdCluster::start();
    let default = EtcdStore::connect(EtcdOptions::new(etcd.endpoints()))
        .await
        .unwrap();
    let other = EtcdStore::connect(
        EtcdOptions::new(etcd.endpoints()).keys(KeyMap::new("/registry", "/cluster-b")),
    )
    .await
    .unwrap();
    let json = Bytes::from_static(br#"{"kind":"ConfigMap"}"#);
    for store in [&default, &other] {
        store
            .create("/registry/configmaps/default/settings", json.clone(), None)
            .await
            .unwrap();
        store
            .create("/registry/namespaces/default", json.clone(), None)
            .await
            .unwrap();
    }
    assert_eq!(
        raw_keys(&etcd).await,
        [
            "/cluster-b/configmaps/default/settings",
            "/cluster-b/namespaces/default",
            "/registry/configmaps/default/settings",
            "/registry/namespaces/default",
        ]
    );
    // Each store sees its own keys, named as the registry names them.
    for store in [&default, &other] {
        let listed = store
            .list("/registry/", ListOptions::default())
            .await
            .unwrap();
        let keys: Vec<&str> = listed.kvs.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "/registry/configmaps/default/settings",
                "/registry/namespaces/default"
            ]
        );
        assert_eq!(listed.kvs[0].value, json);
    }
    let err = default.create("/pods/x", json, None).await.unwrap_err();
    assert!(matches!(err, StorageError::InvalidKey { .. }), "{err}");
}

/// Two stores on one etcd: a write through one is seen by a get, a list and a watch through the
/// other, at the same revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_share_one_etcd() {
    if require_etcd().is_none() {
        return;
    }
    let etcd = EtcdCluster::start();
    let a = EtcdStore::connect(EtcdOptions::new(etcd.endpoints()))
        .await
        .unwrap();
    let b = EtcdStore::connect(EtcdOptions::new(etcd.endpoints()))
        .await
        .unwrap();
    let mut watch = b
        .watch(WatchRequest {
            key: "/registry/configmaps/".into(),
            prefix: true,
            after: 0,
            progress_notify: false,
        })
        .await
        .unwrap();
    let written = a
        .create("/registry/configmaps/ns/x", Bytes::from_static(b"{}"), None)
        .await
        .unwrap();
    let got = b.get("/registry/configmaps/ns/x", None).await.unwrap();
    assert_eq!(got.kv.as_ref(), Some(&written));
    let listed = b
        .list("/registry/configmaps/", ListOptions::default())
        .await
        .unwrap();
    assert_eq!(listed.kvs, vec![written.clone()]);
    assert_eq!(listed.revision, written.mod_revision);
    let message = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match message {
        WatchMessage::Events(events) => assert_eq!(events[0].kv, written),
        other => panic!("expected the create, got {other:?}"),
    }
    assert_eq!(
        a.status().await.unwrap().revision,
        b.status().await.unwrap().revision
    );
}

/// Two compactors on one etcd take turns through `compact_rev_key`: history gets compacted, and
/// not twice per interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compactors_take_turns() {
    if require_etcd().is_none() {
        return;
    }
    let etcd = EtcdCluster::start();
    let interval = Duration::from_millis(300);
    let a = EtcdStore::connect(EtcdOptions::new(etcd.endpoints()))
        .await
        .unwrap();
    let b = EtcdStore::connect(EtcdOptions::new(etcd.endpoints()))
        .await
        .unwrap();
    let first = a
        .create("/registry/c/a", Bytes::from_static(b"1"), None)
        .await
        .unwrap();
    let started = Instant::now();
    let _ca = a.start_compactor(interval).unwrap();
    let _cb = b.start_compactor(interval).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Keep writing so that there is history to compact.
        let _ = a
            .create(
                &format!("/registry/c/{}", started.elapsed().as_millis()),
                Bytes::from_static(b"x"),
                None,
            )
            .await;
        match a.get("/registry/c/a", Some(first.mod_revision)).await {
            Err(StorageError::Compacted { .. }) => break,
            Ok(_) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
        assert!(Instant::now() < deadline, "nothing was compacted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut client = etcd_client::Client::connect(etcd.endpoints(), None)
        .await
        .unwrap();
    let claims = client.get("compact_rev_key", None).await.unwrap();
    let version = claims.kvs()[0].version();
    let rounds = started.elapsed().as_millis() / interval.as_millis();
    assert!(
        i64::try_from(rounds).unwrap() + 2 >= version,
        "{version} claims in {rounds} intervals: the compactors did not take turns"
    );
}

/// While etcd is down, requests fail with `Unavailable` within the request timeout; when it
/// returns, the same store works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_fast_while_etcd_is_down_and_recovers() {
    if require_etcd().is_none() {
        return;
    }
    let mut etcd = EtcdCluster::start();
    let timeout = Duration::from_millis(800);
    let store = EtcdStore::connect(EtcdOptions::new(etcd.endpoints()).request_timeout(timeout))
        .await
        .unwrap();
    store
        .create("/registry/x/before", Bytes::from_static(b"1"), None)
        .await
        .unwrap();
    etcd.members[0].kill();
    for _ in 0..3 {
        let started = Instant::now();
        let err = store
            .create("/registry/x/during", Bytes::from_static(b"1"), None)
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::Unavailable(_)), "{err}");
        assert!(started.elapsed() < timeout + Duration::from_secs(1));
        let started = Instant::now();
        let err = store
            .watch(WatchRequest {
                key: "/registry/x/".into(),
                prefix: true,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::Unavailable(_)), "{err}");
        assert!(started.elapsed() < timeout + Duration::from_secs(1));
    }
    etcd.members[0].restart();
    etcd.wait_healthy(Duration::from_secs(20)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store
            .create("/registry/x/after", Bytes::from_static(b"1"), None)
            .await
        {
            Ok(_) => break,
            Err(err) => assert!(Instant::now() < deadline, "no recovery: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = store
        .list("/registry/x/", ListOptions::default())
        .await
        .unwrap();
    assert_eq!(listed.kvs.len(), 2);
}
