//! Authentication: a verified client certificate, else a bearer token, else anonymous. A token
//! that matches no user is refused with 401, whatever the path.

use std::sync::Arc;

use ironplane_apimachinery::ApiError;

use super::{Filter, FilterFuture, Next};
use crate::authn::{PeerIdentity, TokenAuthenticator, UserInfo};
use crate::body::Request;
use crate::responses::status_response;

/// The authenticated user of a request; `None` for anonymous requests.
#[derive(Clone, Debug, Default)]
pub struct RequestUser(pub Option<Arc<UserInfo>>);

/// Authenticates requests.
pub struct Authentication {
    tokens: Arc<TokenAuthenticator>,
}

impl Authentication {
    /// With these static tokens.
    pub fn new(tokens: Arc<TokenAuthenticator>) -> Self {
        Authentication { tokens }
    }
}

fn bearer_token(request: &Request) -> Option<&str> {
    let header = request
        .headers()
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl Filter for Authentication {
    fn filter(&self, mut request: Request, next: Next) -> FilterFuture {
        let certificate_user = request
            .extensions()
            .get::<PeerIdentity>()
            .and_then(|peer| peer.0.clone());
        let user = match (certificate_user, bearer_token(&request)) {
            (Some(user), _) => Ok(Some(user)),
            (None, Some(token)) => match self.tokens.authenticate(token) {
                Some(user) => Ok(Some(user.clone())),
                None => Err(()),
            },
            (None, None) => Ok(None),
        };
        Box::pin(async move {
            match user {
                Ok(user) => {
                    // Credentials stop here: nothing after authentication needs them.
                    request.headers_mut().remove(http::header::AUTHORIZATION);
                    request.extensions_mut().insert(RequestUser(user));
                    next.run(request).await
                }
                Err(()) => status_response(
                    &ApiError::unauthorized(),
                    crate::responses::wants_pretty(&request),
                ),
            }
        })
    }
}
