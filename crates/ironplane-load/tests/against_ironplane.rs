//! End-to-end tests of the `ironplane-load` binary: its one-line errors without a server, and
//! small runs of every scenario against a real `ironplane serve` on 127.0.0.1 (a temporary data
//! dir, port 0). The server binary is found beside this package's binaries in the target dir
//! (build it with `cargo build -p ironplane`) or at `$IRONPLANE_BIN`; without it the server
//! test says so and passes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const LOAD: &str = env!("CARGO_BIN_EXE_ironplane-load");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

fn load(kubeconfig: &Path, args: &[&str]) -> Run {
    let output = Command::new(LOAD)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--json", "--no-progress"])
        .args(args)
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn op<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["ops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no op {name} in {report:#}"))
}

fn write_kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "clusters:\n- name: c\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn refuses_servers_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(dir.path(), "https://10.11.12.13:6443");
    let run = load(&kubeconfig, &["create", "-n", "1"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("only drives servers on loopback"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
}

#[test]
fn unreachable_server_is_one_clear_line() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(dir.path(), &format!("https://127.0.0.1:{port}"));
    let run = load(&kubeconfig, &["list", "-r", "1"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot reach") && run.stderr.contains("cannot connect"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"));
}

#[test]
fn bad_flags_are_one_line_and_status_2() {
    for args in [
        &["create", "--clients", "0"][..],
        &["watch", "--rate", "abc"],
        &["nope"],
        &["list", "--page-size", "-1"],
    ] {
        let output = Command::new(LOAD).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("ironplane-load: "), "{args:?}: {stderr}");
    }
    let help = Command::new(LOAD).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for scenario in [
        "create", "get", "update", "patch", "delete", "list", "watch", "mixed",
    ] {
        assert!(text.contains(scenario), "{text}");
    }
}

/// `ironplane serve` on a temporary data dir; killed on drop.
struct Server {
    child: Child,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ironplane_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("IRONPLANE_BIN") {
        return Some(PathBuf::from(path));
    }
    // This test runs from <target>/<profile>/deps/; the server binary sits in <target>/<profile>/.
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.parent()?.join("ironplane");
    candidate.is_file().then_some(candidate)
}

fn start_server(binary: &Path) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--secure-port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut server = Server {
        child,
        kubeconfig: PathBuf::new(),
        _dir: dir,
    };
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("ironplane did not print its serving line within 30 s");
        if let Some(path) = line.split("export KUBECONFIG=").nth(1) {
            server.kubeconfig = PathBuf::from(path.trim().trim_matches('\''));
            assert!(
                line.starts_with("Ironplane is serving on https://127.0.0.1:"),
                "{line}"
            );
            return server;
        }
    }
}

#[test]
fn every_scenario_against_ironplane() {
    let Some(binary) = ironplane_binary() else {
        eprintln!(
            "SKIPPED: no ironplane binary beside this test; run `cargo build -p ironplane` (same CARGO_TARGET_DIR) or set IRONPLANE_BIN"
        );
        return;
    };
    let server = start_server(&binary);
    let kc = server.kubeconfig.as_path();
    let pid = server.child.id().to_string();

    // create, sampling the server.
    let run = load(
        kc,
        &[
            "create", "-n", "200", "-c", "8", "--size", "512", "--pid", &pid,
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    let create = op(&report, "create");
    assert_eq!(
        (create["ok"].as_u64(), create["errors"].as_u64()),
        (Some(200), Some(0)),
        "{report:#}"
    );
    assert!(create["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    assert!(create["throughput_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(report["clean"], true);
    // The connections were opened before the measured phase, which is timed on its own.
    let connect = report["connect_seconds"].as_f64().unwrap();
    assert!(connect > 0.0 && connect < 30.0, "{report:#}");
    let processes = report["processes"].as_array().unwrap();
    assert_eq!(processes.len(), 2, "{report:#}");
    assert_eq!(
        processes[0]["pid"].as_u64(),
        Some(u64::from(server.child.id()))
    );
    assert!(processes[0]["rss_peak"].as_u64().unwrap() > 0);

    // The same names again: every create is a 409, and the exit status says so.
    let run = load(kc, &["create", "-n", "20", "-c", "4"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(
        op(&report, "create")["errors_by_reason"]["409 AlreadyExists"]["count"].as_u64(),
        Some(20),
        "{report:#}"
    );

    // Lists: full, paginated, as a Table.
    let report = load(kc, &["list", "-r", "3", "-c", "2"]).json();
    let list = op(&report, "list");
    assert_eq!(
        (list["ok"].as_u64(), list["items"].as_u64()),
        (Some(3), Some(600)),
        "{report:#}"
    );
    assert!(list["bytes_received"].as_u64().unwrap() > 3 * 200 * 512);
    let report = load(kc, &["list", "-r", "2", "--page-size", "50"]).json();
    assert_eq!(
        op(&report, "list")["items"].as_u64(),
        Some(400),
        "{report:#}"
    );
    assert_eq!(op(&report, "page")["ok"].as_u64(), Some(8), "{report:#}");
    let report = load(kc, &["list", "-r", "1", "--table"]).json();
    assert_eq!(
        op(&report, "list")["items"].as_u64(),
        Some(200),
        "{report:#}"
    );

    // get over HTTP/1.1, update over HTTP/2 with two connections.
    let report = load(kc, &["--http1", "get", "-n", "200", "-c", "4"]).json();
    assert_eq!(op(&report, "get")["ok"].as_u64(), Some(200), "{report:#}");
    assert_eq!(report["protocol"], "HTTP/1.1");
    assert!(
        report["connect_seconds"].as_f64().unwrap() > 0.0,
        "{report:#}"
    );
    let report = load(
        kc,
        &["update", "-n", "200", "-c", "8", "--connections", "2"],
    )
    .json();
    let update = op(&report, "update");
    assert_eq!(
        update["ok"].as_u64().unwrap() + update["conflicts"].as_u64().unwrap(),
        200,
        "{report:#}"
    );
    assert_eq!(update["errors"].as_u64(), Some(0), "{report:#}");

    // patch may not be wired yet: every attempt is accounted for either way.
    let run = load(kc, &["patch", "-n", "20", "-c", "2"]);
    assert!(
        run.code == 0 || run.code == 3,
        "{}{}",
        run.stdout,
        run.stderr
    );
    let report = run.json();
    let patch = op(&report, "patch");
    assert_eq!(
        patch["ok"].as_u64().unwrap() + patch["errors"].as_u64().unwrap(),
        20,
        "{report:#}"
    );

    // watch: 5 watchers, every update delivered once and in order.
    let run = load(
        kc,
        &["watch", "-w", "5", "--rate", "50", "--duration", "2s"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    let watch = &report["watch"];
    let acknowledged = watch["updates_acknowledged"].as_u64().unwrap();
    assert!(acknowledged >= 50, "{report:#}");
    assert_eq!(
        watch["expected_deliveries"].as_u64(),
        Some(acknowledged * 5)
    );
    assert_eq!(
        watch["delivered"].as_u64(),
        Some(acknowledged * 5),
        "{report:#}"
    );
    for field in ["missing", "duplicated", "out_of_order", "watchers_failed"] {
        assert_eq!(watch[field].as_u64(), Some(0), "{field}: {report:#}");
    }
    assert_eq!(
        op(&report, "delivery")["ok"].as_u64(),
        Some(acknowledged * 5)
    );
    assert_eq!(op(&report, "watch")["ok"].as_u64(), Some(5));

    // mixed: informers, updaters, periodic lists.
    let run = load(
        kc,
        &[
            "mixed",
            "--informers",
            "3",
            "--update-rate",
            "40",
            "--duration",
            "2s",
            "--objects",
            "50",
            "--list-every",
            "1s",
            "-c",
            "2",
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(
        op(&report, "informer list")["ok"].as_u64(),
        Some(3),
        "{report:#}"
    );
    assert!(
        op(&report, "update")["ok"].as_u64().unwrap() >= 40,
        "{report:#}"
    );
    assert!(
        op(&report, "periodic list")["ok"].as_u64().unwrap() >= 1,
        "{report:#}"
    );
    assert_eq!(report["watch"]["missing"].as_u64(), Some(0), "{report:#}");
    assert_eq!(
        report["watch"]["duplicated"].as_u64(),
        Some(0),
        "{report:#}"
    );

    // delete everything named load-* (the 200 and the watched object), then clean up.
    let report = load(kc, &["delete", "-n", "1000", "-c", "8"]).json();
    assert_eq!(
        op(&report, "delete")["ok"].as_u64(),
        Some(201),
        "{report:#}"
    );
    let run = load(kc, &["create", "-n", "5", "--cleanup"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.json()["notes"].as_array().map(Vec::len),
        Some(0),
        "{}",
        run.stdout
    );
}
