//! Authorization: the seam RBAC will fill. Today every authenticated user may do everything,
//! and anonymous users may read health, version and discovery, as upstream's
//! `system:public-info-viewer` and discovery roles allow; other anonymous requests get 401.

use std::sync::Arc;

use ironplane_apimachinery::ApiError;

use super::authentication::RequestUser;
use super::{Filter, FilterFuture, Next};
use crate::authn::UserInfo;
use crate::body::Request;
use crate::request_info::RequestInfo;
use crate::responses::status_response;

/// An authorizer's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refused; anonymous users are told to authenticate (401), others are forbidden (403).
    Deny(String),
}

/// Decides whether a user may make a request.
pub trait Authorizer: Send + Sync + 'static {
    /// The decision for `user` (`None`: anonymous) making `request`.
    fn authorize(&self, user: Option<&UserInfo>, request: &RequestInfo) -> Decision;
}

/// Every authenticated user may do anything; anonymous users only read public information.
pub struct AllowAuthenticated;

const PUBLIC_PATHS: [&str; 7] = [
    "/healthz",
    "/livez",
    "/readyz",
    "/version",
    "/version/",
    "/api",
    "/apis",
];

fn is_public(request: &RequestInfo) -> bool {
    if request.is_resource_request || !matches!(request.verb.as_str(), "get" | "head") {
        return false;
    }
    let path = request.path.as_str();
    if PUBLIC_PATHS.contains(&path) || path == "/api/" || path == "/apis/" {
        return true;
    }
    let health = ["/healthz/", "/livez/", "/readyz/"];
    if health.iter().any(|prefix| path.starts_with(prefix)) {
        return true;
    }
    // Discovery documents: /api/v1, /apis/{group}, /apis/{group}/{version}.
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    matches!(parts.as_slice(), ["api", _] | ["apis", _] | ["apis", _, _])
}

impl Authorizer for AllowAuthenticated {
    fn authorize(&self, user: Option<&UserInfo>, request: &RequestInfo) -> Decision {
        if user.is_some() || is_public(request) {
            Decision::Allow
        } else {
            Decision::Deny("anonymous requests are not allowed".into())
        }
    }
}

/// Applies an [`Authorizer`].
pub struct Authorization {
    authorizer: Arc<dyn Authorizer>,
}

impl Authorization {
    /// With this authorizer.
    pub fn new(authorizer: Arc<dyn Authorizer>) -> Self {
        Authorization { authorizer }
    }
}

impl Filter for Authorization {
    fn filter(&self, request: Request, next: Next) -> FilterFuture {
        let user = request
            .extensions()
            .get::<RequestUser>()
            .and_then(|user| user.0.clone());
        let decision = match request.extensions().get::<RequestInfo>() {
            Some(info) => self.authorizer.authorize(user.as_deref(), info),
            None => Decision::Deny("no request info".into()),
        };
        Box::pin(async move {
            match decision {
                Decision::Allow => next.run(request).await,
                Decision::Deny(why) => {
                    let pretty = crate::responses::wants_pretty(&request);
                    let err = match user {
                        None => ApiError::unauthorized(),
                        Some(user) => ApiError::forbidden(
                            &ironplane_apimachinery::GroupResource::new("", ""),
                            "",
                            &format!("User {:?} cannot do that: {why}", user.name),
                        ),
                    };
                    status_response(&err, pretty)
                }
            }
        })
    }
}
