//! Kubernetes API machinery with no I/O: what an API object is, how it is named, selected,
//! validated, encoded and reported, shared by the registry and the API server.

pub mod codec;
pub mod continuation;
pub mod discovery;
pub mod field;
pub mod fields;
pub mod gojson;
pub mod gvk;
pub mod labels;
pub mod meta;
pub mod object;
pub mod protobuf;
pub mod quantity;
pub mod schema;
pub mod status;
pub mod table;
pub mod validation;
pub mod watch;
pub mod yaml;

pub use gvk::{GroupKind, GroupResource, GroupVersion, GroupVersionKind, GroupVersionResource};
pub use meta::{ListMeta, ObjectMeta};
pub use object::Object;
pub use status::{ApiError, Status};
