//! Integration tests of the messaging service against real Postgres.

mod contacts;
mod crm;
mod leads;
mod members;
mod messages;
mod schema;
mod search;
mod support;
mod transfer;
mod webhooks;
