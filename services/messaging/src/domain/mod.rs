//! Types and rules of messaging; no I/O.

pub mod consent;
pub mod contact;
pub mod fields;
pub mod import;
pub mod webhooks;
