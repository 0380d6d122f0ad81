//! Instagram content publishing and Facebook Page posts through the Graph API
//! (`reference/providers.md` §8, §9c), for a scheduler that publishes each post exactly once.
//!
//! - Instagram: a media container (`POST /{ig_user}/media`), its processing polled
//!   (`GET /{container}?fields=status_code,status`), then `POST /{ig_user}/media_publish`. The
//!   account's recent media, its publishing limit, a media's engagement and first comment.
//! - Pages: a page token from the user token (`GET /{page}?fields=access_token`), posts on
//!   `/{page}/feed` or `/{page}/photos`, recent posts, engagement and comments.
//!
//! Publishing is sent once, never repeated by the client: a publish whose answer is lost
//! (timeout, 5xx) may have happened, and only the caller, finding the post in the recent
//! listing by its text, can tell. Creating a container is retried like a read: an unused
//! container is harmless and expires after 24 h.

use std::time::Duration;

use serde_json::Value;

use crate::http::RetryPolicy;
use crate::marketing::{Engagement, PlatformError, PublishedItem, call, text};
use crate::meta::{MetaClient, PLATFORM, data, judge};

/// What an Instagram media container holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgKind {
    /// A feed photo (`image_url`).
    Image,
    /// A reel (`video_url`), shown in the feed too with `share_to_feed`.
    Reel,
    ImageStory,
    VideoStory,
    /// A photo inside a carousel (`is_carousel_item`).
    CarouselImage,
    /// A video inside a carousel.
    CarouselVideo,
    /// The carousel itself, over 2–10 item containers (`children`).
    Carousel,
}

/// A container to create: `media_url` for every kind but [`IgKind::Carousel`], whose items are
/// `children` (container ids). The caption goes on feed posts (image, reel, carousel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgContainer {
    pub kind: IgKind,
    pub media_url: Option<String>,
    pub caption: Option<String>,
    pub children: Vec<String>,
    pub share_to_feed: bool,
}

/// Where a container stands (`status_code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerStatus {
    InProgress,
    /// Ready to publish.
    Finished,
    /// Processing failed; Meta's `status` text.
    Error(String),
    /// Not published within 24 h.
    Expired,
    Published,
}

/// A Facebook Page post: a photo post (with `message` as its caption) when `photo_url` is set,
/// else a feed post with an optional link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagePost {
    pub message: String,
    pub link: Option<String>,
    pub photo_url: Option<String>,
}

impl IgContainer {
    /// The container's form fields (credentials aside).
    fn fields(&self) -> Vec<(&'static str, String)> {
        let url = self.media_url.clone().unwrap_or_default();
        let mut f: Vec<(&'static str, String)> = match self.kind {
            IgKind::Image => vec![("image_url", url)],
            IgKind::Reel => vec![
                ("media_type", "REELS".into()),
                ("video_url", url),
                ("share_to_feed", self.share_to_feed.to_string()),
            ],
            IgKind::ImageStory => vec![("media_type", "STORIES".into()), ("image_url", url)],
            IgKind::VideoStory => vec![("media_type", "STORIES".into()), ("video_url", url)],
            IgKind::CarouselImage => vec![("image_url", url), ("is_carousel_item", "true".into())],
            IgKind::CarouselVideo => {
                vec![("media_type", "VIDEO".into()), ("video_url", url), ("is_carousel_item", "true".into())]
            }
            IgKind::Carousel => vec![("media_type", "CAROUSEL".into()), ("children", self.children.join(","))],
        };
        // Stories and carousel items take no caption (Instagram ignores or refuses it).
        if let (Some(c), IgKind::Image | IgKind::Reel | IgKind::Carousel) = (&self.caption, self.kind) {
            f.push(("caption", c.clone()));
        }
        f
    }
}

/// A publish is sent once (see the module's note).
const ONCE: RetryPolicy = RetryPolicy::new(1, Duration::ZERO);

fn id_of(v: &Value) -> Result<String, PlatformError> {
    let id = text(v, "id");
    if id.is_empty() {
        return Err(PlatformError::Decode { platform: PLATFORM, message: "no id in the answer".into() });
    }
    Ok(id)
}

/// A count at `pointer`, zero when Meta leaves it out (it omits `shares` until there is one).
fn count(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(|n| n.as_i64().or_else(|| n.as_str().and_then(|s| s.parse().ok()))).unwrap_or(0)
}

/// The most items Graph returns per listing page.
const GRAPH_PAGE: usize = 100;

/// The fields of a listing's items: (text, link, creation time).
type ItemFields<'a> = (&'a str, &'a str, &'a str);

fn items(v: &Value, fields: ItemFields<'_>) -> Vec<PublishedItem> {
    data(v).iter().map(|m| item(m, fields)).filter(|m| !m.id.is_empty()).collect()
}

fn item(m: &Value, (text_field, link_field, time_field): ItemFields<'_>) -> PublishedItem {
    PublishedItem {
        id: text(m, "id"),
        permalink: text(m, link_field),
        text: text(m, text_field),
        created_at: graph_time(&text(m, time_field)),
    }
}

/// Graph's times (`2026-12-07T09:12:44+0000`; RFC 3339 accepted too).
fn graph_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

impl MetaClient {
    /// POSTs form `fields` to `path` with the token and its proof in the body (kept out of the
    /// URL), under `retry`.
    async fn post_form(
        &self,
        token: &str,
        path: &str,
        query: &[(&str, &str)],
        fields: &[(&str, String)],
        retry: RetryPolicy,
        what: &'static str,
    ) -> Result<Value, PlatformError> {
        let url = format!("{}{path}", self.base);
        let mut form: Vec<(&str, String)> = fields.to_vec();
        form.push(("access_token", token.to_owned()));
        form.push(("appsecret_proof", self.appsecret_proof(token)));
        Ok(call(PLATFORM, retry, self.cfg.timeout, what, judge, || self.http.post(&url).query(query).form(&form))
            .await?
            .json)
    }

    /// Creates a media container on the Instagram account; answers its id.
    pub async fn ig_create_container(
        &self,
        token: &str,
        ig_user: &str,
        c: &IgContainer,
    ) -> Result<String, PlatformError> {
        let v =
            self.post_form(token, &format!("/{ig_user}/media"), &[], &c.fields(), self.retry, "ig container").await?;
        id_of(&v)
    }

    /// Where a container's processing stands.
    pub async fn ig_container_status(&self, token: &str, container: &str) -> Result<ContainerStatus, PlatformError> {
        let v = self.authed(token, &format!("/{container}"), &[("fields", "status_code,status")], "ig status").await?;
        Ok(match text(&v, "status_code").as_str() {
            "IN_PROGRESS" => ContainerStatus::InProgress,
            "FINISHED" => ContainerStatus::Finished,
            "ERROR" => ContainerStatus::Error(text(&v, "status")),
            "EXPIRED" => ContainerStatus::Expired,
            "PUBLISHED" => ContainerStatus::Published,
            other => {
                return Err(PlatformError::Decode { platform: PLATFORM, message: format!("status_code {other:?}") });
            }
        })
    }

    /// Publishes a finished container; answers the media id. Sent once: on a timeout or an
    /// upstream error the post may be live, and the caller looks for it in
    /// [`MetaClient::ig_recent_media`] before anything else.
    pub async fn ig_publish(&self, token: &str, ig_user: &str, container: &str) -> Result<String, PlatformError> {
        let path = format!("/{ig_user}/media_publish");
        let v = self.post_form(token, &path, &[("creation_id", container)], &[], ONCE, "ig publish").await?;
        id_of(&v)
    }

    /// The account's latest media, newest first (`text` is the caption).
    pub async fn ig_recent_media(
        &self,
        token: &str,
        ig_user: &str,
        limit: u32,
    ) -> Result<Vec<PublishedItem>, PlatformError> {
        let fields = ("caption", "permalink", "timestamp");
        self.recent(token, &format!("/{ig_user}/media"), limit, fields, "ig media list").await
    }

    /// The first `limit` items of a listing, newest first, with (text, link, time) fields,
    /// following Graph's `after` cursor 100 at a time (a lost publish is looked for among
    /// everything posted since, however busy the account).
    async fn recent(
        &self,
        token: &str,
        path: &str,
        limit: u32,
        item_fields: ItemFields<'_>,
        what: &'static str,
    ) -> Result<Vec<PublishedItem>, PlatformError> {
        let (text_field, link_field, time_field) = item_fields;
        let fields = format!("id,{text_field},{link_field},{time_field}");
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        while out.len() < limit as usize {
            let page = (limit as usize - out.len()).min(GRAPH_PAGE).to_string();
            let mut q = vec![("fields", fields.as_str()), ("limit", page.as_str())];
            if let Some(a) = &after {
                q.push(("after", a.as_str()));
            }
            let v = self.authed(token, path, &q, what).await?;
            let got = items(&v, item_fields);
            let more = v.pointer("/paging/next").is_some();
            after = v.pointer("/paging/cursors/after").and_then(Value::as_str).map(str::to_owned);
            let empty = got.is_empty();
            out.extend(got);
            if empty || !more || after.is_none() {
                break;
            }
        }
        out.truncate(limit as usize);
        Ok(out)
    }

    /// One published media.
    pub async fn ig_media(&self, token: &str, media_id: &str) -> Result<PublishedItem, PlatformError> {
        let q = [("fields", "id,caption,permalink,timestamp")];
        let v = self.authed(token, &format!("/{media_id}"), &q, "ig media").await?;
        id_of(&v)?;
        Ok(item(&v, ("caption", "permalink", "timestamp")))
    }

    /// (posts published in the last 24 h, posts allowed per 24 h); the allowance is read, not
    /// assumed (Meta's pages disagree on it).
    pub async fn ig_publishing_limit(&self, token: &str, ig_user: &str) -> Result<(u32, u32), PlatformError> {
        let path = format!("/{ig_user}/content_publishing_limit");
        let v = self.authed(token, &path, &[("fields", "quota_usage,config")], "ig publishing limit").await?;
        let Some(row) = data(&v).into_iter().next() else {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no publishing limit".into() });
        };
        let usage = count(&row, "/quota_usage");
        let total = count(&row, "/config/quota_total");
        Ok((u32::try_from(usage).unwrap_or(0), u32::try_from(total).unwrap_or(0)))
    }

    /// Likes and comments of a media (and its views where Meta includes them).
    pub async fn ig_engagement(&self, token: &str, media_id: &str) -> Result<Engagement, PlatformError> {
        let v = self
            .authed(token, &format!("/{media_id}"), &[("fields", "like_count,comments_count")], "ig engagement")
            .await?;
        Ok(Engagement {
            likes: count(&v, "/like_count"),
            comments: count(&v, "/comments_count"),
            shares: 0,
            views: count(&v, "/views"),
        })
    }

    /// Comments on a media (the post's first comment); answers the comment id. Sent once: a
    /// repeated comment would show twice.
    pub async fn ig_comment(&self, token: &str, media_id: &str, text: &str) -> Result<String, PlatformError> {
        self.comment(token, media_id, text, "ig comment").await
    }

    async fn comment(&self, token: &str, on: &str, text: &str, what: &'static str) -> Result<String, PlatformError> {
        let fields = [("message", text.to_owned())];
        id_of(&self.post_form(token, &format!("/{on}/comments"), &[], &fields, ONCE, what).await?)
    }

    /// The page's access token, from the token of a user who manages it.
    pub async fn page_token(&self, user_token: &str, page_id: &str) -> Result<String, PlatformError> {
        let v = self.authed(user_token, &format!("/{page_id}"), &[("fields", "access_token")], "page token").await?;
        let token = text(&v, "access_token");
        if token.is_empty() {
            // Meta leaves the field out when the user no longer manages the page.
            return Err(PlatformError::Auth { platform: PLATFORM, message: "no page access token".into() });
        }
        Ok(token)
    }

    /// Posts on the page; answers the post id. Sent once, like [`MetaClient::ig_publish`]; the
    /// caller reconciles through [`MetaClient::page_recent_posts`].
    pub async fn page_publish(&self, page_token: &str, page_id: &str, p: &PagePost) -> Result<String, PlatformError> {
        let (edge, fields) = match &p.photo_url {
            Some(url) => ("photos", vec![("url", url.clone()), ("caption", p.message.clone())]),
            None => {
                let mut f = vec![("message", p.message.clone())];
                f.extend(p.link.iter().map(|l| ("link", l.clone())));
                ("feed", f)
            }
        };
        let v = self.post_form(page_token, &format!("/{page_id}/{edge}"), &[], &fields, ONCE, "page publish").await?;
        // A photo answers its own id and the id of the post showing it; the post is what the
        // page's listing and engagement speak of.
        let post = text(&v, "post_id");
        if post.is_empty() { id_of(&v) } else { Ok(post) }
    }

    /// The page's latest posts, newest first (`text` is the message).
    pub async fn page_recent_posts(
        &self,
        page_token: &str,
        page_id: &str,
        limit: u32,
    ) -> Result<Vec<PublishedItem>, PlatformError> {
        let path = format!("/{page_id}/posts");
        self.recent(page_token, &path, limit, ("message", "permalink_url", "created_time"), "page posts").await
    }

    /// Reactions (as likes), comments and shares of a page post.
    pub async fn page_engagement(&self, page_token: &str, post_id: &str) -> Result<Engagement, PlatformError> {
        let fields = "reactions.summary(total_count),comments.summary(total_count),shares";
        let v = self.authed(page_token, &format!("/{post_id}"), &[("fields", fields)], "page engagement").await?;
        Ok(Engagement {
            likes: count(&v, "/reactions/summary/total_count"),
            comments: count(&v, "/comments/summary/total_count"),
            shares: count(&v, "/shares/count"),
            views: 0,
        })
    }

    /// Comments on a page post as the page; answers the comment id. Sent once.
    pub async fn page_comment(&self, page_token: &str, post_id: &str, text: &str) -> Result<String, PlatformError> {
        self.comment(page_token, post_id, text, "page comment").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(kind: IgKind) -> IgContainer {
        IgContainer {
            kind,
            media_url: Some("https://cdn.example/m".into()),
            caption: Some("hello".into()),
            children: vec!["1".into(), "2".into()],
            share_to_feed: true,
        }
    }

    fn keys(kind: IgKind) -> Vec<&'static str> {
        container(kind).fields().iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn each_kind_sends_its_fields() {
        assert_eq!(keys(IgKind::Image), ["image_url", "caption"]);
        assert_eq!(keys(IgKind::Reel), ["media_type", "video_url", "share_to_feed", "caption"]);
        assert_eq!(keys(IgKind::ImageStory), ["media_type", "image_url"]);
        assert_eq!(keys(IgKind::VideoStory), ["media_type", "video_url"]);
        assert_eq!(keys(IgKind::CarouselImage), ["image_url", "is_carousel_item"]);
        assert_eq!(keys(IgKind::CarouselVideo), ["media_type", "video_url", "is_carousel_item"]);
        assert_eq!(keys(IgKind::Carousel), ["media_type", "children", "caption"]);
        let carousel = container(IgKind::Carousel).fields();
        assert!(carousel.contains(&("children", "1,2".into())));
        assert!(carousel.contains(&("media_type", "CAROUSEL".into())));
    }
}
