//! Domain events of other services: stored once however often delivered, personal data hashed;
//! audit events of a change made through another service land in the searchable trail.

use std::time::Duration;

use chrono::Utc;
use nexus_kernel::WorkspaceId;
use nexus_proto::events as ev;
use nexus_proto::nexus::analytics::v1 as pb;
use nexus_proto::nexus::subscriptions::v1 as spb;
use nexus_proto::nexus::subscriptions::v1::subscriptions_client::SubscriptionsClient;
use nexus_testkit::identity::authed;
use prost::{Message, Name};
use tokio_util::sync::CancellationToken;

use crate::support::*;

async fn publish<M: Message + Name>(
    bus: &nexus_platform::bus::Bus,
    subject: &str,
    ws: WorkspaceId,
    event_id: uuid::Uuid,
    msg: &M,
) {
    publish_at(bus, subject, ws, event_id, Utc::now(), msg).await;
}

#[tokio::test]
async fn a_domain_event_delivered_twice_is_stored_once_without_raw_personal_data() {
    let svc = start().await;
    let bus = svc.bus().await;
    bus.ensure_service_stream("auth").await.unwrap();
    bus.ensure_service_stream("content").await.unwrap();
    let ws = WorkspaceId::new();
    let id = uuid::Uuid::now_v7();
    let signed = ev::UserSignedUp {
        user_id: "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d7".into(),
        workspace_id: ws.to_string(),
        email: "Ana.Silva@Example.com".into(),
        locale: "pt".into(),
    };
    publish(&bus, "nexus.auth.user.signed_up", ws, id, &signed).await;
    publish(&bus, "nexus.auth.user.signed_up", ws, id, &signed).await;
    // A type this version does not know is still kept, under its subject's name.
    // A type this version does not know (a newer service's) is still kept, by its subject's name.
    let unknown = ev::Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        tenant_id: ws.as_uuid().to_string(),
        event_type: "nexus.events.v1.SomethingNewHappened".into(),
        occurred_at: Some(prost_types::Timestamp { seconds: Utc::now().timestamp(), nanos: 0 }),
        schema_version: 1,
        payload: vec![10, 3, 1, 2, 3],
        ..Default::default()
    };
    bus.js
        .publish(bus.subject("nexus.content.generation.completed"), unknown.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();

    svc.wait_for_events(ws, 2, 30).await;
    // Both copies were consumed (the second as a duplicate), and still one row.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(svc.count_events(ws).await, 2);
    let admin = svc.admin().await;
    let (name, user, props, source): (String, Option<String>, serde_json::Value, String) = sqlx::query_as(
        "SELECT name, user_id, properties, source FROM analytics.analytics_events WHERE tenant_id = $1 AND client_event_id = $2",
    )
    .bind(ws.as_uuid())
    .bind(id.to_string())
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!((name.as_str(), source.as_str()), ("auth.user.signed_up", "auth"));
    assert_eq!(user.as_deref(), Some("usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d7"));
    assert_eq!(props["locale"], "pt");
    let hashed = props["email"].as_str().unwrap();
    assert_eq!(hashed.len(), 64, "salted SHA-256 in hex: {hashed}");
    assert!(!props.to_string().to_lowercase().contains("ana.silva"), "{props}");
    let (props,): (serde_json::Value,) = sqlx::query_as(
        "SELECT properties FROM analytics.analytics_events WHERE tenant_id = $1 AND name = 'content.generation.completed'",
    )
    .bind(ws.as_uuid())
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(props, serde_json::json!({}));
}

#[tokio::test]
async fn a_change_made_through_another_service_is_in_the_audit_trail_and_usage_per_plan() {
    let svc = start().await;
    // The real subscriptions service on the same database and NATS prefix.
    let sub_db = svc.db.config("subscriptions");
    let env = vec![
        ("NEXUS_DATABASE__URL".to_owned(), sub_db.url.expose().to_owned()),
        ("NEXUS_DATABASE__ADMIN_URL".to_owned(), sub_db.admin_url.expose().to_owned()),
        ("NEXUS_NATS__URL".to_owned(), svc.nats.url.clone()),
        ("NEXUS_NATS__PREFIX".to_owned(), svc.nats.prefix.clone()),
    ];
    let sub_cfg: nexus_subscriptions::Config =
        nexus_platform::config::load_from_env("subscriptions", nexus_subscriptions::DEFAULTS, None, env).unwrap();
    nexus_platform::db::migrate("subscriptions", &sub_cfg.common.database, Some(&nexus_subscriptions::MIGRATIONS))
        .await
        .unwrap();
    let listeners = nexus_platform::Listeners::ephemeral().await.unwrap();
    let sub_url = format!("http://{}", listeners.grpc.local_addr().unwrap());
    let stop = CancellationToken::new();
    let (s, keys) = (stop.clone(), svc.issuer.keys());
    tokio::spawn(async move { nexus_subscriptions::run_with_keys(sub_cfg, listeners, s, Some(keys)).await.unwrap() });
    let _stop_subscriptions = stop.drop_guard();

    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let actor = user_of(&token);
    let mut subs = SubscriptionsClient::new(nexus_platform::grpc::channel(&sub_url, Duration::from_secs(30)).unwrap());
    let mut reservation = None;
    for _ in 0..100 {
        let req = spb::ReserveRequest {
            action: "content.generation".into(),
            credits: 10,
            idempotency_key: "gen-1".into(),
            ..Default::default()
        };
        match subs.reserve(authed(req, &token)).await {
            Ok(r) => {
                reservation = Some(r.into_inner());
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let reservation = reservation.expect("subscriptions answers");
    subs.commit(authed(spb::CommitRequest { reservation_id: reservation.id, credits: Some(7) }, &token)).await.unwrap();

    let mut c = svc.client();
    let search = |actor: &str, resource: &str, cursor: &str, size: u32| pb::AuditSearchRequest {
        actor: actor.into(),
        resource_type: resource.into(),
        page: Some(nexus_proto::common::PageRequest { page_size: size, cursor: cursor.into() }),
        ..Default::default()
    };
    let mut found = Vec::new();
    for _ in 0..200 {
        found = c
            .search_audit(authed(search(&actor, "subscriptions.reservations", "", 50), &token))
            .await
            .unwrap()
            .into_inner()
            .items;
        if found.iter().any(|e| e.action == "update") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let insert = found.iter().find(|e| e.action == "insert").expect("reservation insert audited");
    assert_eq!((insert.actor.as_str(), insert.service.as_str()), (actor.as_str(), "subscriptions"));
    let after: serde_json::Value = serde_json::from_str(&insert.after_json).unwrap();
    assert_eq!(after["amount"], 10);
    let update = found.iter().find(|e| e.action == "update").expect("commit audited");
    let before: serde_json::Value = serde_json::from_str(&update.before_json).unwrap();
    assert_eq!(before["status"], "held");

    // The whole trail of this actor, paged two at a time, newest first, no entry twice.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = c.search_audit(authed(search(&actor, "", &cursor, 2), &token)).await.unwrap().into_inner();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|e| (e.at.map(|t| (t.seconds, t.nanos)), e.id)));
        cursor = page.page.map(|p| p.next_cursor).unwrap_or_default();
        if cursor.is_empty() {
            break;
        }
    }
    assert!(seen.len() >= 3, "{seen:?}");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "no entry twice");
    // Another workspace sees none of it.
    let other = svc.owner(WorkspaceId::new());
    let none = c.search_audit(authed(search(&actor, "", "", 50), &other)).await.unwrap().into_inner();
    assert!(none.items.is_empty());
    let e = c.search_audit(authed(search("", "", "garbage!", 10), &token)).await.unwrap_err();
    assert_eq!(code_of(&e), "request.invalid_cursor");

    // The charge shows as feature usage of the plan the workspace was on (FREE from sign-up).
    let mut rows = Vec::new();
    for _ in 0..200 {
        rows = c.feature_usage(authed(pb::FeatureUsageRequest::default(), &token)).await.unwrap().into_inner().rows;
        if !rows.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!((r.plan.as_str(), r.feature.as_str(), r.uses, r.credits), ("free", "content.generation", 1, 7));
}

#[tokio::test]
async fn store_sales_count_as_revenue_once_refunds_take_it_back_and_other_services_events_are_described() {
    let svc = start().await;
    let bus = svc.bus().await;
    bus.ensure_service_stream("commerce").await.unwrap();
    bus.ensure_service_stream("video").await.unwrap();
    let ws = WorkspaceId::new();
    let sale_id = uuid::Uuid::now_v7();
    let sale = ev::CommerceSaleRecorded {
        workspace_id: ws.to_string(),
        sale_id: "sale_1".into(),
        order_id: "ord_1".into(),
        revenue: "49.90".into(),
        profit: "20.10".into(),
        currency: "BRL".into(),
        reporting_revenue: "9.98".into(),
        reporting_profit: "4.02".into(),
        reporting_currency: "USD".into(),
    };
    // Delivered twice: one sale.
    publish(&bus, "nexus.commerce.sale.recorded", ws, sale_id, &sale).await;
    publish(&bus, "nexus.commerce.sale.recorded", ws, sale_id, &sale).await;
    let refund = ev::CommerceOrderRefunded {
        workspace_id: ws.to_string(),
        order_id: "ord_1".into(),
        amount: "10.00".into(),
        currency: "BRL".into(),
        ..Default::default()
    };
    publish(&bus, "nexus.commerce.order.refunded", ws, uuid::Uuid::now_v7(), &refund).await;
    // An order is not revenue until it sells; its customer's email is kept hashed only.
    let order = ev::CommerceOrderCreated {
        workspace_id: ws.to_string(),
        order_id: "ord_1".into(),
        source: "manual".into(),
        total: "49.90".into(),
        currency: "BRL".into(),
        customer_email: "cliente@example.com".into(),
        customer_name: "Maria Souza".into(),
        ..Default::default()
    };
    publish(&bus, "nexus.commerce.order.created", ws, uuid::Uuid::now_v7(), &order).await;
    let video = ev::VideoCompleted {
        workspace_id: ws.to_string(),
        video_id: "vid_1".into(),
        language: "ar".into(),
        provider: "local".into(),
        duration_seconds: 4.5,
        credits: 10,
        characters_billed: 36,
        size_bytes: 1000,
    };
    publish(&bus, "nexus.video.video.completed", ws, uuid::Uuid::now_v7(), &video).await;
    bus.ensure_service_stream("messaging").await.unwrap();
    let broadcast = ev::WhatsAppBroadcastFinished {
        workspace_id: ws.to_string(),
        broadcast_id: "bc_1".into(),
        status: "finished".into(),
        sent: 9_990,
        failed: 10,
        unknown: 0,
        credits_charged: 9_990,
    };
    publish(&bus, "nexus.messaging.broadcast.finished", ws, uuid::Uuid::now_v7(), &broadcast).await;
    bus.ensure_service_stream("ads").await.unwrap();
    let campaign = ev::AdsCampaignCreated {
        workspace_id: ws.to_string(),
        build_id: "build_1".into(),
        campaign_id: "cmp_1".into(),
        provider: "meta".into(),
        ad_account: "act_1".into(),
        platform_campaign_id: "120000001".into(),
        name: "Winter sale".into(),
        daily_budget_minor: 2_500,
        currency: "EUR".into(),
    };
    publish(&bus, "nexus.ads.campaign.created", ws, uuid::Uuid::now_v7(), &campaign).await;
    svc.wait_for_events(ws, 6, 30).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(svc.count_events(ws).await, 6);

    let token = svc.owner(ws);
    let now = Utc::now();
    let rev = svc
        .client()
        .revenue(authed(
            pb::RevenueRequest {
                range: Some(pb::TimeRange {
                    from: (now - chrono::Duration::days(1)).to_rfc3339(),
                    to: (now + chrono::Duration::minutes(1)).to_rfc3339(),
                }),
                interval: "day".into(),
                time_zone: "UTC".into(),
                currency: String::new(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let totals: Vec<(String, i64)> = rev.totals.iter().map(|m| (m.currency.clone(), m.amount_minor)).collect();
    assert_eq!(totals, vec![("BRL".to_owned(), 4990 - 1000)]);

    let admin = svc.admin().await;
    let rows: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT name, properties FROM analytics.analytics_events WHERE tenant_id = $1 ORDER BY name")
            .bind(ws.as_uuid())
            .fetch_all(&admin)
            .await
            .unwrap();
    let props = |name: &str| rows.iter().find(|r| r.0 == name).map(|r| r.1.clone()).unwrap();
    let order = props("commerce.order.created");
    assert_eq!((order["total"].as_str(), order["currency"].as_str()), (Some("49.90"), Some("BRL")));
    assert_eq!(order["email"].as_str().map(str::len), Some(64), "hashed: {order}");
    assert!(!order.to_string().contains("cliente") && !order.to_string().contains("Maria"), "{order}");
    let video = props("video.video.completed");
    assert_eq!((video["duration_seconds"].as_f64(), video["credits"].as_i64()), (Some(4.5), Some(10)));
    let campaign = props("ads.campaign.created");
    assert_eq!((campaign["daily_budget_minor"].as_i64(), campaign["currency"].as_str()), (Some(2_500), Some("EUR")));
    let broadcast = props("messaging.broadcast.finished");
    assert_eq!((broadcast["sent"].as_i64(), broadcast["credits_charged"].as_i64()), (Some(9_990), Some(9_990)));
}

/// "Do not sell or share" (CCPA) is recorded: the workspace's setting with who changed it, and a
/// contact's opt-out (its consent on the channel `ads` withdrawn).
#[tokio::test]
async fn do_not_sell_choices_are_recorded() {
    let svc = start().await;
    let bus = svc.bus().await;
    bus.ensure_service_stream("messaging").await.unwrap();
    let ws = WorkspaceId::new();
    let setting = ev::DoNotSellChanged {
        workspace_id: ws.to_string(),
        do_not_sell: true,
        actor_id: "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d7".into(),
    };
    publish(&bus, "nexus.messaging.book.do_not_sell_changed", ws, uuid::Uuid::now_v7(), &setting).await;
    let consent = ev::ConsentChanged {
        workspace_id: ws.to_string(),
        contact_id: "ct_0192f0c5c2b87c31a1f1e4f2b1a0c9d8".into(),
        channel: "ads".into(),
        purpose: "marketing".into(),
        status: "withdrawn".into(),
        source: "form".into(),
    };
    publish(&bus, "nexus.messaging.contact.consent_changed", ws, uuid::Uuid::now_v7(), &consent).await;
    svc.wait_for_events(ws, 2, 30).await;
    let admin = svc.admin().await;
    let rows: Vec<(String, Option<String>, serde_json::Value)> = sqlx::query_as(
        "SELECT name, user_id, properties FROM analytics.analytics_events WHERE tenant_id = $1 ORDER BY name",
    )
    .bind(ws.as_uuid())
    .fetch_all(&admin)
    .await
    .unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(names, ["messaging.book.do_not_sell_changed", "messaging.contact.consent_changed"]);
    assert_eq!(rows[0].1.as_deref(), Some("usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d7"));
    assert_eq!(rows[0].2, serde_json::json!({"do_not_sell": true}));
    assert_eq!((rows[1].2["channel"].as_str(), rows[1].2["status"].as_str()), (Some("ads"), Some("withdrawn")));
}
