//! Secrets: base64 data (with `stringData` folded in on write), a type whose required keys are
//! checked, at most 1 MiB, optionally immutable.

use base64::Engine as _;
use ironplane_apimachinery::Object;
use ironplane_apimachinery::field::{Error, ErrorList, Path};
use ironplane_apimachinery::schema::{FieldSchema as F, Schema, StructSchema, meta};
use ironplane_apimachinery::table::{self, TableColumnDefinition};
use serde_json::{Map, Value};

use super::configmaps::{MAX_DATA_BYTES, validate_immutable, validate_keys};
use crate::resource::ResourceInfo;
use crate::strategy::Strategy;

/// `v1.Secret`.
pub static SCHEMA: StructSchema = StructSchema {
    go_name: "v1.Secret",
    package: "io.k8s.api.core.v1",
    fields: &[
        meta::OBJECT_FIELDS[0],
        meta::OBJECT_FIELDS[1],
        meta::OBJECT_FIELDS[2],
        F::new("immutable", Schema::Bool).pointer().tag(5),
        F::new("data", Schema::Map(&Schema::Bytes)).tag(2),
        F::new("stringData", Schema::Map(&Schema::String)).tag(4),
        F::new("type", Schema::String).tag(3),
    ],
};

/// The Secret strategy.
pub struct SecretStrategy {
    info: ResourceInfo,
}

impl SecretStrategy {
    /// The strategy with upstream's resource names.
    pub fn new() -> Self {
        SecretStrategy {
            info: ResourceInfo::new("", "v1", "secrets", "secret", "Secret", true),
        }
    }
}

impl Default for SecretStrategy {
    fn default() -> Self {
        Self::new()
    }
}

/// Fold `stringData` into `data` (stringData wins) and default the type, as upstream's
/// defaulting and conversion do before anything else sees the object.
fn normalize(object: &mut Object) {
    if let Some(Value::Object(strings)) = object.fields.shift_remove("stringData") {
        let engine = base64::engine::general_purpose::STANDARD;
        let mut data = match object.fields.shift_remove("data") {
            Some(Value::Object(data)) => data,
            _ => Map::new(),
        };
        for (key, value) in strings {
            let text = value.as_str().unwrap_or_default();
            data.insert(key, Value::String(engine.encode(text)));
        }
        let mut sorted: Vec<(String, Value)> = data.into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        object
            .fields
            .insert("data".into(), Value::Object(sorted.into_iter().collect()));
    }
    if object.string_at(&["type"]).is_none_or(str::is_empty) {
        object
            .fields
            .insert("type".into(), Value::String("Opaque".into()));
    }
    ironplane_apimachinery::schema::reorder(&mut object.fields, &SCHEMA);
}

fn data_keys(object: &Object) -> Vec<&str> {
    object
        .field("data")
        .and_then(Value::as_object)
        .map(|map| map.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

fn data_value(object: &Object, key: &str) -> Option<Vec<u8>> {
    let text = object.field("data")?.get(key)?.as_str()?;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

fn validate_json_key(object: &Object, key: &str, errors: &mut ErrorList) -> bool {
    let path = Path::new("data").key(key);
    match data_value(object, key) {
        None if !data_keys(object).contains(&key) => {
            errors.push(Error::required(&path, ""));
            false
        }
        value => {
            let bytes = value.unwrap_or_default();
            if let Err(err) = serde_json::from_slice::<Map<String, Value>>(&bytes) {
                errors.push(Error::invalid(
                    &path,
                    "<secret contents redacted>",
                    &err.to_string(),
                ));
            }
            true
        }
    }
}

impl Strategy for SecretStrategy {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn schema(&self) -> &'static StructSchema {
        &SCHEMA
    }

    fn prepare_for_create(&self, object: &mut Object) {
        normalize(object);
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        normalize(new);
    }

    fn validate(&self, object: &Object) -> ErrorList {
        let mut errors = Vec::new();
        let size = validate_keys(object, "data", true, &mut errors);
        let data = Path::new("data");
        if size > MAX_DATA_BYTES {
            errors.push(Error::too_long(&data, MAX_DATA_BYTES as i64));
        }
        let keys = data_keys(object);
        let has = |key: &str| keys.contains(&key);
        match object.string_at(&["type"]).unwrap_or_default() {
            "kubernetes.io/service-account-token"
                if object
                    .metadata
                    .annotations
                    .get("kubernetes.io/service-account.name")
                    .is_none_or(String::is_empty) =>
            {
                errors.push(Error::required(
                    &Path::new("metadata")
                        .child("annotations")
                        .key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
            "kubernetes.io/dockercfg" => {
                validate_json_key(object, ".dockercfg", &mut errors);
            }
            "kubernetes.io/dockerconfigjson" => {
                validate_json_key(object, ".dockerconfigjson", &mut errors);
            }
            "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
                errors.push(Error::required(&data.key("username"), ""));
                errors.push(Error::required(&data.key("password"), ""));
            }
            "kubernetes.io/ssh-auth"
                if data_value(object, "ssh-privatekey").is_none_or(|value| value.is_empty()) =>
            {
                errors.push(Error::required(&data.key("ssh-privatekey"), ""));
            }
            "kubernetes.io/tls" => {
                if !has("tls.crt") {
                    errors.push(Error::required(&data.key("tls.crt"), ""));
                }
                if !has("tls.key") {
                    errors.push(Error::required(&data.key("tls.key"), ""));
                }
            }
            _ => {}
        }
        errors
    }

    fn validate_update(&self, new: &Object, old: &Object) -> ErrorList {
        let mut errors = Vec::new();
        let new_type = new.string_at(&["type"]).unwrap_or_default();
        if new_type != old.string_at(&["type"]).unwrap_or_default() {
            errors.push(Error::invalid(
                &Path::new("type"),
                new_type,
                "field is immutable",
            ));
        }
        validate_immutable(new, old, &["data"], &mut errors);
        errors.extend(self.validate(new));
        errors
    }

    fn table_columns(&self) -> Vec<TableColumnDefinition> {
        vec![
            TableColumnDefinition::name_column(),
            TableColumnDefinition::string("Type", "The type of the secret."),
            TableColumnDefinition::string("Data", "Number of data entries."),
            TableColumnDefinition::age_column(),
        ]
    }

    fn table_row(&self, object: &Object, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            Value::String(object.metadata.name.clone()),
            Value::String(object.string_at(&["type"]).unwrap_or_default().to_owned()),
            Value::from(super::len_of(&object.fields, "data")),
            Value::String(table::age(
                object.metadata.creation_timestamp.as_deref(),
                now,
            )),
        ]
    }

    fn selectable_fields(&self, object: &Object) -> Vec<(&'static str, String)> {
        let mut fields = crate::strategy::default_fields(object, true);
        fields.push((
            "type",
            object.string_at(&["type"]).unwrap_or_default().to_owned(),
        ));
        fields
    }

    fn supported_fields(&self) -> &'static [&'static str] {
        &["metadata.name", "metadata.namespace", "type"]
    }
}
