//! Request timeout: a request that is not long-running gets at most this long (upstream's
//! `--request-timeout`, 60 s by default), then 504.

use std::time::Duration;

use ironplane_apimachinery::ApiError;

use super::{Filter, FilterFuture, Next};
use crate::body::Request;
use crate::request_info::RequestInfo;
use crate::responses::status_response;

/// Bounds request handling time.
pub struct Timeout {
    limit: Duration,
}

impl Timeout {
    /// With this limit.
    pub fn new(limit: Duration) -> Self {
        Timeout { limit }
    }
}

impl Filter for Timeout {
    fn filter(&self, request: Request, next: Next) -> FilterFuture {
        let long_running = request
            .extensions()
            .get::<RequestInfo>()
            .is_some_and(RequestInfo::is_long_running);
        let limit = self.limit;
        Box::pin(async move {
            let pretty = crate::responses::wants_pretty(&request);
            let call = next.run(request);
            let result = if long_running {
                Ok(call.await)
            } else {
                tokio::time::timeout(limit, call).await
            };
            match result {
                Ok(response) => response,
                Err(_) => status_response(
                    &ApiError::timeout(
                        "request did not complete within requested timeout - context deadline exceeded",
                        0,
                    ),
                    pretty,
                ),
            }
        })
    }
}
