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
