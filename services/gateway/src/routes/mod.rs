//! Public routes, grouped by the service they front.

pub mod meta;
pub mod webhooks;
