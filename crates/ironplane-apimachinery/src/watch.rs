//! Watch events as they travel over the wire: `{"type":"ADDED","object":{...}}`, one per line.

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// The object was created (or is part of the initial state).
    Added,
    /// The object changed.
    Modified,
    /// The object was deleted.
    Deleted,
    /// A progress marker carrying only a resourceVersion.
    Bookmark,
    /// The watch failed; the object is a `Status`.
    Error,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
            EventType::Bookmark => "BOOKMARK",
            EventType::Error => "ERROR",
        }
    }
}

/// Frame one event: the object's JSON is spliced in as is, so a cached encoding is never parsed
/// again. Ends with a newline, as upstream's JSON watch stream does.
pub fn encode_event(event_type: EventType, object_json: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(object_json.len() + 32);
    frame.extend_from_slice(b"{\"type\":\"");
    frame.extend_from_slice(event_type.as_str().as_bytes());
    frame.extend_from_slice(b"\",\"object\":");
    frame.extend_from_slice(object_json);
    frame.extend_from_slice(b"}\n");
    frame
}

/// The annotation that marks the bookmark ending a watch's initial events (WatchList).
pub const INITIAL_EVENTS_END_ANNOTATION: &str = "k8s.io/initial-events-end";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_events() {
        assert_eq!(
            encode_event(EventType::Added, br#"{"kind":"ConfigMap"}"#),
            b"{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\"}}\n".to_vec()
        );
    }
}
