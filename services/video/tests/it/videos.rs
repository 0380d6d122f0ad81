//! Creating, reading and listing videos: bad input, other workspaces, idempotency, estimates.

use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::video::v1 as pb;
use nexus_testkit::identity::authed;

use crate::support::{self, code_of, request};

#[tokio::test]
async fn bad_input_is_refused_in_the_callers_language_and_changes_nothing() {
    let s = support::start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let before = s.balance(&token).await;
    let cases: Vec<(pb::CreateVideoRequest, &str)> = vec![
        (pb::CreateVideoRequest { script: String::new(), ..request("x") }, "video.field_required"),
        (request(&"x".repeat(5001)), "video.field_too_long"),
        (request("bad \u{7} bell"), "video.field_invalid"),
        (
            pb::CreateVideoRequest { avatar_url: "http://insecure.example.com/a.jpg".into(), ..request("x") },
            "video.invalid_avatar_url",
        ),
        (pb::CreateVideoRequest { avatar_url: "not a url".into(), ..request("x") }, "video.invalid_avatar_url"),
        (pb::CreateVideoRequest { voice_id: "../../etc".into(), ..request("x") }, "video.unknown_voice"),
        (pb::CreateVideoRequest { language: "fr".into(), ..request("x") }, "video.unsupported_language"),
        (pb::CreateVideoRequest { aspect_ratio: "4:3".into(), ..request("x") }, "video.invalid_aspect_ratio"),
        (pb::CreateVideoRequest { idempotency_key: "k".repeat(201), ..request("x") }, "video.invalid_idempotency_key"),
    ];
    for (req, code) in cases {
        let mut r = authed(req, &token);
        r.metadata_mut().insert("accept-language", "ar".parse().unwrap());
        let err = s.client().create_video(r).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{code}: {err:?}");
        assert_eq!(code_of(&err), code);
        let message = nexus_kernel::Error::from_status(&err).to_string();
        assert!(!message.is_empty());
    }
    let list = s.client().list_videos(authed(pb::ListRequest::default(), &token)).await.unwrap().into_inner();
    assert!(list.items.is_empty());
    assert_eq!(s.balance(&token).await.available, before.available, "no credits held");
    assert_eq!(s.videos_used(&token).await, 0);
    assert_eq!(s.eleven.requests().len() + s.did.requests().len(), 0);
}

#[tokio::test]
async fn another_workspace_cannot_see_or_cancel_a_video() {
    let s = support::start().await;
    let (a, b) = (s.owner(WorkspaceId::new()), s.owner(WorkspaceId::new()));
    let v = s.create(&a, request("Mine only")).await.unwrap();
    let get = s.client().get_video(authed(pb::GetByIdRequest { id: v.id.clone() }, &b)).await.unwrap_err();
    assert_eq!((get.code(), code_of(&get).as_str()), (tonic::Code::NotFound, "video.not_found"));
    let cancel = s.client().cancel_video(authed(pb::GetByIdRequest { id: v.id.clone() }, &b)).await.unwrap_err();
    assert_eq!(code_of(&cancel), "video.not_found");
    let steps = s.client().list_transitions(authed(pb::GetByIdRequest { id: v.id.clone() }, &b)).await.unwrap_err();
    assert_eq!(code_of(&steps), "video.not_found");
    let list = s.client().list_videos(authed(pb::ListRequest::default(), &b)).await.unwrap().into_inner();
    assert!(list.items.is_empty());
    // Malformed ids read as unknown ones.
    let junk = s.client().get_video(authed(pb::GetByIdRequest { id: "vid_'; DROP".into() }, &a)).await.unwrap_err();
    assert_eq!(code_of(&junk), "video.not_found");
    // The owner's video went on untouched.
    s.wait_for(&a, &v.id, "done").await;
}

#[tokio::test]
async fn the_same_key_returns_the_same_video_once() {
    let s = support::start().await;
    let token = s.owner(WorkspaceId::new());
    let mut req = request("Only once");
    req.idempotency_key = "order-42".into();
    let first = s.create(&token, req.clone()).await.unwrap();
    let second = s.create(&token, req).await.unwrap();
    assert_eq!(first.id, second.id);
    s.wait_for(&token, &first.id, "done").await;
    assert_eq!(s.videos_used(&token).await, 1);
    assert_eq!(s.did.talks().len(), 1);
}

#[tokio::test]
async fn estimates_and_voices() {
    let s = support::start().await;
    let token = s.owner(WorkspaceId::new());
    let e = s.client().estimate_video(authed(request(&"word ".repeat(200)), &token)).await.unwrap().into_inner();
    assert_eq!((e.characters, e.minutes, e.credits), (999, 2, 20));
    assert_eq!((e.voice_provider.as_str(), e.render_provider.as_str()), ("elevenlabs", "d-id"));
    let voices = s.client().list_voices(authed(pb::Empty {}, &token)).await.unwrap().into_inner();
    assert_eq!(voices.items.len(), 2);
    let again = s.client().list_voices(authed(pb::Empty {}, &token)).await.unwrap().into_inner();
    assert_eq!(again.items.len(), 2);
    assert_eq!(s.eleven.requests().len(), 1, "voices are cached");
    // With the list at hand, an unknown voice is refused at once.
    let mut req = request("x");
    req.voice_id = "UnknownVoice123".into();
    let err = s.create(&token, req).await.unwrap_err();
    assert_eq!(code_of(&err), "video.unknown_voice");
    assert_eq!(err.code(), tonic::Code::NotFound, "a well-formed id of no voice is not found");
    // Hebrew videos are right to left.
    let mut he = request("שלום");
    he.language = "he".into();
    let v = s.create(&token, he).await.unwrap();
    assert_eq!(v.dir, nexus_proto::common::TextDirection::Rtl as i32);
}
