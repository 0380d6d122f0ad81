//! CJ Dropshipping client against the fake CJ (real HTTP on 127.0.0.1, port 0): tokens from the
//! API key and their refresh before expiry, the envelope's errors, retries, products and orders.

use std::time::Duration;

use nexus_providers::cj::{CjClient, CjConfig, CjError, CjOrderLine, CjOrderRequest, CjSearch};
use nexus_testkit::cj::{FakeCj, TEST_API_KEY};
use serde_json::json;

fn config(fake: &FakeCj, key: &str) -> CjConfig {
    CjConfig {
        base_url: fake.base_url.clone(),
        timeout: Duration::from_secs(10),
        max_retry_after: Duration::from_secs(2),
        ..CjConfig::new(key)
    }
}

async fn setup() -> (FakeCj, CjClient) {
    nexus_testkit::init_tracing();
    let fake = FakeCj::start().await;
    let client = CjClient::new(config(&fake, TEST_API_KEY), reqwest::Client::new());
    (fake, client)
}

fn order(number: &str, vid: &str) -> CjOrderRequest {
    CjOrderRequest {
        order_number: number.into(),
        shipping_country_code: "US".into(),
        shipping_country: "United States".into(),
        shipping_province: "CA".into(),
        shipping_city: "San Francisco".into(),
        shipping_address: "1 Market St".into(),
        shipping_address2: String::new(),
        shipping_zip: "94105".into(),
        shipping_phone: "+14155550100".into(),
        shipping_customer_name: "Ana Silva".into(),
        email: "ana@example.com".into(),
        logistic_name: "CJPacket Ordinary".into(),
        from_country_code: "CN".into(),
        pay_type: 2,
        products: vec![CjOrderLine { vid: vid.into(), quantity: 2, store_line_item_id: "li-1".into() }],
    }
}

#[tokio::test]
async fn the_access_token_is_refreshed_before_it_expires() {
    nexus_testkit::init_tracing();
    let fake = FakeCj::start().await;
    // Tokens live 6 s; the client refreshes when less than 4 s are left.
    fake.set_access_ttl(Duration::from_millis(6_000));
    let cfg = CjConfig { refresh_before: Duration::from_millis(4_000), ..config(&fake, TEST_API_KEY) };
    let client = CjClient::new(cfg, reqwest::Client::new());

    client.search(&CjSearch::default()).await.unwrap();
    let first = client.tokens().await.unwrap();
    client.search(&CjSearch::default()).await.unwrap();
    assert_eq!(fake.token_calls(), ["get"], "a fresh token is reused");

    tokio::time::sleep(Duration::from_millis(2_500)).await;
    // At most 3.5 s left < 4 s: refreshed first, while the old token is still valid.
    client.search(&CjSearch::default()).await.unwrap();
    let second = client.tokens().await.unwrap();
    assert_eq!(fake.token_calls(), ["get", "refresh"]);
    assert_ne!(first.access_token, second.access_token);
    assert!(second.access_expires_at > first.access_expires_at);
    // Every call carried a token the fake accepted: none went out expired.
    assert!(fake.calls().iter().all(|(_, ok)| *ok), "{:?}", fake.calls());
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn kept_tokens_are_used_and_a_refused_one_is_replaced() {
    let (fake, client) = setup().await;
    client.access_token().await.unwrap();
    let kept = client.tokens().await.unwrap();
    // Another process starts from the kept tokens: no new token call.
    let again = CjClient::with_tokens(config(&fake, TEST_API_KEY), reqwest::Client::new(), Some(kept.clone()));
    again.search(&CjSearch::default()).await.unwrap();
    assert_eq!(fake.token_calls(), ["get"]);
    // Tokens CJ does not know (revoked): the call is made again with new ones.
    let mut revoked = kept;
    revoked.access_token = "cj-access-revoked".into();
    let third = CjClient::with_tokens(config(&fake, TEST_API_KEY), reqwest::Client::new(), Some(revoked));
    third.search(&CjSearch::default()).await.unwrap();
    assert_eq!(fake.token_calls(), ["get", "get"]);
}

#[tokio::test]
async fn a_wrong_api_key_is_an_auth_error() {
    nexus_testkit::init_tracing();
    let fake = FakeCj::start().await;
    let client = CjClient::new(config(&fake, "CJ0@api@wrong"), reqwest::Client::new());
    let e = client.search(&CjSearch::default()).await.unwrap_err();
    assert!(matches!(e, CjError::Auth { .. }), "{e:?}");
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn products_variants_stock_and_freight() {
    let (fake, client) = setup().await;
    let found = client.search(&CjSearch { keyword: "product 2".into(), ..CjSearch::default() }).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].pid, "CJPID0002");
    assert_eq!(found[0].sell_price, "11.50");
    let p = client.product("CJPID0002").await.unwrap();
    assert_eq!(p.variants.len(), 2);
    assert_eq!(p.variants[0].sell_price, "11.5");
    assert_eq!(p.category, "Home");
    fake.set_variant("CJVID00021", "12.75", 7);
    assert_eq!(client.stock("CJVID00021").await.unwrap(), 7);
    let options = client.freight("CN", "US", &[("CJVID00021".into(), 1)]).await.unwrap();
    assert_eq!(options[0].logistic_name, "CJPacket Ordinary");
    assert_eq!(options[0].price, "3.25");
    let e = client.product("NOPE").await.unwrap_err();
    assert!(matches!(e, CjError::Api { code: 1600100, .. }), "{e:?}");
}

#[tokio::test]
async fn orders_are_created_once_per_order_number() {
    let (fake, client) = setup().await;
    let created = client.create_order(&order("nx-ord-1", "CJVID00011")).await.unwrap();
    assert!(created.pay_url.is_none(), "paid from balance");
    let again = client.create_order(&order("nx-ord-1", "CJVID00011")).await.unwrap_err();
    assert!(matches!(again, CjError::Api { code: 1603001, .. }), "{again:?}");
    let mut by_page = order("nx-ord-2", "CJVID00011");
    by_page.pay_type = 1;
    assert!(client.create_order(&by_page).await.unwrap().pay_url.is_some());
    assert_eq!(fake.orders().len(), 2);
    fake.ship(&created.order_id, "YT2026110100001");
    let detail = client.order(&created.order_id).await.unwrap();
    assert_eq!(detail.track_number.as_deref(), Some("YT2026110100001"));
    fake.fail_orders(1603100, "Insufficient balance");
    let e = client.create_order(&order("nx-ord-3", "CJVID00011")).await.unwrap_err();
    assert!(matches!(e, CjError::Api { code: 1603100, .. }), "{e:?}");
}

#[tokio::test]
async fn rate_limits_and_outages_are_retried() {
    let (fake, client) = setup().await;
    client.access_token().await.unwrap();
    fake.fail_next(1, 429, json!({"code": 1600200, "result": false, "message": "Too many requests"}), Some(1));
    fake.fail_next(1, 502, json!({}), None);
    let started = std::time::Instant::now();
    client.search(&CjSearch::default()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After honoured");
    // An envelope carrying the rate-limit code with HTTP 200 is retried too.
    fake.fail_next(1, 200, FakeCj::envelope_error(1600200, "Too many requests"), None);
    client.search(&CjSearch::default()).await.unwrap();
    // Three failures in a row use up the attempts.
    fake.fail_next(3, 503, json!({}), None);
    let e = client.search(&CjSearch::default()).await.unwrap_err();
    assert!(matches!(e, CjError::Upstream { status: 503, .. }), "{e:?}");
}
