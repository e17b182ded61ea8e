//! The strategy a kind plugs into the generic store: its schema, defaults, validation,
//! create/update preparation, deletion rules, table columns and selectable fields. Everything
//! the generic store does not know about a kind lives behind this trait.

use std::sync::Arc;
use std::time::Duration;

use ironplane_apimachinery::field::ErrorList;
use ironplane_apimachinery::schema::StructSchema;
use ironplane_apimachinery::table::{self, TableColumnDefinition};
use ironplane_apimachinery::{ApiError, Object};
use serde_json::Value;

use crate::resource::ResourceInfo;

/// Which rule names of a kind follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// A DNS-1123 subdomain (most kinds).
    DnsSubdomain,
    /// A DNS-1123 label.
    DnsLabel,
    /// A namespace name (a DNS-1123 label).
    Namespace,
    /// Anything usable as a path segment.
    PathSegment,
}

impl NameRule {
    /// Check a name (or, with `prefix`, a generateName prefix); each string is one problem.
    pub fn check(self, name: &str, prefix: bool) -> Vec<String> {
        use ironplane_apimachinery::validation as v;
        match self {
            NameRule::DnsSubdomain => v::name_is_dns_subdomain(name, prefix),
            NameRule::DnsLabel => v::name_is_dns_label(name, prefix),
            NameRule::Namespace => v::validate_namespace_name(name, prefix),
            NameRule::PathSegment => v::validate_path_segment_name(name, prefix),
        }
    }
}

/// What happens when a delete reaches an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteDecision {
    /// Remove it from storage now.
    Delete,
    /// Keep it, marked for deletion, until its finalizers are gone.
    Finalize,
}

/// A kind's behaviour inside the generic store.
pub trait Strategy: Send + Sync + 'static {
    /// Names, scope and verbs.
    fn info(&self) -> &ResourceInfo;

    /// The structural schema bodies are decoded against.
    fn schema(&self) -> &'static StructSchema;

    /// The strategies of this kind's subresources that write (`status`, `finalize`), by name.
    fn subresources(&self) -> Vec<(&'static str, Arc<dyn Strategy>)> {
        Vec::new()
    }

    /// Whether objects are served in another shape than they are stored in (a second version of
    /// a kind, such as events.k8s.io/v1 Events over core/v1 storage). When so, the store converts
    /// every object it reads or writes and takes no shortcut that copies stored bytes out.
    fn converts(&self) -> bool {
        false
    }

    /// The served form of a stored object (only called when [`Strategy::converts`]).
    fn stored_to_served(&self, stored: Object) -> Object {
        stored
    }

    /// The stored form of a served object (only called when [`Strategy::converts`]).
    fn served_to_stored(&self, served: Object) -> Object {
        served
    }

    /// Whether the kind's validation on create checks object metadata itself (events.k8s.io
    /// Events do, with a stricter name rule, after their legacy rules). The store's generic
    /// metadata check then runs only once the kind's passes, as in upstream's `BeforeCreate`.
    fn validates_metadata(&self) -> bool {
        false
    }

    /// The rule names follow.
    fn name_rule(&self) -> NameRule {
        NameRule::DnsSubdomain
    }

    /// Clear what clients may not set and apply defaults, before validation on create.
    fn prepare_for_create(&self, _object: &mut Object) {}

    /// Kind-specific validation on create (object metadata is validated by the store).
    fn validate(&self, _object: &Object) -> ErrorList {
        Vec::new()
    }

    /// Carry over what an update may not change, before validation on update.
    fn prepare_for_update(&self, _new: &mut Object, _old: &Object) {}

    /// Kind-specific validation on update (metadata rules are the store's).
    fn validate_update(&self, new: &Object, _old: &Object) -> ErrorList {
        self.validate(new)
    }

    /// Whether PUT of a missing object creates it.
    fn allow_create_on_update(&self) -> bool {
        false
    }

    /// Whether PUT without a resourceVersion overwrites whatever is stored.
    fn allow_unconditional_update(&self) -> bool {
        true
    }

    /// How long stored objects live (events: one hour).
    fn ttl(&self) -> Option<Duration> {
        None
    }

    /// Refuse a delete outright (for example a namespace that may never be deleted).
    fn check_delete(&self, _object: &Object) -> Result<(), ApiError> {
        Ok(())
    }

    /// Mark an object on its way out; return whether something other than `metadata.finalizers`
    /// must finish first (a namespace's `spec.finalizers`).
    fn prepare_for_delete(&self, _object: &mut Object) -> bool {
        false
    }

    /// Whether failed delete preconditions are reported through the storage layer's words, as
    /// upstream's generic store does (namespaces check them in their own REST code, plainly).
    fn wraps_precondition_errors(&self) -> bool {
        true
    }

    /// Whether a delete answers with the object (rather than a `Status`).
    fn return_deleted_object(&self) -> bool {
        false
    }

    /// Table columns for `kubectl get`.
    fn table_columns(&self) -> Vec<TableColumnDefinition> {
        vec![
            TableColumnDefinition::name_column(),
            TableColumnDefinition::age_column(),
        ]
    }

    /// Cells of one row, matching [`Strategy::table_columns`].
    fn table_row(&self, object: &Object, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            Value::String(object.metadata.name.clone()),
            Value::String(table::age(
                object.metadata.creation_timestamp.as_deref(),
                now,
            )),
        ]
    }

    /// The fields a field selector may name, and their values for this object.
    fn selectable_fields(&self, object: &Object) -> Vec<(&'static str, String)> {
        default_fields(object, self.info().namespaced)
    }

    /// Whether [`Strategy::selectable_fields`] reads anything besides `metadata.name` and
    /// `metadata.namespace` (which the watch cache takes from the key without decoding).
    fn has_extra_selectable_fields(&self) -> bool {
        self.supported_fields()
            .iter()
            .any(|field| !matches!(*field, "metadata.name" | "metadata.namespace"))
    }

    /// The field selector names this kind supports.
    fn supported_fields(&self) -> &'static [&'static str] {
        &["metadata.name", "metadata.namespace"]
    }

    /// Check a field selector's field name: `Ok` when supported, else upstream's message. Kinds
    /// with their own field-label conversion (upstream registers one for Secret, Event, Namespace,
    /// Pod...) say `field label not supported: x`; the others use the default conversion's words.
    fn check_field_label(&self, field: &str) -> Result<(), String> {
        if self.supported_fields().contains(&field) {
            return Ok(());
        }
        if self.supported_fields() == ["metadata.name", "metadata.namespace"] {
            ironplane_apimachinery::fields::default_meta_v1_field_selector_conversion(field, "")
                .map(|_| ())
        } else {
            Err(ironplane_apimachinery::fields::field_label_not_supported(
                field,
            ))
        }
    }
}

/// `metadata.name` and, for namespaced kinds, `metadata.namespace`.
pub fn default_fields(object: &Object, namespaced: bool) -> Vec<(&'static str, String)> {
    let mut fields = vec![("metadata.name", object.metadata.name.clone())];
    if namespaced {
        fields.push(("metadata.namespace", object.metadata.namespace.clone()));
    }
    fields
}
