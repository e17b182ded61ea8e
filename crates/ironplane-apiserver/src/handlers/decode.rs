//! Decoding a request body into an object of the request's kind, with upstream's errors: the
//! media type, JSON/YAML syntax, apiVersion and kind against the URL, Go-shaped type errors, and
//! unknown fields reported as `fieldValidation` asks.

use bytes::Bytes;
use ironplane_apimachinery::codec::{self, BodyFormat};
use ironplane_apimachinery::status::go_quote;
use ironplane_apimachinery::{ApiError, GroupVersion, Object};
use ironplane_apimachinery::{protobuf, schema};
use ironplane_registry::Strategy;
use serde_json::Value;

use super::options::FieldValidation;

/// A decoded body and the warnings to send with the response.
pub struct DecodedBody {
    /// The object, normalized by its schema.
    pub object: Object,
    /// `Warning` headers (unknown fields under `fieldValidation=Warn`).
    pub warnings: Vec<String>,
}

/// Read the body format from a `Content-Type`, or 415 as upstream words it.
pub fn body_format(content_type: Option<&str>) -> Result<BodyFormat, ApiError> {
    codec::body_format(content_type)
        .ok_or_else(|| ApiError::unsupported_media_type_body(&codec::ACCEPTED_BODY_TYPES))
}

/// What upstream shows of a body it could not parse: up to 30 bytes of it.
fn summarize(body: &[u8]) -> String {
    const MAX: usize = 30;
    match body.first() {
        None => "<empty>".into(),
        Some(b'{') if body.len() > MAX => format!("{} ...", String::from_utf8_lossy(&body[..MAX])),
        Some(b'{') => String::from_utf8_lossy(body).into_owned(),
        Some(_) => {
            let shown = &body[..body.len().min(MAX)];
            let hex: String = shown.iter().map(|byte| format!("{byte:02x}")).collect();
            if body.len() > MAX {
                format!("{hex} ...")
            } else {
                hex
            }
        }
    }
}

/// Parse a body into a JSON value (YAML and protobuf are converted), with upstream's error for
/// garbage.
pub fn parse_value(
    body: &Bytes,
    format: BodyFormat,
    strategy: &dyn Strategy,
) -> Result<Value, ApiError> {
    let kind = strategy.info().kind.as_str();
    if format == BodyFormat::Protobuf {
        let envelope = protobuf::decode_envelope(body).map_err(|err| {
            ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {kind}): {err} ({})",
                summarize(body)
            ))
        })?;
        let mut map = serde_json::Map::new();
        map.insert("kind".into(), Value::String(envelope.kind.clone()));
        map.insert(
            "apiVersion".into(),
            Value::String(envelope.api_version.clone()),
        );
        if envelope.kind == kind {
            let message =
                protobuf::decode_message(envelope.raw, strategy.schema()).map_err(|err| {
                    ApiError::bad_request(format!(
                        "{kind} in version {} cannot be handled as a {kind}: {err}",
                        go_quote(&envelope.api_version)
                    ))
                })?;
            map.extend(message);
        }
        return Ok(Value::Object(map));
    }
    let parsed = codec::parse_body(body, format).map_err(|err| match format {
        BodyFormat::Json | BodyFormat::Protobuf => ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {kind}): couldn't get version/kind; json parse error: {err} ({})",
            summarize(body)
        )),
        BodyFormat::Yaml => ApiError::bad_request(format!("error converting YAML to JSON: {err}")),
    })?;
    if !parsed.is_object() {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {kind}): couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }} ({})",
            json_kind(&parsed),
            summarize(body)
        )));
    }
    Ok(parsed)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Where a decoded object came from, which decides how upstream words decode failures.
#[derive(Clone, Copy, Debug)]
pub enum Origin<'a> {
    /// A create or update body, as sent.
    Body(&'a [u8]),
    /// The result of applying a patch (its JSON), for PATCH.
    Patched,
}

/// The error upstream gives when a body cannot be decoded into the URL's kind.
fn body_decode_error(
    kind: &str,
    body_kind: &str,
    body_version: &str,
    body: &[u8],
    why: &str,
) -> ApiError {
    if body_kind.is_empty() {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {kind}): {why} ({})",
            summarize(body)
        ))
    } else {
        ApiError::bad_request(format!(
            "{body_kind} in version {} cannot be handled as a {kind}: {why}",
            go_quote(body_version)
        ))
    }
}

/// The error upstream gives when a patched object cannot be decoded: a 422 on the field `patch`
/// with no kind and no name.
fn patch_decode_error(patched: &Value, why: &str) -> ApiError {
    let text = String::from_utf8_lossy(&codec::to_json(patched)).into_owned();
    let errors = vec![ironplane_apimachinery::field::Error::invalid(
        &ironplane_apimachinery::field::Path::new("patch"),
        text.as_str(),
        why,
    )];
    ironplane_registry::store::invalid(&ironplane_apimachinery::GroupKind::new("", ""), "", &errors)
}

/// Check a parsed body's type meta against the kind served at the URL, then decode it against
/// the kind's schema.
pub fn decode_object(
    value: Value,
    origin: Origin<'_>,
    strategy: &dyn Strategy,
    validation: FieldValidation,
) -> Result<DecodedBody, ApiError> {
    let info = strategy.info();
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let expected = info.group_version();
    let body_version = if api_version.is_empty() {
        expected.clone()
    } else {
        GroupVersion::parse(&api_version)
            .unwrap_or_else(|| GroupVersion::new("", api_version.clone()))
    };
    if !kind.is_empty() && kind != info.kind {
        let source_package = if body_version.group.is_empty() {
            "v1".to_owned()
        } else {
            body_version.version.clone()
        };
        let why = format!(
            "converting ({source_package}.{kind}) to (core.{}): unknown conversion",
            info.kind
        );
        return Err(match origin {
            Origin::Body(body) => {
                body_decode_error(&info.kind, &kind, &body_version.version, body, &why)
            }
            Origin::Patched => patch_decode_error(&value, &why),
        });
    }
    let original = match origin {
        Origin::Patched => Some(value.clone()),
        Origin::Body(_) => None,
    };
    let fail = |why: &str| match (origin, &original) {
        (Origin::Body(body), _) => {
            body_decode_error(&info.kind, &kind, &body_version.version, body, why)
        }
        (Origin::Patched, Some(patched)) => patch_decode_error(patched, why),
        (Origin::Patched, None) => ApiError::bad_request(why.to_owned()),
    };
    let decoded = schema::decode(value, strategy.schema()).map_err(|err| fail(&err))?;
    if body_version != expected {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({body_version}) does not match the expected API version ({expected})"
        )));
    }
    let mut warnings = Vec::new();
    if !decoded.unknown_fields.is_empty() {
        let messages: Vec<String> = decoded
            .unknown_fields
            .iter()
            .map(|field| format!("unknown field {}", go_quote(field)))
            .collect();
        match validation {
            FieldValidation::Strict => {
                return Err(fail(&format!(
                    "strict decoding error: {}",
                    messages.join(", ")
                )));
            }
            FieldValidation::Warn => warnings = messages,
            FieldValidation::Ignore => {}
        }
    }
    let object = Object::from_map(decoded.object)
        .map_err(|err| ApiError::bad_request(format!("invalid object metadata: {err}")))?;
    Ok(DecodedBody { object, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes_like_upstream() {
        assert_eq!(
            summarize(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x""#),
            r#"{"apiVersion":"v1","kind":"Con ..."#
        );
        assert_eq!(summarize(b""), "<empty>");
        assert_eq!(summarize(b"\x01\x02"), "0102");
    }
}
