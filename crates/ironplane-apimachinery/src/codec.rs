//! Codecs and media types: JSON written the way Go's encoder writes it, YAML in and out with
//! bounded alias expansion, `Content-Type` and `Accept` parsing, and output negotiation
//! (plain objects, `Table`, `PartialObjectMetadata`), with room for protobuf to slot in.

use std::io;

use serde::Serialize;
use serde_json::Value;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter, PrettyFormatter};

/// `application/json`.
pub const JSON: &str = "application/json";
/// `application/yaml`.
pub const YAML: &str = "application/yaml";
/// `application/vnd.kubernetes.protobuf` (not served yet; clients that ask fall back to JSON).
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
/// JSON Patch (RFC 6902).
pub const JSON_PATCH: &str = "application/json-patch+json";
/// JSON Merge Patch (RFC 7396).
pub const MERGE_PATCH: &str = "application/merge-patch+json";
/// Kubernetes strategic merge patch.
pub const STRATEGIC_MERGE_PATCH: &str = "application/strategic-merge-patch+json";
/// Server-side apply.
pub const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// The largest request body the server reads: 3 MiB, upstream's limit.
pub const MAX_REQUEST_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Encode compact JSON exactly as Go's `encoding/json` does (HTML-safe escapes included).
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_json(&mut out, value);
    out
}

/// Append compact Go-style JSON to `out`.
pub fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let mut serializer = serde_json::Serializer::with_formatter(out, GoFormatter(CompactFormatter));
    // Serializing our own types into memory cannot fail: every map key is a string.
    let _ = value.serialize(&mut serializer);
}

/// Encode JSON indented by two spaces, as upstream does for `?pretty=true` and curl.
pub fn to_json_pretty<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut serializer = serde_json::Serializer::with_formatter(
        &mut out,
        GoFormatter(PrettyFormatter::with_indent(b"  ")),
    );
    let _ = value.serialize(&mut serializer);
    out
}

/// Re-indent compact JSON bytes (a cached encoding) for a pretty response.
pub fn prettify(json: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(json) {
        Ok(value) => to_json_pretty(&value),
        Err(_) => json.to_vec(),
    }
}

/// Finds, left to right, the bytes that may start a Go-only escape: `<`, `>`, `&`, and E2 (the
/// lead byte of U+2028 and U+2029). Each of its two vectorized scans reads a byte at most once,
/// however many E2 bytes of other characters (dashes, quotes) the text holds.
struct Candidates<'a> {
    bytes: &'a [u8],
    html: Scan,
    lead: Scan,
}

/// Where one scan stands.
#[derive(Clone, Copy)]
enum Scan {
    /// Not run yet.
    Unknown,
    /// The next match is here.
    At(usize),
    /// No match in the rest of the text.
    Exhausted,
}

impl Scan {
    /// The first match at or after `from`, running `find` over the rest when what is known lies
    /// before `from`.
    fn next(&mut self, bytes: &[u8], from: usize, find: impl Fn(&[u8]) -> Option<usize>) -> Scan {
        let stale = match *self {
            Scan::Unknown => true,
            Scan::At(at) => at < from,
            Scan::Exhausted => false,
        };
        if stale {
            *self = match bytes.get(from..).and_then(find) {
                Some(offset) => Scan::At(from + offset),
                None => Scan::Exhausted,
            };
        }
        *self
    }
}

impl<'a> Candidates<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            html: Scan::Unknown,
            lead: Scan::Unknown,
        }
    }

    /// The first candidate at or after `from`.
    fn next(&mut self, from: usize) -> Option<usize> {
        let html = self.html.next(self.bytes, from, |rest| {
            memchr::memchr3(b'<', b'>', b'&', rest)
        });
        let lead = self
            .lead
            .next(self.bytes, from, |rest| memchr::memchr(0xE2, rest));
        match (html, lead) {
            (Scan::At(a), Scan::At(b)) => Some(a.min(b)),
            (Scan::At(at), _) | (_, Scan::At(at)) => Some(at),
            _ => None,
        }
    }
}

/// A formatter that escapes like Go: `<`, `>`, `&`, U+2028 and U+2029 as `\u` escapes, and
/// control characters other than `\n`, `\r`, `\t` as `\u00XX`.
struct GoFormatter<F>(F);

impl<F: Formatter> Formatter for GoFormatter<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let bytes = fragment.as_bytes();
        let mut start = 0;
        // Only `<`, `>`, `&` and U+2028/U+2029 (E2 80 A8/A9) need escaping beyond serde_json's own
        // escapes. Most strings hold none: find candidates with memchr's vectorized scans (this
        // was the hottest function of a create's JSON encode as a byte loop).
        let mut candidates = Candidates::new(bytes);
        while let Some(index) = candidates.next(start) {
            let (escape, width) = match bytes[index] {
                b'<' => ("\\u003c", 1),
                b'>' => ("\\u003e", 1),
                b'&' => ("\\u0026", 1),
                _ => match bytes.get(index + 1..index + 3) {
                    Some([0x80, 0xA8]) => ("\\u2028", 3),
                    Some([0x80, 0xA9]) => ("\\u2029", 3),
                    // Another character starting with E2: written as it is.
                    _ => {
                        writer.write_all(&bytes[start..=index])?;
                        start = index + 1;
                        continue;
                    }
                },
            };
            writer.write_all(&bytes[start..index])?;
            writer.write_all(escape.as_bytes())?;
            start = index + width;
        }
        writer.write_all(&bytes[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        let text: String = match escape {
            CharEscape::Quote => "\\\"".into(),
            CharEscape::ReverseSolidus => "\\\\".into(),
            CharEscape::LineFeed => "\\n".into(),
            CharEscape::CarriageReturn => "\\r".into(),
            CharEscape::Tab => "\\t".into(),
            CharEscape::Backspace => "\\u0008".into(),
            CharEscape::FormFeed => "\\u000c".into(),
            CharEscape::AsciiControl(byte) => format!("\\u{byte:04x}"),
            _ => "".into(),
        };
        writer.write_all(text.as_bytes())
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// Why a body could not be read as JSON or YAML.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// JSON syntax error, with Go's wording where it matters.
    #[error("{0}")]
    Json(String),
    /// YAML syntax error or an exceeded limit (aliases, depth).
    #[error("{0}")]
    Yaml(String),
}

/// Parse a JSON body into a value (serde_json bounds nesting at 128 levels).
pub fn parse_json(body: &[u8]) -> Result<Value, BodyError> {
    serde_json::from_slice(body).map_err(|err| BodyError::Json(go_json_syntax_error(&err)))
}

/// Translate serde_json's syntax errors into the phrases Go's decoder uses, as far as they map.
fn go_json_syntax_error(err: &serde_json::Error) -> String {
    match err.classify() {
        serde_json::error::Category::Eof => "unexpected end of JSON input".into(),
        _ => err.to_string(),
    }
}

/// Parse a YAML body (the first document) into a JSON value, with bounded alias expansion and
/// nesting.
pub fn parse_yaml(body: &[u8]) -> Result<Value, BodyError> {
    let text = std::str::from_utf8(body)
        .map_err(|err| BodyError::Yaml(format!("yaml: invalid UTF-8: {err}")))?;
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 100,
            max_aliases: 10_000,
            max_documents: 16,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
        },
    };
    let documents: Vec<Value> = serde_saphyr::from_str_multiple_with_options(text, options)
        .map_err(|err| BodyError::Yaml(format!("yaml: {err}")))?;
    Ok(documents
        .into_iter()
        .find(|doc| !doc.is_null())
        .unwrap_or(Value::Null))
}

/// Encode a JSON value as YAML the way upstream's `sigs.k8s.io/yaml` does: keys sorted, block
/// style, two-space indentation.
pub fn to_yaml(value: &Value) -> Vec<u8> {
    let mut out = String::new();
    crate::yaml::write_document(&mut out, value);
    out.into_bytes()
}

/// A parsed media type such as `application/json;as=Table;v=v1;g=meta.k8s.io`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaType {
    /// `application/json` (lowercased), or a wildcard such as `*/*`.
    pub essence: String,
    /// Parameters, names lowercased, in order.
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// Parse one media type; `None` when it has no `/`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(';');
        let essence = parts.next()?.trim().to_ascii_lowercase();
        if !essence.contains('/') {
            return None;
        }
        let params = parts
            .filter_map(|part| {
                let (name, value) = part.split_once('=')?;
                Some((
                    name.trim().to_ascii_lowercase(),
                    value.trim().trim_matches('"').to_owned(),
                ))
            })
            .collect();
        Some(MediaType { essence, params })
    }

    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn quality(&self) -> f32 {
        self.param("q")
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0)
    }

    fn matches_essence(&self, offered: &str) -> bool {
        self.essence == "*/*"
            || self.essence == offered
            || (self.essence.ends_with("/*")
                && offered.starts_with(&self.essence[..self.essence.len() - 1]))
    }
}

/// Parse an `Accept` header into media ranges, most preferred first (stable for equal `q`).
pub fn parse_accept(header: &str) -> Vec<MediaType> {
    let mut ranges: Vec<MediaType> = header
        .split(',')
        .filter_map(MediaType::parse)
        .filter(|range| range.quality() > 0.0)
        .collect();
    ranges.sort_by(|a, b| b.quality().total_cmp(&a.quality()));
    ranges
}

/// The serialization of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => JSON,
            Format::Yaml => YAML,
        }
    }
}

/// What a response should contain, from the `as`, `g`, `v` parameters of the chosen media type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The resource itself.
    Object,
    /// `meta.k8s.io` `Table` of the given version (`v1` or `v1beta1`).
    Table {
        /// `v1` or `v1beta1`.
        version: String,
    },
    /// `meta.k8s.io` `PartialObjectMetadata` (single objects and watch events).
    PartialObjectMetadata {
        /// `v1` or `v1beta1`.
        version: String,
    },
    /// `meta.k8s.io` `PartialObjectMetadataList`.
    PartialObjectMetadataList {
        /// `v1` or `v1beta1`.
        version: String,
    },
    /// Aggregated discovery (`apidiscovery.k8s.io` `APIGroupDiscoveryList`).
    DiscoveryList {
        /// `v2` or `v2beta1`.
        version: String,
    },
}

/// The outcome of negotiation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Serialization.
    pub format: Format,
    /// Content.
    pub target: Target,
}

/// Which conversions an endpoint can produce.
#[derive(Clone, Copy, Debug, Default)]
pub struct Offers {
    /// `as=Table`.
    pub table: bool,
    /// `as=PartialObjectMetadata`.
    pub partial_object_metadata: bool,
    /// `as=PartialObjectMetadataList`.
    pub partial_object_metadata_list: bool,
    /// `as=APIGroupDiscoveryList`.
    pub discovery: bool,
}

/// The media types the server can produce, for 406 messages.
pub const OFFERED_MEDIA_TYPES: [&str; 2] = [JSON, YAML];

/// Choose a response format and target for an `Accept` header. A missing or empty header means
/// JSON. Media ranges the server cannot satisfy (protobuf today, unknown `as=` targets) are
/// skipped, so `application/vnd.kubernetes.protobuf, application/json` answers JSON.
pub fn negotiate(accept: Option<&str>, offers: Offers) -> Option<Negotiated> {
    let header = accept.unwrap_or("").trim();
    if header.is_empty() {
        return Some(Negotiated {
            format: Format::Json,
            target: Target::Object,
        });
    }
    for range in parse_accept(header) {
        let format = if range.matches_essence(JSON) {
            Format::Json
        } else if range.matches_essence(YAML) {
            Format::Yaml
        } else {
            continue;
        };
        let target = match (range.param("as"), range.param("g"), range.param("v")) {
            (None, _, _) => Target::Object,
            (Some("Table"), Some("meta.k8s.io"), Some(v @ ("v1" | "v1beta1"))) if offers.table => {
                Target::Table { version: v.into() }
            }
            (Some("PartialObjectMetadata"), Some("meta.k8s.io"), Some(v @ ("v1" | "v1beta1")))
                if offers.partial_object_metadata =>
            {
                Target::PartialObjectMetadata { version: v.into() }
            }
            (
                Some("PartialObjectMetadataList"),
                Some("meta.k8s.io"),
                Some(v @ ("v1" | "v1beta1")),
            ) if offers.partial_object_metadata_list => {
                Target::PartialObjectMetadataList { version: v.into() }
            }
            (
                Some("APIGroupDiscoveryList"),
                Some("apidiscovery.k8s.io"),
                Some(v @ ("v2" | "v2beta1")),
            ) if offers.discovery => Target::DiscoveryList { version: v.into() },
            _ => continue,
        };
        return Some(Negotiated { format, target });
    }
    None
}

/// The format of a request body, from its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// Kubernetes protobuf (decoded with the kind's schema, see [`crate::protobuf`]).
    Protobuf,
}

/// Read a request's `Content-Type` for create and update. A missing header is JSON, as
/// upstream assumes.
pub fn body_format(content_type: Option<&str>) -> Option<BodyFormat> {
    let Some(content_type) = content_type.filter(|text| !text.trim().is_empty()) else {
        return Some(BodyFormat::Json);
    };
    let media = MediaType::parse(content_type)?;
    match media.essence.as_str() {
        JSON => Some(BodyFormat::Json),
        YAML | "application/x-yaml" | "text/yaml" => Some(BodyFormat::Yaml),
        PROTOBUF => Some(BodyFormat::Protobuf),
        _ => None,
    }
}

/// The media types a create or update body may use, for 415 messages.
pub const ACCEPTED_BODY_TYPES: [&str; 3] = [JSON, YAML, PROTOBUF];

/// Parse a JSON or YAML body (protobuf needs the kind's schema: see [`crate::protobuf`]).
pub fn parse_body(body: &[u8], format: BodyFormat) -> Result<Value, BodyError> {
    match format {
        BodyFormat::Json => parse_json(body),
        BodyFormat::Yaml => parse_yaml(body),
        BodyFormat::Protobuf => Err(BodyError::Json(
            "protobuf bodies are decoded with their kind's schema".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_like_go() {
        let value = json!({"a": "<b>&\u{2028}\u{8}"});
        assert_eq!(
            String::from_utf8(to_json(&value)).unwrap(),
            r#"{"a":"\u003cb\u003e\u0026\u2028\u0008"}"#
        );
    }

    /// Go's escaping of one string, char by char: what the fast scan must agree with.
    fn go_escaped(text: &str) -> String {
        let mut out = String::from("\"");
        for c in text.chars() {
            match c {
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                    out.push_str(&format!("\\u{:04x}", u32::from(c)));
                }
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn escapes_every_mix_of_candidates_like_go() {
        // Characters that share the E2 lead byte with U+2028/U+2029 (dashes, quotes, the
        // ellipsis, U+20AC), the HTML characters, plain text, and escapes of serde_json's own.
        let alphabet = [
            "a", "<", ">", "&", "\u{2028}", "\u{2029}", "\u{2013}", "\u{201c}", "\u{2026}",
            "\u{20ac}", "\u{e9}", "\"", "\n", "\u{1}", "xyz",
        ];
        // Every string of up to three pieces, and a long run of non-escaped E2 characters.
        let mut texts = vec![
            String::new(),
            "\u{2013}".repeat(5000) + "<" + &"\u{2014}".repeat(10),
        ];
        for a in alphabet {
            texts.push(a.to_owned());
            for b in alphabet {
                texts.push(format!("{a}{b}"));
                for c in alphabet {
                    texts.push(format!("{a}{b}{c}"));
                }
            }
        }
        for text in texts {
            let encoded = String::from_utf8(to_json(&json!(text))).unwrap();
            assert_eq!(encoded, go_escaped(&text), "{text:?}");
        }
    }

    #[test]
    fn pretty_prints_with_two_spaces() {
        let value = json!({"kind": "Status", "metadata": {}});
        assert_eq!(
            String::from_utf8(to_json_pretty(&value)).unwrap(),
            "{\n  \"kind\": \"Status\",\n  \"metadata\": {}\n}"
        );
    }

    #[test]
    fn negotiates_tables_and_falls_back_from_protobuf() {
        let offers = Offers {
            table: true,
            ..Default::default()
        };
        let table = negotiate(
            Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"),
            offers,
        )
        .unwrap();
        assert_eq!(
            table.target,
            Target::Table {
                version: "v1".into()
            }
        );
        let json = negotiate(
            Some("application/vnd.kubernetes.protobuf, application/json"),
            offers,
        )
        .unwrap();
        assert_eq!(json.format, Format::Json);
        assert_eq!(json.target, Target::Object);
        assert!(negotiate(Some("application/xml"), offers).is_none());
        assert!(
            negotiate(
                Some("application/json;as=Table;v=v1;g=meta.k8s.io"),
                Offers::default()
            )
            .is_none()
        );
        assert_eq!(negotiate(Some("*/*"), offers).unwrap().format, Format::Json);
        assert_eq!(
            negotiate(Some("application/yaml"), offers).unwrap().format,
            Format::Yaml
        );
    }

    #[test]
    fn parses_yaml_with_alias_limits() {
        let value = parse_yaml(b"a: &x [1, 2]\nb: *x\n").unwrap();
        assert_eq!(value, json!({"a": [1, 2], "b": [1, 2]}));
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n";
        assert!(parse_yaml(bomb.as_bytes()).is_err());
    }

    #[test]
    fn reads_body_formats() {
        assert_eq!(body_format(None), Some(BodyFormat::Json));
        assert_eq!(
            body_format(Some("application/json; charset=utf-8")),
            Some(BodyFormat::Json)
        );
        assert_eq!(
            body_format(Some("application/yaml")),
            Some(BodyFormat::Yaml)
        );
        assert_eq!(body_format(Some("text/plain")), None);
    }
}
