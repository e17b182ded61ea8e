//! The filter chain every request passes before the server chain, as upstream's
//! `DefaultBuildHandlerChain`: panic recovery, request info, authentication, priority and
//! fairness (or max-in-flight when it is turned off), authorization and timeout, each a separate
//! [`Filter`] in front of the next. Every filter answers failures with a `Status`; none panics.

mod authentication;
mod authorization;
mod max_in_flight;
mod panic_recovery;
mod priority_and_fairness;
mod request_info;
mod timeout;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::body::{Request, Response};

pub use authentication::Authentication;
pub use authorization::{AllowAuthenticated, Authorization, Authorizer, Decision};
pub use max_in_flight::MaxInFlight;
pub use panic_recovery::PanicRecovery;
pub use priority_and_fairness::PriorityAndFairness;
pub use request_info::WithRequestInfo;
pub use timeout::Timeout;

/// The future a filter returns.
pub type FilterFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

/// Something that answers a request: a filter with the rest of the chain behind it, or the
/// server chain at the end.
pub trait Handler: Send + Sync + 'static {
    /// Answer `request`.
    fn handle(&self, request: Request) -> FilterFuture;
}

/// One step of the filter chain.
pub trait Filter: Send + Sync + 'static {
    /// Handle a request, calling `next` to pass it on.
    fn filter(&self, request: Request, next: Next) -> FilterFuture;
}

/// The rest of the chain after a filter. Cloning it is one reference count, so passing it on
/// costs nothing per request (a boxed service clone per layer copied the whole chain behind it).
#[derive(Clone)]
pub struct Next(Arc<dyn Handler>);

impl Next {
    /// The chain that ends in `handler`.
    pub fn new(handler: impl Handler) -> Self {
        Next(Arc::new(handler))
    }

    /// This chain with `filter` in front of it.
    pub fn with(self, filter: impl Filter) -> Self {
        Next::new(Filtered { filter, next: self })
    }

    /// Pass `request` on.
    pub fn run(&self, request: Request) -> FilterFuture {
        self.0.handle(request)
    }
}

/// A filter in front of the rest of the chain.
struct Filtered<F> {
    filter: F,
    next: Next,
}

impl<F: Filter> Handler for Filtered<F> {
    fn handle(&self, request: Request) -> FilterFuture {
        self.filter.filter(request, self.next.clone())
    }
}
