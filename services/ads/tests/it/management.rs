//! Managing a built campaign at the fake Meta: budget raises held to the guards, pause, resume,
//! archive, and the workspace's daily cap at build time.

use nexus_proto::nexus::ads::v1 as pb;

use crate::support::{Caller, Service, code};

async fn built(s: &Service, admin: &Caller, key: &str, budget: i64) -> pb::AdBuild {
    let started = s.begin(admin, "meta").await;
    let c = s.complete(admin, "meta", nexus_testkit::meta::TEST_CODE, &started.state).await.unwrap();
    let req = pb::ChooseAccountsRequest { id: c.id.clone(), external_ids: vec!["act_111".into()] };
    s.client().await.choose_accounts(admin.req(req)).await.unwrap();
    let req = pb::BuildAdCampaignRequest {
        request_key: key.into(),
        connection_id: c.id,
        ad_account: "act_111".into(),
        name: "Winter coats".into(),
        objective: "OUTCOME_TRAFFIC".into(),
        optimization_goal: "LINK_CLICKS".into(),
        daily_budget: budget,
        countries: vec!["US".into()],
        page_id: "555".into(),
        link: "https://shop.example.com/winter".into(),
        primary_text: "Warm coats".into(),
        ..Default::default()
    };
    s.client().await.build_ad_campaign(admin.req(req)).await.unwrap().into_inner()
}

fn budget(id: &str, daily: i64) -> pb::UpdateAdBudgetRequest {
    pb::UpdateAdBudgetRequest { id: id.into(), daily_budget: daily }
}

#[tokio::test]
async fn a_raise_beyond_the_guard_is_refused_and_one_within_it_applied() {
    // Defaults: at most +50 % per change, +100 % per day.
    let s = Service::start().await;
    let admin = s.admin();
    let b = built(&s, &admin, "k", 2000).await;
    assert_eq!((b.daily_budget, b.delivery.as_str()), (2000, "paused"));
    let mut client = s.client().await;
    let e = client.update_ad_budget(admin.req(budget(&b.id, 3001))).await.unwrap_err();
    assert_eq!((e.code(), code(&e)), (tonic::Code::InvalidArgument, "ads.budget_increase_too_large".to_owned()));
    let adset = s.meta.live("adsets")[0].clone();
    assert_eq!(adset.fields["daily_budget"], "2000");
    assert!(s.meta.updates().is_empty(), "nothing reached Meta");

    let raised = client.update_ad_budget(admin.req(budget(&b.id, 3000))).await.unwrap().into_inner();
    assert_eq!(raised.daily_budget, 3000);
    assert_eq!(s.meta.live("adsets")[0].fields["daily_budget"], "3000");
    // +50 % again the same day would be +125 % since the day began: refused.
    let e = client.update_ad_budget(admin.req(budget(&b.id, 4500))).await.unwrap_err();
    assert_eq!(code(&e), "ads.budget_daily_increase_exceeded");
    let ok = client.update_ad_budget(admin.req(budget(&b.id, 4000))).await.unwrap().into_inner();
    assert_eq!(ok.daily_budget, 4000);
    // Lowering is always allowed.
    let lower = client.update_ad_budget(admin.req(budget(&b.id, 1000))).await.unwrap().into_inner();
    assert_eq!(lower.daily_budget, 1000);
    assert_eq!(s.meta.live("adsets")[0].fields["daily_budget"], "1000");
    // Another workspace cannot touch it.
    let other = s.admin();
    let e = client.update_ad_budget(other.req(budget(&b.id, 1100))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn pause_resume_and_archive_reach_meta_with_one_event_each() {
    let s = Service::start().await;
    let admin = s.admin();
    let b = built(&s, &admin, "k", 2000).await;
    let mut client = s.client().await;
    let set = |d: &str| pb::SetAdDeliveryRequest { id: b.id.clone(), delivery: d.into() };
    let active = client.set_ad_delivery(admin.req(set("active"))).await.unwrap().into_inner();
    assert_eq!(active.delivery, "active");
    for edge in ["campaigns", "adsets", "ads"] {
        assert_eq!(s.meta.live(edge)[0].fields["status"], "ACTIVE", "{edge}");
    }
    client.set_ad_delivery(admin.req(set("paused"))).await.unwrap();
    assert_eq!(s.meta.live("campaigns")[0].fields["status"], "PAUSED");
    let e = client.set_ad_delivery(admin.req(set("deleted"))).await.unwrap_err();
    assert_eq!(code(&e), "ads.delivery_invalid");
    client.set_ad_delivery(admin.req(set("archived"))).await.unwrap();
    assert_eq!(s.meta.live("campaigns")[0].fields["status"], "ARCHIVED");
    assert_eq!(s.events("nexus.ads.campaign.status_changed").await, 3);
    // Archived is final.
    let e = client.update_ad_budget(admin.req(budget(&b.id, 2100))).await.unwrap_err();
    assert_eq!(code(&e), "ads.build_not_manageable");
}

#[tokio::test]
async fn the_workspace_daily_cap_holds_at_build_time_and_on_raises() {
    let s = Service::start_with(&[("NEXUS_BUDGET__WORKSPACE_DAILY_CAP_MINOR", "5000".into())]).await;
    let admin = s.admin();
    let first = built(&s, &admin, "k1", 3000).await;
    assert_eq!(first.status, "built");
    let started = s.begin(&admin, "meta").await;
    let c = s.complete(&admin, "meta", nexus_testkit::meta::TEST_CODE, &started.state).await.unwrap();
    let before = s.meta.created("campaigns");
    let req = pb::BuildAdCampaignRequest {
        request_key: "k2".into(),
        connection_id: c.id,
        ad_account: "act_111".into(),
        name: "Second".into(),
        objective: "OUTCOME_TRAFFIC".into(),
        optimization_goal: "LINK_CLICKS".into(),
        daily_budget: 2500,
        countries: vec!["US".into()],
        page_id: "555".into(),
        link: "https://shop.example.com/".into(),
        primary_text: "More".into(),
        ..Default::default()
    };
    let e = s.client().await.build_ad_campaign(admin.req(req.clone())).await.unwrap_err();
    assert_eq!((e.code(), code(&e)), (tonic::Code::FailedPrecondition, "ads.workspace_cap_exceeded".to_owned()));
    assert_eq!(s.meta.created("campaigns"), before);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.ad_builds").await, 1);
    // Within the cap (3000 + 2000 = 5000) it builds; then a raise of the first would pass it.
    let second = pb::BuildAdCampaignRequest { daily_budget: 2000, ..req };
    assert_eq!(s.client().await.build_ad_campaign(admin.req(second)).await.unwrap().into_inner().status, "built");
    let e = s.client().await.update_ad_budget(admin.req(budget(&first.id, 3500))).await.unwrap_err();
    assert_eq!(code(&e), "ads.workspace_cap_exceeded");
    // Archiving the second frees its share.
    let b2 = sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM ads.ad_builds WHERE request_key = 'k2'")
        .fetch_one(&s.admin_pool)
        .await
        .unwrap();
    let id2 = nexus_ads::domain::BuildId::from_uuid(b2).to_string();
    let req = pb::SetAdDeliveryRequest { id: id2, delivery: "archived".into() };
    s.client().await.set_ad_delivery(admin.req(req)).await.unwrap();
    let raised = s.client().await.update_ad_budget(admin.req(budget(&first.id, 3500))).await.unwrap().into_inner();
    assert_eq!(raised.daily_budget, 3500);
}
