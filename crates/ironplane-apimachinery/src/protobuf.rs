//! Reading Kubernetes protobuf bodies (`application/vnd.kubernetes.protobuf`): the `k8s\0`
//! envelope (`runtime.Unknown`) and a kind's message, decoded into JSON by walking the same
//! structural schema JSON bodies are decoded with (each field carries its protobuf number).
//! kubectl's typed commands (`kubectl create configmap`, `create secret`, ...) send these.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::meta::{format_micro_time, format_time};
use crate::quantity::{Quantity, QuantityError};
use crate::schema::{Schema, StructSchema};

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8] = b"k8s\x00";

/// Go's zero `time.Time` in Unix seconds.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// The deepest nesting accepted, so a hostile body cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// An envelope's type meta and payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// `apiVersion` of the payload.
    pub api_version: String,
    /// `kind` of the payload.
    pub kind: String,
    /// The encoded object.
    pub raw: &'a [u8],
}

/// Open the `k8s\0` + `runtime.Unknown` envelope.
pub fn decode_envelope(body: &[u8]) -> Result<Envelope<'_>, String> {
    let message = body.strip_prefix(MAGIC).ok_or_else(|| {
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
            .to_owned()
    })?;
    let mut envelope = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
    };
    for field in Fields::new(message) {
        let (number, value) = field?;
        match (number, value) {
            (1, WireValue::Bytes(type_meta)) => {
                for inner in Fields::new(type_meta) {
                    match inner? {
                        (1, WireValue::Bytes(text)) => envelope.api_version = utf8(text)?,
                        (2, WireValue::Bytes(text)) => envelope.kind = utf8(text)?,
                        _ => {}
                    }
                }
            }
            (2, WireValue::Bytes(raw)) => envelope.raw = raw,
            (4, WireValue::Bytes(content_type)) if !content_type.is_empty() => {
                return Err(format!(
                    "unsupported protobuf content type {:?}",
                    String::from_utf8_lossy(content_type)
                ));
            }
            _ => {}
        }
    }
    Ok(envelope)
}

/// Decode a kind's message into its JSON form (field names and values as the JSON encoding has
/// them), ready for the schema decoder.
pub fn decode_message(
    raw: &[u8],
    schema: &'static StructSchema,
) -> Result<Map<String, Value>, String> {
    decode_struct(raw, schema, 0)
}

fn decode_struct(
    raw: &[u8],
    schema: &'static StructSchema,
    depth: usize,
) -> Result<Map<String, Value>, String> {
    if depth > MAX_DEPTH {
        return Err("protobuf message nested too deeply".into());
    }
    let mut out = Map::new();
    for field in Fields::new(raw) {
        let (number, value) = field?;
        let Some(field) = schema
            .fields
            .iter()
            .find(|f| f.tag == number && number != 0)
        else {
            continue;
        };
        match &field.schema {
            Schema::List(inner, _) => {
                let entry = out
                    .entry(field.name)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = entry {
                    decode_repeated(value, inner, depth, items)?;
                }
            }
            Schema::Map(inner) => {
                let WireValue::Bytes(entry) = value else {
                    return Err(format!("field {} is not a map entry", field.name));
                };
                let (key, item) = decode_map_entry(entry, inner, depth)?;
                let map = out
                    .entry(field.name)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = map {
                    map.insert(key, item);
                }
            }
            other => {
                let decoded = decode_value(value, other, depth)?;
                out.insert(field.name.to_owned(), decoded);
            }
        }
    }
    Ok(out)
}

fn decode_repeated(
    value: WireValue<'_>,
    inner: &Schema,
    depth: usize,
    items: &mut Vec<Value>,
) -> Result<(), String> {
    match (value, inner) {
        // Packed scalars: a run of varints in one length-delimited field.
        (WireValue::Bytes(run), Schema::Int32 | Schema::Int64 | Schema::Bool) => {
            let mut rest = run;
            while !rest.is_empty() {
                let (number, used) = read_varint(rest)?;
                rest = &rest[used..];
                items.push(decode_value(WireValue::Varint(number), inner, depth)?);
            }
            Ok(())
        }
        (value, inner) => {
            items.push(decode_value(value, inner, depth)?);
            Ok(())
        }
    }
}

fn decode_map_entry(entry: &[u8], inner: &Schema, depth: usize) -> Result<(String, Value), String> {
    let mut key = String::new();
    let mut item = None;
    for field in Fields::new(entry) {
        match field? {
            (1, WireValue::Bytes(text)) => key = utf8(text)?,
            (2, value) => item = Some(decode_value(value, inner, depth)?),
            _ => {}
        }
    }
    let item = match item {
        Some(item) => item,
        None => match inner {
            Schema::String | Schema::Bytes => Value::String(String::new()),
            _ => Value::Null,
        },
    };
    Ok((key, item))
}

fn decode_value(value: WireValue<'_>, schema: &Schema, depth: usize) -> Result<Value, String> {
    Ok(match (schema, value) {
        (Schema::String, WireValue::Bytes(text)) => Value::String(utf8(text)?),
        (Schema::Bytes, WireValue::Bytes(bytes)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        (Schema::Int32 | Schema::Int64, WireValue::Varint(number)) => {
            Value::Number(Number::from(number as i64))
        }
        (Schema::Float64, WireValue::Fixed64(bits)) => Number::from_f64(f64::from_bits(bits))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        (Schema::Bool, WireValue::Varint(number)) => Value::Bool(number != 0),
        (Schema::Time | Schema::MicroTime, WireValue::Bytes(message)) => {
            let (mut seconds, mut nanos) = (0i64, 0i64);
            for field in Fields::new(message) {
                match field? {
                    (1, WireValue::Varint(value)) => seconds = value as i64,
                    (2, WireValue::Varint(value)) => nanos = value as i64,
                    _ => {}
                }
            }
            // Go's zero time travels as 0001-01-01T00:00:00Z and reads back as null.
            if seconds == GO_ZERO_TIME_SECONDS && nanos == 0 {
                return Ok(Value::Null);
            }
            let at = jiff::Timestamp::new(seconds, nanos as i32)
                .map_err(|err| format!("invalid timestamp: {err}"))?;
            Value::String(if matches!(schema, Schema::MicroTime) {
                format_micro_time(at)
            } else {
                format_time(at)
            })
        }
        (Schema::IntOrString, WireValue::Bytes(message)) => {
            let (mut is_string, mut number, mut text) = (false, 0i64, String::new());
            for field in Fields::new(message) {
                match field? {
                    (1, WireValue::Varint(kind)) => is_string = kind == 1,
                    (2, WireValue::Varint(value)) => number = value as i32 as i64,
                    (3, WireValue::Bytes(value)) => text = utf8(value)?,
                    _ => {}
                }
            }
            if is_string {
                Value::String(text)
            } else {
                Value::Number(number.into())
            }
        }
        (Schema::Quantity, WireValue::Bytes(message)) => {
            // Upstream parses each field 1 as it meets it (no trimming; bytes that are not
            // UTF-8 cannot match the format) and keeps the last; none at all is zero. The text
            // stays as sent until validation, as on the JSON path.
            let mut text = "0";
            for field in Fields::new(message) {
                if let (1, WireValue::Bytes(value)) = field? {
                    let parsed = std::str::from_utf8(value).map_err(|_| QuantityError::FormatWrong);
                    text = parsed
                        .and_then(|value| Quantity::parse(value).map(|_| value))
                        .map_err(|err| err.to_string())?;
                }
            }
            Value::String(text.to_owned())
        }
        (Schema::Any, WireValue::Bytes(message)) => {
            // RawExtension and FieldsV1 carry JSON in field 1.
            let mut raw: &[u8] = &[];
            for field in Fields::new(message) {
                if let (1, WireValue::Bytes(value)) = field? {
                    raw = value;
                }
            }
            if raw.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(raw).map_err(|err| format!("embedded JSON: {err}"))?
            }
        }
        (Schema::Struct(inner), WireValue::Bytes(message)) => {
            Value::Object(decode_struct(message, inner, depth + 1)?)
        }
        (schema, _) => {
            return Err(format!(
                "protobuf wire type does not match the field's type {}",
                crate::schema::go_type_name(schema)
            ));
        }
    })
}

fn utf8(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "invalid UTF-8 in a protobuf string".to_owned())
}

/// One field value on the wire.
#[derive(Debug, Clone, Copy)]
enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    /// Read so that it can be skipped; no Kubernetes field the schemas describe uses it.
    Fixed32,
}

/// Iterates over the fields of a message.
struct Fields<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(message: &'a [u8]) -> Self {
        Fields {
            rest: message,
            failed: false,
        }
    }

    fn next_field(&mut self) -> Result<(u32, WireValue<'a>), String> {
        let (key, used) = read_varint(self.rest)?;
        self.rest = &self.rest[used..];
        let number = u32::try_from(key >> 3).map_err(|_| "protobuf field number out of range")?;
        let value = match key & 7 {
            0 => {
                let (value, used) = read_varint(self.rest)?;
                self.rest = &self.rest[used..];
                WireValue::Varint(value)
            }
            1 => {
                let bytes: [u8; 8] = self
                    .rest
                    .get(..8)
                    .and_then(|bytes| bytes.try_into().ok())
                    .ok_or("truncated protobuf fixed64")?;
                self.rest = &self.rest[8..];
                WireValue::Fixed64(u64::from_le_bytes(bytes))
            }
            2 => {
                let (length, used) = read_varint(self.rest)?;
                self.rest = &self.rest[used..];
                let length = usize::try_from(length).map_err(|_| "protobuf length out of range")?;
                let bytes = self.rest.get(..length).ok_or("truncated protobuf field")?;
                self.rest = &self.rest[length..];
                WireValue::Bytes(bytes)
            }
            5 => {
                let bytes: [u8; 4] = self
                    .rest
                    .get(..4)
                    .and_then(|bytes| bytes.try_into().ok())
                    .ok_or("truncated protobuf fixed32")?;
                self.rest = &self.rest[4..];
                let _ = bytes;
                WireValue::Fixed32
            }
            other => return Err(format!("unsupported protobuf wire type {other}")),
        };
        Ok((number, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, WireValue<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let field = self.next_field();
        self.failed = field.is_err();
        Some(field)
    }
}

fn read_varint(bytes: &[u8]) -> Result<(u64, usize), String> {
    let mut value = 0u64;
    for (index, byte) in bytes.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Ok((value, index + 1));
        }
    }
    Err("truncated or overlong protobuf varint".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{FieldSchema as F, meta};
    use serde_json::json;

    static SAMPLE: StructSchema = StructSchema {
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

    fn field(number: u32, wire: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![((number << 3) | wire as u32) as u8];
        if wire == 2 {
            out.push(payload.len() as u8);
        }
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn decodes_a_configmap_envelope() {
        let metadata = [field(1, 2, b"foo"), field(3, 2, b"default")].concat();
        let data_entry = [field(1, 2, b"a"), field(2, 2, b"b")].concat();
        let binary_entry = [field(1, 2, b"k"), field(2, 2, b"hi")].concat();
        let message = [
            field(1, 2, &metadata),
            field(2, 2, &data_entry),
            field(3, 2, &binary_entry),
            field(4, 0, &[1]),
        ]
        .concat();
        let type_meta = [field(1, 2, b"v1"), field(2, 2, b"ConfigMap")].concat();
        let unknown = [field(1, 2, &type_meta), field(2, 2, &message)].concat();
        let body = [MAGIC, &unknown].concat();
        let envelope = decode_envelope(&body).unwrap();
        assert_eq!(envelope.api_version, "v1");
        assert_eq!(envelope.kind, "ConfigMap");
        let decoded = decode_message(envelope.raw, &SAMPLE).unwrap();
        assert_eq!(
            Value::Object(decoded),
            json!({"metadata": {"name": "foo", "namespace": "default"}, "data": {"a": "b"},
                   "binaryData": {"k": "aGk="}, "immutable": true})
        );
    }

    static QUOTA: StructSchema = StructSchema {
        go_name: "v1.QuotaSample",
        package: "io.k8s.api.core.v1",
        fields: &[
            F::new("hard", Schema::Map(&Schema::Quantity)).tag(1),
            F::new("limit", Schema::Quantity).pointer().tag(2),
        ],
    };

    fn quantity_entry(key: &[u8], text: &[u8]) -> Vec<u8> {
        let value = field(1, 2, text);
        field(1, 2, &[field(1, 2, key), field(2, 2, &value)].concat())
    }

    #[test]
    fn quantities_are_parsed_and_kept_as_sent() {
        let message = [
            quantity_entry(b"cpu", b"1.5"),
            quantity_entry(b"kept", b"01"),
            field(2, 2, &[]),
        ]
        .concat();
        assert_eq!(
            Value::Object(decode_message(&message, &QUOTA).unwrap()),
            json!({"hard": {"cpu": "1.5", "kept": "01"}, "limit": "0"})
        );
        let format = "quantities must match the regular expression \
                      '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
        // No trimming on this path, unlike JSON.
        for text in [&b" 1"[..], b"", b"1\xff"] {
            let message = quantity_entry(b"cpu", text);
            assert_eq!(decode_message(&message, &QUOTA).unwrap_err(), format);
        }
        let message = quantity_entry(b"cpu", b"1ki");
        assert_eq!(
            decode_message(&message, &QUOTA).unwrap_err(),
            "unable to parse quantity's suffix"
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode_envelope(b"{}").is_err());
        assert!(decode_envelope(b"k8s\x00\x0a\xff").is_err());
        let truncated = [MAGIC, &[0x12, 0x05, 0x01][..]].concat();
        assert!(decode_envelope(&truncated).is_err());
    }
}
