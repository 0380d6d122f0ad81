//! Platform integration tests against the real Postgres and NATS.

mod fixture;
mod health;
mod identity;
mod outbox;
mod rls;
