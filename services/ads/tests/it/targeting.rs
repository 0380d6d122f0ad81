//! Interests for ad targeting: searched on the ad account's platform (Meta's targeting search,
//! TikTok's interest categories, the sandbox's own list) and sent with the ad set or ad group.

use nexus_proto::nexus::ads::v1 as pb;

use crate::support::{Caller, Service, code, traffic_build};

async fn search(
    s: &Service,
    c: &Caller,
    conn: &str,
    account: &str,
    q: &str,
) -> Result<Vec<pb::Interest>, tonic::Status> {
    let req = pb::SearchInterestsRequest {
        connection_id: conn.into(),
        ad_account: account.into(),
        query: q.into(),
        limit: 0,
    };
    s.client().await.search_interests(c.req(req)).await.map(|r| r.into_inner().interests)
}

fn names(found: &[pb::Interest]) -> Vec<&str> {
    found.iter().map(|i| i.name.as_str()).collect()
}

#[tokio::test]
async fn meta_interests_are_searched_and_reach_the_ad_sets_targeting() {
    let s = Service::start().await;
    let admin = s.admin();
    let started = s.begin(&admin, "meta").await;
    let c = s.complete(&admin, "meta", nexus_testkit::meta::TEST_CODE, &started.state).await.unwrap();
    let req = pb::ChooseAccountsRequest { id: c.id.clone(), external_ids: vec!["act_111".into(), "555".into()] };
    s.client().await.choose_accounts(admin.req(req)).await.unwrap();

    let found = search(&s, &admin, &c.id, "act_111", "bak").await.unwrap();
    assert_eq!(names(&found), ["Baking", "Bakeries"]);
    assert_eq!(found[0].id, "6003384248805");
    assert_eq!(found[0].path, ["Interests", "Food and drink", "Cooking"]);
    assert!(found[0].audience_min > 0 && found[0].audience_max > found[0].audience_min);

    let build = pb::BuildAdCampaignRequest {
        interests: found.iter().map(|i| i.id.clone()).collect(),
        ..traffic_build(&c.id, "act_111", "555", "interests")
    };
    s.client().await.build_ad_campaign(admin.req(build.clone())).await.unwrap();
    let adset = s.meta.live("adsets").remove(0);
    let targeting: serde_json::Value = serde_json::from_str(&adset.fields["targeting"]).unwrap();
    assert_eq!(
        targeting["flexible_spec"],
        serde_json::json!([{"interests": [{"id": "6003020834693"}, {"id": "6003384248805"}]}]),
        "{targeting}"
    );

    // Refused before any call: an id that is not one, too many, a bad search, another account.
    let before = s.meta.created("adsets");
    for bad in [vec!["golf".to_owned()], (0..26).map(|i| i.to_string()).collect()] {
        let req =
            pb::BuildAdCampaignRequest { request_key: format!("bad-{}", bad.len()), interests: bad, ..build.clone() };
        let e = s.client().await.build_ad_campaign(admin.req(req)).await.unwrap_err();
        assert_eq!(code(&e), "ads.build_invalid", "{e:?}");
    }
    assert_eq!(s.meta.created("adsets"), before);
    for q in ["", "   ", &"x".repeat(101)] {
        assert_eq!(code(&search(&s, &admin, &c.id, "act_111", q).await.unwrap_err()), "ads.interest_query_invalid");
    }
    assert_eq!(code(&search(&s, &admin, &c.id, "act_999", "golf").await.unwrap_err()), "ads.account_unknown");
    // Another workspace cannot search through this connection.
    let other = s.admin();
    assert_eq!(code(&search(&s, &other, &c.id, "act_111", "golf").await.unwrap_err()), "ads.connection_not_found");
}

#[tokio::test]
async fn tiktok_and_sandbox_interests_are_found_by_name() {
    let s = Service::start().await;
    let admin = s.admin();
    let started = s.begin(&admin, "tiktok").await;
    let t = s.complete(&admin, "tiktok", nexus_testkit::tiktok::TEST_AUTH_CODE, &started.state).await.unwrap();
    let found = search(&s, &admin, &t.id, "7002", "BAKING").await.unwrap();
    assert_eq!((names(&found), found[0].id.as_str()), (vec!["Baking & Desserts"], "12000"));

    let local = s.connect_local(&admin).await;
    let found = search(&s, &admin, &local.id, "act_local_1", "co").await.unwrap();
    assert_eq!(names(&found), ["Coffee"]);
    assert!(search(&s, &admin, &local.id, "act_local_1", "zzz").await.unwrap().is_empty());
}
