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

#[tokio::test]
async fn an_audience_from_a_contact_segment_over_rest_listed_read_and_deleted() {
    use reqwest::Method as M;
    let s = stack_of(Services { ads: true, messaging: true, ..Services::default() }).await;
    let token = s.owner("en").await;
    let conn = local_connection(&s, &token).await;
    let conn_id = conn["id"].as_str().unwrap();
    // Two VIPs with marketing consent, one without, one who withdrew it.
    for (i, status) in [(0, Some("granted")), (1, Some("granted")), (2, None), (3, Some("withdrawn"))] {
        let c = json!({"name": format!("Vip {i}"), "email": format!("vip{i}@example.com"), "tags": ["vip"]});
        let (st, c) = s.call_in(M::POST, "/v1/contacts", Some(&token), "en", Some(c)).await;
        assert_eq!(st, 201, "{c}");
        if let Some(status) = status {
            let consent = json!({"channel": "email", "purpose": "marketing", "status": status, "source": "form"});
            let path = format!("/v1/contacts/{}/consents", c["id"].as_str().unwrap());
            let (st, body) = s.call_in(M::PUT, &path, Some(&token), "en", Some(consent)).await;
            assert_eq!(st, 200, "{body}");
        }
    }
    let seg = json!({"name": "VIPs", "filter": {"tag": "vip"}});
    let (st, seg) = s.call_in(M::POST, "/v1/segments", Some(&token), "en", Some(seg)).await;
    assert_eq!(st, 201, "{seg}");
    let req = json!({"connection_id": conn_id, "ad_account": "act_local_1", "name": "VIPs", "segment_id": seg["id"]});
    let (st, a) = s.call_in(M::POST, "/v1/ads/audiences", Some(&token), "en", Some(req.clone())).await;
    assert_eq!(st, 201, "{a}");
    assert_eq!((a["members"].as_i64(), a["excluded"].as_i64()), (Some(2), Some(2)), "{a}");
    assert_eq!((a["segment_id"].clone(), a["refresh_status"].as_str()), (seg["id"].clone(), Some("ready")));
    let id = a["id"].as_str().unwrap();

    let (st, list) = s.call_in(M::GET, "/v1/ads/audiences?page_size=10", Some(&token), "en", None).await;
    assert_eq!(st, 200, "{list}");
    assert_eq!(list["items"][0]["id"], a["id"]);
    let (st, got) = s.call_in(M::GET, &format!("/v1/ads/audiences/{id}"), Some(&token), "en", None).await;
    assert_eq!((st, got["members"].as_i64()), (200, Some(2)), "{got}");

    // A segment and members at once: refused, localized.
    let mut both = req.clone();
    both["emails"] = json!(["ana@example.com"]);
    // (Checked before the connection is looked up, so callers of other workspaces, speaking
    // Spanish and Arabic, are told the same.)
    let (st, e) = s.call_in(M::POST, "/v1/ads/audiences", Some(&s.owner("es").await), "es", Some(both.clone())).await;
    assert_eq!((st, e["error"]["code"].as_str()), (400, Some("ads.audience_invalid")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("no es válido"), "{e}");
    let (st, e) = s.call_in(M::POST, "/v1/ads/audiences", Some(&s.owner("ar").await), "ar", Some(both)).await;
    assert_eq!(st, 400);
    assert!(e["error"]["message"].as_str().unwrap().contains("غير صالح"), "{e}");

    // Another workspace's caller: not found, localized, and nothing deleted.
    let es = s.owner("es").await;
    let (st, e) = s.call_in(M::GET, &format!("/v1/ads/audiences/{id}"), Some(&es), "es", None).await;
    assert_eq!((st, e["error"]["code"].as_str()), (404, Some("ads.audience_not_found")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("no existe"), "{e}");
    let (st, _) = s.call_in(M::DELETE, &format!("/v1/ads/audiences/{id}"), Some(&es), "es", None).await;
    assert_eq!(st, 404);
    let (st, _) = s.call_in(M::GET, &format!("/v1/ads/audiences/{id}"), Some(&token), "en", None).await;
    assert_eq!(st, 200);

    // Refreshed now (the sandbox replaces nothing but counts again).
    let (st, r) = s.call_in(M::POST, &format!("/v1/ads/audiences/{id}/refresh"), Some(&token), "en", None).await;
    assert_eq!((st, r["members"].as_i64(), r["refresh_status"].as_str()), (200, Some(2), Some("ready")), "{r}");
    let (st, _) = s.call_in(M::POST, &format!("/v1/ads/audiences/{id}/refresh"), Some(&es), "es", None).await;
    assert_eq!(st, 404);

    // Lookalikes: bad ratio and country refused before anything is looked up, localized; a good
    // one made in the sandbox.
    let path = format!("/v1/ads/audiences/{id}/lookalikes");
    let (st, e) =
        s.call_in(M::POST, &path, Some(&es), "es", Some(json!({"countries": ["US"], "ratio_percent": 11}))).await;
    assert_eq!((st, e["error"]["code"].as_str()), (400, Some("ads.lookalike_ratio_invalid")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("de cada país"), "{e}");
    let (st, e) = s
        .call_in(
            M::POST,
            &path,
            Some(&s.owner("ar").await),
            "ar",
            Some(json!({"countries": ["XX"], "ratio_percent": 2})),
        )
        .await;
    assert_eq!((st, e["error"]["code"].as_str()), (400, Some("ads.lookalike_country_unknown")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("ليس رمز بلد"), "{e}");
    let (st, e) =
        s.call_in(M::POST, &path, Some(&es), "es", Some(json!({"countries": ["US"], "ratio_percent": 2}))).await;
    assert_eq!(st, 404, "{e}");
    let (st, lk) = s
        .call_in(M::POST, &path, Some(&token), "en", Some(json!({"countries": ["us", "MX"], "ratio_percent": 2})))
        .await;
    assert_eq!(st, 201, "{lk}");
    assert_eq!(
        (lk["kind"].as_str(), lk["origin_id"].clone(), lk["countries"].clone()),
        (Some("lookalike"), a["id"].clone(), json!(["MX", "US"]))
    );

    let (st, _) = s.call_in(M::DELETE, &format!("/v1/ads/audiences/{id}"), Some(&token), "en", None).await;
    assert_eq!(st, 204);
    let (st, e) = s.call_in(M::GET, &format!("/v1/ads/audiences/{id}"), Some(&token), "ar", None).await;
    assert_eq!((st, e["error"]["code"].as_str()), (404, Some("ads.audience_not_found")), "{e}");
}
