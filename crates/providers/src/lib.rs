//! Third-party API clients, one module per provider.

mod http;
pub mod llm;
pub mod oidc;
pub mod replicate;
pub mod runware;
pub mod standard_webhooks;
pub mod stripe;
