//! `/v1/ads/posts` and `/v1/ads/calendar`: social posts on Instagram, Facebook pages, TikTok and
//! YouTube, each account in its own variant. The ads service checks every variant against its
//! platform's limits when the post is written; members propose, admins schedule and approve.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::nexus::ads::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{ads_client as client, non_empty, proto_ts, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_post))
        .routes(routes!(get_post, update_post))
        .routes(routes!(approve_post))
        .routes(routes!(reschedule_post))
        .routes(routes!(cancel_post))
        .routes(routes!(post_calendar))
}

// The request tree mirrors the service's `PostSpec` field for field, so what the gateway accepts
// re-serializes into what the service reads; the service's defaults apply to absent fields.

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Video,
}

fn image() -> MediaKind {
    MediaKind::Image
}

/// The shape of a post on its platform: Instagram takes feed, reel, story and carousel; Facebook
/// pages feed; TikTok and YouTube video.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PostFormat {
    #[default]
    Feed,
    Reel,
    Story,
    Carousel,
    Video,
}

/// One picture or video, from exactly one source: a URL with its facts declared, a finished video
/// of the video service (`video_id`), an upload of the media library (`media_id`), or a finished
/// image of `/v1/images` (`image_id`). For the references the service reads the facts itself
/// (anything declared is replaced) and makes a fresh link when the post is published. An image is
/// imported into the media library when the post is written (once: later posts reuse the item)
/// and the stored post names it by `media_id`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://cdn.example.com/winter.jpg", "kind": "image", "content_type": "image/jpeg", "bytes": 482113, "width": 1080, "height": 1350}))]
pub struct PostMedia {
    /// https address the platform downloads from (empty with `video_id`, `media_id` or `image_id`).
    #[serde(default)]
    pub url: String,
    /// A finished video of `/v1/videos`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "vid_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub video_id: Option<String>,
    /// An upload of `/v1/ads/media`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    /// A finished image of `/v1/images` (JPEG, PNG or WebP: an `ad` image; a `hero` is an SVG
    /// placeholder when made locally, which no platform takes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "img_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub image_id: Option<String>,
    #[serde(default = "image")]
    pub kind: MediaKind,
    /// `image/jpeg`, `image/png`, `video/mp4`, `video/quicktime`…
    #[serde(default)]
    pub content_type: String,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
    /// Videos only.
    #[serde(default)]
    pub duration_secs: f64,
}

/// One account's version of the post; what it leaves empty comes from the post's shared text,
/// link and media.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"format": "feed", "caption": "Warm coats, free returns", "hashtags": ["winter", "sale"], "first_comment": "Shop: link in bio"}))]
pub struct PostVariantRequest {
    #[serde(default)]
    pub format: PostFormat,
    /// The Instagram caption (2,200 characters with its hashtags), Facebook message, TikTok title
    /// or YouTube description.
    #[serde(default)]
    pub caption: String,
    /// Appended to the caption as `#tag` (without the `#`).
    #[serde(default)]
    pub hashtags: Vec<String>,
    /// Posted as the first comment once published (Instagram and Facebook).
    #[serde(default)]
    pub first_comment: String,
    /// Facebook page posts only.
    pub link: Option<String>,
    #[serde(default)]
    pub media: Vec<PostMedia>,
    /// YouTube's title (required there).
    #[serde(default)]
    pub title: String,
    /// YouTube's tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// TikTok's privacy level or YouTube's privacy status; empty: the most private allowed.
    #[serde(default)]
    pub privacy: String,
    /// TikTok: to the creator's inbox as a draft instead of posting.
    #[serde(default)]
    pub to_inbox: bool,
    /// Instagram reels: also shown in the feed.
    #[serde(default)]
    pub share_to_feed: bool,
    /// YouTube only, RFC 3339: uploaded private and made public by YouTube at this time; after
    /// the post's `scheduled_at` (or now), within 400 days; privacy empty or `private`.
    #[schema(format = DateTime, example = "2026-12-12T15:00:00Z")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_at: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"connection_id": "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "account": "17841400000000000", "variant": {"format": "feed"}}))]
pub struct PostTargetRequest {
    pub connection_id: String,
    /// The connection's Instagram account, page, TikTok creator (open id) or YouTube channel id.
    pub account: String,
    #[serde(default)]
    pub variant: PostVariantRequest,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"text": "Winter coats are in: free returns all season.", "link": "https://shop.example.com/winter",
    "media": [{"url": "https://cdn.example.com/winter.jpg", "kind": "image", "content_type": "image/jpeg", "bytes": 482113, "width": 1080, "height": 1350}],
    "targets": [{"connection_id": "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "account": "17841400000000000", "variant": {"format": "feed", "hashtags": ["winter"], "first_comment": "Shop: link in bio"}},
        {"connection_id": "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "account": "1029384756", "variant": {"format": "feed"}}],
    "scheduled_at": "2026-12-10T09:00:00-05:00", "time_zone": "America/New_York", "campaign_id": "cmp_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "request_key": "winter-launch-01"}))]
pub struct PostRequest {
    /// Shared caption for the targets whose variant has none.
    #[serde(default)]
    pub text: String,
    /// Shared link (Facebook page posts).
    pub link: Option<String>,
    /// Shared media for the targets whose variant has none.
    #[serde(default)]
    pub media: Vec<PostMedia>,
    /// 1 to 20 accounts.
    #[schema(min_items = 1, max_items = 20)]
    pub targets: Vec<PostTargetRequest>,
    /// RFC 3339, within 400 days; absent: as soon as possible (a draft stays unscheduled).
    #[schema(format = DateTime)]
    pub scheduled_at: Option<String>,
    /// The calendar's IANA time zone; absent: UTC.
    #[serde(default)]
    #[schema(example = "America/New_York")]
    pub time_zone: String,
    /// The campaign umbrella (`cmp_…`) this belongs to.
    pub campaign_id: Option<String>,
    /// Kept as a draft: neither scheduled nor proposed.
    #[serde(default)]
    pub draft: bool,
    /// Take the earliest free slot of the posting queue (`/v1/ads/queue/slots`) instead of
    /// `scheduled_at` (send one or the other).
    #[serde(default)]
    pub queue: bool,
    /// Your key for this post; the same key returns the same post (client retries, imports).
    #[schema(max_length = 200)]
    pub request_key: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"scheduled_at": "2026-12-11T18:30:00Z"}))]
pub struct RescheduleRequest {
    /// RFC 3339; not in the past.
    #[schema(format = DateTime)]
    pub scheduled_at: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CalendarQuery {
    /// RFC 3339, included.
    #[param(example = "2026-12-01T00:00:00Z", format = DateTime)]
    pub from: String,
    /// RFC 3339, excluded; at most 92 days after `from`.
    #[param(example = "2027-01-01T00:00:00Z", format = DateTime)]
    pub to: String,
}

#[derive(Debug, Serialize, ToSchema)]
// A published Instagram target; `PostBody`'s example shows a scheduled one.
#[schema(example = json!({"id": "pubn_0192f0c5c2b87c31a1f1e4f2b1a0c9d8", "connection_id": "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "provider": "meta",
    "platform": "instagram", "account": "17841400000000000", "variant": {"format": "reel", "caption": "Behind the seams", "hashtags": [], "first_comment": "",
        "link": null, "media": [{"url": "https://cdn.example.com/seams.mp4", "kind": "video", "content_type": "video/mp4", "bytes": 18874368,
        "width": 1080, "height": 1920, "duration_secs": 21.5}], "title": "", "tags": [], "privacy": "", "to_inbox": false, "share_to_feed": true},
    "status": "published", "due_at": null, "attempts": 1, "platform_post_id": "18023456789012345", "permalink": "https://www.instagram.com/reel/C0abcdEFgh/",
    "published_at": "2026-12-10T14:00:41+00:00", "error_code": null, "error": null, "likes": 128, "comments": 9, "shares": 4, "views": 5310}))]
pub struct PostTargetBody {
    #[schema(example = "pubn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub id: String,
    pub connection_id: String,
    /// meta, tiktok, tiktok_creator, google or local (the sandbox).
    pub provider: String,
    /// instagram, facebook, tiktok or youtube.
    pub platform: String,
    pub account: String,
    /// The variant as it is published, the post's shared fields filled in.
    #[schema(value_type = Object)]
    pub variant: serde_json::Value,
    /// scheduled, publishing, published, failed or cancelled.
    pub status: String,
    pub due_at: Option<String>,
    pub attempts: u32,
    pub platform_post_id: Option<String>,
    pub permalink: Option<String>,
    pub published_at: Option<String>,
    /// A failure's code (`ads.post_rejected`…).
    pub error_code: Option<String>,
    /// The platform's own reason for a failure.
    pub error: Option<String>,
    pub likes: i64,
    pub comments: i64,
    pub shares: i64,
    pub views: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "post_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "status": "scheduled", "scheduled_at": "2026-12-10T14:00:00+00:00", "time_zone": "America/New_York",
    "body": {"text": "Winter coats are in: free returns all season.", "link": null, "media": []}, "campaign_id": null,
    "author": "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "approved_by": "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d7",
    "targets": [{"id": "pubn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "connection_id": "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "provider": "meta", "platform": "facebook",
        "account": "1029384756", "variant": {"format": "feed", "caption": "Winter coats are in: free returns all season.", "hashtags": ["winter"],
            "first_comment": "Shop: link in bio", "link": null, "media": [], "title": "", "tags": [], "privacy": "", "to_inbox": false, "share_to_feed": false},
        "status": "scheduled", "due_at": "2026-12-10T14:00:00+00:00", "attempts": 0, "platform_post_id": null, "permalink": null, "published_at": null,
        "error_code": null, "error": null, "likes": 0, "comments": 0, "shares": 0, "views": 0}],
    "created_at": "2026-12-07T09:12:44+00:00", "updated_at": "2026-12-07T09:12:44+00:00"}))]
pub struct PostBody {
    #[schema(example = "post_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub id: String,
    /// draft, pending_approval, scheduled or cancelled.
    pub status: String,
    pub scheduled_at: Option<String>,
    pub time_zone: String,
    /// The shared text, link and media.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    pub campaign_id: Option<String>,
    /// The user who wrote it.
    pub author: String,
    /// The admin who scheduled or approved it.
    pub approved_by: Option<String>,
    pub targets: Vec<PostTargetBody>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarBody {
    /// By scheduled time.
    pub posts: Vec<PostBody>,
}

/// The service stores valid JSON; anything else is shown as null rather than failing the read.
fn json_of(raw: &str) -> serde_json::Value {
    serde_json::from_str(raw).unwrap_or(serde_json::Value::Null)
}

fn target(t: pb::PostTarget) -> PostTargetBody {
    PostTargetBody {
        id: t.id,
        connection_id: t.connection_id,
        provider: t.provider,
        platform: t.platform,
        account: t.account,
        variant: json_of(&t.variant_json),
        status: t.status,
        due_at: ts(t.due_at),
        attempts: t.attempts,
        platform_post_id: non_empty(t.platform_post_id),
        permalink: non_empty(t.permalink),
        published_at: ts(t.published_at),
        error_code: non_empty(t.error_code),
        error: non_empty(t.error),
        likes: t.likes,
        comments: t.comments,
        shares: t.shares,
        views: t.views,
    }
}

fn post(p: pb::Post) -> PostBody {
    PostBody {
        id: p.id,
        status: p.status,
        scheduled_at: ts(p.scheduled_at),
        time_zone: p.time_zone,
        body: json_of(&p.body_json),
        campaign_id: non_empty(p.campaign_id),
        author: p.author,
        approved_by: non_empty(p.approved_by),
        targets: p.targets.into_iter().map(target).collect(),
        created_at: ts(p.created_at),
        updated_at: ts(p.updated_at),
    }
}

/// The request's times are RFC 3339 instants (a localized 400 naming the field otherwise).
fn check_instants(b: &PostRequest) -> Result<(), ApiError> {
    if let Some(at) = &b.scheduled_at {
        instant(at, "ads.post_invalid", "scheduled_at")?;
    }
    for (i, t) in b.targets.iter().enumerate() {
        if let Some(at) = &t.variant.publish_at {
            instant(at, "ads.post_invalid", &format!("targets[{i}].variant.publish_at"))?;
        }
    }
    Ok(())
}

/// An RFC 3339 instant of a request, or a localized 400 naming `field`.
fn instant(raw: &str, code: &'static str, field: &str) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    chrono::DateTime::parse_from_rfc3339(raw.trim()).map(|t| t.with_timezone(&chrono::Utc)).map_err(|_| {
        ApiError::from(
            nexus_kernel::Error::invalid(code).with_param("field", field).with_violation(field, "not_a_time"),
        )
    })
}

/// Write a post: scheduled (admins), proposed for approval (members) or a draft.
#[utoipa::path(post, path = "/v1/ads/posts", tag = "ads", security(("bearer" = []), ("api_key" = [])), request_body = PostRequest,
    responses((status = 201, description = "Written (or the earlier post of the same request key)", body = PostBody),
        (status = 400, description = "A variant does not fit its platform (caption too long, media count or type, format, privacy…), an unknown account, a past time, `queue` with `scheduled_at`", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot write posts", body = ErrorEnvelope),
        (status = 404, description = "No such connection or campaign in this workspace", body = ErrorEnvelope),
        (status = 409, description = "`queue`: the posting queue has no free slot in the next 12 weeks", body = ErrorEnvelope),
        (status = 422, description = "A field of the wrong type, or one that does not exist (named in the error)", body = ErrorEnvelope)))]
pub async fn create_post(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<PostRequest>,
) -> Result<(StatusCode, Json<PostBody>), ApiError> {
    check_instants(&b)?;
    // Every field is a plain JSON value: serializing cannot fail.
    let spec_json = serde_json::to_string(&b).unwrap_or_default();
    let p = client(&state).create_post(pb::CreatePostRequest { spec_json }).await?.into_inner();
    Ok((StatusCode::CREATED, Json(post(p))))
}

/// Replace a post that has not started publishing: checked as a new one (a member's change to
/// an approved post goes back for approval).
#[utoipa::path(put, path = "/v1/ads/posts/{id}", tag = "ads", security(("bearer" = []), ("api_key" = [])), request_body = PostRequest,
    params(("id" = String, Path, example = "post_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "Replaced", body = PostBody),
        (status = 400, description = "A variant does not fit its platform, an unknown account, a past time, or `queue`/`request_key` (not for a change)", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot change posts", body = ErrorEnvelope),
        (status = 404, description = "No such post, connection or campaign in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Cancelled, or publishing has started", body = ErrorEnvelope),
        (status = 422, description = "A field of the wrong type, or one that does not exist (named in the error)", body = ErrorEnvelope)))]
pub async fn update_post(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<PostRequest>,
) -> Result<Json<PostBody>, ApiError> {
    check_instants(&b)?;
    let spec_json = serde_json::to_string(&b).unwrap_or_default();
    let p = client(&state).update_post(pb::UpdatePostRequest { id, spec_json }).await?.into_inner();
    Ok(Json(post(p)))
}

/// A post with each account's publication.
#[utoipa::path(get, path = "/v1/ads/posts/{id}", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "post_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "The post", body = PostBody), (status = 404, description = "No such post in this workspace", body = ErrorEnvelope)))]
pub async fn get_post(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<PostBody>, ApiError> {
    Ok(Json(post(client(&state).get_post(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Approve a proposed post or a draft (admins): it is scheduled for its time, or now if that passed.
#[utoipa::path(post, path = "/v1/ads/posts/{id}/approve", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "post_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "Scheduled", body = PostBody),
        (status = 403, description = "Only admins approve", body = ErrorEnvelope),
        (status = 404, description = "No such post in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Already scheduled or cancelled", body = ErrorEnvelope)))]
pub async fn approve_post(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<PostBody>, ApiError> {
    Ok(Json(post(client(&state).approve_post(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Move a post that has not started publishing to another time (its approval stays).
#[utoipa::path(post, path = "/v1/ads/posts/{id}/reschedule", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "post_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")), request_body = RescheduleRequest,
    responses((status = 200, description = "The post at its new time", body = PostBody),
        (status = 400, description = "Not an RFC 3339 time, or in the past", body = ErrorEnvelope),
        (status = 404, description = "No such post in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Cancelled or already publishing", body = ErrorEnvelope)))]
pub async fn reschedule_post(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<RescheduleRequest>,
) -> Result<Json<PostBody>, ApiError> {
    let at = instant(&b.scheduled_at, "ads.post_invalid", "scheduled_at")?;
    let req = pb::ReschedulePostRequest { id, scheduled_at: Some(proto_ts(at)) };
    Ok(Json(post(client(&state).reschedule_post(req).await?.into_inner())))
}

/// Cancel what has not gone out yet; what was published stays published.
#[utoipa::path(post, path = "/v1/ads/posts/{id}/cancel", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "post_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "Cancelled", body = PostBody),
        (status = 404, description = "No such post in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Already cancelled, or publishing now", body = ErrorEnvelope)))]
pub async fn cancel_post(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<PostBody>, ApiError> {
    Ok(Json(post(client(&state).cancel_post(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// The posts scheduled in a range of at most 92 days, for the calendar.
#[utoipa::path(get, path = "/v1/ads/calendar", tag = "ads", security(("bearer" = []), ("api_key" = [])), params(CalendarQuery),
    responses((status = 200, description = "The range's posts", body = CalendarBody),
        (status = 400, description = "Not RFC 3339 times, the end not after the start, or over 92 days", body = ErrorEnvelope)))]
pub async fn post_calendar(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<CalendarQuery>,
) -> Result<Json<CalendarBody>, ApiError> {
    let from = instant(&q.from, "ads.calendar_range_invalid", "from")?;
    let to = instant(&q.to, "ads.calendar_range_invalid", "to")?;
    let req = pb::PostCalendarRequest { from: Some(proto_ts(from)), to: Some(proto_ts(to)) };
    let r = client(&state).post_calendar(req).await?.into_inner();
    Ok(Json(CalendarBody { posts: r.posts.into_iter().map(post).collect() }))
}
