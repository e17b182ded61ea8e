//! Attach the [`RequestInfo`] of each request for the filters and handlers after it.

use ironplane_apimachinery::ApiError;

use super::{Filter, FilterFuture, Next};
use crate::body::Request;
use crate::request_info::RequestInfo;
use crate::responses::status_response;

/// Parses the request info.
pub struct WithRequestInfo;

impl Filter for WithRequestInfo {
    fn filter(&self, mut request: Request, next: Next) -> FilterFuture {
        Box::pin(async move {
            let uri = request.uri().clone();
            match RequestInfo::parse(request.method(), uri.path(), uri.query()) {
                Ok(info) => {
                    request.extensions_mut().insert(info);
                    next.run(request).await
                }
                Err(why) => status_response(
                    &ApiError::internal(format!("failed to create RequestInfo: {why}")),
                    false,
                ),
            }
        })
    }
}
