//! Strategic merge patch (`application/strategic-merge-patch+json`), with the semantics of
//! upstream's `strategicpatch.StrategicMergeMapPatch` as the API server calls it (parallel
//! lists merged, unmatched nulls ignored):
//!
//! - objects merge member by member and `null` deletes a member;
//! - a list merges as its schema's [`ListPatch`] says: `Replace` takes the patch's list,
//!   `MergeByKey(k)` merges elements with equal `k` and appends the others, `MergeScalars`
//!   takes the union;
//! - merged lists keep the patch's order for the patch's elements and the object's order for
//!   the rest, interleaved as upstream does, and `$setElementOrder/<list>` (which `kubectl
//!   apply` sends) fixes the order of the elements it names;
//! - directives: `$patch: replace` and `$patch: delete` in an object replace it with the rest
//!   of the patch or empty it; in a merged list, an element `{"$patch": "replace"}` makes the
//!   patch's elements the whole list and `{"<key>": v, "$patch": "delete"}` deletes the
//!   elements with that key; `$retainKeys` drops the members it does not list;
//!   `$deleteFromPrimitiveList/<list>` removes scalars from a list;
//! - members the schema does not know, and [`Schema::Any`] values, merge as plain JSON:
//!   objects member by member, lists replaced, directives still honoured. (Upstream fails
//!   with a 500 when it has to look such a member up, which for built-in kinds only happens
//!   if the stored object has fields its Go type lacks.) Maps ([`Schema::Map`]) merge their
//!   values by the value schema, where upstream would fail for maps of structs.
//!
//! Quirks of upstream kept on purpose: `$patch: merge` is an error (on an object, `unknown
//! patch type`; in a list, `merging lists cannot yet be specified in the patch`); a
//! `Replace` list keeps directive elements when the object already has the list; values
//! added where the object has nothing lose their `null` members and their elements and
//! members that carry `$patch`, but nested `$retainKeys`/`$setElementOrder` keys stay (the
//! caller's decode drops them as unknown fields).
//!
//! Where upstream's outcome depends on Go's random map order, one of its possible outcomes is
//! chosen: `$deleteFromPrimitiveList/<list>` applies after `<list>` (the order upstream always
//! takes when `$setElementOrder/<list>` is present, as in kubectl's patches). Where it depends
//! on Go's slice memory (the order given to elements a `$setElementOrder` does not name, after
//! deletions), that is replayed, so that e.g. an injected sidecar keeps its place as upstream
//! keeps it.

use ironplane_apimachinery::schema::{ListPatch, Schema, StructSchema};
use serde_json::{Map, Value};

use crate::json::{self, GoType, go_equal, go_s, go_v_list, go_v_map};
use crate::{MAX_DEPTH, PatchError};

const DIRECTIVE: &str = "$patch";
const DELETE: &str = "delete";
const REPLACE: &str = "replace";
const MERGE: &str = "merge";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

const MAP_TYPE: &str = "map[string]interface {}";
const SLICE_TYPE: &str = "[]interface {}";

/// Apply a strategic merge patch to `document`, an object of the kind `schema` describes.
///
/// A body of `null` changes nothing. Errors follow upstream (see [`PatchError`]): a body that
/// is not a JSON object is a 400 with the decoder's text (no `error decoding patch:` prefix
/// here, as upstream); malformed `$retainKeys`, `$deleteFromPrimitiveList/…` and
/// `$setElementOrder/…` directives are 400s; a list of lists is a 422; other bad directives
/// and list contents that do not fit the schema are 500s with upstream's texts.
pub fn apply_strategic_merge_patch(
    document: &Value,
    patch: &[u8],
    schema: &'static StructSchema,
) -> Result<Value, PatchError> {
    let (Value::Object(patch), _) = decode(patch)? else {
        return Ok(document.clone());
    };
    let Value::Object(original) = document else {
        return Err(PatchError::BadRequest("invalid JSON document".into()));
    };
    let merged = merge_map(original.clone(), patch, Shape::Struct(schema), 0)?;
    Ok(Value::Object(merged))
}

/// Decode the body as upstream does: an object or `null`, else a 400 with the decoder's text.
/// Also returns the strict-decoding errors.
pub(crate) fn decode(patch: &[u8]) -> Result<(Value, Vec<String>), PatchError> {
    let parsed = json::parse(patch, false).map_err(PatchError::BadRequest)?;
    match &parsed.value {
        Value::Object(_) | Value::Null => {}
        other => {
            return Err(PatchError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type {MAP_TYPE}",
                json::json_kind(other)
            )));
        }
    }
    if let Some((_, text)) = parsed.overflow {
        return Err(PatchError::BadRequest(format!(
            "json: cannot unmarshal number {text} into Go value of type float64"
        )));
    }
    Ok((parsed.value, parsed.strict_errors))
}

/// What the schema says about the members of an object being merged.
#[derive(Clone, Copy)]
enum Shape {
    /// A struct: members are its fields.
    Struct(&'static StructSchema),
    /// A map: every member has the value schema.
    Map(&'static Schema),
    /// Unknown or free-form: plain JSON.
    Plain,
}

impl Shape {
    fn of(schema: Option<&'static Schema>) -> Shape {
        match schema {
            Some(Schema::Struct(inner)) => Shape::Struct(inner),
            Some(Schema::Map(values)) => Shape::Map(values),
            _ => Shape::Plain,
        }
    }

    /// The schema of member `key`, if known.
    fn member(self, key: &str) -> Option<&'static Schema> {
        match self {
            Shape::Struct(schema) => schema.field(key).map(|field| &field.schema),
            Shape::Map(values) => Some(values),
            Shape::Plain => None,
        }
    }
}

/// How a list merges: upstream's patch strategy and merge key, and the element schema.
#[derive(Clone, Copy)]
struct ListMeta {
    merge: bool,
    key: &'static str,
    element: Option<&'static Schema>,
}

fn list_meta(schema: Option<&'static Schema>) -> ListMeta {
    match schema {
        Some(Schema::List(element, strategy)) => {
            let (merge, key) = match strategy {
                ListPatch::Replace => (false, ""),
                ListPatch::MergeByKey(key) => (true, *key),
                ListPatch::MergeScalars => (true, ""),
            };
            ListMeta {
                merge,
                key,
                element: Some(element),
            }
        }
        _ => ListMeta {
            merge: false,
            key: "",
            element: None,
        },
    }
}

/// The Go kind of a list's element type, as upstream names it in errors.
fn go_kind(element: Option<&Schema>) -> &'static str {
    match element {
        Some(Schema::String) => "string",
        Some(Schema::Int32) => "int32",
        Some(Schema::Int64) => "int64",
        Some(Schema::Float64) => "float64",
        Some(Schema::Bool) => "bool",
        Some(Schema::Bytes | Schema::List(..)) => "slice",
        Some(Schema::Map(_)) => "map",
        Some(
            Schema::Struct(_)
            | Schema::Time
            | Schema::MicroTime
            | Schema::IntOrString
            | Schema::Quantity
            | Schema::Any,
        ) => "struct",
        None => "interface",
    }
}

fn internal(text: impl Into<String>) -> PatchError {
    PatchError::Internal(text.into())
}

fn bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    // Go formats the `reflect.Type` of the value with `%s`, and a nil type as `%!s(<nil>)`.
    let actual = match actual {
        Value::Null => "%!s(<nil>)",
        other => GoType::of(other).name(),
    };
    internal(format!("expected a {expected}, but received a {actual}"))
}

fn no_merge_key(map: &Map<String, Value>, key: &str) -> PatchError {
    internal(format!(
        "map: {} does not contain declared merge key: {key}",
        go_v_map(map)
    ))
}

fn bad_patch_type(directive: &Value, map: &Map<String, Value>) -> PatchError {
    internal(format!(
        "unknown patch type: {} in map: {}",
        go_s(directive),
        go_v_map(map)
    ))
}

/// The list key after a directive prefix (`$setElementOrder/containers` → `containers`).
fn extract_key<'a>(key: &'a str, prefix: &str) -> Result<&'a str, PatchError> {
    match key.split_once('/') {
        Some((head, rest)) if head == prefix => Ok(rest),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST => Err(PatchError::BadRequest(
            "invalid patch format of primitive list".into(),
        )),
        _ => Err(PatchError::BadRequest(
            "invalid patch format of setElementOrder list".into(),
        )),
    }
}

/// Merge `patch` into `original`. `depth` counts the patch's nesting (bounded by the decoder).
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    shape: Shape,
    depth: usize,
) -> Result<Map<String, Value>, PatchError> {
    if depth > MAX_DEPTH {
        return Err(PatchError::Unprocessable(format!(
            "the patch is nested more than {MAX_DEPTH} levels deep"
        )));
    }
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some(REPLACE) => {
                patch.shift_remove(DIRECTIVE);
                Ok(patch)
            }
            Some(DELETE) => Ok(Map::new()),
            _ => Err(bad_patch_type(directive, &patch)),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_element_orders(&mut original, &mut patch, shape, depth)?;

    // Go visits the members in random order. Deletions from primitive lists go last here,
    // which is the order upstream always uses when the list also has a `$setElementOrder`
    // (as kubectl sends it): an item both added and deleted is deleted.
    let (deletions, others): (Vec<_>, Vec<_>) = patch
        .into_iter()
        .partition(|(key, _)| key.starts_with(DELETE_FROM_PRIMITIVE_LIST));
    for (key, patch_value) in others.into_iter().chain(deletions) {
        let (key, delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            let list_key = extract_key(&key, DELETE_FROM_PRIMITIVE_LIST)?;
            if list_key.is_empty() {
                (key, true)
            } else {
                (list_key.to_owned(), true)
            }
        } else {
            (key, false)
        };
        if patch_value.is_null() {
            original.shift_remove(&key);
            continue;
        }
        let member = shape.member(&key);
        let Some(current) = original.get_mut(&key) else {
            if !delete_list && let Some(value) = clean(patch_value) {
                original.insert(key, value);
            }
            continue;
        };
        match (current, patch_value) {
            (Value::Object(current), Value::Object(patch_map)) => {
                let taken = std::mem::take(current);
                *current = merge_map(taken, patch_map, Shape::of(member), depth + 1)?;
            }
            (Value::Array(current), Value::Array(patch_items)) => {
                let taken = std::mem::take(current);
                *current = merge_list(
                    taken,
                    patch_items,
                    list_meta(member),
                    delete_list,
                    depth,
                    None,
                )?;
            }
            (current, patch_value) if GoType::of(current) == GoType::of(&patch_value) => {
                *current = patch_value;
            }
            (current, patch_value) => {
                if !delete_list {
                    match clean(patch_value) {
                        Some(value) => *current = value,
                        None => {
                            original.shift_remove(&key);
                        }
                    }
                }
            }
        }
    }
    Ok(original)
}

/// A patch value taken where the object has nothing to merge it with: without `null` members
/// and without objects that carry a directive (`None` when the value itself does).
fn clean(mut value: Value) -> Option<Value> {
    discard_nulls(&mut value);
    remove_directives(value)
}

fn discard_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, member| !member.is_null());
            map.values_mut().for_each(discard_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

fn remove_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) => {
            if map.contains_key(DIRECTIVE) {
                return None;
            }
            Some(Value::Object(
                map.into_iter()
                    .filter_map(|(key, member)| remove_directives(member).map(|m| (key, m)))
                    .collect(),
            ))
        }
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// `$retainKeys`: every member the patch sets must be listed; members of the object that are
/// not listed go.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let bad = || PatchError::BadRequest("invalid patch format of retainKeys".into());
    let Value::Array(keys) = retain else {
        return Err(bad());
    };
    let retained = |key: &str| keys.iter().any(|listed| listed.as_str() == Some(key));
    for (key, value) in patch.iter() {
        if value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || key.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !retained(key) {
            return Err(bad());
        }
    }
    original.retain(|key, _| retained(key));
    Ok(())
}

/// `$setElementOrder/<list>`: merge the list (if the patch has it) and order the result: the
/// listed elements as listed, the others where they were.
fn merge_element_orders(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    shape: Shape,
    depth: usize,
) -> Result<(), PatchError> {
    let order_keys: Vec<String> = patch
        .keys()
        .filter(|key| key.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for order_key in order_keys {
        let Some(order) = patch.shift_remove(&order_key) else {
            continue;
        };
        let Value::Array(set_order) = order else {
            return Err(bad_arg_type(SLICE_TYPE, &order));
        };
        let list_key = extract_key(&order_key, SET_ELEMENT_ORDER)?.to_owned();
        let original_list = list_member(original, &list_key)?;
        let patch_list = list_member(patch, &list_key)?;
        let meta = list_meta(shape.member(&list_key));
        validate_element_order(patch_list.unwrap_or(&[]), &set_order, meta.key)?;

        let original_items: Vec<Value> = original_list.map(<[Value]>::to_vec).unwrap_or_default();
        let patch_items: Vec<Value> = patch_list.map(<[Value]>::to_vec).unwrap_or_default();
        // Upstream orders the elements it does not list by the object's list as the merge
        // left it in memory: Go deletes elements by shifting the rest down in place and
        // appends new ones into the room that frees, and the caller still sees the old
        // length. `server_order` replays that.
        let mut server_order = original_items.clone();
        let merged = match (original_list.is_some(), patch_list.is_some()) {
            (true, false) => original_items,
            (false, true) => patch_items
                .iter()
                .cloned()
                .filter_map(remove_directives)
                .collect(),
            (true, true) => merge_list(
                original_items,
                patch_items.clone(),
                meta,
                false,
                depth,
                Some(&mut server_order),
            )?,
            (false, false) => continue,
        };
        let (listed, others) = partition(merged, &set_order, meta.key)?;
        let kind = element_type(&[&server_order, &patch_items])?;
        let ordered =
            normalize_element_order(listed, others, &set_order, &server_order, meta.key, kind)?;
        original.insert(list_key.clone(), Value::Array(ordered));
        patch.shift_remove(&list_key);
    }
    Ok(())
}

/// Member `key` of `map` as a list, if present (an error if it is anything else).
fn list_member<'a>(
    map: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a [Value]>, PatchError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(other) => Err(bad_arg_type(SLICE_TYPE, other)),
    }
}

/// The patch's elements must appear in the `$setElementOrder` list, in the same order.
fn validate_element_order(
    patch_list: &[Value],
    set_order: &[Value],
    key: &str,
) -> Result<(), PatchError> {
    if set_order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let mut kept = Vec::with_capacity(patch_list.len());
    for item in patch_list {
        if key.is_empty() || !is_delete_element(item)? {
            kept.push(item);
        }
    }
    let (mut in_patch, mut in_order) = (0, 0);
    while let (Some(item), Some(ordered)) = (kept.get(in_patch), set_order.get(in_order)) {
        if item
            .as_object()
            .is_some_and(|map| map.contains_key(DIRECTIVE))
        {
            in_patch += 1;
            continue;
        }
        if merge_key_values_equal(item, ordered, key)? {
            in_patch += 1;
        }
        in_order += 1;
    }
    if in_patch < kept.len() && in_order >= set_order.len() {
        return Err(internal(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            go_v_list(patch_list),
            go_v_list(set_order)
        )));
    }
    Ok(())
}

fn merge_key_values_equal(left: &Value, right: &Value, key: &str) -> Result<bool, PatchError> {
    if key.is_empty() {
        return Ok(go_equal(left, right));
    }
    let Value::Object(left_map) = left else {
        return Err(bad_arg_type(MAP_TYPE, left));
    };
    let Value::Object(right_map) = right else {
        return Err(bad_arg_type(MAP_TYPE, right));
    };
    let left_value = left_map
        .get(key)
        .ok_or_else(|| no_merge_key(left_map, key))?;
    let right_value = right_map
        .get(key)
        .ok_or_else(|| no_merge_key(right_map, key))?;
    Ok(go_equal(left_value, right_value))
}

/// Whether a list element is `{…, "$patch": "delete"}` (an error if it is not an object).
fn is_delete_element(item: &Value) -> Result<bool, PatchError> {
    match item {
        Value::Object(map) => Ok(map.get(DIRECTIVE).and_then(Value::as_str) == Some(DELETE)),
        other => Err(bad_arg_type(MAP_TYPE, other)),
    }
}

/// Merge two lists as the list's strategy says (delete lists always merge). `in_place`, when
/// given, starts as a copy of `original` and ends as Go's view of `original`'s memory after
/// the merge (see `merge_element_orders`).
fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    meta: ListMeta,
    delete_list: bool,
    depth: usize,
    in_place: Option<&mut Vec<Value>>,
) -> Result<Vec<Value>, PatchError> {
    if meta.merge || delete_list {
        merge_slice(original, patch, meta, delete_list, depth, in_place)
    } else {
        Ok(patch)
    }
}

fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    meta: ListMeta,
    delete_list: bool,
    depth: usize,
    mut in_place: Option<&mut Vec<Value>>,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = element_type(&[&original, &patch])?;
    let key = meta.key;
    let (merged, patch_order, server_order) = if kind == GoType::Map {
        if key.is_empty() {
            return Err(internal(format!(
                "cannot merge lists without merge key for {}",
                go_kind(meta.element)
            )));
        }
        let (server, plain, replaced) =
            apply_list_directives(original, patch, key, in_place.as_deref_mut())?;
        // After a `replace`, Go merges into a new list and the old memory is left alone.
        let in_place = if replaced { None } else { in_place };
        let merged = merge_by_key(
            server.clone(),
            plain.clone(),
            key,
            meta.element,
            depth,
            in_place,
        )?;
        (merged, plain, server)
    } else {
        if delete_list {
            return Ok(original
                .into_iter()
                .filter(|item| !patch.iter().any(|gone| go_equal(gone, item)))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for item in original.iter().chain(patch.iter()) {
            if !merged.iter().any(|seen| go_equal(seen, item)) {
                merged.push(item.clone());
            }
        }
        (merged, patch, original)
    };
    let (in_patch, server_only) = partition(merged, &patch_order, key)?;
    normalize_element_order(
        in_patch,
        server_only,
        &patch_order,
        &server_order,
        key,
        kind,
    )
}

/// The Go type shared by the elements of the lists (maps, strings, …); upstream's errors for
/// lists of lists, mixed types and empty lists.
fn element_type(lists: &[&[Value]]) -> Result<GoType, PatchError> {
    let mut first = None;
    for item in lists.iter().flat_map(|list| list.iter()) {
        let kind = GoType::of(item);
        match first {
            None if kind == GoType::Slice => {
                return Err(PatchError::Unprocessable(
                    "lists of lists are not supported".into(),
                ));
            }
            // Go cannot type a nil element and panics; report it as a type mismatch.
            None if kind != GoType::Nil => first = Some(kind),
            Some(seen) if seen == kind => {}
            _ => {
                let lists: Vec<String> = lists.iter().map(|list| go_v_list(list)).collect();
                return Err(internal(format!(
                    "list element types are not identical: [{}]",
                    lists.join(" ")
                )));
            }
        }
    }
    first.ok_or_else(|| internal("no elements in any of the given slices"))
}

/// Handle `$patch` elements of a merged list of objects: deletions remove the object's
/// elements with that key, `replace` drops the object's elements. Returns the object's
/// remaining elements, the patch's plain elements and whether the list was replaced.
fn apply_list_directives(
    original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    mut in_place: Option<&mut Vec<Value>>,
) -> Result<(Vec<Value>, Vec<Value>, bool), PatchError> {
    let mut server = original;
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let directive = match &item {
            Value::Object(map) => map.get(DIRECTIVE).map(|directive| (map, directive)),
            _ => None,
        };
        let Some((map, directive)) = directive else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some(DELETE) => {
                let value = map.get(key).ok_or_else(|| no_merge_key(map, key))?;
                while let Some(index) = server
                    .iter()
                    .position(|element| has_key_value(element, key, value))
                {
                    if let Some(memory) = in_place.as_deref_mut() {
                        // Go shifts the tail down one place; the last slot keeps its value.
                        for slot in index..server.len() - 1 {
                            if let Some(next) = memory.get(slot + 1).cloned()
                                && let Some(current) = memory.get_mut(slot)
                            {
                                *current = next;
                            }
                        }
                    }
                    server.remove(index);
                }
            }
            Some(REPLACE) => replace = true,
            Some(MERGE) => {
                return Err(internal(
                    "merging lists cannot yet be specified in the patch",
                ));
            }
            _ => return Err(bad_patch_type(directive, map)),
        }
    }
    if replace {
        Ok((plain, Vec::new(), true))
    } else {
        Ok((server, plain, false))
    }
}

fn has_key_value(element: &Value, key: &str, value: &Value) -> bool {
    element
        .as_object()
        .and_then(|map| map.get(key))
        .is_some_and(|own| go_equal(own, value))
}

/// Merge each patch element into the object's element with the same key, or append it.
fn merge_by_key(
    mut server: Vec<Value>,
    plain: Vec<Value>,
    key: &str,
    element: Option<&'static Schema>,
    depth: usize,
    mut in_place: Option<&mut Vec<Value>>,
) -> Result<Vec<Value>, PatchError> {
    for item in plain {
        let Value::Object(map) = item else {
            server.push(item);
            continue;
        };
        let value = map.get(key).ok_or_else(|| no_merge_key(&map, key))?;
        let position = server
            .iter()
            .position(|existing| has_key_value(existing, key, value));
        match position.and_then(|index| server.get_mut(index)) {
            Some(Value::Object(existing)) => {
                let taken = std::mem::take(existing);
                *existing = merge_map(taken, map, Shape::of(element), depth + 1)?;
            }
            _ => {
                // Go appends into the original memory while there is room in it.
                if let Some(slot) = in_place
                    .as_deref_mut()
                    .and_then(|memory| memory.get_mut(server.len()))
                {
                    *slot = Value::Object(map.clone());
                }
                server.push(Value::Object(map));
            }
        }
    }
    Ok(server)
}

/// Split a merged list into the elements that `by` has (by merge key, or by value when there
/// is no key) and the others.
fn partition(
    merged: Vec<Value>,
    by: &[Value],
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut listed = Vec::with_capacity(merged.len());
    let mut others = Vec::new();
    for item in merged {
        let found = if key.is_empty() {
            by.iter().any(|other| go_equal(other, &item))
        } else {
            let Value::Object(map) = &item else {
                return Err(bad_arg_type(MAP_TYPE, &item));
            };
            let value = map.get(key).ok_or_else(|| no_merge_key(map, key))?;
            find_by_key(by, key, value)?
        };
        if found {
            listed.push(item);
        } else {
            others.push(item);
        }
    }
    Ok((listed, others))
}

fn find_by_key(list: &[Value], key: &str, value: &Value) -> Result<bool, PatchError> {
    for (index, item) in list.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(internal(format!("value for key {index} is not a map")));
        };
        if map.get(key).is_some_and(|own| go_equal(own, value)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Sort the patch's elements by `patch_order` and the object's by `server_order`, then
/// interleave them, as upstream's `normalizeElementOrder` does.
fn normalize_element_order(
    in_patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: &str,
    kind: GoType,
) -> Result<Vec<Value>, PatchError> {
    let in_patch = sort_by_order(in_patch, patch_order, key, kind)?;
    let server_only = sort_by_order(server_only, server_order, key, kind)?;
    Ok(interleave(server_only, in_patch, server_order, key, kind))
}

/// Stable-sort `items` by their position in `order`; deletion elements go last. Upstream's
/// comparison calls an element that `order` lacks "less" than anything, which is not an
/// order, so the exact result depends on the sorting algorithm: Go's `sort.SliceStable` is
/// reproduced to get the same one.
fn sort_by_order(
    items: Vec<Value>,
    order: &[Value],
    key: &str,
    kind: GoType,
) -> Result<Vec<Value>, PatchError> {
    let mut deleted = Vec::new();
    let mut ranked = Vec::with_capacity(items.len());
    if kind == GoType::Map {
        for list in [items.as_slice(), order] {
            for item in list {
                let Value::Object(map) = item else {
                    return Err(bad_arg_type(MAP_TYPE, item));
                };
                if !map.contains_key(key) {
                    return Err(no_merge_key(map, key));
                }
            }
        }
    }
    for item in items {
        if kind == GoType::Map && is_delete_element(&item)? {
            deleted.push(item);
        } else {
            ranked.push((position(order, &item, key, kind), item));
        }
    }
    go_sort_stable(
        &mut ranked,
        &|a: &(Option<usize>, Value), b| match (a.0, b.0) {
            (Some(left), Some(right)) => left < right,
            _ => true,
        },
    );
    let mut sorted: Vec<Value> = ranked.into_iter().map(|(_, item)| item).collect();
    sorted.append(&mut deleted);
    Ok(sorted)
}

/// Where `item` is in `list`: by merge key for objects, by value otherwise.
fn position(list: &[Value], item: &Value, key: &str, kind: GoType) -> Option<usize> {
    if kind == GoType::Map {
        let wanted = merge_key_value(item, key);
        list.iter()
            .position(|other| match (merge_key_value(other, key), wanted) {
                (None, None) => true,
                (Some(a), Some(b)) => go_equal(a, b),
                _ => false,
            })
    } else {
        list.iter().position(|other| go_equal(other, item))
    }
}

/// The merge key's value (`None` when missing or null, which Go cannot tell apart).
fn merge_key_value<'a>(item: &'a Value, key: &str) -> Option<&'a Value> {
    item.as_object()
        .and_then(|map| map.get(key))
        .filter(|value| !value.is_null())
}

/// Merge two sorted lists: an element of `left` goes before the next of `right` only when
/// both are in `order` and it comes first there.
fn interleave(
    left: Vec<Value>,
    right: Vec<Value>,
    order: &[Value],
    key: &str,
    kind: GoType,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (position(order, l, key, kind), position(order, r, key, kind)),
                (Some(a), Some(b)) if a < b
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// Go's `sort.SliceStable`: insertion sort on blocks of 20, then SymMerge. Reproduced
/// because upstream sorts with a comparison that is not an order, whose outcome depends on
/// the algorithm.
fn go_sort_stable<T>(data: &mut [T], less: &impl Fn(&T, &T) -> bool) {
    let n = data.len();
    let mut block = 20;
    let (mut a, mut b) = (0, block);
    while b <= n {
        insertion_sort(data, a, b, less);
        a = b;
        b += block;
    }
    insertion_sort(data, a, n, less);
    while block < n {
        a = 0;
        b = 2 * block;
        while b <= n {
            sym_merge(data, a, a + block, b, less);
            a = b;
            b += 2 * block;
        }
        let m = a + block;
        if m < n {
            sym_merge(data, a, m, n, less);
        }
        block *= 2;
    }
}

fn insertion_sort<T>(data: &mut [T], a: usize, b: usize, less: &impl Fn(&T, &T) -> bool) {
    for i in a + 1..b {
        let mut j = i;
        while j > a && less(&data[j], &data[j - 1]) {
            data.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn sym_merge<T>(data: &mut [T], a: usize, m: usize, b: usize, less: &impl Fn(&T, &T) -> bool) {
    if m - a == 1 {
        let (mut i, mut j) = (m, b);
        while i < j {
            let h = (i + j) / 2;
            if less(&data[h], &data[a]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        for k in a..i - 1 {
            data.swap(k, k + 1);
        }
        return;
    }
    if b - m == 1 {
        let (mut i, mut j) = (a, m);
        while i < j {
            let h = (i + j) / 2;
            if !less(&data[m], &data[h]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = m;
        while k > i {
            data.swap(k, k - 1);
            k -= 1;
        }
        return;
    }
    let mid = (a + b) / 2;
    let n = mid + m;
    let (mut start, mut r) = if m > mid { (n - b, mid) } else { (a, m) };
    let p = n - 1;
    while start < r {
        let c = (start + r) / 2;
        if !less(&data[p - c], &data[c]) {
            start = c + 1;
        } else {
            r = c;
        }
    }
    let end = n - start;
    if start < m && m < end {
        rotate(data, start, m, end);
    }
    if a < start && start < mid {
        sym_merge(data, a, start, mid, less);
    }
    if mid < end && end < b {
        sym_merge(data, mid, end, b, less);
    }
}

/// Swap the blocks `data[a..m]` and `data[m..b]`, with Go's sequence of swaps.
fn rotate<T>(data: &mut [T], a: usize, m: usize, b: usize) {
    let mut i = m - a;
    let mut j = b - m;
    while i != j {
        if i > j {
            swap_range(data, m - i, m, j);
            i -= j;
        } else {
            swap_range(data, m - i, m + j - i, i);
            j -= i;
        }
    }
    swap_range(data, m - i, m, i);
}

fn swap_range<T>(data: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        data.swap(a + i, b + i);
    }
}

#[cfg(test)]
mod tests;
