//! The ad campaign builder against the fake Meta: everything created paused and recorded; a
//! refused ad step rolls back to nothing; an interrupted build retried with the same key creates
//! nothing twice; invalid requests are refused before any request reaches the platform.

use std::time::Duration;

use nexus_proto::nexus::ads::v1 as pb;

use crate::support::{Caller, Service, code};

const EDGES: [&str; 4] = ["campaigns", "adsets", "adcreatives", "ads"];

/// A Meta connection with the USD ad account chosen; its id.
pub(crate) async fn meta_account(s: &Service, admin: &Caller) -> String {
    let started = s.begin(admin, "meta").await;
    let c = s.complete(admin, "meta", nexus_testkit::meta::TEST_CODE, &started.state).await.unwrap();
    let req = pb::ChooseAccountsRequest { id: c.id.clone(), external_ids: vec!["act_111".into(), "555".into()] };
    s.client().await.choose_accounts(admin.req(req)).await.unwrap();
    c.id
}

pub(crate) fn request(connection: &str, key: &str) -> pb::BuildAdCampaignRequest {
    pb::BuildAdCampaignRequest {
        request_key: key.into(),
        connection_id: connection.into(),
        ad_account: "act_111".into(),
        name: "Winter coats".into(),
        objective: "OUTCOME_TRAFFIC".into(),
        optimization_goal: "LINK_CLICKS".into(),
        daily_budget: 2500,
        countries: vec!["US".into(), "CA".into()],
        age_min: 25,
        age_max: 54,
        page_id: "555".into(),
        link: "https://shop.example.com/winter".into(),
        primary_text: "Warm coats, free returns".into(),
        headline: "Winter sale".into(),
        ..Default::default()
    }
}

fn counts(s: &Service) -> Vec<u32> {
    EDGES.iter().map(|e| s.meta.created(e)).collect()
}

fn live(s: &Service) -> Vec<usize> {
    EDGES.iter().map(|e| s.meta.live(e).len()).collect()
}

#[tokio::test]
async fn a_build_creates_everything_paused_once_and_records_each_step() {
    let s = Service::start().await;
    let admin = s.admin();
    let conn = meta_account(&s, &admin).await;
    let mut client = s.client().await;
    let b = client.build_ad_campaign(admin.req(request(&conn, "k-1"))).await.unwrap().into_inner();
    assert_eq!((b.status.as_str(), b.currency.as_str()), ("built", "USD"));
    let steps: Vec<(&str, &str)> = b.steps.iter().map(|s| (s.step.as_str(), s.status.as_str())).collect();
    assert_eq!(steps, [("campaign", "created"), ("adset", "created"), ("creative", "created"), ("ad", "created")]);
    assert_eq!(counts(&s), [1, 1, 1, 1]);
    for edge in ["campaigns", "adsets", "ads"] {
        assert_eq!(s.meta.live(edge)[0].fields.get("status").map(String::as_str), Some("PAUSED"), "{edge}");
    }
    let adset = &s.meta.live("adsets")[0];
    assert_eq!(adset.fields.get("daily_budget").map(String::as_str), Some("2500"));
    assert_eq!(adset.fields.get("campaign_id"), Some(&b.steps[0].platform_id));
    let targeting: serde_json::Value = serde_json::from_str(&adset.fields["targeting"]).unwrap();
    assert_eq!(targeting["geo_locations"]["countries"], serde_json::json!(["CA", "US"]));
    let ad = &s.meta.live("ads")[0];
    assert!(ad.fields["creative"].contains(&b.steps[2].platform_id));
    assert_eq!(s.events("nexus.ads.campaign.created").await, 1);

    // The same request again is the same build: nothing new at Meta.
    let again = client.build_ad_campaign(admin.req(request(&conn, "k-1"))).await.unwrap().into_inner();
    assert_eq!(again.id, b.id);
    assert_eq!(counts(&s), [1, 1, 1, 1]);
    let got = client.get_ad_build(admin.req(pb::GetByIdRequest { id: b.id.clone() })).await.unwrap().into_inner();
    assert_eq!(got.status, "built");
    let other = s.admin();
    let e = client.get_ad_build(other.req(pb::GetByIdRequest { id: b.id })).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn a_refused_ad_step_deletes_the_creative_ad_set_and_campaign_it_created() {
    let s = Service::start().await;
    let admin = s.admin();
    let conn = meta_account(&s, &admin).await;
    s.meta.fail_create("ads");
    let mut client = s.client().await;
    let e = client.build_ad_campaign(admin.req(request(&conn, "k-fail"))).await.unwrap_err();
    assert_eq!((e.code(), code(&e)), (tonic::Code::FailedPrecondition, "ads.build_failed".to_owned()));
    assert_eq!(counts(&s), [1, 1, 1, 0]);
    // The fake ends with none.
    assert_eq!(live(&s), [0, 0, 0, 0]);
    assert_eq!(s.events("nexus.ads.campaign.failed").await, 1);
    assert_eq!(s.events("nexus.ads.campaign.created").await, 0);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.ad_build_steps WHERE status = 'deleted'").await, 3);
    // Retrying the failed request reports the failure; it builds nothing.
    let b = client.build_ad_campaign(admin.req(request(&conn, "k-fail"))).await.unwrap().into_inner();
    assert_eq!((b.status.as_str(), b.error.as_str()), ("failed", "ads.build_failed"));
    assert_eq!(counts(&s), [1, 1, 1, 0]);
}

#[tokio::test]
async fn a_build_killed_mid_step_and_retried_creates_nothing_twice() {
    let s = Service::start().await;
    let admin = s.admin();
    let conn = meta_account(&s, &admin).await;
    // The ad set is created at once and answered late: the build is stopped in between, as a
    // killed process would be, after Meta created the ad set and before we learnt its id.
    s.meta.delay_answer("adsets", Duration::from_secs(30));
    let req = nexus_ads::app::builder::BuildRequest {
        request_key: "k-kill".into(),
        connection_id: conn.clone(),
        ad_account: "act_111".into(),
        campaign_id: String::new(),
        input: nexus_ads::domain::builder::BuildInput {
            name: "Winter coats".into(),
            objective: "OUTCOME_TRAFFIC".into(),
            optimization_goal: "LINK_CLICKS".into(),
            daily_budget: 2500,
            countries: vec!["US".into()],
            page_id: "555".into(),
            link: "https://shop.example.com/winter".into(),
            primary_text: "Warm coats".into(),
            ..Default::default()
        },
    };
    s.build_killed_at(&admin, req, "adset", || s.meta.created("adsets") == 1).await;

    // The retry (same key) finds the ad set by its tag instead of creating another.
    s.meta.delay_answer("none", Duration::ZERO);
    let mut client = s.client().await;
    let mut retry = request(&conn, "k-kill");
    retry.countries = vec!["US".into()];
    let b = client.build_ad_campaign(admin.req(retry)).await.unwrap().into_inner();
    assert_eq!(b.status, "built");
    assert_eq!(counts(&s), [1, 1, 1, 1]);
    assert_eq!(live(&s), [1, 1, 1, 1]);
    assert_eq!(b.steps[1].platform_id, s.meta.live("adsets")[0].id);
}

#[tokio::test]
async fn an_answer_lost_after_the_create_is_looked_up_on_retry() {
    let s = Service::start().await;
    let admin = s.admin();
    let conn = meta_account(&s, &admin).await;
    s.meta.lose_answer("adcreatives");
    let mut client = s.client().await;
    let e = client.build_ad_campaign(admin.req(request(&conn, "k-lost"))).await.unwrap_err();
    assert_eq!((e.code(), code(&e)), (tonic::Code::Unavailable, "ads.platform_unavailable".to_owned()));
    // Nothing was rolled back: the outcome was unknown.
    assert_eq!(live(&s), [1, 1, 1, 0]);
    let b = client.build_ad_campaign(admin.req(request(&conn, "k-lost"))).await.unwrap().into_inner();
    assert_eq!(b.status, "built");
    assert_eq!(counts(&s), [1, 1, 1, 1]);
}

#[tokio::test]
async fn invalid_builds_are_refused_before_any_request_reaches_meta() {
    let s = Service::start().await;
    let admin = s.admin();
    let conn = meta_account(&s, &admin).await;
    let before = s.meta.log().len();
    let mut client = s.client().await;
    let cases: Vec<(pb::BuildAdCampaignRequest, &str)> = vec![
        (pb::BuildAdCampaignRequest { daily_budget: 99, ..request(&conn, "a") }, "ads.budget_below_minimum"),
        (
            pb::BuildAdCampaignRequest { subject: "housing".into(), ..request(&conn, "b") },
            "ads.special_category_required",
        ),
        (
            pb::BuildAdCampaignRequest { optimization_goal: "APP_INSTALLS".into(), ..request(&conn, "c") },
            "ads.optimization_incompatible",
        ),
        (pb::BuildAdCampaignRequest { headline: "h".repeat(300), ..request(&conn, "d") }, "ads.text_too_long"),
        (pb::BuildAdCampaignRequest { ad_account: "act_222".into(), ..request(&conn, "e") }, "ads.account_unknown"),
        (pb::BuildAdCampaignRequest { request_key: String::new(), ..request(&conn, "f") }, "ads.request_key_invalid"),
    ];
    for (bad, want) in cases {
        let e = client.build_ad_campaign(admin.req(bad)).await.unwrap_err();
        assert_eq!((e.code(), code(&e)), (tonic::Code::InvalidArgument, want.to_owned()));
    }
    assert_eq!(s.meta.log().len(), before, "{:?}", &s.meta.log()[before..]);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.ad_builds").await, 0);
    // With the category declared, the housing ad goes through.
    let housing = pb::BuildAdCampaignRequest {
        subject: "housing".into(),
        special_ad_categories: vec!["HOUSING".into()],
        ..request(&conn, "g")
    };
    let b = client.build_ad_campaign(admin.req(housing)).await.unwrap().into_inner();
    assert_eq!(b.status, "built");
    assert!(s.meta.live("campaigns")[0].fields["special_ad_categories"].contains("HOUSING"));

    // The refusals read in Spanish and Arabic.
    use nexus_kernel::Locale;
    let params = vec![("minimum".to_owned(), "1.00".to_owned()), ("currency".to_owned(), "USD".to_owned())];
    let es = nexus_i18n::error_message(Locale::Es, "ads.budget_below_minimum", &params, 400);
    assert!(es.contains("al menos 1.00 USD"), "{es}");
    let cat = vec![("category".to_owned(), "HOUSING".to_owned())];
    let ar = nexus_i18n::error_message(Locale::Ar, "ads.special_category_required", &cat, 400);
    assert!(ar.contains("HOUSING") && ar.contains("فئة"), "{ar}");
}
