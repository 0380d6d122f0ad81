//! TikTok campaigns against the fake TikTok API for Business, mirroring the Meta tests: a build
//! creates campaign, ad group and ad disabled, once; a refused ad step deletes what was created;
//! an interrupted build retried with the same key creates nothing twice; invalid requests never
//! reach TikTok; budget changes held to the guards; pause and resume; 28 days of the integrated
//! report stored to the cent (a throttled page retried, the sync finishing); custom audiences
//! carrying only SHA-256 hashes.

use std::time::Duration;

use nexus_proto::nexus::ads::v1 as pb;
use sha2::{Digest, Sha256};

use crate::support::{Caller, Service, cents, code};

const KINDS: [&str; 3] = ["campaign", "adgroup", "ad"];

/// A TikTok connection with the USD advertiser chosen; its id.
pub(crate) async fn tiktok_account(s: &Service, admin: &Caller) -> String {
    let started = s.begin(admin, "tiktok").await;
    let c = s.complete(admin, "tiktok", nexus_testkit::tiktok::TEST_AUTH_CODE, &started.state).await.unwrap();
    let req = pb::ChooseAccountsRequest { id: c.id.clone(), external_ids: vec!["7002".into()] };
    s.client().await.choose_accounts(admin.req(req)).await.unwrap();
    c.id
}

pub(crate) fn request(connection: &str, key: &str) -> pb::BuildAdCampaignRequest {
    pb::BuildAdCampaignRequest {
        request_key: key.into(),
        connection_id: connection.into(),
        ad_account: "7002".into(),
        name: "Summer drop".into(),
        objective: "TRAFFIC".into(),
        optimization_goal: "CLICK".into(),
        daily_budget: 2500,
        countries: vec!["US".into()],
        age_min: 25,
        age_max: 44,
        page_id: "identity-77".into(),
        link: "https://shop.example.com/summer".into(),
        primary_text: "New summer colours".into(),
        image_url: "https://cdn.example.com/summer.jpg".into(),
        ..Default::default()
    }
}

fn counts(s: &Service) -> Vec<u32> {
    KINDS.iter().map(|k| s.tiktok.created(k)).collect()
}

fn live(s: &Service) -> Vec<usize> {
    KINDS.iter().map(|k| s.tiktok.live(k).len()).collect()
}

async fn build(s: &Service, admin: &Caller, req: pb::BuildAdCampaignRequest) -> Result<pb::AdBuild, tonic::Status> {
    s.client().await.build_ad_campaign(admin.req(req)).await.map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_tiktok_build_creates_campaign_ad_group_and_ad_disabled_once() {
    let s = Service::start().await;
    let admin = s.admin();
    let conn = tiktok_account(&s, &admin).await;
    let b = build(&s, &admin, request(&conn, "t-1")).await.unwrap();
    assert_eq!((b.status.as_str(), b.provider.as_str(), b.currency.as_str()), ("built", "tiktok", "USD"));
    let steps: Vec<(&str, &str)> = b.steps.iter().map(|s| (s.step.as_str(), s.status.as_str())).collect();
    assert_eq!(steps, [("campaign", "created"), ("adgroup", "created"), ("ad", "created")]);
    assert_eq!(counts(&s), [1, 1, 1]);
    for kind in KINDS {
        assert_eq!(s.tiktok.live(kind)[0].fields["operation_status"], "DISABLE", "{kind}");
    }
    let group = &s.tiktok.live("adgroup")[0];
    // 2500 minor units are 25.00 in TikTok's main unit.
    assert_eq!(group.fields["budget"].as_f64(), Some(25.0));
    assert_eq!(group.fields["campaign_id"], b.steps[0].platform_id);
    assert_eq!(group.fields["billing_event"], "CPC");
    assert_eq!(group.fields["age_groups"], serde_json::json!(["AGE_25_34", "AGE_35_44"]));
    let ad = &s.tiktok.live("ad")[0];
    assert_eq!(ad.fields["adgroup_id"], b.steps[1].platform_id);
    assert_eq!(ad.fields["creatives"][0]["identity_id"], "identity-77");
    assert_eq!(s.events("nexus.ads.campaign.created").await, 1);

    let again = build(&s, &admin, request(&conn, "t-1")).await.unwrap();
    assert_eq!(again.id, b.id);
    assert_eq!(counts(&s), [1, 1, 1]);
}

#[tokio::test]
async fn a_refused_tiktok_ad_step_deletes_the_ad_group_and_campaign() {
    let s = Service::start().await;
    let admin = s.admin();
    let conn = tiktok_account(&s, &admin).await;
    s.tiktok.fail_create("ad");
    let e = build(&s, &admin, request(&conn, "t-fail")).await.unwrap_err();
    assert_eq!((e.code(), code(&e)), (tonic::Code::FailedPrecondition, "ads.build_failed".to_owned()));
    assert_eq!(counts(&s), [1, 1, 0]);
    assert_eq!(live(&s), [0, 0, 0], "the fake ends with none");
    assert_eq!(s.events("nexus.ads.campaign.failed").await, 1);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.ad_build_steps WHERE status = 'deleted'").await, 2);
    let b = build(&s, &admin, request(&conn, "t-fail")).await.unwrap();
    assert_eq!((b.status.as_str(), b.error.as_str()), ("failed", "ads.build_failed"));
    assert_eq!(counts(&s), [1, 1, 0]);
}

#[tokio::test]
async fn a_tiktok_build_killed_mid_step_and_retried_creates_nothing_twice() {
    let s = Service::start().await;
    let admin = s.admin();
    let conn = tiktok_account(&s, &admin).await;
    s.tiktok.delay_answer("adgroup", Duration::from_secs(30));
    let r = request(&conn, "t-kill");
    let req = crate::support::in_process(&r);
    s.build_killed_at(&admin, req, "adgroup", || s.tiktok.created("adgroup") == 1).await;
    s.tiktok.delay_answer("none", Duration::ZERO);
    let b = build(&s, &admin, request(&conn, "t-kill")).await.unwrap();
    assert_eq!(b.status, "built");
    assert_eq!(counts(&s), [1, 1, 1]);
    assert_eq!(live(&s), [1, 1, 1]);
    assert_eq!(b.steps[1].platform_id, s.tiktok.live("adgroup")[0].id);
}

#[tokio::test]
async fn a_lost_tiktok_answer_is_looked_up_on_retry() {
    let s = Service::start().await;
    let admin = s.admin();
    let conn = tiktok_account(&s, &admin).await;
    s.tiktok.lose_answer("ad");
    let e = build(&s, &admin, request(&conn, "t-lost")).await.unwrap_err();
    assert_eq!((e.code(), code(&e)), (tonic::Code::Unavailable, "ads.platform_unavailable".to_owned()));
    assert_eq!(live(&s), [1, 1, 1], "nothing rolled back: the outcome was unknown");
    let b = build(&s, &admin, request(&conn, "t-lost")).await.unwrap();
    assert_eq!(b.status, "built");
    assert_eq!(counts(&s), [1, 1, 1]);
    assert_eq!(b.steps[2].platform_id, s.tiktok.live("ad")[0].id);
}

#[tokio::test]
async fn invalid_tiktok_builds_never_reach_tiktok() {
    let s = Service::start().await;
    let admin = s.admin();
    let conn = tiktok_account(&s, &admin).await;
    let before = s.tiktok.log().len();
    let cases: Vec<(pb::BuildAdCampaignRequest, &str)> = vec![
        // 15.00 USD would do at Meta; TikTok's minimum is 20.00.
        (pb::BuildAdCampaignRequest { daily_budget: 1500, ..request(&conn, "a") }, "ads.budget_below_minimum"),
        (
            pb::BuildAdCampaignRequest { subject: "employment".into(), ..request(&conn, "b") },
            "ads.special_category_required",
        ),
        (
            pb::BuildAdCampaignRequest { optimization_goal: "INSTALL".into(), ..request(&conn, "c") },
            "ads.optimization_incompatible",
        ),
        (
            pb::BuildAdCampaignRequest { objective: "OUTCOME_TRAFFIC".into(), ..request(&conn, "d") },
            "ads.build_invalid",
        ),
        (pb::BuildAdCampaignRequest { image_url: String::new(), ..request(&conn, "e") }, "ads.build_invalid"),
        (pb::BuildAdCampaignRequest { primary_text: "x".repeat(101), ..request(&conn, "f") }, "ads.text_too_long"),
        (pb::BuildAdCampaignRequest { ad_account: "7001".into(), ..request(&conn, "g") }, "ads.account_unknown"),
    ];
    for (bad, want) in cases {
        let e = build(&s, &admin, bad).await.unwrap_err();
        assert_eq!((e.code(), code(&e)), (tonic::Code::InvalidArgument, want.to_owned()));
    }
    assert_eq!(s.tiktok.log().len(), before, "{:?}", &s.tiktok.log()[before..]);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.ad_builds").await, 0);
    let ok = pb::BuildAdCampaignRequest {
        subject: "employment".into(),
        special_ad_categories: vec!["EMPLOYMENT".into()],
        ..request(&conn, "h")
    };
    assert_eq!(build(&s, &admin, ok).await.unwrap().status, "built");
    assert_eq!(s.tiktok.live("campaign")[0].fields["special_industries"], serde_json::json!(["EMPLOYMENT"]));
}

#[tokio::test]
async fn tiktok_budgets_are_held_to_the_guards_and_delivery_reaches_tiktok() {
    let s = Service::start().await;
    let admin = s.admin();
    let conn = tiktok_account(&s, &admin).await;
    let b = build(&s, &admin, request(&conn, "t-m")).await.unwrap();
    let mut client = s.client().await;
    let budget = |d: i64| pb::UpdateAdBudgetRequest { id: b.id.clone(), daily_budget: d };
    let e = client.update_ad_budget(admin.req(budget(3751))).await.unwrap_err();
    assert_eq!(code(&e), "ads.budget_increase_too_large");
    assert_eq!(s.tiktok.live("adgroup")[0].fields["budget"].as_f64(), Some(25.0), "nothing reached TikTok");
    let raised = client.update_ad_budget(admin.req(budget(3750))).await.unwrap().into_inner();
    assert_eq!(raised.daily_budget, 3750);
    assert_eq!(s.tiktok.live("adgroup")[0].fields["budget"].as_f64(), Some(37.5));
    // Under TikTok's minimum (20.00), though fine at Meta.
    let e = client.update_ad_budget(admin.req(budget(1500))).await.unwrap_err();
    assert_eq!(code(&e), "ads.budget_below_minimum");

    let set = |d: &str| pb::SetAdDeliveryRequest { id: b.id.clone(), delivery: d.into() };
    client.set_ad_delivery(admin.req(set("active"))).await.unwrap();
    for kind in KINDS {
        assert_eq!(s.tiktok.live(kind)[0].fields["operation_status"], "ENABLE", "{kind}");
    }
    client.set_ad_delivery(admin.req(set("paused"))).await.unwrap();
    assert_eq!(s.tiktok.live("campaign")[0].fields["operation_status"], "DISABLE");
    let archived = client.set_ad_delivery(admin.req(set("archived"))).await.unwrap().into_inner();
    assert_eq!(archived.delivery, "archived");
    assert_eq!(s.events("nexus.ads.campaign.status_changed").await, 3);
    let e = client.update_ad_budget(admin.req(budget(2600))).await.unwrap_err();
    assert_eq!(code(&e), "ads.build_not_manageable");
}

#[tokio::test]
async fn twenty_eight_days_of_the_tiktok_report_match_to_the_cent_through_throttling() {
    let s = Service::start().await;
    let admin = s.admin();
    let conn = tiktok_account(&s, &admin).await;
    let b = build(&s, &admin, request(&conn, "t-i")).await.unwrap();
    // The first report call is refused as too frequent: retried after a pause, not failed.
    s.tiktok.throttle_next(1);
    let r = s.sync(&admin, &b.id).await;
    let served = s.tiktok.report_served();
    assert_eq!(served.len(), 28, "one ad, 28 days");
    assert_eq!((r.rows, r.days), (28, 28));
    let spend: i64 = served.iter().map(|row| cents(row["metrics"]["spend"].as_str().unwrap())).sum();
    let revenue: i64 = served.iter().map(|row| cents(row["metrics"]["total_purchase_value"].as_str().unwrap())).sum();
    assert_eq!((r.spend_minor, r.revenue_minor), (spend, revenue));
    assert_eq!((r.currency.as_str(), r.time_zone.as_str()), ("USD", "UTC"));
    let report_calls: Vec<i64> =
        s.tiktok.log().iter().filter(|(p, _)| p == "/report/integrated/get/").map(|(_, c)| *c).collect();
    // Pages of 10: one throttled call, then three pages.
    assert_eq!(report_calls, [40100, 0, 0, 0]);
    let stored: i64 = s.scalar("SELECT sum(spend_minor)::bigint FROM ads.ad_insights").await;
    assert_eq!(stored, spend);
}

#[tokio::test]
async fn a_tiktok_audience_carries_only_normalized_sha256_hashes() {
    let s = Service::start().await;
    let admin = s.admin();
    let conn = tiktok_account(&s, &admin).await;
    let req = pb::CreateAudienceRequest {
        connection_id: conn,
        ad_account: "7002".into(),
        name: "Repeat buyers".into(),
        emails: vec![" Ana.Perez@Example.com".into(), "luis@example.org".into(), "bad".into()],
        phones: vec!["+52 1 55 1234 5678".into()],
        ..Default::default()
    };
    let a = s.client().await.create_audience(admin.req(req)).await.unwrap().into_inner();
    assert_eq!((a.members, a.dropped), (3, 1));
    let sha = |v: &str| hex::encode(Sha256::digest(v.as_bytes()));
    let rows = s.tiktok.audience_rows();
    let mut emails: Vec<String> = rows.iter().filter(|r| r.1 == "EMAIL_SHA256").flat_map(|r| r.2.clone()).collect();
    emails.sort();
    let mut want = vec![sha("ana.perez@example.com"), sha("luis@example.org")];
    want.sort();
    assert_eq!(emails, want);
    let phones: Vec<String> = rows.iter().filter(|r| r.1 == "PHONE_SHA256").flat_map(|r| r.2.clone()).collect();
    assert_eq!(phones, [sha("5215512345678")]);
    assert!(rows.iter().all(|r| r.0 == a.platform_id));
}
