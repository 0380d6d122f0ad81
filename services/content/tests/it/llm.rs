//! Generations through an OpenAI-compatible model (the fake OpenAI server).

use futures::StreamExt;
use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::content::v1 as pb;
use nexus_testkit::identity::authed;
use nexus_testkit::openai::{CutMode, Reply, Script, TEST_MODEL};
use serde_json::json;

use crate::support::*;

fn copy_json(n: usize) -> String {
    let variants: Vec<_> = (0..n).map(|i| json!({"title": format!("Título {i}"), "body": format!("Cuerpo del anuncio número {i}, con \"comillas\".")})).collect();
    json!({"variants": variants}).to_string()
}

#[tokio::test]
async fn a_model_generation_is_charged_by_its_tokens() {
    let (s, fake) = with_model().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let before = s.balance(&token).await.available;
    fake.push(Reply::Answer(Script::text(copy_json(3)).completion_tokens(1800)));
    let g = s.client().generate(authed(request("ad_copy", "facebook", "es"), &token)).await.unwrap().into_inner();
    assert_eq!((g.provider.as_str(), g.model.as_str(), g.status.as_str()), ("openai", TEST_MODEL, "succeeded"));
    assert_eq!(g.variants.len(), 3);
    assert_eq!(g.variants[0].body, "Cuerpo del anuncio número 0, con \"comillas\".");
    let usage = g.usage.unwrap();
    assert_eq!(usage.completion_tokens, 1800);
    assert_eq!(g.credits, (usage.total_tokens + 999) / 1000, "one credit per started thousand tokens");
    assert_eq!(s.settled(&token).await.available, before - g.credits);

    let sent = &fake.requests()[0];
    assert_eq!(sent.body["response_format"]["type"], "json_schema");
    let prompt = sent.body["messages"].to_string();
    assert!(prompt.contains("Trail Runner X") && prompt.contains("Spanish") && prompt.contains("125"), "{prompt}");
}

#[tokio::test]
async fn a_stream_cut_midway_keeps_and_charges_what_was_produced() {
    let (s, fake) = with_model().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let before = s.balance(&token).await.available;
    fake.push(Reply::Answer(Script::text(copy_json(3)).cut_after(25, CutMode::Abort)));
    let mut stream =
        s.client().generate_stream(authed(request("ad_copy", "", "es"), &token)).await.unwrap().into_inner();
    let mut streamed = std::collections::BTreeMap::<(u32, String), String>::new();
    let mut done = None;
    while let Some(ev) = stream.next().await {
        match ev.unwrap().event.unwrap() {
            pb::generate_event::Event::Delta(d) => streamed.entry((d.variant, d.field)).or_default().push_str(&d.text),
            pb::generate_event::Event::Done(g) => done = Some(g),
        }
    }
    let g = done.expect("the partial generation");
    assert_eq!(g.status, "incomplete");
    assert!(!streamed.is_empty());
    for (i, v) in g.variants.iter().enumerate() {
        let shown = |f: &str| streamed.get(&(i as u32, f.to_owned())).cloned().unwrap_or_default();
        assert_eq!(
            (shown("title"), shown("body")),
            (v.title.clone(), v.body.clone()),
            "what was shown is what was kept"
        );
    }
    assert!(g.credits >= 1);
    assert_eq!(s.settled(&token).await.available, before - g.credits, "charged for what was produced, hold released");
    assert_eq!(s.settled(&token).await.reserved, 0);
}

#[tokio::test]
async fn provider_failures_charge_nothing_and_store_nothing() {
    let (s, fake) = with_model().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let before = s.balance(&token).await;
    fake.push(Reply::insufficient_quota());
    let e = s.client().generate(authed(request("email", "", "pt"), &token)).await.unwrap_err();
    assert_eq!(code_of(&e), "provider.quota_exceeded");
    assert_eq!(fake.requests().len(), 1, "no retry on insufficient_quota");
    fake.push(Reply::Answer(Script::text("this is not JSON")));
    let e = s.client().generate(authed(request("email", "", "pt"), &token)).await.unwrap_err();
    assert_eq!(code_of(&e), "provider.generation_failed");
    let after = s.settled(&token).await;
    assert_eq!((after.available, after.reserved), (before.available, 0));
    assert_eq!(s.count("SELECT count(*) FROM content.generations WHERE tenant_id = $1", ws).await, 0);
}

#[tokio::test]
async fn pages_and_agent_replies_come_from_the_model() {
    let (s, fake) = with_model().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let page = json!({
        "hero": {"headline": "עוצמה בכל צעד", "subheadline": "נעלי ריצה קלות", "cta_label": "להזמנה"},
        "benefits": [{"title": "קלות", "body": "רק 220 גרם"}],
        "social_proof": [{"quote": "מעולה", "author": "לקוחה"}],
        "faq": [{"q": "משלוח?", "a": "חינם"}],
        "cta": {"headline": "מוכנים?", "button": "קדימה"},
        "submit_label": "שליחה"
    });
    fake.push(Reply::Answer(Script::text(page.to_string())));
    let p = s.client().create_page(authed(crate::pages::brief("he"), &token)).await.unwrap().into_inner();
    assert_eq!(p.provider, "openai");
    let sections: serde_json::Value = serde_json::from_str(&p.sections_json).unwrap();
    assert_eq!(sections["hero"]["headline"], "עוצמה בכל צעד");
    assert_eq!(sections["lead_form"]["submit_label"], "שליחה");

    let a = s
        .client()
        .create_agent(authed(
            pb::AgentInput {
                name: "Nova".into(),
                language: "he".into(),
                knowledge: vec!["משלוח חינם מעל 200 ש\"ח".into()],
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    fake.push(Reply::Answer(Script::text("המשלוח חינם מעל 200 ש\"ח.")));
    let r = s
        .client()
        .chat(authed(
            pb::ChatRequest {
                agent_id: a.id,
                contact_id: "c1".into(),
                message: "כמה עולה משלוח?".into(),
                idempotency_key: String::new(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.reply.unwrap().content, "המשלוח חינם מעל 200 ש\"ח.");
    let sent = fake.requests().last().unwrap().body["messages"].to_string();
    assert!(sent.contains("משלוח חינם מעל 200"), "the relevant snippet is in the prompt: {sent}");
}
