//! Integration tests of the messaging service against real Postgres.

mod schema;
