//! Crash test: a child process writes under concurrent load and prints every acknowledged write;
//! the parent kills it with SIGKILL at a random moment, reopens the store, and checks that every
//! acknowledged write is there and that the tables agree. Twenty-four rounds on one store.
//!
//! Each round gives the child a random checkpoint interval (1 to 100 ms; 30 or 100 ms in the
//! rounds that check the redb file on its own) and sometimes a tiny
//! checkpoint byte bound, so that kills land before, during and after checkpoints and the reopen
//! replays write-ahead logs of every length; every sixth round runs without the log (each group a
//! durable redb commit), which also checks that a store moves between the two modes. The child
//! creates (some with a TTL), updates and deletes.
//!
//! The child is this test binary itself, re-run with `CRASH_CHILD_DIR` set, which turns the
//! otherwise empty `crash_child` test into the writer.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ironplane_storage::{Storage, StorageError};
use ironplane_storage_redb::{RedbStore, RedbStoreOptions};
use rand::Rng;

const CHILD_ENV: &str = "CRASH_CHILD_DIR";
const ROUND_ENV: &str = "CRASH_CHILD_ROUND";
/// The child's options: `wal,checkpoint interval ms,checkpoint bytes`.
const OPTIONS_ENV: &str = "CRASH_CHILD_OPTIONS";
const ROUNDS: usize = 24;
const CHILD_WRITERS: usize = 8;

fn store_path(dir: &Path) -> std::path::PathBuf {
    dir.join("crash.redb")
}

fn value_for(round: usize, writer: usize, n: usize) -> String {
    format!("r{round}-w{writer}-n{n}-{}", "x".repeat(200))
}

/// The writer half: runs only when the parent starts this binary with `CRASH_CHILD_DIR`.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round: usize = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let options = std::env::var(OPTIONS_ENV).unwrap();
    let options: Vec<u64> = options.split(',').map(|n| n.parse().unwrap()).collect();
    let options = RedbStoreOptions::new(store_path(Path::new(&dir)))
        .wal(options[0] == 1)
        .wal_checkpoint_interval(Duration::from_millis(options[1]))
        .wal_checkpoint_bytes(options[2]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = Arc::new(RedbStore::open(options).unwrap());
        // libtest has printed "test crash_child ... " without a newline: the parent looks for
        // a line that ends with READY.
        println!("READY");
        std::io::stdout().flush().unwrap();
        let mut tasks = Vec::new();
        for w in 0..CHILD_WRITERS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                // Keys this writer owns, with their last acknowledged revision.
                let mut mine: Vec<(String, i64)> = Vec::new();
                for n in 0.. {
                    let value = value_for(round, w, n);
                    if !mine.is_empty() && n % 7 == 3 {
                        // Delete one of this writer's keys; its names are never used again.
                        let (key, rev) = mine.swap_remove(n % mine.len());
                        let deleted = store.delete(&key, Some(rev)).await.unwrap();
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "DEL {key} {}", deleted.revision).unwrap();
                        out.flush().unwrap();
                        continue;
                    }
                    let update = !mine.is_empty() && n % 3 != 0;
                    let (key, result) = if update {
                        let i = n % mine.len();
                        let (key, rev) = mine[i].clone();
                        let result = store
                            .update(&key, Bytes::from(value.clone()), rev, None)
                            .await;
                        (key, result)
                    } else {
                        let key = format!("/crash/r{round}/w{w}/k{n}");
                        // Some keys carry a TTL (far off): the log must restore the TTL index.
                        let ttl = (n % 5 == 0).then_some(Duration::from_secs(3600));
                        let result = store.create(&key, Bytes::from(value.clone()), ttl).await;
                        (key, result)
                    };
                    let kv = result.unwrap();
                    match mine.iter_mut().find(|(k, _)| *k == key) {
                        Some(entry) => entry.1 = kv.mod_revision,
                        None => mine.push((key.clone(), kv.mod_revision)),
                    }
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {key} {} {value}", kv.mod_revision).unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

struct Ack {
    key: String,
    revision: i64,
    /// `None` for a delete.
    value: Option<String>,
}

/// The child's store options for `round`: see [`OPTIONS_ENV`]. Odd rounds, whose redb file is
/// checked for writes only the log holds, checkpoint rarely enough to leave some: with a
/// checkpoint every few milliseconds the file nearly always holds every acknowledged write.
fn child_options(round: usize, rng: &mut impl Rng) -> String {
    let wal = u8::from(round % 6 != 5);
    let interval = if round % 2 == 1 {
        [30, 100][rng.random_range(0..2)]
    } else {
        [1, 3, 10, 30, 100][rng.random_range(0..5)]
    };
    let bytes = if rng.random_bool(0.3) {
        32 * 1024
    } else {
        16 << 20
    };
    format!("{wal},{interval},{bytes}")
}

/// Start a child, let it write for a random while, kill it, and return its acknowledged writes.
fn run_child(dir: &Path, round: usize, rng: &mut impl Rng) -> Vec<Ack> {
    let options = child_options(round, rng);
    eprintln!("round {round}: child options {options}");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .env(OPTIONS_ENV, options)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            // A line cut by the kill has no newline: it was never fully acknowledged in print.
            if line.last() != Some(&b'\n') {
                return;
            }
            let text = String::from_utf8_lossy(&line).trim_end().to_owned();
            if tx.send(text).is_err() {
                return;
            }
        }
    });
    // Wait until the child has opened the store, then let it write for a random while.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the child did not start");
        if line.ends_with("READY") {
            break;
        }
        lines.push(line);
    }
    std::thread::sleep(Duration::from_millis(rng.random_range(30..300)));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    lines
        .iter()
        .filter_map(|line| {
            if let Some(rest) = line.strip_prefix("DEL ") {
                let mut parts = rest.splitn(2, ' ');
                return Some(Ack {
                    key: parts.next()?.to_owned(),
                    revision: parts.next()?.parse().ok()?,
                    value: None,
                });
            }
            let mut parts = line.strip_prefix("ACK ")?.splitn(3, ' ');
            Some(Ack {
                key: parts.next()?.to_owned(),
                revision: parts.next()?.parse().ok()?,
                value: Some(parts.next()?.to_owned()),
            })
        })
        .collect()
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut all_acks: Vec<Ack> = Vec::new();
    let mut total_acked = 0;
    let mut needed_the_log = 0;
    for round in 0..ROUNDS {
        let acks = run_child(dir.path(), round, &mut rng);
        assert!(
            !acks.is_empty() || round > 0,
            "the child acknowledged nothing"
        );
        total_acked += acks.len();
        let newest = acks.iter().map(|a| a.revision).max().unwrap_or(0);
        all_acks.extend(acks);
        // On odd rounds, look at what the redb file alone holds (its last durable commit) before
        // the store opens: when it lacks acknowledged writes, only the log can bring them back.
        // (Even rounds open straight after the kill, so that redb's own repair runs right before
        // the log replay.)
        if round % 2 == 1 {
            let durable = durable_revision(&store_path(dir.path()));
            if durable < newest {
                needed_the_log += 1;
            }
            eprintln!("round {round}: redb file at revision {durable}, newest ack {newest}");
        }
        let store = RedbStore::open(RedbStoreOptions::new(store_path(dir.path()))).unwrap();
        let report = store.check_consistency().unwrap();
        assert!(
            report.is_consistent(),
            "round {round}: {:#?}",
            report.problems
        );
        runtime.block_on(async {
            let status = store.status().await.unwrap();
            // Revisions are unique across every acknowledged write of every round.
            let mut revisions = HashMap::new();

            for ack in &all_acks {
                if let Some(other) = revisions.insert(ack.revision, &ack.key) {
                    panic!(
                        "revision {} acknowledged for {other} and {}",
                        ack.revision, ack.key
                    );
                }
                assert!(
                    ack.revision <= status.revision,
                    "acknowledged beyond the store's revision"
                );
                let past = store.get(&ack.key, Some(ack.revision)).await.unwrap();
                let now = store.get(&ack.key, None).await.unwrap().kv;
                let Some(value) = &ack.value else {
                    // An acknowledged delete: gone at its revision and for good (names are not
                    // reused).
                    assert!(
                        past.kv.is_none(),
                        "round {round}: delete of {} lost",
                        ack.key
                    );
                    assert!(now.is_none(), "round {round}: {} came back", ack.key);
                    continue;
                };
                // The acknowledged version is readable at its revision, and the key has not gone
                // back in time.
                let kv = past
                    .kv
                    .unwrap_or_else(|| panic!("round {round}: {} lost", ack.key));
                assert_eq!(kv.mod_revision, ack.revision, "{}", ack.key);
                assert_eq!(kv.value, Bytes::from(value.clone()), "{}", ack.key);
                // (A key that is gone now was deleted later, by an acknowledged delete or by one
                // that committed just before the kill.)
                if let Some(now) = now {
                    assert!(now.mod_revision >= ack.revision);
                }
            }
            // The store keeps working after the crash.
            let key = format!("/crash/parent/{round}");
            let kv = store
                .create(&key, Bytes::from("after"), None)
                .await
                .unwrap();
            assert_eq!(kv.mod_revision, status.revision + 1);
            match store.create(&key, Bytes::from("again"), None).await {
                Err(StorageError::AlreadyExists { .. }) => {}
                other => panic!("unexpected {other:?}"),
            }
        });
        store.close();
    }
    assert!(
        total_acked > ROUNDS * 10,
        "too few writes to mean anything: {total_acked}"
    );
    assert!(
        needed_the_log > 0,
        "no round left acknowledged writes to the log alone: the replay went untested"
    );
}

/// The revision of the last durable commit of the redb file at `path`, read with redb itself.
fn durable_revision(path: &Path) -> i64 {
    use redb::{ReadableDatabase, TableDefinition};
    const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    let revision = meta
        .get("revision")
        .unwrap()
        .map(|v| v.value())
        .unwrap_or(0);
    i64::try_from(revision).unwrap()
}
