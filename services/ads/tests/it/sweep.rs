//! The scheduled insights sweep: choosing an account owes its 28-day backfill (no platform call
//! in the request), a round does it — at Meta through an async report job polled until complete
//! — to the cent; later rounds sync the recent days once due; two replicas sweeping at once
//! sync each account once.

use nexus_proto::nexus::ads::v1 as pb;

use crate::support::{Caller, Service, cents};

/// A Meta connection with `act_111` chosen and one campaign built there; the connection id.
async fn meta_with_campaign(s: &Service, admin: &Caller) -> String {
    let started = s.begin(admin, "meta").await;
    let c = s.complete(admin, "meta", nexus_testkit::meta::TEST_CODE, &started.state).await.unwrap();
    let req = pb::ChooseAccountsRequest { id: c.id.clone(), external_ids: vec!["act_111".into()] };
    s.client().await.choose_accounts(admin.req(req)).await.unwrap();
    let req = pb::BuildAdCampaignRequest {
        request_key: "k".into(),
        connection_id: c.id.clone(),
        ad_account: "act_111".into(),
        name: "Winter".into(),
        objective: "OUTCOME_TRAFFIC".into(),
        optimization_goal: "LINK_CLICKS".into(),
        daily_budget: 2500,
        countries: vec!["US".into()],
        page_id: "555".into(),
        link: "https://shop.example.com/".into(),
        primary_text: "Sale".into(),
        ..Default::default()
    };
    s.client().await.build_ad_campaign(admin.req(req)).await.unwrap();
    c.id
}

#[tokio::test]
async fn a_chosen_account_is_backfilled_by_the_sweep_through_a_meta_report_job() {
    let s = Service::start().await;
    let admin = s.admin();
    meta_with_campaign(&s, &admin).await;
    // Owed, not done inline: nothing was read from Meta during the requests.
    assert_eq!(s.scalar("SELECT count(*) FROM ads.account_syncs WHERE backfilled_at IS NULL").await, 1);
    assert!(s.meta.insights_calls().is_empty() && s.meta.report_jobs().is_empty());

    let round = s.app.sweep_insights().await.unwrap();
    assert_eq!((round.synced, round.backfilled, round.failed, round.rows), (1, 1, 0, 28));
    let jobs = s.meta.report_jobs();
    assert_eq!(jobs.len(), 1);
    let (account, since, until, polls) = &jobs[0];
    assert_eq!(account, "act_111");
    let days = chrono::NaiveDate::parse_from_str(until, "%Y-%m-%d").unwrap()
        - chrono::NaiveDate::parse_from_str(since, "%Y-%m-%d").unwrap();
    assert_eq!(days.num_days(), 27, "28 days");
    assert!(*polls >= 2, "polled until complete");
    let served = s.meta.insights_served();
    let spend: i64 = served.iter().map(|r| cents(r["spend"].as_str().unwrap())).sum();
    assert_eq!(s.scalar("SELECT sum(spend_minor)::bigint FROM ads.account_insights").await, spend);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.account_insights WHERE time_zone = 'America/Los_Angeles'").await, 28);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.account_syncs WHERE backfilled_at IS NOT NULL").await, 1);

    // Not due again yet: nothing read.
    let calls = s.meta.insights_calls().len();
    assert_eq!(s.app.sweep_insights().await.unwrap().synced, 0);
    assert_eq!(s.meta.insights_calls().len(), calls);
    // Due: the recent days, read directly (no job for three days).
    s.exec("UPDATE ads.account_syncs SET next_at = now()").await;
    let round = s.app.sweep_insights().await.unwrap();
    assert_eq!((round.synced, round.backfilled, round.rows), (1, 0, 3));
    assert_eq!(s.meta.report_jobs().len(), 1);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.account_insights").await, 28, "days replaced, not added");
}

#[tokio::test]
async fn two_replicas_sweeping_at_once_sync_each_account_once() {
    let s = Service::start().await;
    let admin = s.admin();
    meta_with_campaign(&s, &admin).await;
    let started = s.begin(&admin, "tiktok").await;
    let t = s.complete(&admin, "tiktok", nexus_testkit::tiktok::TEST_AUTH_CODE, &started.state).await.unwrap();
    let req = pb::ChooseAccountsRequest { id: t.id, external_ids: vec!["7002".into()] };
    s.client().await.choose_accounts(admin.req(req)).await.unwrap();
    assert_eq!(s.scalar("SELECT count(*) FROM ads.account_syncs").await, 2);

    let (a, b) = tokio::join!(s.app.sweep_insights(), s.app.sweep_insights());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.synced + b.synced, 2, "{a:?} {b:?}");
    assert_eq!(s.meta.report_jobs().len(), 1);
    let tiktok_reports = s.tiktok.log().iter().filter(|(p, _)| p == "/report/integrated/get/").count();
    assert_eq!(tiktok_reports, 1, "the advertiser has no ads: one empty page");
    // Unchoosing the account forgets its sync.
    let conn: uuid::Uuid = sqlx::query_scalar("SELECT id FROM ads.connections WHERE provider = 'tiktok'")
        .fetch_one(&s.admin_pool)
        .await
        .unwrap();
    let id = nexus_ads::domain::ConnectionId::from_uuid(conn).to_string();
    s.client().await.choose_accounts(admin.req(pb::ChooseAccountsRequest { id, external_ids: vec![] })).await.unwrap();
    assert_eq!(s.scalar("SELECT count(*) FROM ads.account_syncs").await, 1);
}

#[tokio::test]
async fn the_sweep_refreshes_reviews_and_announces_a_rejected_ad_once() {
    let s = Service::start().await;
    let admin = s.admin();
    meta_with_campaign(&s, &admin).await;
    s.app.sweep_insights().await.unwrap();
    assert_eq!(review(&s.admin_pool).await, ("PAUSED".into(), "approved".into(), String::new()));
    assert_eq!(s.events("nexus.ads.ad.rejected").await, 0);

    s.meta.set_review("ads", "DISAPPROVED", &[("Misleading claims", "The ad promises results it cannot show.")]);
    for _ in 0..2 {
        s.exec("UPDATE ads.account_syncs SET next_at = now()").await;
        assert_eq!(s.app.sweep_insights().await.unwrap().failed, 0);
    }
    let (_, status, reason) = review(&s.admin_pool).await;
    assert_eq!(status, "rejected");
    assert!(reason.contains("Misleading claims") && reason.contains("cannot show"), "{reason}");
    assert_eq!(s.events("nexus.ads.ad.rejected").await, 1, "announced once");

    // The API shows the review, said in the caller's language with Meta's own reasons.
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM ads.ad_builds").fetch_one(&s.admin_pool).await.unwrap();
    let mut req = admin.req(pb::GetByIdRequest { id: nexus_ads::domain::BuildId::from_uuid(id).to_string() });
    req.metadata_mut().insert("x-nexus-locale", "es".parse().unwrap());
    let b = s.client().await.get_ad_build(req).await.unwrap().into_inner();
    assert_eq!((b.platform_status.as_str(), b.review_status.as_str()), ("PAUSED", "rejected"));
    assert_eq!(b.review_reason, reason);
    assert!(b.review_message.starts_with("Meta rechazó este anuncio: "), "{}", b.review_message);
    assert!(b.review_message.contains("Misleading claims"), "{}", b.review_message);
    assert!(b.status_synced_at.is_some());
}

#[tokio::test]
async fn a_rejected_tiktok_ad_is_seen_by_the_sweep() {
    let s = Service::start().await;
    let admin = s.admin();
    let started = s.begin(&admin, "tiktok").await;
    let t = s.complete(&admin, "tiktok", nexus_testkit::tiktok::TEST_AUTH_CODE, &started.state).await.unwrap();
    let req = pb::ChooseAccountsRequest { id: t.id.clone(), external_ids: vec!["7002".into()] };
    s.client().await.choose_accounts(admin.req(req)).await.unwrap();
    let req = pb::BuildAdCampaignRequest {
        request_key: "t".into(),
        connection_id: t.id,
        ad_account: "7002".into(),
        name: "Summer".into(),
        objective: "TRAFFIC".into(),
        optimization_goal: "CLICK".into(),
        daily_budget: 2500,
        countries: vec!["US".into()],
        page_id: "identity-1".into(),
        link: "https://shop.example.com/".into(),
        primary_text: "Summer".into(),
        image_url: "https://cdn.example.com/a.jpg".into(),
        ..Default::default()
    };
    s.client().await.build_ad_campaign(admin.req(req)).await.unwrap();
    s.tiktok.set_field("ad", "secondary_status", serde_json::json!("AD_STATUS_REJECT"));
    s.tiktok.set_field("ad", "reject_info", serde_json::json!("Unrealistic claims"));
    let round = s.app.sweep_insights().await.unwrap();
    assert_eq!((round.synced, round.failed), (1, 0));
    assert_eq!(s.scalar("SELECT count(*) FROM ads.ad_builds WHERE review_status = 'rejected'").await, 1);
    assert_eq!(s.events("nexus.ads.ad.rejected").await, 1);
}

/// (platform status, review, reason) of the only build.
async fn review(pool: &sqlx::PgPool) -> (String, String, String) {
    sqlx::query_as("SELECT platform_status, review_status, review_reason FROM ads.ad_builds")
        .fetch_one(pool)
        .await
        .unwrap()
}
