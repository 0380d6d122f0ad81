//! Subscriptions tests over gRPC with real Postgres and NATS.

mod billing;
mod credits;
mod stripe;
mod support;
