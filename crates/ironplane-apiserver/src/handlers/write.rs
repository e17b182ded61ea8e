//! The write verbs: create, update (PUT), patch, delete and deletecollection, each decoding its
//! body and options as upstream does before handing the object to the generic store.

use http::StatusCode;
use ironplane_apimachinery::codec::{self, Format, Target};
use ironplane_apimachinery::status::{Status, StatusDetails};
use ironplane_apimachinery::{ApiError, Object};
use ironplane_registry::store::{
    CreateOptions, DeleteOptions, DeleteResult, ListRequest, UpdateOptions,
};
use serde_json::Value;

use super::decode::{Origin, body_format, decode_object, parse_value};
use super::options::{DeleteParams, ListParams, WriteParams};
use super::{Scope, object_response};
use crate::admission::Admission;
use crate::body::{Request, Response, read_limited};
use crate::responses;

/// POST to a collection.
pub(crate) async fn create(
    scope: &Scope,
    request: Request,
    admission: &Admission,
) -> Result<Response, ApiError> {
    let negotiated = scope.negotiate(false)?;
    let format = body_format(scope.content_type.as_deref())?;
    let body = read_limited(request.into_body()).await?;
    let params = WriteParams::parse(&scope.query(), "CreateOptions")?;
    let strategy = scope.resource.store.strategy().clone();
    let value = parse_value(&body, format, strategy.as_ref())?;
    let decoded = decode_object(
        value,
        Origin::Body(&body),
        strategy.as_ref(),
        params.field_validation,
    )?;
    let mut object = decoded.object;
    wipe_system_fields(&mut object);
    ensure_namespace(&mut object, scope.namespace.as_deref())?;
    admission
        .admit_create(scope.resource.info(), &object)
        .await?;
    let (created, json) = scope
        .resource
        .store
        .create_with_json(
            object,
            &CreateOptions {
                dry_run: params.dry_run,
            },
        )
        .await?;
    // The common answer (the object as compact JSON) is the stored encoding the store already
    // made, with its resourceVersion spliced in; anything else is encoded from the object.
    if let Some(mut json) = json
        && negotiated.target == Target::Object
        && negotiated.format == Format::Json
        && !scope.pretty
    {
        json.push(b'\n');
        let mut response = responses::response(
            StatusCode::CREATED,
            &super::content_type(&negotiated),
            crate::body::full(json),
        );
        super::add_warnings(&mut response, &decoded.warnings);
        return Ok(response);
    }
    Ok(object_response(
        scope,
        StatusCode::CREATED,
        &created,
        &negotiated,
        &decoded.warnings,
    ))
}

/// What upstream clears from a create body: the server owns these fields.
fn wipe_system_fields(object: &mut Object) {
    object.metadata.creation_timestamp = None;
    object.metadata.uid.clear();
    object.metadata.deletion_timestamp = None;
    object.metadata.deletion_grace_period_seconds = None;
    object.metadata.self_link.clear();
}

/// Upstream's `EnsureObjectNamespaceMatchesRequestNamespace`.
fn ensure_namespace(object: &mut Object, namespace: Option<&str>) -> Result<(), ApiError> {
    let expected = namespace.unwrap_or_default();
    let actual = object.metadata.namespace.as_str();
    if actual == expected {
        return Ok(());
    }
    if actual.is_empty() {
        object.metadata.namespace = expected.to_owned();
        return Ok(());
    }
    if expected.is_empty() {
        object.metadata.namespace.clear();
        return Ok(());
    }
    Err(ApiError::bad_request(
        "the namespace of the provided object does not match the namespace sent on the request",
    ))
}

fn check_name(object: &Object, name: &str) -> Result<(), ApiError> {
    if object.metadata.name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            object.metadata.name
        )));
    }
    Ok(())
}

fn check_namespace(object: &Object, namespace: Option<&str>) -> Result<(), ApiError> {
    let expected = namespace.unwrap_or_default();
    if !object.metadata.namespace.is_empty() && object.metadata.namespace != expected {
        return Err(ApiError::bad_request(format!(
            "the namespace of the object ({}) does not match the namespace on the request ({expected})",
            object.metadata.namespace
        )));
    }
    Ok(())
}

/// PUT of one object (or of a subresource).
pub(crate) async fn update(scope: &Scope, request: Request) -> Result<Response, ApiError> {
    let negotiated = scope.negotiate(false)?;
    let format = body_format(scope.content_type.as_deref())?;
    let body = read_limited(request.into_body()).await?;
    let params = WriteParams::parse(&scope.query(), "UpdateOptions")?;
    let strategy = scope.resource.store.strategy().clone();
    let value = parse_value(&body, format, strategy.as_ref())?;
    let decoded = decode_object(
        value,
        Origin::Body(&body),
        strategy.as_ref(),
        params.field_validation,
    )?;
    let mut desired = decoded.object;
    check_name(&desired, &scope.info.name)?;
    check_namespace(&desired, scope.namespace.as_deref())?;
    ensure_namespace(&mut desired, scope.namespace.as_deref())?;
    let sub_strategy = scope.resource.subresources.get(&scope.info.subresource);
    let (object, created) = scope
        .resource
        .store
        .update(
            scope.namespace.as_deref(),
            &scope.info.name,
            sub_strategy,
            &UpdateOptions {
                dry_run: params.dry_run,
            },
            |_current| Ok(desired.clone()),
        )
        .await?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(object_response(
        scope,
        code,
        &object,
        &negotiated,
        &decoded.warnings,
    ))
}

/// The patch types the server applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PatchType {
    Json,
    Merge,
    Strategic,
}

/// PATCH of one object (or of a subresource).
pub(crate) async fn patch(scope: &Scope, request: Request) -> Result<Response, ApiError> {
    let negotiated = scope.negotiate(false)?;
    let patch_type = match scope
        .content_type
        .as_deref()
        .and_then(codec::MediaType::parse)
        .map(|media| media.essence)
        .as_deref()
    {
        Some(codec::JSON_PATCH) => PatchType::Json,
        Some(codec::MERGE_PATCH) => PatchType::Merge,
        Some(codec::STRATEGIC_MERGE_PATCH) => PatchType::Strategic,
        _ => return Err(ApiError::unsupported_media_type()),
    };
    let body = read_limited(request.into_body()).await?;
    let params = WriteParams::parse(&scope.query(), "PatchOptions")?;
    let strategy = scope.resource.store.strategy().clone();
    let schema = strategy.schema();
    let sub_strategy = scope.resource.subresources.get(&scope.info.subresource);
    let mut warnings = Vec::new();
    let name = scope.info.name.clone();
    let namespace = scope.namespace.clone();
    let (object, _) = scope
        .resource
        .store
        .update(
            scope.namespace.as_deref(),
            &scope.info.name,
            sub_strategy,
            &UpdateOptions {
                dry_run: params.dry_run,
            },
            |current| {
                let Some(current) = current else {
                    return Err(ApiError::not_found(
                        &strategy.info().group_resource(),
                        &name,
                    ));
                };
                let document = current.to_value();
                let patched = match patch_type {
                    PatchType::Json => ironplane_patch::apply_json_patch(&document, &body),
                    PatchType::Merge => ironplane_patch::apply_merge_patch(&document, &body),
                    PatchType::Strategic => {
                        ironplane_patch::apply_strategic_merge_patch(&document, &body, schema)
                    }
                }
                .map_err(|err| err.to_api_error())?;
                let decoded = decode_object(
                    patched,
                    Origin::Patched,
                    strategy.as_ref(),
                    params.field_validation,
                )?;
                warnings = decoded.warnings;
                let mut desired = decoded.object;
                check_name(&desired, &name)?;
                check_namespace(&desired, namespace.as_deref())?;
                ensure_namespace(&mut desired, namespace.as_deref())?;
                // Without a resourceVersion in the patch, retries re-apply it to the fresh state.
                if desired.metadata.resource_version == current.metadata.resource_version
                    && !patch_sets_resource_version(&body)
                {
                    desired.metadata.resource_version.clear();
                }
                Ok(desired)
            },
        )
        .await?;
    Ok(object_response(
        scope,
        StatusCode::OK,
        &object,
        &negotiated,
        &warnings,
    ))
}

/// Whether a patch body names `metadata.resourceVersion` (then it is a precondition).
fn patch_sets_resource_version(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    match value {
        Value::Object(map) => map
            .get("metadata")
            .and_then(|meta| meta.get("resourceVersion"))
            .is_some_and(|rv| !rv.is_null()),
        Value::Array(operations) => operations.iter().any(|op| {
            op.get("path")
                .and_then(Value::as_str)
                .is_some_and(|path| path == "/metadata/resourceVersion")
                && op.get("op").and_then(Value::as_str) != Some("test")
        }),
        _ => false,
    }
}

/// DELETE of one object.
pub(crate) async fn delete(scope: &Scope, request: Request) -> Result<Response, ApiError> {
    let negotiated = scope.negotiate(false)?;
    let body = read_limited(request.into_body()).await?;
    let params = DeleteParams::parse(&scope.query(), &body)?;
    let options = delete_options(&params);
    let result = scope
        .resource
        .store
        .delete(scope.namespace.as_deref(), &scope.info.name, &options)
        .await?;
    let strategy = scope.resource.store.strategy();
    match result {
        DeleteResult::Pending(object) => Ok(object_response(
            scope,
            StatusCode::OK,
            &object,
            &negotiated,
            &[],
        )),
        DeleteResult::Deleted(object) if strategy.return_deleted_object() => Ok(object_response(
            scope,
            StatusCode::OK,
            &object,
            &negotiated,
            &[],
        )),
        DeleteResult::Deleted(object) => {
            let info = strategy.info();
            let status = Status {
                kind: "Status".into(),
                api_version: "v1".into(),
                status: "Success".into(),
                details: Some(StatusDetails {
                    name: object.metadata.name.clone(),
                    group: info.group.clone(),
                    kind: info.resource.clone(),
                    uid: object.metadata.uid.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let format = if negotiated.format == Format::Yaml {
                Format::Yaml
            } else {
                Format::Json
            };
            Ok(responses::value_response(
                StatusCode::OK,
                &status,
                format,
                format.content_type(),
                scope.pretty,
            ))
        }
    }
}

fn delete_options(params: &DeleteParams) -> DeleteOptions {
    DeleteOptions {
        dry_run: params.dry_run,
        preconditions: params.preconditions.clone(),
        grace_period_seconds: params.grace_period_seconds,
        propagation_policy: params.propagation_policy.clone(),
    }
}

/// DELETE of a collection: every selected object; answers with the list of what was deleted.
pub(crate) async fn delete_collection(
    scope: &Scope,
    request: Request,
) -> Result<Response, ApiError> {
    let negotiated = scope.negotiate(true)?;
    let body = read_limited(request.into_body()).await?;
    let params = DeleteParams::parse(&scope.query(), &body)?;
    let strategy = scope.resource.store.strategy().clone();
    let list = ListParams::parse(&scope.query(), strategy.as_ref(), false)?;
    let deleted = scope
        .resource
        .store
        .delete_collection(
            ListRequest {
                namespace: scope.namespace.clone(),
                predicate: list.predicate,
                resource_version: list.resource_version,
                version_match: list.version_match,
                limit: None,
                continue_token: None,
            },
            &delete_options(&params),
        )
        .await?;
    let info = strategy.info();
    let items: Vec<Value> = deleted.iter().map(Object::to_value).collect();
    let list = serde_json::json!({
        "kind": info.list_kind(),
        "apiVersion": info.api_version(),
        "metadata": {},
        "items": items,
    });
    let format = if negotiated.format == Format::Yaml {
        Format::Yaml
    } else {
        Format::Json
    };
    Ok(responses::value_response(
        StatusCode::OK,
        &list,
        format,
        format.content_type(),
        scope.pretty,
    ))
}
