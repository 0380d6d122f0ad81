//! Auth service tests over gRPC, against real Postgres and NATS.

mod accounts;
mod mfa;
mod oauth;
mod smtp;
mod support;
mod tenancy;
mod tokens;
