//! OpenAPI v3, generated from the registry and the kinds' structural schemas: the index at
//! `/openapi/v3` and one document per group version (`/openapi/v3/api/v1`). kubectl reads it to
//! learn that the server validates fields itself (`fieldValidation`) and to compute strategic merge
//! patches (`x-kubernetes-patch-strategy` / `-merge-key` come from the schemas' list metadata).

use std::collections::BTreeMap;

use http::StatusCode;
use ironplane_apimachinery::codec;
use ironplane_apimachinery::schema::{ListPatch, Schema, StructSchema};
use ironplane_registry::{Registry, ResourceInfo};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use crate::body::{self, Response};
use crate::responses;

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// OpenAPI v3 of a registry.
pub struct OpenApi<'a> {
    registry: &'a Registry,
}

impl<'a> OpenApi<'a> {
    /// OpenAPI of these resources.
    pub fn new(registry: &'a Registry) -> Self {
        OpenApi { registry }
    }

    fn group_versions(&self) -> BTreeMap<String, (String, String)> {
        let mut out = BTreeMap::new();
        for resource in self.registry.resources() {
            let info = resource.info();
            let key = if info.group.is_empty() {
                format!("api/{}", info.version)
            } else {
                format!("apis/{}/{}", info.group, info.version)
            };
            out.insert(key, (info.group.clone(), info.version.clone()));
        }
        out
    }

    /// Serve `/openapi/v2` (JSON, or gnostic protobuf when asked), `/openapi/v3` and
    /// `/openapi/v3/{group version}`; `None` for other paths.
    pub fn serve(&self, path: &str, accept: Option<&str>) -> Option<Response> {
        if path == "/openapi/v2" || path == "/openapi/v2/" {
            return Some(self.serve_v2(accept));
        }
        let rest = path.strip_prefix("/openapi/v3")?;
        let rest = rest.trim_matches('/');
        if rest.is_empty() {
            let mut paths = Map::new();
            for (key, (group, version)) in self.group_versions() {
                let doc = self.document(&group, &version);
                let hash = hash(&codec::to_json(&doc));
                paths.insert(
                    key.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}),
                );
            }
            let index = json!({ "paths": paths });
            return Some(responses::response(
                StatusCode::OK,
                codec::JSON,
                body::full(codec::to_json(&index)),
            ));
        }
        let (group, version) = self.group_versions().get(rest)?.clone();
        let bytes = codec::to_json(&self.document(&group, &version));
        let etag = format!("\"{}\"", hash(&bytes));
        let mut response = responses::response(StatusCode::OK, codec::JSON, body::full(bytes));
        if let Ok(value) = http::HeaderValue::from_str(&etag) {
            response.headers_mut().insert(http::header::ETAG, value);
        }
        Some(response)
    }

    /// The document of one group version.
    pub fn document(&self, group: &str, version: &str) -> Value {
        let mut schemas = BTreeMap::new();
        let mut paths = Map::new();
        add_meta_schemas(&mut schemas);
        for resource in self.registry.resources() {
            let info = resource.info();
            if info.group != group || info.version != version {
                continue;
            }
            let schema = resource.store.strategy().schema();
            let definition = schema.definition();
            add_struct(&mut schemas, schema);
            if let Some(Value::Object(kind_schema)) = schemas.get_mut(&definition) {
                kind_schema.insert(
                    "x-kubernetes-group-version-kind".into(),
                    json!([{ "group": info.group, "version": info.version, "kind": info.kind }]),
                );
            }
            let list_definition = format!("{definition}List");
            schemas.insert(
                list_definition.clone(),
                json!({
                    "type": "object",
                    "required": ["items"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "items": {"type": "array", "items": {"default": {}, "allOf": [reference(&definition)]}},
                        "kind": {"type": "string"},
                        "metadata": {"default": {}, "allOf": [reference(&format!("{META}.ListMeta"))]},
                    },
                    "x-kubernetes-group-version-kind": [{ "group": info.group, "version": info.version, "kind": info.list_kind() }],
                }),
            );
            add_paths(&mut paths, info, &definition, &list_definition);
        }
        json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": crate::chain::VersionInfo::current().git_version},
            "paths": paths,
            "components": {"schemas": schemas},
        })
    }
}

impl OpenApi<'_> {
    /// The paths of every group version, for OpenAPI v2.
    fn v2_paths(&self) -> Map<String, Value> {
        let mut all = Map::new();
        for (group, version) in self.group_versions().into_values() {
            if let Some(Value::Object(paths)) = self.document(&group, &version).get("paths") {
                for (path, item) in paths {
                    all.insert(path.clone(), item.clone());
                }
            }
        }
        all
    }

    fn serve_v2(&self, accept: Option<&str>) -> Response {
        let paths = self.v2_paths();
        let wants_protobuf = accept
            .is_some_and(|accept| accept.contains("application/com.github.proto-openapi.spec.v2"));
        if wants_protobuf {
            let bytes = v2_protobuf(&paths);
            let mut response = responses::response(
                StatusCode::OK,
                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                body::full(bytes),
            );
            response
                .headers_mut()
                .insert(http::header::VARY, http::HeaderValue::from_static("Accept"));
            return response;
        }
        let document = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": crate::chain::VersionInfo::current().git_version},
            "paths": paths,
        });
        responses::response(
            StatusCode::OK,
            codec::JSON,
            body::full(codec::to_json(&document)),
        )
    }
}

/// The gnostic `openapi_v2.Document` protobuf of the paths: operations with their query
/// parameters and vendor extensions, which is what kubectl reads from it (whether PATCH of a kind
/// takes `fieldValidation`). Definitions are not included.
fn v2_protobuf(paths: &Map<String, Value>) -> Vec<u8> {
    let mut info = Vec::new();
    proto_string(&mut info, 1, "Kubernetes");
    proto_string(
        &mut info,
        2,
        &crate::chain::VersionInfo::current().git_version,
    );
    let mut paths_message = Vec::new();
    for (path, item) in paths {
        let mut path_item = Vec::new();
        for (method, number) in [
            ("get", 2),
            ("put", 3),
            ("post", 4),
            ("delete", 5),
            ("patch", 8),
        ] {
            if let Some(operation) = item.get(method) {
                proto_message(&mut path_item, number, &v2_operation(operation));
            }
        }
        let mut named = Vec::new();
        proto_string(&mut named, 1, path);
        proto_message(&mut named, 2, &path_item);
        proto_message(&mut paths_message, 2, &named);
    }
    let mut document = Vec::new();
    proto_string(&mut document, 1, "2.0");
    proto_message(&mut document, 2, &info);
    proto_message(&mut document, 8, &paths_message);
    document
}

fn v2_operation(operation: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(id) = operation.get("operationId").and_then(Value::as_str) {
        proto_string(&mut out, 5, id);
    }
    for parameter in operation
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = parameter
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = parameter
            .get("schema")
            .and_then(|schema| schema.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("string");
        let mut query = Vec::new();
        proto_string(&mut query, 2, "query");
        proto_string(&mut query, 4, name);
        proto_string(&mut query, 6, kind);
        let mut non_body = Vec::new();
        proto_message(&mut non_body, 3, &query);
        let mut parameter_message = Vec::new();
        proto_message(&mut parameter_message, 2, &non_body);
        let mut item = Vec::new();
        proto_message(&mut item, 1, &parameter_message);
        proto_message(&mut out, 8, &item);
    }
    if let Some(gvk) = operation.get("x-kubernetes-group-version-kind") {
        let yaml = format!(
            "group: {}\nkind: {}\nversion: {}\n",
            yaml_scalar(gvk.get("group")),
            yaml_scalar(gvk.get("kind")),
            yaml_scalar(gvk.get("version"))
        );
        out.extend(named_any("x-kubernetes-group-version-kind", &yaml));
    }
    if let Some(action) = operation.get("x-kubernetes-action").and_then(Value::as_str) {
        out.extend(named_any("x-kubernetes-action", &format!("{action}\n")));
    }
    out
}

/// A `NamedAny` vendor extension (Operation field 13) with a YAML value.
fn named_any(name: &str, yaml: &str) -> Vec<u8> {
    let mut any = Vec::new();
    proto_string(&mut any, 2, yaml);
    let mut named = Vec::new();
    proto_string(&mut named, 1, name);
    proto_message(&mut named, 2, &any);
    let mut out = Vec::new();
    proto_message(&mut out, 13, &named);
    out
}

fn yaml_scalar(value: Option<&Value>) -> String {
    match value.and_then(Value::as_str) {
        Some("") | None => "\"\"".into(),
        Some(text) => text.to_owned(),
    }
}

fn proto_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn proto_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    proto_varint(out, (u64::from(number) << 3) | 2);
    proto_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn proto_string(out: &mut Vec<u8>, number: u32, text: &str) {
    proto_bytes(out, number, text.as_bytes());
}

fn proto_message(out: &mut Vec<u8>, number: u32, message: &[u8]) {
    proto_bytes(out, number, message);
}

fn hash(bytes: &[u8]) -> String {
    Sha512::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect()
}

fn reference(definition: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{definition}") })
}

fn add_meta_schemas(schemas: &mut BTreeMap<String, Value>) {
    // A string in canonical form on the way out; clients may also send a JSON number.
    schemas.insert(
        QUANTITY.to_owned(),
        json!({"oneOf": [{"type": "string"}, {"type": "number"}]}),
    );
    schemas.insert(
        format!("{META}.Time"),
        json!({"type": "string", "format": "date-time"}),
    );
    schemas.insert(
        format!("{META}.MicroTime"),
        json!({"type": "string", "format": "date-time"}),
    );
    schemas.insert(format!("{META}.FieldsV1"), json!({"type": "object"}));
    schemas.insert(
        format!("{META}.ListMeta"),
        json!({"type": "object", "properties": {
            "continue": {"type": "string"},
            "remainingItemCount": {"type": "integer", "format": "int64"},
            "resourceVersion": {"type": "string"},
            "selfLink": {"type": "string"},
        }}),
    );
    schemas.insert(
        format!("{META}.Status"),
        json!({"type": "object", "properties": {
            "apiVersion": {"type": "string"},
            "code": {"type": "integer", "format": "int32"},
            "details": {"type": "object"},
            "kind": {"type": "string"},
            "message": {"type": "string"},
            "metadata": {"default": {}, "allOf": [reference(&format!("{META}.ListMeta"))]},
            "reason": {"type": "string"},
            "status": {"type": "string"},
        }, "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Status"}]}),
    );
}

fn add_struct(schemas: &mut BTreeMap<String, Value>, schema: &'static StructSchema) {
    let definition = schema.definition();
    if schemas.contains_key(&definition) {
        return;
    }
    // Reserve the name first so recursive types terminate.
    schemas.insert(definition.clone(), Value::Null);
    let mut properties = Map::new();
    for field in schema.fields {
        properties.insert(field.name.to_owned(), field_schema(schemas, &field.schema));
    }
    schemas.insert(
        definition,
        json!({"type": "object", "properties": properties}),
    );
}

fn field_schema(schemas: &mut BTreeMap<String, Value>, schema: &Schema) -> Value {
    match schema {
        Schema::String => json!({"type": "string"}),
        Schema::Bytes => json!({"type": "string", "format": "byte"}),
        Schema::Int32 => json!({"type": "integer", "format": "int32"}),
        Schema::Int64 => json!({"type": "integer", "format": "int64"}),
        Schema::Float64 => json!({"type": "number", "format": "double"}),
        Schema::Bool => json!({"type": "boolean"}),
        Schema::Time => json!({"allOf": [reference(&format!("{META}.Time"))]}),
        Schema::MicroTime => json!({"allOf": [reference(&format!("{META}.MicroTime"))]}),
        Schema::IntOrString => {
            json!({"type": "string", "format": "int-or-string", "x-kubernetes-int-or-string": true})
        }
        Schema::Quantity => json!({"default": {}, "allOf": [reference(QUANTITY)]}),
        Schema::Any => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        Schema::Struct(inner) => {
            add_struct(schemas, inner);
            json!({"default": {}, "allOf": [reference(&inner.definition())]})
        }
        Schema::Map(inner) => {
            json!({"type": "object", "additionalProperties": field_schema(schemas, inner)})
        }
        Schema::List(inner, patch) => {
            let mut list = json!({"type": "array", "items": field_schema(schemas, inner)});
            if let Value::Object(list) = &mut list {
                match patch {
                    ListPatch::Replace => {
                        list.insert("x-kubernetes-list-type".into(), json!("atomic"));
                    }
                    ListPatch::MergeByKey(key) => {
                        list.insert("x-kubernetes-patch-strategy".into(), json!("merge"));
                        list.insert("x-kubernetes-patch-merge-key".into(), json!(key));
                    }
                    ListPatch::MergeScalars => {
                        list.insert("x-kubernetes-patch-strategy".into(), json!("merge"));
                        list.insert("x-kubernetes-list-type".into(), json!("set"));
                    }
                }
            }
            list
        }
    }
}

fn query(name: &str, kind: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": kind, "uniqueItems": true}})
}

fn write_parameters(patch: bool) -> Vec<Value> {
    let mut parameters = vec![
        query("dryRun", "string"),
        query("fieldManager", "string"),
        query("fieldValidation", "string"),
    ];
    if patch {
        parameters.push(query("force", "boolean"));
    }
    parameters
}

fn list_parameters() -> Vec<Value> {
    [
        ("allowWatchBookmarks", "boolean"),
        ("continue", "string"),
        ("fieldSelector", "string"),
        ("labelSelector", "string"),
        ("limit", "integer"),
        ("resourceVersion", "string"),
        ("resourceVersionMatch", "string"),
        ("sendInitialEvents", "boolean"),
        ("timeoutSeconds", "integer"),
        ("watch", "boolean"),
    ]
    .into_iter()
    .map(|(name, kind)| query(name, kind))
    .collect()
}

fn delete_parameters() -> Vec<Value> {
    [
        ("dryRun", "string"),
        ("gracePeriodSeconds", "integer"),
        ("orphanDependents", "boolean"),
        ("propagationPolicy", "string"),
    ]
    .into_iter()
    .map(|(name, kind)| query(name, kind))
    .collect()
}

fn content(definition: &str) -> Value {
    let schema = json!({"schema": reference(definition)});
    json!({"application/json": schema, "application/yaml": schema, "application/vnd.kubernetes.protobuf": schema})
}

fn operation(
    info: &ResourceInfo,
    action: &str,
    operation_id: String,
    definition: &str,
    parameters: Vec<Value>,
    body: Option<Value>,
) -> Value {
    let mut op = json!({
        "tags": [tag(info)],
        "operationId": operation_id,
        "parameters": parameters,
        "responses": {"200": {"description": "OK", "content": content(definition)}, "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": info.group, "version": info.version, "kind": info.kind},
    });
    if let (Some(body), Value::Object(map)) = (body, &mut op) {
        map.insert("requestBody".into(), body);
    }
    op
}

fn tag(info: &ResourceInfo) -> String {
    let group = if info.group.is_empty() {
        "core".to_owned()
    } else {
        info.group.replace('.', "_")
    };
    format!("{group}_{}", info.version)
}

fn camel(text: &str) -> String {
    let mut out = String::new();
    let mut upper = true;
    for ch in text.chars() {
        if ch == '.' || ch == '-' || ch == '_' {
            upper = true;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

fn add_paths(
    paths: &mut Map<String, Value>,
    info: &ResourceInfo,
    definition: &str,
    list_definition: &str,
) {
    let prefix = if info.group.is_empty() {
        format!("/api/{}", info.version)
    } else {
        format!("/apis/{}/{}", info.group, info.version)
    };
    let group_name = if info.group.is_empty() {
        "Core".to_owned()
    } else {
        camel(&info.group)
    };
    let id = |verb: &str, scope: &str| {
        format!(
            "{verb}{group_name}{}{scope}{}",
            camel(&info.version),
            info.kind
        )
    };
    let scope = if info.namespaced { "Namespaced" } else { "" };
    let base = if info.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", info.resource)
    } else {
        format!("{prefix}/{}", info.resource)
    };
    let object_body =
        json!({"content": {"*/*": {"schema": reference(definition)}}, "required": true});
    let patch_body = json!({"content": {
        "application/apply-patch+yaml": {"schema": {"type": "object"}},
        "application/json-patch+json": {"schema": {"type": "object"}},
        "application/merge-patch+json": {"schema": {"type": "object"}},
        "application/strategic-merge-patch+json": {"schema": {"type": "object"}},
    }, "required": true});
    let mut collection = Map::new();
    if info.supports("list") {
        collection.insert(
            "get".into(),
            operation(
                info,
                "list",
                id("list", scope),
                list_definition,
                list_parameters(),
                None,
            ),
        );
    }
    if info.supports("create") {
        collection.insert(
            "post".into(),
            operation(
                info,
                "post",
                id("create", scope),
                definition,
                write_parameters(false),
                Some(object_body.clone()),
            ),
        );
    }
    if info.supports("deletecollection") {
        collection.insert(
            "delete".into(),
            operation(
                info,
                "deletecollection",
                id("deleteCollection", scope),
                &format!("{META}.Status"),
                delete_parameters(),
                None,
            ),
        );
    }
    paths.insert(base.clone(), Value::Object(collection));
    let mut item = Map::new();
    if info.supports("get") {
        item.insert(
            "get".into(),
            operation(info, "get", id("read", scope), definition, Vec::new(), None),
        );
    }
    if info.supports("update") {
        item.insert(
            "put".into(),
            operation(
                info,
                "put",
                id("replace", scope),
                definition,
                write_parameters(false),
                Some(object_body.clone()),
            ),
        );
    }
    if info.supports("patch") {
        item.insert(
            "patch".into(),
            operation(
                info,
                "patch",
                id("patch", scope),
                definition,
                write_parameters(true),
                Some(patch_body.clone()),
            ),
        );
    }
    if info.supports("delete") {
        item.insert(
            "delete".into(),
            operation(
                info,
                "delete",
                id("delete", scope),
                &format!("{META}.Status"),
                delete_parameters(),
                None,
            ),
        );
    }
    paths.insert(format!("{base}/{{name}}"), Value::Object(item));
    for sub in &info.subresources {
        let mut ops = Map::new();
        let suffix = camel(&sub.name);
        for verb in &sub.verbs {
            let (method, action, body, params) = match verb.as_str() {
                "get" => ("get", "get", None, Vec::new()),
                "update" => (
                    "put",
                    "put",
                    Some(object_body.clone()),
                    write_parameters(false),
                ),
                "patch" => (
                    "patch",
                    "patch",
                    Some(patch_body.clone()),
                    write_parameters(true),
                ),
                _ => continue,
            };
            let verb_name = match verb.as_str() {
                "get" => "read",
                "update" => "replace",
                other => other,
            };
            ops.insert(
                method.into(),
                operation(
                    info,
                    action,
                    format!("{}{suffix}", id(verb_name, scope)),
                    definition,
                    params,
                    body,
                ),
            );
        }
        paths.insert(format!("{base}/{{name}}/{}", sub.name), Value::Object(ops));
    }
    if info.namespaced && info.supports("list") {
        let all = json!({"get": operation(info, "list", format!("{}ForAllNamespaces", id("list", "")), list_definition, list_parameters(), None)});
        paths.insert(format!("{prefix}/{}", info.resource), all);
    }
}
