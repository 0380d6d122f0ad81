//! Ads through the gateway: a sandbox connection made over REST (start, follow the address,
//! callback), a campaign created, and bad input answered with localized 4xx envelopes.

use serde_json::json;

use crate::auth::{Services, Stack, stack_of};

/// A local sandbox connection of the workspace of `token`, made over REST: start, follow the
/// address, callback. Its accounts are `local_ig_1`, `local_page_1`, `local_adv_1` (ads only), `local_creator_1` and
/// `local_channel_1`.
pub async fn local_connection(s: &Stack, token: &str) -> serde_json::Value {
    use reqwest::Method as M;
    let redirect = "http://localhost:3000/connections/callback";
    let (status, started) = s
        .call_in(
            M::POST,
            "/v1/ads/connections/start",
            Some(token),
            "en",
            Some(json!({"provider": "local", "redirect_uri": redirect})),
        )
        .await;
    assert_eq!(status, 200, "{started}");
    let url = reqwest::Url::parse(started["authorize_url"].as_str().unwrap()).unwrap();
    let q = |k: &str| url.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned()).unwrap();
    let (status, conn) = s
        .call_in(
            M::POST,
            "/v1/ads/connections/callback",
            Some(token),
            "en",
            Some(json!({"provider": "local", "code": q("code"), "state": q("state")})),
        )
        .await;
    assert_eq!(status, 201, "{conn}");
    assert_eq!(conn["provider"], "local");
    assert!(conn["accounts"].as_array().unwrap().len() >= 4, "{conn}");
    conn
}

#[tokio::test]
async fn a_sandbox_connection_and_a_campaign_over_rest_with_localized_refusals() {
    use reqwest::Method as M;
    let s = stack_of(Services { ads: true, ..Services::default() }).await;
    let token = s.owner("en").await;
    let conn = local_connection(&s, &token).await;

    let campaign = json!({"name": "Winter", "goal": "leads", "budget_minor": 50000, "currency": "EUR"});
    let (status, c) = s.call_in(M::POST, "/v1/ads/campaigns", Some(&token), "en", Some(campaign)).await;
    assert_eq!(status, 201, "{c}");
    assert_eq!((c["budget_minor"].as_i64(), c["currency"].as_str()), (Some(50000), Some("EUR")));

    let bad = json!({"name": "x", "goal": "leads", "budget_minor": -1, "currency": "EUR"});
    let (status, es) =
        s.call_in(M::POST, "/v1/ads/campaigns", Some(&s.owner("es").await), "es", Some(bad.clone())).await;
    assert_eq!((status, es["error"]["code"].as_str()), (400, Some("ads.campaign_invalid")), "{es}");
    assert!(es["error"]["message"].as_str().unwrap().contains("no es válido"), "{es}");
    let (status, ar) = s.call_in(M::POST, "/v1/ads/campaigns", Some(&s.owner("ar").await), "ar", Some(bad)).await;
    assert_eq!(status, 400);
    assert!(ar["error"]["message"].as_str().unwrap().contains("غير صالح"), "{ar}");

    let (status, e) = s
        .call_in(
            M::POST,
            "/v1/ads/connections/start",
            Some(&token),
            "en",
            Some(json!({"provider": "myspace", "redirect_uri": "http://localhost:3000/connections/callback"})),
        )
        .await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("ads.provider_unknown")), "{e}");
    let (status, _) = s.call_in(M::GET, "/v1/ads/campaigns", None, "en", None).await;
    assert_eq!(status, 401);
    // Another workspace sees none of it.
    let other = s.owner("en").await;
    let (status, _) =
        s.call_in(M::GET, &format!("/v1/ads/campaigns/{}", c["id"].as_str().unwrap()), Some(&other), "en", None).await;
    assert_eq!(status, 404);
    let (status, _) = s
        .call_in(M::GET, &format!("/v1/ads/connections/{}", conn["id"].as_str().unwrap()), Some(&other), "en", None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(s.count("SELECT count(*) FROM ads.campaigns").await, 1);
}

#[tokio::test]
async fn sandbox_interests_are_searched_over_rest_and_bad_searches_are_refused() {
    use reqwest::Method as M;
    let s = stack_of(Services { ads: true, ..Services::default() }).await;
    let token = s.owner("en").await;
    let conn = local_connection(&s, &token).await;
    let id = conn["id"].as_str().unwrap();
    let url = |q: &str| format!("/v1/ads/interests?connection_id={id}&ad_account=act_local_1&{q}");

    let (status, found) = s.call_in(M::GET, &url("q=coffee&limit=5"), Some(&token), "en", None).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["interests"][0]["name"], "Coffee", "{found}");
    assert!(found["interests"][0]["audience_min"].as_i64().unwrap() > 0);

    let es = s.owner("es").await;
    let (status, e) = s.call_in(M::GET, &url("q=%20%20"), Some(&es), "es", None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("ads.interest_query_invalid")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("Busca intereses"), "{e}");
    let (status, e) = s.call_in(M::GET, &url("q=golf&limit=abc"), Some(&token), "en", None).await;
    assert_eq!(status, 400, "{e}");
    let (status, _) = s.call_in(M::GET, &url("q=golf"), None, "en", None).await;
    assert_eq!(status, 401);
    let (status, _) = s.call_in(M::GET, &url("q=golf"), Some(&s.owner("en").await), "en", None).await;
    assert_eq!(status, 404, "another workspace's connection");
}
