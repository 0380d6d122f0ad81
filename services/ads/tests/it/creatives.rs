//! Campaign creatives from the platform's own media, uploaded to the ad account by the build's
//! `media` step: a content image to Meta's image library (its exact bytes; the creative names
//! the hash Meta answered), a finished video to TikTok by file with its MD5 and a SINGLE_VIDEO
//! ad, and to Meta with its thumbnail as a video creative; an upload the platform refuses fails
//! the build before any campaign; a build killed mid-upload and retried uploads once; another
//! workspace's item is not found and nothing reaches the platform; an item that does not fit is
//! refused before any call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_ads::app::media_refs::{ImageFile, Images, Videos};
use nexus_ads::domain::posts::{Media, MediaKind};
use nexus_kernel::{Error, Locale, TenantId};
use nexus_proto::nexus::ads::v1 as pb;
use nexus_testkit::fake::{FakeServer, md5_hex};

use crate::builder::meta_account;
use crate::support::{Caller, Service, code, in_process};
use crate::tiktok::tiktok_account;

/// A PNG of `w`×`h` as far as any reader of its header can tell (only the header is read).
fn png(w: u32, h: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], body: &[u8]| {
        let mut c = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        let typed = [kind, body].concat();
        c.extend_from_slice(&typed);
        c.extend_from_slice(&crate::media::crc32(&typed).to_be_bytes());
        c
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let body: Vec<u8> = (0..2048u32).map(|i| (i * 7 % 251) as u8).collect();
    [b"\x89PNG\r\n\x1a\n".to_vec(), chunk(b"IHDR", &ihdr), chunk(b"IDAT", &body), chunk(b"IEND", &[])].concat()
}

/// A video of the fake video service: its facts and bytes.
#[derive(Clone)]
struct FakeVideo {
    data: Vec<u8>,
    seconds: f64,
}

/// The video and content services as the ads service sees them: each item belongs to one
/// workspace; files are served over HTTP like the real services' signed links.
struct FakeMediaServices {
    videos: Mutex<HashMap<(TenantId, String), FakeVideo>>,
    images: Mutex<HashMap<(TenantId, String), Vec<u8>>>,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    base_url: String,
    _server: FakeServer,
}

const THUMBNAIL: &[u8] = b"\xFF\xD8\xFF\xE0 a thumbnail of one frame";

impl FakeMediaServices {
    async fn start() -> Arc<FakeMediaServices> {
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let served = files.clone();
        let router = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let served = served.clone();
            async move {
                match served.lock().unwrap().get(uri.path()) {
                    Some(data) => (axum::http::StatusCode::OK, data.clone()),
                    None => (axum::http::StatusCode::NOT_FOUND, Vec::new()),
                }
            }
        });
        let server = FakeServer::start(router).await;
        Arc::new(FakeMediaServices {
            videos: Mutex::default(),
            images: Mutex::default(),
            files,
            base_url: server.base_url.clone(),
            _server: server,
        })
    }

    fn add_video(&self, ws: TenantId, id: &str, video: FakeVideo) {
        self.files.lock().unwrap().insert(format!("/videos/{id}"), video.data.clone());
        self.files.lock().unwrap().insert(format!("/thumbnails/{id}"), THUMBNAIL.to_vec());
        self.videos.lock().unwrap().insert((ws, id.to_owned()), video);
    }

    fn add_image(&self, ws: TenantId, id: &str, data: Vec<u8>) {
        self.images.lock().unwrap().insert((ws, id.to_owned()), data);
    }

    fn video(&self, tenant: TenantId, id: &str) -> Result<FakeVideo, Error> {
        self.videos
            .lock()
            .unwrap()
            .get(&(tenant, id.to_owned()))
            .cloned()
            .ok_or_else(|| Error::not_found("video.not_found"))
    }
}

#[async_trait::async_trait]
impl Videos for FakeMediaServices {
    async fn facts(&self, tenant: TenantId, id: &str) -> Result<Media, Error> {
        let v = self.video(tenant, id)?;
        Ok(Media {
            video_id: Some(id.to_owned()),
            kind: MediaKind::Video,
            content_type: "video/mp4".into(),
            bytes: v.data.len() as u64,
            width: 1080,
            height: 1920,
            duration_secs: v.seconds,
            ..Media::default()
        })
    }

    async fn link(&self, tenant: TenantId, id: &str) -> Result<String, Error> {
        self.video(tenant, id)?;
        Ok(format!("{}/videos/{id}", self.base_url))
    }

    async fn thumbnail(&self, tenant: TenantId, id: &str) -> Result<String, Error> {
        self.video(tenant, id)?;
        Ok(format!("{}/thumbnails/{id}", self.base_url))
    }
}

#[async_trait::async_trait]
impl Images for FakeMediaServices {
    async fn read(&self, tenant: TenantId, id: &str) -> Result<ImageFile, Error> {
        let data = self
            .images
            .lock()
            .unwrap()
            .get(&(tenant, id.to_owned()))
            .cloned()
            .ok_or_else(|| Error::not_found("content.image_not_found"))?;
        Ok(ImageFile {
            content_type: "image/png".into(),
            data,
            width: 1080,
            height: 1080,
            prompt: "Winter coats".into(),
        })
    }
}

async fn start() -> (Service, Arc<FakeMediaServices>) {
    let fakes = FakeMediaServices::start().await;
    let media = nexus_ads::MediaServices { videos: Some(fakes.clone()), images: Some(fakes.clone()) };
    (Service::start_with_media(&[], media).await, fakes)
}

/// The Meta builder tests' request.
fn meta_request(connection: &str, key: &str) -> pb::BuildAdCampaignRequest {
    crate::builder::request(connection, key)
}

/// The TikTok builder tests' request, without its picture address.
fn tiktok_request(connection: &str, key: &str) -> pb::BuildAdCampaignRequest {
    pb::BuildAdCampaignRequest { image_url: String::new(), ..crate::tiktok::request(connection, key) }
}

async fn build(s: &Service, c: &Caller, req: pb::BuildAdCampaignRequest) -> Result<pb::AdBuild, tonic::Status> {
    s.client().await.build_ad_campaign(c.req(req)).await.map(tonic::Response::into_inner)
}

fn steps(b: &pb::AdBuild) -> Vec<(&str, &str)> {
    b.steps.iter().map(|s| (s.step.as_str(), s.status.as_str())).collect()
}

fn video_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 253) as u8).collect()
}

#[tokio::test]
async fn a_meta_build_with_a_content_image_uploads_its_bytes_and_the_creative_names_the_hash() {
    let (s, fakes) = start().await;
    let admin = s.admin();
    let picture = png(1080, 1080);
    fakes.add_image(admin.ws, "img_winter", picture.clone());
    let conn = meta_account(&s, &admin).await;
    let b =
        build(&s, &admin, pb::BuildAdCampaignRequest { image_id: "img_winter".into(), ..meta_request(&conn, "m-1") })
            .await
            .unwrap();
    assert_eq!(b.status, "built");
    assert_eq!(
        steps(&b),
        [
            ("media", "created"),
            ("campaign", "created"),
            ("adset", "created"),
            ("creative", "created"),
            ("ad", "created")
        ]
    );
    let images = s.meta.images();
    assert_eq!(images.len(), 1);
    assert_eq!((images[0].account.as_str(), images[0].data == picture), ("act_111", true), "the exact bytes");
    let hash = images[0].id.clone();
    assert_eq!(hash, md5_hex(&picture));
    let creative = &s.meta.live("adcreatives")[0];
    let story: serde_json::Value = serde_json::from_str(&creative.fields["object_story_spec"]).unwrap();
    assert_eq!(story["link_data"]["image_hash"], hash.as_str());
    assert!(story["link_data"]["picture"].is_null());
    assert!(b.steps[0].platform_id.contains(&hash));
    // The content image became an item of the library (once).
    assert_eq!(s.scalar("SELECT count(*) FROM ads.post_media WHERE source_image = 'img_winter'").await, 1);

    // The same request again: its outcome, no second upload.
    let again =
        build(&s, &admin, pb::BuildAdCampaignRequest { image_id: "img_winter".into(), ..meta_request(&conn, "m-1") })
            .await
            .unwrap();
    assert_eq!(again.id, b.id);
    assert_eq!(s.meta.images().len(), 1);
}

#[tokio::test]
async fn a_tiktok_build_with_a_video_uploads_it_by_file_with_its_md5_and_makes_a_single_video_ad() {
    let (s, fakes) = start().await;
    let admin = s.admin();
    let data = video_bytes(300_000);
    fakes.add_video(admin.ws, "vid_summer", FakeVideo { data: data.clone(), seconds: 15.0 });
    let conn = tiktok_account(&s, &admin).await;
    let b =
        build(&s, &admin, pb::BuildAdCampaignRequest { video_id: "vid_summer".into(), ..tiktok_request(&conn, "t-1") })
            .await
            .unwrap();
    assert_eq!(b.status, "built");
    assert_eq!(steps(&b), [("media", "created"), ("campaign", "created"), ("adgroup", "created"), ("ad", "created")]);
    let videos = s.tiktok.files("video");
    assert_eq!(videos.len(), 1);
    assert!(videos[0].data == data, "the whole video arrived");
    assert_eq!(videos[0].signature, md5_hex(&data));
    let covers = s.tiktok.files("image");
    assert_eq!(covers.len(), 1);
    assert_eq!(covers[0].data, THUMBNAIL, "the video's thumbnail is its cover");
    let ad = &s.tiktok.live("ad")[0];
    let creative = &ad.fields["creatives"][0];
    assert_eq!(creative["ad_format"], "SINGLE_VIDEO");
    assert_eq!(creative["video_id"], videos[0].id.as_str());
    assert_eq!(creative["image_ids"][0], covers[0].id.as_str());
}

#[tokio::test]
async fn a_meta_build_with_a_video_uploads_it_and_its_thumbnail_and_the_creative_is_a_video() {
    let (s, fakes) = start().await;
    let admin = s.admin();
    let data = video_bytes(200_000);
    fakes.add_video(admin.ws, "vid_meta", FakeVideo { data: data.clone(), seconds: 30.0 });
    let conn = meta_account(&s, &admin).await;
    let b =
        build(&s, &admin, pb::BuildAdCampaignRequest { video_id: "vid_meta".into(), ..meta_request(&conn, "mv-1") })
            .await
            .unwrap();
    assert_eq!(b.status, "built");
    let videos = s.meta.videos();
    assert_eq!(videos.len(), 1);
    assert!(videos[0].data == data, "the whole video arrived in the multipart body");
    let images = s.meta.images();
    assert_eq!((images.len(), images[0].data.as_slice()), (1, THUMBNAIL));
    let creative = &s.meta.live("adcreatives")[0];
    let story: serde_json::Value = serde_json::from_str(&creative.fields["object_story_spec"]).unwrap();
    assert_eq!(story["video_data"]["video_id"], videos[0].id.as_str());
    assert_eq!(story["video_data"]["image_hash"], images[0].id.as_str());
    assert_eq!(story["video_data"]["call_to_action"]["value"]["link"], "https://shop.example.com/winter");
    assert!(story["link_data"].is_null());
}

#[tokio::test]
async fn an_upload_the_platform_refuses_fails_the_build_before_any_campaign() {
    let (s, fakes) = start().await;
    let admin = s.admin();
    fakes.add_video(admin.ws, "vid_refused", FakeVideo { data: video_bytes(30_000), seconds: 12.0 });
    let conn = tiktok_account(&s, &admin).await;
    s.tiktok.fail_create("video");
    let r = pb::BuildAdCampaignRequest { video_id: "vid_refused".into(), ..tiktok_request(&conn, "t-refused") };
    let e = build(&s, &admin, r.clone()).await.unwrap_err();
    assert_eq!((e.code(), code(&e)), (tonic::Code::FailedPrecondition, "ads.build_failed".to_owned()));
    assert_eq!(s.tiktok.created("campaign"), 0);
    assert!(s.tiktok.files("video").is_empty());
    assert_eq!(s.events("nexus.ads.campaign.failed").await, 1);
    // The same request again: its outcome, nothing sent.
    let b = build(&s, &admin, r).await.unwrap();
    assert_eq!((b.status.as_str(), b.error.as_str()), ("failed", "ads.build_failed"));
    assert!(s.tiktok.files("video").is_empty());
}

#[tokio::test]
async fn a_library_video_runs_on_tiktok_with_the_cover_tiktok_drew_and_is_refused_on_meta() {
    let (s, _fakes) = start().await;
    let admin = s.admin();
    let movie = nexus_ads::domain::media::samples::mp4(720, 1280, 10, 60_000, false, false);
    let item = crate::media::upload(&s, &admin, "Teaser", "video/mp4", &movie).await.unwrap();
    let tiktok = tiktok_account(&s, &admin).await;
    let b =
        build(&s, &admin, pb::BuildAdCampaignRequest { media_id: item.id.clone(), ..tiktok_request(&tiktok, "l-1") })
            .await
            .unwrap();
    assert_eq!(b.status, "built");
    let videos = s.tiktok.files("video");
    assert_eq!(videos.len(), 1);
    assert!(videos[0].data == movie, "the stored file, byte for byte");
    assert_eq!(videos[0].signature, md5_hex(&movie));
    let creative = &s.tiktok.live("ad")[0].fields["creatives"][0];
    assert_eq!(
        (creative["ad_format"].as_str(), creative["video_id"].as_str()),
        (Some("SINGLE_VIDEO"), Some(videos[0].id.as_str()))
    );
    assert!(creative["image_ids"][0].as_str().is_some_and(|c| !c.is_empty()));

    // Meta needs a thumbnail the library does not have.
    let meta = meta_account(&s, &admin).await;
    let before = s.meta.log().len();
    let e = build(&s, &admin, pb::BuildAdCampaignRequest { media_id: item.id, ..meta_request(&meta, "l-2") })
        .await
        .unwrap_err();
    assert_eq!((e.code(), code(&e)), (tonic::Code::InvalidArgument, "ads.build_invalid".to_owned()));
    assert_eq!(s.meta.log().len(), before);
}

#[tokio::test]
async fn a_build_killed_during_the_upload_and_retried_uploads_once() {
    let (s, fakes) = start().await;
    let admin = s.admin();
    let data = video_bytes(120_000);
    fakes.add_video(admin.ws, "vid_kill", FakeVideo { data, seconds: 20.0 });
    let conn = tiktok_account(&s, &admin).await;
    let r = pb::BuildAdCampaignRequest { video_id: "vid_kill".into(), ..tiktok_request(&conn, "t-kill") };
    // The upload arrives, its answer never does: the outcome is unknown.
    s.tiktok.delay_answer("video", Duration::from_secs(30));
    s.build_killed_at(&admin, in_process(&r), "media", || s.tiktok.files("video").len() == 1).await;
    s.tiktok.delay_answer("none", Duration::ZERO);
    let b = build(&s, &admin, r.clone()).await.unwrap();
    assert_eq!(b.status, "built");
    assert_eq!(s.tiktok.files("video").len(), 1, "found by its signature, not sent again");
    let ad = &s.tiktok.live("ad")[0];
    assert_eq!(ad.fields["creatives"][0]["video_id"], s.tiktok.files("video")[0].id.as_str());

    // Meta: the upload recorded, the build killed at the next step: the retry does not upload.
    let picture = png(1200, 628);
    fakes.add_image(admin.ws, "img_kill", picture);
    let meta = meta_account(&s, &admin).await;
    let r = pb::BuildAdCampaignRequest { image_id: "img_kill".into(), ..meta_request(&meta, "m-kill") };
    s.meta.delay_answer("campaigns", Duration::from_secs(30));
    s.build_killed_at(&admin, in_process(&r), "campaign", || s.meta.created("campaigns") == 1).await;
    s.meta.delay_answer("none", Duration::ZERO);
    let b = build(&s, &admin, r).await.unwrap();
    assert_eq!(b.status, "built");
    assert_eq!(s.meta.images().len(), 1);
    assert_eq!(s.meta.created("campaigns"), 1);
}

#[tokio::test]
async fn another_workspaces_media_is_not_found_and_nothing_reaches_the_platform() {
    let (s, fakes) = start().await;
    let admin = s.admin();
    let other = s.admin();
    assert_ne!(admin.ws, other.ws);
    fakes.add_image(other.ws, "img_theirs", png(1080, 1080));
    fakes.add_video(other.ws, "vid_theirs", FakeVideo { data: video_bytes(50_000), seconds: 10.0 });
    let meta = meta_account(&s, &admin).await;
    let tiktok = tiktok_account(&s, &admin).await;
    let (meta_before, tiktok_before) = (s.meta.log().len(), s.tiktok.log().len());
    let cases = [
        pb::BuildAdCampaignRequest { image_id: "img_theirs".into(), ..meta_request(&meta, "x-1") },
        pb::BuildAdCampaignRequest { video_id: "vid_theirs".into(), ..tiktok_request(&tiktok, "x-2") },
        pb::BuildAdCampaignRequest {
            media_id: "media_0192f0c5c2b87c31a1f1e4f2b1a0c9d7".into(),
            ..tiktok_request(&tiktok, "x-3")
        },
    ];
    for bad in cases {
        let e = build(&s, &admin, bad).await.unwrap_err();
        assert_eq!((e.code(), code(&e)), (tonic::Code::NotFound, "ads.media_not_found".to_owned()));
    }
    assert_eq!(s.meta.log().len(), meta_before, "{:?}", &s.meta.log()[meta_before..]);
    assert_eq!(s.tiktok.log().len(), tiktok_before);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.ad_builds").await, 0);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.post_media").await, 0, "nothing imported");
}

#[tokio::test]
async fn media_that_does_not_fit_the_ad_is_refused_before_any_call_in_every_language() {
    let (s, fakes) = start().await;
    let admin = s.admin();
    fakes.add_image(admin.ws, "img_square", png(1080, 1080));
    fakes.add_image(admin.ws, "img_tiny", png(300, 300));
    fakes.add_video(admin.ws, "vid_long", FakeVideo { data: video_bytes(40_000), seconds: 90.0 });
    let meta = meta_account(&s, &admin).await;
    let tiktok = tiktok_account(&s, &admin).await;
    let (meta_before, tiktok_before) = (s.meta.log().len(), s.tiktok.log().len());
    let video_views = pb::BuildAdCampaignRequest {
        objective: "VIDEO_VIEWS".into(),
        optimization_goal: "VIDEO_VIEW".into(),
        image_id: "img_square".into(),
        ..tiktok_request(&tiktok, "f-1")
    };
    let cases: Vec<(pb::BuildAdCampaignRequest, &str)> = vec![
        // A format that runs only videos, given a picture.
        (video_views, "ads.build_invalid"),
        // TikTok's in-feed videos last 5 to 60 seconds.
        (
            pb::BuildAdCampaignRequest { video_id: "vid_long".into(), ..tiktok_request(&tiktok, "f-2") },
            "ads.post_media_duration",
        ),
        (pb::BuildAdCampaignRequest { image_id: "img_tiny".into(), ..meta_request(&meta, "f-3") }, "ads.build_invalid"),
        (
            pb::BuildAdCampaignRequest {
                image_id: "img_square".into(),
                image_url: "https://cdn.example.com/a.jpg".into(),
                ..meta_request(&meta, "f-4")
            },
            "ads.build_invalid",
        ),
    ];
    for (bad, want) in cases {
        let e = build(&s, &admin, bad).await.unwrap_err();
        assert_eq!((e.code(), code(&e)), (tonic::Code::InvalidArgument, want.to_owned()));
    }
    assert_eq!(s.meta.log().len(), meta_before, "{:?}", &s.meta.log()[meta_before..]);
    assert_eq!(s.tiktok.log().len(), tiktok_before, "{:?}", &s.tiktok.log()[tiktok_before..]);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.ad_builds").await, 0);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.post_media").await, 0, "a refused image is not imported");

    // The refusals name the field in Spanish and Arabic.
    let field = vec![("field".to_owned(), "image_id".to_owned())];
    let es = nexus_i18n::error_message(Locale::Es, "ads.build_invalid", &field, 400);
    assert!(es.contains("image_id") && es.contains("no es válido"), "{es}");
    let ar = nexus_i18n::error_message(Locale::Ar, "ads.build_invalid", &field, 400);
    assert!(ar.contains("image_id") && ar.contains("غير صالح"), "{ar}");
    let duration = vec![
        ("field".to_owned(), "video_id".to_owned()),
        ("min".to_owned(), "5".to_owned()),
        ("max".to_owned(), "60".to_owned()),
    ];
    let es = nexus_i18n::error_message(Locale::Es, "ads.post_media_duration", &duration, 400);
    assert!(es.contains("video_id") && es.contains("entre 5 y 60 segundos"), "{es}");
    let ar = nexus_i18n::error_message(Locale::Ar, "ads.post_media_duration", &duration, 400);
    assert!(ar.contains("video_id") && ar.contains("60"), "{ar}");
}
