//! Types and rules of messaging; no I/O.

pub mod activity;
pub mod bot;
pub mod broadcast;
pub mod consent;
pub mod contact;
pub mod deal;
pub mod fields;
pub mod import;
pub mod segment;
pub mod templates;
pub mod webhooks;
pub mod whatsapp;
