//! Every metered action settles its credits through the outbox, in the transaction that stores
//! its result: no call to subscriptions after the fact, so neither an outage nor a lost token
//! between storing and charging makes work free or charges it twice.

use std::time::Duration;

use futures::StreamExt;
use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::content::v1 as pb;
use nexus_testkit::identity::authed;
use nexus_testkit::openai::{Reply, Script};
use serde_json::json;

use crate::pages::brief;
use crate::support::*;

fn one_variant() -> String {
    json!({"variants": [{"title": "Título", "body": "Cuerpo del anuncio."}]}).to_string()
}

/// The reservation a stored row names, as the settlement carries it.
async fn reservation_of(s: &Stack, sql: &str, ws: WorkspaceId) -> String {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(ws.as_uuid())
        .fetch_one(&s.admin().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_metered_action_writes_one_settlement_with_its_result() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let mut c = s.client();
    let before = s.balance(&token).await.available;

    let mut g = request("email", "", "en");
    g.idempotency_key = "gen-1".into();
    c.generate(authed(g.clone(), &token)).await.unwrap();
    let mut stream = c.generate_stream(authed(request("social_post", "x", "pt"), &token)).await.unwrap().into_inner();
    while let Some(item) = stream.next().await {
        item.unwrap();
    }
    let page = c.create_page(authed(brief("es"), &token)).await.unwrap().into_inner();
    c.regenerate_section(authed(
        pb::RegenerateSectionRequest {
            page_id: page.id.clone(),
            section: "faq".into(),
            idempotency_key: String::new(),
        },
        &token,
    ))
    .await
    .unwrap();
    let agent = pb::AgentInput {
        name: "Nova".into(),
        instructions: "Answer briefly.".into(),
        language: "en".into(),
        knowledge: vec!["We ship in 48 hours.".into()],
    };
    let agent = c.create_agent(authed(agent, &token)).await.unwrap().into_inner();
    let chat = pb::ChatRequest {
        agent_id: agent.id.clone(),
        contact_id: "wa:5511999".into(),
        message: "How fast do you ship?".into(),
        idempotency_key: "turn-1".into(),
    };
    c.chat(authed(chat.clone(), &token)).await.unwrap();
    let image = pb::CreateImageRequest { purpose: "ad".into(), prompt: "trail shoes".into(), ..Default::default() };
    c.create_image(authed(image, &token)).await.unwrap();

    let settled = s.settlements(ws).await;
    let charged: Vec<(bool, i64)> = settled.iter().map(|j| (j.succeeded, j.credits)).collect();
    assert_eq!(charged, vec![(true, 1), (true, 1), (true, 5), (true, 1), (true, 1), (true, 2)], "{settled:?}");
    let jobs: Vec<&str> = settled.iter().map(|j| j.job.split(':').next().unwrap()).collect();
    assert_eq!(
        jobs,
        [
            "content.generation",
            "content.generation",
            "content.page",
            "content.regenerate",
            "content.agent_reply",
            "content.image"
        ]
    );
    let distinct: std::collections::HashSet<_> = settled.iter().map(|j| j.reservation_id.clone()).collect();
    assert_eq!(distinct.len(), 6, "one hold per action");
    // The stored rows name the very holds their settlements close.
    let generation =
        "SELECT reservation_id FROM content.generations WHERE tenant_id = $1 AND idempotency_key = 'gen-1'";
    assert_eq!(reservation_of(&s, generation, ws).await, settled[0].reservation_id);
    let image = "SELECT reservation_id FROM content.image_assets WHERE tenant_id = $1";
    assert_eq!(reservation_of(&s, image, ws).await, settled[5].reservation_id);

    // Retries with the same keys answer from what is stored and settle nothing again.
    c.generate(authed(g, &token)).await.unwrap();
    c.chat(authed(chat, &token)).await.unwrap();
    assert_eq!(s.settlements(ws).await.len(), 6);

    let b = s.settled(&token).await;
    assert_eq!((b.available, b.reserved), (before - 11, 0), "charged exactly what was settled");
    assert_eq!(s.ledger_sum(ws).await, b.available, "the ledger sums to the balance");
}

#[tokio::test]
async fn failures_settle_as_releases_and_give_everything_back() {
    let (s, fake) = with_model().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let before = s.balance(&token).await.available;
    fake.push(Reply::insufficient_quota());
    let e = s.client().generate(authed(request("email", "", "pt"), &token)).await.unwrap_err();
    assert_eq!(code_of(&e), "provider.quota_exceeded");
    fake.push(Reply::server_error(500));
    let e = s.client().create_page(authed(brief("en"), &token)).await.unwrap_err();
    assert_eq!(nexus_kernel::Error::from_status(&e).kind(), nexus_kernel::ErrorKind::Unavailable, "{e:?}");

    let settled = s.settlements(ws).await;
    assert_eq!(settled.len(), 2, "{settled:?}");
    assert!(settled.iter().all(|j| !j.succeeded && j.credits == 0), "{settled:?}");
    let b = s.settled(&token).await;
    assert_eq!((b.available, b.reserved), (before, 0));
    assert_eq!(s.ledger_sum(ws).await, b.available);
    assert_eq!(s.count("SELECT count(*) FROM content.generations WHERE tenant_id = $1", ws).await, 0);
}

/// Subscriptions goes away after the credits are held and before the result is stored (an
/// outage, a deploy; the same as a caller whose token is revoked meanwhile): the generation is
/// stored and answered, its settlement waits in the outbox, and the charge lands once
/// subscriptions is back.
#[tokio::test]
async fn subscriptions_down_between_reserve_and_store_still_charges_once() {
    let (mut s, fake) = with_model().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let before = s.balance(&token).await.available;
    fake.push(Reply::Answer(Script::text(one_variant()).completion_tokens(1500).delay(Duration::from_secs(2))));
    let (mut c, t) = (s.client(), token.clone());
    let running = tokio::spawn(async move { c.generate(authed(request("ad_copy", "facebook", "es"), &t)).await });
    let held =
        nexus_testkit::eventually(Duration::from_secs(10), || async { s.balance(&token).await.reserved > 0 }).await;
    assert!(held, "the generation reserved its credits");
    s.stop_subscriptions().await;

    let g = running.await.unwrap().expect("stored and answered while subscriptions is down").into_inner();
    assert_eq!(g.status, "succeeded");
    let settled = s.settlements(ws).await;
    assert_eq!(settled.len(), 1);
    assert_eq!((settled[0].succeeded, settled[0].credits), (true, g.credits));
    // Meanwhile a new generation cannot reserve: the service is unavailable (503), not broken.
    let e = s.client().generate(authed(request("email", "", "en"), &token)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert_eq!(code_of(&e), "service.unavailable");

    s.restart_subscriptions().await;
    let b = s.settled(&token).await;
    assert_eq!((b.available, b.reserved), (before - g.credits, 0), "charged once, the rest of the hold given back");
    assert_eq!(s.ledger_sum(ws).await, b.available, "the ledger sums to the balance");
    let commits = "SELECT count(*) FROM subscriptions.credit_ledger WHERE tenant_id = $1 AND kind = 'commit'";
    assert_eq!(s.count(commits, ws).await, 1);
}

/// The key of a request whose hold is settled buys nothing more: a failed request's key cannot
/// be replayed for free work, and a finished regeneration is answered, not done again.
#[tokio::test]
async fn a_settled_key_does_no_work_for_free() {
    let (s, fake) = with_model().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let mut c = s.client();
    let before = s.balance(&token).await.available;
    fake.push(Reply::server_error(500));
    let mut req = brief("en");
    req.idempotency_key = "page-1".into();
    c.create_page(authed(req.clone(), &token)).await.unwrap_err();
    assert_eq!(s.settled(&token).await.available, before, "the failure gave everything back");
    let e = c.create_page(authed(req, &token)).await.unwrap_err();
    assert_eq!(code_of(&e), "content.idempotency_key_reused");
    assert_eq!(s.count("SELECT count(*) FROM content.magic_pages WHERE tenant_id = $1", ws).await, 0);

    let sections = json!({
        "hero": {"headline": "Every step", "subheadline": "Light trail shoes", "cta_label": "Order"},
        "benefits": [{"title": "Light", "body": "Only 220 g"}],
        "social_proof": [{"quote": "Great", "author": "Ana"}],
        "faq": [{"q": "Shipping?", "a": "Free"}],
        "cta": {"headline": "Ready?", "button": "Go"},
        "submit_label": "Send"
    });
    fake.push(Reply::Answer(Script::text(sections.to_string())));
    fake.push(Reply::Answer(Script::text(sections.to_string())));
    let page = c.create_page(authed(brief("en"), &token)).await.unwrap().into_inner();
    let regenerate = pb::RegenerateSectionRequest {
        page_id: page.id.clone(),
        section: "faq".into(),
        idempotency_key: "regen-1".into(),
    };
    let v2 = c.regenerate_section(authed(regenerate.clone(), &token)).await.unwrap().into_inner();
    assert_eq!(v2.current_version, 2);
    let b = s.settled(&token).await;
    let again = c.regenerate_section(authed(regenerate, &token)).await.unwrap().into_inner();
    assert_eq!(again.current_version, 2, "answered with the page, not regenerated again");
    assert_eq!(s.settled(&token).await.available, b.available, "charged once");
    assert_eq!(s.settlements(ws).await.len(), 3, "release, page, regeneration");
    assert_eq!(s.ledger_sum(ws).await, b.available);
}
