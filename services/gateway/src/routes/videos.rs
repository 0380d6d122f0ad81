//! `/v1/videos`: AI avatar videos (a script spoken by a voice, rendered as a talking head by a
//! durable job), their cost estimate, job history, cancel, delete and download links.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use nexus_proto::nexus::video::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{
    PageQuery, dir_name, idempotency_key, next_cursor, non_empty as opt, page_request, ts, video_client as client,
};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_video, list_videos))
        .routes(routes!(estimate_video))
        .routes(routes!(get_video, delete_video))
        .routes(routes!(cancel_video))
        .routes(routes!(list_transitions))
        .routes(routes!(create_download_link))
        .routes(routes!(video_events))
}

/// How often the progress stream reads the video, and how long it lasts at most.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
const PROGRESS_FOR: std::time::Duration = std::time::Duration::from_secs(3600);

/// The job's progress as server-sent events: a `status` event with the video whenever it
/// changes (first at once), then `done` with the final video (done, failed or canceled) and the
/// stream ends.
#[utoipa::path(get, path = "/v1/videos/{id}/events", tag = "videos", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "vid_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "Progress events", content_type = "text/event-stream", body = super::common::ServerSentEvent,
            example = "event: status\ndata: {\"id\":\"vid_…\",\"status\":\"rendering\"}\n\nevent: done\ndata: {\"id\":\"vid_…\",\"status\":\"done\"}\n\n"),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 404, description = "No such video in this workspace", body = ErrorEnvelope)))]
pub async fn video_events(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures::StreamExt as _;
    // The first read answers 404 before the stream opens; later reads run in this request's
    // context (its token), which the stream carries along.
    let first = client(&state).get_video(pb::GetByIdRequest { id: id.clone() }).await?.into_inner();
    let ctx = nexus_platform::RequestContext::current();
    let started = tokio::time::Instant::now();
    let seed = (Some(first), String::new(), false);
    let events = futures::stream::unfold(seed, move |(next, last, finished)| {
        let (state, ctx, id) = (state.clone(), ctx.clone(), id.clone());
        async move {
            if finished {
                return None;
            }
            let mut current = next;
            loop {
                let v = match current.take() {
                    Some(v) => v,
                    None => {
                        if started.elapsed() > PROGRESS_FOR {
                            return None;
                        }
                        tokio::time::sleep(PROGRESS_EVERY).await;
                        let read =
                            ctx.clone().scope(client(&state).get_video(pb::GetByIdRequest { id: id.clone() })).await;
                        match read {
                            Ok(r) => r.into_inner(),
                            Err(_) => return None,
                        }
                    }
                };
                let seen = format!("{}:{}", v.status, v.updated_at.map(|t| (t.seconds, t.nanos)).unwrap_or_default().0);
                let done = matches!(v.status.as_str(), "done" | "failed" | "canceled");
                if seen != last || done {
                    let body = serde_json::to_string(&video(v)).unwrap_or_default();
                    let event = Event::default().event(if done { "done" } else { "status" }).data(body);
                    return Some((Ok::<_, std::convert::Infallible>(event), (None, seen, done)));
                }
            }
        }
    })
    .boxed();
    let mut resp = Sse::new(events).keep_alive(KeepAlive::default()).into_response();
    resp.headers_mut().insert("x-accel-buffering", "no".parse().expect("static header"));
    resp.headers_mut().insert(axum::http::header::CACHE_CONTROL, "no-cache".parse().expect("static header"));
    Ok(resp)
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"script": "مرحبًا! تخفيضات الربيع تبدأ اليوم.", "avatar_url": "https://cdn.example.com/faces/amira.jpg",
    "voice_id": "21m00Tcm4TlvDq8ikWAM", "language": "ar", "aspect_ratio": "9:16", "captions": true, "title": "Spring sale", "music": "calm"}))]
pub struct VideoRequest {
    /// What the avatar says: 1 to 5,000 characters, not only spaces; no control characters but
    /// line breaks and tabs. Required unless a `topic` is sent instead (then absent or empty).
    #[schema(max_length = 5000, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub script: Option<String>,
    /// The face: an https address (with a host name) of a JPEG or PNG portrait, an uploaded
    /// avatar (`avatar:<id>` from `POST /v1/avatars`) or a catalogue face (`catalogue:alice`,
    /// `catalogue:studio`).
    #[schema(
        max_length = 2000,
        pattern = r"^(avatar:(avt_)?([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})|catalogue:(alice|studio)|https://([A-Za-z0-9!$&'()*+,;=_~-]+\.)+[A-Za-z][A-Za-z0-9!$&'()*+,;=_~-]*(/[A-Za-z0-9._~!$&'()*+,;=:@%/?#-]*)?)$"
    )]
    pub avatar_url: String,
    /// A voice from `GET /v1/voices`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]+$")]
    pub voice_id: String,
    /// en, es, pt, he or ar; empty or absent: your language.
    #[schema(pattern = "^(|en|es|pt|he|ar)$")]
    pub language: Option<String>,
    /// 16:9 (default), 9:16 or 1:1.
    #[schema(pattern = "^(|16:9|9:16|1:1)$")]
    pub aspect_ratio: Option<String>,
    /// Burn captions into the video.
    pub captions: Option<bool>,
    /// Up to 200 characters.
    #[schema(max_length = 200, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub title: Option<String>,
    /// Instead of a script: the content service writes one about this topic (up to 200
    /// characters) in the video's language, charged as a generation (`content.generation`).
    /// Refused together with a script.
    #[schema(max_length = 200, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub topic: Option<String>,
    /// More for the writer with a topic: audience, points to make (up to 1,000 characters).
    #[schema(max_length = 1000, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub brief: Option<String>,
    /// Background music under the speech, from the built-in library (tracks synthesised by the
    /// service, free to use): calm, upbeat or bright; empty, none or absent: no music.
    #[schema(pattern = "^(|none|calm|upbeat|bright)$")]
    pub music: Option<String>,
}

fn request(b: VideoRequest, key: String) -> pb::CreateVideoRequest {
    pb::CreateVideoRequest {
        script: b.script.unwrap_or_default(),
        avatar_url: b.avatar_url,
        voice_id: b.voice_id,
        language: b.language.unwrap_or_default(),
        aspect_ratio: b.aspect_ratio.unwrap_or_default(),
        captions: b.captions.unwrap_or(false),
        title: b.title.unwrap_or_default(),
        idempotency_key: key,
        topic: b.topic.unwrap_or_default(),
        brief: b.brief.unwrap_or_default(),
        music: b.music.unwrap_or_default(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "vid_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "title": "Spring sale", "status": "done", "language": "ar", "dir": "rtl",
    "aspect_ratio": "9:16", "captions": true, "avatar_url": "https://cdn.example.com/faces/amira.jpg", "voice_id": "21m00Tcm4TlvDq8ikWAM",
    "voice_provider": "elevenlabs", "provider": "d-id", "characters": 36, "characters_billed": 36, "estimated_credits": 10, "credits_charged": 10,
    "duration_seconds": 4.2, "size_bytes": 1843200, "width": 720, "height": 1280,
    "thumbnail_url": "https://api.example.com/v1/media/thumbnails/vtn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7.1765015200.k1.3q2-7w", "created_at": "2026-12-06T10:00:00+00:00", "finished_at": "2026-12-06T10:01:10+00:00"}))]
pub struct VideoBody {
    pub id: String,
    pub title: String,
    /// queued, synthesizing_voice, rendering, storing, done, failed or canceled.
    pub status: String,
    pub language: String,
    pub dir: String,
    pub aspect_ratio: String,
    pub captions: bool,
    pub avatar_url: String,
    pub voice_id: String,
    /// elevenlabs or local.
    pub voice_provider: String,
    /// d-id or local: who renders it.
    pub provider: String,
    pub characters: i64,
    /// Characters the speech provider charged.
    pub characters_billed: i64,
    /// Credits held while the video is made.
    pub estimated_credits: i64,
    /// Credits charged once done (0 for failed or canceled videos: everything was given back).
    pub credits_charged: i64,
    pub duration_seconds: f64,
    pub size_bytes: i64,
    /// The picture size of the finished file (0 until done).
    pub width: i32,
    pub height: i32,
    /// A signed, expiring link to a JPEG of one frame (done videos).
    pub thumbnail_url: Option<String>,
    /// The background music's track (calm, upbeat or bright), if any.
    pub music: Option<String>,
    /// Why it failed (an error code) and the reason in your language.
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub finished_at: Option<String>,
}

fn video(v: pb::VideoRecord) -> VideoBody {
    VideoBody {
        id: v.id,
        title: v.title,
        status: v.status,
        language: v.language,
        dir: dir_name(v.dir),
        aspect_ratio: v.aspect_ratio,
        captions: v.captions,
        avatar_url: v.avatar_url,
        voice_id: v.voice_id,
        voice_provider: v.voice_provider,
        provider: v.provider,
        characters: v.characters,
        characters_billed: v.characters_billed,
        estimated_credits: v.estimated_credits,
        credits_charged: v.credits_charged,
        duration_seconds: v.duration_seconds,
        size_bytes: v.size_bytes,
        width: v.width,
        height: v.height,
        thumbnail_url: opt(v.thumbnail_url),
        music: opt(v.music),
        error_code: opt(v.error_code),
        error_message: opt(v.error_message),
        created_at: ts(v.created_at),
        updated_at: ts(v.updated_at),
        finished_at: ts(v.finished_at),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VideoList {
    pub items: Vec<VideoBody>,
    pub next_cursor: Option<String>,
}

/// Make a video (credits: video.render_minute × minutes; plan limit: videos_per_month). The
/// credits and the month's count are held before any provider is called; a video that fails or
/// is canceled gives both back. With a `topic` the content service writes the script first
/// (charged as a generation, once per Idempotency-Key).
#[utoipa::path(post, path = "/v1/videos", tag = "videos", security(("bearer" = []), ("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the same video", example = "video-spring-sale")),
    request_body = VideoRequest,
    responses((status = 201, description = "Queued", body = VideoBody), (status = 400, description = "Invalid script or topic (or both sent), avatar, voice, language or aspect ratio", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 402, description = "Not enough credits or monthly video limit reached", body = ErrorEnvelope),
        (status = 404, description = "No such uploaded avatar in this workspace, or no such voice", body = ErrorEnvelope),
        (status = 503, description = "Video, billing or the script writer unavailable", body = ErrorEnvelope)))]
pub async fn create_video(
    State(state): State<AppState>,
    _a: Authenticated,
    headers: HeaderMap,
    ApiJson(b): ApiJson<VideoRequest>,
) -> Result<(StatusCode, Json<VideoBody>), ApiError> {
    let req = request(b, idempotency_key(&headers)?);
    Ok((StatusCode::CREATED, Json(video(client(&state).create_video(req).await?.into_inner()))))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"characters": 999, "estimated_seconds": 66.6, "minutes": 2, "credits": 20, "voice_provider": "elevenlabs", "render_provider": "d-id"}))]
pub struct EstimateBody {
    pub characters: i64,
    /// Expected length of the speech.
    pub estimated_seconds: f64,
    /// Render minutes charged (at least one).
    pub minutes: i64,
    /// Credits a video of this script holds.
    pub credits: i64,
    pub voice_provider: String,
    pub render_provider: String,
}

/// What a video would cost, before making it (nothing is held). With a `topic` the script is
/// not written yet: the estimate is the least a video holds (one render minute).
#[utoipa::path(post, path = "/v1/videos/estimate", tag = "videos", security(("bearer" = []), ("api_key" = [])),
    request_body = VideoRequest,
    responses((status = 200, description = "The estimate", body = EstimateBody), (status = 400, description = "Invalid request", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn estimate_video(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<VideoRequest>,
) -> Result<Json<EstimateBody>, ApiError> {
    let e = client(&state).estimate_video(request(b, String::new())).await?.into_inner();
    Ok(Json(EstimateBody {
        characters: e.characters,
        estimated_seconds: e.estimated_seconds,
        minutes: e.minutes,
        credits: e.credits,
        voice_provider: e.voice_provider,
        render_provider: e.render_provider,
    }))
}

/// Videos of the current workspace, newest first.
#[utoipa::path(get, path = "/v1/videos", tag = "videos", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of videos", body = VideoList), (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn list_videos(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<VideoList>, ApiError> {
    let r = client(&state).list_videos(pb::ListRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(VideoList { items: r.items.into_iter().map(video).collect(), next_cursor: next_cursor(r.page) }))
}

/// One video and where its job stands.
#[utoipa::path(get, path = "/v1/videos/{id}", tag = "videos", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "vid_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "The video", body = VideoBody), (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 404, description = "No such video in this workspace", body = ErrorEnvelope)))]
pub async fn get_video(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<VideoBody>, ApiError> {
    Ok(Json(video(client(&state).get_video(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Delete a finished, failed or canceled video and its file.
#[utoipa::path(delete, path = "/v1/videos/{id}", tag = "videos", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "vid_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 204, description = "Deleted"), (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 404, description = "No such video in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Still being made: cancel it first", body = ErrorEnvelope)))]
pub async fn delete_video(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).delete_video(pb::GetByIdRequest { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stop a video that is still being made; its credits and the month's count are given back.
#[utoipa::path(post, path = "/v1/videos/{id}/cancel", tag = "videos", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "vid_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "Canceled", body = VideoBody), (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 404, description = "No such video in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Already done, failed or canceled", body = ErrorEnvelope)))]
pub async fn cancel_video(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<VideoBody>, ApiError> {
    Ok(Json(video(client(&state).cancel_video(pb::GetByIdRequest { id }).await?.into_inner())))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionBody {
    /// Empty for the first.
    pub from: String,
    pub to: String,
    pub reason: String,
    pub at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"from": "", "to": "queued", "reason": "requested", "at": "2026-12-06T10:00:00+00:00"},
    {"from": "queued", "to": "synthesizing_voice", "reason": "started", "at": "2026-12-06T10:00:01+00:00"}]}))]
pub struct TransitionList {
    pub items: Vec<TransitionBody>,
}

/// The job's state changes, oldest first (its progress).
#[utoipa::path(get, path = "/v1/videos/{id}/transitions", tag = "videos", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "vid_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "State changes", body = TransitionList), (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 404, description = "No such video in this workspace", body = ErrorEnvelope)))]
pub async fn list_transitions(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TransitionList>, ApiError> {
    let r = client(&state).list_transitions(pb::GetByIdRequest { id }).await?.into_inner();
    Ok(Json(TransitionList {
        items: r
            .items
            .into_iter()
            .map(|t| TransitionBody { from: t.from_status, to: t.to_status, reason: t.reason, at: ts(t.at) })
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"url": "https://api.example.com/v1/media/videos/vid_0192f0c5c2b87c31a1f1e4f2b1a0c9d7.1765015200.k1.3q2-7w", "expires_at": "2026-12-06T10:15:00+00:00"}))]
pub struct DownloadLinkBody {
    /// Anyone holding it can download the file (with HTTP range requests) until it expires.
    pub url: String,
    pub expires_at: Option<String>,
}

/// A signed, expiring link to a finished video's file.
#[utoipa::path(post, path = "/v1/videos/{id}/download-link", tag = "videos", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "vid_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "The link", body = DownloadLinkBody), (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 404, description = "No such video in this workspace", body = ErrorEnvelope),
        (status = 409, description = "The video is not done", body = ErrorEnvelope)))]
pub async fn create_download_link(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DownloadLinkBody>, ApiError> {
    let l = client(&state).create_download_link(pb::GetByIdRequest { id }).await?.into_inner();
    Ok(Json(DownloadLinkBody { url: l.url, expires_at: ts(l.expires_at) }))
}
