//! Every SQL statement of commerce. Functions take the caller's connection (a tenant
//! transaction from the use case), so RLS decides what they see; row types stay in here.

pub mod alerts;
pub mod connections;
pub mod orders;
pub mod products;
pub mod rates;
pub mod refunds;
pub mod rules;
pub mod sales;
