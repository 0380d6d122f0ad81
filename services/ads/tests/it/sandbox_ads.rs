//! Ad campaigns in the sandbox (`provider: local`): the whole builder, management, review and
//! insights flow works offline, with nothing leaving the service.

use nexus_proto::nexus::ads::v1 as pb;

use crate::support::{Service, code, traffic_build};

fn request(connection: &str, key: &str) -> pb::BuildAdCampaignRequest {
    traffic_build(connection, "act_local_1", "local_page_1", key)
}

#[tokio::test]
async fn a_sandbox_build_is_made_reviewed_managed_and_reports_steady_figures() {
    let s = Service::start().await;
    let admin = s.admin();
    let conn = s.connect_local(&admin).await;
    let b = s.client().await.build_ad_campaign(admin.req(request(&conn.id, "offline"))).await.unwrap().into_inner();
    assert_eq!((b.status.as_str(), b.provider.as_str(), b.currency.as_str()), ("built", "local", "USD"));
    let steps: Vec<(&str, &str)> = b.steps.iter().map(|s| (s.step.as_str(), s.platform_id.as_str())).collect();
    assert_eq!(steps.iter().map(|s| s.0).collect::<Vec<_>>(), ["campaign", "adset", "creative", "ad"]);
    assert!(steps.iter().all(|(step, id)| id.starts_with(&format!("local_{step}_"))), "{steps:?}");
    assert_eq!(b.review_status, "pending");

    // The same request again is the same build.
    let again = s.client().await.build_ad_campaign(admin.req(request(&conn.id, "offline"))).await.unwrap().into_inner();
    assert_eq!(again.id, b.id);

    // Figures for every day synced, the same on a second sync (steady, not random).
    let first = s.sync(&admin, &b.id).await;
    assert!(first.rows >= 1 && first.spend_minor > 0 && first.days >= 1, "{first:?}");
    let second = s.sync(&admin, &b.id).await;
    assert_eq!(
        (second.spend_minor, second.revenue_minor, second.days),
        (first.spend_minor, first.revenue_minor, first.days)
    );

    // Managed like a platform's: budget within the guard, paused and resumed.
    let req = pb::UpdateAdBudgetRequest { id: b.id.clone(), daily_budget: 3000 };
    assert_eq!(s.client().await.update_ad_budget(admin.req(req)).await.unwrap().into_inner().daily_budget, 3000);
    let req = pb::SetAdDeliveryRequest { id: b.id.clone(), delivery: "active".into() };
    assert_eq!(s.client().await.set_ad_delivery(admin.req(req)).await.unwrap().into_inner().delivery, "active");

    // The sweep's review passes, and says so.
    s.exec("UPDATE ads.account_syncs SET next_at = now()").await;
    let round = s.app.sweep_insights().await.unwrap();
    assert_eq!(round.failed, 0, "{round:?}");
    let got =
        s.client().await.get_ad_build(admin.req(pb::GetByIdRequest { id: b.id.clone() })).await.unwrap().into_inner();
    assert_eq!((got.review_status.as_str(), got.platform_status.as_str()), ("approved", "SANDBOX"));
    assert_eq!(got.review_message, "Sandbox approved this ad.");

    // Another workspace sees none of it.
    let other = s.admin();
    let e = s.client().await.get_ad_build(other.req(pb::GetByIdRequest { id: b.id })).await.unwrap_err();
    assert_eq!(code(&e), "ads.build_not_found");
}
