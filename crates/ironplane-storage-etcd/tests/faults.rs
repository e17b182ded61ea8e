//! etcd faults under write load: the only member killed and restarted on the same data directory,
//! and one member of a three-member cluster killed. Clients get prompt errors instead of hanging,
//! no acknowledged write is lost, writes succeed again, and a watch opened before the fault either
//! continues without a gap or ends with an error (`Compacted` when the history it needs is gone).

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ironplane_storage::{
    ListOptions, ProgressRequester, Revision, Storage, StorageError, WatchMessage, WatchRequest,
};
use ironplane_storage_etcd::testing::{EtcdCluster, require_etcd};
use ironplane_storage_etcd::{EtcdOptions, EtcdStore};

const PREFIX: &str = "/registry/load/";
const WRITERS: usize = 4;

/// What the writers saw.
#[derive(Default)]
struct Outcome {
    /// Acknowledged creates: key → revision, with the time of the acknowledgement.
    acked: BTreeMap<String, (Revision, Instant)>,
    /// Failed requests: how long each took, and the error.
    failures: Vec<(Duration, String)>,
}

/// Writers that create keys one after another until `stop` is set, recording every answer.
fn start_load(
    store: Arc<EtcdStore>,
    stop: Arc<AtomicBool>,
) -> (Arc<Mutex<Outcome>>, Vec<tokio::task::JoinHandle<()>>) {
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let tasks = (0..WRITERS)
        .map(|writer| {
            let store = store.clone();
            let outcome = outcome.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let key = format!("{PREFIX}w{writer}-{i:05}");
                    i += 1;
                    let started = Instant::now();
                    let result = store.create(&key, Bytes::from(key.clone()), None).await;
                    let took = started.elapsed();
                    let failed = {
                        let mut outcome = outcome.lock().unwrap();
                        match result {
                            Ok(kv) => {
                                outcome.acked.insert(key, (kv.mod_revision, Instant::now()));
                                false
                            }
                            Err(err) => {
                                outcome.failures.push((took, err.to_string()));
                                true
                            }
                        }
                    };
                    if failed {
                        // Do not spin while etcd is down.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();
    (outcome, tasks)
}

/// Keep the load running until some write after `since` was acknowledged (or 20 s have passed:
/// a busy machine may take a while to elect a leader or reconnect), then stop it.
async fn run_until_acked_after(
    outcome: &Mutex<Outcome>,
    since: Instant,
    stop: &AtomicBool,
    writers: Vec<tokio::task::JoinHandle<()>>,
) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline
        && !outcome
            .lock()
            .unwrap()
            .acked
            .values()
            .any(|(_, at)| *at > since)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }
    std::mem::take(&mut *outcome.lock().unwrap())
}

/// What a watch delivered, read by its own task as a watch cache would read it.
#[derive(Default)]
struct WatchLog {
    events: Vec<(String, Revision)>,
    progress: Revision,
    ended: Option<Option<StorageError>>,
}

/// A watch of the load's keys, read continuously from now on.
struct Follower {
    log: Arc<Mutex<WatchLog>>,
    progress: Arc<dyn ProgressRequester>,
}

impl Follower {
    async fn start(store: &EtcdStore) -> Follower {
        let mut watch = store
            .watch(WatchRequest {
                key: PREFIX.into(),
                prefix: true,
                after: 0,
                progress_notify: true,
            })
            .await
            .unwrap();
        let log = Arc::new(Mutex::new(WatchLog::default()));
        let progress = watch.progress_requester();
        let writer = log.clone();
        tokio::spawn(async move {
            loop {
                let message = watch.next().await;
                let mut log = writer.lock().unwrap();
                match message {
                    None => {
                        log.ended = Some(None);
                        return;
                    }
                    Some(Err(err)) => {
                        log.ended = Some(Some(err));
                        return;
                    }
                    Some(Ok(WatchMessage::Events(batch))) => log
                        .events
                        .extend(batch.into_iter().map(|e| (e.kv.key.clone(), e.revision()))),
                    Some(Ok(WatchMessage::Progress(at))) => log.progress = log.progress.max(at),
                }
            }
        });
        Follower { log, progress }
    }

    /// Wait until the watch announces progress at `revision` or ends; return what it saw.
    async fn until(&self, revision: Revision) -> WatchLog {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            {
                let mut log = self.log.lock().unwrap();
                if log.progress >= revision || log.ended.is_some() {
                    return std::mem::take(&mut *log);
                }
            }
            assert!(
                Instant::now() < deadline,
                "the watch neither caught up with {revision} nor ended"
            );
            self.progress.request_progress();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The checks both fault tests make once the load is over.
async fn check_after_fault(
    store: &EtcdStore,
    outcome: &Outcome,
    watch: &Follower,
    recovered_at: Instant,
    request_timeout: Duration,
) {
    // Errors came promptly: nothing waited much past the request deadline.
    let slowest = outcome.failures.iter().map(|(took, _)| *took).max();
    assert!(
        slowest.is_none_or(|took| took <= request_timeout + Duration::from_secs(1)),
        "a failed request took {slowest:?} (deadline {request_timeout:?})"
    );
    // Writes succeed again after the fault.
    let after = outcome
        .acked
        .values()
        .filter(|(_, at)| *at > recovered_at)
        .count();
    assert!(after > 0, "no write succeeded after etcd recovered");
    // No acknowledged write is lost.
    let listed = store.list(PREFIX, ListOptions::default()).await.unwrap();
    let stored: BTreeMap<&str, Revision> = listed
        .kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.mod_revision))
        .collect();
    for (key, (revision, _)) in &outcome.acked {
        assert_eq!(
            stored.get(key.as_str()),
            Some(revision),
            "acknowledged write {key} at {revision} is missing"
        );
    }
    // The watch opened before the fault saw every change, in order, once; or it ended.
    let WatchLog { events, ended, .. } = watch.until(listed.revision).await;
    let revisions: Vec<Revision> = events.iter().map(|(_, r)| *r).collect();
    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "events out of order or repeated"
    );
    match ended {
        None => {
            let mut expected: Vec<(String, Revision)> = listed
                .kvs
                .iter()
                .map(|kv| (kv.key.clone(), kv.mod_revision))
                .collect();
            expected.sort_by_key(|(_, r)| *r);
            assert_eq!(
                events.len(),
                expected.len(),
                "the watch has a gap or extra events"
            );
            assert_eq!(events, expected);
        }
        Some(None) => panic!("the watch ended without an error"),
        Some(Some(err @ (StorageError::Compacted { .. } | StorageError::Unavailable(_)))) => {
            eprintln!("the watch ended after the fault (allowed): {err}");
        }
        Some(Some(other)) => panic!("the watch ended with an unexpected error: {other}"),
    }
    eprintln!(
        "{} writes acknowledged, {} failed (slowest failure {slowest:?})",
        outcome.acked.len(),
        outcome.failures.len()
    );
}

/// The only etcd member is killed during the load and restarted on the same data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_restart_under_load() {
    if require_etcd().is_none() {
        return;
    }
    let mut etcd = EtcdCluster::start();
    let timeout = Duration::from_secs(1);
    let store = Arc::new(
        EtcdStore::connect(EtcdOptions::new(etcd.endpoints()).request_timeout(timeout))
            .await
            .unwrap(),
    );
    let watch = Follower::start(&store).await;
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let (outcome, writers) = start_load(store.clone(), stop.clone());

    tokio::time::sleep(Duration::from_millis(1500)).await;
    etcd.members[0].kill();
    let killed = Instant::now();
    // While etcd is down, every kind of request fails promptly.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (what, result) in [
        ("status", store.status().await.map(|_| ())),
        ("get", store.get("/registry/load/x", None).await.map(|_| ())),
        (
            "list",
            store.list(PREFIX, ListOptions::default()).await.map(|_| ()),
        ),
    ] {
        assert!(
            matches!(result, Err(StorageError::Unavailable(_))),
            "{what} while etcd is down: {result:?}"
        );
    }
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "requests hung while etcd was down"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    etcd.members[0].restart();
    etcd.wait_healthy(Duration::from_secs(20)).unwrap();
    let recovered = Instant::now();
    eprintln!(
        "etcd killed at {:?}, healthy again at {:?}",
        killed - started,
        recovered - started
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let outcome = run_until_acked_after(&outcome, recovered, &stop, writers).await;
    assert!(
        outcome.acked.values().any(|(_, at)| *at < killed),
        "no write succeeded before the fault"
    );
    assert!(
        !outcome.failures.is_empty(),
        "no request failed while etcd was down"
    );
    check_after_fault(&store, &outcome, &watch, recovered, timeout).await;
}

/// One member of three (the leader) is killed during the load; the client knows all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_member_killed_under_load() {
    if require_etcd().is_none() {
        return;
    }
    let mut etcd = EtcdCluster::start_members(3);
    let timeout = Duration::from_secs(2);
    let store = Arc::new(
        EtcdStore::connect(EtcdOptions::new(etcd.endpoints()).request_timeout(timeout))
            .await
            .unwrap(),
    );
    let leader = leader_index(&etcd).await;
    let watch = Follower::start(&store).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (outcome, writers) = start_load(store.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    etcd.members[leader].kill();
    let killed = Instant::now();
    // The cluster elects a new leader within a few seconds; writes continue after that.
    let recovered = killed + Duration::from_secs(3);
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let outcome = run_until_acked_after(&outcome, recovered, &stop, writers).await;
    check_after_fault(&store, &outcome, &watch, recovered, timeout).await;
}

/// Which member leads the cluster.
async fn leader_index(etcd: &EtcdCluster) -> usize {
    for _ in 0..50 {
        for (i, endpoint) in etcd.endpoints().iter().enumerate() {
            let Ok(mut client) = etcd_client::Client::connect([endpoint], None).await else {
                continue;
            };
            if let Ok(status) = client.status().await
                && status
                    .header()
                    .is_some_and(|h| h.member_id() == status.leader())
            {
                return i;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the cluster has no leader");
}

/// A store's watch stream is cut off (its only member is down) while the rest of the cluster
/// writes and compacts: when the member returns, the watch cannot resume without a gap, so it
/// ends with `Compacted`; new watches work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_ends_with_compacted_when_history_is_gone() {
    if require_etcd().is_none() {
        return;
    }
    let mut etcd = EtcdCluster::start_members(3);
    let endpoints = etcd.endpoints();
    let cut_off = EtcdStore::connect(
        EtcdOptions::new([endpoints[0].clone()]).request_timeout(Duration::from_secs(1)),
    )
    .await
    .unwrap();
    let others = EtcdStore::connect(EtcdOptions::new(endpoints[1..].to_vec()))
        .await
        .unwrap();
    let mut watch = cut_off
        .watch(WatchRequest {
            key: PREFIX.into(),
            prefix: true,
            after: 0,
            progress_notify: false,
        })
        .await
        .unwrap();
    let first = others
        .create(&format!("{PREFIX}before"), Bytes::from_static(b"x"), None)
        .await
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
        Ok(Some(Ok(WatchMessage::Events(events)))) => assert_eq!(events[0].kv, first),
        other => panic!("expected the first event, got {other:?}"),
    }
    etcd.members[0].kill();
    // If the killed member led the cluster, the first writes meet the election: retry them.
    for i in 0..5 {
        let key = format!("{PREFIX}during-{i}");
        let deadline = Instant::now() + Duration::from_secs(20);
        // A create that timed out may still have committed: its retry then finds the key.
        while let Err(err) = others.create(&key, Bytes::from_static(b"x"), None).await {
            if matches!(err, StorageError::AlreadyExists { .. }) {
                break;
            }
            assert!(Instant::now() < deadline, "writes did not resume: {err:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let now = others.status().await.unwrap().revision;
    others.compact(now).await.unwrap();
    etcd.members[0].restart();
    etcd.wait_healthy(Duration::from_secs(20)).unwrap();
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(20), watch.next()).await {
            Ok(Some(Ok(WatchMessage::Progress(_)))) => {}
            Ok(Some(Ok(WatchMessage::Events(events)))) => {
                panic!("events after a gap: {events:?}")
            }
            Ok(other) => break other,
            Err(_) => panic!("the watch neither resumed nor ended"),
        }
    };
    assert!(
        matches!(ended, Some(Err(StorageError::Compacted { .. }))),
        "{ended:?}"
    );
    // The store watches again from the current revision.
    let mut again = cut_off
        .watch(WatchRequest {
            key: PREFIX.into(),
            prefix: true,
            after: 0,
            progress_notify: false,
        })
        .await
        .unwrap();
    let after = others
        .create(&format!("{PREFIX}after"), Bytes::from_static(b"x"), None)
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), again.next()).await {
            Ok(Some(Ok(WatchMessage::Events(events)))) => {
                assert_eq!(events.last().unwrap().kv, after);
                break;
            }
            Ok(Some(Ok(WatchMessage::Progress(_)))) => {}
            other => panic!("expected the new event, got {other:?}"),
        }
    }
}
