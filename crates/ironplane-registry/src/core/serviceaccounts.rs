//! ServiceAccounts: identities for processes, with their secrets and image pull secrets.

use ironplane_apimachinery::Object;
use ironplane_apimachinery::schema::{FieldSchema as F, ListPatch, Schema, StructSchema, meta};
use ironplane_apimachinery::table::{self, TableColumnDefinition};
use serde_json::Value;

use super::{LOCAL_OBJECT_REFERENCE, OBJECT_REFERENCE};
use crate::resource::ResourceInfo;
use crate::strategy::Strategy;

/// `v1.ServiceAccount`.
pub static SCHEMA: StructSchema = StructSchema {
    go_name: "v1.ServiceAccount",
    package: "io.k8s.api.core.v1",
    fields: &[
        meta::OBJECT_FIELDS[0],
        meta::OBJECT_FIELDS[1],
        meta::OBJECT_FIELDS[2],
        F::new(
            "secrets",
            Schema::List(
                &Schema::Struct(&OBJECT_REFERENCE),
                ListPatch::MergeByKey("name"),
            ),
        )
        .tag(2),
        F::new(
            "imagePullSecrets",
            Schema::List(&Schema::Struct(&LOCAL_OBJECT_REFERENCE), ListPatch::Replace),
        )
        .tag(3),
        F::new("automountServiceAccountToken", Schema::Bool)
            .pointer()
            .tag(4),
    ],
};

/// The ServiceAccount strategy.
pub struct ServiceAccountStrategy {
    info: ResourceInfo,
}

impl ServiceAccountStrategy {
    /// The strategy with upstream's resource names.
    pub fn new() -> Self {
        ServiceAccountStrategy {
            info: ResourceInfo::new(
                "",
                "v1",
                "serviceaccounts",
                "serviceaccount",
                "ServiceAccount",
                true,
            )
            .short_names(&["sa"]),
        }
    }
}

impl Default for ServiceAccountStrategy {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for ServiceAccountStrategy {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn schema(&self) -> &'static StructSchema {
        &SCHEMA
    }

    fn table_columns(&self) -> Vec<TableColumnDefinition> {
        vec![
            TableColumnDefinition::name_column(),
            TableColumnDefinition::string(
                "Secrets",
                "Number of secrets the service account may use.",
            ),
            TableColumnDefinition::age_column(),
        ]
    }

    fn table_row(&self, object: &Object, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            Value::String(object.metadata.name.clone()),
            Value::from(super::len_of(&object.fields, "secrets")),
            Value::String(table::age(
                object.metadata.creation_timestamp.as_deref(),
                now,
            )),
        ]
    }
}
