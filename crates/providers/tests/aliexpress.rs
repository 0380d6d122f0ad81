//! AliExpress client against the fake gateway: request signatures equal ones computed here,
//! independently, from the documented algorithm; sessions, products, orders, call limits.

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use nexus_providers::aliexpress::{
    AeAddress, AeOrderItem, AliExpressClient, AliExpressConfig, AliExpressError, Api, sign,
};
use nexus_testkit::aliexpress::{FakeAliExpress, TEST_APP_KEY, TEST_APP_SECRET, TEST_AUTH_CODE};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The documented algorithm, written again here: sort by name, concatenate name and value,
/// prefix the API path for system APIs, HMAC-SHA256 keyed with the secret, upper-case hex.
fn independent_sign(secret: &str, path: &str, params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<_> = params.iter().filter(|(k, _)| *k != "sign").collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut text = path.to_owned();
    for (k, v) in sorted {
        text += k;
        text += v;
    }
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02X}")).collect()
}

fn client(fake: &FakeAliExpress, secret: &str) -> AliExpressClient {
    let cfg = AliExpressConfig {
        base_url: fake.base_url.clone(),
        max_retry_after: Duration::from_secs(2),
        ..AliExpressConfig::new(TEST_APP_KEY, secret)
    };
    AliExpressClient::new(cfg, reqwest::Client::new())
}

#[test]
fn signatures_match_an_independent_computation() {
    // A business call: no path prefix; names sort in ASCII order (upper case first).
    let params = [
        ("method", "aliexpress.ds.product.get"),
        ("app_key", "12345678"),
        ("timestamp", "1700000000000"),
        ("sign_method", "sha256"),
        ("product_id", "1005006000000"),
        ("access_token", "50000xyz"),
        ("Zeta", "upper case sorts first"),
    ];
    let map: BTreeMap<String, String> = params.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    assert_eq!(sign("helloworld", None, &map), independent_sign("helloworld", "", &params));
    // A system call: the API path is signed first.
    let sys = [("app_key", "12345678"), ("timestamp", "1700000000000"), ("sign_method", "sha256"), ("code", "3_abc")];
    let map: BTreeMap<String, String> = sys.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    let expected = independent_sign("helloworld", "/auth/token/create", &sys);
    assert_eq!(sign("helloworld", Some("/auth/token/create"), &map), expected);
    assert_ne!(sign("helloworld", None, &map), expected, "the path is part of a system signature");
    assert_eq!(expected.len(), 64);
    assert!(expected.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
}

#[tokio::test]
async fn every_request_sent_is_signed_as_documented() {
    nexus_testkit::init_tracing();
    let fake = FakeAliExpress::start().await;
    let c = client(&fake, TEST_APP_SECRET);
    let session = c.create_session(TEST_AUTH_CODE).await.unwrap();
    let product = c.product(&session.access_token, "1005006", "US", "EUR", "en").await.unwrap();
    assert_eq!(product.skus.len(), 2);
    assert_eq!(product.skus[0].price, "4.56");
    assert_eq!(product.skus[0].currency, "EUR");
    assert_eq!(product.images.len(), 2);
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    for (path, params, fake_ok) in &requests {
        assert!(fake_ok, "{path}");
        let prefix = path.strip_prefix("/rest").unwrap_or("");
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(params["sign"], independent_sign(TEST_APP_SECRET, prefix, &pairs), "{path}");
        assert_eq!(params["sign_method"], "sha256");
    }
    assert_eq!(requests[1].1["method"], "aliexpress.ds.product.get");
    assert_eq!(requests[1].1["access_token"], session.access_token);
}

#[tokio::test]
async fn a_wrong_secret_or_session_is_refused() {
    nexus_testkit::init_tracing();
    let fake = FakeAliExpress::start().await;
    let e = client(&fake, "not-the-secret").create_session(TEST_AUTH_CODE).await.unwrap_err();
    assert!(matches!(&e, AliExpressError::Auth { code, .. } if code == "IncompleteSignature"), "{e:?}");
    let e = client(&fake, TEST_APP_SECRET).product("no-such-session", "1", "US", "USD", "en").await.unwrap_err();
    assert!(matches!(&e, AliExpressError::Auth { code, .. } if code == "IllegalAccessToken"), "{e:?}");
    let e = client(&fake, TEST_APP_SECRET).call(Api::Method("aliexpress.ds.nothing"), &[], None).await.unwrap_err();
    assert!(matches!(e, AliExpressError::Auth { .. } | AliExpressError::Api { .. }), "{e:?}");
}

#[tokio::test]
async fn orders_and_call_limits() {
    nexus_testkit::init_tracing();
    let fake = FakeAliExpress::start().await;
    let c = client(&fake, TEST_APP_SECRET);
    let session = c.create_session(TEST_AUTH_CODE).await.unwrap();
    let address = AeAddress {
        address: "1 Market St".into(),
        address2: String::new(),
        city: "San Francisco".into(),
        contact_person: "Ana Silva".into(),
        country: "US".into(),
        full_name: "Ana Silva".into(),
        mobile_no: "4155550100".into(),
        phone_country: "+1".into(),
        province: "California".into(),
        zip: "94105".into(),
    };
    let items = [AeOrderItem {
        product_id: "1005006".into(),
        sku_attr: "14:200006154#Blue".into(),
        product_count: 1,
        logistics_service_name: "CAINIAO_STANDARD".into(),
        order_memo: String::new(),
    }];
    // A call limit is retried (each attempt signed again).
    fake.limit_next(1);
    let ids = c.create_order(&session.access_token, "nx-1", &address, &items).await.unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(fake.orders().len(), 1);
    assert_eq!(fake.orders()[0]["product_items"][0]["sku_attr"], "14:200006154#Blue");
    let e = c.create_order(&session.access_token, "nx-2", &address, &[]).await.unwrap_err();
    assert!(matches!(e, AliExpressError::Api { .. }), "{e:?}");
    fake.limit_next(3);
    let e = c.product(&session.access_token, "1005006", "US", "USD", "en").await.unwrap_err();
    assert!(matches!(e, AliExpressError::RateLimited { .. }), "{e:?}");
}
