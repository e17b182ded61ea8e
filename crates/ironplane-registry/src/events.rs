//! The events.k8s.io group: `events.k8s.io/v1` Events, a second view of the core/v1 Events
//! under `/registry/events/`. Objects are stored in core/v1 shape whichever version wrote them
//! (upstream's storage version for both), so each version sees the other's writes; this
//! strategy renames fields on the way in and out, adds the stricter validation upstream applies
//! to events written through this group, and maps its field selector names onto core's.

use std::sync::Arc;
use std::time::Duration;

use ironplane_apimachinery::Object;
use ironplane_apimachinery::field::{BadValue, Error, ErrorList, Path};
use ironplane_apimachinery::schema::{self, FieldSchema as F, Schema, StructSchema, meta};
use ironplane_apimachinery::status::go_quote;
use ironplane_apimachinery::table::TableColumnDefinition;
use ironplane_apimachinery::validation::{
    FIELD_IMMUTABLE_ERROR_MSG, go_time_string, validate_object_meta, validate_object_meta_update,
};
use serde_json::{Map, Value};

use crate::core::OBJECT_REFERENCE;
use crate::core::events::{EVENT_SOURCE, EventStrategy, text, validate_legacy};
use crate::resource::ResourceInfo;
use crate::store::meta_fields;
use crate::strategy::{NameRule, Strategy};

/// The group's name.
pub const GROUP: &str = "events.k8s.io";

/// Field names that differ between the two versions: (events.k8s.io/v1, core/v1).
const RENAMED: [(&str, &str); 7] = [
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

static EVENT_SERIES: StructSchema = StructSchema {
    go_name: "v1.EventSeries",
    package: "io.k8s.api.events.v1",
    fields: &[
        F::new("count", Schema::Int32).always().tag(1),
        F::new("lastObservedTime", Schema::MicroTime)
            .always()
            .tag(2),
    ],
};

/// `events.k8s.io/v1.Event`. Go writes struct-typed fields even when tagged `omitempty`.
pub static SCHEMA: StructSchema = StructSchema {
    go_name: "v1.Event",
    package: "io.k8s.api.events.v1",
    fields: &[
        meta::OBJECT_FIELDS[0],
        meta::OBJECT_FIELDS[1],
        meta::OBJECT_FIELDS[2],
        F::new("eventTime", Schema::MicroTime).always().tag(2),
        F::new("series", Schema::Struct(&EVENT_SERIES))
            .pointer()
            .tag(3),
        F::new("reportingController", Schema::String).tag(4),
        F::new("reportingInstance", Schema::String).tag(5),
        F::new("action", Schema::String).tag(6),
        F::new("reason", Schema::String).tag(7),
        F::new("regarding", Schema::Struct(&OBJECT_REFERENCE))
            .always()
            .tag(8),
        F::new("related", Schema::Struct(&OBJECT_REFERENCE))
            .pointer()
            .tag(9),
        F::new("note", Schema::String).tag(10),
        F::new("type", Schema::String).tag(11),
        F::new("deprecatedSource", Schema::Struct(&EVENT_SOURCE))
            .always()
            .tag(12),
        F::new("deprecatedFirstTimestamp", Schema::Time)
            .always()
            .tag(13),
        F::new("deprecatedLastTimestamp", Schema::Time)
            .always()
            .tag(14),
        F::new("deprecatedCount", Schema::Int32).tag(15),
    ],
};

/// Field selector names of this version and the core/v1 selectable field each one reads
/// (upstream's field label conversion for events.k8s.io/v1).
const SELECTABLE: [(&str, &str); 12] = [
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
    ("reason", "reason"),
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    (
        "regarding.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
    ("reportingController", "reportingComponent"),
    ("type", "type"),
];

const SELECTABLE_NAMES: [&str; 12] = {
    let mut names = [""; 12];
    let mut index = 0;
    while index < SELECTABLE.len() {
        names[index] = SELECTABLE[index].0;
        index += 1;
    }
    names
};

/// Every events.k8s.io strategy.
pub fn strategies() -> Vec<Arc<dyn Strategy>> {
    vec![Arc::new(EventV1Strategy::new())]
}

/// The events.k8s.io/v1 Event strategy: core's rules, seen through this version's field names.
pub struct EventV1Strategy {
    info: ResourceInfo,
    core: EventStrategy,
}

impl EventV1Strategy {
    /// The strategy with upstream's resource names.
    pub fn new() -> Self {
        EventV1Strategy {
            info: ResourceInfo::new(GROUP, "v1", "events", "event", "Event", true)
                .short_names(&["ev"])
                .stored_as("", "v1", "Event"),
            core: EventStrategy::new(),
        }
    }
}

impl Default for EventV1Strategy {
    fn default() -> Self {
        Self::new()
    }
}

/// Move the renamed fields of `fields` from one version's names to the other's, then give them
/// the target version's order and omission rules.
fn rename(
    mut fields: Map<String, Value>,
    to_v1: bool,
    target: &'static StructSchema,
) -> Map<String, Value> {
    for (v1_name, core_name) in RENAMED {
        let (from, to) = if to_v1 {
            (core_name, v1_name)
        } else {
            (v1_name, core_name)
        };
        if let Some(value) = fields.remove(from) {
            fields.insert(to.to_owned(), value);
        }
    }
    schema::emit_top_level(fields, target)
}

/// The core/v1 shape of an events.k8s.io/v1 object.
fn to_core(object: &Object) -> Object {
    Object {
        api_version: "v1".into(),
        kind: "Event".into(),
        metadata: object.metadata.clone(),
        fields: rename(object.fields.clone(), false, &crate::core::events::SCHEMA),
    }
}

/// A value as JSON with `null` for absent, so that absent and null compare equal.
fn value_of<'a>(object: &'a Object, name: &str) -> &'a Value {
    object.field(name).unwrap_or(&Value::Null)
}

/// Upstream's `%#v` of a `core.ObjectReference` (or `"null"` for a nil pointer).
fn object_reference_repr(value: &Value) -> BadValue {
    if value.is_null() {
        return BadValue::Null;
    }
    let part = |name: &str| go_quote(value.get(name).and_then(Value::as_str).unwrap_or(""));
    BadValue::Raw(format!(
        "core.ObjectReference{{Kind:{}, Namespace:{}, Name:{}, UID:{}, APIVersion:{}, ResourceVersion:{}, FieldPath:{}}}",
        part("kind"),
        part("namespace"),
        part("name"),
        part("uid"),
        part("apiVersion"),
        part("resourceVersion"),
        part("fieldPath"),
    ))
}

/// Upstream's `%#v` of a `core.EventSource`.
fn event_source_repr(value: &Value) -> BadValue {
    let part = |name: &str| go_quote(value.get(name).and_then(Value::as_str).unwrap_or(""));
    BadValue::Raw(format!(
        "core.EventSource{{Component:{}, Host:{}}}",
        part("component"),
        part("host")
    ))
}

/// A `metav1.Time` or `MicroTime` as its `String()` prints it (the zero time when unset).
fn time_repr(value: &Value) -> BadValue {
    BadValue::Raw(match value.as_str() {
        Some(text) => go_time_string(Some(text)),
        None => "0001-01-01 00:00:00 +0000 UTC".to_owned(),
    })
}

/// Two struct values compared as upstream's semantic equality does (absent means zero).
fn same_struct(left: &Value, right: &Value) -> bool {
    let fields = |value: &Value| -> Vec<(String, String)> {
        let mut fields: Vec<(String, String)> = value
            .as_object()
            .map(|map| {
                map.iter()
                    .filter(|(_, value)| !value.is_null() && value.as_str() != Some(""))
                    .map(|(key, value)| (key.clone(), value.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        fields.sort();
        fields
    };
    left.is_null() == right.is_null() && fields(left) == fields(right)
}

/// `series` checks for events written through this group (paths in core's words, as upstream).
fn validate_series(core: &Object) -> ErrorList {
    let mut errors = Vec::new();
    let series = value_of(core, "series");
    if series.is_null() {
        return errors;
    }
    if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
        errors.push(Error::invalid(
            &Path::new("series.count"),
            "",
            "should be at least 2",
        ));
    }
    if series
        .get("lastObservedTime")
        .is_none_or(|time| time.is_null())
    {
        errors.push(Error::required(&Path::new("series.lastObservedTime"), ""));
    }
    errors
}

impl Strategy for EventV1Strategy {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn schema(&self) -> &'static StructSchema {
        &SCHEMA
    }

    fn converts(&self) -> bool {
        true
    }

    fn stored_to_served(&self, stored: Object) -> Object {
        Object {
            api_version: self.info.api_version(),
            kind: self.info.kind.clone(),
            metadata: stored.metadata,
            fields: rename(stored.fields, true, &SCHEMA),
        }
    }

    fn served_to_stored(&self, served: Object) -> Object {
        to_core(&served)
    }

    fn validates_metadata(&self) -> bool {
        true
    }

    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn ttl(&self) -> Option<Duration> {
        self.core.ttl()
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn validate(&self, object: &Object) -> ErrorList {
        let core = to_core(object);
        let mut errors = validate_legacy(&core, "reportingController");
        errors.extend(validate_object_meta(
            &meta_fields(object),
            true,
            |name, prefix| NameRule::DnsSubdomain.check(name, prefix),
            &Path::new("metadata"),
        ));
        errors.extend(validate_series(&core));
        if value_of(&core, "eventTime").is_null() {
            errors.push(Error::required(&Path::new("eventTime"), ""));
        }
        let event_type = text(&core, &["type"]);
        if event_type != "Normal" && event_type != "Warning" {
            errors.push(Error::invalid(
                &Path::new("type"),
                "",
                &format!("has invalid value: {event_type}"),
            ));
        }
        let needs_unset = |name: &str| Error::invalid(&Path::new(name), "", "needs to be unset");
        for name in ["firstTimestamp", "lastTimestamp"] {
            if !value_of(&core, name).is_null() {
                errors.push(needs_unset(name));
            }
        }
        if value_of(&core, "count").as_i64().unwrap_or(0) != 0 {
            errors.push(needs_unset("count"));
        }
        let source = value_of(&core, "source");
        if ["component", "host"].iter().any(|part| {
            source
                .get(part)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        }) {
            errors.push(needs_unset("source"));
        }
        errors
    }

    fn validate_update(&self, new: &Object, old: &Object) -> ErrorList {
        let (new_core, old_core) = (to_core(new), to_core(old));
        let mut errors = validate_legacy(&new_core, "reportingController");
        // Upstream checks the metadata update here as well as in its generic store, so its
        // errors are listed twice; so are they here.
        errors.extend(validate_object_meta_update(
            &meta_fields(new),
            &meta_fields(old),
            &Path::new("metadata"),
        ));
        if value_of(&new_core, "series") != value_of(&old_core, "series") {
            errors.extend(validate_series(&new_core));
        }
        let immutable = |name: &str, value: BadValue| {
            Error::invalid(&Path::new(name), value, FIELD_IMMUTABLE_ERROR_MSG)
        };
        let changed = |name: &str| value_of(&new_core, name) != value_of(&old_core, name);
        let string = |name: &str| BadValue::String(text(&new_core, &[name]).to_owned());
        let involved = value_of(&new_core, "involvedObject");
        if !same_struct(involved, value_of(&old_core, "involvedObject")) {
            errors.push(immutable("involvedObject", object_reference_repr(involved)));
        }
        for name in ["reason", "message"] {
            if changed(name) {
                errors.push(immutable(name, string(name)));
            }
        }
        let source = value_of(&new_core, "source");
        if !same_struct(source, value_of(&old_core, "source")) {
            errors.push(immutable("source", event_source_repr(source)));
        }
        for name in ["firstTimestamp", "lastTimestamp"] {
            if changed(name) {
                errors.push(immutable(name, time_repr(value_of(&new_core, name))));
            }
        }
        let count = |object: &Object| value_of(object, "count").as_i64().unwrap_or(0);
        if count(&new_core) != count(&old_core) {
            errors.push(immutable("count", BadValue::Int(count(&new_core))));
        }
        // Upstream compares the reason twice.
        for name in ["reason", "type"] {
            if changed(name) {
                errors.push(immutable(name, string(name)));
            }
        }
        if changed("eventTime") {
            errors.push(immutable(
                "eventTime",
                time_repr(value_of(&new_core, "eventTime")),
            ));
        }
        if changed("action") {
            errors.push(immutable("action", string("action")));
        }
        let related = value_of(&new_core, "related");
        if !same_struct(related, value_of(&old_core, "related")) {
            errors.push(immutable("related", object_reference_repr(related)));
        }
        if changed("reportingComponent") {
            errors.push(immutable(
                "reportingController",
                string("reportingComponent"),
            ));
        }
        if changed("reportingInstance") {
            errors.push(immutable("reportingInstance", string("reportingInstance")));
        }
        errors
    }

    fn table_columns(&self) -> Vec<TableColumnDefinition> {
        self.core.table_columns()
    }

    fn table_row(&self, object: &Object, now: jiff::Timestamp) -> Vec<Value> {
        self.core.table_row(&to_core(object), now)
    }

    fn selectable_fields(&self, object: &Object) -> Vec<(&'static str, String)> {
        let core_fields = self.core.selectable_fields(&to_core(object));
        SELECTABLE
            .iter()
            .filter_map(|(v1_name, core_name)| {
                core_fields
                    .iter()
                    .find(|(name, _)| name == core_name)
                    .map(|(_, value)| (*v1_name, value.clone()))
            })
            .collect()
    }

    fn supported_fields(&self) -> &'static [&'static str] {
        &SELECTABLE_NAMES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn served(body: Value) -> Object {
        let decoded = schema::decode(body, &SCHEMA).expect("decodes");
        Object::from_map(decoded.object).expect("object")
    }

    fn event() -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e1", "namespace": "default"},
            "eventTime": "2026-11-26T09:00:00.000000Z",
            "series": {"count": 2, "lastObservedTime": "2026-11-26T09:00:01.000000Z"},
            "reportingController": "example.com/ctl", "reportingInstance": "inst-1",
            "action": "Scheduling", "reason": "Scheduled",
            "regarding": {"kind": "Pod", "name": "p1", "namespace": "default"},
            "related": {"kind": "Node", "name": "n1"},
            "note": "hello", "type": "Normal"
        })
    }

    #[test]
    fn stores_in_core_shape_and_reads_back_unchanged() {
        let strategy = EventV1Strategy::new();
        let object = served(event());
        let stored = strategy.served_to_stored(object.clone());
        assert_eq!(stored.api_version, "v1");
        let keys: Vec<&str> = stored.fields.keys().map(String::as_str).collect();
        // Core's order and omission rules: always-written fields appear, renamed ones move.
        assert_eq!(
            keys,
            [
                "involvedObject",
                "reason",
                "message",
                "source",
                "firstTimestamp",
                "lastTimestamp",
                "type",
                "eventTime",
                "series",
                "action",
                "related",
                "reportingComponent",
                "reportingInstance"
            ]
        );
        assert_eq!(stored.fields["message"], "hello");
        assert_eq!(stored.fields["reportingComponent"], "example.com/ctl");
        assert_eq!(strategy.stored_to_served(stored), object);
    }

    #[test]
    fn core_events_read_with_this_versions_names_and_omissions() {
        let strategy = EventV1Strategy::new();
        let core = Object::from_map(
            schema::decode(
                json!({"apiVersion": "v1", "kind": "Event",
                       "metadata": {"name": "e2", "namespace": "default"},
                       "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "r",
                       "message": "m", "count": 3, "source": {"component": "kubelet"}}),
                &crate::core::events::SCHEMA,
            )
            .expect("decodes")
            .object,
        )
        .expect("object");
        let v1 = strategy.stored_to_served(core);
        assert_eq!(v1.api_version, "events.k8s.io/v1");
        assert_eq!(
            Value::Object(v1.fields),
            json!({"eventTime": null, "reason": "r", "regarding": {"kind": "Pod", "name": "p"},
                   "note": "m", "deprecatedSource": {"component": "kubelet"},
                   "deprecatedFirstTimestamp": null, "deprecatedLastTimestamp": null,
                   "deprecatedCount": 3})
        );
    }

    #[test]
    fn field_selectors_use_this_versions_names() {
        let strategy = EventV1Strategy::new();
        let fields = strategy.selectable_fields(&served(event()));
        let get = |name: &str| {
            fields
                .iter()
                .find(|(field, _)| *field == name)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(get("regarding.name"), Some("p1"));
        assert_eq!(get("reportingController"), Some("example.com/ctl"));
        assert_eq!(get("involvedObject.name"), None);
        assert_eq!(get("source"), None);
        assert!(strategy.check_field_label("regarding.kind").is_ok());
        assert_eq!(
            strategy.check_field_label("source"),
            Err("field label not supported: source".to_owned())
        );
    }

    fn messages(errors: &ErrorList) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn creates_through_this_group_are_validated_strictly() {
        let strategy = EventV1Strategy::new();
        let mut body = event();
        body["metadata"]["name"] = json!("E1");
        body["type"] = json!("Bad");
        body["series"] = json!({"count": 1});
        body["deprecatedCount"] = json!(2);
        body["deprecatedSource"] = json!({"host": "h"});
        body.as_object_mut().expect("object").remove("eventTime");
        assert_eq!(
            messages(&strategy.validate(&served(body))),
            [
                "metadata.name: Invalid value: \"E1\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "series.count: Invalid value: \"\": should be at least 2",
                "series.lastObservedTime: Required value",
                "eventTime: Required value",
                "type: Invalid value: \"\": has invalid value: Bad",
                "count: Invalid value: \"\": needs to be unset",
                "source: Invalid value: \"\": needs to be unset",
            ]
        );
        assert!(strategy.validate(&served(event())).is_empty());
    }

    #[test]
    fn updates_through_this_group_keep_the_event_as_it_was() {
        let strategy = EventV1Strategy::new();
        let mut old = served(event());
        old.metadata.resource_version = "5".into();
        let mut body = event();
        body["metadata"]["resourceVersion"] = json!("5");
        body["note"] = json!("changed");
        body["regarding"]["uid"] = json!("abc");
        body["related"] = json!(null);
        body["eventTime"] = json!("2026-11-26T09:00:00.5Z");
        body["deprecatedCount"] = json!(4);
        let new = served(body);
        assert_eq!(
            messages(&strategy.validate_update(&new, &old)),
            [
                "involvedObject: Invalid value: core.ObjectReference{Kind:\"Pod\", Namespace:\"default\", Name:\"p1\", UID:\"abc\", APIVersion:\"\", ResourceVersion:\"\", FieldPath:\"\"}: field is immutable",
                "message: Invalid value: \"changed\": field is immutable",
                "count: Invalid value: 4: field is immutable",
                "eventTime: Invalid value: 2026-11-26 09:00:00.5 +0000 UTC: field is immutable",
                "related: Invalid value: \"null\": field is immutable",
            ]
        );
        assert!(strategy.validate_update(&old, &old).is_empty());
    }

    fn varint(mut value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    fn bytes_field(number: u64, payload: &[u8]) -> Vec<u8> {
        [
            varint(number << 3 | 2),
            varint(payload.len() as u64),
            payload.to_vec(),
        ]
        .concat()
    }

    #[test]
    fn protobuf_bodies_decode_with_this_versions_field_numbers() {
        // What client-go's events.k8s.io recorder sends (kube-scheduler speaks protobuf).
        let metadata = [bytes_field(1, b"e1"), bytes_field(3, b"default")].concat();
        let event_time = [
            varint(1 << 3),
            varint(1_795_683_600),
            varint(2 << 3),
            varint(5_000),
        ]
        .concat();
        let regarding = [bytes_field(1, b"Pod"), bytes_field(3, b"p1")].concat();
        let message = [
            bytes_field(1, &metadata),
            bytes_field(2, &event_time),
            bytes_field(4, b"example.com/ctl"),
            bytes_field(8, &regarding),
            bytes_field(10, b"hello"),
            bytes_field(11, b"Normal"),
        ]
        .concat();
        let fields =
            ironplane_apimachinery::protobuf::decode_message(&message, &SCHEMA).expect("decodes");
        let object = served(Value::Object(fields));
        assert_eq!(object.metadata.name, "e1");
        assert_eq!(text(&object, &["reportingController"]), "example.com/ctl");
        assert_eq!(text(&object, &["note"]), "hello");
        assert_eq!(
            object.fields["regarding"],
            json!({"kind": "Pod", "name": "p1"})
        );
        assert_eq!(object.fields["eventTime"], "2026-11-26T09:00:00.000005Z");
    }
}
