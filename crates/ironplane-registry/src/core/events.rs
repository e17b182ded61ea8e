//! Events (core/v1): what happened to an object, kept for an hour as upstream's default
//! `--event-ttl`, with upstream's legacy validation and field selectors.

use std::time::Duration;

use ironplane_apimachinery::Object;
use ironplane_apimachinery::field::{Error, ErrorList, Path};
use ironplane_apimachinery::schema::{FieldSchema as F, Schema, StructSchema, meta};
use ironplane_apimachinery::table::{self, TableColumnDefinition};
use ironplane_apimachinery::validation::{is_dns1123_subdomain, is_qualified_name};
use serde_json::Value;

use super::OBJECT_REFERENCE;
use crate::resource::ResourceInfo;
use crate::strategy::{NameRule, Strategy};

/// How long events live (upstream's `--event-ttl` default).
pub const EVENT_TTL: Duration = Duration::from_secs(3600);

/// `v1.EventSource`.
pub(crate) static EVENT_SOURCE: StructSchema = StructSchema {
    go_name: "v1.EventSource",
    package: "io.k8s.api.core.v1",
    fields: &[
        F::new("component", Schema::String).tag(1),
        F::new("host", Schema::String).tag(2),
    ],
};

static EVENT_SERIES: StructSchema = StructSchema {
    go_name: "v1.EventSeries",
    package: "io.k8s.api.core.v1",
    fields: &[
        F::new("count", Schema::Int32).tag(1),
        F::new("lastObservedTime", Schema::MicroTime)
            .always()
            .tag(2),
    ],
};

/// `v1.Event`.
pub static SCHEMA: StructSchema = StructSchema {
    go_name: "v1.Event",
    package: "io.k8s.api.core.v1",
    fields: &[
        meta::OBJECT_FIELDS[0],
        meta::OBJECT_FIELDS[1],
        meta::OBJECT_FIELDS[2],
        F::new("involvedObject", Schema::Struct(&OBJECT_REFERENCE))
            .always()
            .tag(2),
        F::new("reason", Schema::String).tag(3),
        F::new("message", Schema::String).tag(4),
        F::new("source", Schema::Struct(&EVENT_SOURCE))
            .always()
            .tag(5),
        F::new("firstTimestamp", Schema::Time).always().tag(6),
        F::new("lastTimestamp", Schema::Time).always().tag(7),
        F::new("count", Schema::Int32).tag(8),
        F::new("type", Schema::String).tag(9),
        F::new("eventTime", Schema::MicroTime).always().tag(10),
        F::new("series", Schema::Struct(&EVENT_SERIES))
            .pointer()
            .tag(11),
        F::new("action", Schema::String).tag(12),
        F::new("related", Schema::Struct(&OBJECT_REFERENCE))
            .pointer()
            .tag(13),
        F::new("reportingComponent", Schema::String)
            .always()
            .tag(14),
        F::new("reportingInstance", Schema::String).always().tag(15),
    ],
};

const REPORTING_INSTANCE_LIMIT: usize = 128;
const ACTION_LIMIT: usize = 128;
const REASON_LIMIT: usize = 128;
const NOTE_LIMIT: usize = 1024;

/// The Event strategy.
pub struct EventStrategy {
    info: ResourceInfo,
}

impl EventStrategy {
    /// The strategy with upstream's resource names.
    pub fn new() -> Self {
        EventStrategy {
            info: ResourceInfo::new("", "v1", "events", "event", "Event", true)
                .short_names(&["ev"]),
        }
    }
}

impl Default for EventStrategy {
    fn default() -> Self {
        Self::new()
    }
}

/// A string at `path`, empty when absent.
pub(crate) fn text<'a>(object: &'a Object, path: &[&str]) -> &'a str {
    object.string_at(path).unwrap_or_default()
}

fn is_set(object: &Object, name: &str) -> bool {
    object.field(name).is_some_and(|value| !value.is_null())
}

impl Strategy for EventStrategy {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn schema(&self) -> &'static StructSchema {
        &SCHEMA
    }

    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn ttl(&self) -> Option<Duration> {
        Some(EVENT_TTL)
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn validate(&self, object: &Object) -> ErrorList {
        validate_legacy(object, "reportingComponent")
    }

    fn table_columns(&self) -> Vec<TableColumnDefinition> {
        vec![
            TableColumnDefinition::string("Last Seen", "Time of the last occurrence."),
            TableColumnDefinition::string("Type", "Normal or Warning."),
            TableColumnDefinition::string("Reason", "Why the event happened, in a word."),
            TableColumnDefinition::string("Object", "The object the event is about."),
            TableColumnDefinition::string(
                "Subobject",
                "The part of the object the event is about.",
            )
            .wide(),
            TableColumnDefinition::string("Source", "The component that reported the event.")
                .wide(),
            TableColumnDefinition::string("Message", "What happened, for humans."),
            TableColumnDefinition::string("First Seen", "Time of the first occurrence.").wide(),
            TableColumnDefinition::string("Count", "How many times it happened.").wide(),
            TableColumnDefinition::name_column().wide(),
        ]
    }

    fn table_row(&self, object: &Object, now: jiff::Timestamp) -> Vec<Value> {
        let since = |value: Option<&str>| table::age(value, now);
        let first_timestamp = object.string_at(&["firstTimestamp"]);
        let first = if first_timestamp.is_some() {
            since(first_timestamp)
        } else {
            since(object.string_at(&["eventTime"]))
        };
        let mut last = match object.string_at(&["lastTimestamp"]) {
            Some(at) => since(Some(at)),
            None => first.clone(),
        };
        let mut count = object.field("count").and_then(Value::as_i64).unwrap_or(0);
        if let Some(series) = object.field("series").filter(|series| !series.is_null()) {
            last = since(series.get("lastObservedTime").and_then(Value::as_str));
            count = series.get("count").and_then(Value::as_i64).unwrap_or(0);
        } else if count == 0 {
            count = 1;
        }
        let kind = text(object, &["involvedObject", "kind"]).to_lowercase();
        let involved_name = text(object, &["involvedObject", "name"]);
        let target = if involved_name.is_empty() {
            kind
        } else {
            format!("{kind}/{involved_name}")
        };
        let component = first_non_empty(
            text(object, &["source", "component"]),
            text(object, &["reportingComponent"]),
        );
        let host = first_non_empty(
            text(object, &["source", "host"]),
            text(object, &["reportingInstance"]),
        );
        let source = if host.is_empty() {
            component.to_owned()
        } else {
            format!("{component}, {host}")
        };
        vec![
            Value::String(last),
            Value::String(text(object, &["type"]).to_owned()),
            Value::String(text(object, &["reason"]).to_owned()),
            Value::String(target),
            Value::String(text(object, &["involvedObject", "fieldPath"]).to_owned()),
            Value::String(source),
            Value::String(text(object, &["message"]).trim().to_owned()),
            Value::String(first),
            Value::from(count),
            Value::String(object.metadata.name.clone()),
        ]
    }

    fn selectable_fields(&self, object: &Object) -> Vec<(&'static str, String)> {
        let mut fields = crate::strategy::default_fields(object, true);
        let source = first_non_empty(
            text(object, &["source", "component"]),
            text(object, &["reportingComponent"]),
        );
        for (name, path) in [
            ("involvedObject.kind", &["involvedObject", "kind"][..]),
            ("involvedObject.namespace", &["involvedObject", "namespace"]),
            ("involvedObject.name", &["involvedObject", "name"]),
            ("involvedObject.uid", &["involvedObject", "uid"]),
            (
                "involvedObject.apiVersion",
                &["involvedObject", "apiVersion"],
            ),
            (
                "involvedObject.resourceVersion",
                &["involvedObject", "resourceVersion"],
            ),
            ("involvedObject.fieldPath", &["involvedObject", "fieldPath"]),
            ("reason", &["reason"]),
            ("reportingComponent", &["reportingComponent"]),
            ("type", &["type"]),
        ] {
            fields.push((name, text(object, path).to_owned()));
        }
        fields.push(("source", source.to_owned()));
        fields
    }

    fn supported_fields(&self) -> &'static [&'static str] {
        &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ]
    }
}

/// Upstream's legacy event validation, which every event passes whichever version it comes
/// through; `object` is in core/v1 shape. Errors name the reporting controller as the
/// request's version calls it (`reportingComponent` in core/v1, `reportingController`
/// elsewhere).
pub(crate) fn validate_legacy(object: &Object, controller_field: &str) -> ErrorList {
    let mut errors = Vec::new();
    let namespace = object.metadata.namespace.as_str();
    let involved_namespace = text(object, &["involvedObject", "namespace"]);
    let involved_path = Path::new("involvedObject").child("namespace");
    let mismatch = || {
        Error::invalid(
            &involved_path,
            involved_namespace,
            "does not match event.namespace",
        )
    };
    if !is_set(object, "eventTime") {
        let agrees = if involved_namespace.is_empty() {
            namespace.is_empty() || namespace == "default"
        } else {
            namespace == involved_namespace
        };
        if !agrees {
            errors.push(mismatch());
        }
    } else {
        if involved_namespace.is_empty() && namespace != "default" && namespace != "kube-system" {
            errors.push(mismatch());
        }
        let controller = text(object, &["reportingComponent"]);
        let controller_path = Path::new(controller_field);
        if controller.is_empty() {
            errors.push(Error::required(&controller_path, ""));
        }
        for message in is_qualified_name(controller) {
            errors.push(Error::invalid(&controller_path, controller, &message));
        }
        let limited = [
            ("reportingInstance", REPORTING_INSTANCE_LIMIT, true),
            ("action", ACTION_LIMIT, true),
            ("reason", REASON_LIMIT, true),
            ("message", NOTE_LIMIT, false),
        ];
        for (name, limit, required) in limited {
            let value = text(object, &[name]);
            if required && value.is_empty() {
                errors.push(Error::required(&Path::new(name), ""));
            }
            if value.len() > limit {
                errors.push(Error::invalid(
                    &Path::new(name),
                    "",
                    &format!("can have at most {limit} characters"),
                ));
            }
        }
    }
    for message in is_dns1123_subdomain(namespace) {
        errors.push(Error::invalid(&Path::new("namespace"), namespace, &message));
    }
    errors
}

fn first_non_empty<'a>(first: &'a str, second: &'a str) -> &'a str {
    if first.is_empty() { second } else { first }
}
