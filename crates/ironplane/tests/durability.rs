//! Durability of the whole server: `ironplane serve` is killed with SIGKILL while clients create
//! ConfigMaps concurrently; after each restart on the same data directory, every create the server
//! acknowledged (201) is there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

mod support;
use support::connector;

struct Running {
    child: Child,
    port: u16,
}

fn start(data_dir: &Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ironplane"))
        .args(["serve", "--secure-port", "0", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ironplane");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let port = line
        .split("https://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    Running { child, port }
}

async fn request(
    connector: &TlsConnector,
    port: u16,
    method: &str,
    path: &str,
    body: String,
) -> Option<(u16, Bytes)> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .ok()?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .ok()?;
    tokio::spawn(connection);
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, body))
}

async fn wait_ready(connector: &TlsConnector, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some((200, _)) = request(connector, port, "GET", "/readyz", String::new()).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server never became ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_creates_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    for round in 0..3 {
        let mut server = start(dir.path());
        let connector = connector(dir.path());
        wait_ready(&connector, server.port).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for writer in 0..16 {
            let connector = connector.clone();
            let acknowledged = acknowledged.clone();
            let stop = stop.clone();
            let port = server.port;
            writers.push(tokio::spawn(async move {
                let mut index = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let name = format!("r{round}-w{writer}-{index}");
                    index += 1;
                    let body = format!(
                        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"round":"{round}"}}}}"#
                    );
                    match request(&connector, port, "POST", "/api/v1/namespaces/default/configmaps", body).await {
                        Some((201, _)) => acknowledged.lock().unwrap().push(name),
                        Some(_) => {}
                        None => return,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(700 + 300 * round)).await;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for writer in writers {
            let _ = writer.await;
        }
        let mut server = start(dir.path());
        wait_ready(&connector, server.port).await;
        let (status, body) = request(
            &connector,
            server.port,
            "GET",
            "/api/v1/namespaces/default/configmaps",
            String::new(),
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
        let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let stored: std::collections::HashSet<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["metadata"]["name"].as_str().unwrap())
            .collect();
        let acknowledged = acknowledged.lock().unwrap().clone();
        assert!(
            !acknowledged.is_empty(),
            "round {round}: nothing was written"
        );
        eprintln!(
            "round {round}: {} creates acknowledged in total, {} stored",
            acknowledged.len(),
            stored.len()
        );
        let lost: Vec<&String> = acknowledged
            .iter()
            .filter(|name| !stored.contains(name.as_str()))
            .collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged but lost: {lost:?}"
        );
        server.child.kill().unwrap();
        server.child.wait().unwrap();
    }
}
