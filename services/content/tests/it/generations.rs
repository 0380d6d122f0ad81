use futures::StreamExt;
use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::content::v1 as pb;
use nexus_proto::nexus::subscriptions::v1 as spb;
use nexus_testkit::identity::authed;

use crate::support::*;

const KINDS: [(&str, &str); 6] = [
    ("ad_copy", "facebook"),
    ("social_post", "x"),
    ("email", ""),
    ("product_description", ""),
    ("whatsapp_template", ""),
    ("landing_page_copy", ""),
];

#[tokio::test]
async fn every_kind_in_every_language_is_generated_locally_stored_and_charged() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let mut c = s.client();
    let before = s.balance(&token).await.available;
    let mut charged = 0;
    for lang in ["en", "es", "pt", "he", "ar"] {
        for (kind, platform) in KINDS {
            let g = c.generate(authed(request(kind, platform, lang), &token)).await.unwrap().into_inner();
            assert_eq!((g.provider.as_str(), g.status.as_str(), g.language.as_str()), ("local", "succeeded", lang));
            assert_eq!(g.prompt_version, format!("{kind}/v1"));
            assert!(!g.variants.is_empty());
            for v in &g.variants {
                assert!(!v.body.is_empty());
                assert!(v.body.chars().count() <= g.body_limit as usize, "{kind} {lang}");
                assert!(v.title.chars().count() <= g.title_limit as usize);
            }
            if lang == "ar" {
                assert_eq!(g.dir, nexus_proto::common::TextDirection::Rtl as i32);
                assert!(g.variants[0].body.chars().any(|c| ('\u{0621}'..='\u{064a}').contains(&c)));
            }
            assert!(g.usage.unwrap().total_tokens > 0);
            assert_eq!(g.credits, 1, "local generations cost the content.generation price");
            charged += g.credits;
            let input: serde_json::Value = serde_json::from_str(&g.input_json).unwrap();
            assert_eq!(input["product"], "Trail Runner X");
        }
    }
    assert_eq!(s.settled(&token).await.available, before - charged);
    assert_eq!(s.count("SELECT count(*) FROM content.generations WHERE tenant_id = $1", ws).await, 30);
    let events =
        "SELECT count(*) FROM content.outbox WHERE tenant_id = $1 AND subject = 'nexus.content.content.generated'";
    assert_eq!(s.count(events, ws).await, 30, "one content.generated event each");
    let listed = c
        .list_generations(authed(
            pb::ListRequest { page: Some(nexus_proto::common::PageRequest { page_size: 25, cursor: String::new() }) },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.items.len(), 25);
    assert!(!listed.page.unwrap().next_cursor.is_empty());
}

#[tokio::test]
async fn too_few_credits_produce_nothing_and_charge_nothing() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    // Spend the whole FREE grant on a hold of another action.
    let b = s.balance(&token).await;
    s.subs()
        .reserve(authed(
            spb::ReserveRequest {
                action: "video.render_minute".into(),
                credits: b.available,
                idempotency_key: "drain".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap();
    let before = s.balance(&token).await;
    assert_eq!(before.available, 0);
    let rows = s.ledger_rows(ws).await;

    let e = s.client().generate(authed(request("ad_copy", "", "es"), &token)).await.unwrap_err();
    assert_eq!(code_of(&e), "subscriptions.insufficient_credits");
    assert_eq!(nexus_kernel::Error::from_status(&e).kind(), nexus_kernel::ErrorKind::PaymentRequired);
    let Err(e) = s.client().generate_stream(authed(request("email", "", "ar"), &token)).await else {
        panic!("refused before streaming")
    };
    assert_eq!(code_of(&e), "subscriptions.insufficient_credits");

    let after = s.balance(&token).await;
    assert_eq!((after.available, after.reserved), (before.available, before.reserved));
    assert_eq!(s.ledger_rows(ws).await, rows, "no ledger entry");
    assert_eq!(s.count("SELECT count(*) FROM content.generations WHERE tenant_id = $1", ws).await, 0);
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_generation_and_charges_once() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let before = s.balance(&token).await.available;
    let mut req = request("social_post", "linkedin", "pt");
    req.idempotency_key = "post-42".into();
    let (mut c1, mut c2) = (s.client(), s.client());
    let (a, b) = tokio::join!(c1.generate(authed(req.clone(), &token)), c2.generate(authed(req.clone(), &token)));
    let (a, b) = (a.unwrap().into_inner(), b.unwrap().into_inner());
    assert_eq!(a.id, b.id);
    let again = s.client().generate(authed(req, &token)).await.unwrap().into_inner();
    assert_eq!(again.id, a.id);
    assert_eq!(s.settled(&token).await.available, before - 1);
    assert_eq!(s.count("SELECT count(*) FROM content.generations WHERE tenant_id = $1", ws).await, 1);
}

#[tokio::test]
async fn streams_deltas_then_the_stored_generation() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let mut stream =
        s.client().generate_stream(authed(request("ad_copy", "instagram", "he"), &token)).await.unwrap().into_inner();
    let mut text = std::collections::BTreeMap::<(u32, String), String>::new();
    let mut done = None;
    let mut deltas = 0;
    while let Some(ev) = stream.next().await {
        match ev.unwrap().event.unwrap() {
            pb::generate_event::Event::Delta(d) => {
                assert!(done.is_none(), "no delta after done");
                deltas += 1;
                text.entry((d.variant, d.field)).or_default().push_str(&d.text);
            }
            pb::generate_event::Event::Done(g) => done = Some(g),
        }
    }
    let g = done.expect("a done event");
    assert!(deltas > 10);
    assert_eq!(g.variants.len(), 3);
    for (i, v) in g.variants.iter().enumerate() {
        assert_eq!(text[&(i as u32, "body".to_owned())], v.body);
        assert_eq!(text[&(i as u32, "title".to_owned())], v.title);
    }
    let stored =
        s.client().get_generation(authed(pb::GetByIdRequest { id: g.id.clone() }, &token)).await.unwrap().into_inner();
    assert_eq!(stored.variants, g.variants);
}

#[tokio::test]
async fn bad_input_and_other_tenants_are_refused_without_charge() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let before = s.balance(&token).await.available;
    let mut c = s.client();
    for (req, code) in [
        (request("poem", "", "en"), "content.unknown_kind"),
        (request("social_post", "", "en"), "content.platform_required"),
        (request("email", "x", "en"), "content.platform_not_applicable"),
        (request("email", "", "fr"), "content.unsupported_language"),
        (pb::GenerateRequest { product: String::new(), ..request("email", "", "en") }, "content.field_required"),
        (pb::GenerateRequest { product: "x".repeat(500), ..request("email", "", "en") }, "content.field_too_long"),
        (pb::GenerateRequest { variants: 9, ..request("ad_copy", "", "en") }, "content.too_many_variants"),
        (pb::GenerateRequest { tone: "sarcastic".into(), ..request("ad_copy", "", "en") }, "content.unknown_tone"),
        (
            pb::GenerateRequest { idempotency_key: "k".repeat(300), ..request("email", "", "en") },
            "content.invalid_idempotency_key",
        ),
    ] {
        let e = c.generate(authed(req, &token)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{code}");
        assert_eq!(code_of(&e), code);
    }
    assert_eq!(s.settled(&token).await.available, before);

    let g = c.generate(authed(request("email", "", "en"), &token)).await.unwrap().into_inner();
    let other = s.owner(WorkspaceId::new());
    let e = c.get_generation(authed(pb::GetByIdRequest { id: g.id.clone() }, &other)).await.unwrap_err();
    assert_eq!(code_of(&e), "content.generation_not_found");
    let e = c.get_generation(authed(pb::GetByIdRequest { id: "gen_nope".into() }, &token)).await.unwrap_err();
    assert_eq!(code_of(&e), "content.generation_not_found");
    let e = c.generate(tonic::Request::new(request("email", "", "en"))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    let viewer = s.issuer.user_token(ws, nexus_platform::identity::Role::Viewer);
    let e = c.generate(authed(request("email", "", "en"), &viewer)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
}

#[tokio::test]
async fn every_tenant_table_is_protected() {
    let s = start().await;
    let tables = nexus_testkit::db::assert_tenant_tables_protected(&s.admin().await, "content").await;
    for t in [
        "generations",
        "magic_pages",
        "page_versions",
        "page_leads",
        "image_assets",
        "ai_agents",
        "agent_conversations",
        "agent_messages",
    ] {
        assert!(tables.iter().any(|x| x == t), "{t} missing from {tables:?}");
    }
}
