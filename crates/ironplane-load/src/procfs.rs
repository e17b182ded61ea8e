//! Samples processes' footprint from procfs during a run: RSS from `/proc/PID/status` (`VmRSS`)
//! and CPU time from `/proc/PID/stat` (`utime` + `stime`, in USER_HZ ticks, which Linux fixes
//! at 100 per second for user space).

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Clock ticks per second of `/proc/PID/stat` times.
const USER_HZ: f64 = 100.0;
/// How often processes are sampled.
const INTERVAL: Duration = Duration::from_millis(100);

/// One reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Resident set size in bytes.
    pub rss: u64,
    /// User + system CPU time in ticks.
    pub cpu_ticks: u64,
}

/// `VmRSS` of a `/proc/PID/status` text, in bytes.
pub fn parse_status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => value.checked_mul(1024),
        _ => None,
    }
}

/// `utime + stime` of a `/proc/PID/stat` text (fields 14 and 15; the command name in field 2
/// may hold spaces and parentheses, so fields are counted after its last `)`).
pub fn parse_stat_cpu(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // After the name come field 3 (state) onwards; utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The command name (field 2 of `/proc/PID/stat`).
pub fn parse_stat_name(stat: &str) -> Option<&str> {
    stat.get(stat.find('(')? + 1..stat.rfind(')')?)
}

fn read(pid: Option<u32>) -> Option<(Sample, String)> {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_owned(),
    };
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    let sample = Sample {
        rss: parse_status_rss(&status)?,
        cpu_ticks: parse_stat_cpu(&stat)?,
    };
    Some((sample, parse_stat_name(&stat).unwrap_or("?").to_owned()))
}

/// What was seen of one process over the measured phase.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessReport {
    /// The pid, or none for the load tool itself.
    pub pid: Option<u32>,
    /// The command name.
    pub name: String,
    /// RSS at the start, in bytes.
    pub rss_start: u64,
    /// Highest RSS seen.
    pub rss_peak: u64,
    /// RSS at the end (the last reading if the process exited).
    pub rss_end: u64,
    /// CPU seconds used during the phase.
    pub cpu_seconds: f64,
    /// Wall seconds of the phase.
    pub wall_seconds: f64,
    /// The process was gone before the end.
    pub exited: bool,
}

struct Watched {
    pid: Option<u32>,
    name: String,
    start: Sample,
    last: Sample,
    peak: u64,
    exited: bool,
}

impl Watched {
    fn sample(&mut self) {
        if self.exited {
            return;
        }
        match read(self.pid) {
            Some((sample, _)) => {
                self.peak = self.peak.max(sample.rss);
                self.last = sample;
            }
            None => self.exited = true,
        }
    }
}

/// Samples processes in the background until [`Sampler::finish`].
pub struct Sampler {
    stop: watch::Sender<bool>,
    task: JoinHandle<Vec<Watched>>,
    started: Instant,
}

impl Sampler {
    /// Takes the first reading of each pid (and of this process) and starts sampling; fails when
    /// a pid cannot be read.
    pub fn start(pids: &[u32]) -> anyhow::Result<Sampler> {
        let mut watched = Vec::new();
        for pid in pids.iter().copied().map(Some).chain([None]) {
            let Some((sample, name)) = read(pid) else {
                anyhow::bail!(
                    "cannot read /proc/{} (no such process, or not Linux)",
                    pid.map_or("self".to_owned(), |p| p.to_string())
                );
            };
            watched.push(Watched {
                pid,
                name,
                start: sample,
                last: sample,
                peak: sample.rss,
                exited: false,
            });
        }
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stopped.changed() => break,
                }
                for process in &mut watched {
                    process.sample();
                }
            }
            for process in &mut watched {
                process.sample();
            }
            watched
        });
        Ok(Sampler {
            stop,
            task,
            started: Instant::now(),
        })
    }

    /// Takes the last readings and reports.
    pub async fn finish(self) -> Vec<ProcessReport> {
        let wall = self.started.elapsed().as_secs_f64();
        let _ = self.stop.send(true);
        let watched = self.task.await.unwrap_or_default();
        watched
            .into_iter()
            .map(|w| ProcessReport {
                pid: w.pid,
                name: w.name,
                rss_start: w.start.rss,
                rss_peak: w.peak,
                rss_end: w.last.rss,
                cpu_seconds: w.last.cpu_ticks.saturating_sub(w.start.cpu_ticks) as f64 / USER_HZ,
                wall_seconds: wall,
                exited: w.exited,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_stat() {
        let status = "Name:\tironplane\nVmPeak:\t  100 kB\nVmRSS:\t   23456 kB\nThreads:\t4\n";
        assert_eq!(parse_status_rss(status), Some(23456 * 1024));
        assert_eq!(parse_status_rss("Name: x\n"), None);
        let stat = "1234 (kube apiserver) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 12 0 100 1000 200";
        assert_eq!(parse_stat_cpu(stat), Some(287));
        assert_eq!(parse_stat_name(stat), Some("kube apiserver"));
        let tricky = "1 (a) b) R 1 1 1 0 -1 0 0 0 0 0 7 8 0 0";
        assert_eq!(parse_stat_cpu(tricky), Some(15));
        assert_eq!(parse_stat_cpu("garbage"), None);
        assert_eq!(parse_stat_name("1 )x( R"), None);
    }

    #[test]
    fn reads_this_process() {
        let (sample, _) = read(None).unwrap();
        assert!(sample.rss > 0);
        let (_, name) = read(Some(std::process::id())).unwrap();
        assert!(!name.is_empty());
    }
}
