//! ResourceQuotas: per-namespace limits on object counts and compute, with the observed use in
//! `status` (written through `resourcequotas/status` by whoever tracks use, as upstream's quota
//! controller does).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ironplane_apimachinery::Object;
use ironplane_apimachinery::field::{BadValue, Error, ErrorList, Path, go_quote};
use ironplane_apimachinery::quantity::Quantity;
use ironplane_apimachinery::schema::{FieldSchema as F, ListPatch, Schema, StructSchema, meta};
use ironplane_apimachinery::table::{self, TableColumnDefinition};
use serde_json::{Map, Value};

use super::resource_names::{
    is_standard_quota, resource_list, validate_quantity_value, validate_quota_resource_name,
};
use crate::resource::ResourceInfo;
use crate::strategy::Strategy;

static RESOURCE_LIST: Schema = Schema::Map(&Schema::Quantity);

static SCOPED_RESOURCE_SELECTOR_REQUIREMENT: StructSchema = StructSchema {
    go_name: "v1.ScopedResourceSelectorRequirement",
    package: "io.k8s.api.core.v1",
    fields: &[
        F::new("scopeName", Schema::String).always().tag(1),
        F::new("operator", Schema::String).always().tag(2),
        F::new("values", Schema::List(&Schema::String, ListPatch::Replace)).tag(3),
    ],
};

static SCOPE_SELECTOR: StructSchema = StructSchema {
    go_name: "v1.ScopeSelector",
    package: "io.k8s.api.core.v1",
    fields: &[F::new(
        "matchExpressions",
        Schema::List(
            &Schema::Struct(&SCOPED_RESOURCE_SELECTOR_REQUIREMENT),
            ListPatch::Replace,
        ),
    )
    .tag(1)],
};

static RESOURCE_QUOTA_SPEC: StructSchema = StructSchema {
    go_name: "v1.ResourceQuotaSpec",
    package: "io.k8s.api.core.v1",
    fields: &[
        F::new("hard", RESOURCE_LIST).tag(1),
        F::new("scopes", Schema::List(&Schema::String, ListPatch::Replace)).tag(2),
        F::new("scopeSelector", Schema::Struct(&SCOPE_SELECTOR))
            .pointer()
            .tag(3),
    ],
};

static RESOURCE_QUOTA_STATUS: StructSchema = StructSchema {
    go_name: "v1.ResourceQuotaStatus",
    package: "io.k8s.api.core.v1",
    fields: &[
        F::new("hard", RESOURCE_LIST).tag(1),
        F::new("used", RESOURCE_LIST).tag(2),
    ],
};

/// `v1.ResourceQuota`.
pub static SCHEMA: StructSchema = StructSchema {
    go_name: "v1.ResourceQuota",
    package: "io.k8s.api.core.v1",
    fields: &[
        meta::OBJECT_FIELDS[0],
        meta::OBJECT_FIELDS[1],
        meta::OBJECT_FIELDS[2],
        F::new("spec", Schema::Struct(&RESOURCE_QUOTA_SPEC))
            .always()
            .tag(2),
        F::new("status", Schema::Struct(&RESOURCE_QUOTA_STATUS))
            .always()
            .tag(3),
    ],
};

/// Scopes upstream knows.
const SCOPES: [&str; 6] = [
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
];

/// Scopes that only say whether a pod has a property, so their selector operator is `Exists`.
const PROPERTY_SCOPES: [&str; 5] = [
    "BestEffort",
    "NotBestEffort",
    "Terminating",
    "NotTerminating",
    "CrossNamespacePodAffinity",
];

/// Scopes that cannot both apply.
const CONFLICTING_SCOPES: [[&str; 2]; 2] = [
    ["BestEffort", "NotBestEffort"],
    ["Terminating", "NotTerminating"],
];

/// What a pod uses: its count and its compute.
const POD_COMPUTE: [&str; 6] = [
    "cpu",
    "memory",
    "limits.cpu",
    "limits.memory",
    "requests.cpu",
    "requests.memory",
];

/// Whether a quota in `scope` can track `resource` (a best-effort pod has no compute to count).
fn scope_fits_resource(scope: &str, resource: &str) -> bool {
    match scope {
        "Terminating"
        | "NotTerminating"
        | "NotBestEffort"
        | "PriorityClass"
        | "CrossNamespacePodAffinity" => resource == "pods" || POD_COMPUTE.contains(&resource),
        "BestEffort" => resource == "pods",
        _ => true,
    }
}

/// Which part of a quota an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// The main resource: metadata and spec.
    Main,
    /// `resourcequotas/status`.
    Status,
}

/// The ResourceQuota strategy (and, with the status part, that of `resourcequotas/status`).
pub struct ResourceQuotaStrategy {
    info: ResourceInfo,
    part: Part,
}

impl ResourceQuotaStrategy {
    /// The main resource's strategy.
    pub fn new() -> Self {
        Self::with_part(Part::Main)
    }

    /// The strategy of `resourcequotas/status`.
    pub fn status() -> Self {
        Self::with_part(Part::Status)
    }

    fn with_part(part: Part) -> Self {
        ResourceQuotaStrategy {
            info: ResourceInfo::new(
                "",
                "v1",
                "resourcequotas",
                "resourcequota",
                "ResourceQuota",
                true,
            )
            .short_names(&["quota"])
            .subresource("status", &["get", "patch", "update"]),
            part,
        }
    }
}

impl Default for ResourceQuotaStrategy {
    fn default() -> Self {
        Self::new()
    }
}

/// The resource list at `path` (`["spec", "hard"]`).
fn list_at<'a>(object: &'a Object, path: &[&str]) -> BTreeMap<&'a str, Quantity> {
    let Some((first, rest)) = path.split_first() else {
        return BTreeMap::new();
    };
    let value = rest.iter().fold(object.field(first), |value, name| {
        value.and_then(|v| v.get(name))
    });
    resource_list(value)
}

fn string_list(value: Option<&Value>) -> Option<Vec<String>> {
    let items = value?.as_array()?;
    Some(
        items
            .iter()
            .map(|item| item.as_str().unwrap_or_default().to_owned())
            .collect(),
    )
}

fn scopes(object: &Object) -> Option<Vec<String>> {
    string_list(object.field("spec").and_then(|spec| spec.get("scopes")))
}

/// `[]core.ResourceQuotaScope{"A", "B"}`, as upstream prints the scopes in errors.
fn scopes_repr(scopes: Option<&[String]>) -> BadValue {
    BadValue::Raw(match scopes {
        None => "[]core.ResourceQuotaScope(nil)".to_owned(),
        Some(scopes) => format!(
            "[]core.ResourceQuotaScope{{{}}}",
            scopes
                .iter()
                .map(|scope| go_quote(scope))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// The scope selector as upstream prints it in errors (a pointer to the Go struct, `%#v`).
fn selector_repr(expressions: &[Value]) -> BadValue {
    let requirements: Vec<String> = expressions
        .iter()
        .map(|expression| {
            let text = |name: &str| {
                go_quote(
                    expression
                        .get(name)
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                )
            };
            let values = string_list(expression.get("values"));
            format!(
                "core.ScopedResourceSelectorRequirement{{ScopeName:{}, Operator:{}, Values:{}}}",
                text("scopeName"),
                text("operator"),
                ironplane_apimachinery::field::go_string_slice(values.as_deref()),
            )
        })
        .collect();
    BadValue::Raw(format!(
        "&core.ScopeSelector{{MatchExpressions:[]core.ScopedResourceSelectorRequirement{{{}}}}}",
        requirements.join(", ")
    ))
}

fn validate_resource_list(object: &Object, path: &[&str], errors: &mut ErrorList) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let field = Path::from_names(first, rest);
    for (name, quantity) in list_at(object, path) {
        let entry = field.key(name);
        errors.extend(validate_quota_resource_name(name, &entry));
        errors.extend(validate_quantity_value(name, &quantity, &entry));
    }
}

fn hard_names(object: &Object) -> Vec<&str> {
    list_at(object, &["spec", "hard"]).into_keys().collect()
}

fn validate_scopes(object: &Object, errors: &mut ErrorList) {
    let Some(scopes) = scopes(object) else {
        return;
    };
    if scopes.is_empty() {
        return;
    }
    let path = Path::new("spec").child("scopes");
    let hard = hard_names(object);
    for scope in &scopes {
        if !SCOPES.contains(&scope.as_str()) {
            errors.push(Error::invalid(
                &path,
                scopes_repr(Some(&scopes)),
                "unsupported scope",
            ));
        }
        for name in &hard {
            if is_standard_quota(name) && !scope_fits_resource(scope, name) {
                errors.push(Error::invalid(
                    &path,
                    scopes_repr(Some(&scopes)),
                    "unsupported scope applied to resource",
                ));
            }
        }
    }
    let set: BTreeSet<&str> = scopes.iter().map(String::as_str).collect();
    for pair in CONFLICTING_SCOPES {
        if pair.iter().all(|scope| set.contains(scope)) {
            errors.push(Error::invalid(
                &path,
                scopes_repr(Some(&scopes)),
                "conflicting scopes",
            ));
        }
    }
}

fn validate_scope_selector(object: &Object, errors: &mut ErrorList) {
    let Some(selector) = object
        .field("spec")
        .and_then(|spec| spec.get("scopeSelector"))
        .filter(|selector| !selector.is_null())
    else {
        return;
    };
    let expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let path = Path::new("spec")
        .child("scopeSelector")
        .child("matchExpressions");
    let hard = hard_names(object);
    let mut seen = BTreeSet::new();
    for expression in expressions {
        let scope = expression
            .get("scopeName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let operator = expression
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let values = string_list(expression.get("values"));
        if !SCOPES.contains(&scope) {
            errors.push(Error::invalid(
                &path.child("scopeName"),
                scope,
                "unsupported scope",
            ));
        }
        for name in &hard {
            if is_standard_quota(name) && !scope_fits_resource(scope, name) {
                errors.push(Error::invalid(
                    &path,
                    selector_repr(expressions),
                    "unsupported scope applied to resource",
                ));
            }
        }
        if PROPERTY_SCOPES.contains(&scope) && operator != "Exists" {
            errors.push(Error::invalid(
                &path.child("operator"),
                operator,
                "must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, \
                 ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, \
                 ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
            ));
        }
        let has_values = values.as_ref().is_some_and(|values| !values.is_empty());
        match operator {
            "In" | "NotIn" if !has_values => errors.push(Error::required(
                &path.child("values"),
                "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
            )),
            "Exists" | "DoesNotExist" if has_values => errors.push(Error::invalid(
                &path.child("values"),
                BadValue::string_slice(values.as_deref()),
                "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            _ => errors.push(Error::invalid(
                &path.child("operator"),
                operator,
                "not a valid selector operator",
            )),
        }
        seen.insert(scope);
    }
    for pair in CONFLICTING_SCOPES {
        if pair.iter().all(|scope| seen.contains(scope)) {
            errors.push(Error::invalid(
                &path,
                scopes_repr(scopes(object).as_deref()),
                "conflicting scopes",
            ));
        }
    }
}

fn validate_spec(object: &Object, errors: &mut ErrorList) {
    validate_resource_list(object, &["spec", "hard"], errors);
    validate_scopes(object, errors);
    validate_scope_selector(object, errors);
}

fn validate_status(object: &Object, errors: &mut ErrorList) {
    validate_resource_list(object, &["status", "hard"], errors);
    validate_resource_list(object, &["status", "used"], errors);
}

fn copy_field(to: &mut Object, from: &Object, name: &str) {
    let value = from
        .field(name)
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    to.fields.insert(name.into(), value);
    ironplane_apimachinery::schema::reorder(&mut to.fields, &SCHEMA);
}

impl Strategy for ResourceQuotaStrategy {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn schema(&self) -> &'static StructSchema {
        &SCHEMA
    }

    fn subresources(&self) -> Vec<(&'static str, Arc<dyn Strategy>)> {
        match self.part {
            Part::Main => vec![("status", Arc::new(ResourceQuotaStrategy::status()))],
            Part::Status => Vec::new(),
        }
    }

    fn prepare_for_create(&self, object: &mut Object) {
        object
            .fields
            .insert("status".into(), Value::Object(Map::new()));
        ironplane_apimachinery::schema::reorder(&mut object.fields, &SCHEMA);
    }

    fn prepare_for_update(&self, new: &mut Object, old: &Object) {
        match self.part {
            Part::Main => copy_field(new, old, "status"),
            Part::Status => copy_field(new, old, "spec"),
        }
    }

    fn validate(&self, object: &Object) -> ErrorList {
        let mut errors = Vec::new();
        validate_spec(object, &mut errors);
        validate_status(object, &mut errors);
        errors
    }

    fn validate_update(&self, new: &Object, old: &Object) -> ErrorList {
        let mut errors = Vec::new();
        match self.part {
            Part::Main => {
                validate_spec(new, &mut errors);
                let new_scopes = scopes(new);
                let as_set = |scopes: &Option<Vec<String>>| -> BTreeSet<String> {
                    scopes.iter().flatten().cloned().collect()
                };
                if as_set(&new_scopes) != as_set(&scopes(old)) {
                    errors.push(Error::invalid(
                        &Path::new("spec").child("scopes"),
                        scopes_repr(new_scopes.as_deref()),
                        "field is immutable",
                    ));
                }
            }
            Part::Status => validate_status(new, &mut errors),
        }
        errors
    }

    fn table_columns(&self) -> Vec<TableColumnDefinition> {
        vec![
            TableColumnDefinition::name_column(),
            TableColumnDefinition::age_column(),
            TableColumnDefinition::string(
                "Request",
                "Enforced limits and use of everything but limits.*: used/hard.",
            ),
            TableColumnDefinition::string(
                "Limit",
                "Enforced limits and use of limits.*: used/hard.",
            ),
        ]
    }

    fn table_row(&self, object: &Object, now: jiff::Timestamp) -> Vec<Value> {
        let used = list_at(object, &["status", "used"]);
        let mut requests = Vec::new();
        let mut limits = Vec::new();
        for (name, hard) in list_at(object, &["status", "hard"]) {
            let used = used
                .get(name)
                .map_or_else(|| "0".to_owned(), Quantity::to_canonical_string);
            let cell = format!("{name}: {used}/{}", hard.to_canonical_string());
            if name.split('.').next() == Some("limits") && name.contains('.') {
                limits.push(cell);
            } else {
                requests.push(cell);
            }
        }
        vec![
            Value::String(object.metadata.name.clone()),
            Value::String(table::age(
                object.metadata.creation_timestamp.as_deref(),
                now,
            )),
            Value::String(requests.join(", ")),
            Value::String(limits.join(", ")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(spec: &str) -> Object {
        let json = format!(
            r#"{{"apiVersion":"v1","kind":"ResourceQuota","metadata":{{"name":"q","namespace":"n"}},
                "spec":{spec},"status":{{}}}}"#
        );
        Object::from_json(json.as_bytes()).unwrap()
    }

    fn messages(errors: ErrorList) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn hard_limits_need_known_names_and_fitting_values() {
        let object = quota(
            r#"{"hard":{"Bad Name":"1","configmaps":"500m","cpu":"-1","pods":"1.5","x":"1",
                        "requests.hugepages-2Mi":"1","count/foo":"2","requests.example.com/foo":"1"}}"#,
        );
        assert_eq!(
            messages(ResourceQuotaStrategy::new().validate(&object)),
            [
                "spec.hard[Bad Name]: Invalid value: Bad Name: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                "spec.hard[Bad Name]: Invalid value: Bad Name: must be a standard resource for quota",
                "spec.hard[configmaps]: Invalid value: resource.Quantity{i:resource.int64Amount{value:500, scale:-3}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"500m\", Format:\"DecimalSI\"}: must be an integer",
                "spec.hard[cpu]: Invalid value: \"-1\": must be greater than or equal to 0",
                "spec.hard[pods]: Invalid value: resource.Quantity{i:resource.int64Amount{value:15, scale:-1}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"\", Format:\"DecimalSI\"}: must be an integer",
                "spec.hard[x]: Invalid value: x: must be a standard resource type or fully qualified",
                "spec.hard[x]: Invalid value: x: must be a standard resource for quota",
            ]
        );
    }

    #[test]
    fn scopes_must_be_known_fitting_and_consistent() {
        let object = quota(
            r#"{"hard":{"pods":"1","cpu":"1"},"scopes":["Nope","BestEffort","NotBestEffort"]}"#,
        );
        let scopes = r#"[]core.ResourceQuotaScope{"Nope", "BestEffort", "NotBestEffort"}"#;
        assert_eq!(
            messages(ResourceQuotaStrategy::new().validate(&object)),
            [
                format!("spec.scopes: Invalid value: {scopes}: unsupported scope"),
                format!(
                    "spec.scopes: Invalid value: {scopes}: unsupported scope applied to resource"
                ),
                format!("spec.scopes: Invalid value: {scopes}: conflicting scopes"),
            ]
        );
    }

    #[test]
    fn scope_selectors_are_checked_per_expression() {
        let object = quota(
            r#"{"hard":{"pods":"1"},"scopeSelector":{"matchExpressions":[
                {"scopeName":"PriorityClass","operator":"In"},
                {"scopeName":"BestEffort","operator":"In","values":["a"]},
                {"scopeName":"Foo","operator":"Bad"}]}}"#,
        );
        assert_eq!(
            messages(ResourceQuotaStrategy::new().validate(&object)),
            [
                "spec.scopeSelector.matchExpressions.values: Required value: must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
                "spec.scopeSelector.matchExpressions.operator: Invalid value: \"In\": must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
                "spec.scopeSelector.matchExpressions.scopeName: Invalid value: \"Foo\": unsupported scope",
                "spec.scopeSelector.matchExpressions.operator: Invalid value: \"Bad\": not a valid selector operator",
            ]
        );
    }

    #[test]
    fn updates_keep_the_other_half_and_scopes() {
        let main = ResourceQuotaStrategy::new();
        let status = ResourceQuotaStrategy::status();
        let mut old = quota(r#"{"hard":{"pods":"2"},"scopes":["NotTerminating"]}"#);
        old.fields.insert(
            "status".into(),
            serde_json::json!({"hard": {"pods": "2"}, "used": {"pods": "1"}}),
        );
        let mut new = quota(r#"{"hard":{"pods":"3"},"scopes":["Terminating"]}"#);
        main.prepare_for_update(&mut new, &old);
        assert_eq!(new.field("status"), old.field("status"));
        assert_eq!(
            messages(main.validate_update(&new, &old)),
            [
                "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"Terminating\"}: field is immutable"
            ]
        );
        let mut by_status = quota(r#"{"hard":{"pods":"9"}}"#);
        by_status.fields.insert(
            "status".into(),
            serde_json::json!({"hard": {"pods": "2"}, "used": {"pods": "2"}}),
        );
        status.prepare_for_update(&mut by_status, &old);
        assert_eq!(by_status.field("spec"), old.field("spec"));
        assert!(status.validate_update(&by_status, &old).is_empty());
    }

    #[test]
    fn table_rows_show_status_use_against_hard() {
        let mut object = quota(r#"{"hard":{"pods":"10"}}"#);
        object.fields.insert(
            "status".into(),
            serde_json::json!({
                "hard": {"configmaps": "2", "requests.cpu": "1", "limits.memory": "1536Mi", "pods": "10"},
                "used": {"configmaps": "1", "requests.cpu": "0", "limits.memory": "0"},
            }),
        );
        let row = ResourceQuotaStrategy::new().table_row(&object, jiff::Timestamp::now());
        assert_eq!(row[2], "configmaps: 1/2, pods: 0/10, requests.cpu: 0/1");
        assert_eq!(row[3], "limits.memory: 0/1536Mi");
    }
}
