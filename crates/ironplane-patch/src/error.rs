//! Why a patch failed, and the `Status` upstream answers with for each failure.
//!
//! kube-apiserver's PATCH handler (`k8s.io/apiserver/pkg/endpoints/handlers/patch.go`) sorts
//! patch failures into four answers, and [`PatchError`] has one variant for each:
//!
//! | variant | code | reason | `Status.message` | upstream source of the failure |
//! |---|---|---|---|---|
//! | [`BadRequest`](PatchError::BadRequest) | 400 | `BadRequest` | the error text | the body does not decode (`error decoding patch: …` for JSON and merge patches, the bare decoder text for strategic merge patches), including bodies nested deeper than [`crate::MAX_DEPTH`] (`invalid character '{' exceeded max depth`, Go's words for its own limit of 10000); a merge patch of `null` (`Invalid JSON Patch`); strategic directives in the wrong shape (`invalid patch format of retainKeys`, `… of primitive list`, `… of setElementOrder list`) |
//! | [`TooManyOperations`](PatchError::TooManyOperations) | 413 | `RequestEntityTooLarge` | `Request entity too large: The allowed maximum operations in a JSON patch is 10000, got N` | a JSON patch with more than 10000 operations |
//! | [`Unprocessable`](PatchError::Unprocessable) | 422 | `Invalid` | always `the server rejected our request due to an error in our request`, with empty `details` (upstream drops the reason) | a JSON patch operation that does not apply (failed `test`, missing path, bad index, `copy` beyond 3 MiB in total) or that would nest the object deeper than [`crate::MAX_DEPTH`] (ours); `lists of lists are not supported` in a strategic merge patch |
//! | [`Internal`](PatchError::Internal) | 500 | `""` (unknown) | the error text | every other strategic merge patch failure (unknown `$patch` value, missing merge key, mixed list element types, a `$setElementOrder` list that does not match its list, …): upstream returns these as plain Go errors, which become a 500 with the text as message |
//!
//! The `Display` text of every variant is the full upstream error text, for logs and tests; use
//! [`PatchError::status_message`] for what goes into the `Status`.

use ironplane_apimachinery::status::{ApiError, StatusDetails, reason};

/// The message upstream puts in a 422 for a patch that does not apply, whatever the cause.
pub const UNPROCESSABLE_MESSAGE: &str =
    "the server rejected our request due to an error in our request";

/// Why a patch could not be applied. See the module documentation for the `Status` of each.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch body is malformed: 400 `BadRequest` with this text as message.
    #[error("{0}")]
    BadRequest(String),
    /// A JSON patch has more operations than upstream allows: 413 `RequestEntityTooLarge`.
    #[error(
        "Request entity too large: The allowed maximum operations in a JSON patch is {max}, got {got}"
    )]
    TooManyOperations {
        /// The limit, [`crate::MAX_JSON_PATCH_OPERATIONS`].
        max: usize,
        /// How many operations the patch has.
        got: usize,
    },
    /// The patch is well formed but does not apply to the object: 422 `Invalid`. The text is
    /// upstream's error; the `Status` carries only [`UNPROCESSABLE_MESSAGE`].
    #[error("{0}")]
    Unprocessable(String),
    /// Any other failure, which upstream reports as a 500 with an empty reason and this text.
    #[error("{0}")]
    Internal(String),
}

impl PatchError {
    /// The HTTP status code upstream answers with.
    pub fn code(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::Unprocessable(_) => 422,
            PatchError::Internal(_) => 500,
        }
    }

    /// The `Status.reason` upstream answers with (empty for [`PatchError::Internal`]).
    pub fn reason(&self) -> &'static str {
        match self {
            PatchError::BadRequest(_) => reason::BAD_REQUEST,
            PatchError::TooManyOperations { .. } => reason::REQUEST_ENTITY_TOO_LARGE,
            PatchError::Unprocessable(_) => reason::INVALID,
            PatchError::Internal(_) => "",
        }
    }

    /// The `Status.message` upstream answers with.
    pub fn status_message(&self) -> String {
        match self {
            PatchError::Unprocessable(_) => UNPROCESSABLE_MESSAGE.to_owned(),
            other => other.to_string(),
        }
    }

    /// The failure as the `Status` upstream writes: code, reason, message and (for 422 only)
    /// an empty `details` object.
    pub fn to_api_error(&self) -> ApiError {
        let details = match self {
            PatchError::Unprocessable(_) => Some(StatusDetails::default()),
            _ => None,
        };
        ApiError::new(self.code(), self.reason(), self.status_message(), details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_each_variant_to_upstreams_status() {
        let cases = [
            (
                PatchError::BadRequest("error decoding patch: unexpected end of JSON input".into()),
                400,
                "BadRequest",
                "error decoding patch: unexpected end of JSON input",
            ),
            (
                PatchError::TooManyOperations {
                    max: 10000,
                    got: 10001,
                },
                413,
                "RequestEntityTooLarge",
                "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001",
            ),
            (
                PatchError::Unprocessable("testing value /a failed: test failed".into()),
                422,
                "Invalid",
                UNPROCESSABLE_MESSAGE,
            ),
            (
                PatchError::Internal("merging lists cannot yet be specified in the patch".into()),
                500,
                "",
                "merging lists cannot yet be specified in the patch",
            ),
        ];
        for (err, code, reason, message) in cases {
            assert_eq!(err.code(), code, "{err}");
            assert_eq!(err.reason(), reason, "{err}");
            assert_eq!(err.status_message(), message, "{err}");
            let api = err.to_api_error();
            assert_eq!(api.code(), code);
            assert_eq!(api.reason(), reason);
            assert_eq!(api.message(), message);
            assert_eq!(api.status.details.is_some(), code == 422);
        }
    }
}
