//! Meta Graph and Marketing API (`reference/providers.md` §7), the parts a platform connection
//! needs: the OAuth code exchanged for a user token (with the PKCE verifier), that token
//! exchanged for a long-lived one (about 60 days; Meta offers no refresh token, so the user
//! reconnects), the user, ad accounts and pages with their Instagram business accounts, and
//! revocation (`DELETE /me/permissions`).
//!
//! - `{graph_url}/{version}/…`; the token travels as `access_token` with
//!   `appsecret_proof = hex(HMAC-SHA256(app_secret, token))`.
//! - Errors: `{"error":{"message","type","code","error_subcode"}}`; code 190 (and type
//!   `OAuthException` with 102) is a refused token; 4, 17, 613 and 80000–80014 are throttling,
//!   and so is 9 / 2207042 (Instagram's publishing limit).
//!
//! Instagram content publishing and Facebook Page posts: [`crate::instagram`].

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::http::RetryPolicy;
use crate::marketing::{Interest, PlatformError, call, text};

pub(crate) const PLATFORM: &str = "Meta";
/// Rows per audience upload call (Meta's limit).
pub const AUDIENCE_BATCH: usize = 10_000;

/// One call's place in a multi-batch audience upload (Meta's `session` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadBatch {
    pub session_id: u64,
    /// From 1.
    pub seq: u32,
    pub last: bool,
    pub estimated_total: u64,
}

#[derive(Clone)]
pub struct MetaConfig {
    pub app_id: String,
    /// Never logged.
    pub app_secret: String,
    /// `https://graph.facebook.com` (tests: a fake).
    pub graph_url: String,
    /// `v25.0`.
    pub api_version: String,
    pub timeout: Duration,
    pub attempts: u32,
}

impl fmt::Debug for MetaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaConfig")
            .field("app_id", &self.app_id)
            .field("app_secret", &"<redacted>")
            .field("graph_url", &self.graph_url)
            .field("api_version", &self.api_version)
            .finish_non_exhaustive()
    }
}

/// A user token and when it expires (seconds from now, if Meta said).
#[derive(Clone)]
pub struct MetaToken {
    pub access_token: String,
    pub expires_in: Option<u64>,
}

impl fmt::Debug for MetaToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaToken").field("expires_in", &self.expires_in).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaAdAccount {
    /// `act_…`.
    pub id: String,
    pub name: String,
    pub currency: String,
    pub timezone: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaPage {
    pub id: String,
    pub name: String,
    /// The Instagram business account linked to the page: (id, username).
    pub instagram: Option<(String, String)>,
}

pub struct MetaClient {
    pub(crate) cfg: MetaConfig,
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) retry: RetryPolicy,
}

impl fmt::Debug for MetaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaClient").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

/// Meta's error envelope, judged.
pub(crate) fn judge(status: u16, v: &Value) -> Option<(i64, String, bool, bool)> {
    let e = v.get("error")?;
    let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
    let subcode = e.get("error_subcode").and_then(Value::as_i64).unwrap_or(0);
    let message = e.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
    let auth = code == 190 || code == 102 || status == 401;
    // 9 / 2207042: the Instagram account's publishing limit (posts per 24 h) is reached.
    let throttle =
        matches!(code, 4 | 17 | 32 | 613) || (80000..=80014).contains(&code) || (code == 9 && subcode == 2_207_042);
    Some((code, message, auth, throttle))
}

impl MetaClient {
    pub fn new(cfg: MetaConfig, http: reqwest::Client) -> Self {
        let base = format!("{}/{}", cfg.graph_url.trim_end_matches('/'), cfg.api_version);
        let retry = RetryPolicy::new(cfg.attempts.max(1), Duration::from_secs(10));
        Self { cfg, base, http, retry }
    }

    pub(crate) fn appsecret_proof(&self, token: &str) -> String {
        appsecret_proof(&self.cfg.app_secret, token)
    }

    async fn get(&self, path: &str, query: &[(&str, &str)], what: &'static str) -> Result<Value, PlatformError> {
        let url = format!("{}{path}", self.base);
        let query: Vec<(String, String)> = query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Ok(call(PLATFORM, self.retry, self.cfg.timeout, what, judge, || self.http.get(&url).query(&query)).await?.json)
    }

    fn token_of(v: &Value) -> Result<MetaToken, PlatformError> {
        let access_token = text(v, "access_token");
        if access_token.is_empty() {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no access_token".into() });
        }
        Ok(MetaToken { access_token, expires_in: v.get("expires_in").and_then(Value::as_u64) })
    }

    /// The authorization code (with its PKCE verifier) for a short-lived user token.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<MetaToken, PlatformError> {
        let q = [
            ("client_id", self.cfg.app_id.as_str()),
            ("client_secret", self.cfg.app_secret.as_str()),
            ("redirect_uri", redirect_uri),
            ("code", code),
            ("code_verifier", verifier),
        ];
        // A code Meta refuses (expired, used, wrong verifier) is a failed authorization, whatever
        // code the envelope carries.
        let v = self.get("/oauth/access_token", &q, "code exchange").await.map_err(|e| match e {
            PlatformError::Api { message, .. } => PlatformError::Auth { platform: PLATFORM, message },
            other => other,
        })?;
        Self::token_of(&v)
    }

    /// A short-lived user token for a long-lived one (about 60 days).
    pub async fn long_lived(&self, short: &str) -> Result<MetaToken, PlatformError> {
        let q = [
            ("grant_type", "fb_exchange_token"),
            ("client_id", self.cfg.app_id.as_str()),
            ("client_secret", self.cfg.app_secret.as_str()),
            ("fb_exchange_token", short),
        ];
        Self::token_of(&self.get("/oauth/access_token", &q, "long-lived token").await?)
    }

    pub(crate) async fn authed(
        &self,
        token: &str,
        path: &str,
        extra: &[(&str, &str)],
        what: &'static str,
    ) -> Result<Value, PlatformError> {
        let proof = self.appsecret_proof(token);
        let mut q = vec![("access_token", token), ("appsecret_proof", proof.as_str())];
        q.extend_from_slice(extra);
        self.get(path, &q, what).await
    }

    /// (id, name) of the token's user.
    pub async fn me(&self, token: &str) -> Result<(String, String), PlatformError> {
        let v = self.authed(token, "/me", &[("fields", "id,name")], "me").await?;
        Ok((text(&v, "id"), text(&v, "name")))
    }

    /// The ad accounts the user may use (first page: up to 200).
    pub async fn ad_accounts(&self, token: &str) -> Result<Vec<MetaAdAccount>, PlatformError> {
        let v = self
            .authed(
                token,
                "/me/adaccounts",
                &[("fields", "id,name,currency,timezone_name"), ("limit", "200")],
                "ad accounts",
            )
            .await?;
        Ok(data(&v)
            .iter()
            .map(|a| MetaAdAccount {
                id: text(a, "id"),
                name: text(a, "name"),
                currency: text(a, "currency"),
                timezone: text(a, "timezone_name"),
            })
            .filter(|a| !a.id.is_empty())
            .collect())
    }

    /// The pages the user manages, with their Instagram business accounts.
    pub async fn pages(&self, token: &str) -> Result<Vec<MetaPage>, PlatformError> {
        let v = self
            .authed(
                token,
                "/me/accounts",
                &[("fields", "id,name,instagram_business_account{id,username}"), ("limit", "200")],
                "pages",
            )
            .await?;
        Ok(data(&v)
            .iter()
            .map(|p| MetaPage {
                id: text(p, "id"),
                name: text(p, "name"),
                instagram: p
                    .get("instagram_business_account")
                    .map(|ig| (text(ig, "id"), text(ig, "username")))
                    .filter(|(id, _)| !id.is_empty()),
            })
            .filter(|p| !p.id.is_empty())
            .collect())
    }

    /// Revokes every permission the user granted the app.
    pub async fn revoke(&self, token: &str) -> Result<(), PlatformError> {
        let url = format!("{}/me/permissions", self.base);
        let proof = self.appsecret_proof(token);
        let q = [("access_token", token.to_owned()), ("appsecret_proof", proof)];
        call(PLATFORM, self.retry, self.cfg.timeout, "revoke", judge, || self.http.delete(&url).query(&q)).await?;
        Ok(())
    }
}

/// One daily row of insights at ad level.
pub type MetaInsightRow = crate::marketing::InsightRow;

/// One page of insights and how busy the account's rate limits are (the highest percentage in
/// `X-Business-Use-Case-Usage` and `X-Ad-Account-Usage`), with the wait Meta suggests.
#[derive(Debug, Clone)]
pub struct MetaInsightsPage {
    pub rows: Vec<MetaInsightRow>,
    pub next_after: Option<String>,
    pub usage_percent: u32,
    pub regain_after: Option<Duration>,
}

/// The highest usage percentage the headers report, and Meta's estimated wait.
pub fn usage(headers: &reqwest::header::HeaderMap) -> (u32, Option<Duration>) {
    let mut top = 0u32;
    let mut wait = None;
    let num = |v: &Value| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or(0.0);
    let json = |name: &str| {
        headers.get(name).and_then(|h| h.to_str().ok()).and_then(|s| serde_json::from_str::<Value>(s).ok())
    };
    if let Some(Value::Object(m)) = json("x-business-use-case-usage") {
        for entries in m.values() {
            for e in entries.as_array().cloned().unwrap_or_default() {
                for k in ["call_count", "total_cputime", "total_time"] {
                    top = top.max(num(&e[k]) as u32);
                }
                let minutes = num(&e["estimated_time_to_regain_access"]);
                if minutes > 0.0 {
                    wait = Some(Duration::from_secs((minutes * 60.0) as u64));
                }
            }
        }
    }
    if let Some(v) = json("x-ad-account-usage") {
        top = top.max(num(&v["acc_id_util_pct"]) as u32);
    }
    (top, wait)
}

impl MetaClient {
    /// One page of daily ad-level insights of `object` between two days (inclusive): a campaign,
    /// an ad account (`act_…`), or a finished async report run (whose own range applies).
    pub async fn insights_page(
        &self,
        token: &str,
        campaign_id: &str,
        since: &str,
        until: &str,
        after: Option<&str>,
    ) -> Result<MetaInsightsPage, PlatformError> {
        let url = format!("{}/{}/insights", self.base, campaign_id);
        let proof = self.appsecret_proof(token);
        let mut q: Vec<(&str, String)> = vec![
            ("access_token", token.to_owned()),
            ("appsecret_proof", proof),
            ("level", "ad".into()),
            ("time_increment", "1".into()),
            ("time_range", serde_json::json!({"since": since, "until": until}).to_string()),
            ("fields", "campaign_id,adset_id,ad_id,spend,impressions,reach,clicks,actions,action_values".into()),
            ("limit", "500".into()),
        ];
        if let Some(a) = after {
            q.push(("after", a.to_owned()));
        }
        let answer =
            call(PLATFORM, self.retry, self.cfg.timeout, "insights", judge, || self.http.get(&url).query(&q)).await?;
        let (usage_percent, regain_after) = usage(&answer.headers);
        let v = answer.json;
        let int = |r: &Value, k: &str| text(r, k).parse::<i64>().unwrap_or(0);
        let sum_actions = |r: &Value, k: &str, types: &[&str]| -> Vec<String> {
            r.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter(|x| types.contains(&text(x, "action_type").as_str()))
                        .map(|x| text(x, "value"))
                        .collect()
                })
                .unwrap_or_default()
        };
        let rows = data(&v)
            .iter()
            .map(|r| MetaInsightRow {
                campaign_id: text(r, "campaign_id"),
                adset_id: text(r, "adset_id"),
                ad_id: text(r, "ad_id"),
                date: text(r, "date_start"),
                spend: text(r, "spend"),
                impressions: int(r, "impressions"),
                reach: int(r, "reach"),
                clicks: int(r, "clicks"),
                conversions: sum_actions(r, "actions", &["purchase", "lead", "offsite_conversion.fb_pixel_purchase"])
                    .iter()
                    .filter_map(|s| s.parse::<i64>().ok())
                    .sum(),
                revenue: sum_actions(r, "action_values", &["purchase", "offsite_conversion.fb_pixel_purchase"])
                    .first()
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect();
        // Only a page with `next` has more after it.
        let next_after = v
            .pointer("/paging/next")
            .and(v.pointer("/paging/cursors/after"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(MetaInsightsPage { rows, next_after, usage_percent, regain_after })
    }
}

impl MetaClient {
    /// An object's `effective_status` and, for an ad, the review's reasons (the values of
    /// `ad_review_feedback`, joined).
    pub async fn object_status(&self, token: &str, id: &str) -> Result<(String, String), PlatformError> {
        let v = self
            .authed(token, &format!("/{id}"), &[("fields", "effective_status,ad_review_feedback")], "status")
            .await?;
        let mut reasons = Vec::new();
        if let Some(Value::Object(groups)) = v.get("ad_review_feedback") {
            for g in groups.values() {
                if let Value::Object(m) = g {
                    reasons.extend(m.iter().map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or(""))));
                }
            }
        }
        Ok((text(&v, "effective_status"), reasons.join("; ")))
    }
}

/// Where an async insights report stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportStatus {
    Running(u32),
    Completed,
    Failed(String),
}

impl MetaClient {
    /// Starts an async report of an ad account's daily ad-level insights between two days
    /// (inclusive), for ranges too large to read page by page at once; its `report_run_id`.
    pub async fn start_report(
        &self,
        token: &str,
        ad_account: &str,
        since: &str,
        until: &str,
    ) -> Result<String, PlatformError> {
        let url = format!("{}/{}/insights", self.base, ad_account);
        let form = [
            ("access_token", token.to_owned()),
            ("appsecret_proof", self.appsecret_proof(token)),
            ("level", "ad".into()),
            ("time_increment", "1".into()),
            ("time_range", serde_json::json!({"since": since, "until": until}).to_string()),
            ("fields", "campaign_id,adset_id,ad_id,spend,impressions,reach,clicks,actions,action_values".into()),
        ];
        // A second job for the same range costs quota, nothing else: retried like a read.
        let v =
            call(PLATFORM, self.retry, self.cfg.timeout, "report start", judge, || self.http.post(&url).form(&form))
                .await?
                .json;
        let id = text(&v, "report_run_id");
        if id.is_empty() {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no report_run_id".into() });
        }
        Ok(id)
    }

    /// Where a report run stands (`async_status`, `async_percent_completion`).
    pub async fn report_status(&self, token: &str, run: &str) -> Result<ReportStatus, PlatformError> {
        let v = self
            .authed(token, &format!("/{run}"), &[("fields", "async_status,async_percent_completion")], "report status")
            .await?;
        let status = text(&v, "async_status");
        let percent = v.get("async_percent_completion").and_then(Value::as_u64).unwrap_or(0) as u32;
        Ok(match status.as_str() {
            "Job Completed" => ReportStatus::Completed,
            "Job Failed" | "Job Skipped" => ReportStatus::Failed(status),
            _ => ReportStatus::Running(percent),
        })
    }
}

/// `appsecret_proof` of a token: `hex(HMAC-SHA256(app_secret, token))`, proving the call comes
/// from the app's server.
pub fn appsecret_proof(app_secret: &str, token: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, app_secret.as_bytes());
    hex::encode(ring::hmac::sign(&key, token.as_bytes()).as_ref())
}

/// An object the campaign builder creates, with its form fields (nested objects as JSON text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaObject {
    Campaign,
    AdSet,
    Creative,
    Ad,
    /// A video of the ad account's library (`advideos`).
    Video,
}

impl MetaObject {
    /// The ad account's edge listing (and creating) objects of this kind.
    pub fn edge(self) -> &'static str {
        match self {
            MetaObject::Campaign => "campaigns",
            MetaObject::AdSet => "adsets",
            MetaObject::Creative => "adcreatives",
            MetaObject::Ad => "ads",
            MetaObject::Video => "advideos",
        }
    }
}

impl MetaClient {
    /// Creates an object under the ad account; answers its id. Sent once: a create whose answer
    /// is lost may have happened, and only the caller (looking the object up by its name) can
    /// tell, so the client never repeats it by itself.
    pub async fn create(
        &self,
        token: &str,
        ad_account: &str,
        kind: MetaObject,
        fields: &[(&str, String)],
    ) -> Result<String, PlatformError> {
        let url = format!("{}/{}/{}", self.base, ad_account, kind.edge());
        let proof = self.appsecret_proof(token);
        let mut form: Vec<(String, String)> = fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        form.push(("access_token".into(), token.to_owned()));
        form.push(("appsecret_proof".into(), proof));
        let once = RetryPolicy::new(1, Duration::ZERO);
        let v =
            call(PLATFORM, once, self.cfg.timeout, kind.edge(), judge, || self.http.post(&url).form(&form)).await?.json;
        let id = text(&v, "id");
        if id.is_empty() {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no id in the answer".into() });
        }
        Ok(id)
    }

    /// Uploads a picture into the ad account's image library (`POST /act_…/adimages`, the file
    /// as base64 `bytes`); answers its hash, which creatives name it by. The library keys
    /// pictures by their content (the hash is the file's MD5), so sending the same picture again
    /// makes nothing new: retried like a read.
    pub async fn upload_image(
        &self,
        token: &str,
        ad_account: &str,
        name: &str,
        data: &[u8],
    ) -> Result<String, PlatformError> {
        use base64::Engine as _;
        let url = format!("{}/{}/adimages", self.base, ad_account);
        let form = vec![
            ("name".to_owned(), name.to_owned()),
            ("bytes".to_owned(), base64::engine::general_purpose::STANDARD.encode(data)),
            ("access_token".to_owned(), token.to_owned()),
            ("appsecret_proof".to_owned(), self.appsecret_proof(token)),
        ];
        let v = call(PLATFORM, self.retry, self.cfg.timeout, "adimages", judge, || self.http.post(&url).form(&form))
            .await?
            .json;
        let hash = v
            .get("images")
            .and_then(Value::as_object)
            .and_then(|m| m.values().next())
            .map(|i| text(i, "hash"))
            .unwrap_or_default();
        if hash.is_empty() {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no image hash in the answer".into() });
        }
        Ok(hash)
    }

    /// Whether the ad account's image library holds the picture with `hash`.
    pub async fn has_image(&self, token: &str, ad_account: &str, hash: &str) -> Result<bool, PlatformError> {
        let hashes = serde_json::json!([hash]).to_string();
        let path = format!("/{ad_account}/adimages");
        let v = self.authed(token, &path, &[("fields", "hash"), ("hashes", &hashes)], "image lookup").await?;
        Ok(data(&v).iter().any(|i| text(i, "hash") == hash))
    }

    /// Uploads a video into the ad account's library (`POST /act_…/advideos`, multipart
    /// `source`, streamed from `file`), named `name` so an upload whose answer was lost can be
    /// found ([`MetaClient::find_by_name`] with [`MetaObject::Video`]); answers its id. Sent
    /// once, like a create.
    pub async fn upload_video(
        &self,
        token: &str,
        ad_account: &str,
        name: &str,
        content_type: &str,
        file: crate::multipart::FileBody,
    ) -> Result<String, PlatformError> {
        let url = format!("{}/{}/advideos", self.base, ad_account);
        let fields = [
            ("access_token", token.to_owned()),
            ("appsecret_proof", self.appsecret_proof(token)),
            ("name", name.to_owned()),
            ("title", name.to_owned()),
        ];
        let form = crate::multipart::Form::new(&fields, "source", "video.mp4", content_type, file);
        let once = RetryPolicy::new(1, Duration::ZERO);
        let timeout = form.timeout(self.cfg.timeout);
        let v = call(PLATFORM, once, timeout, "advideos", judge, || form.attach(self.http.post(&url))).await?.json;
        let id = text(&v, "id");
        if id.is_empty() {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no video id in the answer".into() });
        }
        Ok(id)
    }

    /// The id of the ad account's object of `kind` named exactly `name`, if there is one.
    /// Interests matching `q` (Meta's targeting search, `type=adinterest`), at most `limit`.
    pub async fn search_interests(&self, token: &str, q: &str, limit: u32) -> Result<Vec<Interest>, PlatformError> {
        let limit = limit.clamp(1, 100).to_string();
        let v =
            self.authed(token, "/search", &[("type", "adinterest"), ("q", q), ("limit", &limit)], "interests").await?;
        Ok(data(&v)
            .iter()
            .filter(|o| !text(o, "id").is_empty())
            .map(|o| Interest {
                id: text(o, "id"),
                name: text(o, "name"),
                path: o
                    .get("path")
                    .and_then(Value::as_array)
                    .map(|p| p.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default(),
                audience_min: o.get("audience_size_lower_bound").and_then(Value::as_i64),
                audience_max: o.get("audience_size_upper_bound").and_then(Value::as_i64),
            })
            .collect())
    }

    pub async fn find_by_name(
        &self,
        token: &str,
        ad_account: &str,
        kind: MetaObject,
        name: &str,
    ) -> Result<Option<String>, PlatformError> {
        let filtering = serde_json::json!([{"field": "name", "operator": "EQUAL", "value": name}]).to_string();
        let path = format!("/{}/{}", ad_account, kind.edge());
        let v = self.authed(token, &path, &[("fields", "id,name"), ("filtering", &filtering)], "lookup").await?;
        Ok(data(&v).iter().find(|o| text(o, "name") == name).map(|o| text(o, "id")))
    }

    /// Sets fields of an object (status, budget, schedule). Setting a value twice is harmless,
    /// so this is retried like a read.
    pub async fn update(&self, token: &str, id: &str, fields: &[(&str, String)]) -> Result<(), PlatformError> {
        let url = format!("{}/{}", self.base, id);
        let proof = self.appsecret_proof(token);
        let mut form: Vec<(String, String)> = fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        form.push(("access_token".into(), token.to_owned()));
        form.push(("appsecret_proof".into(), proof));
        call(PLATFORM, self.retry, self.cfg.timeout, "update", judge, || self.http.post(&url).form(&form)).await?;
        Ok(())
    }

    /// Creates an empty customer-list audience; answers its id.
    pub async fn create_audience(&self, token: &str, ad_account: &str, name: &str) -> Result<String, PlatformError> {
        let fields = [
            ("name", name.to_owned()),
            ("subtype", "CUSTOM".to_owned()),
            ("customer_file_source", "USER_PROVIDED_ONLY".to_owned()),
        ];
        self.post_audience(token, ad_account, &fields).await
    }

    /// Creates a lookalike of the custom audience `origin` in the ad account; its id.
    /// `spec` is Meta's `lookalike_spec` (`{"ratio": 0.01..0.20, "country": "US"}`, or a
    /// `location_spec` for several countries).
    pub async fn create_lookalike(
        &self,
        token: &str,
        ad_account: &str,
        name: &str,
        origin: &str,
        spec: &Value,
    ) -> Result<String, PlatformError> {
        let fields = [
            ("name", name.to_owned()),
            ("subtype", "LOOKALIKE".to_owned()),
            ("origin_audience_id", origin.to_owned()),
            ("lookalike_spec", spec.to_string()),
        ];
        self.post_audience(token, ad_account, &fields).await
    }

    /// `POST /act_…/customaudiences` with `fields`; the new audience's id. A create is not
    /// repeated on an unknown outcome (it would make a second audience).
    async fn post_audience(
        &self,
        token: &str,
        ad_account: &str,
        fields: &[(&str, String)],
    ) -> Result<String, PlatformError> {
        let url = format!("{}/{}/customaudiences", self.base, ad_account);
        let proof = self.appsecret_proof(token);
        let mut form: Vec<(&str, String)> = fields.to_vec();
        form.push(("access_token", token.to_owned()));
        form.push(("appsecret_proof", proof));
        let once = RetryPolicy::new(1, Duration::ZERO);
        let v = call(PLATFORM, once, self.cfg.timeout, "customaudiences", judge, || self.http.post(&url).form(&form))
            .await?
            .json;
        let id = text(&v, "id");
        if id.is_empty() {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no id in the answer".into() });
        }
        Ok(id)
    }

    /// Adds SHA-256 hashes of one schema (`EMAIL` or `PHONE`) to an audience, at most
    /// [`AUDIENCE_BATCH`] per call, as one upload session.
    pub async fn add_audience_users(
        &self,
        token: &str,
        audience: &str,
        schema: &str,
        hashes: &[String],
        session_id: u64,
    ) -> Result<(), PlatformError> {
        let batches: Vec<&[String]> = hashes.chunks(AUDIENCE_BATCH).collect();
        for (n, batch) in batches.iter().enumerate() {
            let place = UploadBatch {
                session_id,
                seq: u32::try_from(n + 1).unwrap_or(u32::MAX),
                last: n + 1 == batches.len(),
                estimated_total: hashes.len() as u64,
            };
            self.add_audience_batch(token, audience, schema, batch, place, false).await?;
        }
        Ok(())
    }

    /// Sends one batch (at most [`AUDIENCE_BATCH`] hashes of one schema) of an upload session
    /// whose size is not known in advance (read page by page from the contact book): added to
    /// the audience (`/users`), or, with `replace`, part of a replacement of all its members
    /// (`/usersreplace`: Meta swaps the members once the session's last batch arrives).
    pub async fn add_audience_batch(
        &self,
        token: &str,
        audience: &str,
        schema: &str,
        hashes: &[String],
        place: UploadBatch,
        replace: bool,
    ) -> Result<(), PlatformError> {
        let edge = if replace { "usersreplace" } else { "users" };
        let url = format!("{}/{}/{edge}", self.base, audience);
        let proof = self.appsecret_proof(token);
        let payload = serde_json::json!({"schema": schema, "data": hashes});
        let session = serde_json::json!({
            "session_id": place.session_id,
            "batch_seq": place.seq,
            "last_batch_flag": place.last,
            "estimated_num_total": place.estimated_total,
        });
        let form = [
            ("payload", payload.to_string()),
            ("session", session.to_string()),
            ("access_token", token.to_owned()),
            ("appsecret_proof", proof),
        ];
        // Adding the same hashes twice leaves the audience as it was: retried like a read.
        call(PLATFORM, self.retry, self.cfg.timeout, "audience users", judge, || self.http.post(&url).form(&form))
            .await?;
        Ok(())
    }

    /// Deletes an object; one already gone counts as deleted.
    pub async fn delete(&self, token: &str, id: &str) -> Result<(), PlatformError> {
        let url = format!("{}/{}", self.base, id);
        let proof = self.appsecret_proof(token);
        let q = [("access_token", token.to_owned()), ("appsecret_proof", proof)];
        match call(PLATFORM, self.retry, self.cfg.timeout, "delete", judge, || self.http.delete(&url).query(&q)).await {
            Ok(_) => Ok(()),
            // 100 with subcode 33: the object does not exist (any more).
            Err(PlatformError::Api { code: 100, message, .. }) if message.contains("does not exist") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

pub(crate) fn data(v: &Value) -> Vec<Value> {
    v.get("data").and_then(Value::as_array).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appsecret_proof_is_hex_hmac_sha256_of_the_token() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), a published vector.
        assert_eq!(
            appsecret_proof("key", "The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn usage_headers_give_the_highest_percentage_and_metas_wait() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "x-business-use-case-usage",
            r#"{"123":[{"type":"ads_insights","call_count":40,"total_cputime":96,"total_time":10,"estimated_time_to_regain_access":2}]}"#
                .parse()
                .unwrap(),
        );
        h.insert("x-ad-account-usage", r#"{"acc_id_util_pct":"12.5"}"#.parse().unwrap());
        assert_eq!(usage(&h), (96, Some(Duration::from_secs(120))));
        assert_eq!(usage(&reqwest::header::HeaderMap::new()), (0, None));
    }

    #[test]
    fn throttling_and_token_codes_are_told_apart() {
        let e = |code: i64| serde_json::json!({"error": {"code": code, "message": "m"}});
        assert!(judge(400, &e(190)).unwrap().2);
        assert!(judge(400, &e(17)).unwrap().3);
        assert!(judge(400, &e(80004)).unwrap().3);
        let limit = serde_json::json!({"error": {"code": 9, "error_subcode": 2207042, "message": "m"}});
        assert!(judge(400, &limit).unwrap().3);
        assert!(!judge(400, &serde_json::json!({"error": {"code": 9, "message": "m"}})).unwrap().3);
        assert!(!judge(400, &e(100)).unwrap().2);
        assert!(judge(200, &serde_json::json!({"id": "1"})).is_none());
    }
}
