//! The `ironplane` command: a Kubernetes API server in one process. `ironplane serve` validates
//! its options, mints or reuses the PKI, opens the storage backend (the embedded store by
//! default), builds and starts the server chain, writes a kubeconfig, and shuts down gracefully on
//! SIGTERM or Ctrl-C.
//!
//! Architecture Invariant: only this binary chooses the storage backend.

mod kubeconfig;
mod pki;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use ironplane_apiserver::authn::TokenAuthenticator;
use ironplane_apiserver::{Server, ServerConfig};
use ironplane_storage::Storage;
use ironplane_storage_etcd::{Compactor, EtcdOptions, EtcdStore, EtcdTls, KeyMap};
use ironplane_storage_redb::{RedbStore, RedbStoreOptions};

/// A Kubernetes API server in one process.
#[derive(Parser)]
#[command(name = "ironplane", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server.
    Serve(ServeOptions),
}

/// Options of `ironplane serve`; names follow kube-apiserver's flags where they mean the same.
#[derive(Args, Debug)]
struct ServeOptions {
    /// Where the store, the PKI and the kubeconfig live.
    #[arg(long, default_value = "./.ironplane")]
    data_dir: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: IpAddr,
    /// The HTTPS port; 0 picks a free one.
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    /// A file of static bearer tokens: `token,user,uid,"group1,group2"` per line.
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// Extra names and addresses for the serving certificate (comma-separated).
    #[arg(long, value_delimiter = ',')]
    tls_sans: Vec<String>,
    /// How long a request may take, except watches (e.g. 60s, 1m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// The most non-mutating requests in flight at once.
    #[arg(long, default_value_t = 400)]
    max_requests_inflight: usize,
    /// The most mutating requests in flight at once.
    #[arg(long, default_value_t = 200)]
    max_mutating_requests_inflight: usize,
    /// Queue requests by priority level (both limits above summed and shared out among the
    /// built-in levels; system:masters is exempt); false refuses each kind past its own limit.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
        default_missing_value = "true", require_equals = true)]
    enable_priority_and_fairness: bool,
    /// How much store history to keep for resumed watches and paginated lists (e.g. 5m).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    history_window: Duration,
    #[command(flatten)]
    etcd: EtcdFlags,
}

/// kube-apiserver's etcd flags. With `--etcd-servers` the store is etcd (docs/etcd.md); without
/// them, the embedded store in the data directory.
#[derive(Args, Debug)]
struct EtcdFlags {
    /// The etcd servers to keep the data in (comma-separated client URLs).
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// Where the resources live in etcd: this replaces the `/registry` root of every key.
    #[arg(long, default_value = "/registry")]
    etcd_prefix: String,
    /// The CA that signed etcd's serving certificates (for https:// servers).
    #[arg(long)]
    etcd_cafile: Option<PathBuf>,
    /// The client certificate presented to etcd.
    #[arg(long)]
    etcd_certfile: Option<PathBuf>,
    /// The client certificate's private key.
    #[arg(long)]
    etcd_keyfile: Option<PathBuf>,
    /// How often to compact etcd's history (e.g. 5m); 0 turns compaction off.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    etcd_compaction_interval: Duration,
    /// The storage backend: `etcd3`, which needs --etcd-servers (and is chosen by them).
    #[arg(long, value_parser = ["etcd3"])]
    storage_backend: Option<String>,
}

/// The store the server runs on, chosen by the options (the only place that chooses it).
enum Backend {
    Embedded(Arc<RedbStore>),
    Etcd {
        store: Arc<EtcdStore>,
        _compactor: Option<Compactor>,
    },
}

impl Backend {
    /// Open etcd when `--etcd-servers` is given, the embedded store otherwise.
    async fn open(options: &ServeOptions, data_dir: &std::path::Path) -> anyhow::Result<Self> {
        let flags = &options.etcd;
        if flags.etcd_servers.is_empty() {
            if flags.storage_backend.is_some() {
                bail!("--storage-backend=etcd3 needs --etcd-servers");
            }
            let mut store_options = RedbStoreOptions::new(data_dir.join("store.redb"))
                .history_window(Some(options.history_window));
            // Lists and watches are served from the watch cache, so the engine's page cache only
            // backs writes and the odd direct read: keep it small so that memory follows the data,
            // not the cache. Half of it buffers the pages changed since the last checkpoint: with
            // 16 MiB, a page was often evicted (pwrite) and read back (pread) before the
            // checkpoint wrote it again.
            store_options.cache_size_bytes = 32 * 1024 * 1024;
            // The watch caches keep their own event windows; the store's ring only serves a
            // cache that resumes after a restart of its watch, so a small one does.
            store_options.event_ring_capacity = 1024;
            store_options.event_ring_max_bytes = 4 * 1024 * 1024;
            let store = RedbStore::open(store_options).context("cannot open the embedded store")?;
            return Ok(Backend::Embedded(Arc::new(store)));
        }
        let tls = (flags.etcd_cafile.is_some()
            || flags.etcd_certfile.is_some()
            || flags.etcd_keyfile.is_some())
        .then(|| EtcdTls {
            ca_file: flags.etcd_cafile.clone(),
            cert_file: flags.etcd_certfile.clone(),
            key_file: flags.etcd_keyfile.clone(),
        });
        let prefix = flags.etcd_prefix.trim_end_matches('/');
        let etcd_options = EtcdOptions::new(flags.etcd_servers.iter().cloned())
            .keys(KeyMap::new("/registry", prefix))
            .tls(tls);
        let store = EtcdStore::connect(etcd_options)
            .await
            .context("cannot set up the etcd client")?;
        // Wait a while for etcd, as it may be starting alongside.
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Err(err) = store.status().await {
            if Instant::now() >= deadline {
                bail!(
                    "etcd at {} is not answering: {err}",
                    flags.etcd_servers.join(",")
                );
            }
            tracing::warn!(error = %err, "waiting for etcd");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let compactor = store.start_compactor(flags.etcd_compaction_interval);
        Ok(Backend::Etcd {
            store: Arc::new(store),
            _compactor: compactor,
        })
    }

    fn storage(&self) -> Arc<dyn Storage> {
        match self {
            Backend::Embedded(store) => store.clone(),
            Backend::Etcd { store, .. } => store.clone(),
        }
    }

    /// Finish pending work and release the store.
    async fn close(self) -> anyhow::Result<()> {
        match self {
            Backend::Embedded(store) => tokio::task::spawn_blocking(move || store.close())
                .await
                .context("store close panicked"),
            Backend::Etcd { store, .. } => {
                store.close();
                Ok(())
            }
        }
    }
}

/// Parse a Go-style duration: a number with `ms`, `s`, `m` or `h` (`1m30s` too).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(|| format!("missing unit in duration {text:?}"))?;
        let value: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        rest = &rest[digits..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            unit => return Err(format!("unknown unit {unit:?} in duration {text:?}")),
        };
        total += Duration::from_secs_f64(seconds);
        rest = &rest[unit_end..];
    }
    Ok(total)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve(options) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(serve(options))
        }
    }
}

fn validate(options: &ServeOptions) -> anyhow::Result<()> {
    if options.max_requests_inflight == 0 || options.max_mutating_requests_inflight == 0 {
        bail!("--max-requests-inflight and --max-mutating-requests-inflight must be positive");
    }
    if options.request_timeout.is_zero() {
        bail!("--request-timeout must be positive");
    }
    if let Some(path) = &options.token_auth_file
        && !path.is_file()
    {
        bail!("--token-auth-file {} does not exist", path.display());
    }
    Ok(())
}

/// The URL clients should use for an address the server bound.
fn server_url(bound: std::net::SocketAddr) -> String {
    let host = match bound.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    format!("https://{host}:{}", bound.port())
}

async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    validate(&options)?;
    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("cannot create {}", options.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&options.data_dir)
        .with_context(|| format!("cannot resolve {}", options.data_dir.display()))?;
    let mut sans = options.tls_sans.clone();
    if !options.bind_address.is_unspecified() && !options.bind_address.is_loopback() {
        sans.push(options.bind_address.to_string());
    }
    let pki = pki::ensure_pki(&data_dir, &sans)?;
    let tls = ironplane_apiserver::tls::server_config(
        &pki.serving_cert_pem,
        &pki.serving_key_pem,
        Some(&pki.ca_cert_pem),
    )
    .context("cannot load the serving certificate")?;
    let tokens = match &options.token_auth_file {
        Some(path) => TokenAuthenticator::from_file(path).map_err(anyhow::Error::msg)?,
        None => TokenAuthenticator::default(),
    };
    let backend = Backend::open(&options, &data_dir).await?;
    let mut config = ServerConfig::new(tls);
    config.bind_address = options.bind_address;
    config.secure_port = options.secure_port;
    config.tokens = tokens;
    config.request_timeout = options.request_timeout;
    config.max_requests_inflight = options.max_requests_inflight;
    config.max_mutating_requests_inflight = options.max_mutating_requests_inflight;
    config.enable_priority_and_fairness = options.enable_priority_and_fairness;
    config.client_ca_pem = Some(pki.ca_cert_pem.clone());
    let server = Server::start(config, backend.storage()).await?;
    let url = server_url(server.local_addr());
    let kubeconfig_path = data_dir.join("kubeconfig");
    kubeconfig::write_kubeconfig(&kubeconfig_path, &url, &pki)?;
    tracing::info!(%url, elapsed_ms = started.elapsed().as_millis() as u64, "serving");
    println!(
        "Ironplane is serving on {url}; to use it: {}",
        kubeconfig::export_line(&kubeconfig_path)?
    );
    wait_for_signal().await?;
    eprintln!("shutting down");
    server.shutdown().await;
    backend.close().await?;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    tokio::select! {
        _ = terminate.recv() => {}
        result = tokio::signal::ctrl_c() => result.context("cannot listen for Ctrl-C")?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn builds_client_urls() {
        assert_eq!(
            server_url("127.0.0.1:6443".parse().unwrap()),
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            server_url("0.0.0.0:1".parse().unwrap()),
            "https://127.0.0.1:1"
        );
        assert_eq!(server_url("[::1]:2".parse().unwrap()), "https://[::1]:2");
    }
}

/// mimalloc instead of glibc's malloc: a create allocates about 170 times, and with glibc those
/// calls (arena locks, consolidation, heap growth by `mprotect`) were a sixth of the server's CPU.
/// Built without transparent huge pages (`no_thp`): with them, its first arena pages would keep
/// 14 MiB resident in an idle server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
