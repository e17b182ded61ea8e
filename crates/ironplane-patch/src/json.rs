//! Reading patch bodies the way upstream's decoder reads them (`sigs.k8s.io/json`, Kubernetes'
//! fork of Go's `encoding/json`), so that malformed bodies fail with the same words, and Go's
//! formatting of decoded values (`%v`, `%s`, type names) for the texts of strategic merge patch
//! errors.
//!
//! The decoder follows Go where a client can see the difference: its syntax error messages
//! (`invalid character '}' after object key`, `unexpected end of JSON input`), invalid UTF-8 and
//! lone surrogates turned into U+FFFD instead of rejected, integers kept as int64 when they fit
//! and read as float64 otherwise, numbers beyond float64 reported as type errors, and duplicate
//! keys collected as strict-decoding errors (`duplicate field "a.b"`) while the last value wins.
//! Unlike Go it stops at [`MAX_DEPTH`] levels of nesting, with Go's wording for that limit.

use ironplane_apimachinery::field::{go_format_float, go_quote};
use serde_json::{Map, Number, Value};

use crate::MAX_DEPTH;

/// One step of the path to a value, for strict-decoding error texts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// Render a path as upstream's strict errors do: `a.b[0].c`, `[0].op`.
pub(crate) fn path_text(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Step::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// A decoded body.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// The value (numbers that do not fit a float64 are `null` here; see `overflow`).
    pub value: Value,
    /// Strict-decoding errors (duplicate keys, and unknown JSON patch operation fields when
    /// asked for), in document order.
    pub strict_errors: Vec<String>,
    /// The first number too large for a float64: where it is and its text.
    pub overflow: Option<(Vec<Step>, String)>,
}

/// Parse a body. `json_patch_fields` names the JSON patch operation fields, so that other
/// members of an operation are reported as unknown fields, as upstream's strict decoding of
/// `[]jsonPatchOp` does.
pub(crate) fn parse(bytes: &[u8], json_patch_fields: bool) -> Result<Parsed, String> {
    let mut parser = Parser {
        bytes,
        pos: 0,
        depth: 0,
        path: Vec::new(),
        strict_errors: Vec::new(),
        overflow: None,
        json_patch_fields,
    };
    let value = parser.value()?;
    parser.skip_space();
    if let Some(&byte) = bytes.get(parser.pos) {
        return Err(invalid_character(byte, "after top-level value"));
    }
    Ok(Parsed {
        value,
        strict_errors: parser.strict_errors,
        overflow: parser.overflow,
    })
}

/// Go's text for input that ends inside a value.
const UNEXPECTED_END: &str = "unexpected end of JSON input";

/// The fields of upstream's `jsonPatchOp`.
const JSON_PATCH_FIELDS: [&str; 4] = ["op", "path", "from", "value"];

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    path: Vec<Step>,
    strict_errors: Vec<String>,
    overflow: Option<(Vec<Step>, String)>,
    json_patch_fields: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next_byte(&mut self) -> Result<u8, String> {
        let byte = self.peek().ok_or_else(|| UNEXPECTED_END.to_owned())?;
        self.pos += 1;
        Ok(byte)
    }

    /// The next byte inside a token. At the end of the input Go's scanner feeds itself a
    /// space, so a token cut short fails on `' '` (`invalid character ' ' in literal null`).
    fn token_byte(&mut self) -> u8 {
        match self.peek() {
            Some(byte) => {
                self.pos += 1;
                byte
            }
            None => b' ',
        }
    }

    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_space();
        let byte = self.peek().ok_or_else(|| UNEXPECTED_END.to_owned())?;
        match byte {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => {
                self.pos += 1;
                Ok(Value::String(self.string()?))
            }
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal("true", Value::Bool(true)),
            b'f' => self.literal("false", Value::Bool(false)),
            b'n' => self.literal("null", Value::Null),
            other => Err(invalid_character(other, "looking for beginning of value")),
        }
    }

    fn enter(&mut self, byte: u8) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(invalid_character(byte, "exceeded max depth"));
        }
        self.pos += 1;
        Ok(())
    }

    fn object(&mut self) -> Result<Value, String> {
        self.enter(b'{')?;
        let mut map = Map::new();
        let operation = self.json_patch_fields
            && self.path.len() == 1
            && matches!(self.path.first(), Some(Step::Index(_)));
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.skip_space();
            match self.next_byte()? {
                b'"' => {}
                other => {
                    return Err(invalid_character(
                        other,
                        "looking for beginning of object key string",
                    ));
                }
            }
            let key = self.string()?;
            self.skip_space();
            match self.next_byte()? {
                b':' => {}
                other => return Err(invalid_character(other, "after object key")),
            }
            self.path.push(Step::Key(key));
            if operation && !JSON_PATCH_FIELDS.contains(&self.current_key()) {
                self.strict_errors.push(format!(
                    "unknown field {}",
                    go_quote(&path_text(&self.path))
                ));
            }
            let value = self.value()?;
            let key = match self.path.pop() {
                Some(Step::Key(key)) => key,
                _ => String::new(),
            };
            if map.contains_key(&key) {
                let mut duplicate = self.path.clone();
                duplicate.push(Step::Key(key.clone()));
                self.strict_errors.push(format!(
                    "duplicate field {}",
                    go_quote(&path_text(&duplicate))
                ));
            }
            map.insert(key, value);
            self.skip_space();
            match self.next_byte()? {
                b',' => {}
                b'}' => break,
                other => return Err(invalid_character(other, "after object key:value pair")),
            }
        }
        self.depth -= 1;
        Ok(Value::Object(map))
    }

    fn current_key(&self) -> &str {
        match self.path.last() {
            Some(Step::Key(key)) => key,
            _ => "",
        }
    }

    fn array(&mut self) -> Result<Value, String> {
        self.enter(b'[')?;
        let mut items = Vec::new();
        self.skip_space();
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.path.push(Step::Index(items.len()));
            let item = self.value()?;
            self.path.pop();
            items.push(item);
            self.skip_space();
            match self.next_byte()? {
                b',' => {}
                b']' => break,
                other => return Err(invalid_character(other, "after array element")),
            }
        }
        self.depth -= 1;
        Ok(Value::Array(items))
    }

    /// The rest of a string after its opening quote.
    fn string(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            let byte = self.next_byte()?;
            match byte {
                b'"' => return Ok(out),
                b'\\' => self.escape(&mut out)?,
                0..=0x1f => return Err(invalid_character(byte, "in string literal")),
                0x20..=0x7f => out.push(char::from(byte)),
                _ => {
                    // Go decodes one rune at a time and turns each invalid byte into U+FFFD.
                    let start = self.pos - 1;
                    match first_char(&self.bytes[start..]) {
                        Some(ch) => {
                            out.push(ch);
                            self.pos = start + ch.len_utf8();
                        }
                        None => out.push('\u{fffd}'),
                    }
                }
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), String> {
        let byte = self.token_byte();
        let ch = match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                if (0xD800..0xE000).contains(&unit) {
                    // A surrogate: Go pairs it with a following `\u` low surrogate if there is
                    // one, and otherwise writes U+FFFD and leaves what follows alone.
                    self.low_surrogate_after(unit).unwrap_or('\u{fffd}')
                } else {
                    char::from_u32(unit).unwrap_or('\u{fffd}')
                }
            }
            other => return Err(invalid_character(other, "in string escape code")),
        };
        out.push(ch);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut unit = 0;
        for _ in 0..4 {
            let byte = self.token_byte();
            let digit = char::from(byte)
                .to_digit(16)
                .ok_or_else(|| invalid_character(byte, "in \\u hexadecimal character escape"))?;
            unit = unit * 16 + digit;
        }
        Ok(unit)
    }

    /// If `high` is a high surrogate followed by a well-formed `\u` low surrogate, consume that
    /// and return the pair's character.
    fn low_surrogate_after(&mut self, high: u32) -> Option<char> {
        if !(0xD800..0xDC00).contains(&high) {
            return None;
        }
        let rest = self.bytes.get(self.pos..self.pos + 6)?;
        if rest[0] != b'\\' || rest[1] != b'u' {
            return None;
        }
        let text = std::str::from_utf8(&rest[2..]).ok()?;
        let low = u32::from_str_radix(text, 16).ok()?;
        if !(0xDC00..0xE000).contains(&low) {
            return None;
        }
        self.pos += 6;
        char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
            match self.peek() {
                Some(b'0'..=b'9') => {}
                other => {
                    return Err(invalid_character(
                        other.unwrap_or(b' '),
                        "in numeric literal",
                    ));
                }
            }
        }
        if self.peek() == Some(b'0') {
            self.pos += 1;
        } else {
            self.digits();
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            integer = false;
            self.pos += 1;
            match self.peek() {
                Some(b'0'..=b'9') => self.digits(),
                other => {
                    return Err(invalid_character(
                        other.unwrap_or(b' '),
                        "after decimal point in numeric literal",
                    ));
                }
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            integer = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            match self.peek() {
                Some(b'0'..=b'9') => self.digits(),
                other => {
                    return Err(invalid_character(
                        other.unwrap_or(b' '),
                        "in exponent of numeric literal",
                    ));
                }
            }
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or("0");
        if integer && let Ok(int) = text.parse::<i64>() {
            return Ok(Value::Number(int.into()));
        }
        match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(number) => Ok(Value::Number(number)),
            None => {
                if self.overflow.is_none() {
                    self.overflow = Some((self.path.clone(), text.to_owned()));
                }
                Ok(Value::Null)
            }
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &'static str, value: Value) -> Result<Value, String> {
        for expected in word.bytes() {
            let byte = self.token_byte();
            if byte != expected {
                return Err(invalid_character(
                    byte,
                    &format!("in literal {word} (expecting {})", quote_byte(expected)),
                ));
            }
        }
        Ok(value)
    }
}

/// The first character of `bytes` if it starts with valid UTF-8.
fn first_char(bytes: &[u8]) -> Option<char> {
    let head = &bytes[..bytes.len().min(4)];
    let valid = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(err) => std::str::from_utf8(&head[..err.valid_up_to()]).unwrap_or(""),
    };
    valid.chars().next()
}

/// Go's syntax error text: `invalid character 'x' <context>`.
fn invalid_character(byte: u8, context: &str) -> String {
    format!("invalid character {} {context}", quote_byte(byte))
}

/// Go's `quoteChar`: a byte in single quotes, escaped as `strconv.Quote` escapes the rune of
/// the same number.
fn quote_byte(byte: u8) -> String {
    match byte {
        b'\'' => "'\\''".to_owned(),
        b'"' => "'\"'".to_owned(),
        _ => {
            let quoted = go_quote(&char::from(byte).to_string());
            let inner = quoted
                .strip_prefix('"')
                .and_then(|rest| rest.strip_suffix('"'))
                .unwrap_or(&quoted);
            format!("'{inner}'")
        }
    }
}

/// The word Go's type errors use for a JSON value (`cannot unmarshal array into …`).
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's dynamic type of a decoded JSON value, as `reflect.TypeOf` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GoType {
    /// `nil`.
    Nil,
    /// `bool`.
    Bool,
    /// `int64`: integers that fit.
    Int64,
    /// `float64`: all other numbers.
    Float64,
    /// `string`.
    String,
    /// `[]interface {}`.
    Slice,
    /// `map[string]interface {}`.
    Map,
}

impl GoType {
    /// The type of a value.
    pub(crate) fn of(value: &Value) -> GoType {
        match value {
            Value::Null => GoType::Nil,
            Value::Bool(_) => GoType::Bool,
            Value::Number(number) if number.is_i64() => GoType::Int64,
            Value::Number(_) => GoType::Float64,
            Value::String(_) => GoType::String,
            Value::Array(_) => GoType::Slice,
            Value::Object(_) => GoType::Map,
        }
    }

    /// Go's name for the type (`%s` of its `reflect.Type`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            GoType::Nil => "<nil>",
            GoType::Bool => "bool",
            GoType::Int64 => "int64",
            GoType::Float64 => "float64",
            GoType::String => "string",
            GoType::Slice => "[]interface {}",
            GoType::Map => "map[string]interface {}",
        }
    }
}

/// Go's `==` on two decoded values: same dynamic type and value. (Go panics comparing maps
/// or slices; they compare structurally here.)
pub(crate) fn go_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => match (GoType::of(left), GoType::of(right)) {
            (GoType::Int64, GoType::Int64) => a.as_i64() == b.as_i64(),
            (GoType::Float64, GoType::Float64) => a.as_f64() == b.as_f64(),
            _ => false,
        },
        _ => left == right,
    }
}

/// Go's `%v` of a decoded value: `map[a:1 b:[x y]]`, `<nil>`, floats as `strconv` writes them.
#[cfg(test)]
pub(crate) fn go_v(value: &Value) -> String {
    let mut out = String::new();
    write_go(&mut out, value, false);
    out
}

/// Go's `%v` of a list of values: `[a b]`.
pub(crate) fn go_v_list(items: &[Value]) -> String {
    let mut out = String::new();
    write_go_list(&mut out, items, false);
    out
}

/// Go's `%v` of a map.
pub(crate) fn go_v_map(map: &Map<String, Value>) -> String {
    let mut out = String::new();
    write_go_map(&mut out, map, false);
    out
}

/// Go's `%s` of a decoded value: strings as they are, other scalars as `%!s(int64=1)`.
pub(crate) fn go_s(value: &Value) -> String {
    let mut out = String::new();
    write_go(&mut out, value, true);
    out
}

fn write_go(out: &mut String, value: &Value, verb_s: bool) {
    let scalar = match value {
        Value::String(text) => {
            out.push_str(text);
            return;
        }
        Value::Array(items) => {
            write_go_list(out, items, verb_s);
            return;
        }
        Value::Object(map) => {
            write_go_map(out, map, verb_s);
            return;
        }
        Value::Null => "<nil>".to_owned(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => match number.as_i64() {
            Some(int) => int.to_string(),
            None => go_format_float(number.as_f64().unwrap_or(0.0)),
        },
    };
    if !verb_s {
        out.push_str(&scalar);
    } else if value.is_null() {
        out.push_str("%!s(<nil>)");
    } else {
        out.push_str(&format!("%!s({}={scalar})", GoType::of(value).name()));
    }
}

fn write_go_list(out: &mut String, items: &[Value], verb_s: bool) {
    out.push('[');
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        write_go(out, item, verb_s);
    }
    out.push(']');
}

fn write_go_map(out: &mut String, map: &Map<String, Value>, verb_s: bool) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    out.push_str("map[");
    for (index, (key, value)) in entries.into_iter().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        out.push_str(key);
        out.push(':');
        write_go(out, value, verb_s);
    }
    out.push(']');
}

/// How many levels of objects and arrays a value has (a scalar has none).
pub(crate) fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The length of a value encoded by Go's `encoding/json` (HTML-safe escapes included), which
/// is what upstream counts against its limit on bytes copied by JSON patch `copy` operations.
pub(crate) fn go_encoded_len(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(number) => number.to_string().len(),
        Value::String(text) => go_string_len(text),
        Value::Array(items) => {
            2 + items.iter().map(go_encoded_len).sum::<usize>() + items.len().saturating_sub(1)
        }
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(key, value)| go_string_len(key) + 1 + go_encoded_len(value))
                .sum::<usize>()
                + map.len().saturating_sub(1)
        }
    }
}

fn go_string_len(text: &str) -> usize {
    2 + text
        .chars()
        .map(|ch| match ch {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => 6,
            ch if (ch as u32) < 0x20 => 6,
            ch => ch.len_utf8(),
        })
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error(input: &[u8]) -> String {
        parse(input, false).unwrap_err()
    }

    #[test]
    fn syntax_errors_read_like_go() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "unexpected end of JSON input"),
            (b"   ", "unexpected end of JSON input"),
            (b"{", "unexpected end of JSON input"),
            (b"{\"a\":", "unexpected end of JSON input"),
            (b"\"abc", "unexpected end of JSON input"),
            (b"x", "invalid character 'x' looking for beginning of value"),
            (
                b"'",
                "invalid character '\\'' looking for beginning of value",
            ),
            (
                b"\x7f",
                "invalid character '\\x7f' looking for beginning of value",
            ),
            (
                b"\xc3\xa9",
                "invalid character '\u{c3}' looking for beginning of value",
            ),
            (
                b"\x80",
                "invalid character '\\u0080' looking for beginning of value",
            ),
            (b"{\"a\":1}x", "invalid character 'x' after top-level value"),
            (
                b"{\"a\":1 \"b\"}",
                "invalid character '\"' after object key:value pair",
            ),
            (b"{\"a\" 1}", "invalid character '1' after object key"),
            (
                b"{,}",
                "invalid character ',' looking for beginning of object key string",
            ),
            (
                b"{\"a\":1,}",
                "invalid character '}' looking for beginning of object key string",
            ),
            (
                b"[1,]",
                "invalid character ']' looking for beginning of value",
            ),
            (b"[1 2]", "invalid character '2' after array element"),
            (
                b"{\"a\":tru}",
                "invalid character '}' in literal true (expecting 'e')",
            ),
            (
                b"{\"a\":nul}",
                "invalid character '}' in literal null (expecting 'l')",
            ),
            (
                b"{\"a\":fx}",
                "invalid character 'x' in literal false (expecting 'a')",
            ),
            (b"{\"a\":-}", "invalid character '}' in numeric literal"),
            (
                b"{\"a\":1.}",
                "invalid character '}' after decimal point in numeric literal",
            ),
            (
                b"{\"a\":1e}",
                "invalid character '}' in exponent of numeric literal",
            ),
            (
                b"{\"a\":01}",
                "invalid character '1' after object key:value pair",
            ),
            (
                b"{\"a\":\"\\x\"}",
                "invalid character 'x' in string escape code",
            ),
            (
                b"{\"a\":\"\\u12g4\"}",
                "invalid character 'g' in \\u hexadecimal character escape",
            ),
            (
                b"{\"a\":\"\x01\"}",
                "invalid character '\\x01' in string literal",
            ),
            // Go's scanner ends the input with a space, which cuts tokens short.
            (
                b"{\"a\":nu",
                "invalid character ' ' in literal null (expecting 'l')",
            ),
            (
                b"[tr",
                "invalid character ' ' in literal true (expecting 'u')",
            ),
            (b"-", "invalid character ' ' in numeric literal"),
            (
                b"[1.",
                "invalid character ' ' after decimal point in numeric literal",
            ),
            (
                b"[1e+",
                "invalid character ' ' in exponent of numeric literal",
            ),
            (b"[\"\\", "invalid character ' ' in string escape code"),
            (
                b"[\"\\u12",
                "invalid character ' ' in \\u hexadecimal character escape",
            ),
            (b"[\"ab", "unexpected end of JSON input"),
            (b"[1", "unexpected end of JSON input"),
            (b"[1,", "unexpected end of JSON input"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                &error(input),
                expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn limits_nesting_with_gos_words() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(
            error(deep.as_bytes()),
            "invalid character '[' exceeded max depth"
        );
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes(), false).is_ok());
    }

    #[test]
    fn decodes_values_like_go() {
        let cases: &[(&[u8], Value)] = &[
            (b"{\"a\":\"\\ud800x\"}", json!({"a": "\u{fffd}x"})),
            (b"{\"a\":\"\\ud83d\\ude00\"}", json!({"a": "\u{1f600}"})),
            (b"{\"a\":\"\xff\xfe\"}", json!({"a": "\u{fffd}\u{fffd}"})),
            (b"{\"a\":\"\xe2\x82\"}", json!({"a": "\u{fffd}\u{fffd}"})),
            (b"{\"a\":\"caf\xc3\xa9\"}", json!({"a": "caf\u{e9}"})),
            (b"{\"a\":\"\\u00e9\\n\\/\"}", json!({"a": "\u{e9}\n/"})),
            (
                b"[1, -0, 1.5, 1e2, 9223372036854775808]",
                json!([1, 0, 1.5, 100.0, 9223372036854775808.0]),
            ),
            (b" null ", Value::Null),
        ];
        for (input, expected) in cases {
            let parsed = parse(input, false).unwrap();
            assert_eq!(
                &parsed.value,
                expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn records_numbers_beyond_float64() {
        let parsed = parse(b"{\"a\":[1, 1e400]}", false).unwrap();
        let (path, text) = parsed.overflow.unwrap();
        assert_eq!(path_text(&path), "a[1]");
        assert_eq!(text, "1e400");
    }

    #[test]
    fn collects_strict_errors_in_document_order() {
        let parsed = parse(
            b"{\"a\":[{\"b\":1,\"b\":2}],\"c\":{\"d.e\":{\"f\":1,\"f\":1}},\"a\":3}",
            false,
        )
        .unwrap();
        assert_eq!(
            parsed.strict_errors,
            [
                "duplicate field \"a[0].b\"",
                "duplicate field \"c.d.e.f\"",
                "duplicate field \"a\""
            ]
        );
        assert_eq!(parsed.value, json!({"a": 3, "c": {"d.e": {"f": 1}}}));

        let parsed = parse(
            b"[{\"op\":\"add\",\"path\":\"/a\",\"value\":{\"x\":1,\"x\":2},\"Op\":3}]",
            true,
        )
        .unwrap();
        assert_eq!(
            parsed.strict_errors,
            [
                "duplicate field \"[0].value.x\"",
                "unknown field \"[0].Op\""
            ]
        );
    }

    #[test]
    fn formats_values_like_gos_fmt() {
        let value = json!({"b": [1, 1.5, "x", null, true], "a": {"z": 1e6}});
        assert_eq!(go_v(&value), "map[a:map[z:1e+06] b:[1 1.5 x <nil> true]]");
        assert_eq!(go_s(&json!("merge")), "merge");
        assert_eq!(go_s(&json!(1)), "%!s(int64=1)");
        assert_eq!(go_s(&json!(1.5)), "%!s(float64=1.5)");
        assert_eq!(go_s(&json!(null)), "%!s(<nil>)");
        assert_eq!(go_s(&json!({"a": false})), "map[a:%!s(bool=false)]");
    }

    #[test]
    fn compares_like_go() {
        assert!(go_equal(&json!(1), &json!(1)));
        assert!(!go_equal(&json!(1), &json!(1.0)));
        assert!(go_equal(&json!("a"), &json!("a")));
        assert!(!go_equal(&json!("1"), &json!(1)));
        assert!(go_equal(&json!(null), &json!(null)));
    }

    #[test]
    fn measures_go_encoding() {
        let cases = [
            (
                json!({"a": [1, "x<y"], "b": null}),
                r#"{"a":[1,"x\u003cy"],"b":null}"#.len(),
            ),
            (json!("tab\there"), r#""tab\there""#.len()),
            (json!(false), 5),
            (json!([]), 2),
        ];
        for (value, expected) in cases {
            assert_eq!(go_encoded_len(&value), expected, "{value}");
        }
    }
}
