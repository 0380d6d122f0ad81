//! A fake S3-compatible object store on port 0 (path-style addressing: `/<bucket>/<key>`).
//!
//! Like Amazon S3 where a client depends on it: every request carries an AWS Signature V4
//! `Authorization` header that is recomputed here with the configured secret (a wrong key, a
//! wrong region, a stale `x-amz-date` or a tampered request is refused with S3's XML error
//! body); a signed payload hash (`x-amz-content-sha256`) is checked against the bytes received.
//! Objects: `PUT`, `GET` (with `Range`, 206/416), `HEAD`, `DELETE`; multipart uploads: create
//! (`POST ?uploads`), parts (`PUT ?partNumber&uploadId`), complete (`POST ?uploadId`, every part
//! but the last at least 5 MiB, else `EntityTooSmall`) and abort (`DELETE ?uploadId`);
//! `ListObjectsV2` (`GET /<bucket>?list-type=2`: prefix, delimiter, start-after, max-keys,
//! continuation). Bodies are streamed to files in a temporary directory, never held whole.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

use crate::FakeServer;
use crate::fake::lock;

pub const TEST_ACCESS_KEY_ID: &str = "NEXUSFAKES3ACCESSKEY";
pub const TEST_SECRET_ACCESS_KEY: &str = "nexus-fake-s3-secret-access-key-0123456789";
pub const TEST_REGION: &str = "us-east-1";
pub const TEST_BUCKET: &str = "nexus-videos";

/// S3's smallest part, except the last one of an upload.
pub const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;

/// How far `x-amz-date` may be from the fake's clock (S3 allows 15 minutes).
const MAX_SKEW_SECS: i64 = 15 * 60;

#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// The path and query as received.
    pub target: String,
    pub status: u16,
    /// The S3 error code answered, if any (`SignatureDoesNotMatch`, `NoSuchKey`, ...).
    pub error: Option<String>,
}

#[derive(Clone)]
struct Stored {
    file: PathBuf,
    size: u64,
    etag: String,
    modified: DateTime<Utc>,
}

struct Upload {
    key: String,
    parts: BTreeMap<u32, Stored>,
}

#[derive(Default)]
struct Inner {
    objects: BTreeMap<String, Stored>,
    uploads: HashMap<String, Upload>,
    requests: Vec<RecordedRequest>,
}

struct State {
    dir: tempfile::TempDir,
    bucket: String,
    secret: String,
    next: AtomicU64,
    inner: Mutex<Inner>,
}

pub struct FakeS3 {
    pub base_url: String,
    pub bucket: String,
    state: Arc<State>,
    _server: FakeServer,
}

impl FakeS3 {
    pub async fn start() -> FakeS3 {
        let state = Arc::new(State {
            dir: tempfile::tempdir().expect("fake s3 directory"),
            bucket: TEST_BUCKET.to_owned(),
            secret: TEST_SECRET_ACCESS_KEY.to_owned(),
            next: AtomicU64::new(1),
            inner: Mutex::new(Inner::default()),
        });
        let router = Router::new().fallback(handle).with_state(state.clone());
        let server = FakeServer::start(router).await;
        FakeS3 { base_url: server.base_url.clone(), bucket: TEST_BUCKET.to_owned(), state, _server: server }
    }

    /// Keys of the stored objects, in order.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.state.inner).objects.keys().cloned().collect()
    }

    /// An object's bytes (read from its file), if it exists.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        let file = lock(&self.state.inner).objects.get(key)?.file.clone();
        std::fs::read(file).ok()
    }

    /// Multipart uploads created and neither completed nor aborted.
    pub fn open_uploads(&self) -> usize {
        lock(&self.state.inner).uploads.len()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.inner).requests.clone()
    }
}

/// An S3 error answer.
struct S3Error {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> S3Error {
    S3Error { status, code, message: message.into() }
}

type Answer = Result<Response, S3Error>;

async fn handle(
    AxState(state): AxState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let target = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let answer = match verify_signature(&state, &method, &uri, &headers) {
        Ok(()) => route(&state, &method, &uri, &headers, body).await,
        Err(e) => Err(e),
    };
    let (response, error) = match answer {
        Ok(r) => (r, None),
        Err(e) => {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message>\
                 <Resource>{}</Resource><RequestId>{:016X}</RequestId></Error>",
                e.code,
                xml_escape(&e.message),
                xml_escape(uri.path()),
                state.next.fetch_add(1, Ordering::Relaxed)
            );
            // HEAD answers carry no body.
            let body = if method == Method::HEAD { Body::empty() } else { Body::from(xml) };
            let r = Response::builder()
                .status(e.status)
                .header(header::CONTENT_TYPE, "application/xml")
                .body(body)
                .expect("error response");
            (r, Some(e.code.to_owned()))
        }
    };
    lock(&state.inner).requests.push(RecordedRequest {
        method: method.to_string(),
        target,
        status: response.status().as_u16(),
        error,
    });
    response
}

// ---- Signature V4 ----

struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let mut scope = credential?.split('/');
    let auth = Authorization {
        access_key: scope.next()?,
        date: scope.next()?,
        region: scope.next()?,
        service: scope.next()?,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    };
    (scope.next()? == "aws4_request" && scope.next().is_none()).then_some(auth)
}

/// RFC 3986 unreserved characters stay; everything else is `%XX` (uppercase), as SigV4 asks.
fn strict_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn canonical_query(uri: &Uri) -> String {
    let mut pairs: Vec<(String, String)> =
        query_pairs(uri).iter().map(|(k, v)| (strict_encode(k), strict_encode(v))).collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), data.as_bytes()).as_ref().to_vec()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

fn verify_signature(state: &State, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), S3Error> {
    let denied = |code, msg: &str| err(StatusCode::FORBIDDEN, code, msg);
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| denied("AccessDenied", "Access Denied"))?;
    let auth = parse_authorization(value).ok_or_else(|| {
        err(StatusCode::BAD_REQUEST, "AuthorizationHeaderMalformed", "The authorization header is malformed")
    })?;
    if auth.access_key != TEST_ACCESS_KEY_ID {
        return Err(denied("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."));
    }
    if auth.region != TEST_REGION || auth.service != "s3" {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "AuthorizationHeaderMalformed",
            format!("the region '{}' is wrong; expecting '{TEST_REGION}'", auth.region),
        ));
    }
    let amz_date = headers.get("x-amz-date").and_then(|v| v.to_str().ok()).unwrap_or("");
    let when = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| denied("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"))?
        .and_utc();
    if (Utc::now() - when).num_seconds().abs() > MAX_SKEW_SECS {
        return Err(denied(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        ));
    }
    if !amz_date.starts_with(auth.date) || !auth.signed_headers.contains(&"host") {
        return Err(denied(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    let digest = headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok()).ok_or_else(|| {
        err(StatusCode::BAD_REQUEST, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
    })?;
    let mut canonical_headers = String::new();
    for name in &auth.signed_headers {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    // S3 signs the path as sent (encoded once).
    let canonical_request = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{}\n{digest}",
        uri.path(),
        canonical_query(uri),
        auth.signed_headers.join(";")
    );
    let scope = format!("{}/{}/s3/aws4_request", auth.date, auth.region);
    let to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()));
    let mut key = hmac(format!("AWS4{}", state.secret).as_bytes(), auth.date);
    for part in [auth.region, "s3", "aws4_request"] {
        key = hmac(&key, part);
    }
    let expected = hex::encode(hmac(&key, &to_sign));
    // A fake: timing of the comparison does not matter here.
    if expected != auth.signature {
        return Err(denied(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    Ok(())
}

// ---- requests ----

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn route(state: &State, method: &Method, uri: &Uri, headers: &HeaderMap, body: Body) -> Answer {
    let path = percent_decode(uri.path())
        .ok_or_else(|| err(StatusCode::BAD_REQUEST, "InvalidURI", "Couldn't parse the specified URI."))?;
    let rest = path.strip_prefix('/').unwrap_or(&path);
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket != state.bucket {
        return Err(err(StatusCode::NOT_FOUND, "NoSuchBucket", "The specified bucket does not exist"));
    }
    let q = query_pairs(uri);
    let upload_id = param(&q, "uploadId");
    if key.is_empty() {
        return match *method {
            Method::GET if param(&q, "list-type") == Some("2") => list(state, &q),
            Method::POST if q.iter().any(|(k, _)| k == "delete") => delete_objects(state, headers, body).await,
            _ => Err(err(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                "Only ListObjectsV2 and DeleteObjects are served on the bucket",
            )),
        };
    }
    if headers.contains_key("x-amz-copy-source") {
        return Err(err(StatusCode::NOT_IMPLEMENTED, "NotImplemented", "Copies are not served by this fake"));
    }
    match (method.clone(), upload_id) {
        (Method::PUT, Some(id)) => put_part(state, key, id, &q, headers, body).await,
        (Method::PUT, None) => put_object(state, key, headers, body).await,
        (Method::POST, None) if q.iter().any(|(k, _)| k == "uploads") => create_upload(state, key),
        (Method::POST, Some(id)) => complete_upload(state, key, id, headers, body).await,
        (Method::DELETE, Some(id)) => abort_upload(state, key, id),
        (Method::DELETE, None) => delete_object(state, key),
        (Method::GET, None) | (Method::HEAD, None) => get_object(state, key, method == Method::HEAD, headers).await,
        _ => Err(err(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        )),
    }
}

fn new_file(state: &State) -> PathBuf {
    state.dir.path().join(format!("{:016x}", state.next.fetch_add(1, Ordering::Relaxed)))
}

/// Streams the body into a new file, checking the signed payload hash; answers the file, its
/// size and its SHA-256.
async fn receive(state: &State, headers: &HeaderMap, body: Body) -> Result<(PathBuf, u64, String), S3Error> {
    let internal = |e: std::io::Error| err(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", e.to_string());
    let claimed = headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok()).unwrap_or("");
    if claimed.starts_with("STREAMING-") {
        return Err(err(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "aws-chunked uploads are not served by this fake",
        ));
    }
    let path = new_file(state);
    let mut file = tokio::fs::File::create(&path).await.map_err(internal)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| err(StatusCode::BAD_REQUEST, "IncompleteBody", e.to_string()))?;
        ctx.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.flush().await.map_err(internal)?;
    let actual = hex::encode(ctx.finish());
    if claimed != "UNSIGNED-PAYLOAD" && claimed != actual {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(err(
            StatusCode::BAD_REQUEST,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ));
    }
    Ok((path, size, actual))
}

fn ok_with_etag(etag: &str) -> Answer {
    Ok(Response::builder().status(StatusCode::OK).header(header::ETAG, etag).body(Body::empty()).expect("response"))
}

async fn put_object(state: &State, key: &str, headers: &HeaderMap, body: Body) -> Answer {
    let (file, size, sha) = receive(state, headers, body).await?;
    let etag = format!("\"{}\"", &sha[..32]);
    let old = lock(&state.inner)
        .objects
        .insert(key.to_owned(), Stored { file, size, etag: etag.clone(), modified: Utc::now() });
    if let Some(old) = old {
        let _ = tokio::fs::remove_file(old.file).await;
    }
    ok_with_etag(&etag)
}

fn create_upload(state: &State, key: &str) -> Answer {
    let id = format!("upload-{:016x}", state.next.fetch_add(1, Ordering::Relaxed));
    lock(&state.inner).uploads.insert(id.clone(), Upload { key: key.to_owned(), parts: BTreeMap::new() });
    xml_ok(format!(
        "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket>\
         <Key>{}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>",
        state.bucket,
        xml_escape(key)
    ))
}

fn no_such_upload() -> S3Error {
    err(StatusCode::NOT_FOUND, "NoSuchUpload", "The specified upload does not exist.")
}

fn upload_of<'a>(inner: &'a mut Inner, key: &str, id: &str) -> Result<&'a mut Upload, S3Error> {
    inner.uploads.get_mut(id).filter(|u| u.key == key).ok_or_else(no_such_upload)
}

async fn put_part(
    state: &State,
    key: &str,
    id: &str,
    q: &[(String, String)],
    headers: &HeaderMap,
    body: Body,
) -> Answer {
    let number: u32 =
        param(q, "partNumber").and_then(|n| n.parse().ok()).filter(|n| (1..=10_000).contains(n)).ok_or_else(|| {
            err(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "Part number must be an integer between 1 and 10000, inclusive",
            )
        })?;
    upload_of(&mut lock(&state.inner), key, id)?;
    let (file, size, sha) = receive(state, headers, body).await?;
    let etag = format!("\"{}\"", &sha[..32]);
    let mut inner = lock(&state.inner);
    let upload = match upload_of(&mut inner, key, id) {
        Ok(u) => u,
        Err(e) => {
            let _ = std::fs::remove_file(&file);
            return Err(e);
        }
    };
    if let Some(old) = upload.parts.insert(number, Stored { file, size, etag: etag.clone(), modified: Utc::now() }) {
        let _ = std::fs::remove_file(old.file);
    }
    ok_with_etag(&etag)
}

/// `(part number, etag)` of each `<Part>` of a CompleteMultipartUpload body.
fn parse_complete(xml: &str) -> Option<Vec<(u32, String)>> {
    elements(xml, "Part")
        .iter()
        .map(|part| {
            let number = elements(part, "PartNumber").pop()?.parse().ok()?;
            Some((number, elements(part, "ETag").pop()?))
        })
        .collect()
}

fn malformed() -> S3Error {
    err(
        StatusCode::BAD_REQUEST,
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema",
    )
}

/// A small XML request body (at most 1 MiB), checked against its signed payload hash.
async fn small_body(headers: &HeaderMap, body: Body) -> Result<String, S3Error> {
    let bytes = axum::body::to_bytes(body, 1024 * 1024).await.map_err(|_| malformed())?;
    let claimed = headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok()).unwrap_or("");
    if claimed != "UNSIGNED-PAYLOAD" && claimed != sha256_hex(&bytes) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed())
}

/// The texts of every `<tag>…</tag>` in `xml`, unescaped.
fn elements(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(text, _)| xml_unescape(text.trim())))
        .collect()
}

async fn delete_objects(state: &State, headers: &HeaderMap, body: Body) -> Answer {
    // S3 requires an integrity header on multi-object deletes.
    if !headers.contains_key("content-md5") && !headers.contains_key("x-amz-checksum-sha256") {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "Missing required header for this request: Content-MD5",
        ));
    }
    let xml = small_body(headers, body).await?;
    let keys = elements(&xml, "Key");
    if keys.is_empty() || keys.len() > 1000 {
        return Err(malformed());
    }
    let mut out = String::new();
    for key in keys {
        if let Some(old) = lock(&state.inner).objects.remove(&key) {
            let _ = std::fs::remove_file(old.file);
        }
        out.push_str(&format!("<Deleted><Key>{}</Key></Deleted>", xml_escape(&key)));
    }
    xml_ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{out}</DeleteResult>"
    ))
}

async fn complete_upload(state: &State, key: &str, id: &str, headers: &HeaderMap, body: Body) -> Answer {
    let xml = small_body(headers, body).await?;
    let listed = parse_complete(&xml).ok_or_else(malformed)?;
    if listed.is_empty() {
        return Err(malformed());
    }
    let chosen: Vec<Stored> = {
        let mut inner = lock(&state.inner);
        let upload = upload_of(&mut inner, key, id)?;
        let mut chosen = Vec::new();
        let mut last = 0;
        for (i, (number, etag)) in listed.iter().enumerate() {
            if *number <= last {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "InvalidPartOrder",
                    "The list of parts was not in ascending order.",
                ));
            }
            last = *number;
            let part = upload.parts.get(number).filter(|p| &p.etag == etag).ok_or_else(|| {
                err(StatusCode::BAD_REQUEST, "InvalidPart", "One or more of the specified parts could not be found.")
            })?;
            if i + 1 < listed.len() && part.size < MIN_PART_BYTES {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed object size.",
                ));
            }
            chosen.push(part.clone());
        }
        chosen
    };
    let internal = |e: std::io::Error| err(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", e.to_string());
    let path = new_file(state);
    let mut out = tokio::fs::File::create(&path).await.map_err(internal)?;
    let mut size = 0;
    for part in &chosen {
        let mut f = tokio::fs::File::open(&part.file).await.map_err(internal)?;
        size += tokio::io::copy(&mut f, &mut out).await.map_err(internal)?;
    }
    out.flush().await.map_err(internal)?;
    let etag = format!("\"{}-{}\"", &sha256_hex(id.as_bytes())[..32], chosen.len());
    let (upload, old) = {
        let mut inner = lock(&state.inner);
        let upload = inner.uploads.remove(id);
        let old =
            inner.objects.insert(key.to_owned(), Stored { file: path, size, etag: etag.clone(), modified: Utc::now() });
        (upload, old)
    };
    for f in upload.into_iter().flat_map(|u| u.parts.into_values()).chain(old).map(|s| s.file) {
        let _ = tokio::fs::remove_file(f).await;
    }
    xml_ok(format!(
        "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>/{}/{}</Location>\
         <Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></CompleteMultipartUploadResult>",
        state.bucket,
        xml_escape(key),
        state.bucket,
        xml_escape(key),
        xml_escape(&etag)
    ))
}

fn no_content() -> Answer {
    Ok(Response::builder().status(StatusCode::NO_CONTENT).body(Body::empty()).expect("response"))
}

fn abort_upload(state: &State, key: &str, id: &str) -> Answer {
    let upload = {
        let mut inner = lock(&state.inner);
        upload_of(&mut inner, key, id)?;
        inner.uploads.remove(id)
    };
    for part in upload.into_iter().flat_map(|u| u.parts.into_values()) {
        let _ = std::fs::remove_file(part.file);
    }
    no_content()
}

fn delete_object(state: &State, key: &str) -> Answer {
    // S3 answers 204 whether or not the key existed.
    if let Some(old) = lock(&state.inner).objects.remove(key) {
        let _ = std::fs::remove_file(old.file);
    }
    no_content()
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` resolved against `size` (inclusive); `Err` when unsatisfiable.
fn resolve_range(value: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let range = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 || size == 0 { Err(()) } else { Ok((size.saturating_sub(n), size - 1)) }
        }
        (a, "") => {
            let a: u64 = a.parse().ok()?;
            if a >= size { Err(()) } else { Ok((a, size - 1)) }
        }
        (a, b) => {
            let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
            if b < a {
                return None;
            }
            if a >= size { Err(()) } else { Ok((a, b.min(size - 1))) }
        }
    };
    Some(range)
}

fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

async fn get_object(state: &State, key: &str, head: bool, headers: &HeaderMap) -> Answer {
    let obj = lock(&state.inner)
        .objects
        .get(key)
        .cloned()
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist."))?;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        // An unparseable Range is ignored, as S3 does.
        Some(v) => match resolve_range(v, obj.size) {
            Some(Ok(r)) => Some(r),
            Some(Err(())) => {
                return Err(err(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "InvalidRange",
                    "The requested range is not satisfiable",
                ));
            }
            None => None,
        },
        None => None,
    };
    let (start, len) = match range {
        Some((a, b)) => (a, b - a + 1),
        None => (0, obj.size),
    };
    let mut r = Response::builder()
        .header(header::CONTENT_LENGTH, len)
        .header(header::ETAG, &obj.etag)
        .header(header::LAST_MODIFIED, http_date(obj.modified))
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream");
    r = match range {
        Some((a, b)) => {
            r.status(StatusCode::PARTIAL_CONTENT).header(header::CONTENT_RANGE, format!("bytes {a}-{b}/{}", obj.size))
        }
        None => r.status(StatusCode::OK),
    };
    if head {
        return Ok(r.body(Body::empty()).expect("response"));
    }
    Ok(r.body(Body::from_stream(file_stream(obj.file, start, len))).expect("response"))
}

/// `len` bytes of `file` from `start`, read 64 KiB at a time.
fn file_stream(file: PathBuf, start: u64, len: u64) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>> {
    futures::stream::try_unfold((None::<tokio::fs::File>, file, start, len), |(f, path, start, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let mut f = match f {
            Some(f) => f,
            None => {
                let mut f = tokio::fs::File::open(&path).await?;
                f.seek(std::io::SeekFrom::Start(start)).await?;
                f
            }
        };
        let mut buf = vec![0u8; left.min(64 * 1024) as usize];
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "object shorter than recorded"));
        }
        buf.truncate(n);
        Ok(Some((buf, (Some(f), path, start, left - n as u64))))
    })
}

fn list(state: &State, q: &[(String, String)]) -> Answer {
    let prefix = param(q, "prefix").unwrap_or("");
    let delimiter = param(q, "delimiter").filter(|d| !d.is_empty());
    let after = param(q, "continuation-token").or(param(q, "start-after")).unwrap_or("");
    let max_keys: usize = match param(q, "max-keys") {
        Some(n) => {
            n.parse().map_err(|_| err(StatusCode::BAD_REQUEST, "InvalidArgument", "max-keys is not an integer"))?
        }
        None => 1000,
    };
    let inner = lock(&state.inner);
    let mut contents = String::new();
    let mut prefixes: Vec<String> = Vec::new();
    let mut count = 0;
    // The last key or common prefix given out: the continuation token when a page is full.
    let mut last = String::new();
    let mut next = None;
    for (key, obj) in inner.objects.range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)) {
        if !key.starts_with(prefix) {
            continue;
        }
        let common =
            delimiter.and_then(|d| key[prefix.len()..].find(d).map(|i| key[..prefix.len() + i + d.len()].to_owned()));
        // A page that ended on a common prefix goes on after every key under it.
        if common.as_deref().is_some_and(|c| c == after || prefixes.iter().any(|p| p == c)) {
            continue;
        }
        if count == max_keys {
            next = Some(last.clone());
            break;
        }
        count += 1;
        if let Some(common) = common {
            last = common.clone();
            prefixes.push(common);
            continue;
        }
        last = key.clone();
        contents.push_str(&format!(
            "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>{}</ETag><Size>{}</Size>\
             <StorageClass>STANDARD</StorageClass></Contents>",
            xml_escape(key),
            obj.modified.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            xml_escape(&obj.etag),
            obj.size
        ));
    }
    drop(inner);
    let common: String = prefixes
        .iter()
        .map(|p| format!("<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>", xml_escape(p)))
        .collect();
    let token = next
        .as_ref()
        .map(|t| format!("<NextContinuationToken>{}</NextContinuationToken>", xml_escape(t)))
        .unwrap_or_default();
    xml_ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Name>{}</Name><Prefix>{}</Prefix><KeyCount>{count}</KeyCount><MaxKeys>{max_keys}</MaxKeys>\
         <IsTruncated>{}</IsTruncated>{contents}{common}{token}</ListBucketResult>",
        state.bucket,
        xml_escape(prefix),
        next.is_some()
    ))
}

fn xml_ok(body: String) -> Answer {
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/xml")
        .body(Body::from(body))
        .expect("response"))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

fn xml_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
