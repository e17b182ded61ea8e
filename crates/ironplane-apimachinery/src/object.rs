//! The one object representation Ironplane uses for every kind, built-in or custom: type meta and
//! typed `ObjectMeta`, plus the rest of the object as JSON in schema order.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::meta::ObjectMeta;

/// An API object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Object {
    /// `apiVersion`, such as `v1`.
    pub api_version: String,
    /// `kind`, such as `ConfigMap`.
    pub kind: String,
    /// `metadata`.
    pub metadata: ObjectMeta,
    /// Every other top-level field (`data`, `spec`, `status`...), in the order they serialize.
    pub fields: Map<String, Value>,
}

impl Object {
    /// Split a decoded JSON object into type meta, metadata and the rest. The metadata must
    /// already be schema-checked; anything `ObjectMeta` cannot hold is an error.
    pub fn from_map(mut map: Map<String, Value>) -> Result<Self, serde_json::Error> {
        let api_version = take_string(&mut map, "apiVersion");
        let kind = take_string(&mut map, "kind");
        let metadata = match map.shift_remove("metadata") {
            Some(Value::Null) | None => ObjectMeta::default(),
            Some(value) => serde_json::from_value(value)?,
        };
        Ok(Object {
            api_version,
            kind,
            metadata,
            fields: map,
        })
    }

    /// Parse stored JSON bytes (written by [`Object::to_json`]) back into an object.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let map: Map<String, Value> = serde_json::from_slice(bytes)?;
        Self::from_map(map)
    }

    /// Encode as compact JSON the way upstream's encoder writes it: the same bytes as the
    /// `Serialize` impl below through [`crate::codec::to_json`], with the fields after the
    /// metadata (where an object's bulk is) written by [`crate::gojson`].
    pub fn to_json(&self) -> Vec<u8> {
        use crate::gojson::{write_str, write_value};
        let mut out = Vec::with_capacity(256);
        out.push(b'{');
        if !self.kind.is_empty() {
            out.extend_from_slice(b"\"kind\":");
            write_str(&mut out, &self.kind);
            out.push(b',');
        }
        if !self.api_version.is_empty() {
            out.extend_from_slice(b"\"apiVersion\":");
            write_str(&mut out, &self.api_version);
            out.push(b',');
        }
        out.extend_from_slice(b"\"metadata\":");
        crate::codec::write_json(&mut out, &self.metadata);
        for (key, value) in &self.fields {
            out.push(b',');
            write_str(&mut out, key);
            out.push(b':');
            write_value(&mut out, value);
        }
        out.push(b'}');
        out
    }

    /// The object as one JSON value.
    pub fn to_value(&self) -> Value {
        let mut map = Map::with_capacity(self.fields.len() + 3);
        map.insert("kind".into(), Value::String(self.kind.clone()));
        map.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        map.insert(
            "metadata".into(),
            serde_json::to_value(&self.metadata).unwrap_or(Value::Null),
        );
        for (key, value) in &self.fields {
            map.insert(key.clone(), value.clone());
        }
        Value::Object(map)
    }

    /// A top-level field.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// A string at a dotted path under the top level, such as `status.phase`.
    pub fn string_at(&self, path: &[&str]) -> Option<&str> {
        let (first, rest) = path.split_first()?;
        let mut value = self.fields.get(*first)?;
        for segment in rest {
            value = value.get(segment)?;
        }
        value.as_str()
    }

    /// The namespace/name key of this object (`name` alone for cluster-scoped objects).
    pub fn namespaced_name(&self) -> String {
        if self.metadata.namespace.is_empty() {
            self.metadata.name.clone()
        } else {
            format!("{}/{}", self.metadata.namespace, self.metadata.name)
        }
    }
}

/// Insert `"resourceVersion":"<revision>"` into a stored encoding, where the encoder would have
/// written it (right after `metadata.uid`), without decoding the object. Stored objects are our
/// own encoding without a resourceVersion, and `"uid":"` can only occur as the metadata field: the
/// fields before it are `kind`, `apiVersion` and metadata strings, inside which every quote is
/// escaped. `None` when the encoding does not have that shape (the caller then decodes).
pub fn splice_resource_version(stored: &[u8], revision: i64) -> Option<Vec<u8>> {
    const METADATA: &[u8] = b"\"metadata\":{";
    const UID: &[u8] = b"\"uid\":\"";
    let find = |haystack: &[u8], needle: &[u8]| {
        haystack
            .windows(needle.len())
            .position(|window| window == needle)
    };
    let metadata = find(stored, METADATA)? + METADATA.len();
    let uid = metadata + find(&stored[metadata..], UID)?;
    // Only the plain string fields (name, generateName, namespace) may come before the uid: a
    // brace or bracket means the match is not metadata's own uid (an object stored without one).
    if stored[metadata..uid]
        .iter()
        .any(|byte| matches!(byte, b'{' | b'}' | b'[' | b']'))
    {
        return None;
    }
    let start = uid + UID.len();
    let end = start + stored[start..].iter().position(|byte| *byte == b'"')?;
    if stored[start..end].contains(&b'\\') {
        return None;
    }
    let insert = format!(",\"resourceVersion\":\"{revision}\"");
    let mut out = Vec::with_capacity(stored.len() + insert.len());
    out.extend_from_slice(&stored[..=end]);
    out.extend_from_slice(insert.as_bytes());
    out.extend_from_slice(&stored[end + 1..]);
    Some(out)
}

/// Only the labels of an encoded object, read without building the rest of it.
pub fn labels_of(json: &[u8]) -> Result<crate::labels::LabelSet, serde_json::Error> {
    use serde::Deserialize;
    #[derive(serde::Deserialize, Default)]
    struct Metadata {
        #[serde(default)]
        labels: crate::labels::LabelSet,
    }
    #[derive(serde::Deserialize)]
    struct Labels {
        #[serde(default)]
        metadata: Metadata,
    }
    // Our encoder writes `metadata` right after the type meta: read that one value and stop,
    // instead of scanning the object's data too.
    const METADATA: &[u8] = b"\"metadata\":{";
    if let Some(at) = json
        .windows(METADATA.len())
        .position(|window| window == METADATA)
    {
        let mut deserializer =
            serde_json::Deserializer::from_slice(&json[at + METADATA.len() - 1..]);
        if let Ok(metadata) = Metadata::deserialize(&mut deserializer) {
            return Ok(metadata.labels);
        }
    }
    Ok(serde_json::from_slice::<Labels>(json)?.metadata.labels)
}

fn take_string(map: &mut Map<String, Value>, key: &str) -> String {
    match map.shift_remove(key) {
        Some(Value::String(text)) => text,
        _ => String::new(),
    }
}

/// The reference encoding: [`Object::to_json`] writes the same bytes faster.
impl Serialize for Object {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len() + 3))?;
        if !self.kind.is_empty() {
            map.serialize_entry("kind", &self.kind)?;
        }
        if !self.api_version.is_empty() {
            map.serialize_entry("apiVersion", &self.api_version)?;
        }
        map.serialize_entry("metadata", &self.metadata)?;
        for (key, value) in &self.fields {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_keeps_the_order_fields_were_written_in() {
        let stored = br#"{"kind":"Event","apiVersion":"v1","metadata":{"name":"e","creationTimestamp":null},"involvedObject":{},"reason":"r","message":"m","source":{},"type":"Normal"}"#;
        let object = Object::from_json(stored).unwrap();
        let keys: Vec<&str> = object.fields.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["involvedObject", "reason", "message", "source", "type"]
        );
        assert_eq!(object.to_json(), stored);
    }

    #[test]
    fn splices_resource_versions_like_the_encoder_writes_them() {
        let mut object = Object::from_json(
            br#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","namespace":"d","uid":"0b5a1c7e-1111-4222-8333-944455556666","creationTimestamp":"2026-01-01T00:00:00Z","labels":{"uid":"no"}},"data":{"\"uid\":\"":"v"}}"#,
        )
        .unwrap();
        let stored = object.to_json();
        object.metadata.resource_version = "42".into();
        assert_eq!(
            splice_resource_version(&stored, 42).unwrap(),
            object.to_json()
        );
        assert!(splice_resource_version(br#"{"kind":"X","metadata":{"name":"a"}}"#, 1).is_none());
        assert!(
            splice_resource_version(
                br#"{"kind":"X","metadata":{"name":"a","labels":{"a":"b"}},"data":{"uid":"u"}}"#,
                1
            )
            .is_none()
        );
        assert_eq!(
            crate::labels::Labels::get(&labels_of(&stored).unwrap(), "uid"),
            Some("no")
        );
    }

    #[test]
    fn the_fast_encoding_is_the_serializers() {
        let objects = [
            br#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","namespace":"d","labels":{"a<b":"c&d"}},"data":{"k":"v\u2028<w>","e":""},"binaryData":{"b":"AAE="}}"#.as_slice(),
            br#"{"metadata":{"name":"no-type-meta"},"spec":{"n":[1,-2,3.25,null,true,{"x":[]}]}}"#,
            br#"{"kind":"X","metadata":{}}"#,
        ];
        for json in objects {
            let object = Object::from_json(json).unwrap();
            assert_eq!(object.to_json(), crate::codec::to_json(&object));
        }
    }

    #[test]
    fn round_trips_in_upstream_order() {
        let json = br#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","namespace":"d","creationTimestamp":"2026-01-01T00:00:00Z"},"data":{"a":"b"}}"#;
        let object = Object::from_json(json).unwrap();
        assert_eq!(object.metadata.name, "x");
        assert_eq!(object.to_json(), json.to_vec());
        assert_eq!(object.string_at(&["data", "a"]), Some("b"));
        assert_eq!(object.namespaced_name(), "d/x");
    }
}
