//! The server when a resource's watch cache is behind storage. While the cache is still loading
//! (a large collection after a restart), the server is ready and answers lists from storage, as
//! upstream does while its watch caches initialize; watches wait for the cache. While the cache
//! lags (its events not yet delivered), writes that start from its copy as a guess still act on
//! what storage holds. The tests hold the configmaps cache back by holding its storage watch or
//! the events on it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use ironplane_storage::{
    Deleted, GetResponse, KeyValue, ListOptions, ListResponse, Revision, Storage, StorageError,
    StoreStatus, Watch, WatchRequest,
};
use serde_json::json;
use support::{FrameReader, TestServer, configmap};
use tokio::sync::watch;

const CM: &str = "/api/v1/namespaces/default/configmaps";

/// Storage whose configmaps watch starts only once `open` is set, and passes events on only
/// while `paused` is not.
struct HeldWatch {
    inner: Arc<dyn Storage>,
    open: watch::Receiver<bool>,
    paused: watch::Receiver<bool>,
}

#[async_trait::async_trait]
impl Storage for HeldWatch {
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
        self.inner.update(key, value, expected, ttl).await
    }
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted, StorageError> {
        self.inner.delete(key, expected).await
    }
    async fn watch(&self, request: WatchRequest) -> Result<Watch, StorageError> {
        if !request.key.starts_with("/registry/configmaps/") {
            return self.inner.watch(request).await;
        }
        let mut open = self.open.clone();
        let _ = open.wait_for(|open| *open).await;
        let watch = self.inner.watch(request).await?;
        let progress = watch.progress_requester();
        let events = futures::stream::unfold(
            (watch, self.paused.clone()),
            |(mut watch, mut paused)| async move {
                let message = watch.next().await?;
                let _ = paused.wait_for(|paused| !*paused).await;
                Some((message, (watch, paused)))
            },
        );
        Ok(Watch::new(Box::pin(events), progress))
    }
    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        self.inner.compact(revision).await
    }
    async fn status(&self) -> Result<StoreStatus, StorageError> {
        self.inner.status().await
    }
}

#[tokio::test]
async fn lists_are_served_from_storage_while_the_cache_loads() {
    let (release, open) = watch::channel(false);
    let (_, paused) = watch::channel(false);
    let server = start_held(open, paused).await;
    // Ready although the configmaps cache is not: only the namespaces cache is waited for.
    let mut ready = false;
    for _ in 0..100 {
        if server.get("/readyz").await.status == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ready, "not ready while the configmaps cache loads");

    for index in 0..3 {
        let mut cm = configmap(&format!("cm-{index}"), &[]);
        cm["metadata"]["labels"] = json!({"even": (index % 2 == 0).to_string()});
        assert_eq!(server.post(CM, &cm).await.status, StatusCode::CREATED);
    }
    let all = server.get(CM).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text());
    let all = all.json();
    let names: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cm-0", "cm-1", "cm-2"]);
    let rv = all["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        all["items"][2]["metadata"]["resourceVersion"].as_str(),
        Some(rv.as_str()),
        "the list is at the latest revision"
    );
    let page = server.get(&format!("{CM}?limit=2")).await.json();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let token = page["metadata"]["continue"].as_str().unwrap().to_owned();
    let next = server
        .get(&format!("{CM}?limit=2&continue={token}"))
        .await
        .json();
    assert_eq!(next["items"][0]["metadata"]["name"], "cm-2");
    assert!(next["metadata"]["continue"].is_null());
    let even = server
        .get(&format!("{CM}?labelSelector=even%3Dtrue"))
        .await
        .json();
    assert_eq!(even["items"].as_array().unwrap().len(), 2);

    // A watch from the list's resourceVersion waits for the cache, then sees what follows.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        release.send_replace(true);
    });
    let (status, _, body) = server
        .stream(&format!("{CM}?watch=true&resourceVersion={rv}"), &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut frames = FrameReader::new(body);
    server.post(CM, &configmap("after", &[])).await;
    let added = frames.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(added["type"], "ADDED");
    assert_eq!(added["object"]["metadata"]["name"], "after");
    server.stop().await;
}

fn resource_version(object: &serde_json::Value) -> String {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A server whose configmaps watch starts once `open` is set and stalls while `paused` is.
async fn start_held(open: watch::Receiver<bool>, paused: watch::Receiver<bool>) -> TestServer {
    TestServer::start_on(
        |_| {},
        move |inner| {
            Arc::new(HeldWatch {
                inner,
                open,
                paused,
            })
        },
    )
    .await
}

/// Updates, patches and deletes start from the cache's copy as a guess (as upstream's
/// cachedExistingObject); with the cache held back they must still answer from storage's state:
/// no false conflicts, no lost changes, no-ops that stay no-ops.
#[tokio::test]
async fn writes_act_on_storage_while_the_cache_lags() {
    let (_, open) = watch::channel(true);
    let (pause, paused) = watch::channel(false);
    let server = start_held(open, paused).await;
    let path = format!("{CM}/lagging");
    let created = server.post(CM, &configmap("lagging", &[("a", "1")])).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let rv1 = resource_version(&created.json());
    // Wait until the cache holds it, then hold the cache there.
    let cached = server.get(&format!("{path}?resourceVersion={rv1}")).await;
    assert_eq!(cached.status, StatusCode::OK, "{}", cached.text());
    pause.send_replace(true);

    let mut body = configmap("lagging", &[("a", "2")]);
    body["metadata"]["resourceVersion"] = json!(rv1);
    let second = server.put(&path, &body).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    let rv2 = resource_version(&second.json());

    // The cache still says rv1: the update with the current rv2 must not be refused.
    let mut body = configmap("lagging", &[("a", "3")]);
    body["metadata"]["resourceVersion"] = json!(rv2);
    let third = server.put(&path, &body).await;
    assert_eq!(third.status, StatusCode::OK, "{}", third.text());
    let rv3 = resource_version(&third.json());
    assert_ne!(rv3, rv2);

    // Unchanged content is a no-op against storage's state, not against the cache's.
    body["metadata"]["resourceVersion"] = json!(rv3);
    let again = server.put(&path, &body).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    assert_eq!(resource_version(&again.json()), rv3);

    // A patch applies to storage's state: a=3 is kept.
    let patched = server
        .patch(
            &path,
            "application/merge-patch+json",
            &json!({"data": {"b": "1"}}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    let patched = patched.json();
    assert_eq!(patched["data"], json!({"a": "3", "b": "1"}));
    let rv4 = resource_version(&patched);

    // A stale resourceVersion is still a conflict.
    let mut stale = configmap("lagging", &[("a", "4")]);
    stale["metadata"]["resourceVersion"] = json!(rv2);
    let refused = server.put(&path, &stale).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text());

    // A delete whose precondition names the current resourceVersion goes through.
    let deleted = server
        .send_json(
            http::Method::DELETE,
            &path,
            &json!({"preconditions": {"resourceVersion": rv4}}),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text());
    assert_eq!(server.get(&path).await.status, StatusCode::NOT_FOUND);

    pause.send_replace(false);
    server.stop().await;
}
