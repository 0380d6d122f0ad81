//! The media library of posts: uploads measured from their bytes (never the client's word),
//! refused when their type, size or bytes are wrong (nothing stored), private to their
//! workspace, served through signed expiring links with byte ranges, and kept while a post that
//! may still go out names them.

use chrono::Utc;
use nexus_ads::domain::media::samples;
use nexus_platform::links::LinkKeys;
use nexus_proto::common::{FileHead, OpenFileRequest};
use nexus_proto::nexus::ads::v1 as pb;
use nexus_proto::nexus::ads::v1::upload_media_chunk::Part;
use serde_json::json;
use sha2::Digest as _;

use crate::support::{Caller, Service, code};

async fn start() -> Service {
    Service::start_with(&[
        ("NEXUS_POSTS__POLL_INTERVAL", "1h".into()),
        ("NEXUS_POSTS__SANDBOX_PROCESSING", "0s".into()),
        ("NEXUS_MEDIA__MAX_IMAGE_BYTES", "4096".into()),
        ("NEXUS_MEDIA__MAX_VIDEO_BYTES", "65536".into()),
    ])
    .await
}

pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A complete PNG of `w`×`h` grey pixels (zlib with one stored block), so any decoder reads it.
fn png(w: u32, h: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], body: &[u8]| {
        let mut c = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        let typed = [kind, body].concat();
        c.extend_from_slice(&typed);
        c.extend_from_slice(&crc32(&typed).to_be_bytes());
        c
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let raw: Vec<u8> = (0..h).flat_map(|_| std::iter::once(0u8).chain(std::iter::repeat_n(0x80, w as usize))).collect();
    let (mut a, mut b) = (1u32, 0u32);
    for x in &raw {
        a = (a + u32::from(*x)) % 65521;
        b = (b + a) % 65521;
    }
    let len = u16::try_from(raw.len()).unwrap();
    let mut zlib = vec![0x78, 0x01, 0x01];
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    [b"\x89PNG\r\n\x1a\n".to_vec(), chunk(b"IHDR", &ihdr), chunk(b"IDAT", &zlib), chunk(b"IEND", &[])].concat()
}

/// The messages of an upload: the head, the bytes in `chunk`-sized pieces, and `end` unless the
/// upload is cut.
fn messages(name: &str, content_type: &str, data: &[u8], chunk: usize, end: bool) -> Vec<pb::UploadMediaChunk> {
    let head = pb::UploadMediaHead { name: name.into(), content_type: content_type.into() };
    let mut out = vec![pb::UploadMediaChunk { part: Some(Part::Head(head)) }];
    out.extend(data.chunks(chunk).map(|c| pb::UploadMediaChunk { part: Some(Part::Data(c.to_vec())) }));
    if end {
        out.push(pb::UploadMediaChunk { part: Some(Part::End(true)) });
    }
    out
}

async fn send(s: &Service, c: &Caller, msgs: Vec<pb::UploadMediaChunk>) -> Result<pb::MediaItem, tonic::Status> {
    let req = c.req(futures::stream::iter(msgs));
    s.client().await.upload_media(req).await.map(tonic::Response::into_inner)
}

pub(crate) async fn upload(
    s: &Service,
    c: &Caller,
    name: &str,
    ct: &str,
    data: &[u8],
) -> Result<pb::MediaItem, tonic::Status> {
    send(s, c, messages(name, ct, data, 1000, true)).await
}

fn token_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

/// The whole answer of a link: its head and bytes.
async fn open(s: &Service, req: OpenFileRequest) -> Result<(FileHead, Vec<u8>), tonic::Status> {
    let mut stream = s.client().await.open_media(req).await?.into_inner();
    let head = stream.message().await?.and_then(|m| m.head).expect("a head first");
    let mut data = Vec::new();
    while let Some(m) = stream.message().await? {
        data.extend_from_slice(&m.data);
    }
    Ok((head, data))
}

fn whole(token: &str) -> OpenFileRequest {
    OpenFileRequest { token: token.into(), ..Default::default() }
}

/// Stored objects under the service's storage root.
fn stored_files(s: &Service) -> usize {
    fn walk(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .map(|rd| rd.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum::<usize>())
            .unwrap_or(0)
    }
    walk(s.store.path())
}

#[tokio::test]
async fn uploads_are_measured_listed_and_served_by_signed_links_with_ranges() {
    let s = start().await;
    let admin = s.admin();
    let picture = png(12, 20);
    let img = upload(&s, &admin, " Logo ", "image/png", &picture).await.unwrap();
    assert!(img.id.starts_with("media_"), "{}", img.id);
    assert_eq!((img.name.as_str(), img.kind.as_str(), img.content_type.as_str()), ("Logo", "image", "image/png"));
    assert_eq!((img.bytes, img.width, img.height, img.duration_secs), (picture.len() as u64, 12, 20, 0.0));
    assert_eq!(img.sha256, hex::encode(sha2::Sha256::digest(&picture)));

    // A video whose moov follows its data, sent in pieces that split its boxes.
    let movie = samples::mp4(1280, 720, 7, 30_000, false, false);
    let vid = send(&s, &admin, messages("Teaser", "video/mp4", &movie, 777, true)).await.unwrap();
    assert_eq!((vid.kind.as_str(), vid.width, vid.height, vid.duration_secs), ("video", 1280, 720, 7.0));
    assert_eq!(vid.bytes, movie.len() as u64);

    let listed = s.client().await.list_media(admin.req(pb::ListRequest { page: None })).await.unwrap().into_inner();
    let ids: Vec<&str> = listed.items.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, [vid.id.as_str(), img.id.as_str()], "newest first");
    let got = s.client().await.get_media(admin.req(pb::GetByIdRequest { id: img.id.clone() })).await.unwrap();
    assert_eq!(got.into_inner().sha256, img.sha256);

    // What the scheduler reads: the facts as a post's media, and a fresh link.
    let facts = s.app.media_facts(admin.ws, &vid.id).await.unwrap();
    assert_eq!((facts.width, facts.height, facts.duration_secs, facts.bytes), (1280, 720, 7.0, movie.len() as u64));
    assert_eq!((facts.url.as_str(), facts.media_id.as_deref()), ("", Some(vid.id.as_str())));
    let link = s.app.media_link(admin.ws, &vid.id).await.unwrap();
    assert!(link.starts_with("http://127.0.0.1:8080/v1/media/posts/media_"), "{link}");

    // The link serves the bytes, whole or one range.
    let (head, all) = open(&s, whole(&token_of(&link))).await.unwrap();
    assert_eq!(all, movie);
    assert_eq!((head.content_type.as_str(), head.total_size, head.partial), ("video/mp4", movie.len() as u64, false));
    assert_eq!(head.filename, format!("{}.mp4", vid.id));
    let range = OpenFileRequest { has_range: true, start: 100, end: Some(199), ..whole(&token_of(&vid.url)) };
    let (head, part) = open(&s, range).await.unwrap();
    assert_eq!((head.start, head.end, head.partial), (100, 199, true));
    assert_eq!(part, movie[100..200]);
    let suffix = OpenFileRequest { has_range: true, suffix_length: 10, ..whole(&token_of(&img.url)) };
    assert_eq!(open(&s, suffix).await.unwrap().1, picture[picture.len() - 10..]);
    let past = OpenFileRequest { has_range: true, start: movie.len() as u64, ..whole(&token_of(&link)) };
    assert_eq!(code(&open(&s, past).await.unwrap_err()), "ads.media_range_not_satisfiable");
}

#[tokio::test]
async fn wrong_types_oversize_garbage_and_cut_uploads_are_refused_and_nothing_is_kept() {
    let s = start().await;
    let admin = s.admin();
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg'></svg>".to_vec();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("image/jpeg", png(8, 8), "ads.media_unsupported_type"),
        ("video/mp4", png(8, 8), "ads.media_unsupported_type"),
        ("image/png", svg, "ads.media_unsupported_type"),
        ("image/png", Vec::new(), "ads.media_unsupported_type"),
        ("image/png", png(80, 60), "ads.media_too_large"),
        ("video/mp4", samples::mp4(640, 360, 3, 70_000, true, false), "ads.media_too_large"),
    ];
    for (declared, data, expected) in &cases {
        let e = upload(&s, &admin, "x", declared, data).await.unwrap_err();
        assert_eq!(code(&e), *expected, "{declared} of {} bytes", data.len());
    }
    // A video cut short (its declared mdat runs past the end), and one with no moov.
    let whole_video = samples::mp4(640, 360, 3, 5_000, true, false);
    let e = upload(&s, &admin, "cut", "video/mp4", &whole_video[..whole_video.len() - 100]).await.unwrap_err();
    assert_eq!(code(&e), "ads.media_unreadable");
    let no_moov =
        [samples::mp4_box(b"ftyp", b"isom\x00\x00\x02\x00isom"), samples::mp4_box(b"mdat", &[7; 500])].concat();
    assert_eq!(code(&upload(&s, &admin, "m", "video/mp4", &no_moov).await.unwrap_err()), "ads.media_unreadable");
    // An upload that stops without its end marker, one with no head, and a bad name.
    let cut = messages("cut", "image/png", &png(8, 8), 50, false);
    assert_eq!(code(&send(&s, &admin, cut).await.unwrap_err()), "ads.media_upload_interrupted");
    let headless = vec![pb::UploadMediaChunk { part: Some(Part::Data(png(8, 8))) }];
    assert_eq!(code(&send(&s, &admin, headless).await.unwrap_err()), "ads.media_head_first");
    assert_eq!(code(&upload(&s, &admin, "  ", "image/png", &png(8, 8)).await.unwrap_err()), "ads.media_name_invalid");

    assert_eq!(s.scalar("SELECT count(*) FROM ads.post_media").await, 0);
    assert_eq!(stored_files(&s), 0, "refused uploads leave no file");

    // Viewers read but do not upload.
    let viewer = s.caller(nexus_platform::identity::Role::Viewer);
    assert_eq!(
        upload(&s, &viewer, "v", "image/png", &png(8, 8)).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
}

#[tokio::test]
async fn another_workspace_cannot_see_delete_or_link_an_item() {
    let s = start().await;
    let (admin, other) = (s.admin(), s.admin());
    let item = upload(&s, &admin, "Logo", "image/png", &png(10, 10)).await.unwrap();
    let by_id = || pb::GetByIdRequest { id: item.id.clone() };
    let e = s.client().await.get_media(other.req(by_id())).await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (tonic::Code::NotFound, "ads.media_not_found"));
    let e = s.client().await.delete_media(other.req(by_id())).await.unwrap_err();
    assert_eq!(code(&e), "ads.media_not_found");
    assert_eq!(s.app.media_facts(other.ws, &item.id).await.unwrap_err().code(), "ads.media_not_found");
    assert_eq!(s.app.media_link(other.ws, &item.id).await.unwrap_err().code(), "ads.media_not_found");
    let listed = s.client().await.list_media(other.req(pb::ListRequest { page: None })).await.unwrap().into_inner();
    assert!(listed.items.is_empty());
    for junk in ["", "media_nope", "post_0192f0c5c2b87c31a1f1e4f2b1a0c9d7"] {
        let e = s.client().await.get_media(admin.req(pb::GetByIdRequest { id: junk.into() })).await.unwrap_err();
        assert_eq!(code(&e), "ads.media_not_found", "{junk:?}");
    }
    // Still there for its own workspace.
    assert!(s.client().await.get_media(admin.req(by_id())).await.is_ok());
}

#[tokio::test]
async fn expired_tampered_and_foreign_tokens_are_refused_alike() {
    let s = start().await;
    let admin = s.admin();
    let item = upload(&s, &admin, "Logo", "image/png", &png(10, 10)).await.unwrap();
    let good = token_of(&item.url);
    let dev = LinkKeys::parse(nexus_ads::config::DEV_MEDIA_LINK_KEY).unwrap();
    let expired = dev.sign_id(&item.id, Utc::now() - chrono::Duration::seconds(1));
    let stranger = LinkKeys::parse("dev:c29tZWJvZHktZWxzZXMta2V5LWZvci1hZHMtbWVkaWEtbGlua3M=").unwrap();
    let forged = stranger.sign_id(&item.id, Utc::now() + chrono::Duration::minutes(5));
    // A valid signature over something that is not a media id (another service's kind of id).
    let other_kind = dev.sign_id("vid_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", Utc::now() + chrono::Duration::minutes(5));
    let mut tampered = good.clone();
    let at = "media_".len();
    tampered.replace_range(at..=at, if &tampered[at..=at] == "a" { "b" } else { "a" });
    for bad in [expired, forged, other_kind, tampered, "junk".into(), String::new()] {
        let e = open(&s, whole(&bad)).await.unwrap_err();
        assert_eq!((e.code(), code(&e).as_str()), (tonic::Code::NotFound, "ads.media_link_invalid"), "{bad}");
    }
    assert!(open(&s, whole(&good)).await.is_ok());
}

#[tokio::test]
async fn an_item_a_post_still_to_publish_names_cannot_be_deleted() {
    let s = start().await;
    let admin = s.admin();
    let conn = s.connect_local(&admin).await;
    let item = upload(&s, &admin, "Cover", "image/png", &png(10, 10)).await.unwrap();
    let kept = upload(&s, &admin, "Spare", "image/png", &png(11, 11)).await.unwrap();
    // The post names the item; its facts come from the library (a page takes PNG photos).
    let spec = json!({"text": "Launch", "media": [{"media_id": item.id}],
        "targets": [{"connection_id": conn.id, "account": "local_page_1"}]});
    let post = s.client().await.create_post(admin.req(pb::CreatePostRequest { spec_json: spec.to_string() })).await;
    let post = post.unwrap().into_inner();
    assert_eq!(post.status, "scheduled");
    let variant: serde_json::Value = serde_json::from_str(&post.targets[0].variant_json).unwrap();
    let m = &variant["media"][0];
    assert_eq!((m["media_id"].as_str(), m["url"].as_str()), (Some(item.id.as_str()), Some("")), "{variant}");
    assert_eq!(
        (m["content_type"].as_str(), m["width"].as_u64(), m["bytes"].as_u64()),
        (Some("image/png"), Some(10), Some(item.bytes as u64))
    );

    let by_id = |id: &str| pb::GetByIdRequest { id: id.into() };
    let e = s.client().await.delete_media(admin.req(by_id(&item.id))).await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (tonic::Code::AlreadyExists, "ads.media_in_use"));
    assert!(open(&s, whole(&token_of(&item.url))).await.is_ok(), "still served");
    // An item no post names goes.
    s.client().await.delete_media(admin.req(by_id(&kept.id))).await.unwrap();

    // Once published, the post no longer holds it.
    for _ in 0..2 {
        s.app.publish_due().await.unwrap();
    }
    s.client().await.delete_media(admin.req(by_id(&item.id))).await.unwrap();
    let e = s.client().await.get_media(admin.req(by_id(&item.id))).await.unwrap_err();
    assert_eq!(code(&e), "ads.media_not_found");
    assert_eq!(code(&open(&s, whole(&token_of(&item.url))).await.unwrap_err()), "ads.media_link_invalid");
    assert_eq!(s.app.media_facts(admin.ws, &item.id).await.unwrap_err().code(), "ads.media_not_found");
    let e = s.client().await.delete_media(admin.req(by_id(&item.id))).await.unwrap_err();
    assert_eq!(code(&e), "ads.media_not_found", "deleted once");
    // The rows stay (soft delete); the files are gone.
    assert_eq!(s.scalar("SELECT count(*) FROM ads.post_media WHERE deleted_at IS NOT NULL").await, 2);
    assert_eq!(stored_files(&s), 0);
}
