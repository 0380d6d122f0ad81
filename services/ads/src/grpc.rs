//! gRPC adapters: proto <-> app conversion. Permission checks live in the use cases; adapters
//! only take the caller's principal from the request.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;

use nexus_kernel::Locale;
use nexus_platform::grpc::{file_stream, from_ts, status, ts};
use nexus_platform::identity::{caller_locale, principal};
use nexus_platform::links::ByteRange;
use nexus_proto::common::{FileChunk, OpenFileRequest};
use nexus_proto::nexus::ads::v1::{self as pb, ads_server::Ads, upload_media_chunk::Part};
use tonic::{Request, Response, Status, Streaming};

use crate::app::App;
use crate::app::builder::{BuildRequest, BuildView, campaign_ref};
use crate::app::posts::PostView;
use crate::domain::BuildId;
use crate::domain::builder::BuildInput;
use crate::domain::campaigns::{Campaign, CampaignSpec};
use crate::domain::connections::{Account, Connection};
use crate::domain::media::MediaItem;
use crate::domain::posts::MediaKind;
use crate::domain::posts::{PostSpec, QueueSlot};
use crate::domain::{CampaignId, ConnectionId, FeedId, MediaId, PostId, PostTargetId};
use crate::repo::feeds::Feed;
use crate::repo::posts::Target;
use nexus_platform::grpc::{page_info, page_request as page};

pub struct AdsService {
    pub app: Arc<App>,
}

type R<T> = Result<Response<T>, Status>;

fn account(a: Account) -> pb::Account {
    pb::Account {
        external_id: a.external_id,
        kind: a.kind.as_str().to_owned(),
        name: a.name,
        currency: a.currency,
        time_zone: a.time_zone,
        chosen: a.chosen,
    }
}

fn connection(c: Connection) -> pb::Connection {
    pb::Connection {
        id: ConnectionId::from_uuid(c.id).to_string(),
        provider: c.provider.as_str().to_owned(),
        external_user: c.external_user,
        display_name: c.display_name,
        status: c.status,
        token_expires_at: c.token_expires_at.map(ts),
        scopes: c.scopes,
        accounts: c.accounts.into_iter().map(account).collect(),
        created_at: Some(ts(c.created_at)),
    }
}

fn campaign(c: Campaign) -> pb::Campaign {
    let date = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    pb::Campaign {
        id: CampaignId::from_uuid(c.id).to_string(),
        name: c.spec.name,
        goal: c.spec.goal,
        budget_minor: c.spec.budget_minor,
        currency: c.spec.currency.code().to_owned(),
        start_date: date(c.spec.start_date),
        end_date: date(c.spec.end_date),
        description: c.spec.description,
        status: c.status,
        created_at: Some(ts(c.created_at)),
        updated_at: Some(ts(c.updated_at)),
    }
}

fn ad_build(v: BuildView, locale: Locale) -> pb::AdBuild {
    let b = v.build;
    let review_message =
        crate::domain::builder::review_message(locale, &b.provider, &b.review_status, &b.review_reason);
    pb::AdBuild {
        id: BuildId::from_uuid(b.id).to_string(),
        provider: b.provider,
        ad_account: b.ad_account,
        currency: b.currency,
        status: b.status,
        error: b.error,
        steps: v
            .steps
            .into_iter()
            .map(|s| pb::AdBuildStep { step: s.step, platform_id: s.platform_id.unwrap_or_default(), status: s.status })
            .collect(),
        campaign_id: campaign_ref(b.campaign_id),
        created_at: Some(ts(b.created_at)),
        daily_budget: b.daily_budget,
        delivery: b.delivery,
        platform_status: b.platform_status,
        review_status: b.review_status,
        review_reason: b.review_reason,
        review_message,
        status_synced_at: b.status_synced_at.map(ts),
    }
}

fn spec(c: Option<pb::CampaignInput>) -> Result<CampaignSpec, Status> {
    let c = c.unwrap_or_default();
    CampaignSpec::parse(&c.name, &c.goal, c.budget_minor, &c.currency, &c.start_date, &c.end_date, &c.description)
        .map_err(status)
}

#[tonic::async_trait]
impl Ads for AdsService {
    async fn start_connection(&self, req: Request<pb::StartConnectionRequest>) -> R<pb::StartConnectionResponse> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let (authorize_url, state) =
            self.app.start_connection(&p, &r.provider, r.redirect_uri.trim()).await.map_err(status)?;
        Ok(Response::new(pb::StartConnectionResponse { authorize_url, state }))
    }

    async fn complete_connection(&self, req: Request<pb::CompleteConnectionRequest>) -> R<pb::Connection> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let c = self.app.complete_connection(&p, &r.provider, &r.code, &r.state).await.map_err(status)?;
        Ok(Response::new(connection(c)))
    }

    async fn list_connections(&self, req: Request<pb::ListRequest>) -> R<pb::ConnectionList> {
        let p = principal(&req)?;
        let page_req = page(req.into_inner().page)?;
        let found = self.app.list_connections(&p, &page_req).await.map_err(status)?;
        let page = page_info(&found);
        Ok(Response::new(pb::ConnectionList { connections: found.items.into_iter().map(connection).collect(), page }))
    }

    async fn get_connection(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Connection> {
        let p = principal(&req)?;
        Ok(Response::new(connection(self.app.connection(&p, &req.into_inner().id).await.map_err(status)?)))
    }

    async fn choose_accounts(&self, req: Request<pb::ChooseAccountsRequest>) -> R<pb::Connection> {
        let p = principal(&req)?;
        let r = req.into_inner();
        Ok(Response::new(connection(self.app.choose_accounts(&p, &r.id, &r.external_ids).await.map_err(status)?)))
    }

    async fn disconnect(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Connection> {
        let p = principal(&req)?;
        Ok(Response::new(connection(self.app.disconnect(&p, &req.into_inner().id).await.map_err(status)?)))
    }

    async fn create_campaign(&self, req: Request<pb::CampaignInput>) -> R<pb::Campaign> {
        let p = principal(&req)?;
        let s = spec(Some(req.into_inner()))?;
        Ok(Response::new(campaign(self.app.create_campaign(&p, s).await.map_err(status)?)))
    }

    async fn get_campaign(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Campaign> {
        let p = principal(&req)?;
        Ok(Response::new(campaign(self.app.campaign(&p, &req.into_inner().id).await.map_err(status)?)))
    }

    async fn list_campaigns(&self, req: Request<pb::ListRequest>) -> R<pb::CampaignList> {
        let p = principal(&req)?;
        let page_req = page(req.into_inner().page)?;
        let found = self.app.list_campaigns(&p, &page_req).await.map_err(status)?;
        let page = page_info(&found);
        Ok(Response::new(pb::CampaignList { campaigns: found.items.into_iter().map(campaign).collect(), page }))
    }

    async fn update_campaign(&self, req: Request<pb::UpdateCampaignRequest>) -> R<pb::Campaign> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let s = spec(r.campaign)?;
        Ok(Response::new(campaign(self.app.update_campaign(&p, &r.id, s).await.map_err(status)?)))
    }

    async fn build_ad_campaign(&self, req: Request<pb::BuildAdCampaignRequest>) -> R<pb::AdBuild> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let input = BuildInput {
            name: r.name,
            objective: r.objective,
            optimization_goal: r.optimization_goal,
            billing_event: r.billing_event,
            special_ad_categories: r.special_ad_categories,
            subject: r.subject,
            daily_budget: r.daily_budget,
            countries: r.countries,
            age_min: r.age_min,
            age_max: r.age_max,
            interests: r.interests,
            start: r.start.as_ref().and_then(from_ts),
            end: r.end.as_ref().and_then(from_ts),
            page_id: r.page_id,
            link: r.link,
            primary_text: r.primary_text,
            headline: r.headline,
            description: r.description,
            image_url: r.image_url,
            image_id: r.image_id,
            media_id: r.media_id,
            video_id: r.video_id,
            creative: None,
            activate: r.activate,
        };
        let req = BuildRequest {
            request_key: r.request_key,
            connection_id: r.connection_id,
            ad_account: r.ad_account,
            campaign_id: r.campaign_id,
            input,
        };
        Ok(Response::new(ad_build(self.app.build_ad_campaign(&p, req).await.map_err(status)?, caller_locale(Some(&p)))))
    }

    async fn search_interests(&self, req: Request<pb::SearchInterestsRequest>) -> R<pb::InterestList> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let found =
            self.app.search_interests(&p, &r.connection_id, &r.ad_account, &r.query, r.limit).await.map_err(status)?;
        let interests = found
            .into_iter()
            .map(|i| pb::Interest {
                id: i.id,
                name: i.name,
                path: i.path,
                audience_min: i.audience_min.unwrap_or(0),
                audience_max: i.audience_max.unwrap_or(0),
            })
            .collect();
        Ok(Response::new(pb::InterestList { interests }))
    }

    async fn get_ad_build(&self, req: Request<pb::GetByIdRequest>) -> R<pb::AdBuild> {
        let p = principal(&req)?;
        Ok(Response::new(ad_build(
            self.app.ad_build(&p, &req.into_inner().id).await.map_err(status)?,
            caller_locale(Some(&p)),
        )))
    }

    async fn update_ad_budget(&self, req: Request<pb::UpdateAdBudgetRequest>) -> R<pb::AdBuild> {
        let p = principal(&req)?;
        let r = req.into_inner();
        Ok(Response::new(ad_build(
            self.app.update_budget(&p, &r.id, r.daily_budget).await.map_err(status)?,
            caller_locale(Some(&p)),
        )))
    }

    async fn set_ad_delivery(&self, req: Request<pb::SetAdDeliveryRequest>) -> R<pb::AdBuild> {
        let p = principal(&req)?;
        let r = req.into_inner();
        Ok(Response::new(ad_build(
            self.app.set_delivery(&p, &r.id, &r.delivery).await.map_err(status)?,
            caller_locale(Some(&p)),
        )))
    }

    async fn sync_insights(&self, req: Request<pb::SyncInsightsRequest>) -> R<pb::InsightsReport> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let s = self.app.sync_insights(&p, &r.id, r.days).await.map_err(status)?;
        Ok(Response::new(pb::InsightsReport {
            rows: s.rows,
            days: s.days,
            spend_minor: s.spend_minor,
            revenue_minor: s.revenue_minor,
            currency: s.currency,
            time_zone: s.time_zone,
            slowed: s.slowed,
        }))
    }

    async fn create_audience(&self, req: Request<pb::CreateAudienceRequest>) -> R<pb::Audience> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let input = crate::app::audiences::AudienceRequest {
            connection_id: r.connection_id,
            ad_account: r.ad_account,
            name: r.name,
            emails: r.emails,
            phones: r.phones,
            segment_id: r.segment_id,
        };
        Ok(Response::new(audience(self.app.create_audience(&p, input).await.map_err(status)?)))
    }

    async fn list_audiences(&self, req: Request<pb::ListRequest>) -> R<pb::AudienceList> {
        let p = principal(&req)?;
        let page_req = page(req.into_inner().page)?;
        let found = self.app.list_audiences(&p, &page_req).await.map_err(status)?;
        let page = page_info(&found);
        Ok(Response::new(pb::AudienceList { items: found.items.into_iter().map(audience).collect(), page }))
    }

    async fn get_audience(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Audience> {
        let p = principal(&req)?;
        Ok(Response::new(audience(self.app.audience(&p, &req.into_inner().id).await.map_err(status)?)))
    }

    async fn create_lookalike(&self, req: Request<pb::CreateLookalikeRequest>) -> R<pb::Audience> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let ask = crate::app::audiences::LookalikeRequest {
            name: r.name,
            countries: r.countries,
            ratio_percent: r.ratio_percent,
        };
        Ok(Response::new(audience(self.app.create_lookalike(&p, &r.id, ask).await.map_err(status)?)))
    }

    async fn refresh_audience(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Audience> {
        let p = principal(&req)?;
        Ok(Response::new(audience(self.app.refresh_audience(&p, &req.into_inner().id).await.map_err(status)?)))
    }

    async fn delete_audience(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.app.delete_audience(&p, &req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn archive_campaign(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Campaign> {
        let p = principal(&req)?;
        Ok(Response::new(campaign(self.app.archive_campaign(&p, &req.into_inner().id).await.map_err(status)?)))
    }

    async fn create_post(&self, req: Request<pb::CreatePostRequest>) -> R<pb::Post> {
        let p = principal(&req)?;
        let spec = post_spec(&req.into_inner().spec_json)?;
        Ok(Response::new(post(self.app.create_post(&p, spec).await.map_err(status)?)))
    }

    async fn get_post(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Post> {
        let p = principal(&req)?;
        Ok(Response::new(post(self.app.post(&p, &req.into_inner().id).await.map_err(status)?)))
    }

    async fn update_post(&self, req: Request<pb::UpdatePostRequest>) -> R<pb::Post> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let spec = post_spec(&r.spec_json)?;
        Ok(Response::new(post(self.app.update_post(&p, &r.id, spec).await.map_err(status)?)))
    }

    async fn approve_post(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Post> {
        let p = principal(&req)?;
        Ok(Response::new(post(self.app.approve_post(&p, &req.into_inner().id).await.map_err(status)?)))
    }

    async fn reschedule_post(&self, req: Request<pb::ReschedulePostRequest>) -> R<pb::Post> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let at = r.scheduled_at.as_ref().and_then(from_ts).ok_or_else(|| {
            status(nexus_kernel::Error::invalid("ads.post_invalid").with_param("field", "scheduled_at"))
        })?;
        Ok(Response::new(post(self.app.reschedule_post(&p, &r.id, at).await.map_err(status)?)))
    }

    async fn cancel_post(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Post> {
        let p = principal(&req)?;
        Ok(Response::new(post(self.app.cancel_post(&p, &req.into_inner().id).await.map_err(status)?)))
    }

    async fn post_calendar(&self, req: Request<pb::PostCalendarRequest>) -> R<pb::PostList> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let bad =
            |f: &str| status(nexus_kernel::Error::invalid("ads.calendar_range_invalid").with_violation(f, "required"));
        let from = r.from.as_ref().and_then(from_ts).ok_or_else(|| bad("from"))?;
        let to = r.to.as_ref().and_then(from_ts).ok_or_else(|| bad("to"))?;
        let posts = self.app.post_calendar(&p, from, to).await.map_err(status)?;
        Ok(Response::new(pb::PostList { posts: posts.into_iter().map(post).collect() }))
    }

    async fn import_posts(&self, req: Request<pb::ImportPostsRequest>) -> R<pb::ImportPostsReport> {
        let p = principal(&req)?;
        let locale = caller_locale(Some(&p));
        let r = req.into_inner();
        let report = self.app.import_posts(&p, &r.csv, r.dry_run).await.map_err(status)?;
        Ok(Response::new(pb::ImportPostsReport {
            rows: report.rows,
            created: report.created,
            errors: report
                .errors
                .into_iter()
                .map(|e| pb::ImportRowError {
                    message: nexus_i18n::error_message(locale, &e.code, &e.params, 400),
                    line: e.line,
                    field: e.field,
                    code: e.code,
                })
                .collect(),
            post_ids: report.posts.into_iter().map(|id| PostId::from_uuid(id).to_string()).collect(),
        }))
    }

    async fn list_queue_slots(&self, req: Request<pb::Empty>) -> R<pb::QueueSlots> {
        let p = principal(&req)?;
        let slots = self.app.queue_slots(&p).await.map_err(status)?;
        Ok(Response::new(queue_slots(slots)))
    }

    async fn set_queue_slots(&self, req: Request<pb::QueueSlots>) -> R<pb::QueueSlots> {
        let p = principal(&req)?;
        let mut slots = Vec::new();
        for (i, s) in req.into_inner().slots.into_iter().enumerate() {
            let bad = |f: &str| status(crate::domain::posts::slot_invalid(i, f));
            let time = chrono::NaiveTime::parse_from_str(&s.time, "%H:%M").map_err(|_| bad("time"))?;
            let weekday = u8::try_from(s.weekday).map_err(|_| bad("weekday"))?;
            slots.push(QueueSlot { weekday, time, time_zone: s.time_zone });
        }
        let slots = self.app.set_queue_slots(&p, slots).await.map_err(status)?;
        Ok(Response::new(queue_slots(slots)))
    }

    async fn create_calendar_feed(&self, req: Request<pb::CreateCalendarFeedRequest>) -> R<pb::CalendarFeedCreated> {
        let p = principal(&req)?;
        let (f, token) = self.app.create_feed(&p, &req.into_inner().name).await.map_err(status)?;
        Ok(Response::new(pb::CalendarFeedCreated { feed: Some(feed(f)), token }))
    }

    async fn list_calendar_feeds(&self, req: Request<pb::Empty>) -> R<pb::CalendarFeedList> {
        let p = principal(&req)?;
        let feeds = self.app.list_feeds(&p).await.map_err(status)?;
        Ok(Response::new(pb::CalendarFeedList { feeds: feeds.into_iter().map(feed).collect() }))
    }

    async fn revoke_calendar_feed(&self, req: Request<pb::GetByIdRequest>) -> R<pb::CalendarFeed> {
        let p = principal(&req)?;
        Ok(Response::new(feed(self.app.revoke_feed(&p, &req.into_inner().id).await.map_err(status)?)))
    }

    /// Public: no principal; the token is the key.
    async fn calendar_ics(&self, req: Request<pb::CalendarIcsRequest>) -> R<pb::CalendarIcsResponse> {
        let ics = self.app.feed_ics(&req.into_inner().token).await.map_err(status)?;
        Ok(Response::new(pb::CalendarIcsResponse { ics }))
    }

    async fn upload_media(&self, req: Request<Streaming<pb::UploadMediaChunk>>) -> R<pb::MediaItem> {
        let p = principal(&req)?;
        let mut stream = req.into_inner();
        let head_first =
            || status(nexus_kernel::Error::invalid("ads.media_head_first").with_violation("head", "missing"));
        let first = stream.message().await?.ok_or_else(head_first)?;
        let Some(Part::Head(head)) = first.part else { return Err(head_first()) };
        let item =
            self.app.upload_media(&p, &head.name, &head.content_type, upload_data(stream)).await.map_err(status)?;
        Ok(Response::new(media_item(&self.app, item)?))
    }

    async fn list_media(&self, req: Request<pb::ListRequest>) -> R<pb::MediaList> {
        let p = principal(&req)?;
        let page_req = page(req.into_inner().page)?;
        let found = self.app.list_media(&p, &page_req).await.map_err(status)?;
        let page = page_info(&found);
        let items = found.items.into_iter().map(|m| media_item(&self.app, m)).collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(pb::MediaList { items, page }))
    }

    async fn get_media(&self, req: Request<pb::GetByIdRequest>) -> R<pb::MediaItem> {
        let p = principal(&req)?;
        let item = self.app.media_item(&p, &req.get_ref().id).await.map_err(status)?;
        Ok(Response::new(media_item(&self.app, item)?))
    }

    async fn delete_media(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.app.delete_media(&p, &req.get_ref().id).await.map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    type OpenMediaStream = Pin<Box<dyn Stream<Item = Result<FileChunk, Status>> + Send + 'static>>;

    async fn open_media(&self, req: Request<OpenFileRequest>) -> R<Self::OpenMediaStream> {
        let r = req.into_inner();
        let range = ByteRange::requested(r.has_range, r.start, r.end, r.suffix_length);
        let d = self.app.open_media(&r.token, range).await.map_err(status)?;
        Ok(Response::new(file_stream(d, "post media")))
    }
}

/// The bytes after the head, up to the `end` marker. A second head, a broken stream, or one
/// that closes without `end` (a cancelled upload looks closed to the server) fails the upload,
/// so a partial file is never stored as the whole.
fn upload_data(
    rest: Streaming<pb::UploadMediaChunk>,
) -> impl Stream<Item = Result<bytes::Bytes, nexus_kernel::Error>> + Send + 'static {
    futures::stream::unfold(Some(rest), |state| async move {
        let mut rest = state?;
        let interrupted = || nexus_kernel::Error::invalid("ads.media_upload_interrupted");
        match rest.message().await {
            Ok(Some(pb::UploadMediaChunk { part: Some(Part::Data(d)) })) => Some((Ok(d.into()), Some(rest))),
            Ok(Some(pb::UploadMediaChunk { part: Some(Part::End(true)) })) => None,
            Ok(Some(_)) => Some((
                Err(nexus_kernel::Error::invalid("ads.media_head_first").with_violation("head", "repeated")),
                None,
            )),
            Ok(None) => Some((Err(interrupted()), None)),
            Err(s) => Some((Err(interrupted().with_source(s)), None)),
        }
    })
}

fn media_item(app: &App, m: MediaItem) -> Result<pb::MediaItem, Status> {
    Ok(pb::MediaItem {
        id: MediaId::from_uuid(m.id).to_string(),
        name: m.name,
        kind: match m.facts.kind {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
        }
        .into(),
        content_type: m.facts.content_type,
        bytes: m.bytes,
        width: m.facts.width,
        height: m.facts.height,
        duration_secs: m.facts.duration_secs,
        sha256: m.sha256,
        url: app.media_url(m.id).map_err(status)?,
        created_at: Some(ts(m.created_at)),
    })
}

fn queue_slots(slots: Vec<QueueSlot>) -> pb::QueueSlots {
    pb::QueueSlots {
        slots: slots
            .into_iter()
            .map(|s| pb::QueueSlot {
                weekday: u32::from(s.weekday),
                time: s.time.format("%H:%M").to_string(),
                time_zone: s.time_zone,
            })
            .collect(),
    }
}

fn feed(f: Feed) -> pb::CalendarFeed {
    pb::CalendarFeed {
        id: FeedId::from_uuid(f.id).to_string(),
        name: f.name,
        created_at: Some(ts(f.created_at)),
        revoked_at: f.revoked_at.map(ts),
    }
}

fn post_spec(json: &str) -> Result<PostSpec, Status> {
    serde_json::from_str(json)
        .map_err(|_| status(nexus_kernel::Error::invalid("ads.post_invalid").with_param("field", "body")))
}

fn post(v: PostView) -> pb::Post {
    let p = v.post;
    pb::Post {
        id: PostId::from_uuid(p.id).to_string(),
        status: p.status,
        scheduled_at: p.scheduled_at.map(ts),
        time_zone: p.time_zone,
        body_json: p.body.to_string(),
        campaign_id: p.campaign_id.map(|c| CampaignId::from_uuid(c).to_string()).unwrap_or_default(),
        author: nexus_kernel::UserId::from_uuid(p.author).to_string(),
        approved_by: p.approved_by.map(|u| nexus_kernel::UserId::from_uuid(u).to_string()).unwrap_or_default(),
        targets: v.targets.into_iter().map(post_target).collect(),
        created_at: Some(ts(p.created_at)),
        updated_at: Some(ts(p.updated_at)),
    }
}

fn post_target(t: Target) -> pb::PostTarget {
    pb::PostTarget {
        id: PostTargetId::from_uuid(t.id).to_string(),
        connection_id: ConnectionId::from_uuid(t.connection_id).to_string(),
        provider: t.provider,
        platform: t.platform,
        account: t.account,
        variant_json: serde_json::to_string(&t.variant.0).unwrap_or_default(),
        publish_at: t.variant.0.publish_at.map(ts),
        status: t.status,
        due_at: t.due_at.map(ts),
        attempts: u32::try_from(t.attempts).unwrap_or(0),
        platform_post_id: t.platform_post_id.unwrap_or_default(),
        permalink: t.permalink,
        published_at: t.published_at.map(ts),
        error_code: t.error_code,
        error: t.error,
        likes: t.likes,
        comments: t.comments,
        shares: t.shares,
        views: t.views,
    }
}

fn audience(a: crate::repo::audiences::Audience) -> pb::Audience {
    pb::Audience {
        id: crate::domain::AudienceId::from_uuid(a.id).to_string(),
        connection_id: ConnectionId::from_uuid(a.connection_id).to_string(),
        ad_account: a.ad_account,
        name: a.name,
        platform_id: a.platform_id,
        members: a.members,
        dropped: a.dropped,
        created_at: Some(ts(a.created_at)),
        segment_id: a.segment_id,
        excluded: a.excluded,
        refresh_status: a.refresh_status,
        refresh_error: a.refresh_error,
        refreshed_at: a.refreshed_at.map(ts),
        kind: a.kind,
        origin_id: a.origin_id.map(|o| crate::domain::AudienceId::from_uuid(o).to_string()).unwrap_or_default(),
        countries: a.countries,
        ratio_percent: a.ratio_percent,
    }
}
