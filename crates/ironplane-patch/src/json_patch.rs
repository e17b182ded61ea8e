//! JSON patch (RFC 6902), as upstream applies `application/json-patch+json` with
//! `gopkg.in/evanphx/json-patch.v4`, whose behaviour (and error texts) differ from the RFC in
//! places clients can observe:
//!
//! - `replace` of a missing object member adds it; `replace` of the whole document (`""`) with
//!   anything but an object or array does nothing;
//! - array indices may be negative (counted from the end) and may carry a sign (`+1`);
//! - a path's first segment is not checked to be empty (`a/b` means `/b`);
//! - `copy` from a missing object member copies `null`, and `test` of a missing member passes
//!   when the value is `null`;
//! - `copy` operations may add at most [`MAX_JSON_PATCH_COPY_BYTES`] in total.
//!
//! Every failure of an operation is a 422 whose text (kept in [`PatchError::Unprocessable`])
//! upstream does not send to the client.

use serde_json::Value;

use crate::json::{self, Step};
use crate::{MAX_DEPTH, MAX_JSON_PATCH_COPY_BYTES, MAX_JSON_PATCH_OPERATIONS, PatchError};

/// Apply a JSON patch (a JSON array of operations) to `document`.
///
/// Errors: a body that does not decode as a list of operations is a 400 (`error decoding
/// patch: …`); more than [`MAX_JSON_PATCH_OPERATIONS`] operations is a 413; an operation that
/// does not apply is a 422. A body of `null` or `[]` changes nothing.
pub fn apply_json_patch(document: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let (operations, _) = decode(patch)?;
    if operations.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_JSON_PATCH_OPERATIONS,
            got: operations.len(),
        });
    }
    let mut doc = document.clone();
    let mut copied = 0;
    for operation in &operations {
        operation
            .apply(&mut doc, &mut copied)
            .map_err(PatchError::Unprocessable)?;
    }
    Ok(doc)
}

/// One operation as upstream reads it: every field optional, `value` absent or present.
#[derive(Debug, Default)]
pub(crate) struct Operation {
    op: Option<String>,
    path: Option<String>,
    from: Option<String>,
    value: Option<Value>,
}

/// Decode the body the way upstream's strict decoding into `[]jsonPatchOp` does, with its
/// strict-decoding errors.
pub(crate) fn decode(patch: &[u8]) -> Result<(Vec<Operation>, Vec<String>), PatchError> {
    let bad = |err: String| PatchError::BadRequest(format!("error decoding patch: {err}"));
    let parsed = json::parse(patch, true).map_err(bad)?;
    let strict_errors = parsed
        .strict_errors
        .iter()
        .map(|err| format!("json patch {err}"))
        .collect();
    let items = match parsed.value {
        Value::Null => return Ok((Vec::new(), strict_errors)),
        Value::Array(items) => items,
        other => {
            return Err(bad(format!(
                "json: cannot unmarshal {} into Go value of type []handlers.jsonPatchOp",
                json::json_kind(&other)
            )));
        }
    };
    let mut operations = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let fields = match item {
            Value::Null => {
                operations.push(Operation::default());
                continue;
            }
            Value::Object(fields) => fields,
            other => {
                return Err(bad(format!(
                    "json: cannot unmarshal {} into Go value of type handlers.jsonPatchOp",
                    json::json_kind(&other)
                )));
            }
        };
        let mut operation = Operation::default();
        for (name, value) in fields {
            let slot = match name.as_str() {
                "op" => &mut operation.op,
                "path" => &mut operation.path,
                "from" => &mut operation.from,
                "value" => {
                    if let Some((path, text)) = &parsed.overflow
                        && path.starts_with(&[Step::Index(index), Step::Key("value".into())])
                    {
                        return Err(bad(format!(
                            "json: cannot unmarshal number {text} into Go struct field jsonPatchOp.value of type float64"
                        )));
                    }
                    operation.value = Some(value);
                    continue;
                }
                // Unknown fields are strict-decoding errors, reported separately.
                _ => continue,
            };
            *slot = match value {
                Value::String(text) => Some(text),
                Value::Null => None,
                other => {
                    return Err(bad(format!(
                        "json: cannot unmarshal {} into Go struct field jsonPatchOp.{name} of type string",
                        json::json_kind(&other)
                    )));
                }
            };
        }
        operations.push(operation);
    }
    Ok((operations, strict_errors))
}

impl Operation {
    fn apply(&self, doc: &mut Value, copied: &mut usize) -> Result<(), String> {
        match self.op.as_deref() {
            Some("add") => self.add(doc),
            Some("remove") => self.remove(doc),
            Some("replace") => self.replace(doc),
            Some("move") => self.move_value(doc),
            Some("test") => self.test(doc),
            Some("copy") => self.copy(doc, copied),
            Some(other) => Err(format!("Unexpected kind: {other}")),
            None => Err("Unexpected kind: unknown".into()),
        }
    }

    fn value(&self) -> Value {
        self.value.clone().unwrap_or(Value::Null)
    }

    fn add(&self, doc: &mut Value) -> Result<(), String> {
        let path = self
            .path
            .as_deref()
            .ok_or("add operation failed to decode path: missing value")?;
        let value = self.value();
        let (container, key, level) = locate(doc, path).ok_or_else(|| {
            format!("add operation does not apply: doc is missing path: \"{path}\": missing value")
        })?;
        check_depth(level, &value)?;
        add(container, &key, value).map_err(|err| format!("error in add for path: '{path}': {err}"))
    }

    fn remove(&self, doc: &mut Value) -> Result<(), String> {
        let path = self
            .path
            .as_deref()
            .ok_or("remove operation failed to decode path: missing value")?;
        let (container, key, _) = locate(doc, path).ok_or_else(|| {
            format!(
                "remove operation does not apply: doc is missing path: \"{path}\": missing value"
            )
        })?;
        remove(container, &key)
            .map(drop)
            .map_err(|err| format!("error in remove for path: '{path}': {err}"))
    }

    fn replace(&self, doc: &mut Value) -> Result<(), String> {
        let path = self.path.as_deref().ok_or(
            "replace operation failed to decode path: operation missing path field: missing value",
        )?;
        if path.is_empty() {
            // Only an object or array replaces the whole document; anything else is ignored.
            if let Some(value @ (Value::Object(_) | Value::Array(_))) = &self.value {
                check_depth(0, value)?;
                *doc = value.clone();
            }
            return Ok(());
        }
        let (container, key, level) = locate(doc, path).ok_or_else(|| {
            format!("replace operation does not apply: doc is missing path: {path}: missing value")
        })?;
        if get(container, &key).is_err() {
            return Err(format!(
                "replace operation does not apply: doc is missing key: {path}: missing value"
            ));
        }
        let value = self.value();
        check_depth(level, &value)?;
        set(container, &key, value)
            .map_err(|err| format!("error in remove for path: '{path}': {err}"))
    }

    fn move_value(&self, doc: &mut Value) -> Result<(), String> {
        let from = self.from.as_deref().ok_or(
            "move operation failed to decode from: operation, missing from field: missing value",
        )?;
        let (container, key, _) = locate(doc, from).ok_or_else(|| {
            format!(
                "move operation does not apply: doc is missing from path: {from}: missing value"
            )
        })?;
        get(container, &key).map_err(|err| format!("error in move for path: '{key}': {err}"))?;
        let value = remove(container, &key)
            .map_err(|err| format!("error in move for path: '{key}': {err}"))?;
        let path = self.path.as_deref().ok_or(
            "move operation failed to decode path: operation missing path field: missing value",
        )?;
        let (container, key, level) = locate(doc, path).ok_or_else(|| {
            format!(
                "move operation does not apply: doc is missing destination path: {path}: missing value"
            )
        })?;
        check_depth(level, &value)?;
        add(container, &key, value)
            .map_err(|err| format!("error in move for path: '{path}': {err}"))
    }

    fn test(&self, doc: &mut Value) -> Result<(), String> {
        let path = self.path.as_deref().ok_or(
            "test operation failed to decode path: operation missing path field: missing value",
        )?;
        let failed = || format!("testing value {path} failed: test failed");
        if path.is_empty() {
            return match &self.value {
                Some(value) if value == doc => Ok(()),
                _ => Err(failed()),
            };
        }
        let (container, key, _) = locate(doc, path).ok_or_else(|| {
            format!("test operation does not apply: is missing path: {path}: missing value")
        })?;
        let current = get(container, &key)
            .map_err(|err| format!("error in test for path: '{path}': {err}"))?;
        match (current, &self.value) {
            // A missing or null member matches only null.
            (None | Some(Value::Null), None | Some(Value::Null)) => Ok(()),
            (Some(current), Some(value)) if current == value => Ok(()),
            _ => Err(failed()),
        }
    }

    fn copy(&self, doc: &mut Value, copied: &mut usize) -> Result<(), String> {
        let from = self.from.as_deref().ok_or(
            "copy operation failed to decode from: operation, missing from field: missing value",
        )?;
        let (container, key, _) = locate(doc, from).ok_or_else(|| {
            format!(
                "copy operation does not apply: doc is missing from path: {from}: missing value"
            )
        })?;
        let value = get(container, &key)
            .map_err(|err| format!("error in copy for from: '{from}': {err}"))?
            .cloned()
            .unwrap_or(Value::Null);
        let path = self
            .path
            .as_deref()
            .ok_or("copy operation failed to decode path: missing value")?;
        let (container, key, level) = locate(doc, path).ok_or_else(|| {
            format!(
                "copy operation does not apply: doc is missing destination path: {path}: missing value"
            )
        })?;
        if !value.is_null() {
            *copied += json::go_encoded_len(&value);
        }
        if *copied > MAX_JSON_PATCH_COPY_BYTES {
            return Err(format!(
                "Unable to complete the copy, the accumulated size increase of copy is {copied}, exceeding the limit {MAX_JSON_PATCH_COPY_BYTES}"
            ));
        }
        check_depth(level, &value)?;
        add(container, &key, value)
            .map_err(|err| format!("error while adding value during copy: {err}"))
    }
}

/// Find the object or array that holds the last segment of `path`, with that segment
/// (unescaped) and how deep the container is nested (the document itself is level 1).
fn locate<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String, usize)> {
    let segments: Vec<&str> = path.split('/').collect();
    let (last, init) = segments.split_last()?;
    // The first segment is whatever precedes the first '/', and is not looked at.
    let parents = init.get(1..)?;
    let mut current = doc;
    if !is_container(current) {
        return None;
    }
    for segment in parents {
        let segment = unescape(segment);
        let next = match current {
            Value::Object(map) => map.get_mut(&segment)?,
            Value::Array(items) => {
                let index = array_index(items.len(), &segment).ok()?;
                items.get_mut(index)?
            }
            _ => return None,
        };
        if !is_container(next) {
            return None;
        }
        current = next;
    }
    Some((current, unescape(last), init.len()))
}

fn is_container(value: &Value) -> bool {
    matches!(value, Value::Object(_) | Value::Array(_))
}

/// RFC 6901: `~1` is `/`, then `~0` is `~`.
fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

fn check_depth(level: usize, value: &Value) -> Result<(), String> {
    if level + json::depth(value) > MAX_DEPTH {
        return Err(format!(
            "the patched object would be nested more than {MAX_DEPTH} levels deep"
        ));
    }
    Ok(())
}

/// Go's `strconv.Atoi`, with its error text.
fn atoi(text: &str) -> Result<i64, String> {
    text.parse::<i64>().map_err(|err| {
        let why = match err.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!(
            "strconv.Atoi: parsing {}: {why}",
            ironplane_apimachinery::field::go_quote(text)
        )
    })
}

fn invalid_index(index: i64) -> String {
    format!("Unable to access invalid index: {index}: invalid index referenced")
}

/// An existing element's index (negative counts from the end).
fn array_index(len: usize, key: &str) -> Result<usize, String> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let mut index = atoi(key)?;
    if index < 0 {
        if index < -len {
            return Err(invalid_index(index));
        }
        index += len;
    }
    if index >= len {
        return Err(invalid_index(index));
    }
    usize::try_from(index).map_err(|_| invalid_index(index))
}

/// The member or element at `key`: `None` for a missing object member; an error for a bad
/// array index.
fn get<'a>(container: &'a Value, key: &str) -> Result<Option<&'a Value>, String> {
    match container {
        Value::Object(map) => Ok(map.get(key)),
        Value::Array(items) => Ok(items.get(array_index(items.len(), key)?)),
        _ => Ok(None),
    }
}

/// Set an object member or replace an existing array element.
fn set(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = array_index(items.len(), key)?;
            if let Some(slot) = items.get_mut(index) {
                *slot = value;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Set an object member, or insert into an array (`-` appends; an index may be the length).
fn add(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
            Ok(())
        }
        Value::Array(items) => {
            if key == "-" {
                items.push(value);
                return Ok(());
            }
            let size = i64::try_from(items.len()).unwrap_or(i64::MAX) + 1;
            let mut index = atoi(key)
                .map_err(|err| format!("value was not a proper array index: '{key}': {err}"))?;
            if index >= size {
                return Err(invalid_index(index));
            }
            if index < 0 {
                if index < -size {
                    return Err(invalid_index(index));
                }
                index += size;
            }
            let index = usize::try_from(index).map_err(|_| invalid_index(index))?;
            items.insert(index.min(items.len()), value);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Remove an object member or an array element, returning it.
fn remove(container: &mut Value, key: &str) -> Result<Value, String> {
    match container {
        Value::Object(map) => map
            .shift_remove(key)
            .ok_or_else(|| format!("Unable to remove nonexistent key: {key}: missing value")),
        Value::Array(items) => {
            let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
            let mut index = atoi(key)?;
            if index >= len {
                return Err(invalid_index(index));
            }
            if index < 0 {
                if index < -len {
                    return Err(invalid_index(index));
                }
                index += len;
            }
            let index = usize::try_from(index).map_err(|_| invalid_index(index))?;
            if index < items.len() {
                Ok(items.remove(index))
            } else {
                Err(invalid_index(len))
            }
        }
        _ => Ok(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"a/b": "1", "m~n": "2"}, "finalizers": ["x", "y"]},
            "data": {"k": "v", "n": null},
            "list": [{"name": "a"}, {"name": "b"}, {"name": "c"}]
        })
    }

    /// Apply `patch` to `doc()`: `Ok` lists (pointer, expected value) pairs to check in the
    /// result; `Err` is the expected failure.
    fn check(patch: &str, expected: Result<&[(&str, Value)], PatchError>) {
        let result = apply_json_patch(&doc(), patch.as_bytes());
        match (result, expected) {
            (Ok(patched), Ok(checks)) => {
                for (pointer, value) in checks {
                    assert_eq!(
                        patched.pointer(pointer),
                        if value == &json!("<absent>") {
                            None
                        } else {
                            Some(value)
                        },
                        "patch {patch}, pointer {pointer}, result {patched}"
                    );
                }
            }
            (result, Err(err)) => assert_eq!(result, Err(err), "patch {patch}"),
            (Err(err), Ok(_)) => panic!("patch {patch} failed: {err:?}"),
        }
    }

    fn unprocessable(message: &str) -> Result<&'static [(&'static str, Value)], PatchError> {
        Err(PatchError::Unprocessable(message.into()))
    }

    fn bad(message: &str) -> Result<&'static [(&'static str, Value)], PatchError> {
        Err(PatchError::BadRequest(message.into()))
    }

    #[test]
    fn applies_operations() {
        let absent = json!("<absent>");
        let cases: Vec<(&str, Vec<(&str, Value)>)> = vec![
            (
                r#"[{"op":"add","path":"/data/new","value":"x"}]"#,
                vec![("/data/new", json!("x"))],
            ),
            (
                r#"[{"op":"add","path":"/data/k","value":{"o":1}}]"#,
                vec![("/data/k", json!({"o": 1}))],
            ),
            (
                r#"[{"op":"add","path":"/data/none"}]"#,
                vec![("/data/none", json!(null))],
            ),
            (
                r#"[{"op":"add","path":"/metadata/labels/a~1b","value":"2"}]"#,
                vec![("/metadata/labels/a~1b", json!("2"))],
            ),
            (
                r#"[{"op":"add","path":"/metadata/labels/m~0n","value":"3"}]"#,
                vec![("/metadata/labels/m~0n", json!("3"))],
            ),
            (
                r#"[{"op":"add","path":"/metadata/finalizers/-","value":"z"}]"#,
                vec![("/metadata/finalizers", json!(["x", "y", "z"]))],
            ),
            (
                r#"[{"op":"add","path":"/metadata/finalizers/0","value":"z"}]"#,
                vec![("/metadata/finalizers", json!(["z", "x", "y"]))],
            ),
            (
                r#"[{"op":"add","path":"/metadata/finalizers/2","value":"z"}]"#,
                vec![("/metadata/finalizers", json!(["x", "y", "z"]))],
            ),
            (
                r#"[{"op":"add","path":"/metadata/finalizers/-1","value":"z"}]"#,
                vec![("/metadata/finalizers", json!(["x", "y", "z"]))],
            ),
            (
                r#"[{"op":"add","path":"/metadata/finalizers/-3","value":"z"}]"#,
                vec![("/metadata/finalizers", json!(["z", "x", "y"]))],
            ),
            (
                r#"[{"op":"add","path":"/metadata/finalizers/+1","value":"z"}]"#,
                vec![("/metadata/finalizers", json!(["x", "z", "y"]))],
            ),
            (
                r#"[{"op":"add","path":"/list/1/name","value":"B"}]"#,
                vec![("/list/1/name", json!("B"))],
            ),
            (
                r#"[{"op":"add","path":"/list/-1/name","value":"C"}]"#,
                vec![("/list/2/name", json!("C"))],
            ),
            (
                r#"[{"op":"add","path":"data/relative","value":1}]"#,
                vec![("/relative", json!(1))],
            ),
            (
                r#"[{"op":"remove","path":"/data/k"}]"#,
                vec![("/data/k", absent.clone()), ("/data/n", json!(null))],
            ),
            (
                r#"[{"op":"remove","path":"/data/n"}]"#,
                vec![("/data/n", absent.clone())],
            ),
            (
                r#"[{"op":"remove","path":"/list/0"}]"#,
                vec![("/list", json!([{"name": "b"}, {"name": "c"}]))],
            ),
            (
                r#"[{"op":"remove","path":"/list/-1"}]"#,
                vec![("/list", json!([{"name": "a"}, {"name": "b"}]))],
            ),
            (
                r#"[{"op":"replace","path":"/data/k","value":"w"}]"#,
                vec![("/data/k", json!("w"))],
            ),
            // evanphx v4: replace of a missing member adds it.
            (
                r#"[{"op":"replace","path":"/data/missing","value":"w"}]"#,
                vec![("/data/missing", json!("w"))],
            ),
            (
                r#"[{"op":"replace","path":"/list/-1","value":1}]"#,
                vec![("/list/2", json!(1))],
            ),
            (
                r#"[{"op":"replace","path":"","value":{"only":1}}]"#,
                vec![("", json!({"only": 1}))],
            ),
            (
                r#"[{"op":"replace","path":"","value":5}]"#,
                vec![("/kind", json!("ConfigMap"))],
            ),
            (
                r#"[{"op":"move","from":"/data/k","path":"/data/moved"}]"#,
                vec![("/data/k", absent.clone()), ("/data/moved", json!("v"))],
            ),
            (
                r#"[{"op":"move","from":"/list/0","path":"/list/-"}]"#,
                vec![(
                    "/list",
                    json!([{"name": "b"}, {"name": "c"}, {"name": "a"}]),
                )],
            ),
            (
                r#"[{"op":"copy","from":"/metadata/labels","path":"/data/labels"}]"#,
                vec![("/data/labels", json!({"a/b": "1", "m~n": "2"}))],
            ),
            // evanphx v4: copy of a missing member copies null.
            (
                r#"[{"op":"copy","from":"/data/missing","path":"/data/c"}]"#,
                vec![("/data/c", json!(null))],
            ),
            (
                r#"[{"op":"test","path":"/data/k","value":"v"},{"op":"add","path":"/data/t","value":true}]"#,
                vec![("/data/t", json!(true))],
            ),
            (
                r#"[{"op":"test","path":"/data/missing","value":null}]"#,
                vec![],
            ),
            (r#"[{"op":"test","path":"/data/n"}]"#, vec![]),
            (
                r#"[{"op":"test","path":"/list/1","value":{"name":"b"}}]"#,
                vec![],
            ),
            (
                r#"[{"op":"test","path":"/metadata/finalizers","value":["x","y"]}]"#,
                vec![],
            ),
            ("[]", vec![("/data/k", json!("v"))]),
            ("null", vec![("/data/k", json!("v"))]),
            (
                r#"[{"op":"add","path":"/data/x","value":1,"extra":true}]"#,
                vec![("/data/x", json!(1))],
            ),
        ];
        for (patch, checks) in &cases {
            check(patch, Ok(checks.as_slice()));
        }
    }

    #[test]
    fn fails_operations_with_upstreams_texts() {
        let cases = [
            (
                r#"[{"op":"test","path":"/data/k","value":"w"}]"#,
                "testing value /data/k failed: test failed",
            ),
            (
                r#"[{"op":"test","path":"/data/k","value":null}]"#,
                "testing value /data/k failed: test failed",
            ),
            (
                r#"[{"op":"test","path":"/data/k"}]"#,
                "testing value /data/k failed: test failed",
            ),
            (
                r#"[{"op":"test","path":"/data/missing","value":"v"}]"#,
                "testing value /data/missing failed: test failed",
            ),
            (
                r#"[{"op":"test","path":"","value":{}}]"#,
                "testing value  failed: test failed",
            ),
            (
                r#"[{"op":"test","path":"/list/5","value":1}]"#,
                "error in test for path: '/list/5': Unable to access invalid index: 5: invalid index referenced",
            ),
            (
                r#"[{"op":"test","path":"/nope/x","value":1}]"#,
                "test operation does not apply: is missing path: /nope/x: missing value",
            ),
            (
                r#"[{"op":"test","value":1}]"#,
                "test operation failed to decode path: operation missing path field: missing value",
            ),
            (
                r#"[{"op":"add","path":"/nope/x","value":1}]"#,
                "add operation does not apply: doc is missing path: \"/nope/x\": missing value",
            ),
            (
                r#"[{"op":"add","path":"/data/k/x","value":1}]"#,
                "add operation does not apply: doc is missing path: \"/data/k/x\": missing value",
            ),
            (
                r#"[{"op":"add","path":"/data/n/x","value":1}]"#,
                "add operation does not apply: doc is missing path: \"/data/n/x\": missing value",
            ),
            (
                r#"[{"op":"add","path":"","value":1}]"#,
                "add operation does not apply: doc is missing path: \"\": missing value",
            ),
            (
                r#"[{"op":"add","path":"nope","value":1}]"#,
                "add operation does not apply: doc is missing path: \"nope\": missing value",
            ),
            (
                r#"[{"op":"add","value":1}]"#,
                "add operation failed to decode path: missing value",
            ),
            (
                r#"[{"op":"add","path":"/list/4","value":1}]"#,
                "error in add for path: '/list/4': Unable to access invalid index: 4: invalid index referenced",
            ),
            (
                r#"[{"op":"add","path":"/list/-5","value":1}]"#,
                "error in add for path: '/list/-5': Unable to access invalid index: -5: invalid index referenced",
            ),
            (
                r#"[{"op":"add","path":"/list/x","value":1}]"#,
                "error in add for path: '/list/x': value was not a proper array index: 'x': strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            (
                r#"[{"op":"add","path":"/list/99999999999999999999","value":1}]"#,
                "error in add for path: '/list/99999999999999999999': value was not a proper array index: '99999999999999999999': strconv.Atoi: parsing \"99999999999999999999\": value out of range",
            ),
            (
                r#"[{"op":"add","path":"/list/x/name","value":1}]"#,
                "add operation does not apply: doc is missing path: \"/list/x/name\": missing value",
            ),
            (
                r#"[{"op":"remove","path":"/data/missing"}]"#,
                "error in remove for path: '/data/missing': Unable to remove nonexistent key: missing: missing value",
            ),
            (
                r#"[{"op":"remove","path":"/list/3"}]"#,
                "error in remove for path: '/list/3': Unable to access invalid index: 3: invalid index referenced",
            ),
            (
                r#"[{"op":"remove","path":"/list/-4"}]"#,
                "error in remove for path: '/list/-4': Unable to access invalid index: -4: invalid index referenced",
            ),
            (
                r#"[{"op":"remove","path":"/list/"}]"#,
                "error in remove for path: '/list/': strconv.Atoi: parsing \"\": invalid syntax",
            ),
            (
                r#"[{"op":"remove","path":"/nope/x"}]"#,
                "remove operation does not apply: doc is missing path: \"/nope/x\": missing value",
            ),
            (
                r#"[{"op":"remove"}]"#,
                "remove operation failed to decode path: missing value",
            ),
            (
                r#"[{"op":"replace","path":"/list/3","value":1}]"#,
                "replace operation does not apply: doc is missing key: /list/3: missing value",
            ),
            (
                r#"[{"op":"replace","path":"/nope/x","value":1}]"#,
                "replace operation does not apply: doc is missing path: /nope/x: missing value",
            ),
            (
                r#"[{"op":"replace","value":1}]"#,
                "replace operation failed to decode path: operation missing path field: missing value",
            ),
            (
                r#"[{"op":"move","from":"/data/missing","path":"/data/x"}]"#,
                "error in move for path: 'missing': Unable to remove nonexistent key: missing: missing value",
            ),
            (
                r#"[{"op":"move","from":"/list/7","path":"/data/x"}]"#,
                "error in move for path: '7': Unable to access invalid index: 7: invalid index referenced",
            ),
            (
                r#"[{"op":"move","from":"/nope/x","path":"/data/x"}]"#,
                "move operation does not apply: doc is missing from path: /nope/x: missing value",
            ),
            (
                r#"[{"op":"move","from":"/data/k","path":"/nope/x"}]"#,
                "move operation does not apply: doc is missing destination path: /nope/x: missing value",
            ),
            (
                r#"[{"op":"move","from":"/data/k","path":"/list/9"}]"#,
                "error in move for path: '/list/9': Unable to access invalid index: 9: invalid index referenced",
            ),
            (
                r#"[{"op":"move","path":"/data/x"}]"#,
                "move operation failed to decode from: operation, missing from field: missing value",
            ),
            (
                r#"[{"op":"move","from":"/data/k"}]"#,
                "move operation failed to decode path: operation missing path field: missing value",
            ),
            (
                r#"[{"op":"copy","path":"/data/x"}]"#,
                "copy operation failed to decode from: operation, missing from field: missing value",
            ),
            (
                r#"[{"op":"copy","from":"/data/k"}]"#,
                "copy operation failed to decode path: missing value",
            ),
            (
                r#"[{"op":"copy","from":"/nope/k","path":"/data/x"}]"#,
                "copy operation does not apply: doc is missing from path: /nope/k: missing value",
            ),
            (
                r#"[{"op":"copy","from":"/list/8","path":"/data/x"}]"#,
                "error in copy for from: '/list/8': Unable to access invalid index: 8: invalid index referenced",
            ),
            (
                r#"[{"op":"copy","from":"/data/k","path":"/nope/x"}]"#,
                "copy operation does not apply: doc is missing destination path: /nope/x: missing value",
            ),
            (
                r#"[{"op":"copy","from":"/data/k","path":"/list/8"}]"#,
                "error while adding value during copy: Unable to access invalid index: 8: invalid index referenced",
            ),
            (r#"[{"op":"frob","path":"/a"}]"#, "Unexpected kind: frob"),
            (r#"[{"path":"/a"}]"#, "Unexpected kind: unknown"),
            (r#"[{"OP":"add","path":"/a"}]"#, "Unexpected kind: unknown"),
            ("[null]", "Unexpected kind: unknown"),
        ];
        for (patch, message) in cases {
            check(patch, unprocessable(message));
        }
    }

    #[test]
    fn rejects_bad_bodies_with_upstreams_words() {
        let cases = [
            ("", "error decoding patch: unexpected end of JSON input"),
            ("[{", "error decoding patch: unexpected end of JSON input"),
            (
                "{}",
                "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp",
            ),
            (
                "\"x\"",
                "error decoding patch: json: cannot unmarshal string into Go value of type []handlers.jsonPatchOp",
            ),
            (
                "[1]",
                "error decoding patch: json: cannot unmarshal number into Go value of type handlers.jsonPatchOp",
            ),
            (
                "[[]]",
                "error decoding patch: json: cannot unmarshal array into Go value of type handlers.jsonPatchOp",
            ),
            (
                r#"[{"op":1,"path":"/a"}]"#,
                "error decoding patch: json: cannot unmarshal number into Go struct field jsonPatchOp.op of type string",
            ),
            (
                r#"[{"op":"add","path":["x"]}]"#,
                "error decoding patch: json: cannot unmarshal array into Go struct field jsonPatchOp.path of type string",
            ),
            (
                r#"[{"op":"move","from":true}]"#,
                "error decoding patch: json: cannot unmarshal bool into Go struct field jsonPatchOp.from of type string",
            ),
            (
                r#"[{"op":"add","path":"/a","value":1},{"op":true}]"#,
                "error decoding patch: json: cannot unmarshal bool into Go struct field jsonPatchOp.op of type string",
            ),
            (
                r#"[{"op":"add","path":"/a","value":1e400}]"#,
                "error decoding patch: json: cannot unmarshal number 1e400 into Go struct field jsonPatchOp.value of type float64",
            ),
            (
                "[{\"op\":\"add\"}]x",
                "error decoding patch: invalid character 'x' after top-level value",
            ),
        ];
        for (patch, message) in cases {
            check(patch, bad(message));
        }
    }

    #[test]
    fn limits_operations_copies_and_depth() {
        let op = r#"{"op":"test","path":"/kind","value":"ConfigMap"}"#;
        let many = format!("[{}]", vec![op; MAX_JSON_PATCH_OPERATIONS].join(","));
        assert!(apply_json_patch(&doc(), many.as_bytes()).is_ok());
        let too_many = format!("[{}]", vec![op; MAX_JSON_PATCH_OPERATIONS + 1].join(","));
        assert_eq!(
            apply_json_patch(&doc(), too_many.as_bytes()),
            Err(PatchError::TooManyOperations {
                max: MAX_JSON_PATCH_OPERATIONS,
                got: MAX_JSON_PATCH_OPERATIONS + 1
            })
        );

        // Doubling a 1 MiB string: the second copy crosses 3 MiB.
        let big = json!({"a": "x".repeat(1024 * 1024)});
        let copy = r#"{"op":"copy","from":"/a","path":"/b"}"#;
        let patch = format!("[{copy},{copy},{copy}]");
        let err = apply_json_patch(&big, patch.as_bytes()).unwrap_err();
        assert_eq!(
            err,
            PatchError::Unprocessable(format!(
                "Unable to complete the copy, the accumulated size increase of copy is {}, exceeding the limit {MAX_JSON_PATCH_COPY_BYTES}",
                3 * (1024 * 1024 + 2)
            ))
        );

        // Copying a subtree into itself repeatedly would nest without bound.
        let nested = json!({"a": {"b": {}}});
        let step = r#"{"op":"copy","from":"/a","path":"/a/b/c"}"#;
        let mut ops = Vec::new();
        for _ in 0..60 {
            ops.push(step.to_owned());
        }
        let err = apply_json_patch(&nested, format!("[{}]", ops.join(",")).as_bytes()).unwrap_err();
        assert!(
            matches!(err, PatchError::Unprocessable(ref text) if text.contains("nested more than")),
            "{err:?}"
        );
    }
}
