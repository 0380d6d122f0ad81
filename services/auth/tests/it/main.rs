//! Auth service tests over gRPC, against real Postgres and NATS.

mod accounts;
mod mfa;
mod notices;
mod oauth;
mod reseal;
mod security;
mod service_identity;
mod smtp;
mod support;
mod tenancy;
mod tokens;
