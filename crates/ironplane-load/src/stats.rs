//! Per-operation statistics: a latency histogram of the successful requests, outcome counts,
//! errors grouped by HTTP status and reason (or transport failure), bytes, and the span of time
//! the operation ran, from which throughput is derived. Workers keep their own and merge them
//! at the end; live totals go to [`Progress`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::histogram::Histogram;
use crate::progress::Progress;

/// Why one request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The grouping key: `409 AlreadyExists`, `connect`, `timeout`, ….
    pub key: String,
    /// A human message (one example is kept per key).
    pub message: String,
}

impl Failure {
    /// A failure with a key and a message.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            key: key.into(),
            message: message.into(),
        }
    }

    /// From a non-success response: the key is the status code and the `Status` reason of the
    /// body when it has one (else the canonical reason phrase).
    pub fn from_response(status: http::StatusCode, body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Status {
            #[serde(default)]
            reason: String,
            #[serde(default)]
            message: String,
        }
        let parsed: Option<Status> = serde_json::from_slice(body).ok();
        let canonical = status.canonical_reason().unwrap_or("");
        let (reason, message) = match parsed {
            Some(s) if !s.reason.is_empty() => (s.reason, s.message),
            Some(s) => (canonical.replace(' ', ""), s.message),
            None => {
                let text = String::from_utf8_lossy(&body[..body.len().min(200)])
                    .trim()
                    .to_owned();
                (canonical.replace(' ', ""), text)
            }
        };
        Failure {
            key: format!("{} {}", status.as_u16(), reason).trim().to_owned(),
            message,
        }
    }

    /// The request did not complete in time.
    pub fn timeout(after: Duration) -> Self {
        Failure::new(
            "timeout",
            format!("no complete response within {:.1}s", after.as_secs_f64()),
        )
    }
}

/// How many of one error, with the first message seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCount {
    /// Occurrences.
    pub count: u64,
    /// The first message.
    pub example: String,
}

/// Statistics of one kind of operation.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// The operation's name in the report.
    pub name: String,
    /// Latency of successful operations, µs.
    pub latency: Histogram,
    /// Successes.
    pub ok: u64,
    /// 409 Conflict answers to updates (expected under contention; not errors).
    pub conflicts: u64,
    /// Failures by key.
    pub errors: BTreeMap<String, ErrorCount>,
    /// Request body bytes sent.
    pub bytes_sent: u64,
    /// Response body bytes received.
    pub bytes_received: u64,
    /// List items (or table rows) received.
    pub items: u64,
    /// When the first operation started.
    pub first_start: Option<Instant>,
    /// When the last operation ended.
    pub last_end: Option<Instant>,
}

impl OpStats {
    /// Empty statistics named `name`.
    pub fn new(name: &str) -> Self {
        OpStats {
            name: name.to_owned(),
            latency: Histogram::default(),
            ok: 0,
            conflicts: 0,
            errors: BTreeMap::new(),
            bytes_sent: 0,
            bytes_received: 0,
            items: 0,
            first_start: None,
            last_end: None,
        }
    }

    fn span(&mut self, start: Instant, end: Instant) {
        if self.first_start.is_none_or(|s| start < s) {
            self.first_start = Some(start);
        }
        if self.last_end.is_none_or(|e| end > e) {
            self.last_end = Some(end);
        }
    }

    /// Records a success that took from `start` until now.
    pub fn ok(&mut self, start: Instant, sent: u64, received: u64) {
        let end = Instant::now();
        self.latency.record_duration(end.duration_since(start));
        self.ok += 1;
        self.bytes_sent += sent;
        self.bytes_received += received;
        self.span(start, end);
    }

    /// Records a 409 Conflict.
    pub fn conflict(&mut self, start: Instant, sent: u64, received: u64) {
        self.conflicts += 1;
        self.bytes_sent += sent;
        self.bytes_received += received;
        self.span(start, Instant::now());
    }

    /// Records a failure.
    pub fn error(&mut self, start: Instant, failure: Failure, sent: u64, received: u64) {
        self.add_error(failure, 1);
        self.bytes_sent += sent;
        self.bytes_received += received;
        self.span(start, Instant::now());
    }

    /// Counts `count` failures of one kind without timing.
    pub fn add_error(&mut self, failure: Failure, count: u64) {
        let entry = self
            .errors
            .entry(failure.key)
            .or_insert_with(|| ErrorCount {
                count: 0,
                example: failure.message,
            });
        entry.count += count;
    }

    /// Failures in total.
    pub fn error_count(&self) -> u64 {
        self.errors.values().map(|e| e.count).sum()
    }

    /// Seconds from the first start to the last end.
    pub fn elapsed(&self) -> Duration {
        match (self.first_start, self.last_end) {
            (Some(start), Some(end)) => end.duration_since(start),
            _ => Duration::ZERO,
        }
    }

    /// Successes per second over [`OpStats::elapsed`].
    pub fn throughput(&self) -> f64 {
        let seconds = self.elapsed().as_secs_f64();
        if seconds > 0.0 {
            self.ok as f64 / seconds
        } else {
            0.0
        }
    }

    /// Adds `other` (same operation, another worker).
    pub fn merge(&mut self, other: &OpStats) {
        self.latency.merge(&other.latency);
        self.ok += other.ok;
        self.conflicts += other.conflicts;
        for (key, count) in &other.errors {
            let entry = self
                .errors
                .entry(key.clone())
                .or_insert_with(|| ErrorCount {
                    count: 0,
                    example: count.example.clone(),
                });
            entry.count += count.count;
        }
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.items += other.items;
        if let Some(start) = other.first_start {
            self.span(start, other.last_end.unwrap_or(start));
        }
    }
}

/// A worker's statistics, one [`OpStats`] per operation name, in first-use order.
#[derive(Debug)]
pub struct Recorder {
    ops: Vec<OpStats>,
    progress: Arc<Progress>,
}

impl Recorder {
    /// An empty recorder reporting live totals to `progress`.
    pub fn new(progress: Arc<Progress>) -> Self {
        Recorder {
            ops: Vec::new(),
            progress,
        }
    }

    /// The statistics of `name`, made on first use.
    pub fn op(&mut self, name: &str) -> &mut OpStats {
        let index = match self.ops.iter().position(|o| o.name == name) {
            Some(index) => index,
            None => {
                self.ops.push(OpStats::new(name));
                self.ops.len() - 1
            }
        };
        &mut self.ops[index]
    }

    /// Records a success of `name`.
    pub fn ok(&mut self, name: &str, start: Instant, sent: u64, received: u64) {
        self.progress.ok();
        self.op(name).ok(start, sent, received);
    }

    /// Records a conflict of `name`.
    pub fn conflict(&mut self, name: &str, start: Instant, sent: u64, received: u64) {
        self.progress.ok();
        self.op(name).conflict(start, sent, received);
    }

    /// Records a failure of `name`.
    pub fn error(
        &mut self,
        name: &str,
        start: Instant,
        failure: Failure,
        sent: u64,
        received: u64,
    ) {
        self.progress.error();
        self.op(name).error(start, failure, sent, received);
    }

    /// The shared live counters.
    pub fn progress(&self) -> &Arc<Progress> {
        &self.progress
    }

    /// The statistics, consumed.
    pub fn into_ops(self) -> Vec<OpStats> {
        self.ops
    }
}

/// Merges workers' statistics by operation name, keeping first-seen order.
pub fn merge_all(parts: impl IntoIterator<Item = Vec<OpStats>>) -> Vec<OpStats> {
    let mut merged: Vec<OpStats> = Vec::new();
    for part in parts {
        for op in part {
            match merged.iter_mut().find(|m| m.name == op.name) {
                Some(existing) => existing.merge(&op),
                None => merged.push(op),
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_group_by_status_and_reason() {
        let body = br#"{"kind":"Status","status":"Failure","message":"configmaps \"a\" already exists","reason":"AlreadyExists","code":409}"#;
        let f = Failure::from_response(http::StatusCode::CONFLICT, body);
        assert_eq!(f.key, "409 AlreadyExists");
        assert!(f.message.contains("already exists"));
        let f = Failure::from_response(http::StatusCode::NOT_FOUND, b"404 page not found");
        assert_eq!(
            (f.key.as_str(), f.message.as_str()),
            ("404 NotFound", "404 page not found")
        );
        let f = Failure::from_response(
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            br#"{"message":"nope"}"#,
        );
        assert_eq!(f.key, "415 UnsupportedMediaType");
    }

    #[test]
    fn merges_workers() {
        let progress = Arc::new(Progress::default());
        let mut a = Recorder::new(progress.clone());
        let mut b = Recorder::new(progress.clone());
        let t = Instant::now();
        a.ok("get", t, 0, 10);
        a.error("get", t, Failure::new("timeout", "slow"), 0, 0);
        b.ok("update", t, 5, 5);
        b.ok("get", t, 0, 20);
        b.error("get", t, Failure::new("timeout", "later"), 0, 0);
        b.conflict("update", t, 5, 0);
        let merged = merge_all([a.into_ops(), b.into_ops()]);
        assert_eq!(
            merged.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
            ["get", "update"]
        );
        let get = &merged[0];
        assert_eq!(
            (
                get.ok,
                get.error_count(),
                get.bytes_received,
                get.latency.count()
            ),
            (2, 2, 30, 2)
        );
        assert_eq!(
            get.errors["timeout"],
            ErrorCount {
                count: 2,
                example: "slow".into()
            }
        );
        assert_eq!((merged[1].ok, merged[1].conflicts), (1, 1));
        assert_eq!(progress.ok.load(std::sync::atomic::Ordering::Relaxed), 4);
        assert_eq!(
            progress.errors.load(std::sync::atomic::Ordering::Relaxed),
            2
        );
    }
}
