//! get and list: one object (from storage, or the cache when a resourceVersion allows it) and
//! lists served from the watch cache, streamed item by item without a second copy.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use ironplane_apimachinery::codec::{Format, Target};
use ironplane_apimachinery::table::partial_object_metadata;
use ironplane_apimachinery::{ApiError, ListMeta};
use ironplane_registry::cacher::CachedObject;
use ironplane_registry::store::{ListRequest, ListResult};

use super::options::ListParams;
use super::{Scope, content_type, object_response, table};
use crate::body::{self, Response};
use crate::responses;

/// GET of one object.
pub(crate) async fn get(scope: &Scope) -> Result<Response, ApiError> {
    let negotiated = scope.negotiate(false)?;
    let resource_version = scope.query().get("resourceVersion");
    let object = scope
        .resource
        .store
        .get(
            scope.namespace.as_deref(),
            &scope.info.name,
            resource_version.as_deref(),
        )
        .await?;
    Ok(object_response(
        scope,
        StatusCode::OK,
        &object,
        &negotiated,
        &[],
    ))
}

/// GET of a collection.
pub(crate) async fn list(scope: &Scope) -> Result<Response, ApiError> {
    let negotiated = scope.negotiate(true)?;
    let strategy = scope.resource.store.strategy().clone();
    let params = ListParams::parse(&scope.query(), strategy.as_ref(), false)?;
    let result = scope
        .resource
        .store
        .list(ListRequest {
            namespace: scope.namespace.clone(),
            predicate: params.predicate.clone(),
            resource_version: params.resource_version.clone(),
            version_match: params.version_match,
            limit: params.limit,
            continue_token: params.continue_token.clone(),
        })
        .await?;
    let list_meta = ListMeta {
        resource_version: result.revision.to_string(),
        continue_token: result.continue_token.clone().unwrap_or_default(),
        remaining_item_count: result.remaining.filter(|count| *count > 0),
    };
    let content_type = content_type(&negotiated);
    match &negotiated.target {
        Target::Table { version } => {
            let objects = decode_all(&result.items)?;
            let table = table(scope, &objects, list_meta, params.include_object, version);
            Ok(responses::value_response(
                StatusCode::OK,
                &table,
                negotiated.format,
                &content_type,
                scope.pretty,
            ))
        }
        Target::PartialObjectMetadataList { version } => {
            let objects = decode_all(&result.items)?;
            let items: Vec<serde_json::Value> = objects
                .iter()
                .map(|object| partial_object_metadata(version, &object.metadata))
                .collect();
            let list = serde_json::json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": format!("meta.k8s.io/{version}"),
                "metadata": list_meta,
                "items": items,
            });
            Ok(responses::value_response(
                StatusCode::OK,
                &list,
                negotiated.format,
                &content_type,
                scope.pretty,
            ))
        }
        _ => {
            let kind = scope.resource.info().list_kind();
            let api_version = scope.resource.info().api_version();
            if negotiated.format == Format::Json && !scope.pretty {
                return Ok(responses::response(
                    StatusCode::OK,
                    &content_type,
                    stream_list(&kind, &api_version, &list_meta, result),
                ));
            }
            let objects: Vec<serde_json::Value> = result
                .items
                .iter()
                .map(|item| serde_json::from_slice(&item.json))
                .collect::<Result<_, _>>()
                .map_err(ApiError::internal)?;
            let list = serde_json::json!({
                "kind": kind,
                "apiVersion": api_version,
                "metadata": list_meta,
                "items": objects,
            });
            Ok(responses::value_response(
                StatusCode::OK,
                &list,
                negotiated.format,
                &content_type,
                scope.pretty,
            ))
        }
    }
}

fn decode_all(
    items: &[Arc<CachedObject>],
) -> Result<Vec<ironplane_apimachinery::Object>, ApiError> {
    items.iter().map(|item| item.decode()).collect()
}

/// The JSON of a list, produced piece by piece from the cached encodings.
fn stream_list(
    kind: &str,
    api_version: &str,
    list_meta: &ListMeta,
    result: ListResult,
) -> body::Body {
    let mut head = Vec::with_capacity(128);
    head.extend_from_slice(b"{\"kind\":");
    ironplane_apimachinery::codec::write_json(&mut head, kind);
    head.extend_from_slice(b",\"apiVersion\":");
    ironplane_apimachinery::codec::write_json(&mut head, api_version);
    head.extend_from_slice(b",\"metadata\":");
    ironplane_apimachinery::codec::write_json(&mut head, list_meta);
    head.extend_from_slice(b",\"items\":[");
    let items = result
        .items
        .into_iter()
        .enumerate()
        .flat_map(|(index, item)| {
            let separator = (index > 0).then(|| Bytes::from_static(b","));
            separator
                .into_iter()
                .chain(std::iter::once(item.json.clone()))
        });
    let pieces = std::iter::once(Bytes::from(head))
        .chain(items)
        .chain(std::iter::once(Bytes::from_static(b"]}\n")));
    body::chunked(pieces.collect::<Vec<_>>().into_iter())
}
