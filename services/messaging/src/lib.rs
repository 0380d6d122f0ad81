//! The messaging service: one contact book per workspace (contacts, channel identities, consent,
//! CRM activities, deals, segments), outbound webhooks to the workspace's own systems, and —
//! built on them — WhatsApp.
//!
//! Being built in steps (issue: messaging part 1): this crate holds the domain rules first; the
//! repository, use cases, gRPC adapters, events and binary follow the service template in README.

pub mod app;
pub mod domain;
pub mod events;
pub mod repo;

/// The service's own migrations (after the platform's: outbox, inbox, audit, tenant tables).
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
