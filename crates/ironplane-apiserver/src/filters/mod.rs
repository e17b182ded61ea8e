//! The filter chain every request passes before the server chain, as upstream's
//! `DefaultBuildHandlerChain`: panic recovery, request info, authentication, max-in-flight,
//! authorization and timeout, each a separate tower layer. Every filter answers failures with a
//! `Status`; none panics.

mod authentication;
mod authorization;
mod max_in_flight;
mod panic_recovery;
mod request_info;
mod timeout;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::util::BoxCloneSyncService;
use tower::{Layer, Service};

use crate::body::{Request, Response};

pub use authentication::Authentication;
pub use authorization::{AllowAuthenticated, Authorization, Authorizer, Decision};
pub use max_in_flight::MaxInFlight;
pub use panic_recovery::PanicRecovery;
pub use request_info::WithRequestInfo;
pub use timeout::Timeout;

/// The service at the end of a filter: the rest of the chain.
pub type Next = BoxCloneSyncService<Request, Response, Infallible>;

/// The future a filter returns.
pub type FilterFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

/// One step of the filter chain.
pub trait Filter: Send + Sync + 'static {
    /// Handle a request, calling `next` to pass it on.
    fn filter(&self, request: Request, next: Next) -> FilterFuture;
}

/// Wraps a [`Filter`] as a tower layer.
pub struct FilterLayer<F> {
    filter: Arc<F>,
}

impl<F> FilterLayer<F> {
    /// A layer for this filter.
    pub fn new(filter: F) -> Self {
        FilterLayer {
            filter: Arc::new(filter),
        }
    }
}

impl<F> Clone for FilterLayer<F> {
    fn clone(&self) -> Self {
        FilterLayer {
            filter: self.filter.clone(),
        }
    }
}

impl<F: Filter, S> Layer<S> for FilterLayer<F>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    type Service = FilterService<F>;

    fn layer(&self, inner: S) -> Self::Service {
        FilterService {
            filter: self.filter.clone(),
            next: BoxCloneSyncService::new(inner),
        }
    }
}

/// A filter in front of the rest of the chain.
pub struct FilterService<F> {
    filter: Arc<F>,
    next: Next,
}

impl<F> Clone for FilterService<F> {
    fn clone(&self) -> Self {
        FilterService {
            filter: self.filter.clone(),
            next: self.next.clone(),
        }
    }
}

impl<F: Filter> Service<Request> for FilterService<F> {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let future = self.filter.filter(request, self.next.clone());
        Box::pin(async move { Ok(future.await) })
    }
}
