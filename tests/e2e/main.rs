//! End-to-end tests: the real binaries as separate processes, as `make run` starts them.
//! `make test` builds the binaries before running these.

mod analytics;
mod auth;
mod backup;
mod content;
mod credits;
mod environment;
mod gateway;
mod nats_users;
mod reflection;
mod support;
