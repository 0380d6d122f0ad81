//! Auth service tests over gRPC, against real Postgres and NATS.

mod accounts;
mod mfa;
mod support;
mod tenancy;
mod tokens;
