//! Field paths and field-level validation errors, after upstream
//! `k8s.io/apimachinery/pkg/util/validation/field` (Kubernetes 1.32).
//!
//! An [`Error`] renders byte for byte like upstream's `*field.Error`: `Display` gives
//! `Error()` (`metadata.name: Invalid value: "Foo": ...`) and [`Error::error_body`] gives
//! `ErrorBody()`, the text that goes into a Status cause's `message`. Bad values keep the
//! distinction upstream makes by Go type (quoted strings, bare numbers, `%#v` dumps), see
//! [`BadValue`]. [`aggregate_message`] reproduces `ErrorList.ToAggregate().Error()`, the text
//! after `is invalid: ` in an Invalid Status.

use std::fmt;

/// A field path such as `metadata.labels[app]` or `spec.containers[0].image`
/// (upstream `field.Path`).
///
/// Built with [`Path::new`] and extended with [`Path::child`], [`Path::index`] and
/// [`Path::key`]; `Display` renders it like upstream's `Path.String()`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Path {
    /// Segments from the root outwards.
    segments: Vec<Segment>,
}

/// One step of a [`Path`]: a named field, or a subscript (list index or map key).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Segment {
    Name(String),
    Subscript(String),
}

impl Path {
    /// A path of one field name (upstream `field.NewPath(name)`).
    pub fn new(name: &str) -> Path {
        Path {
            segments: vec![Segment::Name(name.to_owned())],
        }
    }

    /// A path of several field names (upstream `field.NewPath(first, rest...)`).
    pub fn from_names(first: &str, rest: &[&str]) -> Path {
        let mut path = Path::new(first);
        for name in rest {
            path = path.child(name);
        }
        path
    }

    /// This path extended by a field name (upstream `Path.Child`).
    pub fn child(&self, name: &str) -> Path {
        let mut segments = self.segments.clone();
        segments.push(Segment::Name(name.to_owned()));
        Path { segments }
    }

    /// This path extended by a list index (upstream `Path.Index`), shown as `[3]`.
    pub fn index(&self, index: usize) -> Path {
        self.subscript(index.to_string())
    }

    /// This path extended by a map key (upstream `Path.Key`), shown as `[key]`.
    pub fn key(&self, key: &str) -> Path {
        self.subscript(key.to_owned())
    }

    fn subscript(&self, text: String) -> Path {
        let mut segments = self.segments.clone();
        segments.push(Segment::Subscript(text));
        Path { segments }
    }

    /// `parent.child(name)`, or a new path `name` when there is no parent: what upstream's
    /// `Child` does on a nil `*Path`.
    pub fn child_of(parent: Option<&Path>, name: &str) -> Path {
        match parent {
            Some(path) => path.child(name),
            None => Path::new(name),
        }
    }

    /// The text of an optional path: upstream renders a nil `*Path` as `<nil>`.
    pub fn display_opt(path: Option<&Path>) -> String {
        match path {
            Some(path) => path.to_string(),
            None => "<nil>".to_owned(),
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                // Upstream stores an empty name like a subscript, so it prints as `[]`.
                Segment::Name(name) if name.is_empty() => f.write_str("[]")?,
                Segment::Name(name) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(name)?;
                }
                Segment::Subscript(text) => write!(f, "[{text}]")?,
            }
        }
        Ok(())
    }
}

/// Why a field is invalid (upstream `field.ErrorType`).
///
/// [`ErrorType::reason`] is the machine-readable value that becomes a Status cause's `type`;
/// `Display` is the human phrase that starts the error body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// A value was looked up and not found (`FieldValueNotFound`, "Not found").
    NotFound,
    /// A required value is missing (`FieldValueRequired`, "Required value").
    Required,
    /// A value that must be unique is repeated (`FieldValueDuplicate`, "Duplicate value").
    Duplicate,
    /// A malformed value (`FieldValueInvalid`, "Invalid value").
    Invalid,
    /// A value outside an enumeration (`FieldValueNotSupported`, "Unsupported value").
    NotSupported,
    /// A well-formed value not allowed here (`FieldValueForbidden`, "Forbidden").
    Forbidden,
    /// A value that is too long (`FieldValueTooLong`, "Too long").
    TooLong,
    /// A list with too many items (`FieldValueTooMany`, "Too many").
    TooMany,
    /// A failure not caused by the input (`InternalError`, "Internal error").
    InternalError,
    /// A value of the wrong schema type (`FieldValueTypeInvalid`, "Invalid value").
    TypeInvalid,
}

impl ErrorType {
    /// The Status cause type, e.g. `FieldValueInvalid`.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::InternalError => "InternalError",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The human phrase, e.g. `Invalid value`.
    pub fn description(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid | ErrorType::TypeInvalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::InternalError => "Internal error",
        }
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// The offending value of an [`Error`], kept as the Go type upstream would have had,
/// because that type decides how the value is printed.
#[derive(Clone, Debug, PartialEq)]
pub enum BadValue {
    /// A nil value or nil pointer: printed as the quoted string `"null"`, as upstream does.
    Null,
    /// No value at all: only the error type is printed (upstream's `omitValue`).
    Omitted,
    /// A string: printed quoted like Go's `%q`.
    String(String),
    /// An integer: printed bare.
    Int(i64),
    /// A floating-point number: printed like Go's `%v` (`1.5`, `1e+06`).
    Float(f64),
    /// A boolean: printed bare.
    Bool(bool),
    /// Text printed as it is: what upstream prints for a `fmt.Stringer` or with `%#v`
    /// (e.g. `[]string{"a", "b"}`). Build it with the helpers on this type.
    Raw(String),
}

impl BadValue {
    /// A Go `[]string` printed with `%#v`: `[]string{"a", "b"}`; `None` is a nil slice,
    /// `[]string(nil)`.
    pub fn string_slice(values: Option<&[String]>) -> BadValue {
        BadValue::Raw(go_string_slice(values))
    }

    /// A JSON value as upstream prints the corresponding unstructured Go value: strings
    /// quoted, numbers and booleans bare, `null` as `"null"`, objects and arrays with `%#v`
    /// (`map[string]interface {}{"a":"b"}`, `[]interface {}{1, "x"}`).
    pub fn from_json(value: &serde_json::Value) -> BadValue {
        match value {
            serde_json::Value::Null => BadValue::Null,
            serde_json::Value::Bool(b) => BadValue::Bool(*b),
            serde_json::Value::Number(n) => json_number(n),
            serde_json::Value::String(s) => BadValue::String(s.clone()),
            other => BadValue::Raw(go_sharp_v_json(other)),
        }
    }

    /// The rendering of this value after the type phrase, or `None` when omitted.
    fn render(&self) -> Option<String> {
        match self {
            BadValue::Null => Some(go_quote("null")),
            BadValue::Omitted => None,
            BadValue::String(s) => Some(go_quote(s)),
            BadValue::Int(i) => Some(i.to_string()),
            BadValue::Float(x) => Some(go_format_float(*x)),
            BadValue::Bool(b) => Some(b.to_string()),
            BadValue::Raw(text) => Some(text.clone()),
        }
    }
}

fn json_number(n: &serde_json::Number) -> BadValue {
    if let Some(i) = n.as_i64() {
        BadValue::Int(i)
    } else if let Some(x) = n.as_f64() {
        BadValue::Float(x)
    } else {
        BadValue::Raw(n.to_string())
    }
}

impl From<&str> for BadValue {
    fn from(value: &str) -> Self {
        BadValue::String(value.to_owned())
    }
}

impl From<String> for BadValue {
    fn from(value: String) -> Self {
        BadValue::String(value)
    }
}

impl From<&String> for BadValue {
    fn from(value: &String) -> Self {
        BadValue::String(value.clone())
    }
}

impl From<i64> for BadValue {
    fn from(value: i64) -> Self {
        BadValue::Int(value)
    }
}

impl From<i32> for BadValue {
    fn from(value: i32) -> Self {
        BadValue::Int(i64::from(value))
    }
}

impl From<bool> for BadValue {
    fn from(value: bool) -> Self {
        BadValue::Bool(value)
    }
}

impl From<f64> for BadValue {
    fn from(value: f64) -> Self {
        BadValue::Float(value)
    }
}

impl From<&serde_json::Value> for BadValue {
    fn from(value: &serde_json::Value) -> Self {
        BadValue::from_json(value)
    }
}

/// An optional value is a Go pointer: `None` prints like nil (`"null"`).
impl<T: Into<BadValue>> From<Option<T>> for BadValue {
    fn from(value: Option<T>) -> Self {
        match value {
            Some(v) => v.into(),
            None => BadValue::Null,
        }
    }
}

/// A field-level validation error (upstream `*field.Error`).
///
/// `Display` is upstream's `Error()`: `<field>: <body>`.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    /// What kind of problem this is.
    pub error_type: ErrorType,
    /// The field path as text, e.g. `metadata.name`.
    pub field: String,
    /// The offending value.
    pub bad_value: BadValue,
    /// Extra explanation, appended after `: ` when not empty.
    pub detail: String,
}

impl std::error::Error for Error {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.error_body())
    }
}

impl Error {
    fn build(error_type: ErrorType, path: &Path, bad_value: BadValue, detail: String) -> Error {
        Error {
            error_type,
            field: path.to_string(),
            bad_value,
            detail,
        }
    }

    /// The message without the field name (upstream `ErrorBody()`), e.g.
    /// `Invalid value: "Foo": a lowercase RFC 1123 ...`.
    pub fn error_body(&self) -> String {
        let mut body = match self.error_type {
            ErrorType::Required
            | ErrorType::Forbidden
            | ErrorType::TooLong
            | ErrorType::InternalError => self.error_type.description().to_owned(),
            _ => match self.bad_value.render() {
                Some(value) => format!("{}: {}", self.error_type, value),
                None => self.error_type.description().to_owned(),
            },
        };
        if !self.detail.is_empty() {
            body.push_str(": ");
            body.push_str(&self.detail);
        }
        body
    }

    /// What goes into a Status cause's `message`: upstream uses `ErrorBody()`.
    pub fn message_without_field(&self) -> String {
        self.error_body()
    }

    /// A value of the wrong type (upstream `field.TypeInvalid`).
    pub fn type_invalid(path: &Path, value: impl Into<BadValue>, detail: &str) -> Error {
        Error::build(
            ErrorType::TypeInvalid,
            path,
            value.into(),
            detail.to_owned(),
        )
    }

    /// A value that was not found (upstream `field.NotFound`).
    pub fn not_found(path: &Path, value: impl Into<BadValue>) -> Error {
        Error::build(ErrorType::NotFound, path, value.into(), String::new())
    }

    /// A missing required value (upstream `field.Required`): `Required value[: detail]`.
    pub fn required(path: &Path, detail: &str) -> Error {
        Error::build(
            ErrorType::Required,
            path,
            BadValue::String(String::new()),
            detail.to_owned(),
        )
    }

    /// A repeated value (upstream `field.Duplicate`): `Duplicate value: "x"`.
    pub fn duplicate(path: &Path, value: impl Into<BadValue>) -> Error {
        Error::build(ErrorType::Duplicate, path, value.into(), String::new())
    }

    /// A malformed value (upstream `field.Invalid`): `Invalid value: "x": detail`.
    pub fn invalid(path: &Path, value: impl Into<BadValue>, detail: &str) -> Error {
        Error::build(ErrorType::Invalid, path, value.into(), detail.to_owned())
    }

    /// A value outside an enumeration (upstream `field.NotSupported`):
    /// `Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported<S: AsRef<str>>(
        path: &Path,
        value: impl Into<BadValue>,
        valid_values: &[S],
    ) -> Error {
        let detail = if valid_values.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid_values.iter().map(|v| go_quote(v.as_ref())).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Error::build(ErrorType::NotSupported, path, value.into(), detail)
    }

    /// A value not allowed here (upstream `field.Forbidden`): `Forbidden: detail`.
    pub fn forbidden(path: &Path, detail: &str) -> Error {
        Error::build(
            ErrorType::Forbidden,
            path,
            BadValue::String(String::new()),
            detail.to_owned(),
        )
    }

    /// A value that is too long (upstream 1.32 `field.TooLong`; the value is never shown):
    /// `Too long: may not be more than 63 bytes`, or `Too long: value is too long` when
    /// `max_length` is negative.
    pub fn too_long(path: &Path, max_length: i64) -> Error {
        let detail = if max_length >= 0 {
            format!("may not be more than {max_length} bytes")
        } else {
            "value is too long".to_owned()
        };
        Error::build(
            ErrorType::TooLong,
            path,
            BadValue::String("<value omitted>".to_owned()),
            detail,
        )
    }

    /// A list with too many items (upstream `field.TooMany`):
    /// `Too many: 5: must have at most 3 items`. A negative `actual` omits the count and a
    /// negative `max` gives `has too many items`.
    pub fn too_many(path: &Path, actual: i64, max: i64) -> Error {
        let detail = if max >= 0 {
            format!("must have at most {max} items")
        } else {
            "has too many items".to_owned()
        };
        let value = if actual >= 0 {
            BadValue::Int(actual)
        } else {
            BadValue::Omitted
        };
        Error::build(ErrorType::TooMany, path, value, detail)
    }

    /// A failure not caused by the input (upstream `field.InternalError`):
    /// `Internal error: <message>`.
    pub fn internal(path: &Path, message: &str) -> Error {
        Error::build(
            ErrorType::InternalError,
            path,
            BadValue::Null,
            message.to_owned(),
        )
    }
}

/// A list of field errors (upstream `field.ErrorList`).
pub type ErrorList = Vec<Error>;

/// Upstream `ErrorList.ToAggregate().Error()`: `None` for no errors; otherwise the
/// distinct messages (first occurrence kept, order preserved), a single one as it is and
/// several as `[a, b]`.
pub fn aggregate_message(errors: &[Error]) -> Option<String> {
    let messages: Vec<String> = errors.iter().map(Error::to_string).collect();
    aggregate_strings(&messages)
}

/// Upstream's `utilerrors.NewAggregate(errs).Error()` over plain messages: `None` when
/// empty, the message itself when there is one distinct message, `[a, b]` otherwise.
pub fn aggregate_strings(messages: &[String]) -> Option<String> {
    let mut distinct: Vec<&str> = Vec::new();
    for message in messages {
        if !distinct.contains(&message.as_str()) {
            distinct.push(message);
        }
    }
    match distinct.len() {
        0 => None,
        1 => Some(distinct.concat()),
        _ => Some(format!("[{}]", distinct.join(", "))),
    }
}

/// Quote a string the way Go's `strconv.Quote` (and `%q`) does: double quotes, `\"` and
/// `\\`, `\a \b \f \n \r \t \v`, `\xNN` for other control bytes, `\uNNNN`/`\UNNNNNNNN` for
/// non-printable runes, printable Unicode kept as it is.
///
/// Go's printability table is approximated: control, format, separator and private-use
/// characters and the large unassigned blocks are escaped; scattered unassigned code points
/// inside assigned blocks are treated as printable.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if go_is_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Non-printable ranges above ASCII: Go's categories Cc, Cf, Co, Cs and Z (without U+0020),
/// and the largest unassigned blocks.
const NON_PRINTABLE: &[(u32, u32)] = &[
    (0x0080, 0x00A0),
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x1680, 0x1680),
    (0x180E, 0x180E),
    (0x2000, 0x200F),
    (0x2028, 0x202F),
    (0x205F, 0x2064),
    (0x2066, 0x206F),
    (0x3000, 0x3000),
    (0xD800, 0xF8FF),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    // The large unassigned stretches of Unicode 15 (Go 1.23's tables).
    (0x2FA20, 0x2FFFF),
    (0x323B0, 0xDFFFF),
    (0xE0001, 0xE00FF),
    (0xE01F0, 0xEFFFF),
    (0xF0000, 0xFFFFD),
    (0x100000, 0x10FFFD),
];

/// Go's `unicode.IsPrint`, approximated as described on [`go_quote`].
pub fn go_is_print(c: char) -> bool {
    let code = c as u32;
    if code < 0x80 {
        return (0x20..0x7f).contains(&code);
    }
    // Noncharacters U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF are unassigned in Go's tables.
    if (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE {
        return false;
    }
    !NON_PRINTABLE
        .iter()
        .any(|&(lo, hi)| (lo..=hi).contains(&code))
}

/// Format a float the way Go's `%v` does (`strconv.FormatFloat(x, 'g', -1, 64)`): the
/// shortest digits that round-trip, in exponent form (`1e+06`, `1.5e-05`) when the decimal
/// exponent is below -4 or at least 6, else plainly (`123456`, `0.001`).
pub fn go_format_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. "-1.2345e6".
    let sci = format!("{:e}", x);
    let (mantissa, exp_text) = match sci.split_once('e') {
        Some(parts) => parts,
        None => return sci,
    };
    let exp: i64 = exp_text.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    // Shortest formatting switches to exponent form below 1e-4 and from 1e+06 on.
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(digits.len().min(1));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = (exp + 1) as usize;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            let (int_part, frac_part) = digits.split_at(int_len);
            out.push_str(int_part);
            out.push('.');
            out.push_str(frac_part);
        }
    }
    out
}

/// Go's `%#v` of a `[]string` (nil when `None`).
pub fn go_string_slice(values: Option<&[String]>) -> String {
    match values {
        None => "[]string(nil)".to_owned(),
        Some(values) => {
            let quoted: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
            format!("[]string{{{}}}", quoted.join(", "))
        }
    }
}

/// Go's `%#v` of an unstructured JSON value (`interface{}` holding maps, slices, strings,
/// `int64`, `float64`, `bool` or nil).
fn go_sharp_v_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "interface {}(nil)".to_owned(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) => match json_number(n) {
            BadValue::Int(i) => i.to_string(),
            BadValue::Float(x) => go_format_float(x),
            other => other.render().unwrap_or_default(),
        },
        serde_json::Value::String(s) => go_quote(s),
        serde_json::Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_sharp_v_json).collect();
            format!("[]interface {{}}{{{}}}", parts.join(", "))
        }
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    let v = map.get(k).map(go_sharp_v_json).unwrap_or_default();
                    format!("{}:{}", go_quote(k), v)
                })
                .collect();
            format!("map[string]interface {{}}{{{}}}", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Expected texts in these tables were produced by upstream apimachinery v0.32.0.

    #[test]
    fn error_texts_match_upstream() {
        let p = Path::new("metadata").child("name");
        #[rustfmt::skip]
        let cases: Vec<(Error, &str)> = vec![
            (Error::invalid(&p, "Foo", "bad name"), "metadata.name: Invalid value: \"Foo\": bad name"),
            (Error::invalid(&p, "", "empty"), "metadata.name: Invalid value: \"\": empty"),
            (Error::invalid(&p, -1i64, "must be greater than or equal to 0"), "metadata.name: Invalid value: -1: must be greater than or equal to 0"),
            (Error::invalid(&p, 7i32, ""), "metadata.name: Invalid value: 7"),
            (Error::invalid(&p, 1.5, "x"), "metadata.name: Invalid value: 1.5: x"),
            (Error::invalid(&p, 1e6, "x"), "metadata.name: Invalid value: 1e+06: x"),
            (Error::invalid(&p, 123456.0, "x"), "metadata.name: Invalid value: 123456: x"),
            (Error::invalid(&p, 0.0001, "x"), "metadata.name: Invalid value: 0.0001: x"),
            (Error::invalid(&p, 0.00001, "x"), "metadata.name: Invalid value: 1e-05: x"),
            (Error::invalid(&p, -2.5e-7, "x"), "metadata.name: Invalid value: -2.5e-07: x"),
            (Error::invalid(&p, 1e21, "x"), "metadata.name: Invalid value: 1e+21: x"),
            (Error::invalid(&p, 100.25, "x"), "metadata.name: Invalid value: 100.25: x"),
            (Error::invalid(&p, true, "x"), "metadata.name: Invalid value: true: x"),
            (Error::invalid(&p, BadValue::Null, "x"), "metadata.name: Invalid value: \"null\": x"),
            (Error::invalid(&p, None::<i64>, "x"), "metadata.name: Invalid value: \"null\": x"),
            (Error::invalid(&p, "a\"b\\c\n\t\u{1}\u{7f} é\u{a0}\u{200b}😀\u{10ffff}\u{7}\u{8}\u{c}\r\u{b}", "x"), "metadata.name: Invalid value: \"a\\\"b\\\\c\\n\\t\\x01\\x7f é\\u00a0\\u200b😀\\U0010ffff\\a\\b\\f\\r\\v\": x"),
            (Error::invalid(&p, BadValue::string_slice(Some(&["a".to_owned(), "b".to_owned()])), "x"), "metadata.name: Invalid value: []string{\"a\", \"b\"}: x"),
            (Error::invalid(&p, BadValue::string_slice(Some(&[])), "x"), "metadata.name: Invalid value: []string{}: x"),
            (Error::invalid(&p, BadValue::string_slice(None), "x"), "metadata.name: Invalid value: []string(nil): x"),
            (Error::invalid(&p, &json!({"b": 1, "a": "x", "c": [1, 2.5, null, true, {"z": {}}]}), "x"), "metadata.name: Invalid value: map[string]interface {}{\"a\":\"x\", \"b\":1, \"c\":[]interface {}{1, 2.5, interface {}(nil), true, map[string]interface {}{\"z\":map[string]interface {}{}}}}: x"),
            (Error::invalid(&p, &json!([]), "x"), "metadata.name: Invalid value: []interface {}{}: x"),
            (Error::required(&p, ""), "metadata.name: Required value"),
            (Error::required(&p, "name or generateName is required"), "metadata.name: Required value: name or generateName is required"),
            (Error::forbidden(&p, "not allowed on this type"), "metadata.name: Forbidden: not allowed on this type"),
            (Error::too_long(&p, 63), "metadata.name: Too long: may not be more than 63 bytes"),
            (Error::too_long(&p, -1), "metadata.name: Too long: value is too long"),
            (Error::too_long(&p, 262144), "metadata.name: Too long: may not be more than 262144 bytes"),
            (Error::too_many(&p, 5, 3), "metadata.name: Too many: 5: must have at most 3 items"),
            (Error::too_many(&p, -1, 3), "metadata.name: Too many: must have at most 3 items"),
            (Error::too_many(&p, 5, -1), "metadata.name: Too many: 5: has too many items"),
            (Error::not_supported(&p, "x", &["a", "b"]), "metadata.name: Unsupported value: \"x\": supported values: \"a\", \"b\""),
            (Error::not_supported::<&str>(&p, "x", &[]), "metadata.name: Unsupported value: \"x\""),
            (Error::not_supported(&p, "x", &["", "q\"uote"]), "metadata.name: Unsupported value: \"x\": supported values: \"\", \"q\\\"uote\""),
            (Error::duplicate(&p, "x"), "metadata.name: Duplicate value: \"x\""),
            (Error::duplicate(&p, 3i64), "metadata.name: Duplicate value: 3"),
            (Error::not_found(&p, "x"), "metadata.name: Not found: \"x\""),
            (Error::internal(&p, "boom"), "metadata.name: Internal error: boom"),
            (Error::type_invalid(&p, "x", "must be a string"), "metadata.name: Invalid value: \"x\": must be a string"),
        ];
        for (i, (err, want)) in cases.iter().enumerate() {
            assert_eq!(err.to_string(), *want, "case {i}");
            let body = want.strip_prefix("metadata.name: ").unwrap();
            assert_eq!(err.error_body(), body, "case {i}");
            assert_eq!(err.message_without_field(), body, "case {i}");
        }
    }

    #[test]
    fn paths_match_upstream() {
        #[rustfmt::skip]
        let cases: Vec<(Path, &str)> = vec![
            (Path::new("metadata"), "metadata"),
            (Path::new("metadata").child("labels").key("app"), "metadata.labels[app]"),
            (Path::new("spec").child("containers").index(0).child("image"), "spec.containers[0].image"),
            (Path::from_names("a", &["b", "c"]), "a.b.c"),
            (Path::new("").child("x"), "[].x"),
            (Path::new("data").key("a.b").key("").index(12), "data[a.b][][12]"),
            (Path::from_names("x", &["y", "z"]), "x.y.z"),
        ];
        for (path, want) in cases {
            assert_eq!(path.to_string(), want);
        }
        assert_eq!(Path::display_opt(None), "<nil>");
        assert_eq!(Path::child_of(None, "key").to_string(), "key");
        assert_eq!(
            Path::child_of(Some(&Path::new("spec")), "key").to_string(),
            "spec.key"
        );
    }

    #[test]
    fn aggregate_matches_upstream() {
        let a = Error::invalid(&Path::new("metadata").child("name"), "A", "x");
        let b = Error::required(&Path::new("spec"), "");
        #[rustfmt::skip]
        let cases: Vec<(Vec<Error>, &str)> = vec![
            (vec![a.clone()], "metadata.name: Invalid value: \"A\": x"),
            (vec![a.clone(), b.clone()], "[metadata.name: Invalid value: \"A\": x, spec: Required value]"),
            (vec![a.clone(), a.clone()], "metadata.name: Invalid value: \"A\": x"),
            (vec![a.clone(), b.clone(), a.clone()], "[metadata.name: Invalid value: \"A\": x, spec: Required value]"),
        ];
        for (list, want) in cases {
            assert_eq!(aggregate_message(&list).as_deref(), Some(want));
        }
        assert_eq!(aggregate_message(&[]), None);
    }

    #[test]
    fn reasons_and_descriptions() {
        #[rustfmt::skip]
        let cases = [
            (ErrorType::NotFound, "FieldValueNotFound", "Not found"),
            (ErrorType::Required, "FieldValueRequired", "Required value"),
            (ErrorType::Duplicate, "FieldValueDuplicate", "Duplicate value"),
            (ErrorType::Invalid, "FieldValueInvalid", "Invalid value"),
            (ErrorType::NotSupported, "FieldValueNotSupported", "Unsupported value"),
            (ErrorType::Forbidden, "FieldValueForbidden", "Forbidden"),
            (ErrorType::TooLong, "FieldValueTooLong", "Too long"),
            (ErrorType::TooMany, "FieldValueTooMany", "Too many"),
            (ErrorType::InternalError, "InternalError", "Internal error"),
            (ErrorType::TypeInvalid, "FieldValueTypeInvalid", "Invalid value"),
        ];
        for (t, reason, text) in cases {
            assert_eq!(t.reason(), reason);
            assert_eq!(t.to_string(), text);
        }
    }

    #[test]
    fn go_float_formatting() {
        #[rustfmt::skip]
        let cases = [
            (0.0, "0"), (-0.0, "-0"), (1.0, "1"), (-3.0, "-3"), (0.1, "0.1"),
            (999999.0, "999999"), (1234567.0, "1.234567e+06"), (1e100, "1e+100"),
            (5e-324, "5e-324"), (f64::NAN, "NaN"), (f64::INFINITY, "+Inf"), (f64::NEG_INFINITY, "-Inf"),
        ];
        for (x, want) in cases {
            assert_eq!(go_format_float(x), want, "{x}");
        }
    }
}
