//! Integration tests of the messaging service against real Postgres.

mod contacts;
mod leads;
mod messages;
mod schema;
mod support;
mod webhooks;
