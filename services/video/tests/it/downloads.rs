//! Signed download links: whole files and byte ranges, expired or tampered links, other
//! workspaces, and deletion removing the file.

use std::time::Duration;

use chrono::Utc;
use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::video::v1 as pb;
use nexus_testkit::identity::authed;
use nexus_video::domain::links::LinkKeys;

use crate::support::{self, code_of, request};

/// Reads a download: its head and all its bytes.
async fn read(
    s: &support::Stack,
    req: nexus_proto::common::OpenFileRequest,
) -> Result<(nexus_proto::common::FileHead, Vec<u8>), tonic::Status> {
    let mut stream = s.client().open_download(req).await?.into_inner();
    let head = stream.message().await?.and_then(|m| m.head).expect("a head first");
    let mut data = Vec::new();
    while let Some(chunk) = stream.message().await? {
        assert!(chunk.head.is_none());
        data.extend_from_slice(&chunk.data);
    }
    Ok((head, data))
}

fn files_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).map(|p| if p.is_dir() { files_in(&p) } else { 1 }).sum())
        .unwrap_or(0)
}

fn whole(token: &str) -> nexus_proto::common::OpenFileRequest {
    nexus_proto::common::OpenFileRequest { token: token.into(), ..Default::default() }
}

#[tokio::test]
async fn links_serve_whole_files_and_ranges_and_refuse_forgeries() {
    let s = support::start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    s.did.set_result_bytes(300_000);
    let v = s.create(&token, request("Download me")).await.unwrap();
    let done = s.wait_for(&token, &v.id, "done").await;
    assert_eq!(done.size_bytes, 300_000);
    let link = s
        .client()
        .create_download_link(authed(pb::GetByIdRequest { id: v.id.clone() }, &token))
        .await
        .unwrap()
        .into_inner();
    assert!(link.url.ends_with(&link.token) && link.url.starts_with("http://127.0.0.1:8080/v1/media/videos/"));

    assert_eq!(files_in(s.store.path()), 2, "the video and its thumbnail");
    let (head, all) = read(&s, whole(&link.token)).await.unwrap();
    assert_eq!((head.total_size, head.start, head.end, head.partial), (300_000, 0, 299_999, false));
    assert_eq!(all.len(), 300_000);
    assert_eq!(&all[4..8], b"ftyp");

    let range =
        nexus_proto::common::OpenFileRequest { has_range: true, start: 1000, end: Some(1999), ..whole(&link.token) };
    let (head, part) = read(&s, range).await.unwrap();
    assert_eq!((head.start, head.end, head.partial), (1000, 1999, true));
    assert_eq!(part, all[1000..2000]);
    let suffix = nexus_proto::common::OpenFileRequest { has_range: true, suffix_length: 10, ..whole(&link.token) };
    let (head, tail) = read(&s, suffix).await.unwrap();
    assert_eq!((head.start, tail.as_slice()), (299_990, &all[299_990..]));
    let past = nexus_proto::common::OpenFileRequest { has_range: true, start: 300_000, ..whole(&link.token) };
    assert_eq!(code_of(&read(&s, past).await.unwrap_err()), "video.range_not_satisfiable");

    // Tampered, expired, and signed with a key we do not hold: all refused alike.
    let id = nexus_video::domain::VideoId::parse(&v.id).unwrap().to_string();
    let dev = LinkKeys::parse(nexus_video::config::DEV_LINK_KEY).unwrap();
    let expired = dev.sign_id(&id, Utc::now() - chrono::Duration::seconds(1));
    let stranger = LinkKeys::parse("dev:c29tZWJvZHktZWxzZXMta2V5LWZvci12aWRlby1saW5rcw==").unwrap();
    let forged = stranger.sign_id(&id, Utc::now() + chrono::Duration::minutes(5));
    let mut tampered = link.token.clone();
    tampered.replace_range(4..5, if &tampered[4..5] == "a" { "b" } else { "a" });
    for bad in [expired, forged, tampered, "junk".into(), String::new()] {
        let err = read(&s, whole(&bad)).await.unwrap_err();
        assert_eq!(
            (err.code(), code_of(&err).as_str()),
            (tonic::Code::PermissionDenied, "video.download_link_invalid")
        );
    }

    // Another workspace cannot get a link, nor delete.
    let other = s.owner(WorkspaceId::new());
    let err =
        s.client().create_download_link(authed(pb::GetByIdRequest { id: v.id.clone() }, &other)).await.unwrap_err();
    assert_eq!(code_of(&err), "video.not_found");
    let err = s.client().delete_video(authed(pb::GetByIdRequest { id: v.id.clone() }, &other)).await.unwrap_err();
    assert_eq!(code_of(&err), "video.not_found");

    // Deleting removes the file; the link stops working.
    s.client().delete_video(authed(pb::GetByIdRequest { id: v.id.clone() }, &token)).await.unwrap();
    assert_eq!(files_in(s.store.path()), 0, "the objects are gone");
    assert_eq!(code_of(&read(&s, whole(&link.token)).await.unwrap_err()), "video.download_link_invalid");
    let err = s.client().get_video(authed(pb::GetByIdRequest { id: v.id.clone() }, &token)).await.unwrap_err();
    assert_eq!(code_of(&err), "video.not_found");
}

#[tokio::test]
async fn unfinished_videos_have_no_link_and_cannot_be_deleted() {
    let s = support::start().await;
    let token = s.owner(WorkspaceId::new());
    s.did.set_completion(nexus_testkit::did::Completion::Webhook);
    let v = s.create(&token, request("Not yet")).await.unwrap();
    assert!(nexus_testkit::eventually(Duration::from_secs(10), || async { s.did.talks_for(&v.id) == 1 }).await);
    let err =
        s.client().create_download_link(authed(pb::GetByIdRequest { id: v.id.clone() }, &token)).await.unwrap_err();
    assert_eq!((err.code(), code_of(&err).as_str()), (tonic::Code::FailedPrecondition, "video.not_ready"));
    let err = s.client().delete_video(authed(pb::GetByIdRequest { id: v.id.clone() }, &token)).await.unwrap_err();
    assert_eq!(code_of(&err), "video.not_deletable");
}

#[tokio::test]
async fn files_over_the_cap_fail_the_video_and_give_back() {
    let s = support::start_with(&[("NEXUS_STORAGE__MAX_VIDEO_BYTES", "100000".into())]).await;
    let token = s.owner(WorkspaceId::new());
    let before = s.balance(&token).await;
    s.did.set_result_bytes(200_000);
    let v = s.create(&token, request("Too big")).await.unwrap();
    let failed = s.wait_for(&token, &v.id, "failed").await;
    assert_eq!(failed.error_code, "video.file_too_large");
    assert_eq!(s.settled(&token).await.available, before.available);
}

#[tokio::test]
async fn thumbnails_are_served_by_their_own_signed_links() {
    let s = support::start().await;
    let token = s.owner(WorkspaceId::new());
    let v = s.create(&token, request("A picture of me")).await.unwrap();
    let done = s.wait_for(&token, &v.id, "done").await;
    let thumb = done.thumbnail_url.rsplit('/').next().unwrap().to_owned();
    let (head, jpeg) = read(&s, whole(&thumb)).await.unwrap();
    assert_eq!((head.content_type.as_str(), head.partial), ("image/jpeg", false));
    assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]) && jpeg.len() as u64 == head.total_size);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jpg");
    std::fs::write(&path, &jpeg).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "320,180", "one frame of the video");
    let range = nexus_proto::common::OpenFileRequest { has_range: true, start: 0, end: Some(9), ..whole(&thumb) };
    assert_eq!(read(&s, range).await.unwrap().1, jpeg[..10]);

    // A tampered thumbnail link is refused; a video's link does not open the thumbnail.
    let mut tampered = thumb.clone();
    tampered.replace_range(5..6, if &tampered[5..6] == "a" { "b" } else { "a" });
    assert_eq!(code_of(&read(&s, whole(&tampered)).await.unwrap_err()), "video.download_link_invalid");
    let link = s
        .client()
        .create_download_link(authed(pb::GetByIdRequest { id: v.id.clone() }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read(&s, whole(&link.token)).await.unwrap().0.content_type, "video/mp4");

    // Deleted with the video.
    s.client().delete_video(authed(pb::GetByIdRequest { id: v.id.clone() }, &token)).await.unwrap();
    assert_eq!(files_in(s.store.path()), 0);
    assert_eq!(code_of(&read(&s, whole(&thumb)).await.unwrap_err()), "video.download_link_invalid");
}

#[tokio::test]
async fn a_provider_file_that_is_not_a_video_fails_and_gives_back() {
    let s = support::start().await;
    let token = s.owner(WorkspaceId::new());
    let before = s.balance(&token).await;
    s.did.serve_unplayable_files();
    let v = s.create(&token, request("Broken render")).await.unwrap();
    let failed = s.wait_for(&token, &v.id, "failed").await;
    assert_eq!(failed.error_code, "video.render_failed");
    assert!((failed.width, failed.height, failed.thumbnail_url.as_str()) == (0, 0, ""));
    assert_eq!(files_in(s.store.path()), 0, "nothing kept");
    assert_eq!(s.settled(&token).await.available, before.available);
    assert_eq!(s.videos_used(&token).await, 0);
}
