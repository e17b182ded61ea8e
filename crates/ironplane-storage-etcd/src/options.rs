//! How to reach etcd and how the store behaves on top of it: endpoints, TLS, key layout,
//! deadlines, and the limits on watchers.

use std::path::PathBuf;
use std::time::Duration;

use crate::keys::KeyMap;

/// Client certificates for etcd, as kube-apiserver's `--etcd-cafile`, `--etcd-certfile` and
/// `--etcd-keyfile` name them. Files are PEM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EtcdTls {
    /// The CA that signed etcd's serving certificates; `None` trusts the system roots.
    pub ca_file: Option<PathBuf>,
    /// The client certificate presented to etcd.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key.
    pub key_file: Option<PathBuf>,
}

/// Options for [`EtcdStore::connect`](crate::EtcdStore::connect). Start from
/// [`EtcdOptions::new`] and change what you need; the defaults suit an API server.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EtcdOptions {
    /// The etcd client URLs (`http://127.0.0.1:2379`, `https://etcd-0:2379`). Requests are
    /// balanced over them, and a failed member is skipped until it answers again.
    pub endpoints: Vec<String>,
    /// Where keys live in etcd (see [`KeyMap`]). Default: the registry's `/registry` root stored
    /// unchanged under the etcd prefix `/registry`.
    pub keys: KeyMap,
    /// TLS for `https://` endpoints.
    pub tls: Option<EtcdTls>,
    /// The longest one request to etcd may take before it fails with `Unavailable`: while etcd is
    /// down or has no leader, callers get an error within this deadline instead of waiting.
    /// Default: 5 s.
    pub request_timeout: Duration,
    /// The longest a connection attempt to one endpoint may take. Default: 2 s.
    pub dial_timeout: Duration,
    /// How many messages may wait for one watcher; a watcher with a full queue is ended with
    /// `WatcherTooSlow`. One message carries the matching events of one etcd watch response.
    /// Default: 1024.
    pub watcher_queue: usize,
    /// How long a watcher with `progress_notify` may stay idle before it is told the current
    /// revision. Default: 1 s.
    pub progress_interval: Duration,
    /// How many recent events the store keeps in memory, so that a watch starting slightly in the
    /// past (a watch cache re-watching after its list) needs no replay from etcd. Default: 16384.
    pub event_ring_capacity: usize,
    /// A byte bound on the same ring (keys and values of the events and their previous states).
    /// Default: 64 MiB.
    pub event_ring_max_bytes: usize,
    /// Keys created with a TTL share one etcd lease per TTL for up to this long (at most a tenth
    /// of the TTL), as upstream's lease manager does: a key then lives between its TTL and its TTL
    /// plus the reuse window. It saves a lease grant per event. Default: 60 s.
    pub lease_reuse: Duration,
}

impl EtcdOptions {
    /// The defaults, for the given endpoints.
    pub fn new<I, S>(endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            keys: KeyMap::default(),
            tls: None,
            request_timeout: Duration::from_secs(5),
            dial_timeout: Duration::from_secs(2),
            watcher_queue: 1024,
            progress_interval: Duration::from_secs(1),
            event_ring_capacity: 16384,
            event_ring_max_bytes: 64 * 1024 * 1024,
            lease_reuse: Duration::from_secs(60),
        }
    }

    /// Set [`keys`](Self::keys).
    pub fn keys(mut self, keys: KeyMap) -> Self {
        self.keys = keys;
        self
    }

    /// Set [`tls`](Self::tls).
    pub fn tls(mut self, tls: Option<EtcdTls>) -> Self {
        self.tls = tls;
        self
    }

    /// Set [`request_timeout`](Self::request_timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Set [`dial_timeout`](Self::dial_timeout).
    pub fn dial_timeout(mut self, timeout: Duration) -> Self {
        self.dial_timeout = timeout;
        self
    }

    /// Set [`watcher_queue`](Self::watcher_queue).
    pub fn watcher_queue(mut self, messages: usize) -> Self {
        self.watcher_queue = messages;
        self
    }

    /// Set [`progress_interval`](Self::progress_interval).
    pub fn progress_interval(mut self, interval: Duration) -> Self {
        self.progress_interval = interval;
        self
    }

    /// Set [`event_ring_capacity`](Self::event_ring_capacity).
    pub fn event_ring_capacity(mut self, events: usize) -> Self {
        self.event_ring_capacity = events;
        self
    }

    /// Set [`event_ring_max_bytes`](Self::event_ring_max_bytes).
    pub fn event_ring_max_bytes(mut self, bytes: usize) -> Self {
        self.event_ring_max_bytes = bytes;
        self
    }

    /// Set [`lease_reuse`](Self::lease_reuse).
    pub fn lease_reuse(mut self, window: Duration) -> Self {
        self.lease_reuse = window;
        self
    }
}
