//! Health endpoints as upstream serves them: `/healthz`, `/livez` and `/readyz`, each a list of
//! named checks, with `?verbose`, `?exclude=NAME` and one path per check (`/readyz/etcd`).
//! `/readyz` fails as soon as shutdown begins, so load balancers stop sending work first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::StatusCode;
use ironplane_registry::Registry;
use ironplane_storage::Storage;

use crate::body::{self, Response};
use crate::request_info::query_values;
use crate::responses;

/// Which endpoint a check list belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/healthz` (deprecated alias of livez with the same checks).
    Healthz,
    /// `/livez`.
    Livez,
    /// `/readyz`.
    Readyz,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Healthz => "healthz",
            Endpoint::Livez => "livez",
            Endpoint::Readyz => "readyz",
        }
    }
}

/// The state the checks read.
pub struct Health {
    storage: Arc<dyn Storage>,
    registry: Arc<Registry>,
    shutting_down: AtomicBool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    Ping,
    Log,
    Etcd,
    EtcdReadiness,
    InformerSync,
    Shutdown,
}

impl Check {
    fn name(self) -> &'static str {
        match self {
            Check::Ping => "ping",
            Check::Log => "log",
            Check::Etcd => "etcd",
            Check::EtcdReadiness => "etcd-readiness",
            Check::InformerSync => "informer-sync",
            Check::Shutdown => "shutdown",
        }
    }
}

const STORAGE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

impl Health {
    /// Health over this storage and registry.
    pub fn new(storage: Arc<dyn Storage>, registry: Arc<Registry>) -> Self {
        Health {
            storage,
            registry,
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Begin shutdown: `/readyz` fails from now on.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    fn checks(endpoint: Endpoint) -> &'static [Check] {
        match endpoint {
            Endpoint::Healthz | Endpoint::Livez => &[Check::Ping, Check::Log, Check::Etcd],
            Endpoint::Readyz => &[
                Check::Ping,
                Check::Log,
                Check::Etcd,
                Check::EtcdReadiness,
                Check::InformerSync,
                Check::Shutdown,
            ],
        }
    }

    async fn run(&self, check: Check) -> Result<(), String> {
        match check {
            Check::Ping | Check::Log => Ok(()),
            Check::Etcd | Check::EtcdReadiness => {
                match tokio::time::timeout(STORAGE_CHECK_TIMEOUT, self.storage.status()).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(err)) => Err(err.to_string()),
                    Err(_) => Err("storage did not answer in time".into()),
                }
            }
            Check::InformerSync => {
                // What the server itself reads from a cache: the namespaces, for admission. The
                // other caches are not waited for (a large collection takes a moment to load after
                // a restart): until one is loaded, its lists are read from storage and its
                // watches wait for it, as upstream serves while its watch caches initialize.
                match self.registry.namespaces() {
                    Some(namespaces) if !namespaces.store.cache().is_ready() => {
                        Err("watch caches not synced: namespaces".into())
                    }
                    _ => Ok(()),
                }
            }
            Check::Shutdown => {
                if self.shutting_down.load(Ordering::SeqCst) {
                    Err("process is shutting down".into())
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Serve `/healthz`, `/livez`, `/readyz` or one of their per-check paths; `None` if the path
    /// is none of them.
    pub async fn serve(&self, path: &str, query: Option<&str>) -> Option<Response> {
        let trimmed = path.trim_end_matches('/');
        let (endpoint, rest) = [Endpoint::Healthz, Endpoint::Livez, Endpoint::Readyz]
            .into_iter()
            .find_map(|endpoint| {
                let base = format!("/{}", endpoint.name());
                if trimmed == base {
                    Some((endpoint, None))
                } else {
                    trimmed
                        .strip_prefix(&format!("{base}/"))
                        .map(|rest| (endpoint, Some(rest.to_owned())))
                }
            })?;
        let checks = Self::checks(endpoint);
        if let Some(name) = rest {
            let Some(check) = checks.iter().find(|check| check.name() == name) else {
                return Some(responses::plain_not_found());
            };
            return Some(match self.run(*check).await {
                Ok(()) => text(StatusCode::OK, "ok".into()),
                Err(why) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("internal server error: {why}\n"),
                ),
            });
        }
        let verbose = query_values(query, "verbose").next().is_some();
        let excluded: Vec<String> = query_values(query, "exclude").collect();
        let mut report = String::new();
        let mut failed = false;
        for check in checks {
            if excluded.iter().any(|name| name == check.name()) {
                report.push_str(&format!("[+]{} excluded: ok\n", check.name()));
                continue;
            }
            match self.run(*check).await {
                Ok(()) => report.push_str(&format!("[+]{} ok\n", check.name())),
                Err(why) => {
                    failed = true;
                    tracing::debug!(check = check.name(), reason = %why, "health check failed");
                    report.push_str(&format!("[-]{} failed: reason withheld\n", check.name()));
                }
            }
        }
        let unknown: Vec<String> = excluded
            .iter()
            .filter(|name| !checks.iter().any(|check| check.name() == name.as_str()))
            .map(|name| format!("{name:?}"))
            .collect();
        if !unknown.is_empty() {
            report.push_str(&format!(
                "warn: some health checks cannot be excluded: no matches for {}\n",
                unknown.join(",")
            ));
        }
        let endpoint = endpoint.name();
        if failed {
            report.push_str(&format!("{endpoint} check failed\n"));
            return Some(text(StatusCode::INTERNAL_SERVER_ERROR, report));
        }
        if verbose {
            report.push_str(&format!("{endpoint} check passed\n"));
            return Some(text(StatusCode::OK, report));
        }
        Some(text(StatusCode::OK, "ok".into()))
    }
}

fn text(code: StatusCode, text: String) -> Response {
    let mut response = responses::response(code, "text/plain; charset=utf-8", body::full(text));
    response.headers_mut().insert(
        "x-content-type-options",
        http::HeaderValue::from_static("nosniff"),
    );
    response
}
