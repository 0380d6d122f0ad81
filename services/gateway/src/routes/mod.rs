//! Public routes, one module per resource (URL prefix). Each exposes `router()` with its
//! handlers and their OpenAPI descriptions; pieces several modules use live in `common`.

pub mod activities;
pub mod agents;
pub mod analytics_settings;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod common;
pub mod contacts;
pub mod content;
pub mod credits;
pub mod deals;
pub mod fleet;
pub mod images;
pub mod local_mail;
pub mod me;
pub mod members;
pub mod meta;
pub mod mfa;
pub mod pages;
pub mod pipeline;
pub mod plans;
pub mod public_pages;
pub mod reports;
pub mod segments;
pub mod sessions;
pub mod track;
pub mod transfer;
pub mod webhook_endpoints;
pub mod webhooks;
pub mod workspaces;
