//! While a resource's watch cache is still loading (a large collection after a restart), the
//! server is ready and answers lists from storage, as upstream does while its watch caches
//! initialize; watches wait for the cache. The test holds the configmaps cache back by holding
//! its storage watch.

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

/// Storage whose configmaps watch starts only once `open` is set.
struct HeldWatch {
    inner: Arc<dyn Storage>,
    open: watch::Receiver<bool>,
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
        if request.key.starts_with("/registry/configmaps/") {
            let mut open = self.open.clone();
            let _ = open.wait_for(|open| *open).await;
        }
        self.inner.watch(request).await
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
    let server =
        TestServer::start_on(|_| {}, move |inner| Arc::new(HeldWatch { inner, open })).await;
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
