//! Platform integration tests against the real Postgres and NATS.

mod fixture;
mod health;
mod outbox;
mod rls;
