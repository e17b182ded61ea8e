//! Watches: one etcd watch of the whole key space per store, fanned out to the store's watchers.
//!
//! **Why one watch of every key.** etcd assigns a revision only to a transaction that changes at
//! least one key, and a watch of every key therefore sees every revision, in order. The hub that
//! follows such a watch knows exactly which revisions it has seen (its *position*), which gives
//! three things per-prefix etcd watches cannot:
//!
//! - **Exact progress.** `request_progress` sends etcd a progress request on the hub's stream and
//!   uses the revision of the answer only as a target: the progress is announced once the hub's
//!   position has reached it, so it can never overtake an event. (Before 3.4.24, etcd answered
//!   progress requests ahead of events still queued for the stream, so its answer alone is not a
//!   safe bookmark.) A watcher with `progress_notify` is told the position when it is idle.
//! - **Gap-free resumption.** When the stream is lost (etcd restarted, a member died, the
//!   connection dropped), the hub reconnects with backoff and watches again from its position
//!   plus one: watchers see neither a gap nor a duplicate. If etcd has compacted that history in
//!   the meantime, every watcher is ended with `Compacted` (the watch cache then lists again) and
//!   the hub continues from etcd's compaction point.
//! - **One stream for all watchers**, as etcd's own watch proxy and upstream's watch cache do:
//!   the cost in etcd does not grow with the number of watchers.
//!
//! Events of this store's keys are also kept in a ring of recent events. A watcher that starts at
//! or after the ring's floor is registered at once, with its backlog copied from the ring under
//! the hub's lock, so that the backlog and the live events meet without gap or duplicate. A
//! watcher that starts further back first replays etcd's history with a watch of its own (of
//! every key, from its start revision), then joins the hub as soon as its replay reaches the ring.
//!
//! Each watcher has a bounded queue. The hub never waits for it: a watcher whose queue is full is
//! dropped and its stream ends with `WatcherTooSlow` after what was queued.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use etcd_client::proto::{PbEvent, PbWatchResponse};
use etcd_client::{WatchOptions, WatchStream};
use futures::StreamExt;
use ironplane_storage::{
    Event, EventKind, ProgressRequester, Revision, StorageError, Watch, WatchMessage, WatchRequest,
};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, mpsc};

use crate::error::generic;
use crate::{Inner, Retry, header_revision};

/// The most events one message carries when a backlog is copied from the ring.
const MAX_EVENTS_PER_MESSAGE: usize = 1000;
/// How many messages a replaying watcher's replay may run ahead of its reader.
const REPLAY_QUEUE: usize = 16;
/// The first and the longest wait before watching again after a lost stream.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A progress request that etcd has not answered after this long is sent again.
const PROGRESS_RESEND: Duration = Duration::from_secs(1);
/// etcd's watch id for answers to progress requests (not tied to one watcher).
const PROGRESS_WATCH_ID: i64 = -1;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a watcher asked to see.
#[derive(Clone, Debug)]
struct Spec {
    key: String,
    prefix: bool,
}

impl Spec {
    fn matches(&self, key: &str) -> bool {
        if self.prefix {
            key.starts_with(&self.key)
        } else {
            key == self.key
        }
    }
}

/// What the hub queues for a live watcher.
enum HubMsg {
    Events(Vec<Arc<Event>>),
    Progress(Revision),
}

/// Shared between a watcher's stream, its progress requester and the hub.
struct Control {
    id: u64,
    hub: Weak<Hub>,
    progress_wanted: AtomicBool,
    /// Why the hub stopped feeding the watcher, if it did so with an error.
    ended: Mutex<Option<StorageError>>,
}

impl Control {
    fn end(&self, err: StorageError) {
        let mut ended = lock(&self.ended);
        if ended.is_none() {
            *ended = Some(err);
        }
    }
}

impl ProgressRequester for Control {
    fn request_progress(&self) {
        self.progress_wanted.store(true, Ordering::Release);
        if let Some(hub) = self.hub.upgrade() {
            hub.wake.notify_one();
        }
    }
}

/// A live watcher, as the hub sees it.
struct Subscriber {
    spec: Spec,
    progress_notify: bool,
    /// Events at or below this revision were delivered another way (or precede the watch).
    skip_through: Revision,
    /// The highest revision delivered or announced.
    last_rev: Revision,
    last_sent: Instant,
    tx: mpsc::Sender<HubMsg>,
    control: Arc<Control>,
}

/// A progress request sent to etcd and not yet answered, with the watchers that asked.
struct Outstanding {
    sent: Instant,
    batch: Vec<u64>,
}

struct HubState {
    /// Every revision at or below this one has been seen.
    position: Revision,
    /// The ring holds every event of this store's keys with a revision above this one.
    floor: Revision,
    ring: VecDeque<Arc<Event>>,
    ring_bytes: usize,
    subscribers: HashMap<u64, Subscriber>,
    outstanding: Option<Outstanding>,
    /// Answered progress requests: once the position reaches the revision, the watchers are told.
    answered: Vec<(Revision, Vec<u64>)>,
    closed: bool,
}

/// Follows the store's watch of every key and fans events out to watchers.
pub(crate) struct Hub {
    state: Mutex<HubState>,
    wake: Notify,
    next_id: AtomicU64,
    inner: Arc<Inner>,
}

/// The outcome of registering a watcher with the hub.
enum Registration {
    /// Registered: deliver this backlog first, then the live queue.
    Live(VecDeque<WatchMessage>),
    /// The ring does not reach back far enough: replay from etcd first.
    NeedReplay(mpsc::Sender<HubMsg>),
    /// The hub has stopped.
    Closed,
}

impl Hub {
    /// Start following etcd after `revision`, the current revision.
    pub(crate) fn start(inner: Arc<Inner>, revision: Revision) -> Arc<Hub> {
        let hub = Arc::new(Hub {
            state: Mutex::new(HubState {
                position: revision,
                floor: revision,
                ring: VecDeque::new(),
                ring_bytes: 0,
                subscribers: HashMap::new(),
                outstanding: None,
                answered: Vec::new(),
                closed: false,
            }),
            wake: Notify::new(),
            next_id: AtomicU64::new(1),
            inner,
        });
        tokio::spawn(run(hub.clone()));
        hub
    }

    fn position(&self) -> Revision {
        lock(&self.state).position
    }

    /// Start a watcher for `request` that has seen everything up to `after`.
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        request: WatchRequest,
        after: Revision,
    ) -> Result<Watch, StorageError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let control = Arc::new(Control {
            id,
            hub: Arc::downgrade(self),
            progress_wanted: AtomicBool::new(false),
            ended: Mutex::new(None),
        });
        let spec = Spec {
            key: request.key,
            prefix: request.prefix,
        };
        let (live_tx, live_rx) = mpsc::channel(self.inner.options.watcher_queue.max(1));
        let mut subscription = Subscription {
            backlog: VecDeque::new(),
            replay: None,
            live: live_rx,
            control: control.clone(),
            done: false,
        };
        match self.register(&spec, request.progress_notify, after, live_tx, &control) {
            Registration::Live(backlog) => subscription.backlog = backlog,
            Registration::NeedReplay(live_tx) => {
                let (replay_tx, replay_rx) = mpsc::channel(REPLAY_QUEUE);
                subscription.replay = Some(replay_rx);
                tokio::spawn(replay(
                    self.clone(),
                    Replay {
                        spec,
                        progress_notify: request.progress_notify,
                        after,
                        replay_tx,
                        live_tx,
                        control: control.clone(),
                    },
                ));
            }
            Registration::Closed => return Err(StorageError::Closed),
        }
        let stream = futures::stream::unfold(subscription, |mut subscription| async move {
            let message = subscription.next().await?;
            Some((message, subscription))
        });
        Ok(Watch::new(stream.boxed(), control))
    }

    /// Register a watcher that has delivered everything up to `delivered`, if the ring reaches
    /// back that far.
    fn register(
        &self,
        spec: &Spec,
        progress_notify: bool,
        delivered: Revision,
        tx: mpsc::Sender<HubMsg>,
        control: &Arc<Control>,
    ) -> Registration {
        let mut st = lock(&self.state);
        if st.closed {
            return Registration::Closed;
        }
        if delivered < st.floor {
            return Registration::NeedReplay(tx);
        }
        let mut backlog = VecDeque::new();
        let mut batch: Vec<Event> = Vec::new();
        let mut last_rev = delivered;
        for event in st
            .ring
            .iter()
            .filter(|e| e.revision() > delivered && spec.matches(&e.kv.key))
        {
            let at_boundary = batch
                .last()
                .is_some_and(|last| last.revision() != event.revision());
            if batch.len() >= MAX_EVENTS_PER_MESSAGE && at_boundary {
                backlog.push_back(WatchMessage::Events(std::mem::take(&mut batch)));
            }
            last_rev = event.revision();
            batch.push((**event).clone());
        }
        if !batch.is_empty() {
            backlog.push_back(WatchMessage::Events(batch));
        }
        let skip_through = delivered.max(st.position);
        st.subscribers.insert(
            control.id,
            Subscriber {
                spec: spec.clone(),
                progress_notify,
                skip_through,
                last_rev,
                last_sent: Instant::now(),
                tx,
                control: control.clone(),
            },
        );
        drop(st);
        if control.progress_wanted.load(Ordering::Acquire) {
            self.wake.notify_one();
        }
        Registration::Live(backlog)
    }

    fn remove(&self, id: u64) {
        lock(&self.state).subscribers.remove(&id);
    }

    /// Take in one etcd response's events: `ours` are this store's (already translated), `last`
    /// is the highest revision of the response.
    fn publish(&self, ours: Vec<Arc<Event>>, last: Revision) {
        let capacity = self.inner.options.event_ring_capacity;
        let max_bytes = self.inner.options.event_ring_max_bytes;
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        if last <= st.position {
            return;
        }
        for event in &ours {
            st.ring_bytes += event_bytes(event);
            st.ring.push_back(event.clone());
        }
        while st.ring.len() > capacity || st.ring_bytes > max_bytes {
            match st.ring.pop_front() {
                Some(old) => {
                    st.ring_bytes = st.ring_bytes.saturating_sub(event_bytes(&old));
                    st.floor = st.floor.max(old.revision());
                }
                None => break,
            }
        }
        st.position = last;
        if !ours.is_empty() {
            let now = Instant::now();
            st.subscribers.retain(|_, sub| {
                let matched: Vec<Arc<Event>> = ours
                    .iter()
                    .filter(|e| e.revision() > sub.skip_through && sub.spec.matches(&e.kv.key))
                    .cloned()
                    .collect();
                let Some(last) = matched.last().map(|e| e.revision()) else {
                    return true;
                };
                match sub.tx.try_send(HubMsg::Events(matched)) {
                    Ok(()) => {
                        sub.last_rev = last;
                        sub.last_sent = now;
                        true
                    }
                    Err(TrySendError::Full(_)) => {
                        sub.control.end(StorageError::WatcherTooSlow);
                        false
                    }
                    Err(TrySendError::Closed(_)) => false,
                }
            });
        }
        serve_answered(st);
    }

    /// Whether a progress request should go to etcd now: some watcher asked and none is
    /// outstanding, or the outstanding one has waited too long.
    fn begin_progress_round(&self) -> bool {
        let mut st = lock(&self.state);
        let now = Instant::now();
        if let Some(outstanding) = &mut st.outstanding {
            if now.duration_since(outstanding.sent) >= PROGRESS_RESEND {
                outstanding.sent = now;
                return true;
            }
            return false;
        }
        let batch: Vec<u64> = st
            .subscribers
            .iter()
            .filter(|(_, sub)| sub.control.progress_wanted.swap(false, Ordering::AcqRel))
            .map(|(id, _)| *id)
            .collect();
        if batch.is_empty() {
            return false;
        }
        st.outstanding = Some(Outstanding { sent: now, batch });
        true
    }

    /// etcd answered the outstanding progress request with `revision`.
    fn progress_answered(&self, revision: Revision) {
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        if let Some(outstanding) = st.outstanding.take() {
            st.answered.push((revision, outstanding.batch));
        }
        serve_answered(st);
    }

    /// A new stream to etcd: an outstanding progress request must be sent again on it.
    fn stream_restarted(&self) {
        if let Some(outstanding) = &mut lock(&self.state).outstanding {
            outstanding.sent = Instant::now() - PROGRESS_RESEND;
        }
    }

    /// Periodic upkeep: tell idle watchers with `progress_notify` where the hub is, and forget
    /// watchers whose streams were dropped.
    fn tick(&self) {
        let interval = self.inner.options.progress_interval;
        let now = Instant::now();
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        let position = st.position;
        st.subscribers.retain(|_, sub| {
            if sub.tx.is_closed() {
                return false;
            }
            if sub.progress_notify
                && sub.last_rev < position
                && now.duration_since(sub.last_sent) >= interval
                && sub.tx.try_send(HubMsg::Progress(position)).is_ok()
            {
                sub.last_rev = position;
                sub.last_sent = now;
            }
            true
        });
    }

    /// etcd no longer has the history after the hub's position: end every watcher with
    /// `Compacted` and continue from etcd's compaction point.
    fn history_lost(&self, etcd_compact_revision: Revision) {
        let compact_revision = etcd_compact_revision - 1;
        self.inner.learn_compacted(compact_revision);
        let mut st = lock(&self.state);
        let requested = st.position;
        for (_, sub) in st.subscribers.drain() {
            sub.control.end(StorageError::Compacted {
                requested,
                compact_revision,
            });
        }
        st.ring.clear();
        st.ring_bytes = 0;
        st.answered.clear();
        st.outstanding = None;
        st.position = compact_revision;
        st.floor = compact_revision;
        tracing::warn!(
            lost_after = requested,
            compact_revision,
            "etcd compacted the history the watch needed; every watcher was ended"
        );
    }

    /// Stop: every watcher's stream ends.
    fn close(&self) {
        let mut st = lock(&self.state);
        st.closed = true;
        st.subscribers.clear();
    }
}

/// Roughly what an event costs in the ring.
fn event_bytes(event: &Event) -> usize {
    let prev = event
        .prev_kv
        .as_ref()
        .map_or(0, |kv| kv.key.len() + kv.value.len());
    128 + event.kv.key.len() + event.kv.value.len() + prev
}

/// Tell the watchers of answered progress requests, once the position has reached the answer.
fn serve_answered(st: &mut HubState) {
    let position = st.position;
    let now = Instant::now();
    let subscribers = &mut st.subscribers;
    st.answered.retain(|(revision, batch)| {
        if position < *revision {
            return true;
        }
        for id in batch {
            if let Some(sub) = subscribers.get_mut(id) {
                match sub.tx.try_send(HubMsg::Progress(position)) {
                    Ok(()) => {
                        sub.last_rev = position;
                        sub.last_sent = now;
                    }
                    // Behind on events: ask again once it has caught up.
                    Err(_) => sub.control.progress_wanted.store(true, Ordering::Release),
                }
            }
        }
        false
    });
}

/// An etcd watch response, in the store's terms.
enum Response {
    Created,
    Canceled {
        compact_revision: Revision,
        reason: String,
    },
    Progress {
        watch_id: i64,
        revision: Revision,
    },
    Events {
        ours: Vec<Arc<Event>>,
        last: Revision,
    },
}

fn convert_response(inner: &Inner, response: PbWatchResponse) -> Response {
    if response.canceled {
        return Response::Canceled {
            compact_revision: response.compact_revision,
            reason: response.cancel_reason,
        };
    }
    if response.compact_revision > 0 {
        return Response::Canceled {
            compact_revision: response.compact_revision,
            reason: "compacted".into(),
        };
    }
    if response.created {
        return Response::Created;
    }
    if response.events.is_empty() {
        return Response::Progress {
            watch_id: response.watch_id,
            revision: header_revision(response.header.as_ref()),
        };
    }
    let mut last = 0;
    let mut ours = Vec::with_capacity(response.events.len());
    for event in response.events {
        let revision = event.kv.as_ref().map_or(0, |kv| kv.mod_revision);
        last = last.max(revision);
        if let Some(event) = convert_event(inner, event) {
            ours.push(Arc::new(event));
        }
    }
    Response::Events { ours, last }
}

/// An etcd event of this store's keys, in the contract's terms; `None` for other keys.
fn convert_event(inner: &Inner, event: PbEvent) -> Option<Event> {
    let kind = if event.r#type == 1 {
        EventKind::Delete
    } else {
        EventKind::Put
    };
    let kv = inner.convert(event.kv?).ok()?;
    let prev_kv = event.prev_kv.and_then(|kv| inner.convert(kv).ok());
    Some(Event { kind, kv, prev_kv })
}

/// An etcd watch of every key from `from`, with previous values and progress notification.
enum Opened {
    Stream(Box<WatchStream>),
    /// etcd has compacted past `from`; this is its compaction revision.
    Compacted(Revision),
}

async fn open_watch(inner: &Inner, from: Revision) -> Result<Opened, StorageError> {
    let options = WatchOptions::new()
        .with_all_keys()
        .with_start_revision(from)
        .with_prev_key()
        .with_progress_notify();
    let (stream, first) = inner
        .call("a watch request", Retry::Read, || {
            let mut client = inner.watch.clone();
            let options = options.clone();
            async move {
                let mut stream = client.watch("", Some(options)).await?;
                let first = stream.message().await?;
                Ok::<_, etcd_client::Error>((stream, first))
            }
        })
        .await
        .map_err(generic)?;
    let Some(first) = first else {
        return Err(StorageError::Unavailable(
            "etcd closed the watch stream".into(),
        ));
    };
    match convert_response(inner, first.0) {
        Response::Created => Ok(Opened::Stream(Box::new(stream))),
        Response::Canceled {
            compact_revision, ..
        } if compact_revision > 0 => Ok(Opened::Compacted(compact_revision)),
        Response::Canceled { reason, .. } => Err(StorageError::Unavailable(format!(
            "etcd refused the watch: {reason}"
        ))),
        _ => Err(StorageError::Unavailable(
            "etcd answered a watch request out of order".into(),
        )),
    }
}

/// How following a stream ended.
enum Ended {
    Shutdown,
    /// etcd compacted past the position (its compaction revision).
    Compacted(Revision),
    Failed(String),
}

/// The hub's task: follow etcd, reconnecting with backoff, until the store shuts down.
async fn run(hub: Arc<Hub>) {
    let mut shutdown = hub.inner.shutdown_signal();
    let mut backoff = MIN_BACKOFF;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let from = hub.position() + 1;
        let opened = tokio::select! {
            opened = open_watch(&hub.inner, from) => opened,
            _ = shutdown.changed() => break,
        };
        let failure = match opened {
            Ok(Opened::Stream(stream)) => {
                backoff = MIN_BACKOFF;
                hub.stream_restarted();
                match follow(&hub, stream, &mut shutdown).await {
                    Ended::Shutdown => break,
                    Ended::Compacted(revision) => {
                        hub.history_lost(revision);
                        continue;
                    }
                    Ended::Failed(reason) => reason,
                }
            }
            Ok(Opened::Compacted(revision)) => {
                hub.history_lost(revision);
                continue;
            }
            Err(err) => err.to_string(),
        };
        tracing::warn!(
            after = hub.position(),
            error = %failure,
            retry_in_ms = backoff.as_millis() as u64,
            "etcd watch lost; watching again"
        );
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => break,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    hub.close();
}

/// Follow one etcd watch stream until it fails or the store shuts down.
async fn follow(
    hub: &Hub,
    mut stream: Box<WatchStream>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Ended {
    let tick_every = (hub.inner.options.progress_interval / 2).max(Duration::from_millis(20));
    let mut ticker = tokio::time::interval(tick_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if hub.begin_progress_round()
        && let Err(err) = stream.request_progress().await
    {
        return Ended::Failed(err.to_string());
    }
    loop {
        let mut send_progress = false;
        tokio::select! {
            message = stream.message() => match message {
                Ok(Some(response)) => match convert_response(&hub.inner, response.0) {
                    Response::Events { ours, last } => hub.publish(ours, last),
                    Response::Progress { watch_id, revision } => {
                        hub.inner.observe(revision);
                        if watch_id == PROGRESS_WATCH_ID {
                            hub.progress_answered(revision);
                            send_progress = true;
                        }
                    }
                    Response::Created => {}
                    Response::Canceled { compact_revision, .. } if compact_revision > 0 => {
                        return Ended::Compacted(compact_revision);
                    }
                    Response::Canceled { reason, .. } => {
                        return Ended::Failed(format!("etcd canceled the watch: {reason}"));
                    }
                },
                Ok(None) => return Ended::Failed("etcd closed the watch stream".into()),
                Err(err) => return Ended::Failed(err.to_string()),
            },
            _ = hub.wake.notified() => send_progress = true,
            _ = ticker.tick() => {
                hub.tick();
                send_progress = true;
            }
            _ = shutdown.changed() => return Ended::Shutdown,
        }
        if send_progress
            && hub.begin_progress_round()
            && let Err(err) = stream.request_progress().await
        {
            return Ended::Failed(err.to_string());
        }
    }
}

/// A watcher that starts before the ring: what its replay needs.
struct Replay {
    spec: Spec,
    progress_notify: bool,
    after: Revision,
    replay_tx: mpsc::Sender<Result<WatchMessage, StorageError>>,
    live_tx: mpsc::Sender<HubMsg>,
    control: Arc<Control>,
}

/// Replay etcd's history for one watcher until it reaches the hub's ring, then hand the watcher
/// to the hub. A lost stream is watched again from the last revision replayed.
async fn replay(hub: Arc<Hub>, job: Replay) {
    let Replay {
        spec,
        progress_notify,
        after,
        replay_tx,
        live_tx,
        control,
    } = job;
    let mut live_tx = Some(live_tx);
    let mut delivered = after;
    let mut backoff = MIN_BACKOFF;
    let mut shutdown = hub.inner.shutdown_signal();
    loop {
        let opened = tokio::select! {
            opened = open_watch(&hub.inner, delivered + 1) => opened,
            _ = replay_tx.closed() => return,
            _ = shutdown.changed() => return,
        };
        let mut stream = match opened {
            Ok(Opened::Stream(stream)) => stream,
            Ok(Opened::Compacted(revision)) => {
                hub.inner.learn_compacted(revision - 1);
                let _ = replay_tx
                    .send(Err(StorageError::Compacted {
                        requested: after,
                        compact_revision: revision - 1,
                    }))
                    .await;
                return;
            }
            Err(err) => {
                tracing::debug!(error = %err, "etcd watch replay failed to start; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = replay_tx.closed() => return,
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = MIN_BACKOFF;
        loop {
            let message = tokio::select! {
                message = stream.message() => message,
                _ = replay_tx.closed() => return,
                _ = shutdown.changed() => return,
            };
            let response = match message {
                Ok(Some(response)) => convert_response(&hub.inner, response.0),
                Ok(None) | Err(_) => break,
            };
            match response {
                Response::Events { ours, last } => {
                    let matched: Vec<Event> = ours
                        .iter()
                        .filter(|e| e.revision() > delivered && spec.matches(&e.kv.key))
                        .map(|e| (**e).clone())
                        .collect();
                    if !matched.is_empty()
                        && replay_tx
                            .send(Ok(WatchMessage::Events(matched)))
                            .await
                            .is_err()
                    {
                        return;
                    }
                    delivered = delivered.max(last);
                    let Some(tx) = live_tx.take() else { return };
                    match hub.register(&spec, progress_notify, delivered, tx, &control) {
                        Registration::Live(backlog) => {
                            for message in backlog {
                                if replay_tx.send(Ok(message)).await.is_err() {
                                    return;
                                }
                            }
                            return;
                        }
                        Registration::NeedReplay(tx) => live_tx = Some(tx),
                        Registration::Closed => {
                            let _ = replay_tx.send(Err(StorageError::Closed)).await;
                            return;
                        }
                    }
                }
                Response::Canceled {
                    compact_revision, ..
                } if compact_revision > 0 => {
                    hub.inner.learn_compacted(compact_revision - 1);
                    let _ = replay_tx
                        .send(Err(StorageError::Compacted {
                            requested: after,
                            compact_revision: compact_revision - 1,
                        }))
                        .await;
                    return;
                }
                Response::Canceled { .. } => break,
                Response::Created | Response::Progress { .. } => {}
            }
        }
    }
}

/// The stream behind one `Watch`: the backlog, then the replay (if any), then the live queue.
struct Subscription {
    backlog: VecDeque<WatchMessage>,
    replay: Option<mpsc::Receiver<Result<WatchMessage, StorageError>>>,
    live: mpsc::Receiver<HubMsg>,
    control: Arc<Control>,
    done: bool,
}

impl Subscription {
    async fn next(&mut self) -> Option<Result<WatchMessage, StorageError>> {
        if self.done {
            return None;
        }
        if let Some(message) = self.backlog.pop_front() {
            return Some(Ok(message));
        }
        if let Some(replay) = &mut self.replay {
            match replay.recv().await {
                Some(Ok(message)) => return Some(Ok(message)),
                Some(Err(err)) => {
                    self.done = true;
                    return Some(Err(err));
                }
                None => self.replay = None,
            }
        }
        match self.live.recv().await {
            Some(HubMsg::Events(events)) => Some(Ok(WatchMessage::Events(
                events.iter().map(|e| (**e).clone()).collect(),
            ))),
            Some(HubMsg::Progress(revision)) => Some(Ok(WatchMessage::Progress(revision))),
            None => {
                self.done = true;
                lock(&self.control.ended).take().map(Err)
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(hub) = self.control.hub.upgrade() {
            hub.remove(self.control.id);
        }
    }
}
