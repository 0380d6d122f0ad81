//! TikTok API for Business (`reference/providers.md` §9): the authorization code exchanged for a
//! long-lived advertiser token with the advertiser ids it may use, and the advertisers' names,
//! currencies and time zones; campaigns, ad groups and ads (create with a `request_id`, look up
//! by name, status and budget updates, deletion as `operation_status: DELETE`); images uploaded by
//! URL (TikTok fetches them); the integrated daily report; custom audiences through the segment
//! API (SHA-256 hashes only).
//!
//! - `{base_url}/open_api/v1.3/…`, header `Access-Token`; every answer is
//!   `{"code","message","request_id","data"}` and `code` other than 0 is an error even with
//!   HTTP 200 (40100: too frequent; 40102, 40104, 40105: token problems).
//! - TikTok's tokens do not expire and have no revocation endpoint here: disconnecting forgets
//!   the token.

use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::RetryPolicy;
use crate::marketing::{InsightRow, Interest, PlatformError, call, text};

const PLATFORM: &str = "TikTok";
const TOKEN_CODES: &[i64] = &[40102, 40104, 40105];

#[derive(Clone)]
pub struct TikTokConfig {
    pub app_id: String,
    /// Never logged.
    pub secret: String,
    /// `https://business-api.tiktok.com` (tests: a fake).
    pub base_url: String,
    pub timeout: Duration,
    pub attempts: u32,
}

impl fmt::Debug for TikTokConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TikTokConfig")
            .field("app_id", &self.app_id)
            .field("secret", &"<redacted>")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// An advertiser token and the advertisers it may act for.
#[derive(Clone)]
pub struct TikTokGrant {
    pub access_token: String,
    pub advertiser_ids: Vec<String>,
    pub scope: Vec<String>,
}

impl fmt::Debug for TikTokGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TikTokGrant").field("advertiser_ids", &self.advertiser_ids).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TikTokAdvertiser {
    pub id: String,
    pub name: String,
    pub currency: String,
    pub timezone: String,
}

pub struct TikTokClient {
    cfg: TikTokConfig,
    base: String,
    http: reqwest::Client,
    retry: RetryPolicy,
}

fn judge(status: u16, v: &Value) -> Option<(i64, String, bool, bool)> {
    let code = v.get("code").and_then(Value::as_i64);
    match code {
        Some(0) => None,
        Some(code) => {
            let message = text(v, "message");
            Some((code, message, TOKEN_CODES.contains(&code) || status == 401, code == 40100))
        }
        None if (200..300).contains(&status) => Some((0, "no code in the answer".into(), false, false)),
        None => None,
    }
}

impl TikTokClient {
    pub fn new(cfg: TikTokConfig, http: reqwest::Client) -> Self {
        let base = format!("{}/open_api/v1.3", cfg.base_url.trim_end_matches('/'));
        let retry = RetryPolicy::new(cfg.attempts.max(1), Duration::from_secs(10));
        Self { cfg, base, http, retry }
    }

    /// The authorization code for a token and its advertiser ids.
    pub async fn access_token(&self, auth_code: &str) -> Result<TikTokGrant, PlatformError> {
        let url = format!("{}/oauth2/access_token/", self.base);
        let body = json!({"app_id": self.cfg.app_id, "secret": self.cfg.secret, "auth_code": auth_code});
        let v =
            call(PLATFORM, self.retry, self.cfg.timeout, "access token", judge, || self.http.post(&url).json(&body))
                .await
                .map_err(|e| match e {
                    // A refused code or app is a failed authorization.
                    PlatformError::Api { message, .. } => PlatformError::Auth { platform: PLATFORM, message },
                    other => other,
                })?
                .json;
        let data = v.get("data").cloned().unwrap_or(Value::Null);
        let access_token = text(&data, "access_token");
        if access_token.is_empty() {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no access_token".into() });
        }
        let list = |k: &str| -> Vec<String> {
            data.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|x| x.as_str().map(str::to_owned).unwrap_or_else(|| x.to_string())).collect())
                .unwrap_or_default()
        };
        Ok(TikTokGrant { access_token, advertiser_ids: list("advertiser_ids"), scope: list("scope") })
    }

    /// Names, currencies and time zones of advertisers.
    pub async fn advertisers(&self, token: &str, ids: &[String]) -> Result<Vec<TikTokAdvertiser>, PlatformError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let url = format!("{}/advertiser/info/", self.base);
        let ids_json = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        let q =
            [("advertiser_ids", ids_json), ("fields", r#"["advertiser_id","name","currency","timezone"]"#.to_owned())];
        let v = call(PLATFORM, self.retry, self.cfg.timeout, "advertisers", judge, || {
            self.http.get(&url).header("Access-Token", token).query(&q)
        })
        .await?
        .json;
        let list = v.pointer("/data/list").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(list
            .iter()
            .map(|a| TikTokAdvertiser {
                id: text(a, "advertiser_id"),
                name: text(a, "name"),
                currency: text(a, "currency"),
                timezone: text(a, "timezone"),
            })
            .collect())
    }
}

/// Rows per segment mapping call.
pub const AUDIENCE_BATCH: usize = 10_000;
/// The answer code of a create whose `request_id` was seen before.
pub const DUPLICATED_REQUEST: i64 = 40050;
/// The answer code of an object that does not exist.
const NOT_EXIST: i64 = 40007;

/// An object the campaign builder creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TikTokObject {
    Campaign,
    AdGroup,
    Ad,
}

impl TikTokObject {
    /// The path segment of its endpoints (`campaign/create/`, `adgroup/get/`, …).
    pub fn path(self) -> &'static str {
        match self {
            TikTokObject::Campaign => "campaign",
            TikTokObject::AdGroup => "adgroup",
            TikTokObject::Ad => "ad",
        }
    }

    fn id_field(self) -> &'static str {
        match self {
            TikTokObject::Campaign => "campaign_id",
            TikTokObject::AdGroup => "adgroup_id",
            TikTokObject::Ad => "ad_id",
        }
    }

    fn name_field(self) -> &'static str {
        match self {
            TikTokObject::Campaign => "campaign_name",
            TikTokObject::AdGroup => "adgroup_name",
            TikTokObject::Ad => "ad_name",
        }
    }

    fn ids_field(self) -> &'static str {
        match self {
            TikTokObject::Campaign => "campaign_ids",
            TikTokObject::AdGroup => "adgroup_ids",
            TikTokObject::Ad => "ad_ids",
        }
    }
}

#[derive(Debug, Clone)]
pub struct TikTokReportPage {
    pub rows: Vec<InsightRow>,
    pub total_pages: u32,
}

impl TikTokClient {
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    async fn post(
        &self,
        token: &str,
        path: &str,
        body: &Value,
        once: bool,
        what: &'static str,
    ) -> Result<Value, PlatformError> {
        let url = self.url(path);
        let retry = if once { RetryPolicy::new(1, Duration::ZERO) } else { self.retry };
        Ok(call(PLATFORM, retry, self.cfg.timeout, what, judge, || {
            self.http.post(&url).header("Access-Token", token).json(body)
        })
        .await?
        .json)
    }

    async fn get(
        &self,
        token: &str,
        path: &str,
        q: &[(&str, String)],
        what: &'static str,
    ) -> Result<Value, PlatformError> {
        let url = self.url(path);
        Ok(call(PLATFORM, self.retry, self.cfg.timeout, what, judge, || {
            self.http.get(&url).header("Access-Token", token).query(q)
        })
        .await?
        .json)
    }

    /// Creates an object (`body` without `advertiser_id` and `request_id`, added here); answers
    /// its id. Sent once: a create whose answer is lost may have happened, and only the caller
    /// (looking the object up by its name) can tell. `request_id` makes TikTok refuse a repeat
    /// with [`DUPLICATED_REQUEST`].
    pub async fn create(
        &self,
        token: &str,
        advertiser: &str,
        kind: TikTokObject,
        request_id: &str,
        mut body: Value,
    ) -> Result<String, PlatformError> {
        body["advertiser_id"] = json!(advertiser);
        body["request_id"] = json!(request_id);
        let path = format!("{}/create/", kind.path());
        let v = self.post(token, &path, &body, true, kind.path()).await?;
        let data = v.get("data").cloned().unwrap_or(Value::Null);
        let id = match kind {
            // Ads are created in lists: one creative, one id.
            TikTokObject::Ad => data
                .get("ad_ids")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .map(|x| x.as_str().map(str::to_owned).unwrap_or_else(|| x.to_string()))
                .unwrap_or_default(),
            _ => text(&data, kind.id_field()),
        };
        if id.is_empty() {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no id in the answer".into() });
        }
        Ok(id)
    }

    /// The id of the advertiser's object of `kind` named exactly `name`, if there is one
    /// (TikTok's name filter matches loosely; the exact match is made here).
    pub async fn find_by_name(
        &self,
        token: &str,
        advertiser: &str,
        kind: TikTokObject,
        name: &str,
    ) -> Result<Option<String>, PlatformError> {
        let filtering = json!({ kind.name_field(): name }).to_string();
        let q = [("advertiser_id", advertiser.to_owned()), ("filtering", filtering), ("page_size", "100".to_owned())];
        let v = self.get(token, &format!("{}/get/", kind.path()), &q, "lookup").await?;
        let list = v.pointer("/data/list").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(list.iter().find(|o| text(o, kind.name_field()) == name).map(|o| text(o, kind.id_field())))
    }

    /// TikTok's interest categories (`/tool/interest_category/`) whose name contains `q`, any
    /// case; TikTok lists them all and has no search of its own.
    pub async fn search_interests(
        &self,
        token: &str,
        advertiser: &str,
        q: &str,
        limit: u32,
    ) -> Result<Vec<Interest>, PlatformError> {
        let query = [("advertiser_id", advertiser.to_owned())];
        let v = self.get(token, "/tool/interest_category/", &query, "interests").await?;
        let all = v.pointer("/data/interest_categories").and_then(Value::as_array).cloned().unwrap_or_default();
        let q = q.to_lowercase();
        Ok(all
            .iter()
            .filter(|c| text(c, "interest_category_name").to_lowercase().contains(&q))
            .take(usize::try_from(limit.clamp(1, 100)).unwrap_or(100))
            .map(|c| Interest {
                id: text(c, "interest_category_id"),
                name: text(c, "interest_category_name"),
                path: Vec::new(),
                audience_min: None,
                audience_max: None,
            })
            .collect())
    }

    /// An object's `secondary_status` and, for a rejected ad, TikTok's reason (`reject_info`).
    pub async fn object_status(
        &self,
        token: &str,
        advertiser: &str,
        kind: TikTokObject,
        id: &str,
    ) -> Result<(String, String), PlatformError> {
        let filtering = json!({ kind.ids_field(): [id] }).to_string();
        let q = [("advertiser_id", advertiser.to_owned()), ("filtering", filtering)];
        let v = self.get(token, &format!("{}/get/", kind.path()), &q, "status").await?;
        let list = v.pointer("/data/list").and_then(Value::as_array).cloned().unwrap_or_default();
        let o = list.iter().find(|o| text(o, kind.id_field()) == id).cloned().unwrap_or(Value::Null);
        Ok((text(&o, "secondary_status"), text(&o, "reject_info")))
    }

    /// Sets `ENABLE`, `DISABLE` or `DELETE` on objects; deleting one already gone counts as
    /// deleted. Setting a status twice is harmless, so this is retried like a read.
    pub async fn set_status(
        &self,
        token: &str,
        advertiser: &str,
        kind: TikTokObject,
        ids: &[String],
        status: &str,
    ) -> Result<(), PlatformError> {
        let body = json!({"advertiser_id": advertiser, kind.ids_field(): ids, "operation_status": status});
        match self.post(token, &format!("{}/status/update/", kind.path()), &body, false, "status").await {
            Ok(_) => Ok(()),
            Err(PlatformError::Api { code: NOT_EXIST, .. }) if status == "DELETE" => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Sets an ad group's daily budget, `budget` in the currency's main unit as decimal text.
    pub async fn update_budget(
        &self,
        token: &str,
        advertiser: &str,
        adgroup: &str,
        budget: &str,
    ) -> Result<(), PlatformError> {
        let amount: Value = serde_json::from_str(budget)
            .map_err(|_| PlatformError::Decode { platform: PLATFORM, message: "budget is not a number".into() })?;
        let body = json!({"advertiser_id": advertiser, "budget": [{"adgroup_id": adgroup, "budget": amount}]});
        self.post(token, "adgroup/budget/update/", &body, false, "budget").await?;
        Ok(())
    }

    /// Has TikTok fetch an image from `url` into the advertiser's library; answers its id.
    pub async fn upload_image_by_url(
        &self,
        token: &str,
        advertiser: &str,
        url: &str,
        file_name: &str,
    ) -> Result<String, PlatformError> {
        let body = json!({"advertiser_id": advertiser, "upload_type": "UPLOAD_BY_URL", "image_url": url, "file_name": file_name});
        // An image uploaded twice is only a second copy in the library: retried like a read.
        let v = self.post(token, "file/image/ad/upload/", &body, false, "image").await?;
        let id = v.get("data").map(|d| text(d, "image_id")).unwrap_or_default();
        if id.is_empty() {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no image_id".into() });
        }
        Ok(id)
    }

    /// Uploads a file into the advertiser's library by file (`upload_type` UPLOAD_BY_FILE, the
    /// file's MD5 as its signature, which TikTok checks against what arrived); the answer's data.
    #[allow(clippy::too_many_arguments)]
    async fn upload_file(
        &self,
        token: &str,
        advertiser: &str,
        kind: &'static str,
        file_name: &str,
        content_type: &str,
        file: crate::multipart::FileBody,
        md5: &str,
    ) -> Result<Value, PlatformError> {
        let url = self.url(&format!("file/{kind}/ad/upload/"));
        let fields = [
            ("advertiser_id", advertiser.to_owned()),
            ("upload_type", "UPLOAD_BY_FILE".to_owned()),
            ("file_name", file_name.to_owned()),
            (if kind == "video" { "video_signature" } else { "image_signature" }, md5.to_owned()),
        ];
        let part = if kind == "video" { "video_file" } else { "image_file" };
        let form = crate::multipart::Form::new(&fields, part, file_name, content_type, file);
        // Sent once: a lost answer is looked up by the file's signature before a second try.
        let once = RetryPolicy::new(1, Duration::ZERO);
        let timeout = form.timeout(self.cfg.timeout);
        let v = call(PLATFORM, once, timeout, kind, judge, || {
            form.attach(self.http.post(&url).header("Access-Token", token))
        })
        .await?
        .json;
        // Videos answer a list of one.
        let data = v.get("data").cloned().unwrap_or(Value::Null);
        Ok(match data {
            Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
            other => other,
        })
    }

    /// Uploads a picture by file; its `image_id`.
    pub async fn upload_image_file(
        &self,
        token: &str,
        advertiser: &str,
        file_name: &str,
        content_type: &str,
        data: bytes::Bytes,
    ) -> Result<String, PlatformError> {
        let md5 = crate::multipart::md5_hex(&data);
        let file = crate::multipart::FileBody::Bytes(data);
        let d = self.upload_file(token, advertiser, "image", file_name, content_type, file, &md5).await?;
        let id = text(&d, "image_id");
        if id.is_empty() {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no image_id".into() });
        }
        Ok(id)
    }

    /// Uploads a video by file (streamed from disk, `md5` its hex MD5); its `video_id` and the
    /// cover TikTok took from it (`video_cover_url`, empty if none).
    pub async fn upload_video_file(
        &self,
        token: &str,
        advertiser: &str,
        file_name: &str,
        content_type: &str,
        file: crate::multipart::FileBody,
        md5: &str,
    ) -> Result<(String, String), PlatformError> {
        let d = self.upload_file(token, advertiser, "video", file_name, content_type, file, md5).await?;
        let id = text(&d, "video_id");
        if id.is_empty() {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no video_id".into() });
        }
        Ok((id, text(&d, "video_cover_url")))
    }

    /// The id of a picture (`kind` "image") or video ("video") of the advertiser's library whose
    /// file has the MD5 `signature`, among the newest page of uploads.
    pub async fn find_file(
        &self,
        token: &str,
        advertiser: &str,
        kind: &'static str,
        signature: &str,
    ) -> Result<Option<String>, PlatformError> {
        let q = [("advertiser_id", advertiser.to_owned()), ("page_size", "100".to_owned())];
        let v = self.get(token, &format!("file/{kind}/ad/search/"), &q, "file lookup").await?;
        let list = v.pointer("/data/list").and_then(Value::as_array).cloned().unwrap_or_default();
        let id_field = if kind == "video" { "video_id" } else { "image_id" };
        Ok(list.iter().find(|f| text(f, "signature") == signature).map(|f| text(f, id_field)))
    }

    /// One page (from 1) of daily ad-level figures between two days (inclusive), of one campaign
    /// or (None) the whole advertiser.
    pub async fn report_page(
        &self,
        token: &str,
        advertiser: &str,
        campaign: Option<&str>,
        since: &str,
        until: &str,
        page: u32,
    ) -> Result<TikTokReportPage, PlatformError> {
        let mut q = vec![
            ("advertiser_id", advertiser.to_owned()),
            ("report_type", "BASIC".to_owned()),
            ("data_level", "AUCTION_AD".to_owned()),
            ("dimensions", r#"["ad_id","stat_time_day"]"#.to_owned()),
            (
                "metrics",
                r#"["campaign_id","adgroup_id","spend","impressions","reach","clicks","conversion","total_purchase_value"]"#
                    .to_owned(),
            ),
            ("start_date", since.to_owned()),
            ("end_date", until.to_owned()),
            ("page", page.to_string()),
            ("page_size", "1000".to_owned()),
        ];
        if let Some(c) = campaign {
            let f =
                json!([{"field_name": "campaign_ids", "filter_type": "IN", "filter_value": json!([c]).to_string()}]);
            q.push(("filtering", f.to_string()));
        }
        let v = self.get(token, "report/integrated/get/", &q, "report").await?;
        let int = |m: &Value, k: &str| text(m, k).parse::<i64>().unwrap_or(0);
        let rows = v
            .pointer("/data/list")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|r| {
                let (d, m) = (&r["dimensions"], &r["metrics"]);
                // "2026-11-01 00:00:00": the day is the first ten characters.
                let date: String = text(d, "stat_time_day").chars().take(10).collect();
                InsightRow {
                    campaign_id: text(m, "campaign_id"),
                    adset_id: text(m, "adgroup_id"),
                    ad_id: text(d, "ad_id"),
                    date,
                    spend: text(m, "spend"),
                    impressions: int(m, "impressions"),
                    reach: int(m, "reach"),
                    clicks: int(m, "clicks"),
                    conversions: int(m, "conversion"),
                    revenue: text(m, "total_purchase_value"),
                }
            })
            .collect();
        let total_pages = v.pointer("/data/page_info/total_page").and_then(Value::as_u64).unwrap_or(1) as u32;
        Ok(TikTokReportPage { rows, total_pages })
    }

    /// Creates an empty custom audience; answers its id.
    pub async fn create_audience(&self, token: &str, advertiser: &str, name: &str) -> Result<String, PlatformError> {
        let body = json!({"advertiser_id": advertiser, "action": "create", "custom_audience_name": name});
        let v = self.post(token, "segment/audience/", &body, true, "audience").await?;
        let id = v.get("data").map(|d| text(d, "audience_id")).unwrap_or_default();
        if id.is_empty() {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no audience_id".into() });
        }
        Ok(id)
    }

    /// Adds SHA-256 hashes of one schema (`EMAIL_SHA256` or `PHONE_SHA256`) to an audience, at
    /// most [`AUDIENCE_BATCH`] per call.
    pub async fn add_audience_members(
        &self,
        token: &str,
        advertiser: &str,
        audience: &str,
        schema: &str,
        hashes: &[String],
    ) -> Result<(), PlatformError> {
        self.map_audience_members("add", token, advertiser, audience, schema, hashes).await
    }

    /// Removes SHA-256 hashes of one schema from an audience (the segment API cannot replace an
    /// audience's members, so a refresh adds and removes the difference).
    pub async fn remove_audience_members(
        &self,
        token: &str,
        advertiser: &str,
        audience: &str,
        schema: &str,
        hashes: &[String],
    ) -> Result<(), PlatformError> {
        self.map_audience_members("delete", token, advertiser, audience, schema, hashes).await
    }

    async fn map_audience_members(
        &self,
        action: &str,
        token: &str,
        advertiser: &str,
        audience: &str,
        schema: &str,
        hashes: &[String],
    ) -> Result<(), PlatformError> {
        for batch in hashes.chunks(AUDIENCE_BATCH) {
            let data: Vec<Value> = batch.iter().map(|h| json!([{"id": h, "audience_ids": [audience]}])).collect();
            let body =
                json!({"advertiser_ids": [advertiser], "action": action, "id_schema": [schema], "batch_data": data});
            // Adding a member twice, or removing one that is gone, leaves the audience as it was:
            // retried like a read.
            self.post(token, "segment/mapping/", &body, false, "audience members").await?;
        }
        Ok(())
    }

    /// Creates a lookalike of the custom audience `source` (`/dmp/custom_audience/lookalike/create/`)
    /// in `locations`, `size` NARROW, BALANCED or BROAD; its id.
    pub async fn create_lookalike(
        &self,
        token: &str,
        advertiser: &str,
        name: &str,
        source: &str,
        locations: &[String],
        size: &str,
    ) -> Result<String, PlatformError> {
        let body = json!({
            "advertiser_id": advertiser,
            "custom_audience_name": name,
            "lookalike_spec": {
                "source_audience_id": source,
                "location_ids": locations,
                "audience_size": size,
                "include_source": false,
            },
        });
        let v = self.post(token, "dmp/custom_audience/lookalike/create/", &body, true, "lookalike").await?;
        let id = v.get("data").map(|d| text(d, "custom_audience_id")).unwrap_or_default();
        if id.is_empty() {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no custom_audience_id".into() });
        }
        Ok(id)
    }

    /// Deletes a custom audience (`/dmp/custom_audience/delete/`); one already gone counts as
    /// deleted.
    pub async fn delete_audience(&self, token: &str, advertiser: &str, audience: &str) -> Result<(), PlatformError> {
        let body = json!({"advertiser_id": advertiser, "custom_audience_ids": [audience]});
        match self.post(token, "dmp/custom_audience/delete/", &body, false, "audience delete").await {
            Ok(_) | Err(PlatformError::Api { code: NOT_EXIST, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A TikTok `request_id` (a numeric string) for a key: the same key, the same id.
pub fn request_id(key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest.as_ref()[..8]);
    // 18 digits at most, never a leading zero.
    (u64::from_be_bytes(b) % 900_000_000_000_000_000 + 100_000_000_000_000_000).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonzero_code_is_an_error_even_with_http_200() {
        assert!(judge(200, &json!({"code": 0, "data": {}})).is_none());
        let (code, _, auth, throttle) = judge(200, &json!({"code": 40105, "message": "bad token"})).unwrap();
        assert_eq!((code, auth, throttle), (40105, true, false));
        assert!(judge(200, &json!({"code": 40100, "message": "too frequent"})).unwrap().3);
    }

    #[test]
    fn request_ids_are_stable_numeric_strings() {
        let a = request_id("build-1:campaign");
        assert_eq!(a, request_id("build-1:campaign"));
        assert_ne!(a, request_id("build-1:adgroup"));
        assert_eq!(a.len(), 18);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
    }
}
