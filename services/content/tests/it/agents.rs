use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::content::v1 as pb;
use nexus_testkit::identity::authed;

use crate::support::*;

fn agent(language: &str) -> pb::AgentInput {
    pb::AgentInput {
        name: "Nova".into(),
        instructions: "Answer briefly and kindly.".into(),
        language: language.into(),
        knowledge: vec![
            "Enviamos a todo Portugal en 48 horas.".into(),
            "Las devoluciones son gratis durante 30 días.".into(),
            "La tienda abre de 9 a 18.".into(),
        ],
    }
}

fn chat(agent_id: &str, contact: &str, message: &str, key: &str) -> pb::ChatRequest {
    pb::ChatRequest {
        agent_id: agent_id.into(),
        contact_id: contact.into(),
        message: message.into(),
        idempotency_key: key.into(),
    }
}

#[tokio::test]
async fn agents_answer_from_their_knowledge_keep_history_and_charge_per_reply() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let mut c = s.client();
    let a = c.create_agent(authed(agent("es"), &token)).await.unwrap().into_inner();
    assert_eq!((a.language.as_str(), a.knowledge.len()), ("es", 3));
    let before = s.balance(&token).await.available;

    let r1 = c
        .chat(authed(chat(&a.id, "wa:5511999", "¿Cuánto tardan los envíos a Portugal?", ""), &token))
        .await
        .unwrap()
        .into_inner();
    let text = r1.reply.as_ref().unwrap().content.clone();
    assert!(text.contains("Enviamos a todo Portugal en 48 horas."), "{text}");
    assert!(text.contains("Nova"), "greets on the first message: {text}");
    assert_eq!((r1.provider.as_str(), r1.credits), ("local", 1));
    let r2 =
        c.chat(authed(chat(&a.id, "wa:5511999", "¿Y las devoluciones?", "turn-2"), &token)).await.unwrap().into_inner();
    assert!(r2.reply.as_ref().unwrap().content.contains("devoluciones son gratis"));
    assert_eq!(r2.conversation_id, r1.conversation_id, "one conversation per contact");
    let again =
        c.chat(authed(chat(&a.id, "wa:5511999", "¿Y las devoluciones?", "turn-2"), &token)).await.unwrap().into_inner();
    assert_eq!(again.reply, r2.reply, "a retried turn returns the stored reply");
    let unknown = c.chat(authed(chat(&a.id, "wa:5511999", "hola", ""), &token)).await.unwrap().into_inner();
    assert!(!unknown.reply.unwrap().content.contains("Enviamos"), "no snippet without shared words");
    assert_eq!(s.settled(&token).await.available, before - 3, "three replies, charged once each");

    let other_contact =
        c.chat(authed(chat(&a.id, "crm:42", "envíos Portugal", ""), &token)).await.unwrap().into_inner();
    assert_ne!(other_contact.conversation_id, r1.conversation_id);
    let history = c
        .list_messages(authed(
            pb::ListMessagesRequest { agent_id: a.id.clone(), contact_id: "wa:5511999".into(), limit: 0 },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let roles: Vec<_> = history.items.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant", "user", "assistant"]);
    assert_eq!(history.items[0].content, "¿Cuánto tardan los envíos a Portugal?");
    let events = "SELECT count(*) FROM content.outbox WHERE tenant_id = $1 AND subject = 'nexus.content.agent.replied'";
    assert_eq!(s.count(events, ws).await, 4);
    let audit: Vec<String> = sqlx::query_scalar(
        "SELECT audit::text FROM content.outbox WHERE tenant_id = $1 AND audit->>'table' = 'agent_messages'",
    )
    .bind(ws.as_uuid())
    .fetch_all(&s.admin().await)
    .await
    .unwrap();
    assert!(!audit.is_empty() && audit.iter().all(|a| !a.contains("Portugal")), "messages stay out of the audit trail");

    // Bad input, other workspaces, plan limit.
    for (req, code) in [
        (chat(&a.id, "", "hola", ""), "content.invalid_contact"),
        (chat(&a.id, "c1", "", ""), "content.field_required"),
        (chat(&a.id, "c1", &"x".repeat(5000), ""), "content.field_too_long"),
        (chat("agt_nope", "c1", "hola", ""), "content.agent_not_found"),
    ] {
        assert_eq!(code_of(&c.chat(authed(req, &token)).await.unwrap_err()), code);
    }
    let other = s.owner(WorkspaceId::new());
    assert_eq!(
        code_of(&c.chat(authed(chat(&a.id, "c1", "hola", ""), &other)).await.unwrap_err()),
        "content.agent_not_found"
    );
    assert_eq!(
        code_of(&c.get_agent(authed(pb::GetByIdRequest { id: a.id.clone() }, &other)).await.unwrap_err()),
        "content.agent_not_found"
    );
    let e = c.create_agent(authed(agent("es"), &token)).await.unwrap_err();
    assert_eq!(code_of(&e), "subscriptions.limit_reached", "FREE has one agent");
    let bad = pb::AgentInput { knowledge: vec!["k".into(); 51], ..agent("es") };
    assert_eq!(code_of(&c.create_agent(authed(bad, &other)).await.unwrap_err()), "content.too_many_snippets");

    let updated = c
        .update_agent(authed(
            pb::UpdateAgentRequest {
                id: a.id.clone(),
                agent: Some(pb::AgentInput { language: "ar".into(), ..agent("es") }),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((updated.language.as_str(), updated.dir), ("ar", nexus_proto::common::TextDirection::Rtl as i32));
    c.delete_agent(authed(pb::GetByIdRequest { id: a.id.clone() }, &token)).await.unwrap();
    assert_eq!(s.count("SELECT count(*) FROM content.agent_messages WHERE tenant_id = $1", ws).await, 0);
}

#[tokio::test]
async fn images_are_made_locally_and_shown_by_published_pages_only() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let mut c = s.client();
    let before = s.balance(&token).await.available;
    let img = c
        .create_image(authed(
            pb::CreateImageRequest {
                purpose: "hero".into(),
                prompt: "trail shoes on a mountain".into(),
                caption: "أحذية الجري".into(),
                language: "ar".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (img.status.as_str(), img.provider.as_str(), img.content_type.as_str(), img.width, img.height),
        ("succeeded", "local", "image/svg+xml", 1024, 576)
    );
    assert_eq!(s.settled(&token).await.available, before - 2, "content.image costs 2");
    for (req, code) in [
        (
            pb::CreateImageRequest { purpose: "poster".into(), prompt: "x".into(), ..Default::default() },
            "content.unknown_purpose",
        ),
        (
            pb::CreateImageRequest { purpose: "ad".into(), prompt: "x".into(), width: 300, ..Default::default() },
            "content.invalid_image_size",
        ),
        (
            pb::CreateImageRequest { purpose: "ad".into(), prompt: String::new(), ..Default::default() },
            "content.field_required",
        ),
    ] {
        assert_eq!(code_of(&c.create_image(authed(req, &token)).await.unwrap_err()), code);
    }
    let other = s.owner(WorkspaceId::new());
    assert_eq!(
        code_of(&c.get_image(authed(pb::GetByIdRequest { id: img.id.clone() }, &other)).await.unwrap_err()),
        "content.image_not_found"
    );

    let page = c.create_page(authed(crate::pages::brief("ar"), &token)).await.unwrap().into_inner();
    let hero = format!(r#"{{"headline":"عرض","subheadline":"خفيف","cta_label":"اطلب","image_id":"{}"}}"#, img.id);
    c.update_section(authed(
        pb::UpdateSectionRequest {
            page_id: page.id.clone(),
            section: "hero".into(),
            content_json: hero.clone(),
            base_version: 0,
        },
        &token,
    ))
    .await
    .unwrap();
    // Another workspace's image cannot be put on a page.
    let theirs = c.create_page(authed(crate::pages::brief("en"), &other)).await.unwrap().into_inner();
    let e = c
        .update_section(authed(
            pb::UpdateSectionRequest {
                page_id: theirs.id.clone(),
                section: "hero".into(),
                content_json: hero,
                base_version: 0,
            },
            &other,
        ))
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), "content.image_not_found");

    let asset = pb::GetPublishedAssetRequest { slug: "shoes-ar".into(), asset_id: img.id.clone() };
    assert_eq!(code_of(&c.get_published_asset(asset.clone()).await.unwrap_err()), "content.page_not_found");
    c.publish_page(authed(pb::PublishPageRequest { id: page.id.clone(), slug: "shoes-ar".into() }, &token))
        .await
        .unwrap();
    let html = c
        .get_published_page(pb::GetPublishedPageRequest { slug: "shoes-ar".into(), count_view: false, thanks: false })
        .await
        .unwrap()
        .into_inner()
        .html;
    crate::pages::check_page(&html, "ar", "rtl");
    assert!(html.contains(&format!("src=\"/p/shoes-ar/assets/{}\"", img.id)));
    let served = c.get_published_asset(asset).await.unwrap().into_inner();
    assert_eq!(served.content_type, "image/svg+xml");
    let svg = String::from_utf8(served.data).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("direction=\"rtl\"") && svg.contains("أحذية الجري"));
    // Only the image the published page shows is reachable through it.
    let second = c
        .create_image(authed(
            pb::CreateImageRequest { purpose: "ad".into(), prompt: "secret".into(), ..Default::default() },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let e = c
        .get_published_asset(pb::GetPublishedAssetRequest { slug: "shoes-ar".into(), asset_id: second.id })
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), "content.image_not_found");
}

#[tokio::test]
async fn a_service_acting_for_a_workspace_chats_with_its_agents_and_no_one_else_s() {
    // What the WhatsApp chatbot will do: call content's agents with a service token bound to the
    // workspace, not with any user's token.
    let s = start().await;
    let ws = WorkspaceId::new();
    let owner = s.owner(ws);
    let mut c = s.client();
    let a = c.create_agent(authed(agent("es"), &owner)).await.unwrap().into_inner();
    let before = s.balance(&owner).await.available;

    let bot = s.issuer.service_token(ws, "messaging");
    let r = c
        .chat(authed(chat(&a.id, "wa:5511888", "¿Envíos a Portugal?", "wa-msg-1"), &bot))
        .await
        .expect("a workspace-bound service token may chat")
        .into_inner();
    assert!(r.reply.unwrap().content.contains("Portugal"));
    assert_eq!(s.settled(&owner).await.available, before - 1, "the reply is charged to the workspace");

    // Bound to another workspace, the same service sees nothing of this one.
    let elsewhere = s.issuer.service_token(WorkspaceId::new(), "messaging");
    let err = c.chat(authed(chat(&a.id, "wa:5511888", "hola", ""), &elsewhere)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
}
