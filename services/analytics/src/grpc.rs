//! gRPC adapter: proto <-> domain conversion and the permission check of each call.

use std::sync::Arc;

use chrono::{NaiveDateTime, Utc};
use nexus_kernel::{Error, WorkspaceId};
use nexus_platform::RequestContext;
use nexus_platform::grpc::{status, ts};
use nexus_platform::identity::{Action, Principal, Role, principal};
use nexus_proto::common::{Money as PbMoney, PageInfo};
use nexus_proto::nexus::analytics::v1::{self as pb, analytics_server::Analytics};
use tonic::{Request, Response, Status};

use crate::app::Analytics as App;
use crate::app::churn::{Churn, ModelState, ModelView, ScoreView};
use crate::app::fleet::Monitor;
use crate::app::revenue::{ForecastView, months_after};
use crate::app::track::{EventResult, Outcome, Tracker};
use crate::domain::churn::{self, Population};
use crate::domain::forecast::{self, Forecast, Metric};
use crate::domain::mrr::{self, MrrMonth};
use crate::domain::report::{self, AuditFilter, Breakdown, Range};
use crate::domain::workspace::{WorkspaceSettings, WriteKey};
use crate::domain::{Interval, RawEvent, Utm};
use nexus_platform::grpc::page_request as page;

pub struct AnalyticsService {
    pub tracker: Arc<Tracker>,
    pub app: Arc<App>,
    pub monitor: Arc<Monitor>,
    pub churn: Arc<Churn>,
    pub operator_workspaces: Vec<WorkspaceId>,
}

type R<T> = Result<Response<T>, Status>;

impl AnalyticsService {
    /// Refuses (with `code`) anyone but an operator: the owners and admins of the platform's own
    /// workspaces (configured).
    fn operator<T>(&self, req: &Request<T>, code: &'static str) -> Result<Principal, Status> {
        let p = principal(req)?;
        if !self.operator_workspaces.contains(&p.workspace_id) || p.role < Role::Admin {
            return Err(status(Error::forbidden(code)));
        }
        Ok(p)
    }
}

fn mrr_month(m: MrrMonth) -> pb::MrrMonth {
    pb::MrrMonth {
        month: m.month.format("%Y-%m").to_string(),
        currency: m.currency,
        mrr_minor: m.mrr,
        arr_minor: m.arr,
        new_minor: m.new,
        expansion_minor: m.expansion,
        contraction_minor: m.contraction,
        churned_minor: m.churned,
        reactivation_minor: m.reactivation,
        net_new_minor: m.net_new,
        paying_customers: m.paying_customers,
        churned_customers: m.churned_customers,
        arpu_minor: m.arpu,
        churn_rate: m.churn_rate.to_string(),
        ltv_minor: m.ltv,
    }
}

fn forecast_view(v: ForecastView) -> pb::ForecastResponse {
    let month = |m: chrono::NaiveDate| m.format("%Y-%m").to_string();
    let last = v.history.last().map(|(m, _)| *m);
    let mut out = pb::ForecastResponse {
        metric: v.metric.as_str().to_owned(),
        currency: v.currency,
        method: "none".to_owned(),
        enough_data: false,
        min_points: u32::try_from(forecast::MIN_POINTS).unwrap_or(u32::MAX),
        history: v.history.iter().map(|(m, value)| pb::SeriesPoint { month: month(*m), value: *value }).collect(),
        points: Vec::new(),
        backtest_mape: None,
        interval_level: forecast::INTERVAL_LEVEL,
    };
    if let (Forecast::Ready { method, points, mape }, Some(last)) = (v.forecast, last) {
        out.method = method.as_str().to_owned();
        out.enough_data = true;
        out.backtest_mape = mape;
        out.points = points
            .iter()
            .zip(months_after(last, points.len()))
            .map(|(p, m)| pb::ForecastPoint { month: month(m), value: p.value, lower: p.lower, upper: p.upper })
            .collect();
    }
    out
}

fn local(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn caller<T>(req: &Request<T>, action: Action) -> Result<Principal, Status> {
    let p = principal(req)?;
    p.require(action).map_err(status)?;
    Ok(p)
}

fn range(r: Option<pb::TimeRange>, default_days: i64) -> Result<Range, Status> {
    let r = r.unwrap_or_default();
    report::parse_range(&r.from, &r.to, Utc::now(), default_days).map_err(status)
}

fn opt(s: String) -> Option<String> {
    (!s.trim().is_empty()).then_some(s)
}

fn raw_event(e: pb::TrackEvent) -> RawEvent {
    let utm = e.utm.unwrap_or_default();
    RawEvent {
        name: e.name,
        client_event_id: e.client_event_id,
        timestamp: e.timestamp,
        anonymous_id: e.anonymous_id,
        user_id: e.user_id,
        properties_json: e.properties_json,
        revenue: e.revenue.map(|m| (m.amount_minor, m.currency)),
        utm: Utm {
            source: opt(utm.source),
            medium: opt(utm.medium),
            campaign: opt(utm.campaign),
            term: opt(utm.term),
            content: opt(utm.content),
        },
        page_url: e.page_url,
        referrer: e.referrer,
    }
}

fn result(r: EventResult) -> pb::TrackResult {
    let (status, code, params, field) = match r.outcome {
        Outcome::Accepted => ("accepted", String::new(), Default::default(), String::new()),
        Outcome::Duplicate => ("duplicate", String::new(), Default::default(), String::new()),
        Outcome::Rejected(rej) => {
            ("rejected", rej.code.to_owned(), rej.params.into_iter().collect(), rej.field.to_owned())
        }
    };
    pb::TrackResult {
        index: u32::try_from(r.index).unwrap_or(u32::MAX),
        client_event_id: r.client_event_id,
        status: status.to_owned(),
        code,
        params,
        field,
    }
}

fn write_key(k: WriteKey) -> pb::WriteKey {
    pb::WriteKey {
        key: k.key,
        key_id: format!("wkey_{}", k.key_id.simple()),
        allowed_origins: k.allowed_origins,
        created_at: Some(ts(k.created_at)),
    }
}

fn breakdown(p: nexus_kernel::Page<Breakdown>) -> pb::BreakdownResponse {
    pb::BreakdownResponse {
        rows: p
            .items
            .into_iter()
            .map(|r| pb::BreakdownRow { key: r.key, events: r.events, unique_users: r.unique_users })
            .collect(),
        page: Some(PageInfo { next_cursor: p.next_cursor.unwrap_or_default() }),
    }
}

fn funnel_step(s: report::FunnelStep) -> pb::FunnelStep {
    pb::FunnelStep {
        name: s.name,
        users: s.users,
        conversion_from_start: s.conversion_from_start,
        conversion_from_previous: s.conversion_from_previous,
        drop_off: s.drop_off,
    }
}

fn feature_usage(r: report::FeatureUsage) -> pb::FeatureUsageRow {
    pb::FeatureUsageRow {
        plan: r.plan,
        feature: r.feature,
        uses: r.uses,
        credits: r.credits,
        unique_users: r.unique_users,
    }
}

fn settings(s: WorkspaceSettings) -> pb::Settings {
    pb::Settings { time_zone: s.time_zone, retention_days: s.retention_days }
}

fn interval(s: &str, default: Interval, allowed: &[Interval]) -> Result<Interval, Status> {
    if s.trim().is_empty() {
        return Ok(default);
    }
    Interval::parse(s.trim(), allowed).ok_or_else(|| {
        status(
            Error::new(nexus_kernel::ErrorKind::Unprocessable, "analytics.invalid_interval")
                .with_param("allowed", allowed.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(", ")),
        )
    })
}

impl AnalyticsService {
    fn client_ip() -> Option<std::net::IpAddr> {
        RequestContext::current().client_ip
    }

    /// The caller and the population it asks about: its customers (`action` on its workspace),
    /// or the platform's workspaces (operators only).
    fn churn_caller<T>(
        &self,
        req: &Request<T>,
        platform: bool,
        action: Action,
    ) -> Result<(Principal, Population), Status> {
        if platform {
            Ok((self.operator(req, "analytics.operator_required")?, Population::Platform))
        } else {
            Ok((caller(req, action)?, Population::Customers))
        }
    }
}

fn churn_model(m: ModelView) -> pb::ChurnModel {
    let mut out = pb::ChurnModel {
        population: m.population.as_str().to_owned(),
        trained_at: Some(ts(m.trained_at)),
        subjects: m.subjects,
        churned: m.churned,
        observation_days: m.observation_days,
        outcome_days: m.outcome_days,
        high_threshold: m.high_threshold,
        ..Default::default()
    };
    match m.state {
        ModelState::Trained { model, quality } => {
            out.status = "trained".into();
            out.auc = quality.auc;
            out.brier = quality.brier;
            out.calibration = quality
                .bins
                .into_iter()
                .map(|b| pb::ChurnCalibrationBin {
                    lower: b.lower,
                    upper: b.upper,
                    count: b.count,
                    mean_predicted: b.mean_predicted,
                    observed_rate: b.observed_rate,
                })
                .collect();
            out.train_subjects = quality.train_subjects;
            out.test_subjects = quality.test_subjects;
            out.intercept = model.intercept;
            out.coefficients = (0..model.features.len())
                .map(|j| pb::ChurnCoefficient {
                    feature: model.features[j].clone(),
                    coefficient: model.coefficients[j],
                    mean: model.means[j],
                    std: model.stds[j],
                })
                .collect();
        }
        ModelState::NotEnoughData(s) => {
            out.status = "not_enough_data".into();
            out.code = churn::NOT_ENOUGH_DATA.into();
            out.min_subjects = s.min_subjects;
            out.min_per_class = s.min_per_class;
        }
    }
    out
}

fn churn_score(s: ScoreView) -> pb::ChurnScore {
    pb::ChurnScore {
        subject: s.subject,
        score: s.score,
        high: s.high,
        factors: s
            .factors
            .into_iter()
            .map(|f| pb::ChurnFactor { feature: f.feature, value: f.value, contribution: f.contribution })
            .collect(),
        scored_at: Some(ts(s.scored_at)),
    }
}

#[tonic::async_trait]
impl Analytics for AnalyticsService {
    async fn track(&self, req: Request<pb::TrackRequest>) -> R<pb::TrackResult> {
        let r = req.into_inner();
        let event = r.event.unwrap_or_default();
        let mut results = self
            .tracker
            .track(&r.write_key, &r.origin, vec![raw_event(event)], Self::client_ip())
            .await
            .map_err(status)?;
        let one = results.pop().ok_or_else(|| status(Error::internal("no result for the event")))?;
        Ok(Response::new(result(one)))
    }

    async fn track_batch(&self, req: Request<pb::TrackBatchRequest>) -> R<pb::TrackBatchResponse> {
        let r = req.into_inner();
        let events = r.events.into_iter().map(raw_event).collect();
        let results = self.tracker.track(&r.write_key, &r.origin, events, Self::client_ip()).await.map_err(status)?;
        let results: Vec<pb::TrackResult> = results.into_iter().map(result).collect();
        let rejected = results.iter().filter(|r| r.status == "rejected").count();
        Ok(Response::new(pb::TrackBatchResponse {
            accepted: u32::try_from(results.len() - rejected).unwrap_or(u32::MAX),
            rejected: u32::try_from(rejected).unwrap_or(u32::MAX),
            results,
        }))
    }

    async fn get_write_key(&self, req: Request<pb::Empty>) -> R<pb::WriteKey> {
        let p = caller(&req, Action::Write)?;
        Ok(Response::new(write_key(self.app.write_key(p.workspace_id).await.map_err(status)?)))
    }

    async fn rotate_write_key(&self, req: Request<pb::RotateWriteKeyRequest>) -> R<pb::WriteKey> {
        let p = caller(&req, Action::ManageApiKeys)?;
        let origins = req.into_inner().allowed_origins;
        Ok(Response::new(write_key(self.app.rotate_write_key(p.workspace_id, &origins).await.map_err(status)?)))
    }

    async fn get_settings(&self, req: Request<pb::Empty>) -> R<pb::Settings> {
        let p = caller(&req, Action::Read)?;
        let s = self.app.settings(p.workspace_id).await.map_err(status)?;
        Ok(Response::new(settings(s)))
    }

    async fn update_settings(&self, req: Request<pb::UpdateSettingsRequest>) -> R<pb::Settings> {
        let p = caller(&req, Action::ManageApiKeys)?;
        let r = req.into_inner();
        let tz = opt(r.time_zone);
        let days = (r.retention_days != 0).then_some(r.retention_days);
        let s = self.app.update_settings(p.workspace_id, tz.as_deref().map(str::trim), days).await.map_err(status)?;
        Ok(Response::new(settings(s)))
    }

    async fn time_series(&self, req: Request<pb::TimeSeriesRequest>) -> R<pb::TimeSeriesResponse> {
        let p = caller(&req, Action::Read)?;
        let r = req.into_inner();
        let range = range(r.range, 30)?;
        let iv = interval(&r.interval, Interval::Day, &[Interval::Hour, Interval::Day, Interval::Week])?;
        let tz = self.app.report_zone(p.workspace_id, &r.time_zone).await.map_err(status)?;
        let buckets = self.app.time_series(p.workspace_id, range, iv, &tz, &r.event).await.map_err(status)?;
        Ok(Response::new(pb::TimeSeriesResponse {
            time_zone: tz,
            interval: iv.as_str().to_owned(),
            points: buckets
                .into_iter()
                .map(|b| pb::TimeSeriesPoint {
                    start: Some(ts(b.start)),
                    local_start: local(b.local_start),
                    events: b.events,
                    unique_users: b.unique_users,
                })
                .collect(),
        }))
    }

    async fn top_events(&self, req: Request<pb::TopEventsRequest>) -> R<pb::BreakdownResponse> {
        let p = caller(&req, Action::Read)?;
        let r = req.into_inner();
        let (range, page) = (range(r.range, 30)?, page(r.page)?);
        Ok(Response::new(breakdown(self.app.top_events(p.workspace_id, range, &page).await.map_err(status)?)))
    }

    async fn property_breakdown(&self, req: Request<pb::PropertyBreakdownRequest>) -> R<pb::BreakdownResponse> {
        let p = caller(&req, Action::Read)?;
        let r = req.into_inner();
        let (range, page) = (range(r.range, 30)?, page(r.page)?);
        let rows =
            self.app.property_breakdown(p.workspace_id, range, &r.event, &r.property, &page).await.map_err(status)?;
        Ok(Response::new(breakdown(rows)))
    }

    async fn utm_breakdown(&self, req: Request<pb::UtmBreakdownRequest>) -> R<pb::BreakdownResponse> {
        let p = caller(&req, Action::Read)?;
        let r = req.into_inner();
        let (range, page) = (range(r.range, 30)?, page(r.page)?);
        let rows =
            self.app.utm_breakdown(p.workspace_id, range, &r.dimension, &r.event, &page).await.map_err(status)?;
        Ok(Response::new(breakdown(rows)))
    }

    async fn funnel(&self, req: Request<pb::FunnelRequest>) -> R<pb::FunnelResponse> {
        let p = caller(&req, Action::Read)?;
        let r = req.into_inner();
        let range = range(r.range, 30)?;
        let window = if r.window_seconds == 0 { 7 * 86_400 } else { r.window_seconds };
        let steps = self.app.funnel(p.workspace_id, range, &r.steps, window).await.map_err(status)?;
        Ok(Response::new(pb::FunnelResponse {
            steps: steps.into_iter().map(funnel_step).collect(),
            window_seconds: window,
        }))
    }

    async fn revenue(&self, req: Request<pb::RevenueRequest>) -> R<pb::RevenueResponse> {
        let p = caller(&req, Action::Read)?;
        let r = req.into_inner();
        let range = range(r.range, 30)?;
        let iv = interval(&r.interval, Interval::Day, &[Interval::Day, Interval::Week, Interval::Month])?;
        let tz = self.app.report_zone(p.workspace_id, &r.time_zone).await.map_err(status)?;
        let (points, totals) = self.app.revenue(p.workspace_id, range, iv, &tz, &r.currency).await.map_err(status)?;
        let money =
            |m: nexus_kernel::Money| PbMoney { amount_minor: m.amount_minor, currency: m.currency.code().to_owned() };
        Ok(Response::new(pb::RevenueResponse {
            time_zone: tz,
            interval: iv.as_str().to_owned(),
            points: points
                .into_iter()
                .map(|p| pb::RevenuePoint {
                    start: Some(ts(p.start)),
                    local_start: local(p.local_start),
                    total: Some(money(p.total)),
                    events: p.events,
                })
                .collect(),
            totals: totals.into_iter().map(money).collect(),
        }))
    }

    async fn feature_usage(&self, req: Request<pb::FeatureUsageRequest>) -> R<pb::FeatureUsageResponse> {
        let p = caller(&req, Action::Read)?;
        let range = range(req.into_inner().range, 30)?;
        let rows = self.app.feature_usage(p.workspace_id, range).await.map_err(status)?;
        Ok(Response::new(pb::FeatureUsageResponse { rows: rows.into_iter().map(feature_usage).collect() }))
    }

    async fn retention(&self, req: Request<pb::RetentionRequest>) -> R<pb::RetentionResponse> {
        let p = caller(&req, Action::Read)?;
        let r = req.into_inner();
        let range = range(r.range, 84)?;
        let (cohorts, weeks) = self
            .app
            .retention(p.workspace_id, range, &r.start_event, &r.return_event, r.weeks)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RetentionResponse {
            cohorts: cohorts
                .into_iter()
                .map(|c| pb::Cohort { week_start: c.week_start.to_string(), users: c.users, retained: c.retained })
                .collect(),
            weeks,
        }))
    }

    async fn stickiness(&self, req: Request<pb::StickinessRequest>) -> R<pb::StickinessResponse> {
        let p = caller(&req, Action::Read)?;
        let r = req.into_inner();
        let range = range(r.range, 30)?;
        let points = self.app.stickiness(p.workspace_id, range, &r.event).await.map_err(status)?;
        Ok(Response::new(pb::StickinessResponse {
            points: points
                .into_iter()
                .map(|s| pb::StickinessPoint {
                    day: s.day.to_string(),
                    daily_users: s.daily_users,
                    monthly_users: s.monthly_users,
                    ratio: s.ratio,
                })
                .collect(),
        }))
    }

    async fn search_audit(&self, req: Request<pb::AuditSearchRequest>) -> R<pb::AuditPage> {
        let p = caller(&req, Action::Read)?;
        let r = req.into_inner();
        let (range, page) = (range(r.range, 3650)?, page(r.page)?);
        let filter =
            AuditFilter { actor: opt(r.actor), resource_type: opt(r.resource_type), resource_id: opt(r.resource_id) };
        let rows = self.app.audit(p.workspace_id, &filter, range, &page).await.map_err(status)?;
        Ok(Response::new(pb::AuditPage {
            items: rows
                .items
                .into_iter()
                .map(|a| pb::AuditEntry {
                    id: format!("log_{}", a.id.simple()),
                    at: Some(ts(a.at)),
                    actor: a.actor,
                    action: a.action,
                    service: a.service,
                    resource_type: a.resource_type,
                    resource_id: a.resource_id,
                    before_json: a.before.unwrap_or_default(),
                    after_json: a.after.unwrap_or_default(),
                    ip: a.ip.unwrap_or_default(),
                    request_id: a.request_id,
                })
                .collect(),
            page: Some(PageInfo { next_cursor: rows.next_cursor.unwrap_or_default() }),
        }))
    }

    async fn fleet_status(&self, req: Request<pb::Empty>) -> R<pb::FleetStatusResponse> {
        self.operator(&req, "analytics.operator_required")?;
        Ok(Response::new(pb::FleetStatusResponse {
            services: self
                .monitor
                .snapshot()
                .into_iter()
                .map(|s| pb::ServiceStatus {
                    name: s.name,
                    status: s.status.to_owned(),
                    request_rate: s.request_rate,
                    error_rate: s.error_rate,
                    p95_latency_ms: s.p95_latency_ms,
                    checked_at: s.checked_at.map(ts),
                    error: s.error,
                })
                .collect(),
            scrape_interval_seconds: u32::try_from(self.monitor.interval().as_secs()).unwrap_or(u32::MAX),
        }))
    }

    async fn get_churn_model(&self, req: Request<pb::ChurnModelRequest>) -> R<pb::ChurnModel> {
        let (p, population) = self.churn_caller(&req, req.get_ref().platform, Action::Read)?;
        Ok(Response::new(churn_model(self.churn.model(p.workspace_id, population).await.map_err(status)?)))
    }

    async fn list_churn_scores(&self, req: Request<pb::ChurnScoresRequest>) -> R<pb::ChurnScoresResponse> {
        let (p, population) = self.churn_caller(&req, req.get_ref().platform, Action::Read)?;
        let r = req.into_inner();
        let page = page(r.page)?;
        let scores = self.churn.scores(p.workspace_id, population, r.min_score, &page).await.map_err(status)?;
        Ok(Response::new(pb::ChurnScoresResponse {
            page: Some(PageInfo { next_cursor: scores.next_cursor.unwrap_or_default() }),
            items: scores.items.into_iter().map(churn_score).collect(),
        }))
    }

    async fn retrain_churn(&self, req: Request<pb::ChurnModelRequest>) -> R<pb::ChurnModel> {
        let (p, population) = self.churn_caller(&req, req.get_ref().platform, Action::Write)?;
        Ok(Response::new(churn_model(self.churn.retrain(p.workspace_id, population).await.map_err(status)?)))
    }

    async fn mrr_report(&self, req: Request<pb::MrrReportRequest>) -> R<pb::MrrReportResponse> {
        // Every workspace is a customer of the platform: only operators see the sum.
        self.operator(&req, "analytics.mrr_operator_only")?;
        let r = req.into_inner();
        let (from, to) = mrr::parse_months(&r.from_month, &r.to_month, Utc::now().date_naive()).map_err(status)?;
        let months = self.app.mrr_report(from, to).await.map_err(status)?;
        Ok(Response::new(pb::MrrReportResponse { months: months.into_iter().map(mrr_month).collect() }))
    }

    async fn forecast(&self, req: Request<pb::ForecastRequest>) -> R<pb::ForecastResponse> {
        let p = caller(&req, Action::Read)?;
        let (metric, horizon) = {
            let r = req.get_ref();
            (Metric::parse(&r.metric).map_err(status)?, forecast::parse_horizon(r.horizon).map_err(status)?)
        };
        if metric == Metric::Mrr {
            self.operator(&req, "analytics.mrr_operator_only")?;
        }
        let r = req.into_inner();
        let view = self
            .app
            .forecast(p.workspace_id, metric, horizon, &r.currency, Utc::now().date_naive())
            .await
            .map_err(status)?;
        Ok(Response::new(forecast_view(view)))
    }
}
