//! Query parameters of each verb (`metav1.ListOptions`, `CreateOptions`, `DeleteOptions`...),
//! parsed and validated with upstream's messages.

use ironplane_apimachinery::field::{self, Error, ErrorList, Path};
use ironplane_apimachinery::table::IncludeObject;
use ironplane_apimachinery::{ApiError, GroupKind, fields, labels};
use ironplane_registry::Strategy;
use ironplane_registry::predicate::SelectionPredicate;
use ironplane_registry::store::{Preconditions, VersionMatch, invalid};
use serde_json::Value;

use crate::request_info::query_values;

/// A query string, read parameter by parameter.
pub struct Query<'a> {
    raw: Option<&'a str>,
}

impl<'a> Query<'a> {
    /// Wrap a raw query string.
    pub fn new(raw: Option<&'a str>) -> Self {
        Query { raw }
    }

    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<String> {
        query_values(self.raw, name).next()
    }

    /// Every value of a parameter.
    pub fn all(&self, name: &str) -> Vec<String> {
        query_values(self.raw, name).collect()
    }

    /// A boolean parameter as Go's `strconv.ParseBool` reads it.
    pub fn flag(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => parse_bool(&value).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "strconv.ParseBool: parsing {}: invalid syntax",
                    ironplane_apimachinery::status::go_quote(&value)
                ))
            }),
        }
    }

    /// An integer parameter.
    pub fn integer(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(value) if value.is_empty() => Ok(None),
            Some(value) => value.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "strconv.ParseInt: parsing {}: invalid syntax",
                    ironplane_apimachinery::status::go_quote(&value)
                ))
            }),
        }
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `metav1.ListOptions`, for list and watch.
#[derive(Clone, Default)]
pub struct ListParams {
    /// Selectors, checked against the kind's supported fields.
    pub predicate: SelectionPredicate,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub version_match: Option<VersionMatch>,
    /// `limit`.
    pub limit: Option<usize>,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `timeoutSeconds`.
    pub timeout_seconds: Option<i64>,
    /// `allowWatchBookmarks`.
    pub allow_bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: Option<bool>,
    /// `includeObject` for tables.
    pub include_object: IncludeObject,
}

impl ListParams {
    /// Parse and validate list or watch parameters for a kind.
    pub fn parse(
        query: &Query<'_>,
        strategy: &dyn Strategy,
        watch: bool,
    ) -> Result<Self, ApiError> {
        let label_selector = query.get("labelSelector").unwrap_or_default();
        let labels = labels::Selector::parse(&label_selector)
            .map_err(|err| ApiError::bad_request(err.to_string()))?;
        let field_selector = query.get("fieldSelector").unwrap_or_default();
        let fields = fields::Selector::parse(&field_selector)
            .map_err(|err| ApiError::bad_request(err.to_string()))?;
        let fields = fields.transform(|field, value| match strategy.check_field_label(field) {
            Ok(()) => Ok((field.to_owned(), value.to_owned())),
            Err(message) => Err(ApiError::bad_request(message)),
        })?;
        let limit = match query.integer("limit")? {
            Some(limit) if limit > 0 => Some(limit as usize),
            _ => None,
        };
        let include_object = match query.get("includeObject") {
            None => IncludeObject::default(),
            Some(value) => IncludeObject::parse(&value).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "includeObject: Unsupported value: {}",
                    ironplane_apimachinery::status::go_quote(&value)
                ))
            })?,
        };
        let params = ListParams {
            predicate: SelectionPredicate { labels, fields },
            resource_version: query.get("resourceVersion").filter(|rv| !rv.is_empty()),
            version_match: None,
            limit,
            continue_token: query.get("continue").filter(|token| !token.is_empty()),
            timeout_seconds: query.integer("timeoutSeconds")?,
            allow_bookmarks: query.flag("allowWatchBookmarks")?.unwrap_or(false),
            send_initial_events: query.flag("sendInitialEvents")?,
            include_object,
        };
        let version_match = query.get("resourceVersionMatch").filter(|m| !m.is_empty());
        let errors = params.validate(version_match.as_deref(), watch);
        if !errors.is_empty() {
            return Err(invalid(
                &GroupKind::new("meta.k8s.io", "ListOptions"),
                "",
                &errors,
            ));
        }
        Ok(ListParams {
            version_match: match version_match.as_deref() {
                Some("Exact") => Some(VersionMatch::Exact),
                Some("NotOlderThan") => Some(VersionMatch::NotOlderThan),
                _ => None,
            },
            ..params
        })
    }

    fn validate(&self, version_match: Option<&str>, watch: bool) -> ErrorList {
        let mut errors = Vec::new();
        let match_path = Path::new("resourceVersionMatch");
        let forbidden = |message: &str| Error::forbidden(&match_path, message);
        if watch {
            if self.send_initial_events.is_some() && version_match != Some("NotOlderThan") {
                errors.push(forbidden(
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if let Some(version_match) = version_match {
                if self.send_initial_events.is_none() {
                    errors.push(forbidden(
                        "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                    ));
                }
                if version_match != "NotOlderThan" {
                    errors.push(Error::not_supported(
                        &match_path,
                        version_match,
                        &["NotOlderThan"],
                    ));
                }
                if self.continue_token.is_some() {
                    errors.push(forbidden(
                        "resourceVersionMatch is forbidden when continue is provided",
                    ));
                }
            }
            return errors;
        }
        if let Some(version_match) = version_match {
            if self.resource_version.is_none() {
                errors.push(forbidden(
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if self.continue_token.is_some() {
                errors.push(forbidden(
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if version_match != "Exact" && version_match != "NotOlderThan" {
                errors.push(Error::not_supported(
                    &match_path,
                    version_match,
                    &["Exact", "NotOlderThan", ""],
                ));
            }
            if version_match == "Exact" && self.resource_version.as_deref() == Some("0") {
                errors.push(forbidden(
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
        if self.send_initial_events.is_some() {
            errors.push(Error::forbidden(
                &Path::new("sendInitialEvents"),
                "sendInitialEvents is forbidden for list",
            ));
        }
        errors
    }
}

/// How unknown fields in a body are treated (`fieldValidation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and warn (the server's default).
    Warn,
    /// Refuse the request.
    Strict,
}

/// Options of create, update and patch.
#[derive(Clone, Debug)]
pub struct WriteParams {
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
    /// `fieldManager`.
    pub field_manager: Option<String>,
}

impl WriteParams {
    /// Parse for `kind` (`CreateOptions`, `UpdateOptions`, `PatchOptions`), validating as upstream.
    pub fn parse(query: &Query<'_>, kind: &str) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let dry_run = dry_run(query, &mut errors);
        let field_validation = match query.get("fieldValidation").as_deref() {
            None | Some("") | Some("Warn") => FieldValidation::Warn,
            Some("Ignore") => FieldValidation::Ignore,
            Some("Strict") => FieldValidation::Strict,
            Some(other) => {
                errors.push(Error::not_supported(
                    &Path::new("fieldValidation"),
                    other,
                    &["", "Ignore", "Warn", "Strict"],
                ));
                FieldValidation::Warn
            }
        };
        let field_manager = query.get("fieldManager");
        if let Some(manager) = &field_manager
            && manager.chars().count() > 128
        {
            errors.push(Error::too_long(&Path::new("fieldManager"), 128));
        }
        if !errors.is_empty() {
            return Err(invalid(&GroupKind::new("meta.k8s.io", kind), "", &errors));
        }
        Ok(WriteParams {
            dry_run,
            field_validation,
            field_manager,
        })
    }
}

fn dry_run(query: &Query<'_>, errors: &mut ErrorList) -> bool {
    let values = query.all("dryRun");
    for value in &values {
        if value != "All" {
            errors.push(Error::not_supported(
                &Path::new("dryRun"),
                value.as_str(),
                &["All"],
            ));
        }
    }
    !values.is_empty()
}

/// `metav1.DeleteOptions` from the query and an optional JSON body.
#[derive(Clone, Debug, Default)]
pub struct DeleteParams {
    /// `dryRun=All`.
    pub dry_run: bool,
    /// Preconditions.
    pub preconditions: Preconditions,
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
    /// `propagationPolicy`.
    pub propagation_policy: Option<String>,
}

impl DeleteParams {
    /// Merge the body (if any) and the query; the query wins, as upstream decodes it last.
    pub fn parse(query: &Query<'_>, body: &[u8]) -> Result<Self, ApiError> {
        let mut params = DeleteParams::default();
        let mut errors = Vec::new();
        let trimmed = body.iter().all(u8::is_ascii_whitespace);
        if !trimmed {
            let value: Value = ironplane_apimachinery::codec::parse_json(body)
                .or_else(|_| ironplane_apimachinery::codec::parse_yaml(body))
                .map_err(|err| ApiError::bad_request(err.to_string()))?;
            if let Some(kind) = value.get("kind").and_then(Value::as_str)
                && kind != "DeleteOptions"
            {
                return Err(ApiError::bad_request(format!(
                    "{kind} in version {} cannot be handled as a DeleteOptions: converting to DeleteOptions: unknown conversion",
                    ironplane_apimachinery::status::go_quote(
                        value
                            .get("apiVersion")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                    )
                )));
            }
            params.grace_period_seconds = value.get("gracePeriodSeconds").and_then(Value::as_i64);
            params.propagation_policy = value
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if value.get("orphanDependents").and_then(Value::as_bool) == Some(true)
                && params.propagation_policy.is_none()
            {
                params.propagation_policy = Some("Orphan".into());
            }
            if let Some(pre) = value.get("preconditions") {
                params.preconditions = Preconditions {
                    uid: pre.get("uid").and_then(Value::as_str).map(str::to_owned),
                    resource_version: pre
                        .get("resourceVersion")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                };
            }
            if let Some(Value::Array(values)) = value.get("dryRun") {
                for value in values {
                    match value.as_str() {
                        Some("All") => params.dry_run = true,
                        other => errors.push(Error::not_supported(
                            &Path::new("dryRun"),
                            other.unwrap_or_default(),
                            &["All"],
                        )),
                    }
                }
            }
        }
        if dry_run(query, &mut errors) {
            params.dry_run = true;
        }
        if let Some(grace) = query.integer("gracePeriodSeconds")? {
            params.grace_period_seconds = Some(grace);
        }
        if let Some(policy) = query.get("propagationPolicy") {
            params.propagation_policy = Some(policy);
        }
        if let Some(policy) = &params.propagation_policy
            && !matches!(policy.as_str(), "Orphan" | "Background" | "Foreground")
        {
            errors.push(Error::not_supported(
                &Path::new("propagationPolicy"),
                policy.as_str(),
                &["Foreground", "Background", "Orphan", "nil"],
            ));
        }
        if !errors.is_empty() {
            return Err(invalid(
                &GroupKind::new("meta.k8s.io", "DeleteOptions"),
                "",
                &errors,
            ));
        }
        Ok(params)
    }
}

/// Turn a field error list into a 422 for an options kind, when not empty.
pub fn check(kind: &str, errors: &[field::Error]) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(invalid(
            &GroupKind::new("meta.k8s.io", kind),
            "",
            &errors.to_vec(),
        ))
    }
}
