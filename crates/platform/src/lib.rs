//! What every NexusOne binary stands on: configuration, telemetry, Postgres (pool, migrations,
//! tenant transactions), NATS JetStream (streams, transactional outbox, idempotent consumers,
//! dead letters), gRPC server and client plumbing, the admin server and graceful shutdown.

pub mod admin;
pub mod app;
pub mod bus;
pub mod config;
pub mod consumer;
pub mod context;
pub mod credits;
pub mod crypto;
pub mod db;
pub mod dlq;
pub mod grpc;
pub mod identity;
pub mod links;
pub mod outbound;
pub mod outbox;
pub mod reseal;
pub mod shutdown;
pub mod storage;
pub mod telemetry;

/// The allocator of every binary, test and benchmark that links the platform. Request handling
/// allocates many small short-lived buffers across threads (hyper, tonic, serde, sqlx rows);
/// mimalloc serves those from per-thread pages where glibc's malloc spent a fifth of an
/// authenticated read's CPU in its arenas (profile of `make bench`'s reads benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use app::{Infra, Listeners, ServiceDef};
pub use config::{CommonConfig, Secret};
pub use context::RequestContext;

/// Installs `ring` as the process's rustls crypto provider (one provider for the whole
/// workspace; HTTP clients are built without one). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
