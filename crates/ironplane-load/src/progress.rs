//! Live counters and the progress line on stderr: every second, overwritten in place with `\r`
//! when stderr is a terminal, else one line every 5 seconds. Nothing is printed before the
//! first period ends, so short runs stay quiet.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Counters every worker bumps.
#[derive(Debug, Default)]
pub struct Progress {
    /// Successful operations.
    pub ok: AtomicU64,
    /// Failed operations.
    pub errors: AtomicU64,
    /// Watch events received.
    pub events: AtomicU64,
}

impl Progress {
    /// Adds one success.
    pub fn ok(&self) {
        self.ok.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds one failure.
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` watch events.
    pub fn events(&self, n: u64) {
        self.events.fetch_add(n, Ordering::Relaxed);
    }
}

/// The task printing the progress line.
pub struct Ticker {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts printing progress of `label` (unless `enabled` is false).
    pub fn start(label: &str, progress: Arc<Progress>, enabled: bool) -> Ticker {
        let (stop, mut stopped) = watch::channel(false);
        if !enabled {
            return Ticker { stop, task: None };
        }
        let label = label.to_owned();
        let tty = std::io::stderr().is_terminal();
        let period = if tty {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(5)
        };
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut last = (started, 0u64);
            let mut printed = false;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = stopped.changed() => break,
                }
                let now = Instant::now();
                let ok = progress.ok.load(Ordering::Relaxed);
                let errors = progress.errors.load(Ordering::Relaxed);
                let events = progress.events.load(Ordering::Relaxed);
                let rate = (ok - last.1.min(ok)) as f64
                    / now.duration_since(last.0).as_secs_f64().max(1e-9);
                last = (now, ok);
                let mut line = format!(
                    "{label}: {:>6.1}s  {ok} ok  {errors} errors  {rate:.0}/s",
                    started.elapsed().as_secs_f64()
                );
                if events > 0 {
                    line.push_str(&format!("  {events} events"));
                }
                let mut err = std::io::stderr().lock();
                let _ = if tty {
                    write!(err, "\r\x1b[K{line}")
                } else {
                    writeln!(err, "{line}")
                };
                let _ = err.flush();
                printed = true;
            }
            if printed && tty {
                let _ = write!(std::io::stderr(), "\r\x1b[K");
            }
        });
        Ticker {
            stop,
            task: Some(task),
        }
    }

    /// Stops and clears the line.
    pub async fn finish(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
