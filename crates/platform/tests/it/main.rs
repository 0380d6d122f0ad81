//! Platform integration tests against the real Postgres and NATS.

mod fixture;
mod health;
mod identity;
mod outbound;
mod outbox;
mod rls;
