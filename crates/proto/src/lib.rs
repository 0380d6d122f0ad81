//! Generated tonic/prost code for every package under `proto/`.
//!
//! Packages appear as nested modules: `nexus_proto::nexus::common::v1::Money`, with short aliases
//! below for the ones every crate uses.

#![allow(clippy::all, missing_docs, unreachable_pub)]

include!(concat!(env!("OUT_DIR"), "/nexus.rs"));

/// Encoded `FileDescriptorSet` of all packages, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/nexus_descriptor.bin"));

pub use nexus::common::v1 as common;
pub use nexus::events::v1 as events;
pub use nexus::ops::v1 as ops;

pub use prost_types;
