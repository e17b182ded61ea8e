//! Two `ironplane serve` processes on one etcd: a ConfigMap written through one is seen by a get,
//! a list and a watch through the other, with the same resourceVersion; and the keys in etcd are
//! upstream's, as `etcdctl get --prefix /registry/ --keys-only` shows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use ironplane_storage::Storage;
use ironplane_storage_etcd::testing::{EtcdCluster, require_etcd};
use ironplane_storage_etcd::{EtcdOptions, EtcdStore, KeyMap};
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

mod support;
use support::connector;

/// One `ironplane serve` on etcd, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    data_dir: PathBuf,
    connector: TlsConnector,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(data_dir: &Path, etcd: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ironplane"))
            .args([
                "serve",
                "--secure-port",
                "0",
                "--etcd-servers",
                etcd,
                "--data-dir",
            ])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ironplane");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        // "Ironplane is serving on https://127.0.0.1:PORT; to use it: export KUBECONFIG=..."
        let port = line
            .split("https://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
        assert!(line.contains("export KUBECONFIG="), "{line}");
        Server {
            child,
            port,
            data_dir: data_dir.to_path_buf(),
            connector: connector(data_dir),
        }
    }

    async fn request(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let (status, bytes) = send(&self.connector, self.port, method, path, body).await;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.request("GET", "/readyz", "").await.0 == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server on {} never became ready", self.data_dir.display());
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(connector: &TlsConnector, port: u16) -> Sender {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

fn build(method: &str, path: &str, body: &str) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

async fn send(
    connector: &TlsConnector,
    port: u16,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Bytes) {
    let mut sender = connect(connector, port).await;
    let response = sender
        .send_request(build(method, path, body))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

fn resource_version(object: &Value) -> &str {
    object["metadata"]["resourceVersion"].as_str().unwrap()
}

fn config_map(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"k":"v"}}}}"#
    )
}

/// The keys under `/registry/` in etcd: with etcdctl when it is installed (Debian's
/// `etcd-client`), else with a raw client.
async fn registry_keys(etcd: &EtcdCluster) -> Vec<String> {
    let etcdctl = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("etcdctl"))
            .find(|candidate| candidate.is_file())
    });
    if let Some(etcdctl) = etcdctl {
        let output = Command::new(etcdctl)
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &etcd.endpoint()])
            .args(["get", "--prefix", "/registry/", "--keys-only"])
            .output()
            .expect("run etcdctl");
        assert!(output.status.success(), "etcdctl failed: {output:?}");
        return String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect();
    }
    eprintln!("etcdctl is not installed (Debian: etcd-client); reading the keys with a raw client");
    let raw = EtcdStore::connect(EtcdOptions::new(etcd.endpoints()).keys(KeyMap::new("", "")))
        .await
        .unwrap();
    let listed = raw.list("/registry/", Default::default()).await.unwrap();
    listed.kvs.into_iter().map(|kv| kv.key).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_one_etcd() {
    if require_etcd().is_none() {
        return;
    }
    let etcd = EtcdCluster::start();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = Server::start(dirs[0].path(), &etcd.endpoint());
    let b = Server::start(dirs[1].path(), &etcd.endpoint());
    a.wait_ready().await;
    b.wait_ready().await;
    const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

    // Written through A, read through B.
    let (status, created) = a.request("POST", CONFIGMAPS, &config_map("first")).await;
    assert_eq!(status, 201, "{created}");
    let rv = resource_version(&created).to_owned();
    let (status, got) = b.request("GET", &format!("{CONFIGMAPS}/first"), "").await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(resource_version(&got), rv);
    assert_eq!(got["metadata"]["uid"], created["metadata"]["uid"]);

    // Listed through B, at a revision no older than the write.
    let (status, list) = b.request("GET", CONFIGMAPS, "").await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(resource_version(&items[0]), rv);
    let list_rv = resource_version(&list).to_owned();
    assert!(list_rv.parse::<i64>().unwrap() >= rv.parse::<i64>().unwrap());

    // Watched through B from the list's revision; written through A.
    let mut watcher = connect(&b.connector, b.port).await;
    let response = watcher
        .send_request(build(
            "GET",
            &format!("{CONFIGMAPS}?watch=true&resourceVersion={list_rv}"),
            "",
        ))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut body = response.into_body();
    let (status, second) = a.request("POST", CONFIGMAPS, &config_map("second")).await;
    assert_eq!(status, 201, "{second}");
    let second_rv = resource_version(&second).to_owned();
    let mut buffer = Vec::new();
    let event = loop {
        let frame = tokio::time::timeout(Duration::from_secs(15), body.frame())
            .await
            .expect("a watch event in time")
            .expect("the watch is open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            buffer.extend_from_slice(&data);
        }
        if let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            break serde_json::from_slice::<Value>(&line).unwrap();
        }
    };
    assert_eq!(event["type"], "ADDED", "{event}");
    assert_eq!(event["object"]["metadata"]["name"], "second");
    assert_eq!(resource_version(&event["object"]), second_rv);

    // And the other way round: written through B, read through A.
    let (status, updated) = b
        .request(
            "PUT",
            &format!("{CONFIGMAPS}/first"),
            &created.to_string().replace(r#""k":"v""#, r#""k":"w""#),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    let (status, got) = a.request("GET", &format!("{CONFIGMAPS}/first"), "").await;
    assert_eq!(status, 200);
    assert_eq!(got["data"]["k"], "w");
    assert_eq!(resource_version(&got), resource_version(&updated));

    // The keys are upstream's.
    let keys = registry_keys(&etcd).await;
    for expected in [
        "/registry/configmaps/default/first",
        "/registry/configmaps/default/second",
        "/registry/namespaces/default",
        "/registry/namespaces/kube-system",
    ] {
        assert!(
            keys.iter().any(|k| k == expected),
            "{expected} not in {keys:?}"
        );
    }
}

/// While etcd is down, requests fail promptly with a Status and `/readyz` says why; when etcd is
/// back, the server serves again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_fails_fast_while_etcd_is_down_and_recovers() {
    if require_etcd().is_none() {
        return;
    }
    let mut etcd = EtcdCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &etcd.endpoint());
    server.wait_ready().await;
    const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
    let (status, _) = server
        .request("POST", CONFIGMAPS, &config_map("before"))
        .await;
    assert_eq!(status, 201);

    etcd.members[0].kill();
    for (method, path, body) in [
        ("POST", CONFIGMAPS.to_owned(), config_map("during")),
        ("GET", format!("{CONFIGMAPS}/before"), String::new()),
        ("GET", CONFIGMAPS.to_owned(), String::new()),
    ] {
        let started = Instant::now();
        let (status, answer) = server.request(method, &path, &body).await;
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{method} {path} took {:?}",
            started.elapsed()
        );
        assert_eq!(status, 504, "{method} {path}: {answer}");
        assert_eq!(answer["kind"], "Status", "{answer}");
    }
    let (status, _) = server.request("GET", "/readyz", "").await;
    assert_ne!(status, 200, "ready while etcd is down");

    etcd.members[0].restart();
    etcd.wait_healthy(Duration::from_secs(20)).unwrap();
    server.wait_ready().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, answer) = server
            .request("POST", CONFIGMAPS, &config_map("after"))
            .await;
        if status == 201 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {status} {answer}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, list) = server.request("GET", CONFIGMAPS, "").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["after", "before"]);
}
