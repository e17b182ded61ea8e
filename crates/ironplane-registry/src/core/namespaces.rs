//! Namespaces: cluster-scoped, born Active with the `kubernetes` finalizer, and deleted in two
//! steps as upstream does: the first delete marks them Terminating; they go once `spec.finalizers`
//! is empty (through the `finalize` subresource) and they are deleted again.

use std::sync::Arc;

use ironplane_apimachinery::field::{Error, ErrorList, Path};
use ironplane_apimachinery::meta::now_rfc3339;
use ironplane_apimachinery::schema::{FieldSchema as F, ListPatch, Schema, StructSchema, meta};
use ironplane_apimachinery::table::{self, TableColumnDefinition};
use ironplane_apimachinery::validation::validate_kube_finalizer_name;
use ironplane_apimachinery::{ApiError, Object};
use serde_json::{Map, Value, json};

use crate::resource::ResourceInfo;
use crate::strategy::{NameRule, Strategy};

/// The label every namespace carries with its own name.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The finalizer the namespace controller owns.
pub const KUBERNETES_FINALIZER: &str = "kubernetes";

/// Namespaces that can never be deleted.
pub const IMMORTAL: [&str; 3] = ["default", "kube-system", "kube-public"];

/// Namespaces created at first start.
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

static NAMESPACE_CONDITION: StructSchema = StructSchema {
    go_name: "v1.NamespaceCondition",
    package: "io.k8s.api.core.v1",
    fields: &[
        F::new("type", Schema::String).tag(1),
        F::new("status", Schema::String).tag(2),
        F::new("lastTransitionTime", Schema::Time).always().tag(4),
        F::new("reason", Schema::String).tag(5),
        F::new("message", Schema::String).tag(6),
    ],
};

static NAMESPACE_SPEC: StructSchema = StructSchema {
    go_name: "v1.NamespaceSpec",
    package: "io.k8s.api.core.v1",
    fields: &[F::new(
        "finalizers",
        Schema::List(&Schema::String, ListPatch::Replace),
    )
    .tag(1)],
};

static NAMESPACE_STATUS: StructSchema = StructSchema {
    go_name: "v1.NamespaceStatus",
    package: "io.k8s.api.core.v1",
    fields: &[
        F::new("phase", Schema::String).tag(1),
        F::new(
            "conditions",
            Schema::List(
                &Schema::Struct(&NAMESPACE_CONDITION),
                ListPatch::MergeByKey("type"),
            ),
        )
        .tag(2),
    ],
};

/// `v1.Namespace`.
pub static SCHEMA: StructSchema = StructSchema {
    go_name: "v1.Namespace",
    package: "io.k8s.api.core.v1",
    fields: &[
        meta::OBJECT_FIELDS[0],
        meta::OBJECT_FIELDS[1],
        meta::OBJECT_FIELDS[2],
        F::new("spec", Schema::Struct(&NAMESPACE_SPEC))
            .always()
            .tag(2),
        F::new("status", Schema::Struct(&NAMESPACE_STATUS))
            .always()
            .tag(3),
    ],
};

/// Which part of a namespace an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// The main resource: metadata only.
    Main,
    /// `namespaces/status`.
    Status,
    /// `namespaces/finalize`: `spec.finalizers`.
    Finalize,
}

/// The Namespace strategy (and, with another part, its subresources).
pub struct NamespaceStrategy {
    info: ResourceInfo,
    part: Part,
}

impl NamespaceStrategy {
    /// The main resource's strategy.
    pub fn new() -> Self {
        Self::with_part(Part::Main)
    }

    /// The strategy of `namespaces/status`.
    pub fn status() -> Self {
        Self::with_part(Part::Status)
    }

    /// The strategy of `namespaces/finalize`.
    pub fn finalize() -> Self {
        Self::with_part(Part::Finalize)
    }

    fn with_part(part: Part) -> Self {
        NamespaceStrategy {
            info: ResourceInfo::new("", "v1", "namespaces", "namespace", "Namespace", false)
                .short_names(&["ns"])
                .verbs(&[
                    "create", "delete", "get", "list", "patch", "update", "watch",
                ])
                .subresource("finalize", &["update"])
                .subresource("status", &["get", "patch", "update"]),
            part,
        }
    }
}

impl Default for NamespaceStrategy {
    fn default() -> Self {
        Self::new()
    }
}

fn spec_finalizers(object: &Object) -> Vec<String> {
    object
        .field("spec")
        .and_then(|spec| spec.get("finalizers"))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|item| item.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn phase(object: &Object) -> &str {
    object.string_at(&["status", "phase"]).unwrap_or_default()
}

fn set_phase(object: &mut Object, phase: &str) {
    let status = object
        .fields
        .entry("status")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(status) = status {
        status.insert("phase".into(), Value::String(phase.into()));
    }
}

fn copy_field(to: &mut Object, from: &Object, name: &str) {
    match from.field(name) {
        Some(value) => {
            to.fields.insert(name.into(), value.clone());
        }
        None => {
            to.fields.shift_remove(name);
        }
    }
}

fn set_spec_finalizers(object: &mut Object, finalizers: Vec<String>) {
    let spec = object
        .fields
        .entry("spec")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(spec) = spec {
        if finalizers.is_empty() {
            spec.shift_remove("finalizers");
        } else {
            spec.insert("finalizers".into(), json!(finalizers));
        }
    }
}

/// Keep spec before status, as the schema orders them, whatever order they were inserted in.
fn order_fields(object: &mut Object) {
    for name in ["spec", "status"] {
        object
            .fields
            .entry(name)
            .or_insert_with(|| Value::Object(Map::new()));
    }
    ironplane_apimachinery::schema::reorder(&mut object.fields, &SCHEMA);
}

impl Strategy for NamespaceStrategy {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn schema(&self) -> &'static StructSchema {
        &SCHEMA
    }

    fn name_rule(&self) -> NameRule {
        NameRule::Namespace
    }

    fn subresources(&self) -> Vec<(&'static str, Arc<dyn Strategy>)> {
        match self.part {
            Part::Main => vec![
                ("status", Arc::new(NamespaceStrategy::status())),
                ("finalize", Arc::new(NamespaceStrategy::finalize())),
            ],
            Part::Status | Part::Finalize => Vec::new(),
        }
    }

    fn prepare_for_create(&self, object: &mut Object) {
        let mut finalizers = spec_finalizers(object);
        if !finalizers.iter().any(|f| f == KUBERNETES_FINALIZER) {
            finalizers.push(KUBERNETES_FINALIZER.into());
        }
        set_spec_finalizers(object, finalizers);
        object
            .fields
            .insert("status".into(), json!({"phase": "Active"}));
        object
            .metadata
            .labels
            .insert(NAME_LABEL.into(), object.metadata.name.clone());
        order_fields(object);
    }

    fn prepare_for_update(&self, new: &mut Object, old: &Object) {
        match self.part {
            Part::Main => {
                let finalizers = spec_finalizers(old);
                set_spec_finalizers(new, finalizers);
                copy_field(new, old, "status");
            }
            Part::Status => copy_field(new, old, "spec"),
            Part::Finalize => copy_field(new, old, "status"),
        }
        new.metadata
            .labels
            .insert(NAME_LABEL.into(), new.metadata.name.clone());
        order_fields(new);
    }

    fn validate(&self, object: &Object) -> ErrorList {
        let mut errors = Vec::new();
        let path = Path::new("spec").child("finalizers");
        for finalizer in spec_finalizers(object) {
            errors.extend(validate_kube_finalizer_name(&finalizer, &path));
        }
        errors
    }

    fn validate_update(&self, new: &Object, _old: &Object) -> ErrorList {
        let mut errors = self.validate(new);
        if self.part == Part::Status {
            let path = Path::new("status").child("Phase");
            let phase = phase(new);
            if new.metadata.deletion_timestamp.is_none() {
                if phase != "Active" {
                    errors.push(Error::invalid(
                        &path,
                        phase,
                        "may only be 'Active' if `deletionTimestamp` is empty",
                    ));
                }
            } else if phase != "Terminating" {
                errors.push(Error::invalid(
                    &path,
                    phase,
                    "may only be 'Terminating' if `deletionTimestamp` is not empty",
                ));
            }
        }
        errors
    }

    fn allow_unconditional_update(&self) -> bool {
        true
    }

    fn check_delete(&self, object: &Object) -> Result<(), ApiError> {
        if IMMORTAL.contains(&object.metadata.name.as_str()) {
            return Err(ApiError::forbidden(
                &self.info.group_resource(),
                &object.metadata.name,
                "this namespace may not be deleted",
            ));
        }
        Ok(())
    }

    fn prepare_for_delete(&self, object: &mut Object) -> bool {
        let first = object.metadata.deletion_timestamp.is_none();
        if first {
            object.metadata.deletion_timestamp = Some(now_rfc3339());
        }
        if phase(object) != "Terminating" {
            set_phase(object, "Terminating");
        }
        first || !spec_finalizers(object).is_empty()
    }

    fn return_deleted_object(&self) -> bool {
        true
    }

    fn wraps_precondition_errors(&self) -> bool {
        false
    }

    fn table_columns(&self) -> Vec<TableColumnDefinition> {
        vec![
            TableColumnDefinition::name_column(),
            TableColumnDefinition::string("Status", "The status of the namespace"),
            TableColumnDefinition::age_column(),
        ]
    }

    fn table_row(&self, object: &Object, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            Value::String(object.metadata.name.clone()),
            Value::String(phase(object).to_owned()),
            Value::String(table::age(
                object.metadata.creation_timestamp.as_deref(),
                now,
            )),
        ]
    }

    fn selectable_fields(&self, object: &Object) -> Vec<(&'static str, String)> {
        vec![
            ("metadata.name", object.metadata.name.clone()),
            ("status.phase", phase(object).to_owned()),
        ]
    }

    fn supported_fields(&self) -> &'static [&'static str] {
        &["metadata.name", "status.phase"]
    }
}
