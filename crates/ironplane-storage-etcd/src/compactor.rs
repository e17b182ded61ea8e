//! Periodic compaction of etcd, coordinated between the servers that share it.
//!
//! etcd keeps every revision until it is told to compact. kube-apiserver compacts every
//! `--etcd-compaction-interval` (5 minutes by default) and Ironplane does the same, in the same
//! way, so that mixed or several servers agree:
//!
//! 1. Each round, a transaction bumps the key `compact_rev_key` only if its version is still the
//!    one this server saw last round. One server wins the round; the others learn the new version
//!    and wait for the next one.
//! 2. The winner compacts etcd at the revision it observed in the *previous* round, so the history
//!    of at least one full interval is always kept (for watch resumption and paginated lists).
//!
//! `compact_rev_key` sits at the root of etcd's key space, outside any `--etcd-prefix`, because
//! compaction is global to etcd.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use ironplane_storage::Revision;
use tokio::task::JoinHandle;

use crate::error::Failure;
use crate::{Inner, Retry, header_revision, txn_range_kvs};

/// The key the servers sharing an etcd use to take turns compacting it (upstream's name).
pub const COMPACT_REV_KEY: &str = "compact_rev_key";

/// A running compactor; dropping it stops it.
#[derive(Debug)]
pub struct Compactor {
    task: JoinHandle<()>,
}

impl Drop for Compactor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn start(inner: Arc<Inner>, interval: Duration) -> Option<Compactor> {
    if interval.is_zero() {
        return None;
    }
    let task = tokio::spawn(async move {
        let mut shutdown = inner.shutdown_signal();
        let mut round = Round::default();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
            match round.run(&inner).await {
                Ok(Some(compacted)) => {
                    tracing::info!(revision = compacted, "compacted etcd");
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "etcd compaction failed"),
            }
        }
    });
    Some(Compactor { task })
}

/// What a server remembers between rounds.
#[derive(Debug, Default)]
struct Round {
    /// The version of `compact_rev_key` this server saw last.
    version: i64,
    /// The revision etcd was at during the last round; the next winning round compacts at it.
    revision: Revision,
}

impl Round {
    /// One round: returns the etcd revision compacted at, if this server compacted.
    async fn run(&mut self, inner: &Inner) -> Result<Option<Revision>, String> {
        let key = COMPACT_REV_KEY.as_bytes().to_vec();
        let txn = Txn::new()
            .when(vec![Compare::version(
                key.clone(),
                CompareOp::Equal,
                self.version,
            )])
            .and_then(vec![TxnOp::put(
                key.clone(),
                self.revision.to_string(),
                None,
            )])
            .or_else(vec![TxnOp::get(key, None)]);
        let response = inner
            .call("a compaction claim", Retry::Write, || {
                let mut kv = inner.kv_client();
                let txn = txn.clone();
                async move { kv.txn(txn).await }
            })
            .await
            .map_err(|failure| format!("{failure:?}"))?;
        let now = inner.observe(header_revision(response.0.header.as_ref()));
        if !response.0.succeeded {
            // Another server won this round: follow its count.
            self.version = txn_range_kvs(response).first().map_or(0, |kv| kv.version);
            self.revision = now;
            return Ok(None);
        }
        self.version += 1;
        let target = std::mem::replace(&mut self.revision, now);
        if target == 0 {
            // The first round only records where etcd is.
            return Ok(None);
        }
        let compacted = inner
            .call("a compaction", Retry::Read, || {
                let mut kv = inner.kv_client();
                async move { kv.compact(target, None).await }
            })
            .await;
        match compacted {
            Ok(_) | Err(Failure::Compacted) => {
                inner.learn_compacted(target - 1);
                Ok(Some(target))
            }
            Err(failure) => Err(format!("{failure:?}")),
        }
    }
}
