//! `ironplane-load`: a load generator that drives any Kubernetes API server on loopback through a
//! kubeconfig, so that one command measures Ironplane and upstream kube-apiserver alike.
//!
//! It reads the kubeconfig the way kubectl does (`--kubeconfig`, else `$KUBECONFIG`, else
//! `~/.kube/config`; the current context or `--context`), speaks HTTPS with rustls (client
//! certificates or bearer tokens), HTTP/2 multiplexed over `--connections` connections (the
//! default) or HTTP/1.1 keep-alive with one connection per client (`--http1`), and refuses any
//! server whose host is not `127.0.0.1`, `::1` or `localhost`.
//!
//! # Scenarios
//! Each works on ConfigMaps in `--namespace` (default `ironplane-load`, created when missing,
//! deleted afterwards with `--cleanup`) and is bounded by a count and by `--duration`:
//!
//! | scenario | what it does |
//! |---|---|
//! | `create -n N --size S` | creates `N` ConfigMaps named `<prefix><index>` (or with `--generate-name`) holding `S` bytes of data, with `-c` concurrent clients |
//! | `get`, `update`, `patch`, `delete` | works through the first `-n` ConfigMaps whose names start with `--prefix` (`-r` passes for get/update/patch); update is read-modify-write with the resourceVersion and counts 409 conflicts apart from errors; patch sends a merge patch (or `--patch-type json`/`strategic`) |
//! | `list -r R --page-size P [--table]` | `R` lists of the namespace's ConfigMaps (full, or paginated by `P`), as JSON or as a Table, by `-c` clients; bodies are streamed and counted, never held |
//! | `watch -w W --rate U [--objects M]` | `W` watchers from the resourceVersion of a list while the writer updates `M` ConfigMaps in turn (default 1; each object's updates are sequential) `U` times a second in total; reports the delay from each update's acknowledgement to each watcher's receipt and checks that every watcher got every update once and, per object, in order |
//! | `mixed --informers K --update-rate R --list-every S` | what controllers do: `K` informers list (paginated) then watch, `-c` clients update `--objects` ConfigMaps at `R`/s in total with cached resourceVersions (a conflict triggers a re-read), and a full list every `S` |
//!
//! The report is a table (or one JSON document with `--json`) of throughput, p50/p90/p99/max
//! latency, errors by HTTP status and reason, and bytes; `--pid PID` (repeatable) samples that
//! process's RSS and CPU time during the measured phase, and the tool's own footprint is reported
//! too, so a saturated client is visible.
//!
//! # Examples
//! ```text
//! ironplane-load create -n 10000 -c 32 --size 1KiB --pid $(pgrep -x ironplane)
//! ironplane-load list -r 20 --page-size 500 --json
//! ironplane-load watch -w 1000 --rate 100 --objects 4 --duration 30s
//! ironplane-load --http1 update -n 10000 -c 32
//! ironplane-load mixed --informers 20 --update-rate 200 --list-every 5s --duration 1m --cleanup
//! ```
//!
//! # Exit status
//! 0: the run finished without a failed request; 1: the run could not be made (bad kubeconfig,
//! server unreachable or not on loopback, setup refused); 2: bad flags; 3: the run finished but
//! requests failed or a watcher missed, repeated or reordered an event.

mod cli;
mod client;
mod histogram;
mod kubeconfig;
mod listscan;
mod procfs;
mod progress;
mod report;
mod scenario;
mod stats;
mod target;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser as _;
use clap::error::ErrorKind;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                error.exit();
            }
            eprintln!("ironplane-load: {}; try --help", cli::first_line(&error));
            return ExitCode::from(2);
        }
    };
    let plan = match cli.plan() {
        Ok(plan) => plan,
        Err(message) => {
            eprintln!("ironplane-load: {message}");
            return ExitCode::from(2);
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = plan.threads {
        builder.worker_threads(threads);
    }
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ironplane-load: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(scenario::run(plan));
    // Connection tasks and watchers may still be parked; do not wait for them.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(error) => {
            eprintln!("ironplane-load: {error:#}");
            ExitCode::from(1)
        }
    }
}
