//! `watch`, and the watch machinery `mixed` shares: the table of acknowledgement times indexed by
//! sequence number, the per-watcher delivery check (exactly once, in order, delay from
//! acknowledgement to receipt), and the watcher task that reads a newline-delimited JSON watch
//! stream.
//!
//! Every update stamps `data["ironplane-load-seq"]` with a sequence number starting at 1; the
//! writer records when the server acknowledged it; each watcher records when it received it.
//! Delivery delay = receipt − acknowledgement (0 when the event arrived before the writer had
//! read the response). Memory per watcher: one bit per sequence number and a small histogram.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc, watch as signal};

use super::basic::list_once;
use super::{Ctx, Name, Outcome, configmap, payload, resource_version_of, wait_until, workers};
use crate::client::{Client, JSON, read_body};
use crate::histogram::Histogram;
use crate::listscan::LineFramer;
use crate::report::WatchReport;
use crate::stats::{Failure, OpStats, Recorder, merge_all};

/// How many watches are being opened at once.
const OPENING: usize = 64;

/// When the server acknowledged each sequence number.
pub struct AckTable {
    origin: Instant,
    /// Nanoseconds after `origin`, plus one; 0 = not acknowledged.
    slots: Vec<AtomicU64>,
    acknowledged: AtomicU64,
    /// Which object each sequence number was written to (empty when there is one object).
    owners: Vec<AtomicU32>,
    objects: usize,
}

impl AckTable {
    /// Room for sequence numbers 1..=capacity written to `objects` objects.
    pub fn new(capacity: u64, objects: usize) -> Self {
        let owners = if objects > 1 {
            (0..=capacity).map(|_| AtomicU32::new(0)).collect()
        } else {
            Vec::new()
        };
        AckTable {
            origin: Instant::now(),
            slots: (0..=capacity).map(|_| AtomicU64::new(0)).collect(),
            acknowledged: AtomicU64::new(0),
            owners,
            objects: objects.max(1),
        }
    }

    /// Notes that `seq` is about to be written to object `object` (before the write is sent).
    pub fn assign(&self, seq: u64, object: usize) {
        if let Some(owner) = self.owners.get(seq as usize) {
            owner.store(u32::try_from(object).unwrap_or(u32::MAX), Ordering::Release);
        }
    }

    /// The object `seq` was written to.
    fn owner(&self, seq: u64) -> usize {
        self.owners
            .get(seq as usize)
            .map_or(0, |o| o.load(Ordering::Acquire) as usize)
    }

    /// The largest sequence number there is room for.
    pub fn capacity(&self) -> u64 {
        self.slots.len() as u64 - 1
    }

    /// Records that `seq` was acknowledged at `at`.
    pub fn ack(&self, seq: u64, at: Instant) {
        if let Some(slot) = self.slots.get(seq as usize).filter(|_| seq > 0) {
            let nanos = u64::try_from(at.saturating_duration_since(self.origin).as_nanos())
                .unwrap_or(u64::MAX - 1);
            if slot.swap(nanos + 1, Ordering::Release) == 0 {
                self.acknowledged.fetch_add(1, Ordering::Release);
            }
        }
    }

    /// When `seq` was acknowledged.
    pub fn get(&self, seq: u64) -> Option<Instant> {
        let nanos = self.slots.get(seq as usize)?.load(Ordering::Acquire);
        (nanos > 0).then(|| self.origin + Duration::from_nanos(nanos - 1))
    }

    /// How many sequence numbers were acknowledged.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::Acquire)
    }
}

/// One watcher's record of what it received.
#[derive(Debug)]
pub struct DeliveryCheck {
    seen: Vec<u64>,
    /// With the order check: the last sequence number seen per object.
    last: Vec<u64>,
    order: bool,
    /// Distinct sequence numbers received.
    pub distinct: u64,
    duplicated: u64,
    out_of_order: u64,
    other: u64,
    delays: Histogram,
    early: Vec<(u64, Instant)>,
}

impl DeliveryCheck {
    /// For the sequence numbers of `acks`; `order` checks that they arrive increasing for
    /// each object (updates to one object are sequential, so their events must be too).
    pub fn new(acks: &AckTable, order: bool) -> Self {
        DeliveryCheck {
            seen: vec![0; (acks.capacity() as usize + 1).div_ceil(64)],
            last: if order {
                vec![0; acks.objects]
            } else {
                Vec::new()
            },
            order,
            distinct: 0,
            duplicated: 0,
            out_of_order: 0,
            other: 0,
            delays: Histogram::default(),
            early: Vec::new(),
        }
    }

    /// Notes an event carrying `seq` (None: not one of ours) received at `at`.
    pub fn observe(&mut self, seq: Option<u64>, at: Instant, acks: &AckTable) {
        let Some(seq) = seq.filter(|s| *s > 0 && *s <= acks.capacity()) else {
            self.other += 1;
            return;
        };
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if self.seen[word] & bit != 0 {
            self.duplicated += 1;
            return;
        }
        self.seen[word] |= bit;
        self.distinct += 1;
        if let Some(last) = self.last.get_mut(acks.owner(seq)) {
            if seq < *last {
                self.out_of_order += 1;
            }
            *last = (*last).max(seq);
        }
        match acks.get(seq) {
            Some(acked) => self
                .delays
                .record_duration(at.saturating_duration_since(acked)),
            None => self.early.push((seq, at)),
        }
    }

    /// Settles events that arrived before their acknowledgement and counts what is missing:
    /// `(report counts, delay histogram)`.
    pub fn finish(mut self, acks: &AckTable) -> (WatchReport, Histogram) {
        let (mut unacknowledged, mut early) = (0, 0);
        for (seq, at) in std::mem::take(&mut self.early) {
            match acks.get(seq) {
                Some(acked) => {
                    early += u64::from(at < acked);
                    self.delays
                        .record_duration(at.saturating_duration_since(acked));
                }
                None => unacknowledged += 1,
            }
        }
        let mut delivered = 0;
        for seq in 1..=acks.capacity() {
            if acks.get(seq).is_some() && self.seen[(seq / 64) as usize] & (1 << (seq % 64)) != 0 {
                delivered += 1;
            }
        }
        let acknowledged = acks.acknowledged();
        let report = WatchReport {
            watchers: 1,
            watchers_failed: 0,
            updates_acknowledged: acknowledged,
            expected_deliveries: acknowledged,
            delivered,
            missing: acknowledged - delivered,
            duplicated: self.duplicated,
            out_of_order: self.out_of_order,
            order_checked: self.order,
            unacknowledged,
            before_acknowledgement: early,
            other_events: self.other,
        };
        (report, self.delays)
    }
}

/// A watch event as far as the check needs it.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// ADDED or MODIFIED, with our sequence number if the object carries one.
    Changed(Option<u64>),
    /// DELETED (not one of our updates).
    Deleted,
    /// BOOKMARK.
    Bookmark,
    /// ERROR, with its Status.
    Error(Failure),
}

/// Parses one line of a watch stream.
pub fn parse_event(line: &[u8]) -> Result<Event, String> {
    #[derive(Deserialize)]
    struct Raw<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
        #[serde(borrow, default)]
        object: Option<Object<'a>>,
    }
    #[derive(Deserialize)]
    struct Object<'a> {
        #[serde(borrow, default)]
        data: Option<Data<'a>>,
        #[serde(default)]
        code: Option<u16>,
        #[serde(borrow, default)]
        reason: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        message: Option<Cow<'a, str>>,
    }
    /// Only the sequence number; the payload is skipped without being copied.
    #[derive(Deserialize)]
    struct Data<'a> {
        #[serde(rename = "ironplane-load-seq", borrow, default)]
        seq: Option<Cow<'a, str>>,
    }
    let raw: Raw<'_> =
        serde_json::from_slice(line).map_err(|e| format!("invalid watch event: {e}"))?;
    Ok(match raw.kind.as_ref() {
        "ADDED" | "MODIFIED" => {
            let seq = raw
                .object
                .and_then(|o| o.data)
                .and_then(|d| d.seq)
                .and_then(|s| s.parse::<u64>().ok());
            Event::Changed(seq)
        }
        "DELETED" => Event::Deleted,
        "BOOKMARK" => Event::Bookmark,
        "ERROR" => {
            let object = raw.object;
            let code = object.as_ref().and_then(|o| o.code).unwrap_or(0);
            let reason = object
                .as_ref()
                .and_then(|o| o.reason.as_deref().map(str::to_owned))
                .unwrap_or_default();
            let message = object
                .as_ref()
                .and_then(|o| o.message.as_deref().map(str::to_owned))
                .unwrap_or_default();
            Event::Error(Failure::new(
                format!("watch ERROR {code} {reason}").trim().to_owned(),
                message,
            ))
        }
        other => return Err(format!("unknown watch event type {other:?}")),
    })
}

/// What a watcher hands back.
pub struct WatcherResult {
    /// `watch` (opening) row and errors.
    pub ops: Vec<OpStats>,
    /// The delivery check.
    pub check: DeliveryCheck,
    /// The stream failed or ended early.
    pub failed: bool,
}

/// Shared state of a group of watchers.
pub struct WatchGroup {
    /// Acknowledgements.
    pub acks: Arc<AckTable>,
    /// Distinct sequence numbers each watcher has seen, for the drain.
    pub progress: Vec<AtomicU64>,
    /// Whether order is checked.
    pub order: bool,
}

/// What a watcher needs.
pub struct WatcherSetup {
    /// Its index in the group.
    pub index: usize,
    /// Its client (connection).
    pub client: Client,
    /// The watch request path.
    pub path: String,
    /// The group's shared state.
    pub group: Arc<WatchGroup>,
    /// Bounds how many watches are being opened at once.
    pub opening: Arc<Semaphore>,
    /// Told once the watch is open (true) or has failed (false).
    pub ready: mpsc::Sender<bool>,
    /// Raised when the run is over.
    pub stop: signal::Receiver<bool>,
    /// Where to record (may already hold rows, such as an informer's list).
    pub rec: Recorder,
}

/// A watcher that never started (its informer's list failed).
pub fn failed_watcher(acks: &AckTable) -> WatcherResult {
    WatcherResult {
        ops: Vec::new(),
        check: DeliveryCheck::new(acks, false),
        failed: true,
    }
}

/// Opens a watch and checks what arrives until `stop` is raised.
pub async fn watcher(setup: WatcherSetup) -> WatcherResult {
    let WatcherSetup {
        index,
        mut client,
        path,
        group,
        opening,
        ready,
        mut stop,
        mut rec,
    } = setup;
    let mut check = DeliveryCheck::new(&group.acks, group.order);
    let start = Instant::now();
    let opened = {
        let _permit = opening.acquire().await;
        client.open(&path, JSON).await
    };
    let response = match opened {
        Ok(response) if response.status().is_success() => response,
        Ok(response) => {
            let status = response.status();
            let body = read_body(response.into_body(), 64 << 10)
                .await
                .unwrap_or_default();
            rec.error(
                "watch",
                start,
                Failure::from_response(status, &body),
                0,
                body.len() as u64,
            );
            let _ = ready.send(false).await;
            return WatcherResult {
                ops: rec.into_ops(),
                check,
                failed: true,
            };
        }
        Err(failure) => {
            rec.error("watch", start, failure, 0, 0);
            let _ = ready.send(false).await;
            return WatcherResult {
                ops: rec.into_ops(),
                check,
                failed: true,
            };
        }
    };
    rec.ok("watch", start, 0, 0);
    let _ = ready.send(true).await;
    let mut body = response.into_body();
    let mut framer = LineFramer::default();
    let mut bytes = 0u64;
    let mut failure: Option<Failure> = None;
    loop {
        let chunk = tokio::select! {
            biased;
            _ = stop.changed() => break,
            chunk = body.chunk() => chunk,
        };
        match chunk {
            None => {
                if !*stop.borrow() {
                    failure = Some(Failure::new(
                        "watch ended",
                        "the server ended the watch before the run did",
                    ));
                }
                break;
            }
            Some(Err(error)) => {
                failure = Some(error);
                break;
            }
            Some(Ok(data)) => {
                let now = Instant::now();
                bytes += data.len() as u64;
                let mut events = 0;
                let fed = framer.feed(&data, |line| {
                    events += 1;
                    match parse_event(line) {
                        Ok(Event::Changed(seq)) => check.observe(seq, now, &group.acks),
                        Ok(Event::Deleted) => check.observe(None, now, &group.acks),
                        Ok(Event::Bookmark) => {}
                        Ok(Event::Error(f)) => failure = failure.take().or(Some(f)),
                        Err(message) => {
                            failure = failure
                                .take()
                                .or(Some(Failure::new("invalid event", message)))
                        }
                    }
                });
                rec.progress().events(events);
                group.progress[index].store(check.distinct, Ordering::Release);
                if let Err(message) = fed {
                    failure = Some(Failure::new("invalid event", message));
                }
                if failure.is_some() {
                    break;
                }
            }
        }
    }
    rec.op("watch").bytes_received += bytes;
    let failed = failure.is_some();
    if let Some(failure) = failure {
        rec.op("watch").add_error(failure, 1);
        rec.progress().error();
    }
    // A finished watcher no longer holds up the drain.
    group.progress[index].store(u64::MAX, Ordering::Release);
    WatcherResult {
        ops: rec.into_ops(),
        check,
        failed,
    }
}

/// Waits until every watcher has seen every acknowledged update, or `drain` has passed.
pub async fn drain(group: &WatchGroup, drain: Duration) {
    let deadline = Instant::now() + drain;
    while Instant::now() < deadline {
        let acknowledged = group.acks.acknowledged();
        if group
            .progress
            .iter()
            .all(|p| p.load(Ordering::Acquire) >= acknowledged)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sums the watchers' checks: report, delivery histogram, and their operation rows.
pub fn settle(
    results: Vec<WatcherResult>,
    acks: &AckTable,
) -> (WatchReport, Histogram, Vec<OpStats>) {
    let mut total = WatchReport {
        order_checked: true,
        ..WatchReport::default()
    };
    let mut delays = Histogram::default();
    let mut parts = Vec::new();
    for result in results {
        let (report, histogram) = result.check.finish(acks);
        total.watchers += 1;
        total.watchers_failed += u64::from(result.failed);
        total.updates_acknowledged = report.updates_acknowledged;
        total.expected_deliveries += report.expected_deliveries;
        total.delivered += report.delivered;
        total.missing += report.missing;
        total.duplicated += report.duplicated;
        total.out_of_order += report.out_of_order;
        total.order_checked &= report.order_checked;
        total.unacknowledged += report.unacknowledged;
        total.before_acknowledgement += report.before_acknowledgement;
        total.other_events += report.other_events;
        delays.merge(&histogram);
        parts.push(result.ops);
    }
    (total, delays, merge_all(parts))
}

/// The `delivery` row: the delay histogram over the measured span.
pub fn delivery_row(delays: Histogram, span: (Instant, Instant)) -> OpStats {
    let mut op = OpStats::new("delivery");
    op.ok = delays.count();
    op.latency = delays;
    op.first_start = Some(span.0);
    op.last_end = Some(span.1);
    op
}

/// The watch path for a collection from `resource_version`, timing out after `seconds`.
pub fn watch_path(collection: &str, resource_version: &str, seconds: u64) -> String {
    format!(
        "{collection}?watch=true&resourceVersion={resource_version}&allowWatchBookmarks=true&timeoutSeconds={seconds}"
    )
}

/// Options of `watch`.
pub struct WatchOptions {
    /// Watchers.
    pub watchers: usize,
    /// Updates per second in total.
    pub rate: f64,
    /// Most updates.
    pub updates: u64,
    /// Objects updated in turn.
    pub objects: usize,
    /// Data bytes of the updated objects.
    pub size: usize,
    /// Catch-up wait.
    pub drain: Duration,
}

/// `watch`: watchers from the resourceVersion of a list, while the writer updates
/// `<prefix>watch-<j>` (j < objects) in turn at `rate` per second in total, each object's
/// updates strictly one after another.
pub async fn watch(ctx: &Arc<Ctx>, o: WatchOptions) -> anyhow::Result<Outcome> {
    let collection = ctx.collection();
    let data: Arc<str> = payload(o.size).into();
    let mut lister = ctx.client(0);

    // Setup: the watched objects exist and we know their resourceVersions.
    let mut versions = Vec::with_capacity(o.objects);
    for j in 0..o.objects {
        let name = format!("{}watch-{j}", ctx.plan.prefix);
        versions.push(
            current_version(&mut lister, &collection, &ctx.plan.namespace, &name, &data).await?,
        );
    }

    let measure = ctx.begin("watch")?;
    let mut rec = ctx.recorder();
    let Some(list_meta) = list_once(
        &mut lister,
        &mut rec,
        &collection,
        0,
        JSON,
        None,
        ("list", "page"),
    )
    .await
    else {
        let (processes, wall_seconds) = measure.end().await;
        return Ok(Outcome {
            ops: rec.into_ops(),
            processes,
            wall_seconds,
            notes: vec!["the initial list failed".into()],
            ..Outcome::default()
        });
    };
    let list_rv = list_meta.resource_version.unwrap_or_default();

    let acks = Arc::new(AckTable::new(o.updates, o.objects));
    let group = Arc::new(WatchGroup {
        acks: Arc::clone(&acks),
        progress: (0..o.watchers).map(|_| AtomicU64::new(0)).collect(),
        order: true,
    });
    let timeout_seconds = (ctx.plan.duration + o.drain).as_secs() + 60;
    let path = watch_path(&collection, &list_rv, timeout_seconds);
    let (stop_tx, stop_rx) = signal::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::channel(o.watchers.max(1));
    let opening = Arc::new(Semaphore::new(OPENING));
    let handles: Vec<_> = ctx
        .watch_clients(o.watchers)
        .into_iter()
        .enumerate()
        .map(|(i, client)| {
            tokio::spawn(watcher(WatcherSetup {
                index: i,
                client,
                path: path.clone(),
                group: Arc::clone(&group),
                opening: Arc::clone(&opening),
                ready: ready_tx.clone(),
                stop: stop_rx.clone(),
                rec: ctx.recorder(),
            }))
        })
        .collect();
    drop(ready_tx);
    // All watches open (or failed) before the first update, so delays are not startup time.
    let mut opened = 0;
    while opened < o.watchers {
        match tokio::time::timeout(ctx.plan.timeout, ready_rx.recv()).await {
            Ok(Some(_)) => opened += 1,
            Ok(None) | Err(_) => break,
        }
    }

    // The writer: one task per object, each sequential, together paced at `rate`.
    ctx.arm_deadline();
    let writes_started = Instant::now();
    let next_seq = Arc::new(AtomicU64::new(0));
    let versions = Arc::new(versions);
    let period = Duration::from_secs_f64(o.objects as f64 / o.rate);
    let updates = o.updates;
    let objects = o.objects;
    let write_ops = workers(objects, |j| {
        let (ctx, acks, next_seq, versions, data) = (
            Arc::clone(ctx),
            Arc::clone(&acks),
            Arc::clone(&next_seq),
            Arc::clone(&versions),
            Arc::clone(&data),
        );
        let mut writer = ctx.client(j);
        async move {
            let mut rec = ctx.recorder();
            let collection = ctx.collection();
            let name = format!("{}watch-{j}", ctx.plan.prefix);
            let path = format!("{collection}/{name}");
            let mut resource_version = versions[j].clone();
            let mut when = writes_started + period.mul_f64(j as f64 / objects as f64);
            while !wait_until(&ctx, when).await {
                when = (when + period).max(Instant::now());
                let seq = next_seq.fetch_add(1, Ordering::Relaxed) + 1;
                if seq > updates {
                    break;
                }
                acks.assign(seq, j);
                let body = configmap(
                    &ctx.plan.namespace,
                    Name::Fixed(&name),
                    &data,
                    Some(seq),
                    Some(&resource_version),
                );
                let sent = body.len() as u64;
                let start = Instant::now();
                match writer
                    .call(Method::PUT, &path, JSON, Some((JSON, body)))
                    .await
                {
                    Ok(reply) if reply.status.is_success() => {
                        acks.ack(seq, Instant::now());
                        rec.ok("update", start, sent, reply.body.len() as u64);
                        match resource_version_of(&reply.body) {
                            Some(rv) => resource_version = rv,
                            None => rec.op("update").add_error(
                                Failure::new(
                                    "invalid body",
                                    "no resourceVersion in the update response",
                                ),
                                1,
                            ),
                        }
                    }
                    result => {
                        match result {
                            Ok(reply) if reply.status == StatusCode::CONFLICT => {
                                rec.conflict("update", start, sent, reply.body.len() as u64)
                            }
                            Ok(reply) => {
                                let received = reply.body.len() as u64;
                                rec.error(
                                    "update",
                                    start,
                                    Failure::from_response(reply.status, &reply.body),
                                    sent,
                                    received,
                                )
                            }
                            Err(failure) => rec.error("update", start, failure, sent, 0),
                        }
                        // Someone else wrote the object, or the write's fate is unknown: re-read.
                        if let Ok(rv) = current_version(
                            &mut writer,
                            &collection,
                            &ctx.plan.namespace,
                            &name,
                            &data,
                        )
                        .await
                        {
                            resource_version = rv;
                        }
                    }
                }
            }
            rec.into_ops()
        }
    })
    .await?;
    let writes_ended = Instant::now();
    drain(&group, o.drain).await;
    let _ = stop_tx.send(true);
    let mut results = Vec::with_capacity(o.watchers);
    for handle in handles {
        results.push(handle.await.context("a watcher failed")?);
    }
    let (processes, wall_seconds) = measure.end().await;

    let (report, delays, watch_ops) = settle(results, &acks);
    let mut ops = merge_all([rec.into_ops(), write_ops, watch_ops]);
    ops.push(delivery_row(delays, (writes_started, writes_ended)));
    let achieved = acks.acknowledged() as f64
        / writes_ended
            .duration_since(writes_started)
            .as_secs_f64()
            .max(1e-9);
    let mut notes = Vec::new();
    if opened < o.watchers {
        notes.push(format!(
            "only {opened} of {} watches opened within --timeout",
            o.watchers
        ));
    }
    if achieved < o.rate * 0.9 && acks.acknowledged() > 1 {
        notes.push(format!(
            "the writer reached {achieved:.1} of the {} updates/s asked: updates to one object are sequential, \
             so raise --objects to write several objects at once",
            o.rate
        ));
    }
    Ok(Outcome {
        ops,
        watch: Some(report),
        processes,
        wall_seconds,
        notes,
        parameters: [
            ("watchers".to_owned(), json!(o.watchers)),
            ("rate".to_owned(), json!(o.rate)),
            ("objects".to_owned(), json!(o.objects)),
            ("updates_planned".to_owned(), json!(o.updates)),
            ("size".to_owned(), json!(o.size)),
            (
                "achieved_rate".to_owned(),
                json!((achieved * 10.0).round() / 10.0),
            ),
        ]
        .into_iter()
        .collect(),
    })
}

/// The resourceVersion of ConfigMap `name`, creating it when missing.
async fn current_version(
    client: &mut Client,
    collection: &str,
    namespace: &str,
    name: &str,
    data: &str,
) -> anyhow::Result<String> {
    let path = format!("{collection}/{name}");
    let failed = |f: Failure| anyhow::anyhow!("reading {path}: {} {}", f.key, f.message);
    let reply = client
        .call(Method::GET, &path, JSON, None)
        .await
        .map_err(failed)?;
    let reply = if reply.status == StatusCode::NOT_FOUND {
        let body = configmap(namespace, Name::Fixed(name), data, None, None);
        let reply = client
            .call(Method::POST, collection, JSON, Some((JSON, body)))
            .await
            .map_err(failed)?;
        if !reply.status.is_success() {
            return Err(failed(Failure::from_response(reply.status, &reply.body)));
        }
        reply
    } else if reply.status.is_success() {
        reply
    } else {
        return Err(failed(Failure::from_response(reply.status, &reply.body)));
    };
    resource_version_of(&reply.body).ok_or_else(|| anyhow::anyhow!("{path} has no resourceVersion"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events() {
        // The key the writer stamps is the one the parser reads.
        let line = format!(
            r#"{{"type":"MODIFIED","object":{{"data":{{"{}":"3"}}}}}}"#,
            super::super::SEQ_KEY
        );
        assert_eq!(parse_event(line.as_bytes()), Ok(Event::Changed(Some(3))));
        let line = br#"{"type":"MODIFIED","object":{"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"5"},"data":{"payload":"x\"y","ironplane-load-seq":"17"}}}"#;
        assert_eq!(parse_event(line), Ok(Event::Changed(Some(17))));
        assert_eq!(
            parse_event(br#"{"type":"ADDED","object":{"metadata":{"name":"b"}}}"#),
            Ok(Event::Changed(None))
        );
        assert_eq!(
            parse_event(br#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}"#),
            Ok(Event::Bookmark)
        );
        assert_eq!(
            parse_event(br#"{"type":"DELETED","object":{"data":{"ironplane-load-seq":"1"}}}"#),
            Ok(Event::Deleted)
        );
        let Ok(Event::Error(f)) = parse_event(br#"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old"}}"#) else {
            panic!("not an error event")
        };
        assert_eq!(
            (f.key.as_str(), f.message.as_str()),
            ("watch ERROR 410 Expired", "too old")
        );
        assert!(parse_event(b"{").is_err());
        assert!(parse_event(br#"{"type":"NOPE"}"#).is_err());
    }

    #[test]
    fn checks_exactly_once_in_order() {
        let acks = AckTable::new(10, 1);
        let t0 = Instant::now();
        for seq in 1..=6 {
            acks.ack(seq, t0);
        }
        let mut check = DeliveryCheck::new(&acks, true);
        let later = t0 + Duration::from_millis(3);
        for seq in [1, 2, 4, 3, 4, 6] {
            check.observe(Some(seq), later, &acks);
        }
        check.observe(None, later, &acks);
        check.observe(Some(99), later, &acks);
        // 7 arrives before its acknowledgement and is never acknowledged; 8 arrives early and is.
        check.observe(Some(7), t0, &acks);
        check.observe(Some(8), t0, &acks);
        acks.ack(8, t0 + Duration::from_millis(1));
        let (report, delays) = check.finish(&acks);
        assert_eq!(report.updates_acknowledged, 7);
        assert_eq!(report.delivered, 6); // 1,2,3,4,6,8
        assert_eq!(report.missing, 1); // 5
        assert_eq!(report.duplicated, 1); // the second 4
        assert_eq!(report.out_of_order, 1); // 3 after 4
        assert_eq!(report.unacknowledged, 1); // 7
        assert_eq!(report.before_acknowledgement, 1); // 8
        assert_eq!(report.other_events, 2); // no seq, seq beyond the table
        assert_eq!(delays.count(), 6);
        assert_eq!(delays.max(), 3000);
        assert_eq!(delays.min(), 0); // 8 came before its acknowledgement
    }

    #[test]
    fn order_is_checked_per_object() {
        // Objects 0 and 1 are written in turn; their updates may interleave in any way, but each
        // object's own updates must arrive in order.
        let acks = AckTable::new(6, 2);
        for seq in 1..=6 {
            acks.assign(seq, (seq as usize - 1) % 2);
            acks.ack(seq, Instant::now());
        }
        let mut check = DeliveryCheck::new(&acks, true);
        for seq in [2, 1, 4, 3, 5, 6] {
            check.observe(Some(seq), Instant::now(), &acks);
        }
        assert_eq!(check.finish(&acks).0.out_of_order, 0);
        let mut check = DeliveryCheck::new(&acks, true);
        for seq in [1, 5, 3, 2, 4, 6] {
            check.observe(Some(seq), Instant::now(), &acks);
        }
        assert_eq!(check.finish(&acks).0.out_of_order, 1); // 3 after 5, both object 0
    }

    #[test]
    fn order_is_optional() {
        let acks = AckTable::new(3, 1);
        for seq in 1..=3 {
            acks.ack(seq, Instant::now());
        }
        let mut check = DeliveryCheck::new(&acks, false);
        for seq in [3, 1, 2] {
            check.observe(Some(seq), Instant::now(), &acks);
        }
        let (report, _) = check.finish(&acks);
        assert_eq!(
            (report.out_of_order, report.missing, report.delivered),
            (0, 0, 3)
        );
        assert!(!report.order_checked);
    }

    #[test]
    fn settles_many_watchers() {
        let acks = AckTable::new(2, 1);
        acks.ack(1, Instant::now());
        acks.ack(2, Instant::now());
        let results = (0..3)
            .map(|i| {
                let mut check = DeliveryCheck::new(&acks, true);
                check.observe(Some(1), Instant::now(), &acks);
                if i != 0 {
                    check.observe(Some(2), Instant::now(), &acks);
                }
                WatcherResult {
                    ops: vec![],
                    check,
                    failed: i == 2,
                }
            })
            .collect();
        let (report, delays, _) = settle(results, &acks);
        assert_eq!(
            (
                report.watchers,
                report.watchers_failed,
                report.expected_deliveries
            ),
            (3, 1, 6)
        );
        assert_eq!((report.delivered, report.missing), (5, 1));
        assert_eq!(delays.count(), 5);
        assert!(!report.is_clean());
    }
}
