//! Watches: the hub that fans committed events out to live watchers, the in-memory ring of recent
//! events, and the per-watcher stream that replays the on-disk log before going live.
//!
//! A watcher starts in one of two ways. If every event it needs is still in the ring (or it starts
//! at or after the last published revision), it is registered with the hub at once, with the
//! events from the ring as its backlog. Otherwise it replays the revision log from disk in chunks,
//! at its own pace, and tries again after each chunk that reaches the end of the log. Registration
//! and the copy from the ring happen under the hub's lock, which is also the lock the writer
//! publishes under: the ring copy covers everything up to the published revision, and the live
//! queue everything after it, so there is no gap and no duplicate.
//!
//! A live watcher has a bounded queue. The writer never waits for it: when the queue is full the
//! watcher is dropped from the hub and its stream ends with `WatcherTooSlow` once it has drained
//! what was queued.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use ironplane_storage::{
    Event, ProgressRequester, Revision, StorageError, Watch, WatchMessage, WatchRequest,
};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::engine::{Shared, lock};
use crate::read;
use crate::schema::{matches, rev_i64, rev_u64};

/// The most events one `WatchMessage::Events` carries when draining a backlog.
const MAX_EVENTS_PER_MESSAGE: usize = 1000;
/// The most log entries one replay step reads.
const REPLAY_CHUNK: usize = 2000;

/// What the hub queues for a live watcher.
pub(crate) enum HubMsg {
    Events(Vec<Arc<Event>>),
    Progress(Revision),
}

/// Flags shared between a watcher's stream, its progress requester and the hub.
#[derive(Default)]
pub(crate) struct Control {
    too_slow: AtomicBool,
    progress_requested: AtomicBool,
}

struct Registered {
    key: String,
    prefix: bool,
    progress_notify: bool,
    /// Events at or below this revision were already delivered another way.
    skip_through: Revision,
    /// The highest revision delivered or announced.
    last_rev: Revision,
    last_sent: Instant,
    tx: mpsc::Sender<HubMsg>,
    control: Arc<Control>,
}

struct HubState {
    published: Revision,
    ring: VecDeque<Arc<Event>>,
    ring_bytes: usize,
    watchers: HashMap<u64, Registered>,
    closed: bool,
}

/// Fans events out to live watchers and keeps the ring of recent events.
pub(crate) struct Hub {
    state: Mutex<HubState>,
    next_id: AtomicU64,
    queue: usize,
    ring_capacity: usize,
    ring_max_bytes: usize,
}

fn event_bytes(event: &Event) -> usize {
    let prev = event
        .prev_kv
        .as_ref()
        .map_or(0, |kv| kv.key.len() + kv.value.len());
    160 + event.kv.key.len() + event.kv.value.len() + prev
}

enum Registration {
    Live {
        backlog: Vec<Arc<Event>>,
        progress: Option<Revision>,
    },
    NeedReplay(mpsc::Sender<HubMsg>),
    Closed,
}

impl Hub {
    pub(crate) fn new(
        published: Revision,
        queue: usize,
        ring_capacity: usize,
        ring_max_bytes: usize,
    ) -> Self {
        Self {
            state: Mutex::new(HubState {
                published,
                ring: VecDeque::new(),
                ring_bytes: 0,
                watchers: HashMap::new(),
                closed: false,
            }),
            next_id: AtomicU64::new(1),
            queue: queue.max(1),
            ring_capacity,
            ring_max_bytes,
        }
    }

    /// The revision of the last published event.
    pub(crate) fn published(&self) -> Revision {
        lock(&self.state).published
    }

    /// How many watchers are live.
    pub(crate) fn live_watchers(&self) -> usize {
        lock(&self.state).watchers.len()
    }

    /// Publish one group commit's events, in revision order.
    pub(crate) fn publish(&self, events: Vec<Event>) {
        let events: Vec<Arc<Event>> = events.into_iter().map(Arc::new).collect();
        let Some(last) = events.last().map(|e| e.revision()) else {
            return;
        };
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        for event in &events {
            st.ring_bytes += event_bytes(event);
            st.ring.push_back(event.clone());
        }
        while st.ring.len() > self.ring_capacity || st.ring_bytes > self.ring_max_bytes {
            match st.ring.pop_front() {
                Some(old) => st.ring_bytes = st.ring_bytes.saturating_sub(event_bytes(&old)),
                None => break,
            }
        }
        st.published = last;
        let now = Instant::now();
        st.watchers.retain(|_, w| {
            let matched: Vec<Arc<Event>> = events
                .iter()
                .filter(|e| e.revision() > w.skip_through && matches(&e.kv.key, &w.key, w.prefix))
                .cloned()
                .collect();
            let Some(last) = matched.last().map(|e| e.revision()) else {
                return true;
            };
            match w.tx.try_send(HubMsg::Events(matched)) {
                Ok(()) => {
                    w.last_rev = last;
                    w.last_sent = now;
                    true
                }
                Err(TrySendError::Full(_)) => {
                    w.control.too_slow.store(true, Ordering::Release);
                    false
                }
                Err(TrySendError::Closed(_)) => false,
            }
        });
    }

    /// Register a watcher that has delivered everything up to `delivered`, if the ring (or the
    /// published revision) lets it go live now.
    #[allow(clippy::too_many_arguments)]
    fn register(
        &self,
        id: u64,
        key: &str,
        prefix: bool,
        progress_notify: bool,
        delivered: Revision,
        tx: mpsc::Sender<HubMsg>,
        control: &Arc<Control>,
    ) -> Registration {
        let mut st = lock(&self.state);
        if st.closed {
            return Registration::Closed;
        }
        let published = st.published;
        let mut backlog = Vec::new();
        if delivered < published {
            let covered = st
                .ring
                .front()
                .is_some_and(|first| first.revision() <= delivered + 1);
            if !covered {
                return Registration::NeedReplay(tx);
            }
            backlog.extend(
                st.ring
                    .iter()
                    .filter(|e| e.revision() > delivered && matches(&e.kv.key, key, prefix))
                    .cloned(),
            );
        }
        let through = published.max(delivered);
        let progress = control
            .progress_requested
            .swap(false, Ordering::AcqRel)
            .then_some(through);
        st.watchers.insert(
            id,
            Registered {
                key: key.to_owned(),
                prefix,
                progress_notify,
                skip_through: through,
                last_rev: through,
                last_sent: Instant::now(),
                tx,
                control: control.clone(),
            },
        );
        Registration::Live { backlog, progress }
    }

    fn remove(&self, id: u64) {
        lock(&self.state).watchers.remove(&id);
    }

    fn request_progress(&self, id: u64, control: &Control) {
        let mut st = lock(&self.state);
        let published = st.published;
        let Some(w) = st.watchers.get_mut(&id) else {
            // Not live yet: the stream announces progress when it goes live.
            control.progress_requested.store(true, Ordering::Release);
            return;
        };
        let rev = published.max(w.skip_through).max(w.last_rev);
        match w.tx.try_send(HubMsg::Progress(rev)) {
            Ok(()) => {
                w.last_rev = rev;
                w.last_sent = Instant::now();
            }
            Err(TrySendError::Full(_)) => {
                w.control.too_slow.store(true, Ordering::Release);
                st.watchers.remove(&id);
            }
            Err(TrySendError::Closed(_)) => {
                st.watchers.remove(&id);
            }
        }
    }

    /// Tell every idle `progress_notify` watcher the current revision, when it has moved on.
    pub(crate) fn tick_progress(&self, interval: Duration) {
        let mut st = lock(&self.state);
        let published = st.published;
        let now = Instant::now();
        st.watchers.retain(|_, w| {
            if !w.progress_notify
                || published <= w.last_rev
                || now.duration_since(w.last_sent) < interval
            {
                return true;
            }
            match w.tx.try_send(HubMsg::Progress(published)) {
                Ok(()) => {
                    w.last_rev = published;
                    w.last_sent = now;
                    true
                }
                Err(TrySendError::Full(_)) => {
                    w.control.too_slow.store(true, Ordering::Release);
                    false
                }
                Err(TrySendError::Closed(_)) => false,
            }
        });
    }

    /// End every watch: their streams finish what is queued, then end.
    pub(crate) fn close(&self) {
        let mut st = lock(&self.state);
        st.closed = true;
        st.watchers.clear();
    }
}

/// Asks the hub for a progress message on behalf of one watcher.
struct Requester {
    hub: Arc<Hub>,
    id: u64,
    control: Arc<Control>,
}

impl ProgressRequester for Requester {
    fn request_progress(&self) {
        self.hub.request_progress(self.id, &self.control);
    }
}

enum Phase {
    /// Reading the log from disk; the next revision to read.
    Replay(u64),
    Live,
    Ended,
}

struct WatchStream {
    shared: Arc<Shared>,
    hub: Arc<Hub>,
    id: u64,
    key: String,
    prefix: bool,
    progress_notify: bool,
    control: Arc<Control>,
    phase: Phase,
    /// The sender, until the hub holds it.
    tx: Option<mpsc::Sender<HubMsg>>,
    rx: mpsc::Receiver<HubMsg>,
    pending: VecDeque<Arc<Event>>,
    pending_progress: Option<Revision>,
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}

impl WatchStream {
    /// Go live if the hub allows it now.
    fn try_go_live(&mut self) {
        let Phase::Replay(next) = self.phase else {
            return;
        };
        let Some(tx) = self.tx.take() else {
            return;
        };
        let delivered = rev_i64(next.saturating_sub(1));
        match self.hub.register(
            self.id,
            &self.key,
            self.prefix,
            self.progress_notify,
            delivered,
            tx,
            &self.control,
        ) {
            Registration::Live { backlog, progress } => {
                self.pending.extend(backlog);
                self.pending_progress = progress;
                self.phase = Phase::Live;
            }
            Registration::NeedReplay(tx) => self.tx = Some(tx),
            Registration::Closed => self.phase = Phase::Ended,
        }
    }

    async fn next_message(&mut self) -> Option<Result<WatchMessage, StorageError>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(MAX_EVENTS_PER_MESSAGE);
                let events = self.pending.drain(..n).map(|e| (*e).clone()).collect();
                return Some(Ok(WatchMessage::Events(events)));
            }
            if let Some(rev) = self.pending_progress.take() {
                return Some(Ok(WatchMessage::Progress(rev)));
            }
            match self.phase {
                Phase::Ended => return None,
                Phase::Replay(next) => {
                    let shared = self.shared.clone();
                    let key = self.key.clone();
                    let prefix = self.prefix;
                    // The replay must reach the published revision, where the hub takes over.
                    let read = match self.shared.caught_up().await {
                        Ok(()) => {
                            crate::run_blocking(move || {
                                let db = shared.db()?;
                                read::replay(&db, next, REPLAY_CHUNK, &key, prefix)
                            })
                            .await
                        }
                        Err(err) => Err(err),
                    };
                    let chunk = match read {
                        Ok(chunk) => self.shared.settled().await.map(|()| chunk),
                        Err(err) => Err(err),
                    };
                    match chunk {
                        Ok(chunk) => {
                            self.pending.extend(chunk.events.into_iter().map(Arc::new));
                            self.phase = Phase::Replay(chunk.next);
                            if chunk.reached_end {
                                self.try_go_live();
                            }
                        }
                        Err(StorageError::Closed) => {
                            self.phase = Phase::Ended;
                            return None;
                        }
                        Err(err) => {
                            self.phase = Phase::Ended;
                            return Some(Err(err));
                        }
                    }
                }
                Phase::Live => match self.rx.recv().await {
                    Some(HubMsg::Events(events)) => {
                        let events = events.iter().map(|e| (**e).clone()).collect();
                        return Some(Ok(WatchMessage::Events(events)));
                    }
                    Some(HubMsg::Progress(rev)) => return Some(Ok(WatchMessage::Progress(rev))),
                    None => {
                        self.phase = Phase::Ended;
                        if self.control.too_slow.load(Ordering::Acquire) {
                            return Some(Err(StorageError::WatcherTooSlow));
                        }
                        return None;
                    }
                },
            }
        }
    }
}

/// Start a watch (the store has checked the key).
pub(crate) fn start(shared: &Arc<Shared>, request: WatchRequest) -> Result<Watch, StorageError> {
    let hub = shared.hub.clone();
    let compact = shared.compact_revision.load(Ordering::Acquire);
    let after = if request.after <= 0 {
        hub.published()
    } else {
        request.after
    };
    if after < compact {
        return Err(StorageError::Compacted {
            requested: after,
            compact_revision: compact,
        });
    }
    let (tx, rx) = mpsc::channel(hub.queue);
    let control = Arc::new(Control::default());
    let id = hub.next_id.fetch_add(1, Ordering::Relaxed);
    let mut stream = WatchStream {
        shared: shared.clone(),
        hub: hub.clone(),
        id,
        key: request.key,
        prefix: request.prefix,
        progress_notify: request.progress_notify,
        control: control.clone(),
        phase: Phase::Replay(rev_u64(after) + 1),
        tx: Some(tx),
        rx,
        pending: VecDeque::new(),
        pending_progress: None,
    };
    // Go live at once when the ring allows it, so that events are queued even before the first
    // poll; otherwise the first poll starts the replay.
    stream.try_go_live();
    let messages = futures::stream::unfold(stream, |mut stream| async move {
        let message = stream.next_message().await?;
        Some((message, stream))
    })
    .boxed();
    Ok(Watch::new(
        messages,
        Arc::new(Requester { hub, id, control }),
    ))
}
