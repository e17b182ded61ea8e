//! The registry: the generic store every resource goes through, the strategies that make a
//! kind what it is, the watch cache that serves lists and watches from memory, and the set of
//! served resources that the API server routes to and publishes in discovery.

pub mod cacher;
pub mod core;
pub mod events;
pub mod predicate;
pub mod registry;
pub mod resource;
pub mod store;
pub mod strategy;

pub use registry::Registry;
pub use resource::ResourceInfo;
pub use store::Store;
pub use strategy::Strategy;
