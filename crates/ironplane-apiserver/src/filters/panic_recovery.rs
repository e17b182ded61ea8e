//! Panic recovery: a bug in a handler becomes a 500 Status for that request, never a dropped
//! connection or a dead server.

use std::panic::AssertUnwindSafe;

use futures::FutureExt as _;
use ironplane_apimachinery::ApiError;

use super::{Filter, FilterFuture, Next};
use crate::body::Request;
use crate::responses::status_response;

/// The outermost filter.
pub struct PanicRecovery;

impl Filter for PanicRecovery {
    fn filter(&self, request: Request, next: Next) -> FilterFuture {
        Box::pin(async move {
            let pretty = crate::responses::wants_pretty(&request);
            // The call itself happens inside the guarded future, so that a panic in the next
            // filter's synchronous part is caught too.
            match AssertUnwindSafe(async move { next.run(request).await })
                .catch_unwind()
                .await
            {
                Ok(response) => response,
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
