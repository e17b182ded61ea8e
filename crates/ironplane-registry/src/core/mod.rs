//! The core ("legacy", `/api/v1`) kinds served so far, one module per resource as upstream lays
//! them out, and the schemas they share.

pub mod configmaps;
pub mod events;
pub mod limitranges;
pub mod namespaces;
pub mod resource_names;
pub mod resourcequotas;
pub mod secrets;
pub mod serviceaccounts;

use std::sync::Arc;

use ironplane_apimachinery::schema::{FieldSchema as F, Schema, StructSchema};
use serde_json::Value;

use crate::strategy::Strategy;

/// `v1.ObjectReference`.
pub static OBJECT_REFERENCE: StructSchema = StructSchema {
    go_name: "v1.ObjectReference",
    package: "io.k8s.api.core.v1",
    fields: &[
        F::new("kind", Schema::String).tag(1),
        F::new("namespace", Schema::String).tag(2),
        F::new("name", Schema::String).tag(3),
        F::new("uid", Schema::String).tag(4),
        F::new("apiVersion", Schema::String).tag(5),
        F::new("resourceVersion", Schema::String).tag(6),
        F::new("fieldPath", Schema::String).tag(7),
    ],
};

/// `v1.LocalObjectReference`.
pub static LOCAL_OBJECT_REFERENCE: StructSchema = StructSchema {
    go_name: "v1.LocalObjectReference",
    package: "io.k8s.api.core.v1",
    fields: &[F::new("name", Schema::String).tag(1)],
};

/// Every core kind's strategy, main resources first.
pub fn strategies() -> Vec<Arc<dyn Strategy>> {
    vec![
        Arc::new(namespaces::NamespaceStrategy::new()),
        Arc::new(configmaps::ConfigMapStrategy::new()),
        Arc::new(secrets::SecretStrategy::new()),
        Arc::new(serviceaccounts::ServiceAccountStrategy::new()),
        Arc::new(events::EventStrategy::new()),
        Arc::new(resourcequotas::ResourceQuotaStrategy::new()),
        Arc::new(limitranges::LimitRangeStrategy::new()),
    ]
}

/// The number of entries of a map or list field.
pub(crate) fn len_of(object: &serde_json::Map<String, Value>, name: &str) -> usize {
    match object.get(name) {
        Some(Value::Object(map)) => map.len(),
        Some(Value::Array(items)) => items.len(),
        _ => 0,
    }
}
