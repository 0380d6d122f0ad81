//! Billing routes through the gateway, with auth and subscriptions running.

use std::time::Duration;

use serde_json::Value;

use crate::auth::{email, stack_with};

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
}
