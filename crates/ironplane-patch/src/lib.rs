//! The three patch types kube-apiserver accepts on PATCH, applied with upstream's semantics and
//! error texts:
//!
//! - `application/json-patch+json` (RFC 6902), as `gopkg.in/evanphx/json-patch.v4` applies it:
//!   [`apply_json_patch`];
//! - `application/merge-patch+json` (RFC 7396), as the same library's `MergePatch` does:
//!   [`apply_merge_patch`];
//! - `application/strategic-merge-patch+json`, as `k8s.io/apimachinery/pkg/util/strategicpatch`
//!   does, driven by a kind's [`StructSchema`]: [`apply_strategic_merge_patch`].
//!
//! Server-side apply (`application/apply-patch+yaml`) is not here.
//!
//! Each function takes the current object as JSON and the raw request body, and returns the
//! patched object as JSON; decoding that against the kind's schema (which drops or reports
//! unknown fields, as upstream's decode of the patched object does) is the caller's job, and so
//! is reporting [`strict_decoding_errors`] (duplicate keys, unknown JSON patch operation fields)
//! as warnings or, with `fieldValidation=Strict`, as a 422. Failures are [`PatchError`]s, whose
//! documentation maps each to the `Status` upstream answers with.
//!
//! Bodies are decoded as upstream decodes them with `fieldValidation` `Warn` (the server's
//! default) or `Strict`; with `Ignore`, upstream words a few malformed-body errors differently.
//!
//! Architecture Invariant: nothing here panics or recurses without bound: bodies nested deeper
//! than [`MAX_DEPTH`] are rejected before any patching, the patch algorithms recurse no deeper
//! than the patch or the object is nested, and a JSON patch may not nest the object deeper
//! than [`MAX_DEPTH`].

mod error;
mod json;
mod json_patch;
mod merge_patch;
mod strategic;

pub use error::{PatchError, UNPROCESSABLE_MESSAGE};
pub use json_patch::apply_json_patch;
pub use merge_patch::apply_merge_patch;
pub use strategic::apply_strategic_merge_patch;

#[doc(no_inline)]
pub use ironplane_apimachinery::schema::StructSchema;

use ironplane_apimachinery::codec;

/// The most operations a JSON patch may have (upstream's `maxJSONPatchOperations`).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The most bytes a JSON patch's `copy` operations may add in total (upstream's default
/// `JSONPatchMaxCopyBytes`, 3 MiB).
pub const MAX_JSON_PATCH_COPY_BYTES: usize = 3 * 1024 * 1024;

/// The deepest nesting of objects and arrays accepted in a patch body, and the deepest a JSON
/// patch may make the object. (Upstream accepts 10000 levels; real patches use a few dozen,
/// and serde_json reads no more than 127 back.)
pub const MAX_DEPTH: usize = 100;

/// A patch type, named by the request's `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
}

impl PatchType {
    /// The patch type of a `Content-Type` header (parameters such as `charset` ignored, as
    /// upstream ignores them); `None` for anything else, including server-side apply.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        match media_type {
            codec::JSON_PATCH => Some(PatchType::Json),
            codec::MERGE_PATCH => Some(PatchType::Merge),
            codec::STRATEGIC_MERGE_PATCH => Some(PatchType::StrategicMerge),
            _ => None,
        }
    }

    /// The media type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => codec::JSON_PATCH,
            PatchType::Merge => codec::MERGE_PATCH,
            PatchType::StrategicMerge => codec::STRATEGIC_MERGE_PATCH,
        }
    }
}

/// The strict-decoding errors upstream finds in a patch body, in document order: duplicate
/// keys (`duplicate field "metadata.labels.a"`) and, in JSON patches, operation fields other
/// than `op`, `path`, `from` and `value` (`json patch unknown field "[0].Op"`; JSON patch
/// errors carry that prefix). With `fieldValidation=Warn` (the default) upstream sends each as
/// a warning; with `Strict` it fails the request with a 422 listing them together with the
/// unknown fields of the patched object. Empty for a body that does not decode (upstream then
/// fails with the decode error alone).
pub fn strict_decoding_errors(patch_type: PatchType, patch: &[u8]) -> Vec<String> {
    let decoded = match patch_type {
        PatchType::Json => json_patch::decode(patch).map(|(_, strict)| strict),
        PatchType::Merge => merge_patch::decode(patch).map(|(_, strict)| strict),
        PatchType::StrategicMerge => strategic::decode(patch).map(|(_, strict)| strict),
    };
    decoded.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_content_types() {
        let cases = [
            ("application/json-patch+json", Some(PatchType::Json)),
            (
                "application/merge-patch+json; charset=utf-8",
                Some(PatchType::Merge),
            ),
            (
                "application/strategic-merge-patch+json",
                Some(PatchType::StrategicMerge),
            ),
            ("application/apply-patch+yaml", None),
            ("application/json", None),
        ];
        for (content_type, expected) in cases {
            assert_eq!(PatchType::from_content_type(content_type), expected);
            if let Some(patch_type) = expected {
                assert!(content_type.starts_with(patch_type.content_type()));
            }
        }
    }

    #[test]
    fn reports_strict_decoding_errors() {
        let cases: &[(PatchType, &str, &[&str])] = &[
            (
                PatchType::Merge,
                r#"{"a":1,"a":2}"#,
                &["duplicate field \"a\""],
            ),
            (
                PatchType::StrategicMerge,
                r#"{"metadata":{"labels":{"x":"1","x":"2"}}}"#,
                &["duplicate field \"metadata.labels.x\""],
            ),
            (
                PatchType::Json,
                r#"[{"op":"add","path":"/b","value":2,"op":"remove","foo":1}]"#,
                &[
                    "json patch duplicate field \"[0].op\"",
                    "json patch unknown field \"[0].foo\"",
                ],
            ),
            (
                PatchType::Json,
                r#"[{"op":"add","path":"/b","value":{"foo":1}}]"#,
                &[],
            ),
            (PatchType::Merge, "{", &[]),
            (PatchType::Merge, r#"[{"a":1,"a":2}]"#, &[]),
            (PatchType::Json, r#"[{"op":1,"extra":2}]"#, &[]),
        ];
        for (patch_type, body, expected) in cases {
            assert_eq!(
                strict_decoding_errors(*patch_type, body.as_bytes()),
                *expected,
                "{body}"
            );
        }
    }
}
