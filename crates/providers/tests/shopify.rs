//! Shopify Admin GraphQL client against the fake store: throttling (HTTP 429 and the GraphQL
//! THROTTLED error with cost data) backed off and retried, idempotent product pushes,
//! fulfilments with tracking, webhook subscriptions, refused tokens.

use std::time::{Duration, Instant};

use nexus_providers::shopify::{ShopifyClient, ShopifyConfig, ShopifyError};
use nexus_testkit::shopify::{FakeShopify, TEST_ACCESS_TOKEN, TEST_SHOP, Throttle};
use serde_json::json;

fn client(fake: &FakeShopify, token: &str) -> ShopifyClient {
    let cfg = ShopifyConfig {
        base_url: fake.base_url.clone(),
        max_wait: Duration::from_secs(5),
        ..ShopifyConfig::new(TEST_SHOP, token)
    };
    ShopifyClient::new(cfg, reqwest::Client::new())
}

fn product() -> serde_json::Value {
    json!({
        "title": "Fake product 1", "status": "ACTIVE",
        "productOptions": [{"name": "Color", "values": [{"name": "Black"}, {"name": "White"}]}],
        "variants": [
            {"optionValues": [{"optionName": "Color", "name": "Black"}], "price": "16.99", "inventoryItem": {"sku": "CJSKU0001-1", "tracked": true}},
            {"optionValues": [{"optionName": "Color", "name": "White"}], "price": "17.99", "inventoryItem": {"sku": "CJSKU0001-2", "tracked": true}},
        ],
    })
}

#[tokio::test]
async fn http_429_is_backed_off_and_retried() {
    nexus_testkit::init_tracing();
    let fake = FakeShopify::start().await;
    let c = client(&fake, TEST_ACCESS_TOKEN);
    fake.throttle_next(1, Throttle::Http429);
    let started = Instant::now();
    let (name, currency) = c.shop().await.unwrap();
    assert_eq!((name.as_str(), currency.as_str()), ("Nexus Test", "USD"));
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 honoured");
    assert_eq!(fake.log(), [("shop".to_owned(), 429), ("shop".to_owned(), 200)]);
}

#[tokio::test]
async fn the_graphql_throttled_error_waits_for_the_bucket_and_retries() {
    nexus_testkit::init_tracing();
    let fake = FakeShopify::start().await;
    let c = client(&fake, TEST_ACCESS_TOKEN);
    fake.throttle_next(2, Throttle::GraphQl);
    let started = Instant::now();
    let p = c.product_set("nx-prod-1", product()).await.unwrap();
    // Two waits of (50 − 10) / 500 s = 80 ms each, from the cost data.
    assert!(started.elapsed() >= Duration::from_millis(160), "{:?}", started.elapsed());
    assert_eq!(p.variants.len(), 2);
    assert_eq!(fake.log().len(), 3);
    assert_eq!(fake.products().len(), 1);
    // Throttled more often than the attempts allow: the caller gets the throttle.
    fake.throttle_next(4, Throttle::GraphQl);
    let e = c.shop().await.unwrap_err();
    assert!(matches!(e, ShopifyError::Throttled { .. }), "{e:?}");
}

#[tokio::test]
async fn a_product_push_is_idempotent_by_handle() {
    nexus_testkit::init_tracing();
    let fake = FakeShopify::start().await;
    let c = client(&fake, TEST_ACCESS_TOKEN);
    let first = c.product_set("nx-prod-1", product()).await.unwrap();
    let again = c.product_set("nx-prod-1", product()).await.unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(fake.products().len(), 1);
    assert_eq!(fake.products()[0].sets, 2);
    assert_eq!(first.variants[1].1, "CJSKU0001-2");
    let e = c.product_set("nx-prod-2", json!({"title": ""})).await.unwrap_err();
    assert!(matches!(e, ShopifyError::UserErrors(_)), "{e:?}");
}

#[tokio::test]
async fn fulfilment_with_tracking_and_webhook_subscriptions() {
    nexus_testkit::init_tracing();
    let fake = FakeShopify::start().await;
    let c = client(&fake, TEST_ACCESS_TOKEN);
    c.fulfil("gid://shopify/Order/1001", "YT123", "Yun Express").await.unwrap();
    let f = fake.fulfillments();
    assert_eq!(f[0].0, "gid://shopify/Order/1001");
    assert_eq!(f[0].1["trackingInfo"]["number"], "YT123");
    // Nothing open any more.
    assert!(matches!(c.fulfil("gid://shopify/Order/1001", "YT123", "Yun").await, Err(ShopifyError::UserErrors(_))));
    c.subscribe_webhook("ORDERS_CREATE", "https://api.example/webhooks/shopify").await.unwrap();
    assert_eq!(fake.webhooks(), [("ORDERS_CREATE".to_owned(), "https://api.example/webhooks/shopify".to_owned())]);
}

#[tokio::test]
async fn a_wrong_token_is_refused_without_retries() {
    nexus_testkit::init_tracing();
    let fake = FakeShopify::start().await;
    let e = client(&fake, "shpat_wrong").shop().await.unwrap_err();
    assert!(matches!(e, ShopifyError::Auth), "{e:?}");
    assert_eq!(fake.log().len(), 1);
}

#[tokio::test]
async fn translations_name_the_digest_of_the_text_they_translate() {
    use nexus_providers::shopify::TranslationInput;
    use sha2::Digest as _;
    nexus_testkit::init_tracing();
    let fake = FakeShopify::start().await;
    let c = client(&fake, TEST_ACCESS_TOKEN);
    let p = c.product_set("nx-translated", product()).await.unwrap();
    let t = c.translatable(&p.id).await.unwrap();
    // The shop's locales, and the title's digest: the SHA-256 of the text pushed.
    let locales: Vec<(&str, bool)> = t.locales.iter().map(|l| (l.locale.as_str(), l.primary)).collect();
    assert_eq!(locales, vec![("en", true), ("es", false), ("pt-BR", false), ("ar", false)]);
    let title = hex::encode(sha2::Sha256::digest(b"Fake product 1"));
    assert_eq!(t.digests.get("title"), Some(&title));
    let es = |digest: &str, locale: &str| TranslationInput {
        locale: locale.into(),
        key: "title".into(),
        value: "Producto falso 1".into(),
        digest: digest.into(),
    };
    assert_eq!(c.register_translations(&p.id, &[es(&title, "es")]).await.unwrap(), 1);
    // A digest of other text, a locale the shop has not enabled: refused, nothing stored.
    for bad in [es(&hex::encode(sha2::Sha256::digest(b"old title")), "es"), es(&title, "he")] {
        let e = c.register_translations(&p.id, &[bad]).await.unwrap_err();
        assert!(matches!(e, ShopifyError::UserErrors(_)), "{e:?}");
    }
    assert_eq!(fake.translations().len(), 1);
    // Another product id: nothing to translate.
    assert!(c.translatable("gid://shopify/Product/1").await.is_err());
}
