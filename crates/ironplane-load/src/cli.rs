//! The command line: clap definitions, value parsers (durations, sizes), and validation into a
//! [`Plan`] with every default resolved, so scenarios never see an unchecked value.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::client::Protocol;

/// Examples and exit statuses, after the option list of `--help`.
const AFTER_HELP: &str = "\
Only servers on 127.0.0.1, ::1 or localhost are driven.

Examples:
  ironplane-load create -n 10000 -c 32 --size 1KiB --pid \"$(pgrep -x ironplane)\"
  ironplane-load list -r 20 --page-size 500 --json
  ironplane-load watch -w 1000 --rate 100 --objects 4 --duration 30s
  ironplane-load --http1 update -n 10000 -c 32
  ironplane-load mixed --informers 20 --update-rate 200 --list-every 5s --duration 1m --cleanup

Exit status: 0 clean run; 1 the run could not be made (kubeconfig, server unreachable or not on
loopback, setup refused); 2 bad flags; 3 the run finished but requests failed or a watcher missed,
repeated or reordered an event.";

/// Drive a Kubernetes API server on loopback with ConfigMap load and report throughput, latency,
/// errors and the server's footprint.
///
/// Exit status: 0 clean run; 1 the run could not be made; 2 bad flags; 3 the run finished with
/// failed requests or watch events missing, repeated or out of order.
#[derive(Parser, Debug)]
#[command(name = "ironplane-load", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    /// Options shared by every scenario.
    #[command(flatten)]
    pub global: GlobalOptions,
    /// The scenario to run.
    #[command(subcommand)]
    pub scenario: ScenarioCommand,
}

/// Options shared by every scenario; they may be given before or after the scenario name.
#[derive(Args, Debug)]
#[command(next_help_heading = "Options of every scenario")]
pub struct GlobalOptions {
    /// The kubeconfig (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Speak HTTP/2, multiplexing requests over --connections connections (the default).
    #[arg(long, global = true, conflicts_with = "http1")]
    pub http2: bool,
    /// Speak HTTP/1.1 with keep-alive, one connection per client and per watcher.
    #[arg(long, global = true)]
    pub http1: bool,
    /// HTTP/2 connections shared by the clients [default: 1].
    #[arg(long, global = true, value_name = "K")]
    pub connections: Option<usize>,
    /// HTTP/2 watch streams per connection; watchers get connections of their own.
    #[arg(long, global = true, value_name = "N", default_value_t = 100)]
    pub watches_per_connection: usize,
    /// Concurrent clients [default: 32 for create/get/update/patch/delete, 1 for list, 4 for mixed].
    #[arg(short = 'c', long, global = true, value_name = "C")]
    pub clients: Option<usize>,
    /// The namespace to work in; created when missing.
    #[arg(
        long,
        global = true,
        value_name = "NS",
        default_value = "ironplane-load"
    )]
    pub namespace: String,
    /// Delete the namespace's ConfigMaps and the namespace when done.
    #[arg(long, global = true)]
    pub cleanup: bool,
    /// Stop the measured phase after this long (e.g. 30s, 2m) [default: 10m; watch 10s; mixed 30s].
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Give up on one request (not a watch) after this long.
    #[arg(long, global = true, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Name prefix of the ConfigMaps made and used.
    #[arg(long, global = true, value_name = "PREFIX", default_value = "load-")]
    pub prefix: String,
    /// Print one JSON document instead of the table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Sample this process's RSS and CPU during the run (repeatable: API server, etcd).
    #[arg(long = "pid", global = true, value_name = "PID")]
    pub pids: Vec<u32>,
    /// Do not print the progress line on stderr.
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Worker threads of the load tool itself [default: one per core].
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
}

/// The scenarios.
#[derive(Subcommand, Debug)]
pub enum ScenarioCommand {
    /// Create N ConfigMaps named <prefix><index>.
    Create(CreateArgs),
    /// Get the first N ConfigMaps named <prefix>*, R times over.
    Get(ObjectsArgs),
    /// Read-modify-write the first N ConfigMaps named <prefix>* (PUT with the resourceVersion).
    Update(ObjectsArgs),
    /// Patch the first N ConfigMaps named <prefix>*.
    Patch(PatchArgs),
    /// Delete the first N ConfigMaps named <prefix>*.
    Delete(DeleteArgs),
    /// List the namespace's ConfigMaps R times, whole or by pages, as JSON or Table.
    List(ListArgs),
    /// W watchers on the namespace's ConfigMaps while a writer updates --objects ConfigMaps U times/s.
    Watch(WatchArgs),
    /// Informers (list, then watch), a pool of updaters and periodic lists, as controllers do.
    Mixed(MixedArgs),
}

/// Options of `create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// How many ConfigMaps to create.
    #[arg(
        short = 'n',
        long = "count",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub count: u64,
    /// Bytes of data per ConfigMap (e.g. 1024, 1KiB, 64k).
    #[arg(long, value_name = "BYTES", default_value = "1KiB", value_parser = parse_size)]
    pub size: usize,
    /// Let the server choose names (metadata.generateName = prefix).
    #[arg(long)]
    pub generate_name: bool,
}

/// Options of `get` and `update`.
#[derive(Args, Debug)]
pub struct ObjectsArgs {
    /// How many of the ConfigMaps named <prefix>* to work through.
    #[arg(
        short = 'n',
        long = "count",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub count: u64,
    /// Passes over them.
    #[arg(short = 'r', long = "repeat", value_name = "R", default_value_t = 1)]
    pub repeat: u64,
}

/// How `patch` patches.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json` (RFC 7396).
    Merge,
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
}

impl PatchType {
    /// The request's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Json => "application/json-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
        }
    }
}

/// Options of `patch`.
#[derive(Args, Debug)]
pub struct PatchArgs {
    /// Which objects and how often.
    #[command(flatten)]
    pub objects: ObjectsArgs,
    /// The patch format.
    #[arg(long, value_enum, default_value_t = PatchType::Merge)]
    pub patch_type: PatchType,
}

/// Options of `delete`.
#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// How many of the ConfigMaps named <prefix>* to delete.
    #[arg(
        short = 'n',
        long = "count",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub count: u64,
}

/// Options of `list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// How many lists in total.
    #[arg(short = 'r', long = "repeat", value_name = "R", default_value_t = 10)]
    pub repeat: u64,
    /// Items per page (`limit`); 0 lists everything in one response.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub page_size: u64,
    /// Ask for a Table (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`).
    #[arg(long)]
    pub table: bool,
    /// The `resourceVersion` of each list (e.g. 0 for "any"); default: unset (most recent).
    #[arg(long, value_name = "RV")]
    pub resource_version: Option<String>,
}

/// Options of `watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// How many watchers.
    #[arg(short = 'w', long = "watchers", value_name = "W", default_value_t = 10)]
    pub watchers: usize,
    /// Updates per second made by the writer.
    #[arg(long, value_name = "U", default_value_t = 100.0)]
    pub rate: f64,
    /// Stop after this many updates (default: when --duration ends).
    #[arg(short = 'n', long = "count", value_name = "N")]
    pub count: Option<u64>,
    /// ConfigMaps updated in turn (<prefix>watch-<j>); each object's updates are sequential, so
    /// raise this when one object cannot take --rate updates a second.
    #[arg(long, value_name = "M", default_value_t = 1)]
    pub objects: usize,
    /// Bytes of data in the updated ConfigMap.
    #[arg(long, value_name = "BYTES", default_value = "1KiB", value_parser = parse_size)]
    pub size: usize,
    /// How long to wait, after the last update, for watchers to catch up.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub drain: Duration,
}

/// Options of `mixed`.
#[derive(Args, Debug)]
pub struct MixedArgs {
    /// Informers: each lists (paginated) then watches the namespace's ConfigMaps.
    #[arg(long, value_name = "K", default_value_t = 10)]
    pub informers: usize,
    /// Updates per second, in total, by the -c update clients.
    #[arg(long, value_name = "R", default_value_t = 50.0)]
    pub update_rate: f64,
    /// A full list of the namespace every this long; 0 for none.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub list_every: Duration,
    /// How many ConfigMaps named <prefix><index> to update (missing ones are created first).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub objects: u64,
    /// Page size of the informers' lists.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub page_size: u64,
    /// Bytes of data per ConfigMap created.
    #[arg(long, value_name = "BYTES", default_value = "1KiB", value_parser = parse_size)]
    pub size: usize,
    /// How long to wait, after the last update, for informers to catch up.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub drain: Duration,
}

/// A scenario with its options checked and defaults resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum ScenarioPlan {
    /// See [`CreateArgs`].
    Create {
        /// Objects to create.
        count: u64,
        /// Data bytes per object.
        size: usize,
        /// Use `generateName`.
        generate_name: bool,
    },
    /// See [`ObjectsArgs`].
    Get {
        /// Objects.
        count: u64,
        /// Passes.
        repeat: u64,
    },
    /// See [`ObjectsArgs`].
    Update {
        /// Objects.
        count: u64,
        /// Passes.
        repeat: u64,
    },
    /// See [`PatchArgs`].
    Patch {
        /// Objects.
        count: u64,
        /// Passes.
        repeat: u64,
        /// Patch format.
        patch_type: PatchType,
    },
    /// See [`DeleteArgs`].
    Delete {
        /// Objects.
        count: u64,
    },
    /// See [`ListArgs`].
    List {
        /// Lists in total.
        repeat: u64,
        /// Page size, 0 for full lists.
        page_size: u64,
        /// Ask for Tables.
        table: bool,
        /// `resourceVersion` of the lists.
        resource_version: Option<String>,
    },
    /// See [`WatchArgs`].
    Watch {
        /// Watchers.
        watchers: usize,
        /// Updates per second.
        rate: f64,
        /// Most updates (the sequence-number space); derived from rate × duration when unset.
        updates: u64,
        /// Objects updated in turn.
        objects: usize,
        /// Data bytes of the updated object.
        size: usize,
        /// Catch-up wait.
        drain: Duration,
    },
    /// See [`MixedArgs`].
    Mixed {
        /// Informers.
        informers: usize,
        /// Updates per second in total.
        update_rate: f64,
        /// Period of full lists.
        list_every: Option<Duration>,
        /// Objects updated.
        objects: u64,
        /// Page size of informer lists.
        page_size: u64,
        /// Data bytes per object.
        size: usize,
        /// Catch-up wait.
        drain: Duration,
    },
}

impl ScenarioPlan {
    /// The scenario's name as typed on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            ScenarioPlan::Create { .. } => "create",
            ScenarioPlan::Get { .. } => "get",
            ScenarioPlan::Update { .. } => "update",
            ScenarioPlan::Patch { .. } => "patch",
            ScenarioPlan::Delete { .. } => "delete",
            ScenarioPlan::List { .. } => "list",
            ScenarioPlan::Watch { .. } => "watch",
            ScenarioPlan::Mixed { .. } => "mixed",
        }
    }
}

/// Everything a run needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Explicit kubeconfig path.
    pub kubeconfig: Option<PathBuf>,
    /// Explicit context.
    pub context: Option<String>,
    /// HTTP version.
    pub protocol: Protocol,
    /// HTTP/2 connections shared by request clients.
    pub connections: usize,
    /// HTTP/2 watch streams per watch connection.
    pub watches_per_connection: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Namespace.
    pub namespace: String,
    /// Delete the namespace's ConfigMaps and the namespace afterwards.
    pub cleanup: bool,
    /// Cap of the measured phase.
    pub duration: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Object name prefix.
    pub prefix: String,
    /// JSON output.
    pub json: bool,
    /// Processes to sample.
    pub pids: Vec<u32>,
    /// Print progress on stderr.
    pub progress: bool,
    /// Worker threads of the tool.
    pub threads: Option<usize>,
    /// The scenario.
    pub scenario: ScenarioPlan,
}

/// The most sequence numbers a watch or mixed run may allot (bounds its bookkeeping memory).
const MAX_SEQUENCE: u64 = 10_000_000;
/// The most (watcher, sequence number) pairs tracked: one bit each, so at most 1 GiB.
const MAX_DELIVERIES: u64 = 8 << 30;

impl Cli {
    /// Checks every option and resolves the defaults; the error is one line for the user.
    pub fn plan(self) -> Result<Plan, String> {
        let g = self.global;
        let protocol = if g.http1 {
            Protocol::Http1
        } else {
            Protocol::Http2
        };
        if g.http1 && g.connections.is_some() {
            return Err("--connections applies to HTTP/2 only (with --http1 each client has its own connection)".into());
        }
        let connections = g.connections.unwrap_or(1);
        in_range("--connections", connections as u64, 1, 1000)?;
        in_range(
            "--watches-per-connection",
            g.watches_per_connection as u64,
            1,
            10_000,
        )?;
        validate_dns_label(&g.namespace)
            .map_err(|why| format!("--namespace {:?}: {why}", g.namespace))?;
        validate_prefix(&g.prefix).map_err(|why| format!("--prefix {:?}: {why}", g.prefix))?;
        if g.timeout.is_zero() {
            return Err("--timeout must be positive".into());
        }
        if let Some(threads) = g.threads {
            in_range("--threads", threads as u64, 1, 256)?;
        }
        for pid in &g.pids {
            if *pid == 0 || !std::path::Path::new(&format!("/proc/{pid}/stat")).exists() {
                return Err(format!("--pid {pid}: no such process"));
            }
        }
        if g.duration.is_some_and(|d| d.is_zero()) {
            return Err("--duration must be positive".into());
        }
        let default_clients;
        let default_duration;
        let scenario = match self.scenario {
            ScenarioCommand::Create(a) => {
                (default_clients, default_duration) = (32, 600);
                in_range("-n/--count", a.count, 1, 100_000_000)?;
                check_size(a.size)?;
                ScenarioPlan::Create {
                    count: a.count,
                    size: a.size,
                    generate_name: a.generate_name,
                }
            }
            ScenarioCommand::Get(a) => {
                (default_clients, default_duration) = (32, 600);
                objects(&a)?;
                ScenarioPlan::Get {
                    count: a.count,
                    repeat: a.repeat,
                }
            }
            ScenarioCommand::Update(a) => {
                (default_clients, default_duration) = (32, 600);
                objects(&a)?;
                ScenarioPlan::Update {
                    count: a.count,
                    repeat: a.repeat,
                }
            }
            ScenarioCommand::Patch(a) => {
                (default_clients, default_duration) = (32, 600);
                objects(&a.objects)?;
                ScenarioPlan::Patch {
                    count: a.objects.count,
                    repeat: a.objects.repeat,
                    patch_type: a.patch_type,
                }
            }
            ScenarioCommand::Delete(a) => {
                (default_clients, default_duration) = (32, 600);
                in_range("-n/--count", a.count, 1, 100_000_000)?;
                ScenarioPlan::Delete { count: a.count }
            }
            ScenarioCommand::List(a) => {
                (default_clients, default_duration) = (1, 600);
                in_range("-r/--repeat", a.repeat, 1, 10_000_000)?;
                if let Some(rv) = &a.resource_version
                    && (rv.is_empty() || !rv.bytes().all(|b| b.is_ascii_alphanumeric()))
                {
                    return Err(format!(
                        "--resource-version {rv:?} must be a non-empty alphanumeric resourceVersion"
                    ));
                }
                ScenarioPlan::List {
                    repeat: a.repeat,
                    page_size: a.page_size,
                    table: a.table,
                    resource_version: a.resource_version,
                }
            }
            ScenarioCommand::Watch(a) => {
                if g.clients.is_some() {
                    return Err("-c/--clients does not apply to watch (use -w for watchers, --objects for concurrent writes)".into());
                }
                (default_clients, default_duration) = (1, 10);
                in_range("-w/--watchers", a.watchers as u64, 1, 100_000)?;
                in_range("--objects", a.objects as u64, 1, 10_000)?;
                check_rate("--rate", a.rate)?;
                check_size(a.size)?;
                let duration = g.duration.unwrap_or(Duration::from_secs(default_duration));
                let updates = match a.count {
                    Some(n) => {
                        in_range("-n/--count", n, 1, MAX_SEQUENCE)?;
                        n
                    }
                    None => sequence_space("--rate × --duration", a.rate, duration)?,
                };
                check_deliveries(a.watchers, updates)?;
                ScenarioPlan::Watch {
                    watchers: a.watchers,
                    rate: a.rate,
                    updates,
                    objects: a.objects,
                    size: a.size,
                    drain: a.drain,
                }
            }
            ScenarioCommand::Mixed(a) => {
                (default_clients, default_duration) = (4, 30);
                in_range("--informers", a.informers as u64, 0, 100_000)?;
                check_rate("--update-rate", a.update_rate)?;
                in_range("--objects", a.objects, 1, 10_000_000)?;
                in_range("--page-size", a.page_size, 1, 1_000_000)?;
                check_size(a.size)?;
                let duration = g.duration.unwrap_or(Duration::from_secs(default_duration));
                let updates =
                    sequence_space("--update-rate × --duration", a.update_rate, duration)?;
                check_deliveries(a.informers, updates)?;
                ScenarioPlan::Mixed {
                    informers: a.informers,
                    update_rate: a.update_rate,
                    list_every: (!a.list_every.is_zero()).then_some(a.list_every),
                    objects: a.objects,
                    page_size: a.page_size,
                    size: a.size,
                    drain: a.drain,
                }
            }
        };
        let clients = g.clients.unwrap_or(default_clients);
        in_range("-c/--clients", clients as u64, 1, 100_000)?;
        Ok(Plan {
            kubeconfig: g.kubeconfig,
            context: g.context,
            protocol,
            connections,
            watches_per_connection: g.watches_per_connection,
            clients,
            namespace: g.namespace,
            cleanup: g.cleanup,
            duration: g.duration.unwrap_or(Duration::from_secs(default_duration)),
            timeout: g.timeout,
            prefix: g.prefix,
            json: g.json,
            pids: g.pids,
            progress: !g.no_progress,
            threads: g.threads,
            scenario,
        })
    }
}

fn objects(a: &ObjectsArgs) -> Result<(), String> {
    in_range("-n/--count", a.count, 1, 100_000_000)?;
    in_range("-r/--repeat", a.repeat, 1, 1_000_000)?;
    if a.count.saturating_mul(a.repeat) > 1_000_000_000 {
        return Err("-n × -r must be at most 1e9 operations".into());
    }
    Ok(())
}

fn in_range(flag: &str, value: u64, min: u64, max: u64) -> Result<(), String> {
    if value < min || value > max {
        return Err(format!(
            "{flag} must be between {min} and {max}, not {value}"
        ));
    }
    Ok(())
}

fn check_rate(flag: &str, rate: f64) -> Result<(), String> {
    if !rate.is_finite() || rate <= 0.0 || rate > 1_000_000.0 {
        return Err(format!(
            "{flag} must be a positive number of operations per second (at most 1e6), not {rate}"
        ));
    }
    Ok(())
}

/// The sequence numbers needed for `rate` per second over `duration` (with slack), bounded.
fn sequence_space(what: &str, rate: f64, duration: Duration) -> Result<u64, String> {
    let needed = (rate * duration.as_secs_f64()).ceil() + 1.0;
    if needed > MAX_SEQUENCE as f64 {
        return Err(format!(
            "{what} asks for more than {MAX_SEQUENCE} updates; lower one of them"
        ));
    }
    Ok(needed as u64)
}

/// Each watcher keeps one bit per update; bound the total.
fn check_deliveries(watchers: usize, updates: u64) -> Result<(), String> {
    if (watchers as u64).saturating_mul(updates) > MAX_DELIVERIES {
        return Err(format!(
            "{watchers} watchers × {updates} updates is more deliveries than can be tracked; lower the watchers, the rate or the duration"
        ));
    }
    Ok(())
}

/// ConfigMaps may hold at most 1 MiB.
fn check_size(size: usize) -> Result<(), String> {
    if size > 1 << 20 {
        return Err(format!(
            "--size {size} exceeds 1MiB, the most a ConfigMap may hold"
        ));
    }
    Ok(())
}

/// A DNS-1123 label, as namespace names must be.
fn validate_dns_label(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 63 {
        return Err("must be 1 to 63 characters");
    }
    let bytes = name.as_bytes();
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return Err("may hold only lowercase letters, digits and '-'");
    }
    if bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

/// A prefix that, followed by digits (or the server's random suffix), makes a valid name.
fn validate_prefix(prefix: &str) -> Result<(), &'static str> {
    if prefix.len() > 200 {
        return Err("must be at most 200 characters");
    }
    let bytes = prefix.as_bytes();
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.')
    {
        return Err("may hold only lowercase letters, digits, '-' and '.'");
    }
    if bytes.first().is_some_and(|b| !b.is_ascii_alphanumeric()) {
        return Err("must start with a letter or digit");
    }
    Ok(())
}

/// Parses a Go-style duration (`250ms`, `10s`, `1m30s`, `2h`) or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds_to_duration(seconds, text);
    }
    let mut total = 0.0;
    let mut rest = text;
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
        total += match &rest[..unit_end] {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            unit => {
                return Err(format!(
                    "unknown unit {unit:?} in duration {text:?} (use ms, s, m or h)"
                ));
            }
        };
        rest = &rest[unit_end..];
    }
    seconds_to_duration(total, text)
}

fn seconds_to_duration(seconds: f64, text: &str) -> Result<Duration, String> {
    if !seconds.is_finite() || !(0.0..=365.0 * 86400.0).contains(&seconds) {
        return Err(format!("duration {text:?} out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses a byte size: a number with an optional `k`/`Ki`/`KiB` or `M`/`Mi`/`MiB` suffix
/// (binary multiples) or `B`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: usize = digits
        .parse()
        .map_err(|_| format!("invalid size {text:?}"))?;
    let multiplier = match unit.trim() {
        "" | "B" => 1,
        "k" | "K" | "Ki" | "KiB" => 1 << 10,
        "M" | "Mi" | "MiB" => 1 << 20,
        other => {
            return Err(format!(
                "unknown unit {other:?} in size {text:?} (use B, KiB or MiB)"
            ));
        }
    };
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("size {text:?} too large"))
}

/// The first line of a clap error without its `error: ` tag, for a one-line message.
pub fn first_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let line = rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments");
    line.trim().trim_start_matches("error:").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Result<Plan, String> {
        let mut argv = vec!["ironplane-load"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli.plan(),
            Err(error) => Err(first_line(&error)),
        }
    }

    #[test]
    fn parses_durations() {
        for (text, expected) in [
            ("60s", Some(60_000)),
            ("1m30s", Some(90_000)),
            ("250ms", Some(250)),
            ("2", Some(2000)),
            ("0.5", Some(500)),
            ("1h", Some(3_600_000)),
            ("5x", None),
            ("", None),
            ("-1", None),
            ("s", None),
        ] {
            let got = parse_duration(text).ok().map(|d| d.as_millis() as u64);
            assert_eq!(got, expected, "{text:?}");
        }
    }

    #[test]
    fn parses_sizes() {
        for (text, expected) in [
            ("1024", Some(1024)),
            ("1KiB", Some(1024)),
            ("1k", Some(1024)),
            ("4Ki", Some(4096)),
            ("1MiB", Some(1 << 20)),
            ("0", Some(0)),
            ("12B", Some(12)),
            ("1GiB", None),
            ("x", None),
            ("-1", None),
        ] {
            assert_eq!(parse_size(text).ok(), expected, "{text:?}");
        }
    }

    #[test]
    fn resolves_defaults_per_scenario() {
        let p = plan(&["create"]).unwrap();
        assert_eq!(p.clients, 32);
        assert_eq!(p.protocol, Protocol::Http2);
        assert_eq!(p.connections, 1);
        assert_eq!(p.namespace, "ironplane-load");
        assert_eq!(p.duration, Duration::from_secs(600));
        assert_eq!(
            p.scenario,
            ScenarioPlan::Create {
                count: 10_000,
                size: 1024,
                generate_name: false
            }
        );
        assert_eq!(plan(&["list"]).unwrap().clients, 1);
        let w = plan(&["watch", "-w", "5", "--rate", "20", "--duration", "2s"]).unwrap();
        assert_eq!(w.duration, Duration::from_secs(2));
        assert!(matches!(
            w.scenario,
            ScenarioPlan::Watch {
                watchers: 5,
                updates: 41,
                ..
            }
        ));
        // Global options go before or after the scenario.
        let p = plan(&["--http1", "get", "-c", "4", "--namespace", "x"]).unwrap();
        assert_eq!(
            (p.protocol, p.clients, p.namespace.as_str()),
            (Protocol::Http1, 4, "x")
        );
        let p = plan(&["mixed", "--list-every", "0"]).unwrap();
        assert!(matches!(
            p.scenario,
            ScenarioPlan::Mixed {
                list_every: None,
                ..
            }
        ));
    }

    #[test]
    fn rejects_bad_flags_with_one_line() {
        for (args, fragment) in [
            (&["create", "-c", "0"][..], "-c/--clients must be between"),
            (&["create", "-n", "0"], "-n/--count must be between"),
            (&["create", "--size", "2MiB"], "exceeds 1MiB"),
            (&["--http1", "--connections", "2", "create"], "HTTP/2 only"),
            (&["--http1", "--http2", "create"], "cannot be used with"),
            (&["--namespace", "Bad_NS", "create"], "--namespace"),
            (
                &["--prefix=-x", "create"],
                "must start with a letter or digit",
            ),
            (&["--prefix", "Load-", "create"], "may hold only lowercase"),
            (&["watch", "--rate", "0"], "--rate must be a positive"),
            (&["watch", "-c", "3"], "does not apply to watch"),
            (
                &["watch", "--rate", "1000000", "--duration", "1h"],
                "more than",
            ),
            (&["list", "--resource-version", "a b"], "--resource-version"),
            (
                &["watch", "-w", "100000", "-n", "10000000"],
                "more deliveries",
            ),
            (&["create", "--duration", "10x"], "unknown unit"),
            (
                &["create", "--duration", "0"],
                "--duration must be positive",
            ),
            (&["frobnicate"], "unrecognized subcommand"),
            (&["create", "--bogus"], "unexpected argument"),
            (&["--pid", "0", "create"], "no such process"),
        ] {
            let error = plan(args).expect_err(&format!("{args:?} should fail"));
            assert!(error.contains(fragment), "{args:?}: {error}");
            assert!(!error.contains('\n'), "{args:?}: {error}");
        }
    }
}
