//! The six watch guarantees that etcd's robustness tests check, as assertion helpers.
//!
//! - **ordered**: events arrive in revision order;
//! - **unique**: no change is delivered twice;
//! - **atomic**: the changes of one revision are never split across messages;
//! - **bookmarkable**: no event at or below a progress revision arrives after that progress;
//! - **reliable**: no change that matches the watch is left out;
//! - **resumable**: a watch restarted after a delivered revision delivers exactly what follows.

use std::collections::HashSet;

use crate::{Event, Revision, Storage, WatchMessage, WatchRequest};

use super::read_events;

/// Ordered: revisions never go down, and two events share a revision only if they are adjacent
/// (one revision's changes are delivered together).
pub fn assert_ordered(events: &[Event]) {
    for pair in events.windows(2) {
        assert!(
            pair[0].revision() <= pair[1].revision(),
            "ordered: revision {} delivered after {}",
            pair[1].revision(),
            pair[0].revision()
        );
    }
}

/// Unique: no (revision, key) is delivered twice.
pub fn assert_unique(events: &[Event]) {
    let mut seen = HashSet::new();
    for event in events {
        assert!(
            seen.insert((event.revision(), event.kv.key.clone())),
            "unique: {} at revision {} delivered twice",
            event.kv.key,
            event.revision()
        );
    }
}

/// Atomic: the last revision of one `Events` message never reappears in a later message.
pub fn assert_atomic(messages: &[WatchMessage]) {
    let mut last_complete: Option<Revision> = None;
    for message in messages {
        if let WatchMessage::Events(events) = message {
            if let (Some(done), Some(first)) = (last_complete, events.first()) {
                assert!(
                    first.revision() > done,
                    "atomic: revision {} continued in a later message",
                    first.revision()
                );
            }
            if let Some(last) = events.last() {
                last_complete = Some(last.revision());
            }
        }
    }
}

/// Bookmarkable: after `Progress(r)`, every event has a revision above `r`; progress never goes
/// backwards and never announces less than what was already delivered.
pub fn assert_bookmarkable(messages: &[WatchMessage]) {
    let mut progress: Option<Revision> = None;
    let mut delivered: Option<Revision> = None;
    for message in messages {
        match message {
            WatchMessage::Progress(rev) => {
                if let Some(before) = progress {
                    assert!(
                        *rev >= before,
                        "bookmarkable: progress went from {before} to {rev}"
                    );
                }
                if let Some(delivered) = delivered {
                    assert!(
                        *rev >= delivered,
                        "bookmarkable: progress {rev} below delivered revision {delivered}"
                    );
                }
                progress = Some(*rev);
            }
            WatchMessage::Events(events) => {
                for event in events {
                    if let Some(progress) = progress {
                        assert!(
                            event.revision() > progress,
                            "bookmarkable: event at {} after progress {progress}",
                            event.revision()
                        );
                    }
                    delivered = Some(event.revision());
                }
            }
        }
    }
}

/// Reliable: `events` are exactly the changes of `reference` that match `request` and come after
/// `request.after` (up to the last revision of `reference`). `reference` must be the complete
/// change log of that range, for example what a watch of every key delivered.
pub fn assert_reliable(events: &[Event], reference: &[Event], request: &WatchRequest) {
    let expected: Vec<&Event> = reference
        .iter()
        .filter(|e| e.revision() > request.after && matches_request(&e.kv.key, request))
        .collect();
    let got: Vec<&Event> = events.iter().collect();
    assert_eq!(
        got.len(),
        expected.len(),
        "reliable: {} events delivered, {} expected for {request:?}",
        got.len(),
        expected.len()
    );
    for (got, expected) in got.iter().zip(&expected) {
        assert_eq!(got, expected, "reliable: event differs from the change log");
    }
}

/// Whether a change of `key` matches `request`.
pub fn matches_request(key: &str, request: &WatchRequest) -> bool {
    if request.prefix {
        key.starts_with(&request.key)
    } else {
        key == request.key
    }
}

/// Resumable: for each delivered event at index `i` in `picks`, a watch restarted after its
/// revision delivers `events[i + 1]` first.
pub async fn assert_resumable(
    store: &dyn Storage,
    request: &WatchRequest,
    events: &[Event],
    picks: impl IntoIterator<Item = usize>,
) {
    for i in picks {
        let (Some(at), Some(next)) = (events.get(i), events.get(i + 1)) else {
            continue;
        };
        let mut watch = store
            .watch(WatchRequest {
                after: at.revision(),
                ..request.clone()
            })
            .await
            .expect("resume the watch");
        let got = read_events(&mut watch, 1).await.events();
        assert_eq!(
            &got[0],
            next,
            "resumable: a watch after {} did not start with the next event",
            at.revision()
        );
    }
}
