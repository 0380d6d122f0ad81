//! Storage in an S3-compatible bucket (the fake S3 checks every request's SigV4 signature):
//! the whole pipeline stores into it in parts, downloads read ranges back, deletion removes the
//! object, and a wrong secret key stores nothing.

use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::video::v1 as pb;
use nexus_testkit::identity::authed;
use nexus_testkit::s3::{self, FakeS3};
use nexus_video::app::storage::Storage;

use crate::support::{self, request};

fn settings(fake: &FakeS3, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("NEXUS_STORAGE__BACKEND", "s3".into()),
        ("NEXUS_STORAGE__S3__BUCKET", fake.bucket.clone()),
        ("NEXUS_STORAGE__S3__ENDPOINT", fake.base_url.clone()),
        ("NEXUS_STORAGE__S3__REGION", s3::TEST_REGION.into()),
        ("NEXUS_STORAGE__S3__ACCESS_KEY_ID", s3::TEST_ACCESS_KEY_ID.into()),
        ("NEXUS_STORAGE__S3__SECRET_ACCESS_KEY", secret.into()),
        ("NEXUS_STORAGE__S3__ALLOW_HTTP", "true".into()),
    ]
}

/// The storage the video service builds from these settings.
fn storage_with(extra: &[(&str, String)]) -> anyhow::Result<Storage> {
    let env: Vec<(String, String)> = extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    let cfg: nexus_video::Config = nexus_platform::config::load_from_env("video", nexus_video::DEFAULTS, None, env)?;
    Storage::new(&cfg.storage)
}

async fn read(
    s: &support::Stack,
    req: nexus_proto::common::OpenFileRequest,
) -> (nexus_proto::common::FileHead, Vec<u8>) {
    let mut stream = s.client().open_download(req).await.unwrap().into_inner();
    let head = stream.message().await.unwrap().and_then(|m| m.head).expect("a head first");
    let mut data = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        data.extend_from_slice(&chunk.data);
    }
    (head, data)
}

#[tokio::test]
async fn videos_are_stored_in_s3_in_parts_served_by_range_and_deleted() {
    let fake = FakeS3::start().await;
    let s = support::start_with(&settings(&fake, s3::TEST_SECRET_ACCESS_KEY)).await;
    let token = s.owner(WorkspaceId::new());
    // Three parts: two of 5 MiB (S3's smallest but the last) and the rest.
    let size = 12 * 1024 * 1024 + 123;
    s.did.set_result_bytes(size);
    let v = s.create(&token, request("Stored in a bucket")).await.unwrap();
    let done = s.wait_for(&token, &v.id, "done").await;
    assert_eq!(done.size_bytes, size as i64);

    let keys = fake.keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys[0].starts_with("videos/") && keys[0].ends_with(".jpg"), "the thumbnail beside it: {keys:?}");
    assert_eq!(keys[1], keys[0].replace(".jpg", ".mp4"));
    let keys = &keys[1..];
    let stored = fake.object(&keys[0]).unwrap();
    assert_eq!(stored.len(), size);
    assert_eq!(fake.open_uploads(), 0);
    let parts = fake
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.target.contains(".mp4?") && r.target.contains("partNumber="))
        .count();
    assert_eq!(parts, 3);
    assert!(fake.requests().iter().all(|r| r.error.is_none()), "{:?}", fake.requests());
    assert!(s.store.path().read_dir().unwrap().next().is_none(), "nothing on the local disk");

    let link = s
        .client()
        .create_download_link(authed(pb::GetByIdRequest { id: v.id.clone() }, &token))
        .await
        .unwrap()
        .into_inner();
    let whole = nexus_proto::common::OpenFileRequest { token: link.token.clone(), ..Default::default() };
    let range = nexus_proto::common::OpenFileRequest {
        has_range: true,
        start: 5 * 1024 * 1024 - 10,
        end: Some(5 * 1024 * 1024 + 9),
        ..whole.clone()
    };
    let (head, bytes) = read(&s, range).await;
    assert_eq!((head.total_size, head.partial), (size as u64, true));
    assert_eq!(bytes, stored[5 * 1024 * 1024 - 10..5 * 1024 * 1024 + 10], "a range across two parts");
    let suffix = nexus_proto::common::OpenFileRequest { has_range: true, suffix_length: 100, ..whole.clone() };
    assert_eq!(read(&s, suffix).await.1, stored[size - 100..]);
    assert!(fake.requests().iter().any(|r| r.method == "GET" && r.status == 206));

    s.client().delete_video(authed(pb::GetByIdRequest { id: v.id.clone() }, &token)).await.unwrap();
    assert!(fake.keys().is_empty(), "the objects are gone at the store");
}

#[tokio::test]
async fn a_wrong_secret_key_stores_nothing() {
    nexus_testkit::init_tracing();
    let fake = FakeS3::start().await;
    let storage = storage_with(&settings(&fake, "not-the-secret")).unwrap();
    let err = storage.put_bytes("videos/a/b.jpg", vec![1, 2, 3]).await.unwrap_err();
    assert!(err.to_string().contains("SignatureDoesNotMatch"), "{err}");
    assert!(fake.keys().is_empty());
    assert!(fake.requests().iter().all(|r| r.status == 403));

    // The right key works through the same calls, and a missing object is not found.
    let storage = storage_with(&settings(&fake, s3::TEST_SECRET_ACCESS_KEY)).unwrap();
    storage.put_bytes("videos/a/b.jpg", vec![1, 2, 3]).await.unwrap();
    assert_eq!(fake.object("videos/a/b.jpg").unwrap(), vec![1, 2, 3]);
    assert!(matches!(storage.read_all("videos/a/none.jpg").await, Err(object_store::Error::NotFound { .. })));
    storage.delete("videos/a/b.jpg").await.unwrap();
    storage.delete("videos/a/b.jpg").await.unwrap();
    assert!(fake.keys().is_empty());
}

#[test]
fn s3_settings_are_checked_at_start() {
    nexus_platform::install_crypto_provider();
    let load = |extra: &[(&str, &str)]| {
        let extra: Vec<(&str, String)> = extra.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        storage_with(&extra).map(|_| ()).map_err(|e| e.to_string())
    };
    let base = [
        ("NEXUS_STORAGE__BACKEND", "s3"),
        ("NEXUS_STORAGE__S3__BUCKET", "b"),
        ("NEXUS_STORAGE__S3__ACCESS_KEY_ID", "AK"),
        ("NEXUS_STORAGE__S3__SECRET_ACCESS_KEY", "sk"),
        ("NEXUS_STORAGE__S3__ENDPOINT", "http://127.0.0.1:9000"),
    ];
    let err = load(&base).unwrap_err();
    assert!(err.starts_with("storage.s3.endpoint"), "{err}");
    let mut with_http = base.to_vec();
    with_http.push(("NEXUS_STORAGE__S3__ALLOW_HTTP", "true"));
    load(&with_http).unwrap();
    let err = load(&base[..3]).unwrap_err();
    assert!(err.starts_with("storage.s3.secret_access_key"), "{err}");
    let err = load(&[("NEXUS_STORAGE__BACKEND", "gcs")]).unwrap_err();
    assert!(err.starts_with("storage.backend"), "{err}");
}

/// The fake behaves as S3 does where clients depend on it: listing by prefix and delimiter, and
/// parts under 5 MiB (but the last) refused when an upload completes.
#[tokio::test]
async fn the_fake_lists_and_refuses_small_parts_as_s3_does() {
    use futures::TryStreamExt as _;
    use object_store::{ObjectStore as _, ObjectStoreExt as _, PutPayload, path::Path};
    nexus_testkit::init_tracing();
    let fake = FakeS3::start().await;
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(&fake.bucket)
        .with_region(s3::TEST_REGION)
        .with_access_key_id(s3::TEST_ACCESS_KEY_ID)
        .with_secret_access_key(s3::TEST_SECRET_ACCESS_KEY)
        .with_endpoint(&fake.base_url)
        .with_allow_http(true)
        .build()
        .unwrap();
    for key in ["a/1", "a/2", "a/b/3", "c/4"] {
        store.put(&Path::from(key), PutPayload::from_static(b"x")).await.unwrap();
    }
    let all: Vec<String> =
        store.list(Some(&Path::from("a"))).map_ok(|m| m.location.to_string()).try_collect().await.unwrap();
    assert_eq!(all, ["a/1", "a/2", "a/b/3"]);
    let top = store.list_with_delimiter(Some(&Path::from("a"))).await.unwrap();
    let objects: Vec<String> = top.objects.iter().map(|m| m.location.to_string()).collect();
    assert_eq!((objects, top.common_prefixes), (vec!["a/1".to_owned(), "a/2".to_owned()], vec![Path::from("a/b")]));
    let head = store.head(&Path::from("c/4")).await.unwrap();
    assert_eq!(head.size, 1);

    let mut upload = store.put_multipart(&Path::from("small")).await.unwrap();
    upload.put_part(PutPayload::from(vec![0u8; 1024])).await.unwrap();
    upload.put_part(PutPayload::from(vec![1u8; 1024])).await.unwrap();
    let err = upload.complete().await.unwrap_err();
    assert!(err.to_string().contains("EntityTooSmall"), "{err}");
    assert!(!fake.keys().contains(&"small".to_owned()));
}
