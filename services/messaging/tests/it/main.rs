//! Integration tests of the messaging service against real Postgres.

mod broadcasts;
mod contacts;
mod crm;
mod inbox;
mod leads;
mod media;
mod members;
mod messages;
mod numbers;
mod orders;
mod schema;
mod search;
mod support;
mod templates;
mod transfer;
mod webhooks;
mod whatsapp;
