//! `meta.k8s.io` `Table` (what `kubectl get` prints) and `PartialObjectMetadata`, plus the
//! human-readable durations upstream puts in `Age` columns.

use serde::Serialize;
use serde_json::Value;

use crate::meta::{ListMeta, ObjectMeta};

/// One column of a table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TableColumnDefinition {
    /// The header, such as `Name`.
    pub name: &'static str,
    /// The cell type: `string`, `integer`, `number`, `boolean`, `date`.
    #[serde(rename = "type")]
    pub column_type: &'static str,
    /// A format hint, such as `name`.
    pub format: &'static str,
    /// What the column shows.
    pub description: &'static str,
    /// 0 for default columns; higher for `-o wide` only.
    pub priority: i32,
}

impl TableColumnDefinition {
    /// A default-priority string column.
    pub const fn string(name: &'static str, description: &'static str) -> Self {
        Self {
            name,
            column_type: "string",
            format: "",
            description,
            priority: 0,
        }
    }

    /// The `Name` column every kind starts with.
    pub const fn name_column() -> Self {
        Self {
            name: "Name",
            column_type: "string",
            format: "name",
            description: "The object's name, unique within its namespace.",
            priority: 0,
        }
    }

    /// The `Age` column.
    pub const fn age_column() -> Self {
        Self::string("Age", "Time since the object was created.")
    }

    /// The same column, shown only with `-o wide`.
    pub const fn wide(mut self) -> Self {
        self.priority = 1;
        self
    }

    /// The same column with a format hint.
    pub const fn with_format(mut self, format: &'static str) -> Self {
        self.format = format;
        self
    }
}

/// One row: its cells and, depending on `includeObject`, the object or its metadata.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TableRow {
    /// Cell values, one per column.
    pub cells: Vec<Value>,
    /// The object, its `PartialObjectMetadata`, or nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
}

/// A `Table`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    /// `Table`.
    pub kind: &'static str,
    /// `meta.k8s.io/v1` or `meta.k8s.io/v1beta1`.
    pub api_version: String,
    /// List metadata.
    pub metadata: ListMeta,
    /// Columns; empty when a watch event carries a row only.
    pub column_definitions: Vec<TableColumnDefinition>,
    /// Rows.
    pub rows: Vec<TableRow>,
}

/// What a table row carries besides its cells (`?includeObject=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parse the query parameter; `None` for an unknown value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "" | "Metadata" => Some(IncludeObject::Metadata),
            "None" => Some(IncludeObject::None),
            "Object" => Some(IncludeObject::Object),
            _ => None,
        }
    }
}

/// `PartialObjectMetadata` for an object's metadata.
pub fn partial_object_metadata(version: &str, metadata: &ObjectMeta) -> Value {
    let mut map = serde_json::Map::new();
    map.insert("kind".into(), Value::String("PartialObjectMetadata".into()));
    map.insert(
        "apiVersion".into(),
        Value::String(format!("meta.k8s.io/{version}")),
    );
    map.insert(
        "metadata".into(),
        serde_json::to_value(metadata).unwrap_or(Value::Null),
    );
    Value::Object(map)
}

/// The age of something created at `created` (RFC 3339), as upstream's `Age` columns print it;
/// `<unknown>` when absent.
pub fn age(created: Option<&str>, now: jiff::Timestamp) -> String {
    match created.and_then(crate::meta::parse_time) {
        Some(at) => human_duration(now.as_second() - at.as_second()),
        None => "<unknown>".into(),
    }
}

/// A succinct duration with two or three significant figures, as upstream's `HumanDuration`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let rest = seconds % 60;
        return if rest == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{rest}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let rest = minutes % 60;
        return if rest == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{rest}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let rest = hours % 24;
        return if rest == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{rest}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let rest = (hours / 24) % 365;
        return if rest == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{rest}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_upstream() {
        for (seconds, expected) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (150, "2m30s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 120, "3h2m"),
            (47 * 3600, "47h"),
            (50 * 3600, "2d2h"),
            (48 * 3600, "2d"),
            (10 * 86400, "10d"),
            (800 * 86400, "2y70d"),
            (3000 * 86400, "8y"),
        ] {
            assert_eq!(human_duration(seconds), expected, "{seconds}");
        }
    }

    #[test]
    fn ages_from_timestamps() {
        let now: jiff::Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        assert_eq!(age(Some("2026-01-01T00:00:00Z"), now), "10m");
        assert_eq!(age(None, now), "<unknown>");
    }
}
