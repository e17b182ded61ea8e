//! JSON merge patch (RFC 7396), as upstream applies `application/merge-patch+json` with
//! `evanphx/json-patch`'s `MergePatch`: objects merge member by member, `null` deletes a
//! member, anything else replaces. `kubectl label`, `kubectl annotate` and `kubectl apply` on
//! custom resources send these.

use serde_json::{Map, Value};

use crate::PatchError;
use crate::json;

/// Apply a JSON merge patch to `document`.
///
/// Follows upstream where it differs from a plain reading of the RFC: a body of `null` is
/// rejected (`Invalid JSON Patch`, 400); `null`s inside a value that is added (not merged)
/// are dropped from objects but kept as array elements; a value that replaces a non-object
/// keeps its `null`s when it is not itself an object.
pub fn apply_merge_patch(document: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let (patch, _) = decode(patch)?;
    let Value::Object(patch) = patch else {
        // A body of `null`: upstream's decoder leaves it nil and MergePatch refuses it.
        return Err(PatchError::BadRequest("Invalid JSON Patch".into()));
    };
    match document {
        Value::Object(doc) => {
            let mut doc = doc.clone();
            merge_objects(&mut doc, patch);
            Ok(Value::Object(doc))
        }
        Value::Null => Err(PatchError::Internal("Invalid JSON Document".into())),
        // Not an object: the patch, without its nulls, becomes the document.
        _ => {
            let mut patch = Value::Object(patch);
            prune_nulls(&mut patch);
            Ok(patch)
        }
    }
}

/// Decode the body as upstream does before merging: an object or `null`, else a 400. Also
/// returns the strict-decoding errors.
pub(crate) fn decode(patch: &[u8]) -> Result<(Value, Vec<String>), PatchError> {
    let bad = |err: String| PatchError::BadRequest(format!("error decoding patch: {err}"));
    let parsed = json::parse(patch, false).map_err(bad)?;
    match &parsed.value {
        Value::Object(_) | Value::Null => {}
        other => {
            return Err(bad(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json::json_kind(other)
            )));
        }
    }
    if let Some((_, text)) = parsed.overflow {
        return Err(bad(format!(
            "json: cannot unmarshal number {text} into Go value of type float64"
        )));
    }
    Ok((parsed.value, parsed.strict_errors))
}

fn merge_objects(doc: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, mut value) in patch {
        if value.is_null() {
            doc.shift_remove(&key);
            continue;
        }
        match doc.get_mut(&key) {
            Some(current) if !current.is_null() => merge_value(current, value),
            _ => {
                prune_nulls(&mut value);
                doc.insert(key, value);
            }
        }
    }
}

fn merge_value(current: &mut Value, patch: Value) {
    match (current, patch) {
        (Value::Object(current), Value::Object(patch)) => merge_objects(current, patch),
        // An object replaced by a non-object takes the value as sent.
        (current @ Value::Object(_), patch) => *current = patch,
        (current, mut patch) => {
            prune_nulls(&mut patch);
            *current = patch;
        }
    }
}

/// Drop `null` members of objects, at any depth (array elements that are `null` stay).
fn prune_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, member| !member.is_null());
            map.values_mut().for_each(prune_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(document: Value, patch: &str, expected: Result<Value, PatchError>) {
        assert_eq!(
            apply_merge_patch(&document, patch.as_bytes()),
            expected,
            "patch {patch}"
        );
    }

    fn bad(message: &str) -> Result<Value, PatchError> {
        Err(PatchError::BadRequest(message.into()))
    }

    #[test]
    fn merges_like_upstream() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}},
            "data": {"x": "1"}});
        let cases = [
            // kubectl label c a=3 b-
            (
                r#"{"metadata":{"labels":{"a":"3","b":null}}}"#,
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "c", "labels": {"a": "3"}}, "data": {"x": "1"}}),
            ),
            // kubectl annotate c note=hi
            (
                r#"{"metadata":{"annotations":{"note":"hi"}}}"#,
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "c", "labels": {"a": "1", "b": "2"},
                        "annotations": {"note": "hi"}}, "data": {"x": "1"}}),
            ),
            (
                r#"{"data":null,"immutable":true}"#,
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}},
                    "immutable": true}),
            ),
            ("{}", cm.clone()),
            (r#"{"missing":null}"#, cm.clone()),
        ];
        for (patch, expected) in cases {
            check(cm.clone(), patch, Ok(expected));
        }
    }

    #[test]
    fn handles_nulls_and_type_changes_like_evanphx() {
        let cases = [
            // Added values lose their null members, but not null array elements.
            (
                json!({}),
                r#"{"a":{"b":null,"c":[null,{"d":null}]}}"#,
                json!({"a": {"c": [null, {}]}}),
            ),
            // A null current value counts as absent.
            (
                json!({"a": null}),
                r#"{"a":{"b":null,"c":1}}"#,
                json!({"a": {"c": 1}}),
            ),
            // Replacing a non-object prunes the patch value.
            (
                json!({"a": 1}),
                r#"{"a":{"b":null,"c":1}}"#,
                json!({"a": {"c": 1}}),
            ),
            // Replacing an object with a non-object keeps the value as sent.
            (
                json!({"a": {"x": 1}}),
                r#"{"a":[{"b":null}]}"#,
                json!({"a": [{"b": null}]}),
            ),
            (json!({"a": {"x": 1}}), r#"{"a":"s"}"#, json!({"a": "s"})),
            // Arrays are replaced, never merged.
            (json!({"a": [1, 2]}), r#"{"a":[3]}"#, json!({"a": [3]})),
            (
                json!({"a": {"b": {"c": 1, "d": 2}}}),
                r#"{"a":{"b":{"c":null}}}"#,
                json!({"a": {"b": {"d": 2}}}),
            ),
        ];
        for (document, patch, expected) in cases {
            check(document, patch, Ok(expected));
        }
    }

    #[test]
    fn rejects_bad_bodies_with_upstreams_words() {
        let doc = json!({"a": 1});
        let cases = [
            ("null", "Invalid JSON Patch"),
            ("", "error decoding patch: unexpected end of JSON input"),
            ("{", "error decoding patch: unexpected end of JSON input"),
            (
                "{\"a\":1}x",
                "error decoding patch: invalid character 'x' after top-level value",
            ),
            (
                "[]",
                "error decoding patch: json: cannot unmarshal array into Go value of type map[string]interface {}",
            ),
            (
                "\"s\"",
                "error decoding patch: json: cannot unmarshal string into Go value of type map[string]interface {}",
            ),
            (
                "1",
                "error decoding patch: json: cannot unmarshal number into Go value of type map[string]interface {}",
            ),
            (
                "true",
                "error decoding patch: json: cannot unmarshal bool into Go value of type map[string]interface {}",
            ),
            (
                "{\"a\":1e400}",
                "error decoding patch: json: cannot unmarshal number 1e400 into Go value of type float64",
            ),
        ];
        for (patch, message) in cases {
            check(doc.clone(), patch, bad(message));
        }
        check(
            Value::Null,
            "{}",
            Err(PatchError::Internal("Invalid JSON Document".into())),
        );
    }
}
