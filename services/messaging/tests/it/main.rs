//! Integration tests of the messaging service against real Postgres.

mod contacts;
mod crm;
mod schema;
mod support;
