//! Writing responses: Status errors, objects in the negotiated format, and the headers upstream
//! sends with them (`Cache-Control: no-cache, private`, pretty-printing for curl and browsers).

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use ironplane_apimachinery::ApiError;
use ironplane_apimachinery::codec::{self, Format};
use serde::Serialize;

use crate::body::{self, Body, Response};
use crate::request_info::query_values;

/// Whether to indent JSON: `?pretty=true`, or a User-Agent of curl, Wget or a browser, as
/// upstream decides.
pub fn wants_pretty<B>(request: &http::Request<B>) -> bool {
    if let Some(value) = query_values(request.uri().query(), "pretty").next() {
        return matches!(value.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True");
    }
    request
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|agent| agent.to_str().ok())
        .is_some_and(|agent| {
            agent.starts_with("curl")
                || agent.starts_with("Wget")
                || agent.starts_with("Mozilla/5.0")
        })
}

/// A response with a body and content type, and upstream's cache header.
pub fn response(code: StatusCode, content_type: &str, body: Body) -> Response {
    let mut response = http::Response::new(body);
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    response
}

/// The JSON Status response of an error.
pub fn status_response(err: &ApiError, pretty: bool) -> Response {
    let bytes = encode(err.status.as_ref(), Format::Json, pretty);
    let code = StatusCode::from_u16(err.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response(code, codec::JSON, body::full(bytes))
}

/// Encode a value in a format. JSON ends with a newline, as Go's encoder writes it.
pub fn encode<T: Serialize + ?Sized>(value: &T, format: Format, pretty: bool) -> Vec<u8> {
    match format {
        Format::Json => {
            let mut bytes = if pretty {
                codec::to_json_pretty(value)
            } else {
                codec::to_json(value)
            };
            bytes.push(b'\n');
            bytes
        }
        Format::Yaml => match serde_json::to_value(value) {
            Ok(value) => codec::to_yaml(&value),
            Err(_) => Vec::new(),
        },
    }
}

/// Re-encode cached compact JSON in a format.
pub fn reencode(json: &[u8], format: Format, pretty: bool) -> Vec<u8> {
    match format {
        Format::Json => {
            let mut bytes = if pretty {
                codec::prettify(json)
            } else {
                json.to_vec()
            };
            bytes.push(b'\n');
            bytes
        }
        Format::Yaml => match serde_json::from_slice::<serde_json::Value>(json) {
            Ok(value) => codec::to_yaml(&value),
            Err(_) => Vec::new(),
        },
    }
}

/// A value as a response.
pub fn value_response<T: Serialize + ?Sized>(
    code: StatusCode,
    value: &T,
    format: Format,
    content_type: &str,
    pretty: bool,
) -> Response {
    response(
        code,
        content_type,
        body::full(encode(value, format, pretty)),
    )
}

/// Upstream's plain-text 404 for paths no link of the chain serves.
pub fn plain_not_found() -> Response {
    let mut response = http::Response::new(body::full("404 page not found\n"));
    *response.status_mut() = StatusCode::NOT_FOUND;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}
