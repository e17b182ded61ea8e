//! `mixed`: load the way controllers make it. Informers list (paginated, as client-go's reflector
//! does) and then watch from the list's resourceVersion; once they all watch, a pool of `-c`
//! clients updates `--objects` ConfigMaps at `--update-rate` in total, PUTting with the
//! resourceVersion they last saw (a 409 makes them re-read, as a controller's retry would), and
//! a full list runs every `--list-every`. Every update is stamped with a sequence number, so the
//! informers' deliveries are checked (exactly once; order is not, since updates to different
//! objects race) and timed like `watch`'s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use http::{Method, StatusCode};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc, watch as signal};

use super::basic::list_once;
use super::watch::{
    AckTable, WatchGroup, WatcherSetup, delivery_row, drain, settle, watch_path, watcher,
};
use super::{
    Ctx, Name, Outcome, configmap, discover, payload, resource_version_of, wait_until, workers,
};
use crate::client::{Client, JSON};
use crate::stats::{Failure, Recorder, merge_all};

/// Options of `mixed`.
pub struct MixedOptions {
    /// Informers.
    pub informers: usize,
    /// Updates per second in total.
    pub update_rate: f64,
    /// Period of full lists.
    pub list_every: Option<Duration>,
    /// Objects updated.
    pub objects: u64,
    /// Page size of informer lists.
    pub page_size: u64,
    /// Data bytes per object.
    pub size: usize,
    /// Catch-up wait.
    pub drain: Duration,
}

/// Reads one object's resourceVersion (row `get`).
async fn reread(client: &mut Client, rec: &mut Recorder, path: &str) -> Option<String> {
    let start = Instant::now();
    match client.call(Method::GET, path, JSON, None).await {
        Ok(reply) if reply.status.is_success() => {
            rec.ok("get", start, 0, reply.body.len() as u64);
            resource_version_of(&reply.body)
        }
        Ok(reply) => {
            rec.error(
                "get",
                start,
                Failure::from_response(reply.status, &reply.body),
                0,
                reply.body.len() as u64,
            );
            None
        }
        Err(failure) => {
            rec.error("get", start, failure, 0, 0);
            None
        }
    }
}

/// Runs `mixed`.
pub async fn mixed(ctx: &Arc<Ctx>, o: MixedOptions) -> anyhow::Result<Outcome> {
    let collection = ctx.collection();
    let prefix = ctx.plan.prefix.clone();
    let data: Arc<str> = payload(o.size).into();
    let mut notes = Vec::new();

    // Setup: objects <prefix>0 .. <prefix>N-1 exist, with known resourceVersions.
    let mut client = ctx.client(0);
    let known: HashMap<String, String> = discover(&mut client, &collection, &prefix, u64::MAX)
        .await?
        .into_iter()
        .map(|f| (f.name, f.resource_version))
        .collect();
    let versions: Arc<Vec<Mutex<Option<String>>>> = Arc::new(
        (0..o.objects)
            .map(|i| Mutex::new(known.get(&format!("{prefix}{i}")).cloned()))
            .collect(),
    );
    let missing: Arc<Vec<u64>> = Arc::new(
        (0..o.objects)
            .filter(|i| {
                versions[*i as usize]
                    .lock()
                    .map(|v| v.is_none())
                    .unwrap_or(true)
            })
            .collect(),
    );
    if !missing.is_empty() {
        let next = Arc::new(AtomicU64::new(0));
        let setup = workers(ctx.plan.clients, |i| {
            let (ctx, next, missing, versions, data) = (
                Arc::clone(ctx),
                Arc::clone(&next),
                Arc::clone(&missing),
                Arc::clone(&versions),
                Arc::clone(&data),
            );
            let mut client = ctx.client(i);
            async move {
                let mut rec = ctx.recorder();
                let collection = ctx.collection();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(index) = missing.get(k).copied() else {
                        break;
                    };
                    let name = format!("{}{index}", ctx.plan.prefix);
                    let body =
                        configmap(&ctx.plan.namespace, Name::Fixed(&name), &data, None, None);
                    let start = Instant::now();
                    match client
                        .call(Method::POST, &collection, JSON, Some((JSON, body)))
                        .await
                    {
                        Ok(reply) if reply.status.is_success() => {
                            rec.ok("setup", start, 0, 0);
                            if let Ok(mut slot) = versions[index as usize].lock() {
                                *slot = resource_version_of(&reply.body);
                            }
                        }
                        Ok(reply) => rec.error(
                            "setup",
                            start,
                            Failure::from_response(reply.status, &reply.body),
                            0,
                            0,
                        ),
                        Err(failure) => rec.error("setup", start, failure, 0, 0),
                    }
                }
                rec.into_ops()
            }
        })
        .await?;
        if let Some((key, e)) = setup.iter().flat_map(|o| o.errors.iter()).next() {
            bail!(
                "creating the ConfigMaps to update failed: {key} {}",
                e.example
            );
        }
        notes.push(format!(
            "created {} missing ConfigMaps before the run",
            missing.len()
        ));
    }
    ctx.progress.ok.store(0, Ordering::Relaxed);

    let measure = ctx.begin("mixed")?;
    let capacity = (o.update_rate * ctx.plan.duration.as_secs_f64()).ceil() as u64
        + ctx.plan.clients as u64
        + 16;
    let acks = Arc::new(AckTable::new(capacity, 1));
    let group = Arc::new(WatchGroup {
        acks: Arc::clone(&acks),
        progress: (0..o.informers).map(|_| AtomicU64::new(0)).collect(),
        order: false,
    });

    // Informers: list, then watch.
    let timeout_seconds = (ctx.plan.duration + o.drain).as_secs() + 120;
    let (stop_tx, stop_rx) = signal::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::channel(o.informers.max(1));
    let opening = Arc::new(Semaphore::new(64));
    let listing = Arc::new(Semaphore::new(8));
    let informers: Vec<_> = ctx
        .watch_clients(o.informers)
        .into_iter()
        .enumerate()
        .map(|(index, watch_client)| {
            let (ctx, group, opening, listing, ready, stop) = (
                Arc::clone(ctx),
                Arc::clone(&group),
                Arc::clone(&opening),
                Arc::clone(&listing),
                ready_tx.clone(),
                stop_rx.clone(),
            );
            let page_size = o.page_size;
            let mut list_client = ctx.client(index);
            tokio::spawn(async move {
                let collection = ctx.collection();
                let mut rec = ctx.recorder();
                let listed = {
                    let _permit = listing.acquire().await;
                    list_once(
                        &mut list_client,
                        &mut rec,
                        &collection,
                        page_size,
                        JSON,
                        None,
                        ("informer list", "informer page"),
                    )
                    .await
                };
                let Some(rv) = listed.and_then(|m| m.resource_version) else {
                    let _ = ready.send(false).await;
                    group.progress[index].store(u64::MAX, Ordering::Release);
                    return (rec.into_ops(), None);
                };
                let path = watch_path(&collection, &rv, timeout_seconds);
                let result = watcher(WatcherSetup {
                    index,
                    client: watch_client,
                    path,
                    group,
                    opening,
                    ready,
                    stop,
                    rec,
                })
                .await;
                (Vec::new(), Some(result))
            })
        })
        .collect();
    drop(ready_tx);
    let mut synced = 0;
    while synced < o.informers {
        match tokio::time::timeout(ctx.plan.timeout * 2, ready_rx.recv()).await {
            Ok(Some(_)) => synced += 1,
            Ok(None) | Err(_) => break,
        }
    }
    if synced < o.informers {
        notes.push(format!(
            "only {synced} of {} informers synced in time",
            o.informers
        ));
    }

    // Updates and periodic lists, for --duration.
    ctx.arm_deadline();
    let writes_started = Instant::now();
    let next_seq = Arc::new(AtomicU64::new(0));
    let clients = ctx.plan.clients;
    let period = Duration::from_secs_f64(clients as f64 / o.update_rate);
    let updaters = {
        let (acks, versions, data, next_seq) = (
            Arc::clone(&acks),
            Arc::clone(&versions),
            Arc::clone(&data),
            Arc::clone(&next_seq),
        );
        workers(clients, move |i| {
            let (ctx, acks, versions, data, next_seq) = (
                Arc::clone(ctx),
                Arc::clone(&acks),
                Arc::clone(&versions),
                Arc::clone(&data),
                Arc::clone(&next_seq),
            );
            let mut client = ctx.client(i);
            async move {
                let mut rec = ctx.recorder();
                let collection = ctx.collection();
                let mut when = writes_started + period.mul_f64(i as f64 / clients as f64);
                let objects = versions.len() as u64;
                while !wait_until(&ctx, when).await {
                    when = (when + period).max(Instant::now());
                    let seq = next_seq.fetch_add(1, Ordering::Relaxed) + 1;
                    if seq > acks.capacity() {
                        break;
                    }
                    let index = ((seq - 1) % objects) as usize;
                    let name = format!("{}{index}", ctx.plan.prefix);
                    let path = format!("{collection}/{name}");
                    let cached = versions[index].lock().ok().and_then(|v| v.clone());
                    let rv = match cached {
                        Some(rv) => rv,
                        None => match reread(&mut client, &mut rec, &path).await {
                            Some(rv) => rv,
                            None => continue,
                        },
                    };
                    let body = configmap(
                        &ctx.plan.namespace,
                        Name::Fixed(&name),
                        &data,
                        Some(seq),
                        Some(&rv),
                    );
                    let sent = body.len() as u64;
                    let start = Instant::now();
                    let fresh = match client
                        .call(Method::PUT, &path, JSON, Some((JSON, body)))
                        .await
                    {
                        Ok(reply) if reply.status.is_success() => {
                            acks.ack(seq, Instant::now());
                            rec.ok("update", start, sent, reply.body.len() as u64);
                            resource_version_of(&reply.body)
                        }
                        Ok(reply) if reply.status == StatusCode::CONFLICT => {
                            rec.conflict("update", start, sent, reply.body.len() as u64);
                            reread(&mut client, &mut rec, &path).await
                        }
                        Ok(reply) => {
                            let received = reply.body.len() as u64;
                            rec.error(
                                "update",
                                start,
                                Failure::from_response(reply.status, &reply.body),
                                sent,
                                received,
                            );
                            None
                        }
                        Err(failure) => {
                            rec.error("update", start, failure, sent, 0);
                            None
                        }
                    };
                    if let Ok(mut slot) = versions[index].lock() {
                        *slot = fresh;
                    }
                }
                rec.into_ops()
            }
        })
    };
    let lister = {
        let ctx = Arc::clone(ctx);
        let mut client = ctx.client(clients);
        let every = o.list_every;
        tokio::spawn(async move {
            let mut rec = ctx.recorder();
            if let Some(every) = every {
                let collection = ctx.collection();
                let mut when = writes_started + every;
                while !wait_until(&ctx, when).await {
                    list_once(
                        &mut client,
                        &mut rec,
                        &collection,
                        0,
                        JSON,
                        None,
                        ("periodic list", "periodic page"),
                    )
                    .await;
                    when += every;
                }
            }
            rec.into_ops()
        })
    };
    let update_ops = updaters.await?;
    let list_ops = lister.await.context("the periodic lister failed")?;
    let writes_ended = Instant::now();
    drain(&group, o.drain).await;
    let _ = stop_tx.send(true);

    let mut informer_ops = Vec::new();
    let mut results = Vec::new();
    for handle in informers {
        let (ops, result) = handle.await.context("an informer failed")?;
        informer_ops.push(ops);
        match result {
            Some(result) => results.push(result),
            None => results.push(super::watch::failed_watcher(&acks)),
        }
    }
    let (processes, wall_seconds) = measure.end().await;
    let (mut report, delays, watch_ops) = settle(results, &acks);
    report.order_checked = false;
    let mut ops = merge_all(
        informer_ops
            .into_iter()
            .chain([watch_ops, update_ops, list_ops]),
    );
    ops.push(delivery_row(delays, (writes_started, writes_ended)));
    Ok(Outcome {
        ops,
        watch: Some(report),
        processes,
        wall_seconds,
        notes,
        parameters: [
            ("informers".to_owned(), json!(o.informers)),
            ("update_rate".to_owned(), json!(o.update_rate)),
            (
                "list_every_s".to_owned(),
                json!(o.list_every.map(|d| d.as_secs_f64())),
            ),
            ("objects".to_owned(), json!(o.objects)),
            ("page_size".to_owned(), json!(o.page_size)),
            ("size".to_owned(), json!(o.size)),
        ]
        .into_iter()
        .collect(),
    })
}
