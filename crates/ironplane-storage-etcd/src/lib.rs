//! Ironplane's etcd v3 backend: the storage contract on an etcd cluster, so that several
//! Ironplane servers can share one store, as kube-apiservers share etcd.
//!
//! [`EtcdStore`] maps the contract onto etcd's own model, which the contract was written after:
//!
//! - **Revisions** are etcd's: one global revision, create and modification revisions and a
//!   version per key. A resourceVersion read through one server means the same through another.
//! - **Writes** are single transactions: create is `txn(create_revision == 0) put`, update is
//!   `txn(mod_revision == expected) put else get` (a conflict returns the current state in the same
//!   round trip), delete with a precondition likewise. TTLs are etcd leases, shared between keys
//!   with the same TTL for a short window as upstream does.
//! - **Reads** are linearizable ranges; a list page is one range request, with etcd's exact count
//!   of what remains.
//! - **Compaction** is etcd's: the contract's compaction point `C` (history at and below `C` is
//!   gone) is etcd's `Compact(C + 1)` (etcd keeps the revision it compacts at). The API server
//!   compacts periodically with [`EtcdStore::start_compactor`], coordinating with other servers
//!   through the `compact_rev_key` key as upstream does.
//! - **Watches** follow one etcd watch of the whole key space per store (with `prev_kv` and
//!   progress notification) and fan events out to the store's watchers (see `watch.rs`). Seeing
//!   every revision lets the store answer `request_progress` exactly, even on etcd versions whose
//!   requested progress notifications can overtake events (etcd before 3.4.24), and lets a lost
//!   watch stream resume from the last revision seen without a gap or a duplicate.
//! - **Failures**: every request has a deadline ([`EtcdOptions::request_timeout`]); while etcd is
//!   down or has no leader, calls fail with `Unavailable` within it, and the client reconnects by
//!   itself when etcd returns.
//!
//! docs/etcd.md describes how to run Ironplane on etcd, the key layout and the fault behaviour.

mod compactor;
mod error;
mod keys;
mod options;
mod watch;

#[cfg(feature = "testing")]
pub mod testing;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use etcd_client::proto::{PbKeyValue, PbTxnOpResponse};
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity, KvClient,
    PutOptions, TlsOptions, Txn, TxnOp, TxnResponse, WatchClient,
};
use ironplane_storage::{
    Deleted, GetResponse, KeyValue, ListOptions, ListResponse, MAX_VALUE_BYTES, Revision, Storage,
    StorageError, StoreStatus, Watch, WatchRequest, validate_key, validate_write,
};

pub use compactor::Compactor;
pub use keys::KeyMap;
pub use options::{EtcdOptions, EtcdTls};

use error::{Failure, classify, generic, timed_out};

/// The first and the longest pause before a request is sent again.
const RETRY_PAUSE: Duration = Duration::from_millis(10);
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Which failures a request may be sent again after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// A read (or an idempotent request): again after any sign of unavailability.
    Read,
    /// A write: again only if it was certainly not sent.
    Write,
}

/// The most bytes one response from etcd may have: a list page of 10,000 large objects is far
/// above gRPC's default of 4 MiB.
const MAX_RESPONSE_BYTES: usize = 1 << 30;

/// The etcd v3 store. Cheap to share behind an `Arc`; every method may be called concurrently.
///
/// Dropping it (or calling [`close`](Self::close)) ends its watches and its compactor.
pub struct EtcdStore {
    inner: Arc<Inner>,
}

/// What the store's tasks share.
pub(crate) struct Inner {
    pub(crate) options: EtcdOptions,
    client: Client,
    kv: KvClient,
    pub(crate) watch: WatchClient,
    /// The highest revision any etcd response has reported.
    last_revision: AtomicI64,
    /// The contract's compaction point as far as this process knows: what it compacted itself
    /// and what etcd reported while refusing a read or a watch.
    compacted: AtomicI64,
    leases: Mutex<HashMap<i64, CachedLease>>,
    hub: Mutex<HubSlot>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

/// The watch hub, started by the first watch and stopped by `close`.
enum HubSlot {
    Empty,
    Running(Arc<watch::Hub>),
    Closed,
}

/// A lease granted for one TTL, shared by the keys created soon after.
#[derive(Clone, Copy)]
struct CachedLease {
    id: i64,
    granted: Instant,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.inner.options.endpoints)
            .field("keys", &self.inner.options.keys)
            .field(
                "revision",
                &self.inner.last_revision.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Make a client for the etcd cluster at `options.endpoints`. Connections are made lazily:
    /// this succeeds while etcd is down, and the first requests then fail with `Unavailable`.
    pub async fn connect(options: EtcdOptions) -> Result<Self, StorageError> {
        if options.endpoints.is_empty() {
            return Err(StorageError::internal("no etcd endpoints given"));
        }
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(options.dial_timeout)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(10))
            .with_require_leader(true);
        if let Some(tls) = &options.tls {
            connect = connect.with_tls(tls_config(tls)?);
        }
        let client = Client::connect(&options.endpoints, Some(connect))
            .await
            .map_err(|err| match classify(err) {
                Failure::Other(err) => StorageError::internal(format!("etcd client: {err}")),
                other => generic(other),
            })?;
        let kv = client
            .kv_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES);
        let watch = client
            .watch_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES);
        let (shutdown, _) = tokio::sync::watch::channel(false);
        Ok(Self {
            inner: Arc::new(Inner {
                options,
                client,
                kv,
                watch,
                last_revision: AtomicI64::new(0),
                compacted: AtomicI64::new(0),
                leases: Mutex::new(HashMap::new()),
                hub: Mutex::new(HubSlot::Empty),
                shutdown,
            }),
        })
    }

    /// Compact etcd every `interval`, as kube-apiserver does (`--etcd-compaction-interval`): each
    /// round claims the `compact_rev_key` key with a compare-and-swap on its version, so that of
    /// several servers sharing etcd only one compacts per interval, and compacts to the revision
    /// seen one round earlier, so that at least one interval of history is always kept. Returns
    /// `None` when `interval` is zero (compaction off). Dropping the handle stops it.
    pub fn start_compactor(&self, interval: Duration) -> Option<Compactor> {
        compactor::start(self.inner.clone(), interval)
    }

    /// Stop the store's background work: watches end (later ones fail with `Closed`) and the
    /// compactor stops. Reads and writes still work.
    pub fn close(&self) {
        if let Ok(mut slot) = self.inner.hub.lock() {
            *slot = HubSlot::Closed;
        }
        let _ = self.inner.shutdown.send(true);
    }

    /// The key layout in use.
    pub fn keys(&self) -> &KeyMap {
        &self.inner.options.keys
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn tls_config(tls: &EtcdTls) -> Result<TlsOptions, StorageError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|err| StorageError::internal(format!("cannot read {}: {err}", path.display())))
    };
    let mut config = TlsOptions::new();
    if let Some(ca) = &tls.ca_file {
        config = config.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        (None, None) => {}
        _ => {
            return Err(StorageError::internal(
                "an etcd client certificate needs both a certificate file and a key file",
            ));
        }
    }
    Ok(config)
}

impl Inner {
    pub(crate) fn keys(&self) -> &KeyMap {
        &self.options.keys
    }

    /// Run one etcd request with the store's deadline, trying again (until the deadline) after
    /// failures that `retry` allows: a request that never left this process (its connection could
    /// not be made, for example to a dead member) can always be sent again, and a read can be
    /// sent again after any sign that etcd is unavailable.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        what: &str,
        retry: Retry,
        mut request: F,
    ) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = tokio::time::Instant::now() + self.options.request_timeout;
        let mut pause = RETRY_PAUSE;
        loop {
            let failure = match tokio::time::timeout_at(deadline, request()).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(err)) => classify(err),
                Err(_) => {
                    return Err(Failure::Unavailable(
                        timed_out(what, self.options.request_timeout).to_string(),
                    ));
                }
            };
            let again = matches!(
                (&failure, retry),
                (Failure::NotSent(_), _) | (Failure::Unavailable(_), Retry::Read)
            );
            if !again || tokio::time::Instant::now() + pause >= deadline {
                return Err(failure);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_RETRY_PAUSE);
        }
    }

    fn kv(&self) -> KvClient {
        self.kv.clone()
    }

    /// Remember the revision an etcd response reported.
    pub(crate) fn observe(&self, revision: Revision) -> Revision {
        self.last_revision.fetch_max(revision, Ordering::Relaxed);
        revision
    }

    pub(crate) fn compacted(&self) -> Revision {
        self.compacted.load(Ordering::Relaxed)
    }

    /// Remember that history at and below `revision` (the contract's compaction point) is gone.
    pub(crate) fn learn_compacted(&self, revision: Revision) {
        self.compacted.fetch_max(revision, Ordering::Relaxed);
    }

    /// The error for a read at `requested` that etcd refused.
    fn read_error(&self, failure: Failure, requested: Option<Revision>) -> StorageError {
        match (failure, requested) {
            (Failure::Compacted, Some(requested)) => {
                self.learn_compacted(requested);
                StorageError::Compacted {
                    requested,
                    compact_revision: self.compacted(),
                }
            }
            (Failure::FutureRevision, Some(requested)) => StorageError::FutureRevision {
                requested,
                current: self.last_revision.load(Ordering::Relaxed),
            },
            (failure, _) => generic(failure),
        }
    }

    /// The error for a write of `value` to `key` that etcd refused.
    fn write_error(&self, failure: Failure, key: &str, size: usize) -> StorageError {
        match failure {
            Failure::TooLarge => StorageError::ValueTooLarge {
                key: key.to_owned(),
                size,
                limit: MAX_VALUE_BYTES,
            },
            failure => generic(failure),
        }
    }

    /// A key-value from etcd, in the contract's terms.
    pub(crate) fn convert(&self, kv: PbKeyValue) -> Result<KeyValue, StorageError> {
        let key = self.keys().contract_key_owned(kv.key).ok_or_else(|| {
            StorageError::internal("etcd returned a key outside the store's prefix")
        })?;
        Ok(KeyValue {
            key,
            value: Bytes::from(kv.value),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
        })
    }

    /// The current revision, read linearizably (a quorum read: it proves etcd is serving).
    pub(crate) async fn current_revision(&self) -> Result<Revision, StorageError> {
        let probe = self.keys().prefix().as_bytes().to_vec();
        let response = self
            .call("a status request", Retry::Read, || {
                let mut kv = self.kv();
                let probe = probe.clone();
                async move {
                    kv.get(probe, Some(GetOptions::new().with_count_only()))
                        .await
                }
            })
            .await
            .map_err(generic)?;
        Ok(self.observe(header_revision(response.0.header.as_ref())))
    }

    /// A lease for a key with `ttl`: a recent one for the same TTL, or a new one.
    async fn lease_for(&self, ttl: Duration) -> Result<i64, StorageError> {
        let seconds = i64::try_from(ttl.as_millis().div_ceil(1000))
            .unwrap_or(i64::MAX)
            .max(1);
        let window =
            (seconds / 10).min(i64::try_from(self.options.lease_reuse.as_secs()).unwrap_or(0));
        if window > 0
            && let Ok(leases) = self.leases.lock()
            && let Some(lease) = leases.get(&seconds)
            && lease.granted.elapsed() < Duration::from_secs(window.unsigned_abs())
        {
            return Ok(lease.id);
        }
        let granted = Instant::now();
        let response = self
            .call("a lease grant", Retry::Write, || {
                let mut leases = self.client.lease_client();
                async move { leases.grant(seconds.saturating_add(window), None).await }
            })
            .await
            .map_err(generic)?;
        let id = response.id();
        if window > 0
            && let Ok(mut leases) = self.leases.lock()
        {
            leases.insert(seconds, CachedLease { id, granted });
        }
        Ok(id)
    }

    fn forget_leases(&self) {
        if let Ok(mut leases) = self.leases.lock() {
            leases.clear();
        }
    }

    /// Run a write transaction, attaching a lease for `ttl` to its put (with one retry if a
    /// shared lease has just expired).
    async fn write_txn(
        &self,
        key: &str,
        size: usize,
        ttl: Option<Duration>,
        build: impl Fn(i64) -> Txn,
    ) -> Result<TxnResponse, StorageError> {
        let mut retried = false;
        loop {
            let lease = match ttl {
                Some(ttl) => self.lease_for(ttl).await?,
                None => 0,
            };
            let txn = build(lease);
            let written = self
                .call("a write", Retry::Write, || {
                    let mut kv = self.kv();
                    let txn = txn.clone();
                    async move { kv.txn(txn).await }
                })
                .await;
            match written {
                Ok(response) => {
                    self.observe(header_revision(response.0.header.as_ref()));
                    return Ok(response);
                }
                Err(Failure::LeaseNotFound) if !retried => {
                    self.forget_leases();
                    retried = true;
                }
                Err(failure) => return Err(self.write_error(failure, key, size)),
            }
        }
    }

    /// The watch hub, started at the current revision by the first watch.
    async fn watch_hub(self: &Arc<Self>) -> Result<Arc<watch::Hub>, StorageError> {
        let running = |slot: &HubSlot| match slot {
            HubSlot::Running(hub) => Some(Ok(hub.clone())),
            HubSlot::Closed => Some(Err(StorageError::Closed)),
            HubSlot::Empty => None,
        };
        if let Some(found) = running(&lock(&self.hub)) {
            return found;
        }
        let revision = self.current_revision().await?;
        let mut slot = lock(&self.hub);
        if let Some(found) = running(&slot) {
            return found;
        }
        let hub = watch::Hub::start(self.clone(), revision);
        *slot = HubSlot::Running(hub.clone());
        Ok(hub)
    }

    pub(crate) fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub(crate) fn kv_client(&self) -> KvClient {
        self.kv()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The revision in a response header (0 if etcd sent none, which it always does).
pub(crate) fn header_revision(header: Option<&etcd_client::proto::PbResponseHeader>) -> Revision {
    header.map_or(0, |header| header.revision)
}

/// The key-values of the first range response in a transaction's answer.
pub(crate) fn txn_range_kvs(response: TxnResponse) -> Vec<PbKeyValue> {
    response
        .0
        .responses
        .into_iter()
        .find_map(|op| match op.response {
            Some(PbTxnOpResponse::ResponseRange(range)) => Some(range.kvs),
            _ => None,
        })
        .unwrap_or_default()
}

/// The previous key-values of the first delete response in a transaction's answer.
fn txn_deleted_kvs(response: TxnResponse) -> Vec<PbKeyValue> {
    response
        .0
        .responses
        .into_iter()
        .find_map(|op| match op.response {
            Some(PbTxnOpResponse::ResponseDeleteRange(deleted)) => Some(deleted.prev_kvs),
            _ => None,
        })
        .unwrap_or_default()
}

/// A put of `value` with `lease` (0 for none).
fn put(key: &[u8], value: &Bytes, lease: i64) -> TxnOp {
    TxnOp::put(
        key.to_vec(),
        value.to_vec(),
        Some(PutOptions::new().with_lease(lease)),
    )
}

/// A read of the key's metadata without its value.
fn get_meta(key: &[u8]) -> TxnOp {
    TxnOp::get(key.to_vec(), Some(GetOptions::new().with_keys_only()))
}

/// A read of the key with its value.
fn get_full(key: &[u8]) -> TxnOp {
    TxnOp::get(key.to_vec(), None)
}

/// "The key exists and was last modified at `expected`".
fn unchanged_since(key: &[u8], expected: Revision) -> Vec<Compare> {
    vec![
        Compare::create_revision(key.to_vec(), CompareOp::Greater, 0),
        Compare::mod_revision(key.to_vec(), CompareOp::Equal, expected),
    ]
}

#[async_trait::async_trait]
impl Storage for EtcdStore {
    async fn get(
        &self,
        key: &str,
        revision: Option<Revision>,
    ) -> Result<GetResponse, StorageError> {
        validate_key(key)?;
        let inner = &self.inner;
        let etcd_key = inner.keys().to_etcd(key)?;
        let requested = revision.filter(|r| *r > 0);
        let mut options = GetOptions::new();
        if let Some(revision) = requested {
            options = options.with_revision(revision);
        }
        let response = inner
            .call("a get", Retry::Read, || {
                let mut kv = inner.kv();
                let (key, options) = (etcd_key.clone(), options.clone());
                async move { kv.get(key, Some(options)).await }
            })
            .await
            .map_err(|failure| inner.read_error(failure, requested))?;
        let current = inner.observe(header_revision(response.0.header.as_ref()));
        let kv = match response.0.kvs.into_iter().next() {
            Some(kv) => Some(inner.convert(kv)?),
            None => None,
        };
        Ok(GetResponse {
            kv,
            revision: requested.unwrap_or(current),
        })
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResponse, StorageError> {
        let inner = &self.inner;
        let range = inner.keys().prefix_range(prefix)?;
        let start = match &options.start_key {
            Some(start) if !start.starts_with(prefix) => {
                return Err(StorageError::InvalidKey {
                    key: start.chars().take(256).collect(),
                    reason: "the start key does not start with the listed prefix",
                });
            }
            Some(start) => inner.keys().to_etcd(start)?.max(range.start.clone()),
            None => range.start.clone(),
        };
        let requested = options.revision.filter(|r| *r > 0);
        let limit = options.limit.unwrap_or(0);
        let mut get = GetOptions::new()
            .with_range(range.end)
            .with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        if let Some(revision) = requested {
            get = get.with_revision(revision);
        }
        let response = inner
            .call("a list", Retry::Read, || {
                let mut kv = inner.kv();
                let (start, get) = (start.clone(), get.clone());
                async move { kv.get(start, Some(get)).await }
            })
            .await
            .map_err(|failure| inner.read_error(failure, requested))?;
        let current = inner.observe(header_revision(response.0.header.as_ref()));
        let count = u64::try_from(response.0.count).unwrap_or(0);
        let more = response.0.more;
        let kvs = response
            .0
            .kvs
            .into_iter()
            .map(|kv| inner.convert(kv))
            .collect::<Result<Vec<_>, _>>()?;
        let returned = u64::try_from(kvs.len()).unwrap_or(u64::MAX);
        Ok(ListResponse {
            kvs,
            revision: requested.unwrap_or(current),
            more,
            remaining: Some(count.saturating_sub(returned)),
        })
    }

    async fn count(&self, prefix: &str) -> Result<u64, StorageError> {
        let inner = &self.inner;
        let range = inner.keys().prefix_range(prefix)?;
        let response = inner
            .call("a count", Retry::Read, || {
                let mut kv = inner.kv();
                let (start, end) = (range.start.clone(), range.end.clone());
                async move {
                    kv.get(
                        start,
                        Some(GetOptions::new().with_range(end).with_count_only()),
                    )
                    .await
                }
            })
            .await
            .map_err(generic)?;
        inner.observe(header_revision(response.0.header.as_ref()));
        Ok(u64::try_from(response.0.count).unwrap_or(0))
    }

    async fn create(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, StorageError> {
        validate_write(key, &value)?;
        let inner = &self.inner;
        let etcd_key = inner.keys().to_etcd(key)?;
        let response = inner
            .write_txn(key, value.len(), ttl, |lease| {
                Txn::new()
                    .when(vec![Compare::create_revision(
                        etcd_key.clone(),
                        CompareOp::Equal,
                        0,
                    )])
                    .and_then(vec![put(&etcd_key, &value, lease)])
            })
            .await?;
        if !response.0.succeeded {
            return Err(StorageError::AlreadyExists {
                key: key.to_owned(),
            });
        }
        let revision = header_revision(response.0.header.as_ref());
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision,
            mod_revision: revision,
            version: 1,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, StorageError> {
        validate_write(key, &value)?;
        let inner = &self.inner;
        let etcd_key = inner.keys().to_etcd(key)?;
        let response = inner
            .write_txn(key, value.len(), ttl, |lease| {
                Txn::new()
                    .when(unchanged_since(&etcd_key, expected))
                    .and_then(vec![put(&etcd_key, &value, lease), get_meta(&etcd_key)])
                    .or_else(vec![get_full(&etcd_key)])
            })
            .await?;
        let succeeded = response.0.succeeded;
        let current = txn_range_kvs(response).into_iter().next();
        match (succeeded, current) {
            (true, Some(meta)) => Ok(KeyValue {
                key: key.to_owned(),
                value,
                create_revision: meta.create_revision,
                mod_revision: meta.mod_revision,
                version: meta.version,
            }),
            (true, None) => Err(StorageError::internal(
                "etcd answered an update without the updated key",
            )),
            (false, None) => Err(StorageError::NotFound {
                key: key.to_owned(),
            }),
            (false, Some(current)) => Err(StorageError::Conflict {
                key: key.to_owned(),
                expected,
                current: Box::new(inner.convert(current)?),
            }),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted, StorageError> {
        validate_key(key)?;
        let inner = &self.inner;
        let etcd_key = inner.keys().to_etcd(key)?;
        let delete = TxnOp::delete(
            etcd_key.clone(),
            Some(etcd_client::DeleteOptions::new().with_prev_key()),
        );
        let txn = match expected {
            Some(expected) => Txn::new()
                .when(unchanged_since(&etcd_key, expected))
                .and_then(vec![delete])
                .or_else(vec![get_full(&etcd_key)]),
            None => Txn::new().and_then(vec![delete]),
        };
        let response = inner
            .call("a delete", Retry::Write, || {
                let mut kv = inner.kv();
                let txn = txn.clone();
                async move { kv.txn(txn).await }
            })
            .await
            .map_err(generic)?;
        let revision = inner.observe(header_revision(response.0.header.as_ref()));
        if response.0.succeeded {
            return match txn_deleted_kvs(response).into_iter().next() {
                Some(prev) => Ok(Deleted {
                    prev_kv: inner.convert(prev)?,
                    revision,
                }),
                None => Err(StorageError::NotFound {
                    key: key.to_owned(),
                }),
            };
        }
        match txn_range_kvs(response).into_iter().next() {
            None => Err(StorageError::NotFound {
                key: key.to_owned(),
            }),
            Some(current) => Err(StorageError::Conflict {
                key: key.to_owned(),
                expected: expected.unwrap_or(0),
                current: Box::new(inner.convert(current)?),
            }),
        }
    }

    async fn watch(&self, request: WatchRequest) -> Result<Watch, StorageError> {
        validate_key(&request.key)?;
        let inner = &self.inner;
        if request.prefix {
            inner.keys().prefix_range(&request.key)?;
        } else {
            inner.keys().to_etcd(&request.key)?;
        }
        let hub = inner.watch_hub().await?;
        let after = if request.after > 0 {
            request.after
        } else {
            inner.current_revision().await?
        };
        let compacted = inner.compacted();
        if after < compacted {
            return Err(StorageError::Compacted {
                requested: after,
                compact_revision: compacted,
            });
        }
        hub.subscribe(request, after)
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        let inner = &self.inner;
        if revision <= inner.compacted() {
            return Ok(());
        }
        // etcd keeps the revision it compacts at, the contract drops it: compact at the next one,
        // or at the current one if there is no next one yet (etcd cannot compact the future).
        let mut target = revision + 1;
        loop {
            let compacted = inner
                .call("a compaction", Retry::Read, || {
                    let mut kv = inner.kv();
                    async move { kv.compact(target, None).await }
                })
                .await;
            match compacted {
                Ok(response) => {
                    inner.observe(header_revision(response.0.header.as_ref()));
                    inner.learn_compacted(target - 1);
                    return Ok(());
                }
                Err(Failure::Compacted) => {
                    inner.learn_compacted(target - 1);
                    return Ok(());
                }
                Err(Failure::FutureRevision) => {
                    let current = inner.current_revision().await?;
                    if revision > current {
                        return Err(StorageError::FutureRevision {
                            requested: revision,
                            current,
                        });
                    }
                    if target <= current {
                        // The revision exists now: it was written since the first attempt.
                        continue;
                    }
                    target = current;
                }
                Err(failure) => return Err(generic(failure)),
            }
        }
    }

    async fn status(&self) -> Result<StoreStatus, StorageError> {
        let revision = self.inner.current_revision().await?;
        Ok(StoreStatus {
            revision,
            compact_revision: self.inner.compacted(),
            db_size_bytes: None,
        })
    }
}
