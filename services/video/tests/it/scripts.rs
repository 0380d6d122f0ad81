//! Scripts written by the content service (its local generator) for requests with a topic,
//! called as the video service with a service token for the workspace, and charged by content.

use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::content::v1 as cpb;
use nexus_proto::nexus::content::v1::content_client::ContentClient;
use nexus_proto::nexus::video::v1 as pb;
use nexus_testkit::identity::authed;
use nexus_testkit::service_auth::FakeServiceAuth;

use crate::support::{self, code_of, request};

#[tokio::test]
async fn a_topic_gets_its_script_from_content_in_the_videos_language() {
    let mut s = support::start().await;
    let (content_url, _content) = s.start_content().await;
    let auth = FakeServiceAuth::start(s.issuer.clone()).await;
    s.stop_video().await;
    s.configure(&[("NEXUS_SERVICES__CONTENT", content_url.clone()), ("NEXUS_IDENTITY__AUTH_URL", auth.url.clone())]);
    s.start_video().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let before = s.balance(&token).await;

    let ask = pb::CreateVideoRequest {
        script: String::new(),
        topic: "Zapatillas de trail".into(),
        brief: "Rebajas de primavera".into(),
        language: "es".into(),
        idempotency_key: "spring-es".into(),
        ..request("")
    };
    let v = s.create(&token, ask.clone()).await.unwrap();
    assert!(v.characters > 20, "{v:?}");
    assert_eq!(v.language, "es");
    // The same request again: the same video, no second script.
    assert_eq!(s.create(&token, ask).await.unwrap().id, v.id);
    let done = s.wait_for(&token, &v.id, "done").await;
    assert_eq!(s.eleven.speech_requests(), 1);

    // Content wrote it as the video service acting for this workspace, in Spanish.
    assert_eq!(auth.seen(), [("video".to_owned(), Some(ws))]);
    let mut content =
        ContentClient::new(nexus_platform::grpc::channel(&content_url, std::time::Duration::from_secs(10)).unwrap());
    let list = content.list_generations(authed(cpb::ListRequest::default(), &token)).await.unwrap().into_inner();
    assert_eq!(list.items.len(), 1, "one generation for the workspace");
    let g = &list.items[0];
    assert_eq!(
        (g.kind.as_str(), g.language.as_str(), g.platform.as_str(), g.provider.as_str()),
        ("social_post", "es", "tiktok", "local")
    );
    assert_eq!(v.characters as usize, g.variants[0].body.trim().chars().count());
    // Charged: content's generation and the video.
    let after = s.settled(&token).await;
    assert!(g.credits > 0);
    assert_eq!(before.available - after.available, g.credits + done.credits_charged);
}

#[tokio::test]
async fn a_script_and_a_topic_together_are_refused() {
    let s = support::start().await;
    let token = s.owner(WorkspaceId::new());
    let both = pb::CreateVideoRequest { topic: "Sale".into(), ..request("Hello") };
    let err = s.create(&token, both).await.unwrap_err();
    assert_eq!((err.code(), code_of(&err).as_str()), (tonic::Code::InvalidArgument, "video.script_or_topic"));
    let brief_only = pb::CreateVideoRequest { brief: "Shoes".into(), ..request("") };
    assert_eq!(code_of(&s.create(&token, brief_only).await.unwrap_err()), "video.field_required");
    assert_eq!(s.did.talks().len(), 0);
}
