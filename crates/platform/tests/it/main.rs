//! Platform integration tests against the real Postgres and NATS.

mod consumer;
mod fixture;
mod grpc;
mod health;
mod identity;
mod outbound;
mod outbox;
mod reseal;
mod rls;
