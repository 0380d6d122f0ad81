//! Integration tests of the commerce service against real Postgres and NATS, with fake CJ,
//! AliExpress and Shopify servers.

mod dsers;
mod fulfilment;
mod local;
mod localization;
mod messages;
mod monitoring;
mod rates;
mod refunds;
mod reseal;
mod schema;
mod support;
mod webhooks;
