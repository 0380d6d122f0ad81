//! Commerce through the gateway: the local supplier connected, searched and imported over
//! REST; bad input answered with localized 4xx envelopes; Shopify webhooks at
//! `/webhooks/shopify` verified by the commerce service (a forged one refused, nothing stored).

use serde_json::{Value, json};

use crate::auth::{Services, Stack, stack_of};
use crate::support::client;

/// `X-Shopify-Hmac-Sha256`: base64 of HMAC-SHA256 over the raw body with the app secret.
fn sign(secret: &str, body: &[u8]) -> String {
    use base64::Engine;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, body).as_ref())
}

/// A product of the local supplier imported over REST, priced in USD.
async fn imported_product(s: &Stack, token: &str) -> Value {
    use reqwest::Method as M;
    let (status, supplier) = s
        .call(M::POST, "/v1/commerce/connections", Some(token), Some(json!({"provider": "local", "role": "supplier"})))
        .await;
    assert_eq!(status, 201, "{supplier}");
    let id = supplier["id"].as_str().unwrap();
    let (status, found) =
        s.call(M::GET, &format!("/v1/commerce/catalogue?connection_id={id}&keyword=mug"), Some(token), None).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["provider"], "local");
    let pid = found["items"][0]["supplier_product_id"].as_str().unwrap();
    let (status, product) = s
        .call(
            M::POST,
            "/v1/commerce/catalogue/import",
            Some(token),
            Some(json!({"connection_id": id, "supplier_product_id": pid, "currency": "USD"})),
        )
        .await;
    assert_eq!(status, 201, "{product}");
    product
}

#[tokio::test]
async fn the_local_catalogue_over_rest_and_bad_input() {
    use reqwest::Method as M;
    let s = stack_of(Services { commerce: true, ..Services::default() }).await;
    let token = s.owner("").await;
    let product = imported_product(&s, &token).await;
    assert_eq!(product["variants"][0]["price"]["currency"], "USD");
    assert!(product["variants"][0]["rate_day"].is_string());

    for (body, want) in [
        (json!({"provider": "local", "role": "supplier", "extra": 1}), 422),
        (json!({"provider": 7}), 422),
        (json!({"provider": "paypal"}), 400),
        (json!({"provider": "shopify", "shop_domain": "evil.example.com", "access_token": "x"}), 400),
    ] {
        let (status, e) = s.call(M::POST, "/v1/commerce/connections", Some(&token), Some(body.clone())).await;
        assert_eq!(status, want, "{body} → {e}");
        assert!(e["error"]["message"].is_string(), "{e}");
    }
    let (status, e) = s
        .call(
            M::PUT,
            "/v1/commerce/pricing-rules",
            Some(&token),
            Some(json!({"scope": "default", "markup_percent": "-3"})),
        )
        .await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("commerce.amount_invalid")), "{e}");
    let (status, _) = s.call(M::GET, "/v1/commerce/products/prod_nope", Some(&token), None).await;
    assert_eq!(status, 404);
    let (status, _) = s.call(M::GET, "/v1/commerce/products", None, None).await;
    assert_eq!(status, 401);
    // Another workspace sees none of it.
    let other = s.owner("").await;
    let (status, _) =
        s.call(M::GET, &format!("/v1/commerce/products/{}", product["id"].as_str().unwrap()), Some(&other), None).await;
    assert_eq!(status, 404);
    assert_eq!(s.count("SELECT count(*) FROM commerce.connections").await, 1);
}

#[tokio::test]
async fn shopify_webhooks_are_verified_by_the_commerce_service() {
    let s = stack_of(Services { commerce: true, ..Services::default() }).await;
    let body = br#"{"id": 1, "currency": "USD", "updated_at": "2026-11-03T10:00:00Z", "line_items": []}"#;
    let forged = sign("not-the-secret", body);
    let resp = client()
        .post(format!("{}/webhooks/shopify", s.base))
        .header("x-shopify-hmac-sha256", forged)
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-webhook-id", "wh-1")
        .header("x-shopify-shop-domain", "nexus-test.myshopify.com")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(s.count("SELECT count(*) FROM commerce.webhook_receipts").await, 0);
    // Signed with the (development) app secret but for a shop nobody connected: acknowledged.
    let good = sign(nexus_commerce::config::DEV_SHOPIFY_SECRET, body);
    let resp = client()
        .post(format!("{}/webhooks/shopify", s.base))
        .header("x-shopify-hmac-sha256", good)
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-webhook-id", "wh-2")
        .header("x-shopify-shop-domain", "nexus-test.myshopify.com")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(s.count("SELECT count(*) FROM commerce.orders").await, 0);
}

#[tokio::test]
async fn partial_refunds_over_rest_and_bad_input() {
    use reqwest::Method as M;
    let s = stack_of(Services { commerce: true, ..Services::default() }).await;
    let token = s.owner("").await;
    let product = imported_product(&s, &token).await;
    let variant = product["variants"][0]["id"].as_str().unwrap();
    let order = json!({"currency": "USD", "lines": [{"variant_id": variant, "quantity": 2, "price": "10.00"}],
        "shipping": "5.00", "paid": true});
    let resp = client()
        .post(format!("{}/v1/commerce/orders", s.base))
        .bearer_auth(&token)
        .header("idempotency-key", "order-1")
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let path = format!("{}/v1/commerce/orders/{id}/refunds", s.base);
    let refund = |key: &str, body: Value| {
        client().post(&path).bearer_auth(&token).header("idempotency-key", key.to_owned()).json(&body).send()
    };

    let r = refund("r-1", json!({"lines": [{"line": 0, "quantity": 1}], "reason": "Damaged"})).await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let first: Value = r.json().await.unwrap();
    assert_eq!((first["status"].as_str(), first["amount"]["value"].as_str()), (Some("completed"), Some("10.00")));
    // The same key: the same refund.
    let again: Value = refund("r-1", json!({"amount": "3.00"})).await.unwrap().json().await.unwrap();
    assert_eq!(again["id"], first["id"]);

    for (body, want, code) in [
        (json!({"amount": "16.00"}), 409, "commerce.refund_exceeds_remaining"),
        (json!({"amount": "1.00", "lines": [{"line": 0, "quantity": 1}]}), 400, "commerce.refund_invalid"),
        (json!({"amount": 5}), 422, ""),
        (json!({"amount": "1.00", "extra": true}), 422, ""),
        (json!({"lines": [{"line": "first", "quantity": 1}]}), 422, ""),
        (json!({"lines": [{"line": 0, "quantity": 2}]}), 400, "commerce.refund_invalid"),
        (json!({}), 400, "commerce.refund_invalid"),
    ] {
        let r = refund("r-bad", body.clone()).await.unwrap();
        let status = r.status().as_u16();
        let e: Value = r.json().await.unwrap();
        assert_eq!(status, want, "{body} → {e}");
        assert!(e["error"]["message"].is_string(), "{e}");
        if !code.is_empty() {
            assert_eq!(e["error"]["code"], code, "{body}");
        }
    }
    let r =
        client().post(&path).bearer_auth(&token).header("content-type", "application/json").body("{not json").send();
    assert_eq!(r.await.unwrap().status().as_u16(), 400);
    let r = client()
        .post(&path)
        .bearer_auth(&token)
        .header("idempotency-key", "k".repeat(201))
        .json(&json!({"amount": "1.00"}));
    assert_eq!(r.send().await.unwrap().status().as_u16(), 400);
    let big = json!({"amount": "1.00", "reason": "x".repeat(2_000_000)});
    assert_eq!(refund("r-big", big).await.unwrap().status().as_u16(), 413);
    // Another workspace: no such order.
    let other = s.owner("").await;
    let r = client().post(&path).bearer_auth(&other).header("idempotency-key", "o-1").json(&json!({"amount": "1.00"}));
    assert_eq!(r.send().await.unwrap().status().as_u16(), 404);

    let (status, list) = s.call(M::GET, &format!("/v1/commerce/orders/{id}/refunds"), Some(&token), None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(s.count("SELECT count(*) FROM commerce.refunds").await, 1);
}

#[tokio::test]
async fn dsers_order_exports_over_rest_and_bad_input() {
    use reqwest::Method as M;
    let s = stack_of(Services { commerce: true, ..Services::default() }).await;
    let token = s.owner("").await;
    let csv = "Order No.,Customer Name,Product Title,SKU,Quantity,Price,Currency\n#1,Ana,Mug,MUG-1,1,9.90,USD\n#2,Bo,Mug,MUG-1,x,9.90,USD\n";
    let (status, report) = s.call(M::POST, "/v1/commerce/dsers/orders", Some(&token), Some(json!({"csv": csv}))).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!((report["rows"].as_u64(), report["imported"].as_u64()), (Some(2), Some(1)));
    assert_eq!(report["errors"][0]["line"], 3);
    let (_, again) = s.call(M::POST, "/v1/commerce/dsers/orders", Some(&token), Some(json!({"csv": csv}))).await;
    assert_eq!((again["imported"].as_u64(), again["already_imported"].as_u64()), (Some(0), Some(1)));
    for (body, want) in [
        (json!({"csv": "Name,Price\nMug,1\n"}), 400),
        (json!({"csv": 7}), 422),
        (json!({"csv": csv, "extra": 1}), 422),
        (json!({}), 422),
        (json!({"csv": "x".repeat(2_000_000)}), 413),
    ] {
        let (status, e) = s.call(M::POST, "/v1/commerce/dsers/orders", Some(&token), Some(body)).await;
        assert_eq!(status, want, "{e}");
    }
    let (status, _) = s.call(M::POST, "/v1/commerce/dsers/orders", None, Some(json!({"csv": csv}))).await;
    assert_eq!(status, 401);
    assert_eq!(s.count("SELECT count(*) FROM commerce.orders").await, 1);
}
