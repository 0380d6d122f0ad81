//! Public routes, grouped by the service they front.

pub mod account;
pub mod agents;
pub mod analytics;
pub mod auth;
pub mod billing;
pub mod content;
pub mod local_mail;
pub mod meta;
pub mod pages;
pub mod webhooks;
