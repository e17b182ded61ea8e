//! LimitRanges: per-namespace bounds and defaults for what containers, pods and volume claims
//! ask for. A container item fills its defaults from its bounds, as upstream's defaulting does.

use std::collections::{BTreeMap, BTreeSet};

use ironplane_apimachinery::Object;
use ironplane_apimachinery::field::{BadValue, Error, ErrorList, Path};
use ironplane_apimachinery::quantity::{Format, Quantity};
use ironplane_apimachinery::schema::{FieldSchema as F, ListPatch, Schema, StructSchema, meta};
use ironplane_apimachinery::table::TableColumnDefinition;
use ironplane_apimachinery::validation::is_qualified_name;
use serde_json::{Map, Value};

use super::resource_names::{
    is_overcommit_allowed, resource_list, validate_container_resource_name, validate_resource_name,
};
use crate::resource::ResourceInfo;
use crate::strategy::Strategy;

static RESOURCE_LIST: Schema = Schema::Map(&Schema::Quantity);

static LIMIT_RANGE_ITEM: StructSchema = StructSchema {
    go_name: "v1.LimitRangeItem",
    package: "io.k8s.api.core.v1",
    fields: &[
        F::new("type", Schema::String).always().tag(1),
        F::new("max", RESOURCE_LIST).tag(2),
        F::new("min", RESOURCE_LIST).tag(3),
        F::new("default", RESOURCE_LIST).tag(4),
        F::new("defaultRequest", RESOURCE_LIST).tag(5),
        F::new("maxLimitRequestRatio", RESOURCE_LIST).tag(6),
    ],
};

static LIMIT_RANGE_SPEC: StructSchema = StructSchema {
    go_name: "v1.LimitRangeSpec",
    package: "io.k8s.api.core.v1",
    fields: &[F::new(
        "limits",
        Schema::List(&Schema::Struct(&LIMIT_RANGE_ITEM), ListPatch::Replace),
    )
    .always()
    .tag(1)],
};

/// `v1.LimitRange`.
pub static SCHEMA: StructSchema = StructSchema {
    go_name: "v1.LimitRange",
    package: "io.k8s.api.core.v1",
    fields: &[
        meta::OBJECT_FIELDS[0],
        meta::OBJECT_FIELDS[1],
        meta::OBJECT_FIELDS[2],
        F::new("spec", Schema::Struct(&LIMIT_RANGE_SPEC))
            .always()
            .tag(2),
    ],
};

const POD: &str = "Pod";
const CONTAINER: &str = "Container";
const PERSISTENT_VOLUME_CLAIM: &str = "PersistentVolumeClaim";

/// Upstream's `MaxMilliValue`: past it, milli-units overflow an int64.
const MAX_MILLI_VALUE: i64 = i64::MAX / 1000;

/// The LimitRange strategy.
pub struct LimitRangeStrategy {
    info: ResourceInfo,
}

impl LimitRangeStrategy {
    /// The strategy with upstream's resource names.
    pub fn new() -> Self {
        LimitRangeStrategy {
            info: ResourceInfo::new("", "v1", "limitranges", "limitrange", "LimitRange", true)
                .short_names(&["limits"]),
        }
    }
}

impl Default for LimitRangeStrategy {
    fn default() -> Self {
        Self::new()
    }
}

fn items_mut(object: &mut Object) -> Option<&mut Vec<Value>> {
    object
        .fields
        .get_mut("spec")?
        .get_mut("limits")?
        .as_array_mut()
}

fn items(object: &Object) -> &[Value] {
    object
        .field("spec")
        .and_then(|spec| spec.get("limits"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A container item's limit defaults to its max, its request to its limit, else to its min.
fn apply_defaults(object: &mut Object) {
    let Some(items) = items_mut(object) else {
        return;
    };
    for item in items.iter_mut().filter_map(Value::as_object_mut) {
        if item.get("type").and_then(Value::as_str) != Some(CONTAINER) {
            continue;
        }
        let list = |item: &Map<String, Value>, name: &str| -> Map<String, Value> {
            item.get(name)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let mut default = list(item, "default");
        for (name, value) in list(item, "max") {
            default.entry(name).or_insert(value);
        }
        let mut default_request = list(item, "defaultRequest");
        for (name, value) in default.iter().chain(list(item, "min").iter()) {
            default_request
                .entry(name.clone())
                .or_insert_with(|| value.clone());
        }
        for (name, mut values) in [("default", default), ("defaultRequest", default_request)] {
            if values.is_empty() {
                item.shift_remove(name);
            } else {
                values.sort_keys();
                item.insert(name.into(), Value::Object(values));
            }
        }
        ironplane_apimachinery::schema::reorder(item, &LIMIT_RANGE_ITEM);
    }
}

/// A resource list of one item (`max`, `min`...).
fn quantities<'a>(item: &'a Value, name: &str) -> BTreeMap<&'a str, Quantity> {
    resource_list(item.get(name))
}

/// Every limit-range message prints the reported quantity with `String()` first, which upstream
/// caches in the value before `%#v` shows it.
fn repr(quantity: &Quantity) -> BadValue {
    BadValue::Raw(quantity.stringified().go_repr())
}

fn validate_type(kind: &str, path: &Path) -> ErrorList {
    let errors: ErrorList = is_qualified_name(kind)
        .iter()
        .map(|message| Error::invalid(path, kind, message))
        .collect();
    if !errors.is_empty() {
        return errors;
    }
    if !kind.contains('/') && ![POD, CONTAINER, PERSISTENT_VOLUME_CLAIM].contains(&kind) {
        return vec![Error::invalid(
            path,
            kind,
            "must be a standard limit type or fully qualified",
        )];
    }
    Vec::new()
}

fn validate_item_resource_name(kind: &str, name: &str, path: &Path) -> ErrorList {
    if kind == POD || kind == CONTAINER {
        validate_container_resource_name(name, path)
    } else {
        validate_resource_name(name, path)
    }
}

fn validate_item(item: &Value, path: &Path, errors: &mut ErrorList) {
    let kind = item.get("type").and_then(Value::as_str).unwrap_or_default();
    let max = quantities(item, "max");
    let min = quantities(item, "min");
    let (default, default_request) = if kind == POD {
        for name in ["default", "defaultRequest"] {
            if item
                .get(name)
                .and_then(Value::as_object)
                .is_some_and(|list| !list.is_empty())
            {
                errors.push(Error::forbidden(
                    &path.child(name),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
        }
        (BTreeMap::new(), BTreeMap::new())
    } else {
        (
            quantities(item, "default"),
            quantities(item, "defaultRequest"),
        )
    };
    let ratios = quantities(item, "maxLimitRequestRatio");
    for (field, list) in [
        ("max", &max),
        ("min", &min),
        ("default", &default),
        ("defaultRequest", &default_request),
    ] {
        for name in list.keys() {
            errors.extend(validate_item_resource_name(
                kind,
                name,
                &path.child(field).key(name),
            ));
        }
    }
    if kind == PERSISTENT_VOLUME_CLAIM
        && !min.contains_key("storage")
        && !max.contains_key("storage")
    {
        errors.push(Error::required(
            &path.child("limits"),
            "either minimum or maximum storage value is required, but neither was provided",
        ));
    }
    for name in ratios.keys() {
        errors.extend(validate_item_resource_name(
            kind,
            name,
            &path.child("maxLimitRequestRatio").key(name),
        ));
    }

    let names: BTreeSet<&str> = max
        .keys()
        .chain(min.keys())
        .chain(default.keys())
        .chain(default_request.keys())
        .chain(ratios.keys())
        .copied()
        .collect();
    for name in names {
        let at = |field: &str| path.child(field).key(name);
        let (min, max) = (min.get(name), max.get(name));
        let (default, request) = (default.get(name), default_request.get(name));
        let text = Quantity::to_canonical_string;
        // (smaller, its label, larger, its label, where to report, the value reported)
        let ordering = [
            (min, "min", max, "max", "min", min),
            (
                min,
                "min",
                request,
                "default request",
                "defaultRequest",
                request,
            ),
            (
                request,
                "default request",
                max,
                "max",
                "defaultRequest",
                request,
            ),
            (
                request,
                "default request",
                default,
                "default limit",
                "defaultRequest",
                request,
            ),
            (min, "min", default, "default", "default", min),
            (default, "default", max, "max", "default", max),
        ];
        for (low, low_label, high, high_label, field, reported) in ordering {
            if let (Some(low), Some(high), Some(reported)) = (low, high, reported)
                && low > high
            {
                let message = format!(
                    "{low_label} value {} is greater than {high_label} value {}",
                    text(low),
                    text(high)
                );
                errors.push(Error::invalid(&at(field), repr(reported), &message));
            }
        }
        if let Some(ratio) = ratios.get(name) {
            if *ratio < Quantity::new(1, Format::DecimalSI) {
                let message = format!("ratio {} is less than 1", text(ratio));
                errors.push(Error::invalid(
                    &at("maxLimitRequestRatio"),
                    repr(ratio),
                    &message,
                ));
            }
            if let (Some(min), Some(max)) = (min, max) {
                let (mut ratio_value, mut low, mut high) =
                    (ratio.value() as f64, min.value(), max.value());
                if ratio.value() < MAX_MILLI_VALUE
                    && low < MAX_MILLI_VALUE
                    && high < MAX_MILLI_VALUE
                {
                    ratio_value = ratio.milli_value() as f64 / 1000.0;
                    low = min.milli_value();
                    high = max.milli_value();
                }
                let limit = high as f64 / low as f64;
                if ratio_value > limit {
                    let message =
                        format!("ratio {} is greater than max/min = {limit:.6}", text(ratio));
                    errors.push(Error::invalid(
                        &at("maxLimitRequestRatio"),
                        repr(ratio),
                        &message,
                    ));
                }
            }
        }
        // Huge pages and extended resources cannot be overcommitted: request and limit agree.
        if let (Some(default), Some(request)) = (default, request)
            && !is_overcommit_allowed(name)
            && default != request
        {
            let message = format!(
                "default value {} must equal to defaultRequest value {} in {name}",
                text(default),
                text(request)
            );
            errors.push(Error::invalid(
                &at("defaultRequest"),
                repr(request),
                &message,
            ));
        }
    }
}

impl Strategy for LimitRangeStrategy {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn schema(&self) -> &'static StructSchema {
        &SCHEMA
    }

    fn prepare_for_create(&self, object: &mut Object) {
        apply_defaults(object);
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        apply_defaults(new);
    }

    fn validate(&self, object: &Object) -> ErrorList {
        let mut errors = Vec::new();
        let path = Path::new("spec").child("limits");
        let mut seen = BTreeSet::new();
        for (index, item) in items(object).iter().enumerate() {
            let item_path = path.index(index);
            let kind = item.get("type").and_then(Value::as_str).unwrap_or_default();
            errors.extend(validate_type(kind, &item_path.child("type")));
            if !seen.insert(kind) {
                errors.push(Error::duplicate(&item_path.child("type"), kind));
            }
            validate_item(item, &item_path, &mut errors);
        }
        errors
    }

    fn table_columns(&self) -> Vec<TableColumnDefinition> {
        vec![
            TableColumnDefinition::name_column(),
            TableColumnDefinition {
                name: "Created At",
                column_type: "date",
                format: "",
                description: "When the object was created (RFC 3339, UTC).",
                priority: 0,
            },
        ]
    }

    fn table_row(&self, object: &Object, _now: jiff::Timestamp) -> Vec<Value> {
        vec![
            Value::String(object.metadata.name.clone()),
            Value::String(
                object
                    .metadata
                    .creation_timestamp
                    .clone()
                    .unwrap_or_default(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit_range(limits: &str) -> Object {
        let json = format!(
            r#"{{"apiVersion":"v1","kind":"LimitRange","metadata":{{"name":"l","namespace":"n"}},
                "spec":{{"limits":{limits}}}}}"#
        );
        Object::from_json(json.as_bytes()).unwrap()
    }

    fn messages(errors: ErrorList) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn container_defaults_come_from_max_then_default_then_min() {
        let mut object = limit_range(
            r#"[{"type":"Container","max":{"cpu":"2","memory":"1Gi"},"min":{"cpu":"100m","ephemeral-storage":"1Gi"},
                 "default":{"memory":"512Mi"}},
                {"type":"Pod","max":{"memory":"2Gi"}}]"#,
        );
        LimitRangeStrategy::new().prepare_for_create(&mut object);
        let items = items(&object);
        assert_eq!(
            items[0],
            serde_json::json!({
                "type": "Container",
                "max": {"cpu": "2", "memory": "1Gi"},
                "min": {"cpu": "100m", "ephemeral-storage": "1Gi"},
                "default": {"cpu": "2", "memory": "512Mi"},
                "defaultRequest": {"cpu": "2", "ephemeral-storage": "1Gi", "memory": "512Mi"},
            })
        );
        assert_eq!(
            items[1],
            serde_json::json!({"type": "Pod", "max": {"memory": "2Gi"}})
        );
    }

    #[test]
    fn bounds_must_be_ordered() {
        let mut object =
            limit_range(r#"[{"type":"Container","min":{"cpu":"2"},"max":{"cpu":"1"}}]"#);
        let strategy = LimitRangeStrategy::new();
        strategy.prepare_for_create(&mut object);
        assert_eq!(
            messages(strategy.validate(&object)),
            [
                "spec.limits[0].min[cpu]: Invalid value: resource.Quantity{i:resource.int64Amount{value:2, scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"2\", Format:\"DecimalSI\"}: min value 2 is greater than max value 1",
                "spec.limits[0].defaultRequest[cpu]: Invalid value: resource.Quantity{i:resource.int64Amount{value:1, scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"1\", Format:\"DecimalSI\"}: min value 2 is greater than default request value 1",
                "spec.limits[0].default[cpu]: Invalid value: resource.Quantity{i:resource.int64Amount{value:2, scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"2\", Format:\"DecimalSI\"}: min value 2 is greater than default value 1",
            ]
        );
    }

    #[test]
    fn reported_quantities_show_the_text_their_message_cached() {
        let object = limit_range(r#"[{"type":"Pod","min":{"cpu":"2.5"},"max":{"cpu":"1.5"}}]"#);
        assert_eq!(
            messages(LimitRangeStrategy::new().validate(&object)),
            [
                "spec.limits[0].min[cpu]: Invalid value: resource.Quantity{i:resource.int64Amount{value:25, scale:-1}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"2500m\", Format:\"DecimalSI\"}: min value 2500m is greater than max value 1500m"
            ]
        );
    }

    #[test]
    fn ratios_are_bounded_by_max_over_min() {
        let object = limit_range(
            r#"[{"type":"Container","min":{"cpu":"1"},"max":{"cpu":"4"},"maxLimitRequestRatio":{"cpu":"8"}}]"#,
        );
        assert_eq!(
            messages(LimitRangeStrategy::new().validate(&object)),
            [
                "spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: resource.Quantity{i:resource.int64Amount{value:8, scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"8\", Format:\"DecimalSI\"}: ratio 8 is greater than max/min = 4.000000"
            ]
        );
        let below_one =
            limit_range(r#"[{"type":"Container","maxLimitRequestRatio":{"cpu":"500m"}}]"#);
        assert_eq!(
            messages(LimitRangeStrategy::new().validate(&below_one)),
            [
                "spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: resource.Quantity{i:resource.int64Amount{value:500, scale:-3}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"500m\", Format:\"DecimalSI\"}: ratio 500m is less than 1"
            ]
        );
    }

    #[test]
    fn types_and_per_type_rules() {
        let object = limit_range(
            r#"[{"type":"Pod","default":{"cpu":"2"},"defaultRequest":{"cpu":"1"}},{"type":"Pod"},
                {"type":"Foo"},{"type":"x/y","max":{"foo":"1"}},{"type":"PersistentVolumeClaim"},
                {"type":""}]"#,
        );
        assert_eq!(
            messages(LimitRangeStrategy::new().validate(&object)),
            [
                "spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'",
                "spec.limits[0].defaultRequest: Forbidden: may not be specified when `type` is 'Pod'",
                "spec.limits[1].type: Duplicate value: \"Pod\"",
                "spec.limits[2].type: Invalid value: \"Foo\": must be a standard limit type or fully qualified",
                "spec.limits[3].max[foo]: Invalid value: foo: must be a standard resource type or fully qualified",
                "spec.limits[4].limits: Required value: either minimum or maximum storage value is required, but neither was provided",
                "spec.limits[5].type: Invalid value: \"\": name part must be non-empty",
                "spec.limits[5].type: Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            ]
        );
    }

    #[test]
    fn extended_resources_cannot_be_overcommitted() {
        let object = limit_range(
            r#"[{"type":"Container","default":{"example.com/gpu":"2"},"defaultRequest":{"example.com/gpu":"1"}}]"#,
        );
        assert_eq!(
            messages(LimitRangeStrategy::new().validate(&object)),
            [
                "spec.limits[0].defaultRequest[example.com/gpu]: Invalid value: resource.Quantity{i:resource.int64Amount{value:1, scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"1\", Format:\"DecimalSI\"}: default value 2 must equal to defaultRequest value 1 in example.com/gpu"
            ]
        );
    }
}
