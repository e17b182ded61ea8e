//! A harness that runs real etcd processes for tests: one member or a cluster, on free loopback
//! ports, in temporary data directories, killed when dropped.
//!
//! Tests first call [`require_etcd`]: where etcd is not installed it returns `None` after printing
//! "skipped: etcd not installed", except in CI (`CI=true`), where a missing etcd is a failure.

// Test support: a failed setup is a failed test, and says so.
#![allow(clippy::expect_used)]

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a member may take to become healthy.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The etcd binary: `$ETCD_BIN`, or `etcd` on the `PATH`.
pub fn etcd_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ETCD_BIN") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file())
}

/// The etcd binary, or `None` (after saying the test is skipped) where etcd is not installed.
///
/// # Panics
/// In CI (`CI=true`) a missing etcd fails the test: the etcd tests must run there.
pub fn require_etcd() -> Option<PathBuf> {
    if let Some(path) = etcd_binary() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "etcd is not installed, and CI=true requires the etcd tests to run: \
         install Debian's etcd-server (apt-get install -y etcd-server), as .ci/run does"
    );
    println!("skipped: etcd not installed (apt-get install -y etcd-server to run the etcd tests)");
    None
}

/// Ports handed out in this process, so that parallel tests do not pick the same one.
static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A free loopback port.
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("bind a loopback port");
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        if taken.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

/// A temporary directory, on tmpfs when there is one (etcd fsyncs every commit).
fn temp_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("ironplane-etcd-")
            .tempdir_in(shm)
    {
        return dir;
    }
    tempfile::Builder::new()
        .prefix("ironplane-etcd-")
        .tempdir()
        .expect("create a temporary directory")
}

/// One etcd member.
#[derive(Debug)]
pub struct EtcdMember {
    name: String,
    client_port: u16,
    peer_port: u16,
    initial_cluster: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl EtcdMember {
    /// The client URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The data directory (kept across [`kill`](Self::kill) and [`restart`](Self::restart)).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join(format!("{}.etcd", self.name))
    }

    /// Where this member's log goes.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.name))
    }

    fn spawn(&mut self, binary: &Path) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the etcd log");
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new(binary)
            .arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--listen-client-urls", &self.endpoint()])
            .args(["--advertise-client-urls", &self.endpoint()])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "ironplane-test"])
            // Room for the contract's largest value (1.5 MiB) plus the key and the request.
            .args(["--max-request-bytes", "2097152"])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        self.child = Some(child);
    }

    /// Whether the member answers `/health` with `true` (it has a leader and serves reads).
    pub fn is_healthy(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.client_port));
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        if stream
            .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.contains("\"health\":\"true\"")
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kill the member with SIGKILL and wait for it to exit. Its data directory stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the member again on the same ports and data directory.
    pub fn restart(&mut self) {
        self.kill();
        let binary = etcd_binary().expect("etcd is installed");
        self.spawn(&binary);
    }

    /// The last lines of the member's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for EtcdMember {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A set of etcd members forming one cluster, in one temporary directory.
#[derive(Debug)]
pub struct EtcdCluster {
    /// The members, in the order of their names (`m0`, `m1`, ...).
    pub members: Vec<EtcdMember>,
    _dir: tempfile::TempDir,
}

impl EtcdCluster {
    /// Start a one-member etcd and wait until it is healthy.
    ///
    /// # Panics
    /// If etcd is not installed or does not become healthy in time.
    pub fn start() -> Self {
        Self::start_members(1)
    }

    /// Start an etcd cluster of `size` members and wait until all are healthy.
    ///
    /// # Panics
    /// If etcd is not installed or the members do not become healthy in time.
    pub fn start_members(size: usize) -> Self {
        let binary = etcd_binary().expect("etcd is not installed (Debian: etcd-server)");
        let mut last_failure = String::new();
        // A port picked as free may be taken by the time etcd binds it: try again with others.
        for _ in 0..3 {
            let dir = temp_dir();
            let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
            let initial_cluster = ports
                .iter()
                .enumerate()
                .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
                .collect::<Vec<_>>()
                .join(",");
            let mut members: Vec<EtcdMember> = ports
                .iter()
                .enumerate()
                .map(|(i, (client, peer))| EtcdMember {
                    name: format!("m{i}"),
                    client_port: *client,
                    peer_port: *peer,
                    initial_cluster: initial_cluster.clone(),
                    dir: dir.path().to_path_buf(),
                    child: None,
                })
                .collect();
            for member in &mut members {
                member.spawn(&binary);
            }
            let mut cluster = EtcdCluster { members, _dir: dir };
            match cluster.wait_healthy(START_TIMEOUT) {
                Ok(()) => return cluster,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("etcd did not start: {last_failure}");
    }

    /// Wait until every running member is healthy.
    pub fn wait_healthy(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut pending = None;
            for member in &mut self.members {
                if member.child.is_some() && !member.is_running() {
                    return Err(format!(
                        "etcd member {} exited:\n{}",
                        member.name,
                        member.log_tail()
                    ));
                }
                if member.child.is_some() && !member.is_healthy() {
                    pending = Some(member.name.clone());
                }
            }
            let Some(name) = pending else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(format!("etcd member {name} is not healthy in time"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The client URLs of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(EtcdMember::endpoint).collect()
    }

    /// The first member's client URL.
    pub fn endpoint(&self) -> String {
        self.members
            .first()
            .map(EtcdMember::endpoint)
            .unwrap_or_default()
    }
}
