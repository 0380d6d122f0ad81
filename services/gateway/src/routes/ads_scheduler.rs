//! The social scheduler around the posts: `/v1/ads/posts/import` (posts from a CSV file),
//! `/v1/ads/queue/slots` (the posting queue's recurring slots) and `/v1/ads/calendar/feeds`
//! (read-only iCal feeds of the post calendar), and the feeds themselves at the public
//! `/ical/{token}`: no caller token there, the feed's token in the address is the key.

use axum::Json;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use nexus_kernel::ErrorKind;
use nexus_proto::nexus::ads::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{ads_client as client, anonymous, csv_schema, is_csv, non_empty, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

/// The largest file the ads service imports (2 MiB) and some room, so a file just over it gets
/// the service's own answer (`ads.import_too_large`, in MB) rather than the gateway's.
pub const IMPORT_BODY_LIMIT: usize = 2 * 1024 * 1024 + 64 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    // The import's own body limit; every other route keeps the gateway's `http.body_limit`.
    let import = OpenApiRouter::new().routes(routes!(import_posts)).layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT));
    OpenApiRouter::new()
        .routes(routes!(list_queue_slots, set_queue_slots))
        .routes(routes!(create_calendar_feed, list_calendar_feeds))
        .routes(routes!(revoke_calendar_feed))
        .routes(routes!(calendar_ics))
        .merge(import)
}

/// A posts CSV file (UTF-8, comma-separated, a header row first): a binary string in the document.
#[derive(Debug)]
pub struct PostsCsv;

impl utoipa::PartialSchema for PostsCsv {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        csv_schema("CSV, UTF-8, comma-separated; the first row names the columns, one post a row.", IMPORT_EXAMPLE)
    }
}

impl ToSchema for PostsCsv {}

const IMPORT_EXAMPLE: &str = "connection_id,account,scheduled_at,time_zone,queue,format,caption,hashtags,media_url,media_type,media_bytes,media_width,media_height\n\
conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7,1029384756,2026-12-10 09:00,America/New_York,,feed,Winter coats are in,\"winter, sale\",,,,,\n\
conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7,17841400000000000,,,true,carousel,Two looks,winter,https://cdn.example.com/a.jpg|https://cdn.example.com/b.jpg,image/jpeg,482113|390221,1080,1350\n";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Check every row and store nothing; default false.
    #[param(example = true)]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"line": 3, "field": "format", "code": "ads.post_invalid", "message": "The post's \"format\" is not valid."}))]
pub struct ImportRowErrorBody {
    /// The row's line in the file (the header is line 1).
    pub line: u64,
    /// The column at fault, when one is.
    pub field: Option<String>,
    pub code: String,
    /// In the caller's language.
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"rows": 2, "created": 1, "errors": [{"line": 3, "field": "format", "code": "ads.post_invalid", "message": "The post's \"format\" is not valid."}],
    "post_ids": ["post_0192f0c5c2b87c31a1f1e4f2b1a0c9d7"]}))]
pub struct ImportReportBody {
    /// Rows read (the header not counted).
    pub rows: u32,
    /// Posts created, or (dry run) that would be.
    pub created: u32,
    /// The refused rows, by line.
    pub errors: Vec<ImportRowErrorBody>,
    /// The posts created (none in a dry run); a re-imported row answers its earlier post.
    pub post_ids: Vec<String>,
}

/// A recurring slot of the posting queue.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"weekday": 1, "time": "09:30", "time_zone": "America/Mexico_City"}))]
pub struct QueueSlotBody {
    /// ISO weekday: 1 Monday … 7 Sunday.
    #[schema(minimum = 1, maximum = 7)]
    pub weekday: u32,
    /// HH:MM, local time in `time_zone`.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub time: String,
    /// IANA time zone.
    pub time_zone: String,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"slots": [{"weekday": 1, "time": "09:30", "time_zone": "America/Mexico_City"},
    {"weekday": 4, "time": "18:00", "time_zone": "America/Mexico_City"}]}))]
pub struct QueueSlotsBody {
    /// At most 100; by weekday and time.
    #[schema(max_items = 100)]
    pub slots: Vec<QueueSlotBody>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Team calendar"}))]
pub struct CalendarFeedRequest {
    /// Shown as the calendar's name; empty: "NexusOne posts".
    #[serde(default)]
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "feed_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "name": "Team calendar", "created_at": "2026-12-07T09:12:44+00:00", "revoked_at": null}))]
pub struct CalendarFeedBody {
    #[schema(example = "feed_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub id: String,
    pub name: String,
    pub created_at: Option<String>,
    /// Set once revoked: the address answers 404 from then on.
    pub revoked_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"feed": {"id": "feed_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "name": "Team calendar", "created_at": "2026-12-07T09:12:44+00:00", "revoked_at": null},
    "url": "/ical/q3Vt0yJ8Zb1kXw4mR7nP2sLd9fGh6aEc5uTi0oYxBvQ"}))]
pub struct CalendarFeedCreatedBody {
    pub feed: CalendarFeedBody,
    /// The feed's address on this API's host, for a calendar app to subscribe to. The token in it
    /// is the only key and is shown this once: keep it like a password.
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarFeedListBody {
    /// Newest first, revoked ones included.
    pub feeds: Vec<CalendarFeedBody>,
}

fn feed(f: pb::CalendarFeed) -> CalendarFeedBody {
    CalendarFeedBody { id: f.id, name: f.name, created_at: ts(f.created_at), revoked_at: ts(f.revoked_at) }
}

fn slots(s: pb::QueueSlots) -> QueueSlotsBody {
    let slot = |s: pb::QueueSlot| QueueSlotBody { weekday: s.weekday, time: s.time, time_zone: s.time_zone };
    QueueSlotsBody { slots: s.slots.into_iter().map(slot).collect() }
}

/// Import posts from a CSV file sent as the request body, one post on one account a row.
///
/// The columns are named by the first row (any order, any case; an unknown column refuses the
/// whole file, so a typo is not silently dropped): `connection_id` and `account` (required),
/// `scheduled_at` (RFC 3339, or `YYYY-MM-DD HH:MM` in the row's `time_zone`), `time_zone` (IANA),
/// `queue` and `draft` (true/false), `format` (feed, reel, story, carousel, video), `caption`,
/// `hashtags` (separated by spaces or commas), `first_comment`, `link`, `title`, `tags`
/// (comma-separated), `privacy`, and the media: `media_url`, `media_type` (`image/jpeg`,
/// `video/mp4`…), `media_bytes`, `media_width`, `media_height`, `media_duration`, several media
/// separated by `|` with their details in the same order (one value applies to all). A
/// `media_url` of `video:vid_…` (a finished video of `/v1/videos`), `media:<id>` (an upload of
/// `/v1/ads/media`) or `image:img_…` (a finished image of `/v1/images`, imported into the media
/// library) needs no details: the service reads them.
///
/// ```csv
/// connection_id,account,scheduled_at,time_zone,queue,format,caption,hashtags
/// conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7,1029384756,2026-12-10 09:00,America/New_York,,feed,Winter coats are in,"winter, sale"
/// conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7,17841400000000000,,,true,feed,Free returns,winter
/// ```
///
/// Each row stands alone: the others are written while a refused one is named in `errors` by
/// line, column and a reason in the caller's language. A dry run checks every row and stores
/// nothing. The same file imported again creates nothing twice. At most 2 MB and 1,000 rows.
#[utoipa::path(post, path = "/v1/ads/posts/import", tag = "ads", security(("bearer" = []), ("api_key" = [])), params(ImportQuery),
    request_body(content = PostsCsv, content_type = "text/csv", description = "The file, UTF-8, a header row first"),
    responses((status = 200, description = "The report: rows read, posts created (or that would be), refused rows by line", body = ImportReportBody),
        (status = 400, description = "An unknown or missing column, not UTF-8 text, over 2 MB or 1,000 rows; nothing was stored", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot import", body = ErrorEnvelope),
        (status = 413, description = "Far over 2 MB", body = ErrorEnvelope),
        (status = 415, description = "The body is not text/csv (UTF-8)", body = ErrorEnvelope)))]
pub async fn import_posts(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<ImportQuery>,
    req: Request,
) -> Result<Json<ImportReportBody>, ApiError> {
    if !is_csv(req.headers()) {
        return Err(ApiError::new(ErrorKind::UnsupportedMediaType, "request.unsupported_media_type")
            .with_field("content-type", "not_text_csv"));
    }
    let bytes = Bytes::from_request(req, &state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            // The edge would name the gateway's general limit; this route has its own.
            ApiError::new(ErrorKind::PayloadTooLarge, "request.body_too_large")
                .with_param("limit", IMPORT_BODY_LIMIT.to_string())
        } else {
            ApiError::new(ErrorKind::InvalidArgument, "request.invalid")
        }
    })?;
    let csv = String::from_utf8(bytes.into())
        .map_err(|_| ApiError::new(ErrorKind::InvalidArgument, "request.invalid").with_field("body", "not_utf8"))?;
    let req = pb::ImportPostsRequest { csv, dry_run: q.dry_run.unwrap_or(false) };
    let r = client(&state).import_posts(req).await?.into_inner();
    let row = |e: pb::ImportRowError| ImportRowErrorBody {
        line: e.line,
        field: non_empty(e.field),
        code: e.code,
        message: e.message,
    };
    Ok(Json(ImportReportBody {
        rows: r.rows,
        created: r.created,
        errors: r.errors.into_iter().map(row).collect(),
        post_ids: r.post_ids,
    }))
}

/// The posting queue's recurring slots: a post sent with `queue: true` takes the earliest free one.
#[utoipa::path(get, path = "/v1/ads/queue/slots", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The slots, by weekday and time", body = QueueSlotsBody)))]
pub async fn list_queue_slots(
    State(state): State<AppState>,
    _a: Authenticated,
) -> Result<Json<QueueSlotsBody>, ApiError> {
    Ok(Json(slots(client(&state).list_queue_slots(pb::Empty {}).await?.into_inner())))
}

/// Replace the posting queue's slots (posts already given a slot keep their time).
#[utoipa::path(put, path = "/v1/ads/queue/slots", tag = "ads", security(("bearer" = []), ("api_key" = [])), request_body = QueueSlotsBody,
    responses((status = 200, description = "The slots now, by weekday and time", body = QueueSlotsBody),
        (status = 400, description = "A weekday outside 1 to 7, a time not HH:MM, an unknown time zone, over 100 slots (the slot named in the error)", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot change the queue", body = ErrorEnvelope)))]
pub async fn set_queue_slots(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<QueueSlotsBody>,
) -> Result<Json<QueueSlotsBody>, ApiError> {
    let slot = |s: QueueSlotBody| pb::QueueSlot { weekday: s.weekday, time: s.time, time_zone: s.time_zone };
    let req = pb::QueueSlots { slots: b.slots.into_iter().map(slot).collect() };
    Ok(Json(slots(client(&state).set_queue_slots(req).await?.into_inner())))
}

/// Make a read-only iCal feed of the post calendar (the last 30 days and the next 180) for a
/// calendar app; its address holds its key and is answered this once.
#[utoipa::path(post, path = "/v1/ads/calendar/feeds", tag = "ads", security(("bearer" = []), ("api_key" = [])), request_body = CalendarFeedRequest,
    responses((status = 201, description = "The feed and its address", body = CalendarFeedCreatedBody),
        (status = 400, description = "A name over 100 characters or with control characters", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot make feeds", body = ErrorEnvelope)))]
pub async fn create_calendar_feed(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<CalendarFeedRequest>,
) -> Result<(StatusCode, Json<CalendarFeedCreatedBody>), ApiError> {
    let r = client(&state).create_calendar_feed(pb::CreateCalendarFeedRequest { name: b.name }).await?.into_inner();
    // The gateway knows no public base URL of its own: the address is on the host the client
    // called. The token is URL-safe base64.
    let url = format!("/ical/{}", r.token);
    Ok((StatusCode::CREATED, Json(CalendarFeedCreatedBody { feed: feed(r.feed.unwrap_or_default()), url })))
}

/// The workspace's calendar feeds (their addresses are not kept).
#[utoipa::path(get, path = "/v1/ads/calendar/feeds", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The feeds", body = CalendarFeedListBody)))]
pub async fn list_calendar_feeds(
    State(state): State<AppState>,
    _a: Authenticated,
) -> Result<Json<CalendarFeedListBody>, ApiError> {
    let r = client(&state).list_calendar_feeds(pb::Empty {}).await?.into_inner();
    Ok(Json(CalendarFeedListBody { feeds: r.feeds.into_iter().map(feed).collect() }))
}

/// Stop a feed at once: its address answers 404 from then on.
#[utoipa::path(post, path = "/v1/ads/calendar/feeds/{id}/revoke", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "feed_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "Revoked (again: unchanged)", body = CalendarFeedBody),
        (status = 403, description = "Viewers cannot revoke feeds", body = ErrorEnvelope),
        (status = 404, description = "No such feed in this workspace", body = ErrorEnvelope)))]
pub async fn revoke_calendar_feed(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CalendarFeedBody>, ApiError> {
    Ok(Json(feed(client(&state).revoke_calendar_feed(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// A calendar feed as iCalendar (RFC 5545) for calendar apps: one event a post at its time. No
/// token: the feed's token in the address is the key.
#[utoipa::path(get, path = "/ical/{token}", tag = "ads",
    params(("token" = String, Path, example = "q3Vt0yJ8Zb1kXw4mR7nP2sLd9fGh6aEc5uTi0oYxBvQ")),
    responses((status = 200, description = "The calendar", content_type = "text/calendar", body = String,
            example = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//NexusOne//Social calendar//EN\r\nCALSCALE:GREGORIAN\r\nX-WR-CALNAME:Team calendar\r\nBEGIN:VEVENT\r\nUID:post_0192f0c5c2b87c31a1f1e4f2b1a0c9d7@nexusone\r\nDTSTAMP:20261207T091244Z\r\nDTSTART:20261210T140000Z\r\nDURATION:PT15M\r\nLAST-MODIFIED:20261207T091244Z\r\nSUMMARY:facebook: Winter coats are in\r\nDESCRIPTION:Winter coats are in\r\nSTATUS:CONFIRMED\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"),
        (status = 404, description = "No feed at this address, or it was revoked", body = ErrorEnvelope)))]
pub async fn calendar_ics(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, ApiError> {
    let r = anonymous().scope(client(&state).calendar_ics(pb::CalendarIcsRequest { token })).await?.into_inner();
    let headers = [
        (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
        // Calendar apps poll; five minutes of staleness is fine, and the answer is for one reader.
        (header::CACHE_CONTROL, "private, max-age=300"),
        // The address is the key: never sent on as a referrer.
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    Ok((headers, r.ics).into_response())
}
