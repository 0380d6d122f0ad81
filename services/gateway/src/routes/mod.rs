//! Public routes, grouped by the service they front.

pub mod account;
pub mod analytics;
pub mod auth;
pub mod billing;
pub mod meta;
pub mod webhooks;
