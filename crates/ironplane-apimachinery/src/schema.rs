//! Structural schemas: the shape of a kind's JSON, used to decode a request body the way
//! upstream's typed decoding does (type errors, unknown fields dropped and reported, Go's omission
//! rules and value normalization) and, later, to drive patches and publish OpenAPI.
//!
//! One schema language serves built-in kinds (written in Rust as statics) and, later, custom
//! resources (converted from their `openAPIV3Schema`), so that both go through the same path.

use serde_json::{Map, Number, Value};

use crate::meta::{format_micro_time, format_time, parse_time};
use crate::quantity::Quantity;

/// The type of a JSON value.
#[derive(Clone, Copy, Debug)]
pub enum Schema {
    /// A Go `string`.
    String,
    /// A Go `[]byte`: a base64 string in JSON.
    Bytes,
    /// A Go `int32`.
    Int32,
    /// A Go `int64`.
    Int64,
    /// A Go `float64`.
    Float64,
    /// A Go `bool`.
    Bool,
    /// `metav1.Time`: RFC 3339, normalized to UTC seconds.
    Time,
    /// `metav1.MicroTime`: RFC 3339, normalized to UTC microseconds.
    MicroTime,
    /// `intstr.IntOrString`.
    IntOrString,
    /// `resource.Quantity`: a string or number, kept as parsed until [`canonicalize_quantities`]
    /// writes upstream's canonical text.
    Quantity,
    /// Any JSON, kept as sent (`runtime.RawExtension`, free-form JSON).
    Any,
    /// A Go struct.
    Struct(&'static StructSchema),
    /// A Go `map[string]T`.
    Map(&'static Schema),
    /// A Go `[]T`.
    List(&'static Schema, ListPatch),
}

/// A Go struct: its name (for Go-shaped error messages) and its fields in declaration order.
#[derive(Debug)]
pub struct StructSchema {
    /// The Go type name with its package, such as `v1.ObjectMeta`.
    pub go_name: &'static str,
    /// The OpenAPI definition prefix of the type's package, such as
    /// `io.k8s.apimachinery.pkg.apis.meta.v1`.
    pub package: &'static str,
    /// The fields, in the order upstream serializes them.
    pub fields: &'static [FieldSchema],
}

impl StructSchema {
    /// The OpenAPI definition name, such as `io.k8s.api.core.v1.ConfigMap`.
    pub fn definition(&self) -> String {
        let type_name = self.go_name.rsplit('.').next().unwrap_or(self.go_name);
        format!("{}.{type_name}", self.package)
    }

    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&'static FieldSchema> {
        self.fields.iter().find(|field| field.name == name)
    }
}

/// When a field appears in the output, following Go's encoding rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    /// `omitempty`: left out when absent or zero ("", 0, false, empty map or list, null).
    OmitEmpty,
    /// A pointer with `omitempty`: left out when absent or null; zero values are kept.
    Pointer,
    /// No `omitempty`: always present, as its zero value when absent.
    Always,
}

/// How a strategic merge patch treats a list (its `patchStrategy` and `patchMergeKey`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListPatch {
    /// The patch replaces the whole list.
    Replace,
    /// Elements are objects merged by the value of this key.
    MergeByKey(&'static str),
    /// Elements are scalars merged as a set.
    MergeScalars,
}

/// One field of a struct.
#[derive(Clone, Copy, Debug)]
pub struct FieldSchema {
    /// The JSON name.
    pub name: &'static str,
    /// Its type.
    pub schema: Schema,
    /// When it is written out.
    pub emit: Emit,
    /// The field number in the kind's protobuf encoding (0: none).
    pub tag: u32,
}

impl FieldSchema {
    /// An `omitempty` field.
    pub const fn new(name: &'static str, schema: Schema) -> Self {
        Self {
            name,
            schema,
            emit: Emit::OmitEmpty,
            tag: 0,
        }
    }

    /// The field's protobuf field number.
    pub const fn tag(mut self, tag: u32) -> Self {
        self.tag = tag;
        self
    }

    /// A pointer field: zero values are kept, absence is preserved.
    pub const fn pointer(mut self) -> Self {
        self.emit = Emit::Pointer;
        self
    }

    /// A field without `omitempty`: always written.
    pub const fn always(mut self) -> Self {
        self.emit = Emit::Always;
        self
    }
}

/// Put a struct's fields back in schema order after code has inserted some (fields the schema
/// does not know keep their relative order at the end).
pub fn reorder(map: &mut Map<String, Value>, schema: &StructSchema) {
    let mut old = std::mem::take(map);
    for field in schema.fields {
        if let Some(value) = old.shift_remove(field.name) {
            map.insert(field.name.to_owned(), value);
        }
    }
    for (key, value) in old {
        map.insert(key, value);
    }
}

/// Give the top-level fields of an object (everything but type meta and `metadata`, which
/// [`crate::Object`] holds apart) the shape Go would write for `schema`: schema order, zero
/// `omitempty` fields left out, absent always-written fields present as their zero value.
/// Conversions between versions of a kind rename fields of already decoded objects and need
/// the target version's rules applied again; nested values are kept as they are.
pub fn emit_top_level(
    mut fields: Map<String, Value>,
    schema: &'static StructSchema,
) -> Map<String, Value> {
    let mut decoder = Decoder::default();
    let mut output = Map::with_capacity(fields.len());
    for field in schema.fields {
        if matches!(field.name, "kind" | "apiVersion" | "metadata") {
            continue;
        }
        match (fields.shift_remove(field.name), field.emit) {
            (Some(value), Emit::OmitEmpty) if is_zero(&value, &field.schema) => {}
            (None | Some(Value::Null), Emit::Always) => {
                if let Ok(zero) = decoder.zero_value(&field.schema) {
                    output.insert(field.name.to_owned(), zero);
                }
            }
            (Some(Value::Null), Emit::Pointer) | (None, _) => {}
            (Some(value), _) => {
                output.insert(field.name.to_owned(), value);
            }
        }
    }
    output.extend(fields);
    output
}

/// A body decoded against its schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The normalized object: known fields only, in schema order, Go's omission rules applied.
    pub object: Map<String, Value>,
    /// Paths of the fields the schema does not know, as upstream reports them (`spec.foo`).
    pub unknown_fields: Vec<String>,
}

/// Decode a JSON object against a struct schema. The error is the text of the first type error,
/// shaped like Go's (`json: cannot unmarshal number into Go struct field ConfigMap.data of type
/// string`).
pub fn decode(value: Value, schema: &'static StructSchema) -> Result<Decoded, String> {
    let mut decoder = Decoder::default();
    let object = match value {
        Value::Object(map) => decoder.decode_struct(map, schema)?,
        other => {
            return Err(format!(
                "json: cannot unmarshal {} into Go value of type {}",
                json_type(&other),
                schema.go_name
            ));
        }
    };
    Ok(Decoded {
        object,
        unknown_fields: decoder.unknown_fields,
    })
}

/// Rewrite every `resource.Quantity` of a decoded object (see [`decode`]) in the canonical form
/// upstream stores and returns; text that is not a quantity is left as it is.
pub fn canonicalize_quantities(object: &mut Map<String, Value>, schema: &StructSchema) {
    for field in schema.fields {
        if let Some(value) = object.get_mut(field.name) {
            canonicalize_value(value, &field.schema);
        }
    }
}

fn canonicalize_value(value: &mut Value, schema: &Schema) {
    match (schema, value) {
        (Schema::Quantity, Value::String(text)) => {
            if let Ok(quantity) = Quantity::parse(text) {
                *text = quantity.to_canonical_string();
            }
        }
        (Schema::Struct(inner), Value::Object(map)) => canonicalize_quantities(map, inner),
        (Schema::Map(inner), Value::Object(map)) => {
            for item in map.values_mut() {
                canonicalize_value(item, inner);
            }
        }
        (Schema::List(inner, _), Value::Array(items)) => {
            for item in items {
                canonicalize_value(item, inner);
            }
        }
        _ => {}
    }
}

/// Whether a schema holds a `resource.Quantity` anywhere (most kinds do not, and skip the walk).
pub fn has_quantities(schema: &StructSchema) -> bool {
    fn walk(schema: &Schema, seen: &mut Vec<&'static str>) -> bool {
        match schema {
            Schema::Quantity => true,
            Schema::Struct(inner) => {
                if seen.contains(&inner.go_name) {
                    return false;
                }
                seen.push(inner.go_name);
                inner.fields.iter().any(|field| walk(&field.schema, seen))
            }
            Schema::Map(inner) | Schema::List(inner, _) => walk(inner, seen),
            _ => false,
        }
    }
    let mut seen = vec![schema.go_name];
    schema
        .fields
        .iter()
        .any(|field| walk(&field.schema, &mut seen))
}

#[derive(Default)]
struct Decoder {
    unknown_fields: Vec<String>,
    /// The Go structs being decoded, innermost last (Go names the innermost in its errors).
    structs: Vec<&'static str>,
    /// Field names from the root to the current value (Go's error context has no indices).
    go_fields: Vec<&'static str>,
    /// The path from the root to the current value, written out only for an unknown field (a
    /// string per field decoded was most of a create's allocations).
    path: Vec<Segment>,
}

/// One step of a [`Decoder`]'s path.
enum Segment {
    /// A struct field.
    Field(&'static str),
    /// A map key (moved in while its value is decoded, and back out after).
    Key(String),
    /// A list index.
    Index(usize),
}

impl Decoder {
    fn decode_struct(
        &mut self,
        mut input: Map<String, Value>,
        schema: &'static StructSchema,
    ) -> Result<Map<String, Value>, String> {
        self.structs.push(schema.go_name);
        // Sized for what it will hold (the fields sent, plus those always written), so that it
        // does not grow field by field.
        let always = schema
            .fields
            .iter()
            .filter(|field| field.emit == Emit::Always)
            .count();
        let mut output = Map::with_capacity(input.len() + always);
        for field in schema.fields {
            let value = input.shift_remove(field.name);
            self.go_fields.push(field.name);
            self.path.push(Segment::Field(field.name));
            let decoded = match value {
                None | Some(Value::Null) => Ok(None),
                Some(value) => self.decode_value(value, &field.schema),
            };
            self.path.pop();
            self.go_fields.pop();
            let decoded = match decoded {
                Ok(decoded) => decoded,
                Err(err) => {
                    self.structs.pop();
                    return Err(err);
                }
            };
            match (decoded, field.emit) {
                (Some(value), Emit::OmitEmpty) if is_zero(&value, &field.schema) => {}
                (Some(value), _) => {
                    output.insert(field.name.to_owned(), value);
                }
                (None, Emit::Always) => {
                    let zero = self.zero_value(&field.schema)?;
                    output.insert(field.name.to_owned(), zero);
                }
                (None, _) => {}
            }
        }
        // Whatever is left is unknown to the schema; map order is the input's, which keeps the
        // report stable for a given body.
        for key in input.keys() {
            let path = self.path_to(key);
            self.unknown_fields.push(path);
        }
        self.structs.pop();
        Ok(output)
    }

    /// The dotted path of field `name` of the current value (`spec.containers[0].name`).
    fn path_to(&self, name: &str) -> String {
        let mut out = String::new();
        for segment in &self.path {
            match segment {
                Segment::Field(part) => join_segment(&mut out, part),
                Segment::Key(part) => join_segment(&mut out, part),
                Segment::Index(index) => out.push_str(&format!("[{index}]")),
            }
        }
        join_segment(&mut out, name);
        out
    }

    fn zero_value(&mut self, schema: &Schema) -> Result<Value, String> {
        Ok(match schema {
            Schema::String => Value::String(String::new()),
            // A zero `resource.Quantity` (also what `null` unmarshals to) marshals as "0".
            Schema::Quantity => Value::String("0".to_owned()),
            Schema::Int32 | Schema::Int64 | Schema::IntOrString => Value::Number(0.into()),
            Schema::Float64 => Value::Number(0.into()),
            Schema::Bool => Value::Bool(false),
            Schema::Struct(inner) => Value::Object(self.decode_struct(Map::new(), inner)?),
            Schema::Time
            | Schema::MicroTime
            | Schema::Bytes
            | Schema::Any
            | Schema::Map(_)
            | Schema::List(..) => Value::Null,
        })
    }

    /// Decode an element of a map or list (a `null` element is the element type's zero value).
    fn decode_element(&mut self, value: Value, schema: &Schema) -> Result<Value, String> {
        match value {
            Value::Null => self.zero_value(schema),
            value => match self.decode_value(value, schema)? {
                Some(value) => Ok(value),
                None => self.zero_value(schema),
            },
        }
    }

    /// Decode one non-null value; `None` means "treat as absent".
    fn decode_value(&mut self, value: Value, schema: &Schema) -> Result<Option<Value>, String> {
        let decoded = match (schema, value) {
            (Schema::Any, value) => value,
            (_, Value::Null) => return Ok(None),
            (Schema::String, Value::String(text)) => Value::String(text),
            (Schema::Bytes, Value::String(text)) => Value::String(normalize_base64(&text)?),
            (Schema::Int32, Value::Number(number)) => {
                Value::Number(self.integer(&number, i32::MIN.into(), i32::MAX.into(), schema)?)
            }
            (Schema::Int64, Value::Number(number)) => {
                Value::Number(self.integer(&number, i64::MIN, i64::MAX, schema)?)
            }
            (Schema::Float64, Value::Number(number)) => Value::Number(number),
            (Schema::Bool, Value::Bool(flag)) => Value::Bool(flag),
            (Schema::Time, Value::String(text)) => Value::String(normalize_time(&text, false)?),
            (Schema::MicroTime, Value::String(text)) => Value::String(normalize_time(&text, true)?),
            (Schema::IntOrString, Value::String(text)) => Value::String(text),
            (Schema::IntOrString, Value::Number(number)) => {
                Value::Number(self.integer(&number, i32::MIN.into(), i32::MAX.into(), schema)?)
            }
            // Upstream's UnmarshalJSON parses strings and numbers (and fails any other JSON
            // with its format error). The object keeps the text as parsed until it has been
            // validated, because validation errors print the parsed form (`%#v`);
            // [`canonicalize_quantities`] writes the canonical text before it is stored.
            (Schema::Quantity, value) => {
                let quantity = Quantity::from_json(&value).map_err(|err| err.to_string())?;
                let text = match &value {
                    Value::String(text) => text.trim().to_owned(),
                    other => other.to_string(),
                };
                match Quantity::parse(&text) {
                    Ok(reparsed) if reparsed.go_repr() == quantity.go_repr() => Value::String(text),
                    _ => Value::String(quantity.to_canonical_string()),
                }
            }
            (Schema::Struct(inner), Value::Object(map)) => {
                Value::Object(self.decode_struct(map, inner)?)
            }
            (Schema::Map(inner), Value::Object(map)) => {
                // Go writes maps with sorted keys; keep them that way from the start.
                let mut entries: Vec<(String, Value)> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                let mut output = Map::with_capacity(entries.len());
                for (key, value) in entries {
                    self.path.push(Segment::Key(key));
                    let decoded = self.decode_element(value, inner);
                    let Some(Segment::Key(key)) = self.path.pop() else {
                        return Err("internal error: the decoder lost its place in a map".into());
                    };
                    output.insert(key, decoded?);
                }
                Value::Object(output)
            }
            (Schema::List(inner, _), Value::Array(items)) => {
                let mut output = Vec::with_capacity(items.len());
                for (index, item) in items.into_iter().enumerate() {
                    self.path.push(Segment::Index(index));
                    let decoded = self.decode_element(item, inner);
                    self.path.pop();
                    output.push(decoded?);
                }
                Value::Array(output)
            }
            (schema, value) => return Err(self.type_error(json_type(&value).into(), schema)),
        };
        Ok(Some(decoded))
    }

    fn integer(
        &self,
        number: &Number,
        min: i64,
        max: i64,
        schema: &Schema,
    ) -> Result<Number, String> {
        match number.as_i64() {
            Some(value) if (min..=max).contains(&value) => Ok(Number::from(value)),
            _ => Err(self.type_error(format!("number {number}"), schema)),
        }
    }

    fn type_error(&self, found: String, schema: &Schema) -> String {
        let go_type = go_type_name(schema);
        match (self.structs.last(), self.go_fields.as_slice()) {
            (Some(innermost), fields) if !fields.is_empty() => format!(
                "json: cannot unmarshal {found} into Go struct field {}.{} of type {go_type}",
                innermost.rsplit('.').next().unwrap_or(innermost),
                fields.join(".")
            ),
            _ => format!("json: cannot unmarshal {found} into Go value of type {go_type}"),
        }
    }
}

fn join_segment(path: &mut String, name: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
}

fn is_zero(value: &Value, schema: &Schema) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        Value::Bool(flag) => !flag,
        Value::Number(number) => number.as_f64() == Some(0.0),
        Value::Array(items) => items.is_empty(),
        // Go never omits a struct, only empty maps.
        Value::Object(map) => map.is_empty() && matches!(schema, Schema::Map(_)),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The Go type a schema stands for, as Go prints it in decode errors.
pub fn go_type_name(schema: &Schema) -> String {
    match schema {
        Schema::String => "string".into(),
        Schema::Bytes => "[]uint8".into(),
        Schema::Int32 => "int32".into(),
        Schema::Int64 => "int64".into(),
        Schema::Float64 => "float64".into(),
        Schema::Bool => "bool".into(),
        Schema::Time => "v1.Time".into(),
        Schema::MicroTime => "v1.MicroTime".into(),
        Schema::IntOrString => "intstr.IntOrString".into(),
        Schema::Quantity => "resource.Quantity".into(),
        Schema::Any => "interface {}".into(),
        Schema::Struct(inner) => inner.go_name.into(),
        Schema::Map(inner) => format!("map[string]{}", go_type_name(inner)),
        Schema::List(inner, _) => format!("[]{}", go_type_name(inner)),
    }
}

fn normalize_base64(text: &str) -> Result<String, String> {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    match engine.decode(text) {
        Ok(bytes) => Ok(engine.encode(bytes)),
        Err(err) => Err(match err {
            base64::DecodeError::InvalidByte(offset, _)
            | base64::DecodeError::InvalidLastSymbol(offset, _) => {
                format!("illegal base64 data at input byte {offset}")
            }
            _ => format!("illegal base64 data at input byte {}", text.len()),
        }),
    }
}

fn normalize_time(text: &str, micro: bool) -> Result<String, String> {
    match parse_time(text) {
        Some(at) if micro => Ok(format_micro_time(at)),
        Some(at) => Ok(format_time(at)),
        None => Err(format!(
            "parsing time {} as \"2006-01-02T15:04:05Z07:00\": cannot parse {} as \"2006\"",
            crate::status::go_quote(text),
            crate::status::go_quote(text)
        )),
    }
}

/// The schemas of `metav1` types that every kind embeds.
pub mod meta {
    use super::{FieldSchema as F, ListPatch, Schema, StructSchema};

    /// `metav1.OwnerReference`.
    pub static OWNER_REFERENCE: StructSchema = StructSchema {
        go_name: "v1.OwnerReference",
        package: "io.k8s.apimachinery.pkg.apis.meta.v1",
        fields: &[
            F::new("apiVersion", Schema::String).always().tag(5),
            F::new("kind", Schema::String).always().tag(1),
            F::new("name", Schema::String).always().tag(3),
            F::new("uid", Schema::String).always().tag(4),
            F::new("controller", Schema::Bool).pointer().tag(6),
            F::new("blockOwnerDeletion", Schema::Bool).pointer().tag(7),
        ],
    };

    /// `metav1.ManagedFieldsEntry`.
    pub static MANAGED_FIELDS_ENTRY: StructSchema = StructSchema {
        go_name: "v1.ManagedFieldsEntry",
        package: "io.k8s.apimachinery.pkg.apis.meta.v1",
        fields: &[
            F::new("manager", Schema::String).tag(1),
            F::new("operation", Schema::String).tag(2),
            F::new("apiVersion", Schema::String).tag(3),
            F::new("time", Schema::Time).pointer().tag(4),
            F::new("fieldsType", Schema::String).tag(6),
            F::new("fieldsV1", Schema::Any).pointer().tag(7),
            F::new("subresource", Schema::String).tag(8),
        ],
    };

    /// `metav1.ObjectMeta`.
    pub static OBJECT_META: StructSchema = StructSchema {
        go_name: "v1.ObjectMeta",
        package: "io.k8s.apimachinery.pkg.apis.meta.v1",
        fields: &[
            F::new("name", Schema::String).tag(1),
            F::new("generateName", Schema::String).tag(2),
            F::new("namespace", Schema::String).tag(3),
            F::new("selfLink", Schema::String).tag(4),
            F::new("uid", Schema::String).tag(5),
            F::new("resourceVersion", Schema::String).tag(6),
            F::new("generation", Schema::Int64).tag(7),
            F::new("creationTimestamp", Schema::Time).always().tag(8),
            F::new("deletionTimestamp", Schema::Time).pointer().tag(9),
            F::new("deletionGracePeriodSeconds", Schema::Int64)
                .pointer()
                .tag(10),
            F::new("labels", Schema::Map(&Schema::String)).tag(11),
            F::new("annotations", Schema::Map(&Schema::String)).tag(12),
            F::new(
                "ownerReferences",
                Schema::List(
                    &Schema::Struct(&OWNER_REFERENCE),
                    ListPatch::MergeByKey("uid"),
                ),
            )
            .tag(13),
            F::new(
                "finalizers",
                Schema::List(&Schema::String, ListPatch::MergeScalars),
            )
            .tag(14),
            F::new(
                "managedFields",
                Schema::List(&Schema::Struct(&MANAGED_FIELDS_ENTRY), ListPatch::Replace),
            )
            .tag(17),
        ],
    };

    /// The fields every top-level object starts with: TypeMeta and ObjectMeta.
    pub const OBJECT_FIELDS: [F; 3] = [
        F::new("kind", Schema::String),
        F::new("apiVersion", Schema::String),
        F::new("metadata", Schema::Struct(&OBJECT_META))
            .always()
            .tag(1),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static SAMPLE: StructSchema = StructSchema {
        go_name: "v1.Sample",
        package: "io.k8s.api.core.v1",
        fields: &[
            meta::OBJECT_FIELDS[0],
            meta::OBJECT_FIELDS[1],
            meta::OBJECT_FIELDS[2],
            FieldSchema::new("immutable", Schema::Bool).pointer(),
            FieldSchema::new("data", Schema::Map(&Schema::String)),
            FieldSchema::new("binaryData", Schema::Map(&Schema::Bytes)),
            FieldSchema::new("count", Schema::Int32),
            FieldSchema::new("required", Schema::String).always(),
        ],
    };

    fn check(input: Value, expected: Value, unknown: &[&str]) {
        let decoded = decode(input, &SAMPLE).unwrap();
        assert_eq!(Value::Object(decoded.object), expected);
        assert_eq!(decoded.unknown_fields, unknown);
    }

    #[test]
    fn orders_fields_and_applies_go_omission_rules() {
        check(
            json!({"data": {"a": "b"}, "metadata": {"name": "x", "labels": {}}, "kind": "Sample",
                   "immutable": false, "count": 0, "apiVersion": "v1"}),
            json!({"kind": "Sample", "apiVersion": "v1",
                   "metadata": {"name": "x", "creationTimestamp": null},
                   "immutable": false, "data": {"a": "b"}, "required": ""}),
            &[],
        );
    }

    #[test]
    fn drops_and_reports_unknown_fields() {
        check(
            json!({"metadata": {"name": "x", "bogus": 1}, "extra": true}),
            json!({"metadata": {"name": "x", "creationTimestamp": null}, "required": ""}),
            &["metadata.bogus", "extra"],
        );
    }

    static ITEM: StructSchema = StructSchema {
        go_name: "v1.Item",
        package: "io.example.v1",
        fields: &[FieldSchema::new("name", Schema::String)],
    };
    static ITEM_SCHEMA: Schema = Schema::Struct(&ITEM);
    static NESTED: StructSchema = StructSchema {
        go_name: "v1.Nested",
        package: "io.example.v1",
        fields: &[
            FieldSchema::new("items", Schema::List(&ITEM_SCHEMA, ListPatch::Replace)),
            FieldSchema::new("byName", Schema::Map(&ITEM_SCHEMA)),
        ],
    };

    #[test]
    fn unknown_fields_are_reported_with_indices_and_keys() {
        let decoded = decode(
            json!({"items": [{"name": "a"}, {"name": "b", "x": 1}],
                   "byName": {"k.1": {"y": 2}, "k2": {"name": "c"}}, "z": 3}),
            &NESTED,
        )
        .unwrap();
        assert_eq!(decoded.unknown_fields, ["items[1].x", "byName.k.1.y", "z"]);
        assert_eq!(
            Value::Object(decoded.object),
            json!({"items": [{"name": "a"}, {"name": "b"}], "byName": {"k.1": {}, "k2": {"name": "c"}}})
        );
    }

    #[test]
    fn type_errors_read_like_go() {
        let err = decode(json!({"data": {"a": 1}}), &SAMPLE).unwrap_err();
        assert_eq!(
            err,
            "json: cannot unmarshal number into Go struct field Sample.data of type string"
        );
        let err = decode(json!({"metadata": {"labels": []}}), &SAMPLE).unwrap_err();
        assert_eq!(
            err,
            "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type map[string]string"
        );
        let err = decode(json!({"count": 1.5}), &SAMPLE).unwrap_err();
        assert_eq!(
            err,
            "json: cannot unmarshal number 1.5 into Go struct field Sample.count of type int32"
        );
    }

    #[test]
    fn normalizes_bytes_and_times() {
        let decoded = decode(
            json!({"binaryData": {"k": "aGk="}, "metadata": {"creationTimestamp": "2026-01-01T10:00:00+02:00"}}),
            &SAMPLE,
        )
        .unwrap();
        assert_eq!(decoded.object["binaryData"], json!({"k": "aGk="}));
        assert_eq!(
            decoded.object["metadata"]["creationTimestamp"],
            json!("2026-01-01T08:00:00Z")
        );
        assert!(decode(json!({"binaryData": {"k": "!!"}}), &SAMPLE).is_err());
    }

    static QUOTA: StructSchema = StructSchema {
        go_name: "v1.QuotaSample",
        package: "io.k8s.api.core.v1",
        fields: &[
            FieldSchema::new("hard", Schema::Map(&Schema::Quantity)),
            FieldSchema::new("limit", Schema::Quantity).pointer(),
            FieldSchema::new("value", Schema::Quantity).always(),
        ],
    };

    #[test]
    fn quantities_keep_their_parsed_text_until_canonicalized() {
        let decoded = decode(
            json!({"hard": {"cpu": "1.5", "pods": " 10 ", "milli": 0.5}, "limit": "1000m"}),
            &QUOTA,
        )
        .unwrap();
        assert_eq!(
            Value::Object(decoded.object),
            json!({"hard": {"cpu": "1.5", "milli": "0.5", "pods": "10"},
                   "limit": "1000m", "value": "0"})
        );
        assert!(has_quantities(&QUOTA));
        assert!(!has_quantities(&SAMPLE));
    }

    #[test]
    fn quantities_are_written_back_canonical() {
        let mut decoded = decode(
            json!({"hard": {"cpu": "1.5", "memory": "1.5Gi", "pods": " 10 ", "kept": "01",
                            "milli": 0.5, "count": 1000, "gone": null},
                   "limit": "1000m"}),
            &QUOTA,
        )
        .unwrap();
        canonicalize_quantities(&mut decoded.object, &QUOTA);
        assert_eq!(
            Value::Object(decoded.object),
            json!({"hard": {"count": "1k", "cpu": "1500m", "gone": "0", "kept": "01",
                            "memory": "1536Mi", "milli": "500m", "pods": "10"},
                   "limit": "1", "value": "0"})
        );
    }

    #[test]
    fn bad_quantities_fail_with_upstream_messages() {
        let format = "quantities must match the regular expression \
                      '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
        for (body, message) in [
            (json!({"hard": {"cpu": "1 cpu"}}), format),
            (json!({"hard": {"cpu": ""}}), format),
            (json!({"hard": {"cpu": "1\n"}}), format),
            (json!({"hard": {"cpu": true}}), format),
            (json!({"limit": {}}), format),
            (json!({"value": [1]}), format),
            (
                json!({"hard": {"cpu": "1ki"}}),
                "unable to parse quantity's suffix",
            ),
            (
                json!({"limit": "e-10"}),
                "unable to parse numeric part of quantity",
            ),
        ] {
            assert_eq!(decode(body.clone(), &QUOTA).unwrap_err(), message, "{body}");
        }
    }
}
