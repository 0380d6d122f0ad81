//! Translating store texts: labelled local copies without a model, a model's translations
//! checked against what was asked, each charged as a generation; bad languages refused.

use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::content::v1 as pb;
use nexus_testkit::identity::authed;
use nexus_testkit::openai::{Reply, Script, TEST_MODEL};
use serde_json::json;

use crate::support::*;

fn request(targets: &[&str]) -> pb::TranslateRequest {
    pb::TranslateRequest {
        texts: vec!["Ceramic mug".into(), String::new(), "<p>Holds 350 ml.</p>".into()],
        source_language: "en".into(),
        target_languages: targets.iter().map(|t| (*t).to_owned()).collect(),
    }
}

#[tokio::test]
async fn without_a_model_texts_come_back_labelled_not_translated_and_charged_as_a_generation() {
    let s = start().await;
    let token = s.owner(WorkspaceId::new());
    let before = s.balance(&token).await.available;
    let t = s.client().translate(authed(request(&["es", "ar"]), &token)).await.unwrap().into_inner();
    assert_eq!((t.provider.as_str(), t.model.as_str(), t.credits), ("local", "local-untranslated-v1", 1));
    let got: Vec<(&str, Vec<&str>)> =
        t.translations.iter().map(|x| (x.language.as_str(), x.texts.iter().map(String::as_str).collect())).collect();
    assert_eq!(
        got,
        vec![
            ("es", vec!["[es] Ceramic mug", "", "[es] <p>Holds 350 ml.</p>"]),
            ("ar", vec!["[ar] Ceramic mug", "", "[ar] <p>Holds 350 ml.</p>"]),
        ]
    );
    assert_eq!(t.translations[1].dir, nexus_proto::common::TextDirection::Rtl as i32);
    assert_eq!(s.settled(&token).await.available, before - 1);

    // Anything but the five languages, the source again, or a language twice: refused, free.
    let mut c = s.client();
    for (source, targets) in
        [("en", vec!["fr"]), ("xx", vec!["es"]), ("en", vec!["en"]), ("en", vec!["es", "es"]), ("en", vec![])]
    {
        let mut r = request(&targets);
        r.source_language = source.into();
        let e = c.translate(authed(r, &token)).await.unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (tonic::Code::InvalidArgument, "content.translation_invalid"),
            "{source} {targets:?}"
        );
    }
    let e = c.translate(authed(pb::TranslateRequest { texts: vec![], ..request(&["es"]) }, &token)).await.unwrap_err();
    assert_eq!(e.message(), "content.translation_invalid");
    let e = c.translate(tonic::Request::new(request(&["es"]))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    assert_eq!(s.settled(&token).await.available, before - 1);
}

#[tokio::test]
async fn a_models_translations_are_used_only_when_complete_and_charged_by_tokens() {
    let (s, fake) = with_model().await;
    let token = s.owner(WorkspaceId::new());
    let before = s.balance(&token).await.available;
    let answer = json!({"translations": [
        {"language": "es", "texts": ["Taza de cerámica", "", "<p>Capacidad de 350 ml.</p>"]},
        {"language": "ar", "texts": ["كوب سيراميك", "", "<p>يتسع لـ 350 مل.</p>"]},
    ]});
    fake.push(Reply::Answer(Script::text(answer.to_string()).completion_tokens(1200)));
    let t = s.client().translate(authed(request(&["es", "ar"]), &token)).await.unwrap().into_inner();
    assert_eq!((t.provider.as_str(), t.model.as_str()), ("openai", TEST_MODEL));
    assert_eq!(t.translations[0].texts[0], "Taza de cerámica");
    assert_eq!(t.translations[1].texts[2], "<p>يتسع لـ 350 مل.</p>");
    let usage = t.usage.unwrap();
    assert_eq!(t.credits, (usage.total_tokens + 999) / 1000);
    assert_eq!(s.settled(&token).await.available, before - t.credits);
    let sent = &fake.requests()[0];
    assert_eq!(sent.body["response_format"]["json_schema"]["name"], "translations");
    let prompt = sent.body["messages"].to_string();
    assert!(prompt.contains("Arabic (ar)") && prompt.contains("Ceramic mug"), "{prompt}");

    // A language missing from the answer: nothing used, nothing charged.
    let short = json!({"translations": [{"language": "es", "texts": ["Taza", "", "<p>350 ml</p>"]}]});
    fake.push(Reply::Answer(Script::text(short.to_string())));
    let e = s.client().translate(authed(request(&["es", "ar"]), &token)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable);
    assert_eq!(s.settled(&token).await.available, before - t.credits);
}
