//! A YAML writer for JSON values in the style upstream's responses use (go-yaml v2 behind
//! `sigs.k8s.io/yaml`): sorted keys, block style, sequences not indented under their key, strings
//! quoted only when a plain scalar would read back as something else.

use serde_json::Value;

/// Write one YAML document (no `---`) for `value`.
pub fn write_document(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) if !map.is_empty() => write_mapping(out, value, 0),
        Value::Array(items) if !items.is_empty() => write_sequence(out, items, 0),
        scalar => {
            write_scalar(out, scalar, 0);
            out.push('\n');
        }
    }
}

fn write_mapping(out: &mut String, value: &Value, indent: usize) {
    let Value::Object(map) = value else { return };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for (position, key) in keys.into_iter().enumerate() {
        // The first key of a mapping inside a sequence item shares the "- " line.
        if position > 0 || indent == 0 || !out.ends_with("- ") {
            push_indent(out, indent);
        }
        write_string(out, key, indent);
        out.push(':');
        let Some(child) = map.get(key) else { continue };
        write_value_after_key(out, child, indent);
    }
}

fn write_value_after_key(out: &mut String, child: &Value, indent: usize) {
    match child {
        Value::Object(inner) if !inner.is_empty() => {
            out.push('\n');
            write_mapping(out, child, indent + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_sequence(out, items, indent);
        }
        scalar => {
            out.push(' ');
            write_scalar(out, scalar, indent + 2);
            out.push('\n');
        }
    }
}

fn write_sequence(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        push_indent(out, indent);
        out.push_str("- ");
        match item {
            Value::Object(inner) if !inner.is_empty() => write_mapping(out, item, indent + 2),
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_sequence(out, inner, indent + 2);
            }
            scalar => {
                write_scalar(out, scalar, indent + 2);
                out.push('\n');
            }
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn write_scalar(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => write_string(out, text, indent),
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
    }
}

fn write_string(out: &mut String, text: &str, indent: usize) {
    if text.contains('\n') && !text.contains(['\r', '\t']) && !has_trailing_space_line(text) {
        write_literal(out, text, indent);
    } else if resolves_to_non_string(text) || text.chars().any(char::is_control) {
        write_double_quoted(out, text);
    } else if plain_allowed(text) {
        out.push_str(text);
    } else {
        out.push('\'');
        out.push_str(&text.replace('\'', "''"));
        out.push('\'');
    }
}

fn has_trailing_space_line(text: &str) -> bool {
    text.lines()
        .any(|line| line.ends_with(' ') || line.starts_with(' ') && line.trim().is_empty())
}

fn write_literal(out: &mut String, text: &str, indent: usize) {
    let trailing = text.len() - text.trim_end_matches('\n').len();
    out.push('|');
    match trailing {
        0 => out.push('-'),
        1 => {}
        _ => out.push('+'),
    }
    if text.starts_with(' ') {
        out.push_str(&indent.max(2).to_string());
    }
    let body = text.trim_end_matches('\n');
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            push_indent(out, indent.max(2));
            out.push_str(line);
        }
    }
    for _ in 1..trailing {
        out.push('\n');
    }
    // The caller ends the line.
}

fn write_double_quoted(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether a plain scalar with this text would be read back as a bool, null, number or
/// timestamp by a YAML 1.1 reader.
fn resolves_to_non_string(text: &str) -> bool {
    if text.is_empty() {
        return true;
    }
    const WORDS: [&str; 22] = [
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
        "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
    ];
    const NULLS: [&str; 4] = ["~", "null", "Null", "NULL"];
    if WORDS.contains(&text) || NULLS.contains(&text) {
        return true;
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let lower = unsigned.to_ascii_lowercase();
    if matches!(lower.as_str(), ".inf" | ".nan") {
        return true;
    }
    let numeric = lower.replace('_', "");
    if numeric.parse::<f64>().is_ok() && !numeric.starts_with("inf") && !numeric.starts_with("nan")
    {
        return true;
    }
    if let Some(hex) = numeric.strip_prefix("0x")
        && !hex.is_empty()
        && hex.chars().all(|c| c.is_ascii_hexdigit())
    {
        return true;
    }
    if let Some(bin) = numeric.strip_prefix("0b")
        && !bin.is_empty()
        && bin.chars().all(|c| c == '0' || c == '1')
    {
        return true;
    }
    // Sexagesimal (190:20:30) and timestamps (2001-12-14...).
    let bytes = text.as_bytes();
    if bytes.len() >= 10
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[5..7].iter().all(u8::is_ascii_digit)
        && bytes[7] == b'-'
    {
        return true;
    }
    if unsigned.contains(':')
        && unsigned
            .split(':')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit() || c == '.'))
    {
        return true;
    }
    false
}

fn plain_allowed(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if text.starts_with(' ') || text.ends_with(' ') {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        // "-" and "?" and ":" may start a plain scalar when followed by a non-space.
        let second = text.chars().nth(1);
        let allowed = matches!(first, '-' | '?' | ':') && second.is_some_and(|c| c != ' ');
        if !allowed {
            return false;
        }
    }
    !(text.contains(": ")
        || text.contains(" #")
        || text.ends_with(':')
        || text.contains(['\n', '\r', '\t']))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn yaml(value: Value) -> String {
        let mut out = String::new();
        write_document(&mut out, &value);
        out
    }

    #[test]
    fn writes_like_upstream_reference() {
        let value = json!({
            "kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "exists", "namespace": "ns", "resourceVersion": "194",
                         "creationTimestamp": "2026-11-25T07:07:16Z",
                         "uid": "4d654c63-4669-42e7-9417-8825e69d20d3",
                         "managedFields": [{"manager": "m", "fieldsV1": {"f:data": {".": {}}}}]},
            "data": {"a": "c"}
        });
        assert_eq!(
            yaml(value),
            "apiVersion: v1\ndata:\n  a: c\nkind: ConfigMap\nmetadata:\n  creationTimestamp: \"2026-11-25T07:07:16Z\"\n  managedFields:\n  - fieldsV1:\n      f:data:\n        .: {}\n    manager: m\n  name: exists\n  namespace: ns\n  resourceVersion: \"194\"\n  uid: 4d654c63-4669-42e7-9417-8825e69d20d3\n"
        );
    }

    #[test]
    fn quotes_what_would_not_read_back_as_a_string() {
        assert_eq!(yaml(json!({"a": "true"})), "a: \"true\"\n");
        assert_eq!(yaml(json!({"a": ""})), "a: \"\"\n");
        assert_eq!(yaml(json!({"a": "x: y"})), "a: 'x: y'\n");
        assert_eq!(yaml(json!({"a": "1.5"})), "a: \"1.5\"\n");
        assert_eq!(yaml(json!({"a": null, "b": []})), "a: null\nb: []\n");
        assert_eq!(yaml(json!({"a": "l1\nl2\n"})), "a: |\n  l1\n  l2\n");
        assert_eq!(yaml(json!({"a": "l1\nl2"})), "a: |-\n  l1\n  l2\n");
    }
}
