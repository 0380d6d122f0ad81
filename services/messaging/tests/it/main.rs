//! Integration tests of the messaging service against real Postgres.

mod contacts;
mod schema;
mod support;
mod webhooks;
