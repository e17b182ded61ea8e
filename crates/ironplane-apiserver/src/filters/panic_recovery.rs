//! Panic recovery: a bug in a handler becomes a 500 Status for that request, never a dropped
//! connection or a dead server.

use std::panic::AssertUnwindSafe;

use futures::FutureExt as _;
use ironplane_apimachinery::ApiError;
use tower::ServiceExt as _;

use super::{Filter, FilterFuture, Next};
use crate::body::Request;
use crate::responses::status_response;

/// The outermost filter.
pub struct PanicRecovery;

impl Filter for PanicRecovery {
    fn filter(&self, request: Request, next: Next) -> FilterFuture {
        Box::pin(async move {
            let pretty = crate::responses::wants_pretty(&request);
            match AssertUnwindSafe(next.oneshot(request)).catch_unwind().await {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(panic) => {
                    let why = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "handler panicked".into());
                    tracing::error!(panic = %why, "request handler panicked");
                    status_response(&ApiError::internal(why), pretty)
                }
            }
        })
    }
}
