//! One platform's side of a built ad campaign, chosen by the build's provider: the saga's steps
//! (create an object, find one by its tag, delete one), the daily budget, the delivery status,
//! one page of daily insights and custom audiences. Meta and TikTok say the same things
//! differently; the use cases say them once.

use std::collections::HashMap;
use std::time::Duration;

use nexus_kernel::{Currency, Error, ErrorKind};
use nexus_providers::marketing::{Interest, PlatformError};
use nexus_providers::meta::{MetaClient, MetaObject, UploadBatch};
use nexus_providers::tiktok::{DUPLICATED_REQUEST, TikTokClient, TikTokObject, request_id};
use serde_json::{Value, json};
use uuid::Uuid;

use super::App;
use crate::domain::audiences::LookalikeSpec;
use crate::domain::builder::{BuildSpec, MEDIA_STEP, Uploaded, main_units, steps_of};
use crate::domain::connections::{AccountKind, Provider};

/// A platform client.
#[derive(Clone, Copy)]
pub enum AdPlatform<'a> {
    Meta(&'a MetaClient),
    TikTok(&'a TikTokClient),
    /// The sandbox (`provider: local`): nothing leaves the service. Objects get ids made from
    /// the build, the review passes, and insights are plausible figures steady for an ad and day.
    Local,
}

/// One daily ad-level row, figures as the platform sent them.
pub type PlatformRow = nexus_providers::marketing::InsightRow;

/// What insights are read of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One campaign (its platform id).
    Campaign(String),
    /// The whole ad account or advertiser.
    Account,
    /// A finished Meta async report run (its own account and range).
    Run(String),
}

/// Where the next page of insights starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// Meta's `after` cursor (none: the first page).
    After(Option<String>),
    /// TikTok's page number, from 1.
    Page(u32),
}

/// A page of insights, where the next starts, and how busy the platform says it is.
#[derive(Debug, Clone)]
pub struct PlatformPage {
    pub rows: Vec<PlatformRow>,
    pub next: Option<Cursor>,
    pub usage_percent: u32,
    pub regain_after: Option<Duration>,
}

/// An ad's review from its status at Meta (`effective_status`) or TikTok (`secondary_status`).
pub fn review_of(ad_status: &str) -> &'static str {
    let s = ad_status.to_ascii_uppercase();
    if s == "DISAPPROVED" || s.contains("REJECT") || s.contains("NOT_APPROVED") {
        "rejected"
    } else if s.is_empty()
        || s.contains("PENDING")
        || s.contains("IN_PROCESS")
        || s.contains("AUDIT")
        || s.contains("REVIEW")
    {
        "pending"
    } else {
        "approved"
    }
}

/// The kind of account a provider's campaigns run in.
pub fn ad_account_kind(provider: Provider) -> AccountKind {
    match provider {
        Provider::TikTok => AccountKind::Advertiser,
        _ => AccountKind::AdAccount,
    }
}

fn not_configured(provider: Provider) -> Error {
    Error::new(ErrorKind::FailedPrecondition, "ads.provider_not_configured").with_param("provider", provider.as_str())
}

impl App {
    /// The client for campaigns on `provider` (`ads.builder_unsupported` where there are none).
    pub fn ad_platform(&self, provider: Provider) -> Result<AdPlatform<'_>, Error> {
        match provider {
            Provider::Meta => self.meta.as_ref().map(AdPlatform::Meta).ok_or_else(|| not_configured(provider)),
            Provider::TikTok => self.tiktok.as_ref().map(AdPlatform::TikTok).ok_or_else(|| not_configured(provider)),
            Provider::Local if self.cfg.sandbox_enabled() => Ok(AdPlatform::Local),
            other => Err(Error::new(ErrorKind::FailedPrecondition, "ads.builder_unsupported")
                .with_param("provider", other.as_str())),
        }
    }

    /// [`App::ad_platform`] for a stored build's provider text.
    pub fn ad_platform_of(&self, provider: &str) -> Result<AdPlatform<'_>, Error> {
        let p: Provider = provider.parse().map_err(|_| Error::internal(format!("build provider {provider:?}")))?;
        self.ad_platform(p)
    }
}

fn meta_object(step: &str) -> MetaObject {
    match step {
        "campaign" => MetaObject::Campaign,
        "adset" => MetaObject::AdSet,
        "creative" => MetaObject::Creative,
        _ => MetaObject::Ad,
    }
}

fn tiktok_object(step: &str) -> TikTokObject {
    match step {
        "campaign" => TikTokObject::Campaign,
        "adgroup" => TikTokObject::AdGroup,
        _ => TikTokObject::Ad,
    }
}

/// Meta's form fields of a step (ids of the earlier steps in `ids`).
fn meta_fields(step: &str, name: &str, spec: &BuildSpec, ids: &HashMap<String, String>) -> Vec<(&'static str, String)> {
    let status = if spec.activate { "ACTIVE" } else { "PAUSED" }.to_owned();
    let id = |s: &str| ids.get(s).cloned().unwrap_or_default();
    match step {
        "campaign" => vec![
            ("name", name.to_owned()),
            ("objective", spec.objective.clone()),
            ("status", status),
            ("special_ad_categories", json!(spec.special_ad_categories).to_string()),
            // The budget sits on the ad set.
            ("is_adset_budget_sharing_enabled", "false".into()),
            ("buying_type", "AUCTION".into()),
        ],
        "adset" => {
            let mut targeting = json!({
                "geo_locations": {"countries": spec.countries},
                "age_min": spec.age_min,
                "age_max": spec.age_max,
            });
            if !spec.interests.is_empty() {
                let interests: Vec<Value> = spec.interests.iter().map(|id| json!({"id": id})).collect();
                targeting["flexible_spec"] = json!([{"interests": interests}]);
            }
            let mut f = vec![
                ("name", name.to_owned()),
                ("campaign_id", id("campaign")),
                ("daily_budget", spec.daily_budget.to_string()),
                ("billing_event", spec.billing_event.clone()),
                ("optimization_goal", spec.optimization_goal.clone()),
                ("bid_strategy", "LOWEST_COST_WITHOUT_CAP".into()),
                ("targeting", targeting.to_string()),
                ("status", status),
            ];
            if spec.objective == "OUTCOME_LEADS" {
                f.push(("promoted_object", json!({"page_id": spec.page_id}).to_string()));
            }
            if let Some(s) = spec.start {
                f.push(("start_time", s.to_rfc3339()));
            }
            if let Some(e) = spec.end {
                f.push(("end_time", e.to_rfc3339()));
            }
            f
        }
        "creative" => {
            let mut link = json!({"link": spec.link, "message": spec.primary_text});
            if !spec.headline.is_empty() {
                link["name"] = json!(spec.headline);
            }
            if !spec.description.is_empty() {
                link["description"] = json!(spec.description);
            }
            let uploaded = ids.get(MEDIA_STEP).and_then(|raw| Uploaded::decode(raw));
            let story = match uploaded {
                // A video ad: the video with its thumbnail, the link as its button.
                Some(Uploaded { image, video: Some(video) }) => {
                    let mut v = json!({
                        "video_id": video,
                        "image_hash": image,
                        "message": spec.primary_text,
                        "call_to_action": {"type": "LEARN_MORE", "value": {"link": spec.link}},
                    });
                    if !spec.headline.is_empty() {
                        v["title"] = json!(spec.headline);
                    }
                    if !spec.description.is_empty() {
                        v["link_description"] = json!(spec.description);
                    }
                    json!({"page_id": spec.page_id, "video_data": v})
                }
                Some(Uploaded { image, video: None }) => {
                    link["image_hash"] = json!(image);
                    json!({"page_id": spec.page_id, "link_data": link})
                }
                None => {
                    if !spec.image_url.is_empty() {
                        link["picture"] = json!(spec.image_url);
                    }
                    json!({"page_id": spec.page_id, "link_data": link})
                }
            };
            vec![("name", name.to_owned()), ("object_story_spec", story.to_string())]
        }
        _ => vec![
            ("name", name.to_owned()),
            ("adset_id", id("adset")),
            ("creative", json!({"creative_id": id("creative")}).to_string()),
            ("status", status),
        ],
    }
}

/// TikTok's age groups covering `min..=max`.
fn age_groups(min: u32, max: u32) -> Vec<&'static str> {
    const GROUPS: &[(u32, u32, &str)] = &[
        (18, 24, "AGE_18_24"),
        (25, 34, "AGE_25_34"),
        (35, 44, "AGE_35_44"),
        (45, 54, "AGE_45_54"),
        (55, 100, "AGE_55_100"),
    ];
    GROUPS.iter().filter(|(lo, hi, _)| *lo <= max && *hi >= min).map(|(_, _, g)| *g).collect()
}

/// TikTok's body of a step (the image id for the ad in `image`).
fn tiktok_body(
    step: &str,
    name: &str,
    spec: &BuildSpec,
    currency: Currency,
    ids: &HashMap<String, String>,
    image: &str,
) -> Value {
    let status = if spec.activate { "ENABLE" } else { "DISABLE" };
    let id = |s: &str| ids.get(s).cloned().unwrap_or_default();
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    match step {
        "campaign" => json!({
            "campaign_name": name,
            "objective_type": spec.objective,
            // The budget sits on the ad group.
            "budget_mode": "BUDGET_MODE_INFINITE",
            "campaign_type": "REGULAR_CAMPAIGN",
            "special_industries": spec.special_ad_categories,
            "operation_status": status,
        }),
        "adgroup" => {
            let budget: Value = serde_json::from_str(&main_units(spec.daily_budget, currency)).unwrap_or(Value::Null);
            let mut b = json!({
                "campaign_id": id("campaign"),
                "adgroup_name": name,
                "placement_type": "PLACEMENT_TYPE_NORMAL",
                "placements": ["PLACEMENT_TIKTOK"],
                // ISO codes: TikTok's own region ids come from /tool/region/ (not looked up here).
                "location_ids": spec.countries,
                "age_groups": age_groups(spec.age_min, spec.age_max),
                "interest_category_ids": spec.interests,
                "budget_mode": "BUDGET_MODE_DAY",
                "budget": budget,
                "optimization_goal": spec.optimization_goal,
                "billing_event": spec.billing_event,
                "bid_type": "BID_TYPE_NO_BID",
                "pacing": "PACING_MODE_SMOOTH",
                "operation_status": status,
            });
            match (spec.start, spec.end) {
                (Some(s), Some(e)) => {
                    b["schedule_type"] = json!("SCHEDULE_START_END");
                    b["schedule_start_time"] = json!(when(s));
                    b["schedule_end_time"] = json!(when(e));
                }
                (s, _) => {
                    b["schedule_type"] = json!("SCHEDULE_FROM_NOW");
                    b["schedule_start_time"] = json!(when(s.unwrap_or_else(chrono::Utc::now)));
                }
            }
            b
        }
        _ => {
            let mut creative = json!({
                "ad_name": name,
                "ad_format": "SINGLE_IMAGE",
                "identity_type": "CUSTOMIZED_USER",
                "identity_id": spec.page_id,
                "ad_text": spec.primary_text,
                "image_ids": [image],
                "landing_page_url": spec.link,
                "call_to_action": "LEARN_MORE",
            });
            // A video ad shows its cover (`image`) before it plays.
            if let Some(video) = ids.get(MEDIA_STEP).and_then(|raw| Uploaded::decode(raw)).and_then(|u| u.video) {
                creative["ad_format"] = json!("SINGLE_VIDEO");
                creative["video_id"] = json!(video);
            }
            json!({"adgroup_id": id("adgroup"), "operation_status": status, "creatives": [creative]})
        }
    }
}

impl AdPlatform<'_> {
    pub fn provider(&self) -> Provider {
        match self {
            AdPlatform::Meta(_) => Provider::Meta,
            AdPlatform::TikTok(_) => Provider::TikTok,
            AdPlatform::Local => Provider::Local,
        }
    }

    pub fn steps(&self) -> &'static [&'static str] {
        steps_of(self.provider().as_str())
    }

    /// Creates a step's object named `name`; its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_step(
        &self,
        token: &str,
        account: &str,
        build: Uuid,
        step: &str,
        name: &str,
        spec: &BuildSpec,
        currency: Currency,
        ids: &HashMap<String, String>,
    ) -> Result<String, PlatformError> {
        match self {
            AdPlatform::Meta(m) => {
                m.create(token, account, meta_object(step), &meta_fields(step, name, spec, ids)).await
            }
            AdPlatform::TikTok(t) => {
                let image = match ids.get(MEDIA_STEP).and_then(|raw| Uploaded::decode(raw)) {
                    // The build's media step uploaded the picture (or the video's cover).
                    Some(u) if step == "ad" => u.image,
                    None if step == "ad" => {
                        t.upload_image_by_url(token, account, &spec.image_url, &format!("{name}.img")).await?
                    }
                    _ => String::new(),
                };
                let body = tiktok_body(step, name, spec, currency, ids, &image);
                let kind = tiktok_object(step);
                match t.create(token, account, kind, &request_id(&format!("{build}:{step}")), body).await {
                    // This create was made before (its answer lost): the object is there.
                    Err(PlatformError::Api { code: DUPLICATED_REQUEST, .. }) => t
                        .find_by_name(token, account, kind, name)
                        .await?
                        .ok_or(PlatformError::Upstream { platform: "TikTok", status: 0 }),
                    other => other,
                }
            }
            AdPlatform::Local => Ok(local_id(step, build)),
        }
    }

    /// The id of the step's object named `name`, if the platform has it.
    pub async fn find_step(
        &self,
        token: &str,
        account: &str,
        step: &str,
        name: &str,
    ) -> Result<Option<String>, PlatformError> {
        match self {
            AdPlatform::Meta(m) => m.find_by_name(token, account, meta_object(step), name).await,
            AdPlatform::TikTok(t) => t.find_by_name(token, account, tiktok_object(step), name).await,
            // Its creates always answer (with the same id again): nothing is ever half made.
            AdPlatform::Local => Ok(None),
        }
    }

    /// Deletes a step's object; one already gone counts as deleted.
    pub async fn delete_step(&self, token: &str, account: &str, step: &str, id: &str) -> Result<(), PlatformError> {
        match self {
            AdPlatform::Meta(m) => m.delete(token, id).await,
            AdPlatform::TikTok(t) => {
                t.set_status(token, account, tiktok_object(step), &[id.to_owned()], "DELETE").await
            }
            AdPlatform::Local => Ok(()),
        }
    }

    /// Sets the daily budget on the object holding it.
    pub async fn set_budget(
        &self,
        token: &str,
        account: &str,
        holder: &str,
        minor: i64,
        currency: Currency,
    ) -> Result<(), PlatformError> {
        match self {
            AdPlatform::Meta(m) => m.update(token, holder, &[("daily_budget", minor.to_string())]).await,
            AdPlatform::TikTok(t) => t.update_budget(token, account, holder, &main_units(minor, currency)).await,
            AdPlatform::Local => Ok(()),
        }
    }

    /// Pauses, starts or archives a step's object (TikTok has no archive: a disabled campaign
    /// stays there for its reports).
    pub async fn set_delivery(
        &self,
        token: &str,
        account: &str,
        step: &str,
        id: &str,
        delivery: &str,
    ) -> Result<(), PlatformError> {
        match self {
            AdPlatform::Meta(m) => {
                let status = match delivery {
                    "active" => "ACTIVE",
                    "archived" => "ARCHIVED",
                    _ => "PAUSED",
                };
                m.update(token, id, &[("status", status.into())]).await
            }
            AdPlatform::TikTok(t) => {
                let status = if delivery == "active" { "ENABLE" } else { "DISABLE" };
                t.set_status(token, account, tiktok_object(step), &[id.to_owned()], status).await
            }
            AdPlatform::Local => Ok(()),
        }
    }

    /// One page of daily ad-level insights between two days (inclusive).
    pub async fn insights_page(
        &self,
        token: &str,
        account: &str,
        scope: &Scope,
        since: &str,
        until: &str,
        cursor: &Cursor,
    ) -> Result<PlatformPage, PlatformError> {
        match (self, cursor) {
            (AdPlatform::TikTok(t), Cursor::Page(page)) => {
                let campaign = match scope {
                    Scope::Campaign(c) => Some(c.as_str()),
                    _ => None,
                };
                let p = t.report_page(token, account, campaign, since, until, *page).await?;
                // TikTok reports no usage: a throttled call (40100) is retried with a pause.
                let next = (*page < p.total_pages).then_some(Cursor::Page(page + 1));
                Ok(PlatformPage { rows: p.rows, next, usage_percent: 0, regain_after: None })
            }
            (AdPlatform::Meta(m), Cursor::After(after)) => {
                let object = match scope {
                    Scope::Campaign(c) | Scope::Run(c) => c.as_str(),
                    Scope::Account => account,
                };
                let p = m.insights_page(token, object, since, until, after.as_deref()).await?;
                Ok(PlatformPage {
                    rows: p.rows,
                    next: p.next_after.map(|a| Cursor::After(Some(a))),
                    usage_percent: p.usage_percent,
                    regain_after: p.regain_after,
                })
            }
            // One page: a campaign's ad, every day of the range (the account as a whole has no
            // rows of its own in the sandbox; its campaigns are synced one by one).
            (AdPlatform::Local, Cursor::After(_)) => {
                let rows = match scope {
                    Scope::Campaign(c) => local_rows(c, since, until),
                    Scope::Account | Scope::Run(_) => Vec::new(),
                };
                Ok(PlatformPage { rows, next: None, usage_percent: 0, regain_after: None })
            }
            _ => Err(PlatformError::Decode { platform: "ads", message: "cursor of another platform".into() }),
        }
    }

    /// What the platform says of a built campaign: the campaign's status as it words it, and
    /// its ad's review (`pending`, `approved`, `rejected`) with the platform's reason.
    pub async fn review(
        &self,
        token: &str,
        account: &str,
        campaign: &str,
        ad: &str,
    ) -> Result<(String, &'static str, String), PlatformError> {
        let ((campaign_status, _), (ad_status, reason)) = match self {
            AdPlatform::Local => (("SANDBOX".to_owned(), String::new()), ("APPROVED".to_owned(), String::new())),
            AdPlatform::Meta(m) => (m.object_status(token, campaign).await?, m.object_status(token, ad).await?),
            AdPlatform::TikTok(t) => (
                t.object_status(token, account, TikTokObject::Campaign, campaign).await?,
                t.object_status(token, account, TikTokObject::Ad, ad).await?,
            ),
        };
        let review = review_of(&ad_status);
        Ok((campaign_status, review, if review == "rejected" { reason } else { String::new() }))
    }

    /// Interests an ad can target whose name matches `q`, at most `limit`.
    pub async fn search_interests(
        &self,
        token: &str,
        account: &str,
        q: &str,
        limit: u32,
    ) -> Result<Vec<Interest>, PlatformError> {
        match self {
            AdPlatform::Meta(m) => m.search_interests(token, q, limit).await,
            AdPlatform::TikTok(t) => t.search_interests(token, account, q, limit).await,
            AdPlatform::Local => {
                let q = q.to_lowercase();
                Ok(LOCAL_INTERESTS
                    .iter()
                    .filter(|(_, name, _)| name.to_lowercase().contains(&q))
                    .take(usize::try_from(limit).unwrap_or(usize::MAX))
                    .map(|(id, name, size)| Interest {
                        id: (*id).to_owned(),
                        name: (*name).to_owned(),
                        path: vec!["Interests".to_owned(), "Sandbox".to_owned()],
                        audience_min: Some(*size),
                        audience_max: Some(size + size / 5),
                    })
                    .collect())
            }
        }
    }

    /// Where a provider's insights start.
    pub fn first_page(&self) -> Cursor {
        match self {
            AdPlatform::Meta(_) | AdPlatform::Local => Cursor::After(None),
            AdPlatform::TikTok(_) => Cursor::Page(1),
        }
    }

    /// Creates a customer-list audience and uploads the hashes; its id.
    pub async fn upload_audience(
        &self,
        token: &str,
        account: &str,
        name: &str,
        emails: &[String],
        phones: &[String],
        session: u64,
    ) -> Result<String, PlatformError> {
        match self {
            AdPlatform::Meta(m) => {
                let audience = m.create_audience(token, account, name).await?;
                for (schema, hashes) in [("EMAIL", emails), ("PHONE", phones)] {
                    if !hashes.is_empty() {
                        m.add_audience_users(token, &audience, schema, hashes, session).await?;
                    }
                }
                Ok(audience)
            }
            AdPlatform::TikTok(t) => {
                let audience = t.create_audience(token, account, name).await?;
                for (schema, hashes) in [("EMAIL_SHA256", emails), ("PHONE_SHA256", phones)] {
                    if !hashes.is_empty() {
                        t.add_audience_members(token, account, &audience, schema, hashes).await?;
                    }
                }
                Ok(audience)
            }
            AdPlatform::Local => Ok(format!("local_audience_{}", session)),
        }
    }

    /// Creates an empty customer-list audience; its id (the sandbox's is made from `local_key`).
    pub async fn create_audience(
        &self,
        token: &str,
        account: &str,
        name: &str,
        local_key: Uuid,
    ) -> Result<String, PlatformError> {
        match self {
            AdPlatform::Meta(m) => m.create_audience(token, account, name).await,
            AdPlatform::TikTok(t) => t.create_audience(token, account, name).await,
            AdPlatform::Local => Ok(format!("local_audience_{}", local_key.simple())),
        }
    }

    /// Adds one batch of hashes of one kind to an audience (`place` is Meta's upload session).
    pub async fn add_audience_batch(
        &self,
        token: &str,
        account: &str,
        audience: &str,
        kind: HashKind,
        hashes: &[String],
        place: UploadBatch,
    ) -> Result<(), PlatformError> {
        match self {
            AdPlatform::Meta(m) => m.add_audience_batch(token, audience, kind.meta(), hashes, place, false).await,
            AdPlatform::TikTok(t) => t.add_audience_members(token, account, audience, kind.tiktok(), hashes).await,
            AdPlatform::Local => Ok(()),
        }
    }

    /// Sends one batch of a replacement of an audience's members (one session across both
    /// kinds; the members are swapped when its last batch arrives). Only Meta and the sandbox
    /// replace; TikTok audiences are kept by difference (`audience_diff`).
    pub async fn replace_audience_batch(
        &self,
        token: &str,
        audience: &str,
        kind: HashKind,
        hashes: &[String],
        place: UploadBatch,
    ) -> Result<(), PlatformError> {
        match self {
            AdPlatform::Meta(m) => m.add_audience_batch(token, audience, kind.meta(), hashes, place, true).await,
            AdPlatform::TikTok(_) | AdPlatform::Local => Ok(()),
        }
    }

    /// Creates a lookalike of the platform audience `origin`; its id (the sandbox's is made from
    /// `local_key`). Meta takes the ratio as a fraction; TikTok takes a size band instead
    /// (1–3 %: NARROW, 4–6 %: BALANCED, 7–10 %: BROAD).
    pub async fn create_lookalike(
        &self,
        token: &str,
        account: &str,
        origin: &str,
        spec: &LookalikeSpec,
        local_key: Uuid,
    ) -> Result<String, PlatformError> {
        match self {
            AdPlatform::Meta(m) => {
                let ratio = f64::from(spec.ratio_percent) / 100.0;
                let lookalike = match spec.countries.as_slice() {
                    [one] => json!({"ratio": ratio, "country": one}),
                    many => json!({"ratio": ratio, "location_spec": {"geo_locations": {"countries": many}}}),
                };
                m.create_lookalike(token, account, &spec.name, origin, &lookalike).await
            }
            AdPlatform::TikTok(t) => {
                let size = match spec.ratio_percent {
                    ..=3 => "NARROW",
                    4..=6 => "BALANCED",
                    _ => "BROAD",
                };
                t.create_lookalike(token, account, &spec.name, origin, &spec.countries, size).await
            }
            AdPlatform::Local => Ok(format!("local_lookalike_{}", local_key.simple())),
        }
    }

    /// Deletes an audience at the platform; one already gone counts as deleted.
    pub async fn delete_audience(&self, token: &str, account: &str, audience: &str) -> Result<(), PlatformError> {
        match self {
            AdPlatform::Meta(m) => m.delete(token, audience).await,
            AdPlatform::TikTok(t) => t.delete_audience(token, account, audience).await,
            AdPlatform::Local => Ok(()),
        }
    }
}

/// What an audience's hashes are of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    Email,
    Phone,
}

impl HashKind {
    fn meta(self) -> &'static str {
        match self {
            HashKind::Email => "EMAIL",
            HashKind::Phone => "PHONE",
        }
    }

    pub(super) fn tiktok(self) -> &'static str {
        match self {
            HashKind::Email => "EMAIL_SHA256",
            HashKind::Phone => "PHONE_SHA256",
        }
    }
}

/// The sandbox's interests: (id, name, audience lower bound).
const LOCAL_INTERESTS: &[(&str, &str, i64)] = &[
    ("900001", "Baking", 1_200_000),
    ("900002", "Coffee", 3_400_000),
    ("900003", "Fitness", 2_100_000),
    ("900004", "Fashion", 2_800_000),
    ("900005", "Travel", 2_500_000),
    ("900006", "Home and garden", 1_600_000),
];

/// The sandbox's id of a build's step: `local_<step>_<build>`, so a campaign's ad is known from
/// the campaign's id.
fn local_id(step: &str, build: Uuid) -> String {
    format!("local_{step}_{}", build.simple())
}

/// Plausible daily figures of the sandbox campaign `campaign` between two days (inclusive):
/// steady for an ad and day, whole units of any currency (the sandbox has no cents).
fn local_rows(campaign: &str, since: &str, until: &str) -> Vec<PlatformRow> {
    let Some(build) = campaign.strip_prefix("local_campaign_") else { return Vec::new() };
    let (Ok(mut day), Ok(last)) =
        (chrono::NaiveDate::parse_from_str(since, "%Y-%m-%d"), chrono::NaiveDate::parse_from_str(until, "%Y-%m-%d"))
    else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    while day <= last && rows.len() < 400 {
        let date = day.format("%Y-%m-%d").to_string();
        let h = format!("{build}{date}").bytes().fold(17u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        let impressions = 800 + (h % 1_700) as i64;
        let clicks = impressions * (10 + (h / 7 % 25) as i64) / 1_000;
        let conversions = clicks / (12 + (h / 11 % 10) as i64);
        rows.push(PlatformRow {
            campaign_id: campaign.to_owned(),
            adset_id: format!("local_adset_{build}"),
            ad_id: format!("local_ad_{build}"),
            date,
            spend: (5 + clicks / 3).to_string(),
            impressions,
            reach: impressions * 7 / 10,
            clicks,
            conversions,
            revenue: (conversions * 30).to_string(),
        });
        day = day.succ_opt().unwrap_or(last + chrono::Duration::days(1));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_read_from_either_platform() {
        assert_eq!(review_of("DISAPPROVED"), "rejected");
        assert_eq!(review_of("AD_STATUS_REJECT"), "rejected");
        assert_eq!(review_of("PENDING_REVIEW"), "pending");
        assert_eq!(review_of("AD_STATUS_AUDIT"), "pending");
        assert_eq!(review_of("PAUSED"), "approved");
        assert_eq!(review_of("AD_STATUS_DELIVERY_OK"), "approved");
    }

    #[test]
    fn age_ranges_map_to_tiktoks_groups() {
        assert_eq!(age_groups(25, 54), ["AGE_25_34", "AGE_35_44", "AGE_45_54"]);
        assert_eq!(age_groups(18, 65), ["AGE_18_24", "AGE_25_34", "AGE_35_44", "AGE_45_54", "AGE_55_100"]);
        assert_eq!(age_groups(30, 30), ["AGE_25_34"]);
    }
}
