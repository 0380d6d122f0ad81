//! Types and rules of messaging; no I/O.

pub mod activity;
pub mod consent;
pub mod contact;
pub mod deal;
pub mod fields;
pub mod import;
pub mod segment;
pub mod webhooks;
