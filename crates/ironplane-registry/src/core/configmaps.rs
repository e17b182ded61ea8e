//! ConfigMaps: string and binary data under validated keys, at most 1 MiB, optionally immutable.

use ironplane_apimachinery::Object;
use ironplane_apimachinery::field::{Error, ErrorList, Path};
use ironplane_apimachinery::schema::{FieldSchema as F, Schema, StructSchema, meta};
use ironplane_apimachinery::table::{self, TableColumnDefinition};
use ironplane_apimachinery::validation::is_config_map_key;
use serde_json::Value;

use crate::resource::ResourceInfo;
use crate::strategy::Strategy;

/// The most data a ConfigMap or Secret may hold (`MaxSecretSize`).
pub const MAX_DATA_BYTES: usize = 1024 * 1024;

/// `v1.ConfigMap`.
pub static SCHEMA: StructSchema = StructSchema {
    go_name: "v1.ConfigMap",
    package: "io.k8s.api.core.v1",
    fields: &[
        meta::OBJECT_FIELDS[0],
        meta::OBJECT_FIELDS[1],
        meta::OBJECT_FIELDS[2],
        F::new("immutable", Schema::Bool).pointer().tag(4),
        F::new("data", Schema::Map(&Schema::String)).tag(2),
        F::new("binaryData", Schema::Map(&Schema::Bytes)).tag(3),
    ],
};

/// The ConfigMap strategy.
pub struct ConfigMapStrategy {
    info: ResourceInfo,
}

impl ConfigMapStrategy {
    /// The strategy with upstream's resource names.
    pub fn new() -> Self {
        ConfigMapStrategy {
            info: ResourceInfo::new("", "v1", "configmaps", "configmap", "ConfigMap", true)
                .short_names(&["cm"]),
        }
    }
}

impl Default for ConfigMapStrategy {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `immutable: true` is set.
pub(crate) fn is_immutable(object: &Object) -> bool {
    object.field("immutable").and_then(Value::as_bool) == Some(true)
}

/// Keys of `field` must be ConfigMap keys; returns the decoded size of the values.
pub(crate) fn validate_keys(
    object: &Object,
    field: &str,
    base64: bool,
    errors: &mut ErrorList,
) -> usize {
    let mut size = 0;
    let Some(Value::Object(map)) = object.field(field) else {
        return 0;
    };
    for (key, value) in map {
        for message in is_config_map_key(key) {
            errors.push(Error::invalid(
                &Path::new(field).key(key),
                key.as_str(),
                &message,
            ));
        }
        let text = value.as_str().unwrap_or_default();
        size += if base64 {
            (text.len() / 4 * 3)
                .saturating_sub(text.bytes().rev().take_while(|b| *b == b'=').count())
        } else {
            text.len()
        };
    }
    size
}

/// Immutable objects refuse changes to `immutable` and to these data fields.
pub(crate) fn validate_immutable(
    new: &Object,
    old: &Object,
    data_fields: &[&str],
    errors: &mut ErrorList,
) {
    if !is_immutable(old) {
        return;
    }
    const MESSAGE: &str = "field is immutable when `immutable` is set";
    if !is_immutable(new) {
        errors.push(Error::forbidden(&Path::new("immutable"), MESSAGE));
    }
    for field in data_fields {
        if new.field(field) != old.field(field) {
            errors.push(Error::forbidden(&Path::new(field), MESSAGE));
        }
    }
}

impl Strategy for ConfigMapStrategy {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn schema(&self) -> &'static StructSchema {
        &SCHEMA
    }

    fn validate(&self, object: &Object) -> ErrorList {
        let mut errors = Vec::new();
        let mut size = 0;
        if let Some(Value::Object(data)) = object.field("data") {
            let binary = object.field("binaryData").and_then(Value::as_object);
            for key in data.keys() {
                if binary.is_some_and(|binary| binary.contains_key(key)) {
                    errors.push(Error::invalid(
                        &Path::new("data").key(key),
                        key.as_str(),
                        "duplicate of key present in binaryData",
                    ));
                }
            }
        }
        size += validate_keys(object, "data", false, &mut errors);
        size += validate_keys(object, "binaryData", true, &mut errors);
        if size > MAX_DATA_BYTES {
            errors.push(Error::too_long(&Path::new(""), MAX_DATA_BYTES as i64));
        }
        errors
    }

    fn validate_update(&self, new: &Object, old: &Object) -> ErrorList {
        let mut errors = Vec::new();
        validate_immutable(new, old, &["data", "binaryData"], &mut errors);
        errors.extend(self.validate(new));
        errors
    }

    fn table_columns(&self) -> Vec<TableColumnDefinition> {
        vec![
            TableColumnDefinition::name_column(),
            TableColumnDefinition::string("Data", "Number of data entries."),
            TableColumnDefinition::age_column(),
        ]
    }

    fn table_row(&self, object: &Object, now: jiff::Timestamp) -> Vec<Value> {
        let count =
            super::len_of(&object.fields, "data") + super::len_of(&object.fields, "binaryData");
        vec![
            Value::String(object.metadata.name.clone()),
            Value::from(count),
            Value::String(table::age(
                object.metadata.creation_timestamp.as_deref(),
                now,
            )),
        ]
    }
}
