//! Ironplane's HTTP edge: TLS serving, the filter chain (request info, authentication,
//! max-in-flight, authorization, timeout), the server chain (aggregator → core → apiextensions →
//! not found), one handler per verb, discovery and health. It receives a storage backend; it never
//! chooses one.
//!
//! Architecture Invariant: only this crate speaks HTTP, and no handler panics: every failure is a
//! `metav1.Status`.

pub mod admission;
pub mod authn;
pub mod body;
pub mod chain;
pub mod discovery;
pub mod filters;
pub mod handlers;
pub mod health;
pub mod openapi;
pub mod request_info;
pub mod responses;
pub mod server;
pub mod tls;

pub use server::{Server, ServerConfig};
#[allow(missing_docs, dead_code)]
mod patch_shim {
    use ironplane_apimachinery::ApiError;
    use serde_json::Value;
    pub struct E;
    impl E { pub fn to_api_error(&self) -> ApiError { ApiError::internal("x") } }
    pub fn apply_json_patch(_d: &Value, _p: &[u8]) -> Result<Value, E> { Err(E) }
    pub fn apply_merge_patch(_d: &Value, _p: &[u8]) -> Result<Value, E> { Err(E) }
    pub fn apply_strategic_merge_patch(_d: &Value, _p: &[u8], _s: &'static ironplane_apimachinery::schema::StructSchema) -> Result<Value, E> { Err(E) }
}
