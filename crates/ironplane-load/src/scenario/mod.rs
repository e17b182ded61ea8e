//! Running a scenario: load the kubeconfig, check that the server answers (`/version`), make sure
//! the namespace exists, run the scenario's measured phase with process sampling and progress,
//! clean up when asked, and print the report.
//!
//! Setup work (finding objects, creating the watched object) happens before the measured phase
//! and is not in the figures.

mod basic;
mod mixed;
mod watch;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::cli::{Plan, ScenarioPlan};
use crate::client::{Client, JSON, Protocol, SharedConnection, Target, shared_connection};
use crate::procfs::{ProcessReport, Sampler};
use crate::progress::{Progress, Ticker};
use crate::report::{OpReport, Report, WatchReport};
use crate::stats::{Failure, OpStats, Recorder, merge_all};

/// The data key that carries an update's sequence number.
pub const SEQ_KEY: &str = "ironplane-load-seq";
/// The label put on every ConfigMap this tool makes.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "ironplane-load");

/// What a scenario hands back for the report.
#[derive(Default)]
pub struct Outcome {
    /// Per-operation statistics.
    pub ops: Vec<OpStats>,
    /// The delivery check of watch and mixed.
    pub watch: Option<WatchReport>,
    /// Sampled processes.
    pub processes: Vec<ProcessReport>,
    /// Seconds of the measured phase.
    pub wall_seconds: f64,
    /// Remarks.
    pub notes: Vec<String>,
    /// The scenario's options, for the report.
    pub parameters: BTreeMap<String, serde_json::Value>,
}

/// The run's shared state.
pub struct Ctx {
    /// The validated options.
    pub plan: Plan,
    /// The server.
    pub target: Arc<Target>,
    connections: Vec<SharedConnection>,
    /// HTTP/1.1 clients whose connections were opened before the measured phase, handed out by
    /// [`Ctx::client`] until none is left.
    opened: std::sync::Mutex<Vec<Client>>,
    /// Live counters for the progress line.
    pub progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
}

impl Ctx {
    /// A client for worker `index` (HTTP/2: on shared connection `index % K`).
    pub fn client(&self, index: usize) -> Client {
        if let Some(client) = self
            .opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
        {
            return client;
        }
        self.target
            .shared_client(&self.connections[index % self.connections.len()])
    }

    /// Opens the request clients' connections (every shared HTTP/2 connection, or one HTTP/1.1
    /// connection per client) all at once, so that the measured phase does not include their
    /// handshakes; returns how long that took. A connection that fails to open is left to be
    /// opened (and its failure counted) by the first request that needs it.
    pub async fn open_connections(&self) -> Duration {
        let started = Instant::now();
        let clients: Vec<Client> = match self.target.protocol() {
            Protocol::Http2 => self
                .connections
                .iter()
                .map(|c| self.target.shared_client(c))
                .collect(),
            Protocol::Http1 => (0..self.plan.clients)
                .map(|_| self.target.own_client())
                .collect(),
        };
        let mut opening = tokio::task::JoinSet::new();
        for mut client in clients {
            opening.spawn(async move {
                let opened = client.connect().await.is_ok();
                (client, opened)
            });
        }
        let mut own = Vec::new();
        while let Some(done) = opening.join_next().await {
            if let Ok((client, true)) = done
                && self.target.protocol() == Protocol::Http1
            {
                own.push(client);
            }
        }
        *self
            .opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = own;
        started.elapsed()
    }

    /// Clients for `n` watchers: HTTP/2 watchers share connections of their own, at most
    /// `--watches-per-connection` streams each; HTTP/1.1 watchers own one connection each.
    pub fn watch_clients(&self, n: usize) -> Vec<Client> {
        match self.target.protocol() {
            Protocol::Http1 => (0..n).map(|_| self.target.own_client()).collect(),
            Protocol::Http2 => {
                let per = self.plan.watches_per_connection.max(1);
                let groups: Vec<SharedConnection> =
                    (0..n.div_ceil(per)).map(|_| shared_connection()).collect();
                (0..n)
                    .map(|i| self.target.shared_client(&groups[i / per]))
                    .collect()
            }
        }
    }

    /// Whether the measured phase should stop (duration over or Ctrl-C).
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Starts the `--duration` clock.
    pub fn arm_deadline(&self) {
        let stop = Arc::clone(&self.stop);
        let duration = self.plan.duration;
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            stop.store(true, Ordering::Relaxed);
        });
    }

    /// `/api/v1/namespaces/<ns>/configmaps`.
    pub fn collection(&self) -> String {
        format!("/api/v1/namespaces/{}/configmaps", self.plan.namespace)
    }

    /// A recorder feeding the progress line.
    pub fn recorder(&self) -> Recorder {
        Recorder::new(Arc::clone(&self.progress))
    }

    /// Starts sampling processes and printing progress.
    pub fn begin(&self, label: &str) -> anyhow::Result<Measure> {
        let sampler = Sampler::start(&self.plan.pids)?;
        let ticker = Ticker::start(label, Arc::clone(&self.progress), self.plan.progress);
        Ok(Measure {
            sampler,
            ticker,
            started: Instant::now(),
        })
    }
}

/// The measured phase in progress.
pub struct Measure {
    sampler: Sampler,
    ticker: Ticker,
    started: Instant,
}

impl Measure {
    /// Ends the phase: its processes' footprint and its length in seconds.
    pub async fn end(self) -> (Vec<ProcessReport>, f64) {
        let wall = self.started.elapsed().as_secs_f64();
        self.ticker.finish().await;
        (self.sampler.finish().await, wall)
    }
}

/// Runs `n` workers as tasks and merges their statistics.
pub async fn workers<F, Fut>(n: usize, make: F) -> anyhow::Result<Vec<OpStats>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Vec<OpStats>> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(make(i))).collect();
    let mut parts = Vec::with_capacity(n);
    for handle in handles {
        parts.push(handle.await.context("a load worker failed")?);
    }
    Ok(merge_all(parts))
}

/// Sleeps until `when`, waking early when the run stops; true when it stopped.
pub async fn wait_until(ctx: &Ctx, when: Instant) -> bool {
    loop {
        if ctx.stopped() {
            return true;
        }
        let now = Instant::now();
        if now >= when {
            return false;
        }
        tokio::time::sleep((when - now).min(Duration::from_millis(50))).await;
    }
}

/// `size` bytes of printable data.
pub fn payload(size: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..size)
        .map(|i| ALPHABET[(i * 7 + i / 36) % ALPHABET.len()] as char)
        .collect()
}

/// How a ConfigMap to send is named.
pub enum Name<'a> {
    /// `metadata.name`.
    Fixed(&'a str),
    /// `metadata.generateName`.
    Generate(&'a str),
}

/// A ConfigMap body: `data` holds the payload and, when given, the sequence number.
pub fn configmap(
    namespace: &str,
    name: Name<'_>,
    payload: &str,
    seq: Option<u64>,
    resource_version: Option<&str>,
) -> Bytes {
    // Borrowed fields serialized straight to bytes: building a `serde_json::Value` first copied
    // the payload and allocated a map per field, a tenth of this tool's CPU in a create run.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        api_version: &'static str,
        kind: &'static str,
        metadata: Metadata<'a>,
        data: Data<'a>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Metadata<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        generate_name: Option<&'a str>,
        namespace: &'a str,
        labels: Labels,
        #[serde(skip_serializing_if = "Option::is_none")]
        resource_version: Option<&'a str>,
    }
    struct Labels;
    impl Serialize for Labels {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap as _;
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry(MANAGED_BY.0, MANAGED_BY.1)?;
            map.end()
        }
    }
    struct Data<'a> {
        payload: &'a str,
        seq: Option<String>,
    }
    impl Serialize for Data<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap as _;
            let mut map = serializer.serialize_map(None)?;
            map.serialize_entry("payload", self.payload)?;
            if let Some(seq) = &self.seq {
                map.serialize_entry(SEQ_KEY, seq)?;
            }
            map.end()
        }
    }
    let (fixed, generate) = match name {
        Name::Fixed(name) => (Some(name), None),
        Name::Generate(prefix) => (None, Some(prefix)),
    };
    let body = Body {
        api_version: "v1",
        kind: "ConfigMap",
        metadata: Metadata {
            name: fixed,
            generate_name: generate,
            namespace,
            labels: Labels,
            resource_version,
        },
        data: Data {
            payload,
            seq: seq.map(|seq| seq.to_string()),
        },
    };
    let mut out = Vec::with_capacity(payload.len() + 256);
    // Serializing borrowed strings into memory cannot fail.
    let _ = serde_json::to_writer(&mut out, &body);
    Bytes::from(out)
}

/// The `metadata.resourceVersion` of an object body.
pub fn resource_version_of(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Object {
        metadata: Meta,
    }
    #[derive(Deserialize)]
    struct Meta {
        #[serde(rename = "resourceVersion")]
        resource_version: Option<String>,
    }
    serde_json::from_slice::<Object>(body)
        .ok()?
        .metadata
        .resource_version
}

/// Percent-encodes a query value (continue tokens are base64 with `=`, `+`, `/`).
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A ConfigMap found by [`discover`].
pub struct Found {
    /// Its name.
    pub name: String,
    /// Its resourceVersion.
    pub resource_version: String,
}

/// The first `limit` ConfigMaps of the namespace whose names start with `prefix`, by pages of
/// 500 (setup work, not measured).
pub async fn discover(
    client: &mut Client,
    collection: &str,
    prefix: &str,
    limit: u64,
) -> anyhow::Result<Vec<Found>> {
    #[derive(Deserialize)]
    struct List {
        #[serde(default)]
        metadata: ListMeta,
        #[serde(default)]
        items: Option<Vec<Item>>,
    }
    #[derive(Deserialize, Default)]
    struct ListMeta {
        #[serde(rename = "continue", default)]
        continue_token: Option<String>,
    }
    #[derive(Deserialize)]
    struct Item {
        metadata: ItemMeta,
    }
    #[derive(Deserialize)]
    struct ItemMeta {
        name: String,
        #[serde(rename = "resourceVersion", default)]
        resource_version: String,
    }
    let mut found = Vec::new();
    let mut continue_token: Option<String> = None;
    loop {
        let mut path = format!("{collection}?limit=500");
        if let Some(token) = &continue_token {
            path.push_str(&format!("&continue={}", query_escape(token)));
        }
        let reply = client
            .call(Method::GET, &path, JSON, None)
            .await
            .map_err(|f| anyhow::anyhow!("listing {collection}: {}", f.message))?;
        if !reply.status.is_success() {
            let f = Failure::from_response(reply.status, &reply.body);
            bail!("listing {collection}: {} {}", f.key, f.message);
        }
        let list: List = serde_json::from_slice(&reply.body)
            .with_context(|| format!("listing {collection}: invalid list"))?;
        for item in list.items.unwrap_or_default() {
            if item.metadata.name.starts_with(prefix) && (found.len() as u64) < limit {
                found.push(Found {
                    name: item.metadata.name,
                    resource_version: item.metadata.resource_version,
                });
            }
        }
        continue_token = list.metadata.continue_token.filter(|t| !t.is_empty());
        if continue_token.is_none() || found.len() as u64 >= limit {
            return Ok(found);
        }
    }
}

/// Runs the plan; `Ok(true)` when the run was clean.
pub async fn run(plan: Plan) -> anyhow::Result<bool> {
    let paths =
        crate::kubeconfig::default_paths(plan.kubeconfig.as_deref()).map_err(anyhow::Error::msg)?;
    let creds =
        crate::kubeconfig::load(&paths, plan.kubeconfig.is_some(), plan.context.as_deref())?;
    let target = Target::new(&creds, plan.protocol, plan.timeout)?;
    let stop = Arc::new(AtomicBool::new(false));
    let connections = (0..plan.connections).map(|_| shared_connection()).collect();
    let ctx = Arc::new(Ctx {
        plan,
        target,
        connections,
        opened: std::sync::Mutex::new(Vec::new()),
        progress: Arc::new(Progress::default()),
        stop: Arc::clone(&stop),
    });

    let version = preflight(&ctx, &creds.source).await?;
    ensure_namespace(&ctx).await?;
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: finishing what is in flight (Ctrl-C again to quit at once)");
            stop.store(true, Ordering::Relaxed);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });

    let connect_seconds = ctx.open_connections().await.as_secs_f64();
    let mut outcome = match ctx.plan.scenario.clone() {
        ScenarioPlan::Create {
            count,
            size,
            generate_name,
        } => basic::create(&ctx, count, size, generate_name).await?,
        ScenarioPlan::Get { count, repeat } => basic::get(&ctx, count, repeat).await?,
        ScenarioPlan::Update { count, repeat } => basic::update(&ctx, count, repeat).await?,
        ScenarioPlan::Patch {
            count,
            repeat,
            patch_type,
        } => basic::patch(&ctx, count, repeat, patch_type).await?,
        ScenarioPlan::Delete { count } => basic::delete(&ctx, count).await?,
        ScenarioPlan::List {
            repeat,
            page_size,
            table,
            resource_version,
        } => basic::list(&ctx, repeat, page_size, table, resource_version).await?,
        ScenarioPlan::Watch {
            watchers,
            rate,
            updates,
            objects,
            size,
            drain,
        } => {
            let options = watch::WatchOptions {
                watchers,
                rate,
                updates,
                objects,
                size,
                drain,
            };
            watch::watch(&ctx, options).await?
        }
        ScenarioPlan::Mixed {
            informers,
            update_rate,
            list_every,
            objects,
            page_size,
            size,
            drain,
        } => {
            mixed::mixed(
                &ctx,
                mixed::MixedOptions {
                    informers,
                    update_rate,
                    list_every,
                    objects,
                    page_size,
                    size,
                    drain,
                },
            )
            .await?
        }
    };
    if ctx.plan.cleanup
        && let Err(error) = cleanup(&ctx).await
    {
        outcome.notes.push(format!("cleanup: {error:#}"));
    }

    let errors: u64 = outcome.ops.iter().map(OpStats::error_count).sum();
    let clean = errors == 0 && outcome.watch.as_ref().is_none_or(WatchReport::is_clean);
    let plan = &ctx.plan;
    let report = Report {
        scenario: plan.scenario.name(),
        server: ctx.target.url().to_owned(),
        server_version: version,
        protocol: plan.protocol,
        connections: (plan.protocol == Protocol::Http2).then_some(plan.connections),
        clients: plan.clients,
        namespace: plan.namespace.clone(),
        parameters: outcome.parameters,
        wall_seconds: outcome.wall_seconds,
        connect_seconds,
        ops: outcome.ops.iter().map(OpReport::from).collect(),
        watch: outcome.watch,
        processes: outcome.processes,
        notes: outcome.notes,
        clean,
    };
    if plan.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(clean)
}

/// `GET /version`: proves the server is reachable and accepts our credentials.
async fn preflight(ctx: &Ctx, source: &str) -> anyhow::Result<Option<String>> {
    #[derive(Deserialize)]
    struct Version {
        #[serde(rename = "gitVersion")]
        git_version: Option<String>,
    }
    let mut client = ctx.client(0);
    let reply = client
        .call(Method::GET, "/version", JSON, None)
        .await
        .map_err(|f| anyhow::anyhow!("cannot reach {}: {}", ctx.target.url(), f.message))?;
    match reply.status {
        s if s.is_success() => Ok(serde_json::from_slice::<Version>(&reply.body)
            .ok()
            .and_then(|v| v.git_version)),
        StatusCode::UNAUTHORIZED => bail!(
            "{} rejected the credentials of {source} (401 Unauthorized)",
            ctx.target.url()
        ),
        // /version may be closed to this user; the rest may still work.
        StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => Ok(None),
        status => {
            let f = Failure::from_response(status, &reply.body);
            bail!(
                "{} answered /version with {}: {}",
                ctx.target.url(),
                f.key,
                f.message
            )
        }
    }
}

/// Creates the namespace unless it exists; waits out a namespace still terminating.
async fn ensure_namespace(ctx: &Ctx) -> anyhow::Result<()> {
    #[derive(Deserialize)]
    struct Namespace {
        #[serde(default)]
        status: Option<NamespaceStatus>,
    }
    #[derive(Deserialize)]
    struct NamespaceStatus {
        phase: Option<String>,
    }
    let ns = &ctx.plan.namespace;
    let path = format!("/api/v1/namespaces/{ns}");
    let mut client = ctx.client(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    let failed = |f: Failure| anyhow::anyhow!("namespace {ns}: {} {}", f.key, f.message);
    loop {
        let reply = client
            .call(Method::GET, &path, JSON, None)
            .await
            .map_err(failed)?;
        match reply.status {
            s if s.is_success() => {
                let namespace: Namespace =
                    serde_json::from_slice(&reply.body).context("invalid namespace")?;
                let terminating = namespace
                    .status
                    .and_then(|s| s.phase)
                    .is_some_and(|p| p == "Terminating");
                if !terminating {
                    return Ok(());
                }
            }
            StatusCode::NOT_FOUND => {
                let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
                let reply = client
                    .call(Method::POST, "/api/v1/namespaces", JSON, Some((JSON, body)))
                    .await
                    .map_err(failed)?;
                if reply.status.is_success() {
                    return Ok(());
                }
                if reply.status != StatusCode::CONFLICT {
                    return Err(failed(Failure::from_response(reply.status, &reply.body)));
                }
            }
            status => return Err(failed(Failure::from_response(status, &reply.body))),
        }
        if Instant::now() > deadline {
            bail!("namespace {ns} is still terminating after 60s; choose another --namespace");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `--cleanup`: deletes the namespace's ConfigMaps, then the namespace; a namespace left
/// terminating (no namespace controller, as with Ironplane or a bare kube-apiserver) is finalized
/// once empty and deleted again, as the namespace controller would.
async fn cleanup(ctx: &Ctx) -> anyhow::Result<()> {
    let ns = &ctx.plan.namespace;
    let mut client = ctx.client(0);
    let collection = ctx.collection();
    let reply = client
        .call(Method::DELETE, &collection, JSON, None)
        .await
        .map_err(|f| anyhow::anyhow!("deleting ConfigMaps: {}", f.message))?;
    if !reply.status.is_success() {
        // No deletecollection: one by one.
        let found = discover(&mut client, &collection, "", u64::MAX).await?;
        for item in found {
            let _ = client
                .call(
                    Method::DELETE,
                    &format!("{collection}/{}", item.name),
                    JSON,
                    None,
                )
                .await;
        }
    }
    let path = format!("/api/v1/namespaces/{ns}");
    let reply = client
        .call(Method::DELETE, &path, JSON, None)
        .await
        .map_err(|f| anyhow::anyhow!("deleting namespace {ns}: {}", f.message))?;
    if !reply.status.is_success() && reply.status != StatusCode::NOT_FOUND {
        let f = Failure::from_response(reply.status, &reply.body);
        bail!("deleting namespace {ns}: {} {}", f.key, f.message);
    }
    // Give a namespace controller 1 s; then finalize the namespace ourselves if it is empty.
    for attempt in 0..50 {
        let reply = client
            .call(Method::GET, &path, JSON, None)
            .await
            .map_err(|f| anyhow::anyhow!("{}", f.message))?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        if attempt == 10 && reply.status.is_success() {
            let remaining = discover(&mut client, &collection, "", 1)
                .await
                .map(|f| f.len())
                .unwrap_or(1);
            if remaining == 0
                && let Ok(mut namespace) = serde_json::from_slice::<serde_json::Value>(&reply.body)
            {
                if let Some(spec) = namespace.get_mut("spec").and_then(|s| s.as_object_mut()) {
                    spec.insert("finalizers".into(), serde_json::json!([]));
                }
                let body = Bytes::from(serde_json::to_vec(&namespace).unwrap_or_default());
                let finalize = format!("{path}/finalize");
                let finalized = client
                    .call(Method::PUT, &finalize, JSON, Some((JSON, body)))
                    .await;
                if finalized.is_ok_and(|r| r.status.is_success()) {
                    // As the namespace controller does: delete again once finalized.
                    let _ = client.call(Method::DELETE, &path, JSON, None).await;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("namespace {ns} is still there (terminating?) after the cleanup")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_configmaps() {
        let body = configmap(
            "ns",
            Name::Fixed("load-1"),
            &payload(10),
            Some(7),
            Some("42"),
        );
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["metadata"]["name"], "load-1");
        assert_eq!(value["metadata"]["labels"][MANAGED_BY.0], MANAGED_BY.1);
        assert_eq!(value["apiVersion"], "v1");
        assert_eq!(value["metadata"]["resourceVersion"], "42");
        assert_eq!(value["data"][SEQ_KEY], "7");
        assert_eq!(value["data"]["payload"].as_str().unwrap().len(), 10);
        assert_eq!(resource_version_of(&body).as_deref(), Some("42"));
        let body = configmap("ns", Name::Generate("load-"), "", None, None);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["metadata"]["generateName"], "load-");
        assert!(value["data"].get(SEQ_KEY).is_none());
    }

    #[test]
    fn escapes_query_values() {
        assert_eq!(query_escape("eyJ2Ijoi+/="), "eyJ2Ijoi%2B%2F%3D");
        assert_eq!(query_escape("a-b_c.d~"), "a-b_c.d~");
    }
}
