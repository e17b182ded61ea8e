//! The report of a run: a table for people, or one JSON document (`--json`) for scripts. Both
//! carry the same figures: per operation the successes, errors, conflicts, throughput, latency
//! percentiles and bytes; errors by status and reason with an example message; the watch
//! delivery check; and the footprint of each sampled process.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::client::Protocol;
use crate::procfs::ProcessReport;
use crate::stats::OpStats;

/// Everything a run found.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: &'static str,
    /// The server URL.
    pub server: String,
    /// `gitVersion` from the server's `/version`.
    pub server_version: Option<String>,
    /// The HTTP version.
    pub protocol: Protocol,
    /// Shared HTTP/2 connections of the request clients (absent for HTTP/1.1).
    pub connections: Option<usize>,
    /// Concurrent clients.
    pub clients: usize,
    /// The namespace.
    pub namespace: String,
    /// The scenario's options.
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// Seconds the measured phase took.
    pub wall_seconds: f64,
    /// Seconds spent opening the request clients' connections (TCP, TLS, HTTP/2 handshakes)
    /// before the measured phase, so that its figures are those of the requests alone.
    pub connect_seconds: f64,
    /// Per operation.
    pub ops: Vec<OpReport>,
    /// The delivery check of watch and mixed.
    pub watch: Option<WatchReport>,
    /// Sampled processes, the load tool itself last.
    pub processes: Vec<ProcessReport>,
    /// Remarks (fewer objects than asked, cleanup trouble, …).
    pub notes: Vec<String>,
    /// No request failed and every watcher got every event once and in order.
    pub clean: bool,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Smallest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
}

/// One error kind.
#[derive(Debug, Serialize)]
pub struct ErrorReport {
    /// Occurrences.
    pub count: u64,
    /// The first message.
    pub example: String,
}

/// One operation's figures.
#[derive(Debug, Serialize)]
pub struct OpReport {
    /// The operation.
    pub name: String,
    /// Successes.
    pub ok: u64,
    /// Failures.
    pub errors: u64,
    /// 409 conflicts (updates only).
    pub conflicts: u64,
    /// Successes per second over the operation's span.
    pub throughput_per_s: f64,
    /// Seconds from the first start to the last end.
    pub elapsed_s: f64,
    /// Latency of successes (for `delivery`: acknowledgement → receipt).
    pub latency_ms: Latency,
    /// Request body bytes.
    pub bytes_sent: u64,
    /// Response body bytes.
    pub bytes_received: u64,
    /// List items or table rows received.
    pub items: u64,
    /// Failures by `status reason` or transport kind.
    pub errors_by_reason: BTreeMap<String, ErrorReport>,
}

impl From<&OpStats> for OpReport {
    fn from(op: &OpStats) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        OpReport {
            name: op.name.clone(),
            ok: op.ok,
            errors: op.error_count(),
            conflicts: op.conflicts,
            throughput_per_s: op.throughput(),
            elapsed_s: op.elapsed().as_secs_f64(),
            latency_ms: Latency {
                p50: ms(op.latency.percentile(50.0)),
                p90: ms(op.latency.percentile(90.0)),
                p99: ms(op.latency.percentile(99.0)),
                max: ms(op.latency.max()),
                min: ms(op.latency.min()),
                mean: op.latency.mean() / 1000.0,
            },
            bytes_sent: op.bytes_sent,
            bytes_received: op.bytes_received,
            items: op.items,
            errors_by_reason: op
                .errors
                .iter()
                .map(|(key, e)| {
                    (
                        key.clone(),
                        ErrorReport {
                            count: e.count,
                            example: e.example.clone(),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// The watch delivery check over all (watcher, update) pairs.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct WatchReport {
    /// Watchers (or informers) started.
    pub watchers: u64,
    /// Watchers whose stream failed or ended early.
    pub watchers_failed: u64,
    /// Updates the server acknowledged.
    pub updates_acknowledged: u64,
    /// acknowledged updates × watchers.
    pub expected_deliveries: u64,
    /// Distinct (watcher, acknowledged update) pairs received.
    pub delivered: u64,
    /// Expected but never received.
    pub missing: u64,
    /// Received more than once.
    pub duplicated: u64,
    /// Received after a later update (only checked when updates are ordered: `watch`).
    pub out_of_order: u64,
    /// Whether order was checked.
    pub order_checked: bool,
    /// Events of updates whose acknowledgement never arrived (the writer timed out).
    pub unacknowledged: u64,
    /// Deliveries received before the writer had read the update's acknowledgement (their
    /// delay counts as 0).
    pub before_acknowledgement: u64,
    /// Events that carry no sequence number of this run (other objects, other writers).
    pub other_events: u64,
}

impl WatchReport {
    /// Nothing missing, repeated, reordered, and no watcher failed.
    pub fn is_clean(&self) -> bool {
        self.missing == 0
            && self.duplicated == 0
            && self.out_of_order == 0
            && self.watchers_failed == 0
    }
}

/// Milliseconds with three significant figures.
pub fn format_ms(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.1}s", ms / 1000.0)
    } else if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0}ms")
    } else if ms >= 10.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.2}ms")
    }
}

/// Bytes in binary units.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

impl Report {
    /// The JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"cannot encode the report: {e}\"}}"))
    }

    /// The table.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let connections = match (self.protocol, self.connections) {
            (Protocol::Http2, Some(1)) => " (1 connection)".to_owned(),
            (Protocol::Http2, Some(n)) => format!(" ({n} connections)"),
            _ => String::new(),
        };
        let version = self
            .server_version
            .as_deref()
            .map(|v| format!(" ({v})"))
            .unwrap_or_default();
        let protocol = match self.protocol {
            Protocol::Http1 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
        };
        let _ = writeln!(
            out,
            "ironplane-load {}: {}{version} over {protocol}{connections}, {} client{}, namespace {}",
            self.scenario,
            self.server,
            self.clients,
            if self.clients == 1 { "" } else { "s" },
            self.namespace
        );
        let parameters: Vec<String> = self
            .parameters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !parameters.is_empty() {
            let _ = writeln!(out, "parameters: {}", parameters.join(" "));
        }
        let show_items = self.ops.iter().any(|o| o.items > 0);
        let name_width = self
            .ops
            .iter()
            .map(|o| o.name.len())
            .max()
            .unwrap_or(2)
            .max(2);
        let _ = write!(
            out,
            "\n  {:<name_width$} {:>8} {:>7} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
            "op",
            "ok",
            "errors",
            "conflicts",
            "ops/s",
            "p50",
            "p90",
            "p99",
            "max",
            "sent",
            "received"
        );
        if show_items {
            let _ = write!(out, " {:>9}", "items");
        }
        out.push('\n');
        for op in &self.ops {
            let l = &op.latency_ms;
            let ms = |value: f64| {
                if op.ok == 0 {
                    "-".to_owned()
                } else {
                    format_ms(value)
                }
            };
            let _ = write!(
                out,
                "  {:<name_width$} {:>8} {:>7} {:>9} {:>9.1} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
                op.name,
                op.ok,
                op.errors,
                op.conflicts,
                op.throughput_per_s,
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.max),
                format_bytes(op.bytes_sent),
                format_bytes(op.bytes_received)
            );
            if show_items {
                let items = if op.items == 0 {
                    "-".to_owned()
                } else {
                    op.items.to_string()
                };
                let _ = write!(out, " {items:>9}");
            }
            out.push('\n');
        }
        let errors: Vec<_> = self
            .ops
            .iter()
            .flat_map(|op| {
                op.errors_by_reason
                    .iter()
                    .map(move |(k, e)| (op.name.as_str(), k, e))
            })
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(out, "\nerrors:");
            for (op, key, e) in errors {
                let example: String = e.example.chars().take(160).collect();
                let _ = writeln!(
                    out,
                    "  {op:<name_width$} {key:<24} {:>8}x  {example}",
                    e.count
                );
            }
        }
        if let Some(w) = &self.watch {
            let _ = writeln!(
                out,
                "\nwatch: {} watchers ({} failed), {} updates acknowledged, {}/{} deliveries; missing {}, duplicated {}, out of order {}{}; {} before the acknowledgement (delay 0), {} unacknowledged, {} other events",
                w.watchers,
                w.watchers_failed,
                w.updates_acknowledged,
                w.delivered,
                w.expected_deliveries,
                w.missing,
                w.duplicated,
                w.out_of_order,
                if w.order_checked {
                    ""
                } else {
                    " (order not checked)"
                },
                w.before_acknowledgement,
                w.unacknowledged,
                w.other_events
            );
        }
        if !self.processes.is_empty() {
            let _ = writeln!(out, "\nprocesses:");
            for p in &self.processes {
                let who = match p.pid {
                    Some(pid) => format!("{pid} {}", p.name),
                    None => format!("self {}", p.name),
                };
                let cores = if p.wall_seconds > 0.0 {
                    p.cpu_seconds / p.wall_seconds
                } else {
                    0.0
                };
                let _ = writeln!(
                    out,
                    "  {who:<28} RSS {} start, {} peak, {} end; CPU {:.2}s ({cores:.2} cores over {:.2}s){}",
                    format_bytes(p.rss_start),
                    format_bytes(p.rss_peak),
                    format_bytes(p.rss_end),
                    p.cpu_seconds,
                    p.wall_seconds,
                    if p.exited {
                        "; exited during the run"
                    } else {
                        ""
                    }
                );
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        let _ = writeln!(
            out,
            "\nwall time {:.2}s (connections opened beforehand in {:.0} ms); {}",
            self.wall_seconds,
            self.connect_seconds * 1000.0,
            if self.clean {
                "clean"
            } else {
                "NOT CLEAN: requests failed or watch events were lost, repeated or reordered"
            }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_units() {
        assert_eq!(format_ms(0.123), "0.12ms");
        assert_eq!(format_ms(12.345), "12.3ms");
        assert_eq!(format_ms(123.4), "123ms");
        assert_eq!(format_ms(1234.0), "1.23s");
        assert_eq!(format_ms(12345.0), "12.3s");
        assert_eq!(format_bytes(512), "512B");
        assert_eq!(format_bytes(1536), "1.5KiB");
        assert_eq!(format_bytes(15_300_000), "14.6MiB");
    }

    #[test]
    fn watch_report_cleanliness() {
        assert!(WatchReport::default().is_clean());
        assert!(
            !WatchReport {
                missing: 1,
                ..Default::default()
            }
            .is_clean()
        );
        assert!(
            !WatchReport {
                watchers_failed: 1,
                ..Default::default()
            }
            .is_clean()
        );
    }
}
