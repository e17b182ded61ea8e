//! The set of served resources: one generic store per resource, with the strategies of its
//! subresources. The API server routes requests and builds discovery from it, so a resource
//! registered here is served and discoverable at once.

use std::collections::HashMap;
use std::sync::Arc;

use ironplane_apimachinery::{ApiError, Object, ObjectMeta};
use ironplane_storage::Storage;

use crate::cacher::CacheOptions;
use crate::core;
use crate::events;
use crate::resource::ResourceInfo;
use crate::store::{CreateOptions, Store, UpdateOptions};
use crate::strategy::Strategy;

/// A served resource: its store and the strategies of its subresources.
pub struct Resource {
    /// The generic store.
    pub store: Arc<Store>,
    /// Update strategies by subresource name (`status`, `finalize`).
    pub subresources: HashMap<String, Arc<dyn Strategy>>,
}

impl Resource {
    /// Names, scope and verbs.
    pub fn info(&self) -> &ResourceInfo {
        self.store.strategy().info()
    }
}

/// Every served resource.
pub struct Registry {
    resources: Vec<Arc<Resource>>,
    /// Group, then version, then resource: looked up with borrowed names on every request.
    index: HashMap<String, HashMap<String, HashMap<String, Arc<Resource>>>>,
}

impl Registry {
    /// The registry of the built-in kinds on `storage`.
    pub fn new(storage: Arc<dyn Storage>, cache_options: CacheOptions) -> Self {
        let mut registry = Registry {
            resources: Vec::new(),
            index: HashMap::new(),
        };
        for strategy in core::strategies().into_iter().chain(events::strategies()) {
            let subresources = strategy
                .subresources()
                .into_iter()
                .map(|(name, strategy)| (name.to_owned(), strategy))
                .collect();
            let store = Arc::new(Store::new(storage.clone(), strategy, cache_options.clone()));
            registry.add(Resource {
                store,
                subresources,
            });
        }
        registry
    }

    fn add(&mut self, resource: Resource) {
        let info = resource.info();
        let (group, version, name) = (
            info.group.clone(),
            info.version.clone(),
            info.resource.clone(),
        );
        let resource = Arc::new(resource);
        self.index
            .entry(group)
            .or_default()
            .entry(version)
            .or_default()
            .insert(name, resource.clone());
        self.resources.push(resource);
    }

    /// The resource served at `group/version/resource`.
    pub fn get(&self, group: &str, version: &str, resource: &str) -> Option<&Arc<Resource>> {
        self.index.get(group)?.get(version)?.get(resource)
    }

    /// Every resource, in registration order.
    pub fn resources(&self) -> &[Arc<Resource>] {
        &self.resources
    }

    /// The namespaces store.
    pub fn namespaces(&self) -> Option<&Arc<Resource>> {
        self.get("", "v1", "namespaces")
    }

    /// Create what every cluster starts with, when it is missing: the system namespaces, and the
    /// kube-system ConfigMaps the API server publishes itself (the client CA for extension API
    /// servers, and the date legacy service-account token tracking began).
    pub async fn bootstrap(&self, client_ca_pem: Option<&str>) -> Result<(), ApiError> {
        let mut data = serde_json::Map::new();
        if let Some(ca) = client_ca_pem {
            data.insert(
                "client-ca-file".into(),
                serde_json::Value::String(ca.to_owned()),
            );
        }
        let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
        let mut since = serde_json::Map::new();
        since.insert("since".into(), serde_json::Value::String(today));
        // All at once, so that a first start pays one group commit rather than six.
        let (namespaces, authentication, tracking) = futures::join!(
            self.bootstrap_namespaces(),
            self.ensure_configmap("extension-apiserver-authentication", data, true),
            self.ensure_configmap(
                "kube-apiserver-legacy-service-account-token-tracking",
                since,
                false,
            ),
        );
        namespaces.and(authentication).and(tracking)
    }

    /// Create `kube-system/{name}` with `data` if missing; with `refresh`, also bring existing
    /// data up to date (the client CA can change between starts).
    async fn ensure_configmap(
        &self,
        name: &str,
        data: serde_json::Map<String, serde_json::Value>,
        refresh: bool,
    ) -> Result<(), ApiError> {
        let Some(configmaps) = self.get("", "v1", "configmaps") else {
            return Ok(());
        };
        let mut object = Object {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            metadata: ObjectMeta {
                name: name.into(),
                namespace: "kube-system".into(),
                ..Default::default()
            },
            fields: Default::default(),
        };
        object
            .fields
            .insert("data".into(), serde_json::Value::Object(data.clone()));
        match configmaps
            .store
            .create(object, &CreateOptions::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.code() == 409 && refresh => {
                let wanted = serde_json::Value::Object(data);
                configmaps
                    .store
                    .update(
                        Some("kube-system"),
                        name,
                        None,
                        &UpdateOptions::default(),
                        |current| {
                            let mut next = current.cloned().unwrap_or_default();
                            next.fields.insert("data".into(), wanted.clone());
                            next.metadata.resource_version.clear();
                            Ok(next)
                        },
                    )
                    .await
                    .map(|_| ())
            }
            Err(err) if err.code() == 409 => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn bootstrap_namespaces(&self) -> Result<(), ApiError> {
        let Some(namespaces) = self.namespaces() else {
            return Ok(());
        };
        let options = CreateOptions::default();
        let creates = core::namespaces::SYSTEM_NAMESPACES.map(|name| {
            let namespace = Object {
                api_version: "v1".into(),
                kind: "Namespace".into(),
                metadata: ObjectMeta {
                    name: name.into(),
                    ..Default::default()
                },
                fields: Default::default(),
            };
            namespaces.store.create(namespace, &options)
        });
        for result in futures::future::join_all(creates).await {
            match result {
                Ok(_) => {}
                Err(err) if err.code() == 409 => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}
