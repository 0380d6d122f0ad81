//! Insights synced from the fake Meta: 28 days stored to the cent in the account's currency and
//! time zone; a throttling header at 95 % slows the sync down (the fake records the spacing)
//! and the sync still finishes.

use std::time::Duration;

use nexus_proto::nexus::ads::v1 as pb;

use crate::support::{Service, cents};

#[tokio::test]
async fn twenty_eight_days_match_the_fake_to_the_cent_and_high_usage_slows_the_sync() {
    let s = Service::start_with(&[("NEXUS_INSIGHTS__SLOWDOWN", "300ms".into())]).await;
    let admin = s.admin();
    let started = s.begin(&admin, "meta").await;
    let c = s.complete(&admin, "meta", nexus_testkit::meta::TEST_CODE, &started.state).await.unwrap();
    let req = pb::ChooseAccountsRequest { id: c.id.clone(), external_ids: vec!["act_111".into()] };
    s.client().await.choose_accounts(admin.req(req)).await.unwrap();
    let req = pb::BuildAdCampaignRequest {
        request_key: "k".into(),
        connection_id: c.id,
        ad_account: "act_111".into(),
        name: "Winter".into(),
        objective: "OUTCOME_SALES".into(),
        optimization_goal: "OFFSITE_CONVERSIONS".into(),
        daily_budget: 5000,
        countries: vec!["US".into()],
        page_id: "555".into(),
        link: "https://shop.example.com/".into(),
        primary_text: "Sale".into(),
        ..Default::default()
    };
    let b = s.client().await.build_ad_campaign(admin.req(req)).await.unwrap().into_inner();

    s.meta.set_usage_percent(96);
    let r = s.sync(&admin, &b.id).await;
    let served = s.meta.insights_served();
    assert_eq!(served.len(), 28, "one ad, 28 days");
    assert_eq!((r.rows, r.days), (28, 28));
    let spend: i64 = served.iter().map(|row| cents(row["spend"].as_str().unwrap())).sum();
    let revenue: i64 = served.iter().map(|row| cents(row["action_values"][0]["value"].as_str().unwrap())).sum();
    assert_eq!((r.spend_minor, r.revenue_minor), (spend, revenue));
    assert_eq!((r.currency.as_str(), r.time_zone.as_str()), ("USD", "America/Los_Angeles"));
    let stored: i64 =
        s.scalar("SELECT sum(spend_minor)::bigint FROM ads.ad_insights WHERE time_zone = 'America/Los_Angeles'").await;
    assert_eq!(stored, spend);

    // Pages of 10: three calls, each after the first at least the slowdown apart.
    let calls = s.meta.insights_calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(r.slowed, 2);
    for w in calls.windows(2) {
        assert!(w[1] - w[0] >= Duration::from_millis(300), "{:?}", w[1] - w[0]);
    }

    // At normal usage it does not wait; syncing again replaces the days, not adds to them.
    s.meta.set_usage_percent(20);
    let again = s.sync(&admin, &b.id).await;
    assert_eq!((again.slowed, again.days, again.spend_minor), (0, 28, spend));
}
