//! Third-party API clients, one module per provider.

pub mod aliexpress;
pub mod cj;
pub mod did;
pub mod ecb;
pub mod elevenlabs;
pub mod google;
mod http;
pub mod instagram;
pub mod llm;
pub mod marketing;
pub mod meta;
pub mod multipart;
pub mod oidc;
pub mod replicate;
pub mod runware;
pub mod shopify;
pub mod standard_webhooks;
pub mod stripe;
pub mod tiktok;
pub mod tiktok_login;
pub mod tiktok_posts;
pub mod whatsapp;
pub mod youtube;
