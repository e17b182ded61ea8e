//! The request/response scenarios: `create`, `get`, `update`, `patch`, `delete` and `list`.
//! Each runs `-c` workers that take operation indexes from one counter until the count is done
//! or the duration is over.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::bail;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

use super::{Ctx, Name, Outcome, configmap, discover, payload, query_escape, workers};
use crate::cli::PatchType;
use crate::client::{JSON, TABLE};
use crate::listscan::ListScanner;
use crate::stats::Failure;

/// Records the outcome of a call as `op`.
macro_rules! record {
    ($rec:expr, $op:expr, $start:expr, $sent:expr, $result:expr) => {
        match $result {
            Ok(reply) if reply.status.is_success() => {
                $rec.ok($op, $start, $sent, reply.body.len() as u64)
            }
            Ok(reply) => {
                let received = reply.body.len() as u64;
                $rec.error(
                    $op,
                    $start,
                    Failure::from_response(reply.status, &reply.body),
                    $sent,
                    received,
                )
            }
            Err(failure) => $rec.error($op, $start, failure, $sent, 0),
        }
    };
}

fn parameters(
    pairs: &[(&str, serde_json::Value)],
) -> std::collections::BTreeMap<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// `create`: `count` ConfigMaps of `size` data bytes.
pub async fn create(
    ctx: &Arc<Ctx>,
    count: u64,
    size: usize,
    generate_name: bool,
) -> anyhow::Result<Outcome> {
    let data: Arc<str> = payload(size).into();
    let next = Arc::new(AtomicU64::new(0));
    let measure = ctx.begin("create")?;
    ctx.arm_deadline();
    let ops = workers(ctx.plan.clients, |i| {
        let (ctx, next, data) = (Arc::clone(ctx), Arc::clone(&next), Arc::clone(&data));
        let mut client = ctx.client(i);
        async move {
            let mut rec = ctx.recorder();
            let collection = ctx.collection();
            let prefix = ctx.plan.prefix.as_str();
            while !ctx.stopped() {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    break;
                }
                let name = format!("{prefix}{index}");
                let name = if generate_name {
                    Name::Generate(prefix)
                } else {
                    Name::Fixed(&name)
                };
                let body = configmap(&ctx.plan.namespace, name, &data, None, None);
                let sent = body.len() as u64;
                let start = Instant::now();
                let result = client
                    .call(Method::POST, &collection, JSON, Some((JSON, body)))
                    .await;
                record!(rec, "create", start, sent, result);
            }
            rec.into_ops()
        }
    })
    .await?;
    let (processes, wall_seconds) = measure.end().await;
    let mut notes = Vec::new();
    let done: u64 = ops.iter().map(|o| o.ok + o.error_count()).sum();
    if done < count {
        notes.push(format!(
            "stopped after {done} of {count} creates (--duration or Ctrl-C)"
        ));
    }
    Ok(Outcome {
        ops,
        processes,
        wall_seconds,
        notes,
        parameters: parameters(&[
            ("count", json!(count)),
            ("size", json!(size)),
            ("generate_name", json!(generate_name)),
        ]),
        ..Outcome::default()
    })
}

/// The names to work through, or an error saying to run `create` first.
async fn targets(
    ctx: &Ctx,
    count: u64,
    notes: &mut Vec<String>,
) -> anyhow::Result<Arc<Vec<String>>> {
    let mut client = ctx.client(0);
    let found = discover(&mut client, &ctx.collection(), &ctx.plan.prefix, count).await?;
    if found.is_empty() {
        bail!(
            "no ConfigMaps named {}* in namespace {}; run `ironplane-load create` first",
            ctx.plan.prefix,
            ctx.plan.namespace
        );
    }
    if (found.len() as u64) < count {
        notes.push(format!(
            "found only {} ConfigMaps named {}* (asked for {count})",
            found.len(),
            ctx.plan.prefix
        ));
    }
    Ok(Arc::new(found.into_iter().map(|f| f.name).collect()))
}

/// What one operation on an existing object does.
#[derive(Clone, Copy)]
enum Verb {
    Get,
    Update,
    Patch(PatchType),
    Delete,
}

async fn over_objects(
    ctx: &Arc<Ctx>,
    verb: Verb,
    count: u64,
    repeat: u64,
    label: &'static str,
) -> anyhow::Result<Outcome> {
    let mut notes = Vec::new();
    let names = targets(ctx, count, &mut notes).await?;
    let total = names.len() as u64 * repeat;
    let next = Arc::new(AtomicU64::new(0));
    let measure = ctx.begin(label)?;
    ctx.arm_deadline();
    let ops = workers(ctx.plan.clients, |i| {
        let (ctx, next, names) = (Arc::clone(ctx), Arc::clone(&next), Arc::clone(&names));
        let mut client = ctx.client(i);
        async move {
            let mut rec = ctx.recorder();
            let collection = ctx.collection();
            while !ctx.stopped() {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total {
                    break;
                }
                let path = format!("{collection}/{}", names[(index % names.len() as u64) as usize]);
                match verb {
                    Verb::Get => {
                        let start = Instant::now();
                        let result = client.call(Method::GET, &path, JSON, None).await;
                        record!(rec, "get", start, 0, result);
                    }
                    Verb::Delete => {
                        let start = Instant::now();
                        let result = client.call(Method::DELETE, &path, JSON, None).await;
                        record!(rec, "delete", start, 0, result);
                    }
                    Verb::Patch(kind) => {
                        let value = index.to_string();
                        let body = match kind {
                            PatchType::Json => json!([{"op": "add", "path": "/data/ironplane-load-patch", "value": value}]),
                            PatchType::Merge | PatchType::Strategic => json!({"data": {"ironplane-load-patch": value}}),
                        };
                        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
                        let sent = body.len() as u64;
                        let start = Instant::now();
                        let result = client.call(Method::PATCH, &path, JSON, Some((kind.content_type(), body))).await;
                        record!(rec, "patch", start, sent, result);
                    }
                    Verb::Update => {
                        // Read…
                        let start = Instant::now();
                        let object = match client.call(Method::GET, &path, JSON, None).await {
                            Ok(reply) if reply.status.is_success() => {
                                rec.ok("get", start, 0, reply.body.len() as u64);
                                reply.body
                            }
                            result => {
                                record!(rec, "get", start, 0, result);
                                continue;
                            }
                        };
                        // …modify (the resourceVersion read stays in the body)…
                        let mut value: serde_json::Value = match serde_json::from_slice(&object) {
                            Ok(value) => value,
                            Err(e) => {
                                rec.error("update", Instant::now(), Failure::new("invalid body", e.to_string()), 0, 0);
                                continue;
                            }
                        };
                        if !value.get("data").is_some_and(|d| d.is_object()) {
                            value["data"] = json!({});
                        }
                        value["data"]["ironplane-load-update"] = json!(index.to_string());
                        let body = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
                        let sent = body.len() as u64;
                        // …write.
                        let start = Instant::now();
                        match client.call(Method::PUT, &path, JSON, Some((JSON, body))).await {
                            Ok(reply) if reply.status == StatusCode::CONFLICT => {
                                rec.conflict("update", start, sent, reply.body.len() as u64)
                            }
                            result => record!(rec, "update", start, sent, result),
                        }
                    }
                }
            }
            rec.into_ops()
        }
    })
    .await?;
    let (processes, wall_seconds) = measure.end().await;
    let mut pairs = vec![("count", json!(names.len())), ("repeat", json!(repeat))];
    if let Verb::Patch(kind) = verb {
        pairs.push(("patch_type", json!(kind.content_type())));
    }
    Ok(Outcome {
        ops,
        processes,
        wall_seconds,
        notes,
        parameters: parameters(&pairs),
        ..Outcome::default()
    })
}

/// `get`: GET each object, `repeat` passes.
pub async fn get(ctx: &Arc<Ctx>, count: u64, repeat: u64) -> anyhow::Result<Outcome> {
    over_objects(ctx, Verb::Get, count, repeat, "get").await
}

/// `update`: GET then PUT with the resourceVersion read; 409s are counted as conflicts.
pub async fn update(ctx: &Arc<Ctx>, count: u64, repeat: u64) -> anyhow::Result<Outcome> {
    over_objects(ctx, Verb::Update, count, repeat, "update").await
}

/// `patch`: PATCH each object.
pub async fn patch(
    ctx: &Arc<Ctx>,
    count: u64,
    repeat: u64,
    kind: PatchType,
) -> anyhow::Result<Outcome> {
    over_objects(ctx, Verb::Patch(kind), count, repeat, "patch").await
}

/// `delete`: DELETE each object once.
pub async fn delete(ctx: &Arc<Ctx>, count: u64) -> anyhow::Result<Outcome> {
    over_objects(ctx, Verb::Delete, count, 1, "delete").await
}

/// One whole list (all pages), streamed. Records `list` (and `page` when paginated).
pub async fn list_once(
    client: &mut crate::client::Client,
    rec: &mut crate::stats::Recorder,
    collection: &str,
    page_size: u64,
    accept: &str,
    resource_version: Option<&str>,
    names: (&str, &str),
) -> Option<crate::listscan::ListMeta> {
    let (list_name, page_name) = names;
    let start = Instant::now();
    let mut continue_token: Option<String> = None;
    let (mut items, mut bytes) = (0u64, 0u64);
    loop {
        let mut query = Vec::new();
        if page_size > 0 {
            query.push(format!("limit={page_size}"));
        }
        match &continue_token {
            Some(token) => query.push(format!("continue={}", query_escape(token))),
            None => {
                if let Some(rv) = resource_version {
                    query.push(format!("resourceVersion={rv}"));
                }
            }
        }
        let path = if query.is_empty() {
            collection.to_owned()
        } else {
            format!("{collection}?{}", query.join("&"))
        };
        let page_start = Instant::now();
        let mut scanner = ListScanner::new();
        let result = client
            .call_streaming(&path, accept, |chunk| scanner.feed(chunk))
            .await;
        let streamed = match result {
            Ok(streamed) if streamed.status.is_success() => streamed,
            Ok(streamed) => {
                let failure = Failure::from_response(streamed.status, &streamed.error_body);
                rec.error(list_name, start, failure, 0, bytes + streamed.bytes);
                return None;
            }
            Err(failure) => {
                rec.error(list_name, start, failure, 0, bytes);
                return None;
            }
        };
        let summary = match scanner.finish() {
            Ok(summary) => summary,
            Err(message) => {
                rec.error(
                    list_name,
                    start,
                    Failure::new("invalid body", message),
                    0,
                    bytes + streamed.bytes,
                );
                return None;
            }
        };
        items += summary.items;
        bytes += streamed.bytes;
        if page_size > 0 {
            rec.ok(page_name, page_start, 0, streamed.bytes);
            rec.op(page_name).items += summary.items;
        }
        continue_token = summary
            .metadata
            .continue_token
            .clone()
            .filter(|t| !t.is_empty());
        if continue_token.is_none() {
            rec.ok(list_name, start, 0, bytes);
            rec.op(list_name).items += items;
            return Some(summary.metadata);
        }
    }
}

/// `list`: `repeat` lists by `-c` clients.
pub async fn list(
    ctx: &Arc<Ctx>,
    repeat: u64,
    page_size: u64,
    table: bool,
    resource_version: Option<String>,
) -> anyhow::Result<Outcome> {
    let next = Arc::new(AtomicU64::new(0));
    let resource_version: Arc<Option<String>> = Arc::new(resource_version);
    let measure = ctx.begin("list")?;
    ctx.arm_deadline();
    let ops = workers(ctx.plan.clients, |i| {
        let (ctx, next, rv) = (
            Arc::clone(ctx),
            Arc::clone(&next),
            Arc::clone(&resource_version),
        );
        let mut client = ctx.client(i);
        async move {
            let mut rec = ctx.recorder();
            let collection = ctx.collection();
            let accept = if table { TABLE } else { JSON };
            while !ctx.stopped() && next.fetch_add(1, Ordering::Relaxed) < repeat {
                list_once(
                    &mut client,
                    &mut rec,
                    &collection,
                    page_size,
                    accept,
                    rv.as_deref(),
                    ("list", "page"),
                )
                .await;
            }
            rec.into_ops()
        }
    })
    .await?;
    let (processes, wall_seconds) = measure.end().await;
    let mut notes = Vec::new();
    if let Some(list) = ops.iter().find(|o| o.name == "list").filter(|o| o.ok > 0) {
        notes.push(format!(
            "{} items and {} per list",
            list.items / list.ok,
            crate::report::format_bytes(list.bytes_received / list.ok)
        ));
    }
    let mut pairs = vec![
        ("repeat", json!(repeat)),
        ("page_size", json!(page_size)),
        ("table", json!(table)),
    ];
    if let Some(rv) = resource_version.as_deref() {
        pairs.push(("resource_version", json!(rv)));
    }
    Ok(Outcome {
        ops,
        processes,
        wall_seconds,
        notes,
        parameters: parameters(&pairs),
        ..Outcome::default()
    })
}
