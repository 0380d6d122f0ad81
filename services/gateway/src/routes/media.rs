//! `/v1/media`: files behind signed, expiring links (no token: the link is the permission),
//! streamed from the owning service with HTTP range requests.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::StreamExt as _;
use nexus_kernel::ErrorKind;
use nexus_proto::nexus::video::v1 as pb;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::video_client as client;
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiPath;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(download_video))
        .routes(routes!(download_avatar))
        .routes(routes!(download_thumbnail))
}

/// A `Range` header's one byte range (RFC 9110 §14.1.2): `bytes=a-b`, `bytes=a-` or `bytes=-n`.
/// Anything else (other units, several ranges, malformed) is ignored and the whole file is
/// sent, as the RFC allows.
pub(crate) fn parse_range(v: &str) -> Option<pb::OpenDownloadRequest> {
    let spec = v.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => {
            Some(pb::OpenDownloadRequest { has_range: true, suffix_length: num(b)?, ..Default::default() })
        }
        (false, true) => Some(pb::OpenDownloadRequest { has_range: true, start: num(a)?, ..Default::default() }),
        (false, false) => {
            let (start, end) = (num(a)?, num(b)?);
            (end >= start).then_some(pb::OpenDownloadRequest {
                has_range: true,
                start,
                end: Some(end),
                ..Default::default()
            })
        }
        (true, true) => None,
    }
}

/// An uploaded avatar by its signed link (what a video provider fetches while rendering).
#[utoipa::path(get, path = "/v1/media/avatars/{token}", tag = "videos",
    params(("token" = String, Path, description = "The signed token of the link", example = "avt_0192f0c5c2b87c31a1f1e4f2b1a0c9d7.1765015200.k1.3q2-7w"),
        ("Range" = Option<String>, Header, description = "One byte range", example = "bytes=0-1023")),
    responses((status = 200, description = "The image", content_type = "image/png", body = Vec<u8>),
        (status = 206, description = "The range asked for", content_type = "image/png", body = Vec<u8>),
        (status = 403, description = "Invalid, tampered or expired link", body = ErrorEnvelope),
        (status = 416, description = "The range is outside the file", body = ErrorEnvelope)))]
pub async fn download_avatar(
    state: State<AppState>,
    token: ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    download_video(state, token, headers).await
}

/// A finished video's thumbnail (a JPEG of one frame) by the signed link in the video's
/// `thumbnail_url`.
#[utoipa::path(get, path = "/v1/media/thumbnails/{token}", tag = "videos",
    params(("token" = String, Path, description = "The signed token of the link", example = "vtn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7.1765015200.k1.3q2-7w"),
        ("Range" = Option<String>, Header, description = "One byte range", example = "bytes=0-1023")),
    responses((status = 200, description = "The image", content_type = "image/jpeg", body = Vec<u8>),
        (status = 206, description = "The range asked for", content_type = "image/jpeg", body = Vec<u8>),
        (status = 403, description = "Invalid, tampered or expired link", body = ErrorEnvelope),
        (status = 416, description = "The range is outside the file", body = ErrorEnvelope)))]
pub async fn download_thumbnail(
    state: State<AppState>,
    token: ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    download_video(state, token, headers).await
}

/// Download a video by its signed link (`POST /v1/videos/{id}/download-link`). Supports one
/// byte range per request (`Range: bytes=…` → 206).
#[utoipa::path(get, path = "/v1/media/videos/{token}", tag = "videos",
    params(("token" = String, Path, description = "The signed token of the link", example = "vid_0192f0c5c2b87c31a1f1e4f2b1a0c9d7.1765015200.k1.3q2-7w"),
        ("Range" = Option<String>, Header, description = "One byte range", example = "bytes=0-1048575")),
    responses((status = 200, description = "The whole file", content_type = "video/mp4", body = Vec<u8>),
        (status = 206, description = "The range asked for", content_type = "video/mp4", body = Vec<u8>),
        (status = 403, description = "Invalid, tampered or expired link", body = ErrorEnvelope),
        (status = 416, description = "The range is outside the file", body = ErrorEnvelope)))]
pub async fn download_video(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(parse_range);
    let req = match range {
        Some(r) => pb::OpenDownloadRequest { token, ..r },
        None => pb::OpenDownloadRequest { token, ..Default::default() },
    };
    let mut stream = match client(&state).open_download(req).await {
        Ok(s) => s.into_inner(),
        Err(status) => {
            let error = nexus_platform::grpc::upstream_error(&status);
            if error.code() == "video.range_not_satisfiable" {
                let size = error.params().iter().find(|(k, _)| k == "size").map(|(_, v)| v.clone()).unwrap_or_default();
                let mut resp = axum::response::IntoResponse::into_response(ApiError::from(status));
                *resp.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return Ok(resp);
            }
            return Err(status.into());
        }
    };
    let head = stream
        .message()
        .await?
        .and_then(|m| m.head)
        .ok_or_else(|| ApiError::new(ErrorKind::Unavailable, "service.unavailable"))?;
    let length = if head.total_size == 0 { 0 } else { head.end - head.start + 1 };
    // The bytes stream through as they come; an upstream failure mid-way cuts the body short
    // (the client sees fewer bytes than Content-Length and can resume with a range).
    let body = stream.map(|m| match m {
        Ok(chunk) => Ok(bytes::Bytes::from(chunk.data)),
        Err(status) => Err(std::io::Error::other(status.message().to_owned())),
    });
    let mut resp = Response::new(Body::from_stream(body));
    *resp.status_mut() = if head.partial { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    let h = resp.headers_mut();
    let ct = if head.content_type.is_empty() { "application/octet-stream".to_owned() } else { head.content_type };
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set(h, header::CONTENT_TYPE, ct);
    set(h, header::CONTENT_LENGTH, length.to_string());
    set(h, header::ACCEPT_RANGES, "bytes".into());
    set(h, header::CACHE_CONTROL, "private, max-age=300".into());
    set(h, header::CONTENT_DISPOSITION, format!("inline; filename=\"{}\"", head.filename));
    if head.partial {
        set(h, header::CONTENT_RANGE, format!("bytes {}-{}/{}", head.start, head.end, head.total_size));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_like_rfc_9110() {
        let r = parse_range("bytes=0-99").unwrap();
        assert_eq!((r.start, r.end, r.suffix_length), (0, Some(99), 0));
        let r = parse_range("bytes=100-").unwrap();
        assert_eq!((r.start, r.end), (100, None));
        assert_eq!(parse_range("bytes=-500").unwrap().suffix_length, 500);
        for ignored in
            ["bytes=0-1,5-9", "items=0-1", "bytes=9-1", "bytes=-", "bytes=a-b", "bytes=99999999999999999999-"]
        {
            assert!(parse_range(ignored).is_none(), "{ignored}");
        }
    }
}
