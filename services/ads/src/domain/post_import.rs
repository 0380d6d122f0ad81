//! Posts from a CSV file, one row a post on one account: the columns read by name (any order,
//! case-insensitive), each row turned into a [`PostSpec`] or refused with its line, field and
//! reason. Several pictures or videos go in one cell separated by `|`, their details aligned; a
//! `media_url` of `video:<id>` or `media:<id>` names a video of the video service or an upload
//! of the media library instead (its details come from there).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use nexus_kernel::Error;

#[cfg(test)]
use super::posts::MediaSource;
use super::posts::{Format, Media, MediaKind, PostSpec, TargetSpec, Variant};

/// The most rows a file may hold.
pub const ROWS_MAX: usize = 1_000;
/// The largest file.
pub const BYTES_MAX: usize = 2 * 1024 * 1024;

/// The columns a file must have.
pub const REQUIRED: &[&str] = &["connection_id", "account"];
/// Every column read.
pub const COLUMNS: &[&str] = &[
    "connection_id",
    "account",
    "scheduled_at",
    "time_zone",
    "queue",
    "draft",
    "format",
    "caption",
    "hashtags",
    "first_comment",
    "link",
    "title",
    "tags",
    "privacy",
    "media_url",
    "media_type",
    "media_bytes",
    "media_width",
    "media_height",
    "media_duration",
];

/// A row refused: its line in the file (1 is the header), the column, the code and its params.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub field: String,
    pub code: String,
    pub params: Vec<(String, String)>,
}

impl RowError {
    /// The row's error, naming the file's column rather than the post's field path.
    pub fn of(line: u64, e: &Error) -> RowError {
        let field = e.param("field").map(str::to_owned).or_else(|| e.violations().first().map(|v| v.field.clone()));
        let field = match e.code() {
            "ads.connection_not_found" => "connection_id".to_owned(),
            "ads.account_unknown" => "account".to_owned(),
            _ => column_of(field.as_deref().unwrap_or("")),
        };
        RowError { line, field, code: e.code().to_owned(), params: e.params().to_vec() }
    }
}

/// The column a post field came from (`targets[0].account` → `account`, `media[1].url` →
/// `media_url`).
fn column_of(field: &str) -> String {
    let field = field.strip_prefix("targets[0].").unwrap_or(field);
    if field.starts_with("media[") {
        return "media_url".to_owned();
    }
    field.to_owned()
}

fn bad(field: &str, why: &str) -> Error {
    Error::invalid("ads.post_invalid").with_param("field", field).with_violation(field, why)
}

/// Where each column is (unknown columns refused, so a typo is not silently dropped).
pub fn header(row: &csv::StringRecord) -> Result<HashMap<String, usize>, Error> {
    let mut at = HashMap::new();
    for (i, name) in row.iter().enumerate() {
        let name = name.trim().trim_start_matches('\u{feff}').to_ascii_lowercase();
        if !COLUMNS.contains(&name.as_str()) {
            return Err(Error::invalid("ads.import_column_unknown")
                .with_param("column", name.chars().take(60).collect::<String>()));
        }
        at.insert(name, i);
    }
    for r in REQUIRED {
        if !at.contains_key(*r) {
            return Err(Error::invalid("ads.import_column_missing").with_param("column", *r));
        }
    }
    Ok(at)
}

fn cells(value: &str) -> Vec<&str> {
    if value.trim().is_empty() { Vec::new() } else { value.split('|').map(str::trim).collect() }
}

/// The `i`-th of aligned `|` values, or the only one for all.
fn aligned<'a>(values: &[&'a str], i: usize) -> Option<&'a str> {
    if values.len() == 1 { values.first().copied() } else { values.get(i).copied() }
}

fn number<T: std::str::FromStr>(values: &[&str], i: usize, field: &str) -> Result<Option<T>, Error> {
    match aligned(values, i) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| bad(field, "number")),
    }
}

fn flag(v: &str, field: &str) -> Result<bool, Error> {
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "no" | "0" => Ok(false),
        "true" | "yes" | "1" => Ok(true),
        _ => Err(bad(field, "boolean")),
    }
}

/// A time as RFC 3339, or `YYYY-MM-DD HH:MM` in the row's time zone.
fn time(v: &str, time_zone: &str) -> Result<Option<DateTime<Utc>>, Error> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    let local = NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M").map_err(|_| bad("scheduled_at", "time"))?;
    let tz: chrono_tz::Tz = if time_zone.is_empty() {
        chrono_tz::UTC
    } else {
        time_zone.parse().map_err(|_| bad("time_zone", "unknown"))?
    };
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| Some(t.with_timezone(&Utc)))
        .ok_or_else(|| bad("scheduled_at", "time"))
}

/// One row as a post (its request key makes a re-import of the same file create nothing twice).
pub fn row_spec(at: &HashMap<String, usize>, row: &csv::StringRecord, request_key: String) -> Result<PostSpec, Error> {
    let get = |name: &str| at.get(name).and_then(|i| row.get(*i)).unwrap_or("").trim();
    let format = match get("format") {
        "" => None,
        f => Some(serde_json::from_value::<Format>(serde_json::json!(f)).map_err(|_| bad("format", "unknown"))?),
    };
    let urls = cells(get("media_url"));
    let (types, sizes, widths, heights, durations) = (
        cells(get("media_type")),
        cells(get("media_bytes")),
        cells(get("media_width")),
        cells(get("media_height")),
        cells(get("media_duration")),
    );
    let mut media = Vec::with_capacity(urls.len());
    for (i, url) in urls.iter().enumerate() {
        // `video:vid_…`, `media:<id>` and `image:img_…` name items whose facts the services hold.
        if let Some(id) = url.strip_prefix("video:") {
            media.push(Media { video_id: Some(id.to_owned()), ..Media::default() });
            continue;
        }
        if let Some(id) = url.strip_prefix("media:") {
            media.push(Media { media_id: Some(id.to_owned()), ..Media::default() });
            continue;
        }
        if let Some(id) = url.strip_prefix("image:") {
            media.push(Media { image_id: Some(id.to_owned()), ..Media::default() });
            continue;
        }
        let content_type = aligned(&types, i).unwrap_or("").to_ascii_lowercase();
        let kind = if content_type.starts_with("video/") {
            MediaKind::Video
        } else if content_type.starts_with("image/") {
            MediaKind::Image
        } else {
            return Err(bad("media_type", "unknown"));
        };
        media.push(Media {
            url: (*url).to_owned(),
            kind,
            content_type,
            bytes: number(&sizes, i, "media_bytes")?.ok_or_else(|| bad("media_bytes", "required"))?,
            width: number(&widths, i, "media_width")?.unwrap_or(0),
            height: number(&heights, i, "media_height")?.unwrap_or(0),
            duration_secs: number(&durations, i, "media_duration")?.unwrap_or(0.0),
            ..Media::default()
        });
    }
    let words = |v: &str| v.split([' ', ',']).map(str::trim).filter(|w| !w.is_empty()).map(str::to_owned).collect();
    let time_zone = get("time_zone").to_owned();
    let variant = Variant {
        format: format.unwrap_or_default(),
        caption: get("caption").to_owned(),
        hashtags: words(get("hashtags")),
        first_comment: get("first_comment").to_owned(),
        link: Some(get("link").to_owned()).filter(|l| !l.is_empty()),
        media,
        title: get("title").to_owned(),
        tags: get("tags").split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect(),
        privacy: get("privacy").to_owned(),
        to_inbox: false,
        share_to_feed: false,
        publish_at: None,
    };
    Ok(PostSpec {
        targets: vec![TargetSpec {
            connection_id: get("connection_id").to_owned(),
            account: get("account").to_owned(),
            variant,
        }],
        scheduled_at: time(get("scheduled_at"), &time_zone)?,
        time_zone,
        queue: flag(get("queue"), "queue")?,
        draft: flag(get("draft"), "draft")?,
        request_key: Some(request_key),
        ..PostSpec::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (HashMap<String, usize>, Vec<csv::StringRecord>) {
        let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
        let mut rows = r.records().map(Result::unwrap);
        let at = header(&rows.next().unwrap()).unwrap();
        (at, rows.collect())
    }

    #[test]
    fn rows_become_posts_with_aligned_media_and_local_times() {
        let (at, rows) = parse(
            "Connection_ID,account,scheduled_at,time_zone,format,caption,hashtags,media_url,media_type,media_bytes,media_width,media_height\n\
             conn_1,1784,2026-05-01 09:30,Europe/Madrid,carousel,Two pics,\"sale, spring\",https://a/1.jpg|https://a/2.jpg,image/jpeg,1000|2000,1080,1080\n",
        );
        let spec = row_spec(&at, &rows[0], "k".into()).unwrap();
        assert_eq!(spec.scheduled_at, Some("2026-05-01T07:30:00Z".parse().unwrap()));
        let v = &spec.targets[0].variant;
        assert_eq!((v.format, v.hashtags.clone()), (Format::Carousel, vec!["sale".to_owned(), "spring".to_owned()]));
        assert_eq!(v.media.iter().map(|m| m.bytes).collect::<Vec<_>>(), vec![1000, 2000]);
        assert!(v.media.iter().all(|m| m.width == 1080 && m.kind == MediaKind::Image));
    }

    #[test]
    fn video_library_and_image_references_need_no_details() {
        let (at, rows) = parse(
            "connection_id,account,format,media_url,media_type,media_bytes\n\
             conn_1,adv_1,video,video:vid_1|media:med_2|https://a/3.mp4|image:img_4,||video/mp4|,||9000|\n",
        );
        let spec = row_spec(&at, &rows[0], "k".into()).unwrap();
        let m = &spec.targets[0].variant.media;
        assert_eq!(m[0].reference(), Some((MediaSource::Video, "vid_1")));
        assert_eq!(m[1].reference(), Some((MediaSource::Library, "med_2")));
        assert!(m[0].url.is_empty() && m[1].url.is_empty());
        assert_eq!((m[2].reference(), m[2].bytes, m[2].kind), (None, 9000, MediaKind::Video));
        assert_eq!(m[3].reference(), Some((MediaSource::Image, "img_4")));
    }

    #[test]
    fn bad_cells_name_their_column() {
        let (at, rows) = parse(
            "connection_id,account,media_url,media_type,media_bytes,format,queue\n\
             c,a,https://a/1.jpg,image/jpeg,lots,feed,\n\
             c,a,,,,reels,\n\
             c,a,,,,,maybe\n",
        );
        let field = |i: usize| row_spec(&at, &rows[i], "k".into()).unwrap_err().param("field").map(str::to_owned);
        let e = Error::invalid("ads.account_unknown").with_violation("targets[0].account", "unknown");
        assert_eq!(RowError::of(3, &e).field, "account");
        let e = Error::invalid("ads.post_media_type").with_param("field", "media[1]");
        assert_eq!(RowError::of(3, &e).field, "media_url");
        assert_eq!(field(0).as_deref(), Some("media_bytes"));
        assert_eq!(field(1).as_deref(), Some("format"));
        assert_eq!(field(2).as_deref(), Some("queue"));
        let unknown = csv::StringRecord::from(vec!["connection_id", "account", "colour"]);
        assert_eq!(header(&unknown).unwrap_err().code(), "ads.import_column_unknown");
        let missing = csv::StringRecord::from(vec!["connection_id"]);
        assert_eq!(header(&missing).unwrap_err().param("column"), Some("account"));
    }
}
