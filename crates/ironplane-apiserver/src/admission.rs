//! Admission: checks that run after decoding and before the store, as upstream's admission
//! chain. Today it holds NamespaceLifecycle: nothing is created in a namespace that does not exist
//! or is terminating. (Deleting the immortal namespaces is refused by the namespace strategy.)

use std::sync::Arc;

use ironplane_apimachinery::status::StatusCause;
use ironplane_apimachinery::{ApiError, GroupResource, Object};
use ironplane_registry::{Registry, ResourceInfo};

/// The admission chain.
pub struct Admission {
    registry: Arc<Registry>,
}

impl Admission {
    /// Admission over the registry's objects.
    pub fn new(registry: Arc<Registry>) -> Self {
        Admission { registry }
    }

    /// Admit a create.
    pub async fn admit_create(
        &self,
        resource: &ResourceInfo,
        object: &Object,
    ) -> Result<(), ApiError> {
        self.namespace_lifecycle(resource, object).await
    }

    async fn namespace_lifecycle(
        &self,
        resource: &ResourceInfo,
        object: &Object,
    ) -> Result<(), ApiError> {
        if !resource.namespaced || object.metadata.namespace.is_empty() {
            return Ok(());
        }
        let Some(namespaces) = self.registry.namespaces() else {
            return Ok(());
        };
        let name = object.metadata.namespace.as_str();
        let key = namespaces.store.key(None, name);
        // The cache answers almost always, from the phase it keeps for field selectors (no decode
        // on every create); a namespace created a moment ago may not be there yet, so a miss is
        // checked against storage before refusing. A namespace is Terminating exactly when it
        // carries a deletionTimestamp: validation holds the two together.
        let terminating = match namespaces.store.cache().get(&key) {
            Some(cached) => cached.field("status.phase") == Some("Terminating"),
            None => match namespaces.store.get(None, name, None).await {
                Ok(namespace) => namespace.string_at(&["status", "phase"]) == Some("Terminating"),
                Err(err) if err.code() == 404 => {
                    return Err(ApiError::not_found(
                        &GroupResource::new("", "namespaces"),
                        name,
                    ));
                }
                Err(err) => return Err(err),
            },
        };
        if terminating {
            let mut err = ApiError::forbidden(
                &resource.group_resource(),
                &object.metadata.name,
                &format!(
                    "unable to create new content in namespace {name} because it is being terminated"
                ),
            );
            if let Some(details) = err.status.details.as_mut() {
                details.causes.push(StatusCause {
                    reason: "NamespaceTerminating".into(),
                    message: format!("namespace {name} is being terminated"),
                    field: "metadata.namespace".into(),
                });
            }
            return Err(err);
        }
        Ok(())
    }
}
