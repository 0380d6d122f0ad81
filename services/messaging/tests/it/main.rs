//! Integration tests of the messaging service against real Postgres.

mod contacts;
mod crm;
mod leads;
mod members;
mod messages;
mod schema;
mod support;
mod transfer;
mod webhooks;
