//! `metav1.Status`: how every failure leaves the server, with upstream's reasons, codes and
//! message shapes (k8s.io/apimachinery/pkg/api/errors).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::gvk::{GroupKind, GroupResource};

/// The body of every error response (and of some successful deletes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Always `Status`.
    pub kind: String,
    /// Always `v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Empty list metadata, serialized as `{}`.
    pub metadata: StatusMetadata,
    /// `Success` or `Failure`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// A human-readable description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The machine-readable reason, such as `NotFound`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Extended data for the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    /// The HTTP status code.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub code: u16,
}

fn is_zero(code: &u16) -> bool {
    *code == 0
}

/// A Status's list metadata; for a continue-token expiry it carries the token to continue with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusMetadata {
    /// A continue token (only on 410 Expired for an inconsistent continuation).
    #[serde(default, rename = "continue", skip_serializing_if = "String::is_empty")]
    pub continue_token: String,
}

/// `metav1.StatusDetails`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDetails {
    /// The object's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The object's group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The resource (for most reasons) or kind (for Invalid).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The object's uid.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Field-level causes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
    /// Seconds to wait before retrying.
    #[serde(
        default,
        rename = "retryAfterSeconds",
        skip_serializing_if = "is_zero_u32"
    )]
    pub retry_after_seconds: u32,
}

fn is_zero_u32(value: &u32) -> bool {
    *value == 0
}

/// `metav1.StatusCause`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCause {
    /// The cause type, such as `FieldValueInvalid` (serialized as `reason`).
    #[serde(default, rename = "reason", skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// A human-readable description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The field path, such as `metadata.name`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

/// Status reasons, as upstream spells them.
pub mod reason {
    /// 401.
    pub const UNAUTHORIZED: &str = "Unauthorized";
    /// 403.
    pub const FORBIDDEN: &str = "Forbidden";
    /// 404.
    pub const NOT_FOUND: &str = "NotFound";
    /// 409 on create.
    pub const ALREADY_EXISTS: &str = "AlreadyExists";
    /// 409 on a stale write.
    pub const CONFLICT: &str = "Conflict";
    /// 410.
    pub const GONE: &str = "Gone";
    /// 410 for too-old resource versions and continue tokens.
    pub const EXPIRED: &str = "Expired";
    /// 422.
    pub const INVALID: &str = "Invalid";
    /// 500 with retry.
    pub const SERVER_TIMEOUT: &str = "ServerTimeout";
    /// 504.
    pub const TIMEOUT: &str = "Timeout";
    /// 429.
    pub const TOO_MANY_REQUESTS: &str = "TooManyRequests";
    /// 400.
    pub const BAD_REQUEST: &str = "BadRequest";
    /// 405.
    pub const METHOD_NOT_ALLOWED: &str = "MethodNotAllowed";
    /// 406.
    pub const NOT_ACCEPTABLE: &str = "NotAcceptable";
    /// 413.
    pub const REQUEST_ENTITY_TOO_LARGE: &str = "RequestEntityTooLarge";
    /// 415.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UnsupportedMediaType";
    /// 500.
    pub const INTERNAL_ERROR: &str = "InternalError";
    /// 503.
    pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";
}

/// An API failure: a `Status` with status `Failure`, ready to be written as the response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The Status body.
    pub status: Box<Status>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.status.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// A failure with the given code, reason, message and details.
    pub fn new(
        code: u16,
        reason: &str,
        message: impl Into<String>,
        details: Option<StatusDetails>,
    ) -> Self {
        ApiError {
            status: Box::new(Status {
                kind: "Status".into(),
                api_version: "v1".into(),
                metadata: StatusMetadata::default(),
                status: "Failure".into(),
                message: message.into(),
                reason: reason.into(),
                details,
                code,
            }),
        }
    }

    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        self.status.code
    }

    /// The reason, such as `NotFound`.
    pub fn reason(&self) -> &str {
        &self.status.reason
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.status.message
    }

    fn resource_details(resource: &GroupResource, name: &str) -> Option<StatusDetails> {
        Some(StatusDetails {
            name: name.into(),
            group: resource.group.clone(),
            kind: resource.resource.clone(),
            ..Default::default()
        })
    }

    /// 404: `configmaps "x" not found`.
    pub fn not_found(resource: &GroupResource, name: &str) -> Self {
        Self::new(
            404,
            reason::NOT_FOUND,
            format!("{resource} {} not found", go_quote(name)),
            Self::resource_details(resource, name),
        )
    }

    /// 404 for a path the server does not serve (a Status, unlike the plain-text 404 of unknown
    /// groups).
    pub fn not_found_path() -> Self {
        Self::new(
            404,
            reason::NOT_FOUND,
            "the server could not find the requested resource",
            Some(StatusDetails::default()),
        )
    }

    /// 409: `configmaps "x" already exists`.
    pub fn already_exists(resource: &GroupResource, name: &str) -> Self {
        Self::new(
            409,
            reason::ALREADY_EXISTS,
            format!("{resource} {} already exists", go_quote(name)),
            Self::resource_details(resource, name),
        )
    }

    /// 409 when generateName kept colliding.
    pub fn generate_name_conflict(resource: &GroupResource, name: &str) -> Self {
        let mut details = Self::resource_details(resource, name);
        if let Some(details) = details.as_mut() {
            details.retry_after_seconds = 1;
        }
        Self::new(
            409,
            reason::ALREADY_EXISTS,
            format!(
                "{resource} {} already exists, the server was not able to generate a unique name for the object",
                go_quote(name)
            ),
            details,
        )
    }

    /// 409: `Operation cannot be fulfilled on configmaps "x": <why>`.
    pub fn conflict(resource: &GroupResource, name: &str, why: &str) -> Self {
        Self::new(
            409,
            reason::CONFLICT,
            format!(
                "Operation cannot be fulfilled on {resource} {}: {why}",
                go_quote(name)
            ),
            Self::resource_details(resource, name),
        )
    }

    /// The conflict of a write carrying a stale resourceVersion.
    pub fn stale_conflict(resource: &GroupResource, name: &str) -> Self {
        Self::conflict(resource, name, OPTIMISTIC_LOCK_MESSAGE)
    }

    /// 422 with field causes. `aggregate` is the joined error text (`a` or `[a, b]`); causes carry
    /// each error's field, type and body.
    pub fn invalid(
        kind: &GroupKind,
        name: &str,
        causes: Vec<StatusCause>,
        aggregate: &str,
    ) -> Self {
        let message = if aggregate.is_empty() {
            format!("{kind} {} is invalid", go_quote(name))
        } else {
            format!("{kind} {} is invalid: {aggregate}", go_quote(name))
        };
        Self::new(
            422,
            reason::INVALID,
            message,
            Some(StatusDetails {
                name: name.into(),
                group: kind.group.clone(),
                kind: kind.kind.clone(),
                causes,
                ..Default::default()
            }),
        )
    }

    /// 400 with the given message and no details.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, reason::BAD_REQUEST, message, None)
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(401, reason::UNAUTHORIZED, "Unauthorized", None)
    }

    /// 403: `configmaps "x" is forbidden: <why>`.
    pub fn forbidden(resource: &GroupResource, name: &str, why: &str) -> Self {
        let message = if resource.resource.is_empty() && name.is_empty() {
            format!("forbidden: {why}")
        } else if name.is_empty() {
            format!("{resource} is forbidden: {why}")
        } else {
            format!("{resource} {} is forbidden: {why}", go_quote(name))
        };
        Self::new(
            403,
            reason::FORBIDDEN,
            message,
            Self::resource_details(resource, name),
        )
    }

    /// 405 for a verb a resource does not support: `create is not supported on resources of kind "x"`.
    pub fn method_not_supported(resource: &GroupResource, action: &str) -> Self {
        Self::new(
            405,
            reason::METHOD_NOT_ALLOWED,
            format!(
                "{action} is not supported on resources of kind {}",
                go_quote(&resource.to_string())
            ),
            Some(StatusDetails {
                group: resource.group.clone(),
                kind: resource.resource.clone(),
                ..Default::default()
            }),
        )
    }

    /// 405 for an HTTP method a path does not allow.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            reason::METHOD_NOT_ALLOWED,
            "the server does not allow this method on the requested resource",
            Some(StatusDetails::default()),
        )
    }

    /// 406 listing the media types on offer.
    pub fn not_acceptable(available: &[&str]) -> Self {
        Self::new(
            406,
            reason::NOT_ACCEPTABLE,
            format!(
                "406: Not Acceptable\n\nAvailable representations: {}",
                available.join(", ")
            ),
            Some(StatusDetails::default()),
        )
    }

    /// 415 for a body in an unknown format.
    pub fn unsupported_media_type_body(accepted: &[&str]) -> Self {
        Self::new(
            415,
            reason::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
            None,
        )
    }

    /// 415 for a patch type the server does not take.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            415,
            reason::UNSUPPORTED_MEDIA_TYPE,
            "415: Unsupported Media Type",
            Some(StatusDetails::default()),
        )
    }

    /// 413: `Request entity too large: <why>`.
    pub fn request_entity_too_large(why: &str) -> Self {
        Self::new(
            413,
            reason::REQUEST_ENTITY_TOO_LARGE,
            format!("Request entity too large: {why}"),
            None,
        )
    }

    /// 410 Expired, for resource versions and continue tokens that are too old.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, reason::EXPIRED, message, None)
    }

    /// 410 Gone.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, reason::GONE, message, None)
    }

    /// 504: `Timeout: <why>`.
    pub fn timeout(why: &str, retry_after_seconds: u32) -> Self {
        let details = (retry_after_seconds > 0).then(|| StatusDetails {
            retry_after_seconds,
            ..Default::default()
        });
        Self::new(504, reason::TIMEOUT, format!("Timeout: {why}"), details)
    }

    /// 429: too many requests in flight.
    pub fn too_many_requests(message: &str, retry_after_seconds: u32) -> Self {
        Self::new(
            429,
            reason::TOO_MANY_REQUESTS,
            message,
            Some(StatusDetails {
                retry_after_seconds,
                ..Default::default()
            }),
        )
    }

    /// 503.
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, reason::SERVICE_UNAVAILABLE, message, None)
    }

    /// 500: `Internal error occurred: <why>`, with the error as its one cause.
    pub fn internal(why: impl fmt::Display) -> Self {
        let why = why.to_string();
        Self::new(
            500,
            reason::INTERNAL_ERROR,
            format!("Internal error occurred: {why}"),
            Some(StatusDetails {
                causes: vec![StatusCause {
                    message: why,
                    ..Default::default()
                }],
                ..Default::default()
            }),
        )
    }

    /// Attach a continue token to the Status's metadata (410 on an expired continue).
    pub fn with_continue(mut self, token: String) -> Self {
        self.status.metadata.continue_token = token;
        self
    }
}

/// The message upstream gives for a stale resourceVersion on a write.
pub const OPTIMISTIC_LOCK_MESSAGE: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// Quote a string the way Go's `%q` does, so that messages match upstream's byte for byte.
pub use crate::field::go_quote;

#[cfg(test)]
mod tests {
    use super::*;

    fn json(err: &ApiError) -> String {
        serde_json::to_string(&err.status).unwrap_or_default()
    }

    #[test]
    fn not_found_matches_upstream_bytes() {
        let err = ApiError::not_found(&GroupResource::new("", "configmaps"), "missing");
        assert_eq!(
            json(&err),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps \"missing\" not found","reason":"NotFound","details":{"name":"missing","kind":"configmaps"},"code":404}"#
        );
    }

    #[test]
    fn method_not_allowed_has_empty_details() {
        assert_eq!(
            json(&ApiError::method_not_allowed()),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server does not allow this method on the requested resource","reason":"MethodNotAllowed","details":{},"code":405}"#
        );
    }

    #[test]
    fn conflict_message() {
        let err = ApiError::stale_conflict(&GroupResource::new("", "configmaps"), "exists");
        assert_eq!(
            err.message(),
            "Operation cannot be fulfilled on configmaps \"exists\": the object has been modified; please apply your changes to the latest version and try again"
        );
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\n"), r#""a\"b\n""#);
        assert_eq!(go_quote("\u{1}"), r#""\x01""#);
    }
}
