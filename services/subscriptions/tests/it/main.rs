//! Subscriptions tests over gRPC with real Postgres and NATS.

mod credits;
mod support;
