//! Max-in-flight, upstream's filter when priority and fairness is turned off
//! (`--enable-priority-and-fairness=false`): at most so many reads and so many writes at once
//! (400 and 200 by default); past that, 429 with Retry-After at once, whoever asks. Watches are
//! long-running and not counted.

use std::sync::Arc;

use ironplane_apimachinery::ApiError;
use tokio::sync::Semaphore;

use super::{Filter, FilterFuture, Next};
use crate::body::{Request, Response};
use crate::request_info::RequestInfo;
use crate::responses::status_response;

/// The answer to a request refused for want of a seat: 429 with Retry-After, as upstream.
pub(super) fn too_many_requests() -> Response {
    let mut response = status_response(
        &ApiError::too_many_requests("Too many requests, please try again later.", 1),
        false,
    );
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    response
}

/// Limits concurrent requests.
pub struct MaxInFlight {
    reads: Arc<Semaphore>,
    writes: Arc<Semaphore>,
}

impl MaxInFlight {
    /// With these limits.
    pub fn new(max_reads: usize, max_writes: usize) -> Self {
        MaxInFlight {
            reads: Arc::new(Semaphore::new(max_reads.max(1))),
            writes: Arc::new(Semaphore::new(max_writes.max(1))),
        }
    }
}

impl Filter for MaxInFlight {
    fn filter(&self, request: Request, next: Next) -> FilterFuture {
        let (long_running, mutating) = request
            .extensions()
            .get::<RequestInfo>()
            .map(|info| (info.is_long_running(), info.is_mutating()))
            .unwrap_or((false, false));
        let semaphore = if mutating { &self.writes } else { &self.reads };
        let permit = if long_running {
            Ok(None)
        } else {
            semaphore.clone().try_acquire_owned().map(Some)
        };
        Box::pin(async move {
            match permit {
                Ok(_permit) => next.run(request).await,
                Err(_) => too_many_requests(),
            }
        })
    }
}
