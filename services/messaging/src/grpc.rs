//! gRPC adapters of messaging: proto <-> app views and calls into the use cases.

pub mod transfer;
