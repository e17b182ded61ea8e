//! The same durable write load against the embedded store and against a local etcd, side by side.
//!
//! ```text
//! cargo run --release -p ironplane-storage-redb --features etcd-compare --example put_compare \
//!     -- [writers=32] [writes=20000] [value bytes=1024]
//! ```
//!
//! Each run creates `writes` new keys with values of `value bytes`, from `writers` concurrent
//! tasks, and reports acknowledged writes per second. The embedded store lives in a temporary
//! directory. etcd (the `etcd` binary on `PATH`, or `ETCD_BIN`) is started with a temporary data
//! directory on free 127.0.0.1 ports, with its default (durable) settings, and stopped at the end.

// An example: a failure aborts it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ironplane_storage::Storage;
use ironplane_storage_redb::{RedbStore, RedbStoreOptions};

struct Load {
    writers: usize,
    writes: usize,
    size: usize,
}

impl Load {
    fn report(&self, name: &str, elapsed: Duration) -> f64 {
        let rate = self.writes as f64 / elapsed.as_secs_f64();
        println!(
            "{name:>8}: {} puts of {} B from {} writers in {elapsed:.2?}: {rate:.0}/s",
            self.writes, self.size, self.writers
        );
        rate
    }
}

async fn run_redb(load: &Load) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(RedbStore::open(RedbStoreOptions::new(dir.path().join("cmp.redb"))).unwrap());
    let value = Bytes::from(vec![b'v'; load.size]);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..load.writers {
        let store = store.clone();
        let value = value.clone();
        let (writes, writers) = (load.writes, load.writers);
        tasks.push(tokio::spawn(async move {
            for i in (w..writes).step_by(writers) {
                store
                    .create(&format!("/registry/cmp/{i:09}"), value.clone(), None)
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    load.report("redb", started.elapsed())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A temporary etcd; killed (and its data directory removed) on drop.
struct Etcd {
    child: Child,
    _dir: tempfile::TempDir,
    endpoint: String,
}

impl Etcd {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (client, peer) = (free_port(), free_port());
        let bin = std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into());
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new(bin)
            .args(["--name", "bench", "--data-dir"])
            .arg(dir.path())
            .args([
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(["--initial-cluster", &format!("bench={peer_url}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd (install etcd-server, or set ETCD_BIN)");
        Self {
            child,
            _dir: dir,
            endpoint: format!("127.0.0.1:{client}"),
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn run_etcd(load: &Load) -> f64 {
    let etcd = Etcd::start();
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = loop {
        if let Ok(mut client) = etcd_client::Client::connect([etcd.endpoint.as_str()], None).await
            && client.status().await.is_ok()
        {
            break client;
        }
        assert!(Instant::now() < deadline, "etcd did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let value = vec![b'v'; load.size];
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..load.writers {
        let mut client = client.clone();
        let value = value.clone();
        let (writes, writers) = (load.writes, load.writers);
        tasks.push(tokio::spawn(async move {
            for i in (w..writes).step_by(writers) {
                client
                    .put(format!("/registry/cmp/{i:09}"), value.clone(), None)
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    load.report("etcd", started.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().unwrap());
    let load = Load {
        writers: args.next().unwrap_or(32),
        writes: args.next().unwrap_or(20_000),
        size: args.next().unwrap_or(1024),
    };
    let ours = run_redb(&load).await;
    let theirs = run_etcd(&load).await;
    println!("redb/etcd: {:.2}x", ours / theirs);
}
