//! Billing routes through the gateway, with auth and subscriptions running.

use std::time::Duration;

use serde_json::{Value, json};

use crate::auth::{email, stack_with};
use crate::support::{client, json as read};

#[tokio::test]
async fn a_new_account_sees_its_free_plan_credits_and_usage() {
    let s = stack_with(1000, true).await;
    let signed = s.sign_up(&email("bill")).await;
    let token = format!("Bearer {}", signed["access_token"].as_str().unwrap());

    // Provisioned from the sign-up event (or on first use): FREE with 50 credits.
    let mut balance = Value::Null;
    for _ in 0..100 {
        let (status, body) = s.get("/v1/credits/balance", &[("authorization", &token)]).await;
        if status == 200 {
            balance = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(balance["available"], 50, "{balance}");
    let (status, sub) = s.get("/v1/billing/subscription", &[("authorization", &token)]).await;
    assert_eq!(status, 200);
    assert_eq!(sub["plan_code"], "free");
    assert_eq!(sub["access"], true);
    let (_, usage) = s.get("/v1/billing/usage", &[("authorization", &token)]).await;
    let videos = usage["features"].as_array().unwrap().iter().find(|f| f["feature"] == "videos_per_month").unwrap();
    assert_eq!((videos["used"].as_i64(), videos["limit"].as_i64()), (Some(0), Some(2)));
    let (_, ledger) = s.get("/v1/credits/ledger?limit=10", &[("authorization", &token)]).await;
    assert_eq!(ledger["items"][0]["kind"], "grant");
    assert_eq!(ledger["items"][0]["amount"], 50);

    // Plans in the caller's language and currency; bad input is a localized 400.
    let (status, plans) = s.get("/v1/plans?currency=ILS", &[("accept-language", "he")]).await;
    assert_eq!(status, 200);
    let pro = plans["items"].as_array().unwrap().iter().find(|p| p["code"] == "pro").unwrap();
    assert_eq!(pro["price"]["currency"], "ILS");
    assert!(pro["description"].as_str().unwrap().contains("קרדיטים"), "{pro}");
    let (status, bad) = s.get("/v1/plans?currency=DOGE", &[("accept-language", "es")]).await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["code"], "money.unsupported_currency");
    let (status, bad) = s.get("/v1/credits/ledger?limit=500", &[("authorization", &token)]).await;
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("request.invalid_page_size")));
    let (status, bad) = s.get("/v1/credits/ledger?cursor=%%%", &[("authorization", &token)]).await;
    assert_eq!(status, 400, "{bad}");
    let (status, _) = s.get("/v1/credits/balance", &[]).await;
    assert_eq!(status, 401);
    let (status, notices) = s.get("/v1/billing/notices", &[("authorization", &token)]).await;
    assert_eq!((status, notices["items"].as_array().map(Vec::len)), (200, Some(0)), "{notices}");
}

#[tokio::test]
async fn checkout_plan_changes_and_invoices_through_the_gateway_with_local_billing() {
    let s = stack_with(1000, true).await;
    let signed = s.sign_up(&email("pay")).await;
    let token = signed["access_token"].as_str().unwrap().to_owned();

    let (status, packs) = s.get("/v1/credits/packs?currency=EUR", &[("accept-language", "pt")]).await;
    assert_eq!(status, 200);
    assert_eq!(packs["items"][0]["price"]["currency"], "EUR");
    assert!(packs["items"][0]["name"].as_str().unwrap().contains("créditos"), "{packs}");

    // Bad input: a clear 4xx, nothing created.
    for (body, status, code) in [
        (json!({"plan": "pro", "credits_pack": "credits_100"}), 400, "subscriptions.invalid_checkout_kind"),
        (json!({}), 400, "subscriptions.invalid_checkout_kind"),
        (json!({"plan": 5}), 422, "request.invalid_body"),
        (json!({"plan": "pro", "coupon": "FREE"}), 422, "request.invalid_body"),
        (json!({"plan": "gold"}), 400, "subscriptions.unknown_plan"),
        (json!({"plan": "pro", "success_url": "ftp://x"}), 400, "subscriptions.invalid_url"),
    ] {
        let (got, err) = s.post("/v1/billing/checkout", Some(&token), body.clone()).await;
        assert_eq!((got, err["error"]["code"].as_str().unwrap_or("")), (status, code), "{body} → {err}");
    }
    let (status, _) = s.post("/v1/billing/checkout", None, json!({"plan": "pro"})).await;
    assert_eq!(status, 401);

    let http = client();
    let start = |key: &str| {
        http.post(format!("{}/v1/billing/checkout", s.base))
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .json(&json!({"plan": "pro"}))
            .send()
    };
    let (status, _, first) = read(start("buy-pro").await.unwrap()).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!((first["provider"].as_str(), first["status"].as_str()), (Some("local"), Some("open")));
    assert!(first.get("url").is_none_or(Value::is_null));
    let (_, _, again) = read(start("buy-pro").await.unwrap()).await;
    assert_eq!(again["id"], first["id"]);
    let id = first["id"].as_str().unwrap();

    let (status, err) = s.post("/v1/billing/checkout/lcs_nope/complete", Some(&token), json!({})).await;
    assert_eq!((status, err["error"]["code"].as_str()), (404, Some("subscriptions.checkout_not_found")));
    let (status, done) = s.post(&format!("/v1/billing/checkout/{id}/complete"), Some(&token), json!({})).await;
    assert_eq!((status, done["status"].as_str()), (200, Some("complete")), "{done}");
    let auth = format!("Bearer {token}");
    let (_, sub) = s.get("/v1/billing/subscription", &[("authorization", &auth)]).await;
    assert_eq!((sub["plan_code"].as_str(), sub["billing"].as_str()), (Some("pro"), Some("local")));
    let (_, invoices) = s.get("/v1/billing/invoices?limit=5", &[("authorization", &auth)]).await;
    assert_eq!(invoices["items"][0]["amount_paid"]["amount_minor"], 9700, "{invoices}");

    for (body, status, code) in [
        (json!({"plan": "gold"}), 400, "subscriptions.unknown_plan"),
        (json!({"plan": 3}), 422, "request.invalid_body"),
        (json!({}), 422, "request.invalid_body"),
    ] {
        let (got, err) = s.post("/v1/billing/subscription/plan", Some(&token), body.clone()).await;
        assert_eq!((got, err["error"]["code"].as_str().unwrap_or("")), (status, code), "{body} → {err}");
    }
    let (status, bad) = s.get("/v1/billing/invoices?limit=500", &[("authorization", &auth)]).await;
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("request.invalid_page_size")));
    let (status, _) =
        s.post("/v1/billing/subscription/plan", Some("forged.token.value"), json!({"plan": "premium"})).await;
    assert_eq!(status, 401);
    let (status, sub) = s.post("/v1/billing/subscription/plan", Some(&token), json!({"plan": "premium"})).await;
    assert_eq!((status, sub["plan_code"].as_str()), (200, Some("premium")), "{sub}");
    let (_, sub) = s.post("/v1/billing/subscription/cancel", Some(&token), json!({})).await;
    assert_eq!(sub["cancel_at_period_end"], true);
    let (_, sub) = s.post("/v1/billing/subscription/resume", Some(&token), json!({})).await;
    assert_eq!(sub["cancel_at_period_end"], false);

    // No portal without online payments: a 409 in the user's language.
    let resp = http
        .post(format!("{}/v1/billing/portal", s.base))
        .bearer_auth(&token)
        .header("accept-language", "es")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (status, _, err) = read(resp).await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("subscriptions.portal_unavailable")));
    // The user's saved language (en at sign-up) wins over Accept-Language.
    assert!(err["error"]["message"].as_str().unwrap().contains("billing portal"), "{err}");

    // Stripe webhooks reach the service raw; without a valid signature nothing happens.
    let resp = http
        .post(format!("{}/webhooks/stripe", s.base))
        .header("stripe-signature", "t=1,v1=deadbeef")
        .header("content-type", "application/json")
        .body(r#"{"id":"evt_1","type":"checkout.session.completed","data":{"object":{}}}"#)
        .send()
        .await
        .unwrap();
    let (status, _, err) = read(resp).await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("webhooks.invalid_signature")), "{err}");
}
