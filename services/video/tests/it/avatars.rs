//! Uploaded avatars: checks on upload, other workspaces, a remote renderer's signed link and
//! the local renderer's use of the bytes.

use std::process::Command;

use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::video::v1 as pb;
use nexus_testkit::identity::authed;

use crate::support::{self, code_of, request};

/// A real PNG portrait made by ffmpeg.
fn portrait(w: u32, h: u32) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.png");
    let ok = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc=s={w}x{h}"),
            "-frames:v",
            "1",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::read(out).unwrap()
}

fn upload(data: Vec<u8>, content_type: &str) -> pb::UploadAvatarRequest {
    pb::UploadAvatarRequest { name: "Amira".into(), content_type: content_type.into(), data }
}

#[tokio::test]
async fn avatars_are_checked_private_and_handed_to_d_id_by_signed_link() {
    let s = support::start().await;
    let token = s.owner(WorkspaceId::new());
    let png = portrait(512, 640);
    let a = s.client().upload_avatar(authed(upload(png.clone(), "image/png"), &token)).await.unwrap().into_inner();
    assert_eq!((a.width, a.height, a.content_type.as_str()), (512, 640, "image/png"));
    assert!(a.id.starts_with("avt_"));

    for (req, code) in [
        (
            upload(b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(), "image/svg+xml"),
            "video.avatar_unsupported_type",
        ),
        (upload(png.clone(), "image/jpeg"), "video.avatar_unsupported_type"),
        (upload(portrait(128, 128), "image/png"), "video.avatar_bad_dimensions"),
        (upload(vec![0; 5 * 1024 * 1024 + 1], "image/png"), "video.avatar_too_large"),
    ] {
        let err = s.client().upload_avatar(authed(req, &token)).await.unwrap_err();
        assert_eq!(code_of(&err), code);
    }
    let list = s.client().list_avatars(authed(pb::ListRequest::default(), &token)).await.unwrap().into_inner();
    assert_eq!(list.items.len(), 1);

    // Another workspace neither sees, uses nor deletes it.
    let other = s.owner(WorkspaceId::new());
    let list = s.client().list_avatars(authed(pb::ListRequest::default(), &other)).await.unwrap().into_inner();
    assert!(list.items.is_empty());
    let mut theirs = request("Not yours");
    theirs.avatar_url = format!("avatar:{}", a.id);
    assert_eq!(code_of(&s.create(&other, theirs.clone()).await.unwrap_err()), "video.avatar_not_found");
    let err = s.client().delete_avatar(authed(pb::GetByIdRequest { id: a.id.clone() }, &other)).await.unwrap_err();
    assert_eq!(code_of(&err), "video.avatar_not_found");

    // D-ID gets a signed link to the image, which serves exactly the uploaded bytes.
    let v = s.create(&token, theirs).await.unwrap();
    s.wait_for(&token, &v.id, "done").await;
    let talk = s.did.talks()[0].clone();
    let source = talk["source_url"].as_str().unwrap();
    let link = source.strip_prefix("http://127.0.0.1:8080/v1/media/avatars/").expect("an avatar link");
    let mut stream = s
        .client()
        .open_download(nexus_proto::common::OpenFileRequest { token: link.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let head = stream.message().await.unwrap().unwrap().head.unwrap();
    assert_eq!(head.content_type, "image/png");
    let mut got = Vec::new();
    while let Some(c) = stream.message().await.unwrap() {
        got.extend_from_slice(&c.data);
    }
    assert_eq!(got, png);

    s.client().delete_avatar(authed(pb::GetByIdRequest { id: a.id.clone() }, &token)).await.unwrap();
    let gone = s
        .client()
        .open_download(nexus_proto::common::OpenFileRequest { token: link.into(), ..Default::default() })
        .await;
    assert_eq!(code_of(&gone.unwrap_err()), "video.download_link_invalid");
}

#[tokio::test]
async fn the_local_renderer_uses_an_uploaded_portrait() {
    let s =
        support::start_with(&[("NEXUS_VOICE__PROVIDER", "local".into()), ("NEXUS_RENDER__PROVIDER", "local".into())])
            .await;
    let token = s.owner(WorkspaceId::new());
    let a =
        s.client().upload_avatar(authed(upload(portrait(600, 600), "image/png"), &token)).await.unwrap().into_inner();
    let req = pb::CreateVideoRequest {
        script: "Hola, bienvenidos a nuestra tienda.".into(),
        avatar_url: format!("avatar:{}", a.id),
        voice_id: "local-male".into(),
        language: "es".into(),
        aspect_ratio: "16:9".into(),
        captions: true,
        ..Default::default()
    };
    let v = s.create(&token, req).await.unwrap();
    let done = s.wait_for(&token, &v.id, "done").await;
    assert!(done.size_bytes > 1000 && done.duration_seconds > 1.0, "{done:?}");
}
