//! gRPC server and client assembly, and the tower layers both use.

pub mod balance;
pub mod client;
pub mod context;
pub mod descriptors;
pub mod discovery;
pub mod endpoint_slices;
pub mod metrics_layer;
pub mod refusals;
pub mod server;
pub mod shed;
