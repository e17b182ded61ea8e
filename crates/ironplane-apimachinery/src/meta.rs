//! Object and list metadata (`metav1.ObjectMeta`, `metav1.ListMeta`) and API time formats.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `metav1.ObjectMeta`, with the JSON names and omission rules upstream uses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Unique within a namespace (or cluster-wide for cluster-scoped kinds).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// A prefix from which the server generates a unique name when `name` is empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generate_name: String,
    /// The namespace; empty for cluster-scoped kinds.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Deprecated and never set by the server; kept so clients that send it round-trip.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub self_link: String,
    /// Set by the server on create.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// The store revision of the last change, as a string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// Incremented by the server when the desired state (spec) changes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: i64,
    /// RFC 3339, seconds precision, UTC. Serialized as `null` when unset, as Go does.
    #[serde(default)]
    pub creation_timestamp: Option<String>,
    /// Set when deletion was requested but finalizers or a grace period hold the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    /// The grace period that applies to a pending deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_grace_period_seconds: Option<i64>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Owner references, kept as JSON (their schema validates them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<Value>,
    /// Finalizers that must be removed before the object is deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
    /// Managed fields (server-side apply); kept as JSON.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields: Vec<Value>,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

/// `metav1.ListMeta`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    /// The revision the list was read at.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// The token for the next page.
    #[serde(default, rename = "continue", skip_serializing_if = "String::is_empty")]
    pub continue_token: String,
    /// How many items remain after this page, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_item_count: Option<i64>,
}

/// The current time as `metav1.Time` formats it: RFC 3339, seconds precision, UTC.
pub fn now_rfc3339() -> String {
    format_time(jiff::Timestamp::now())
}

/// A timestamp as `metav1.Time` formats it.
pub fn format_time(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A timestamp as `metav1.MicroTime` formats it: RFC 3339 with microseconds, UTC.
pub fn format_micro_time(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

/// Parse an RFC 3339 timestamp as the API accepts it.
pub fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    text.parse::<jiff::Timestamp>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_like_upstream() {
        let at: jiff::Timestamp = "2026-11-25T07:07:16.123456789Z".parse().unwrap();
        assert_eq!(format_time(at), "2026-11-25T07:07:16Z");
        assert_eq!(format_micro_time(at), "2026-11-25T07:07:16.123456Z");
    }

    #[test]
    fn omits_empty_fields() {
        let meta = ObjectMeta {
            name: "x".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&meta).unwrap(),
            r#"{"name":"x","creationTimestamp":null}"#
        );
    }
}
