//! `nexus.messaging.v1.Crm`: the timeline and tasks, the pipeline and deals, saved segments.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use nexus_kernel::Error;
use nexus_platform::grpc::{from_ts, status, ts};
use nexus_platform::identity::principal;
use nexus_proto::common::Money;
use nexus_proto::nexus::messaging::v1::{self as pb, crm_server::Crm};
use tonic::{Request, Response, Status};

use super::{R, page, page_info};
use crate::app::App;
use crate::domain::activity::{Activity, ActivityInput};
use crate::domain::deal::{Deal, DealInput, PipelineStage};
use crate::domain::segment::Segment;

pub struct CrmService {
    pub app: Arc<App>,
}

/// An optional instant from a request; a malformed one is the caller's error, not "absent".
fn time(t: Option<&prost_types::Timestamp>, field: &'static str) -> Result<Option<DateTime<Utc>>, Status> {
    t.map(|t| {
        from_ts(t).ok_or_else(|| status(Error::invalid("messaging.invalid_time").with_violation(field, "invalid")))
    })
    .transpose()
}

fn activity(a: Activity) -> pb::Activity {
    pb::Activity {
        id: a.id.to_string(),
        contact_id: a.contact_id.to_string(),
        kind: a.kind.as_str().to_owned(),
        body: a.body,
        data_json: a.data.to_string(),
        actor: a.actor,
        due_at: a.due_at.map(ts),
        assignee_id: a.assignee_id.map(|u| u.to_string()).unwrap_or_default(),
        done_at: a.done_at.map(ts),
        occurred_at: Some(ts(a.occurred_at)),
    }
}

fn stage(s: PipelineStage) -> pb::Stage {
    pb::Stage { id: s.id.to_string(), name: s.name, outcome: s.outcome.as_str().to_owned() }
}

fn deal(d: Deal) -> pb::Deal {
    pb::Deal {
        id: d.id.to_string(),
        contact_id: d.contact_id.to_string(),
        title: d.title,
        stage_id: d.stage_id.to_string(),
        amount: Some(Money { amount_minor: d.amount.amount_minor, currency: d.amount.currency.code().to_owned() }),
        expected_close: d.expected_close.map(|c| c.to_string()).unwrap_or_default(),
        owner_id: d.owner_id.map(|u| u.to_string()).unwrap_or_default(),
        closed_at: d.closed_at.map(ts),
        created_at: Some(ts(d.created_at)),
        updated_at: Some(ts(d.updated_at)),
    }
}

fn deal_input(d: &pb::DealInput) -> DealInput<'_> {
    DealInput {
        contact_id: &d.contact_id,
        title: &d.title,
        stage_id: &d.stage_id,
        amount: d.amount.as_ref().map(|m| (m.amount_minor, m.currency.as_str())),
        expected_close: &d.expected_close,
        owner_id: &d.owner_id,
    }
}

fn segment(s: Segment) -> pb::Segment {
    pb::Segment {
        id: s.id.to_string(),
        name: s.name,
        filter_json: s.filter.to_string(),
        count: s.count,
        created_at: Some(ts(s.created_at)),
        updated_at: Some(ts(s.updated_at)),
    }
}

#[tonic::async_trait]
impl Crm for CrmService {
    async fn add_activity(&self, req: Request<pb::ActivityInput>) -> R<pb::Activity> {
        let p = principal(&req)?;
        let r = req.get_ref();
        let input = ActivityInput {
            kind: &r.kind,
            body: &r.body,
            due_at: time(r.due_at.as_ref(), "due_at")?,
            assignee_id: &r.assignee_id,
            occurred_at: time(r.occurred_at.as_ref(), "occurred_at")?,
        };
        let added = self.app.add_activity(&p, &r.contact_id, &input).await.map_err(status)?;
        Ok(Response::new(activity(added)))
    }

    async fn list_activities(&self, req: Request<pb::ListActivitiesRequest>) -> R<pb::ActivityPage> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let found = self.app.activities(&p, &r.contact_id, &page(r.page)?).await.map_err(status)?;
        let info = page_info(&found);
        Ok(Response::new(pb::ActivityPage { items: found.items.into_iter().map(activity).collect(), page: info }))
    }

    async fn complete_task(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Activity> {
        let p = principal(&req)?;
        let done = self.app.complete_task(&p, &req.get_ref().id).await.map_err(status)?;
        Ok(Response::new(activity(done)))
    }

    async fn list_tasks(&self, req: Request<pb::ListTasksRequest>) -> R<pb::ActivityPage> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let found = self.app.tasks(&p, &r.assignee_id, &page(r.page)?).await.map_err(status)?;
        let info = page_info(&found);
        Ok(Response::new(pb::ActivityPage { items: found.items.into_iter().map(activity).collect(), page: info }))
    }

    async fn list_stages(&self, req: Request<pb::Empty>) -> R<pb::StageList> {
        let p = principal(&req)?;
        let stages = self.app.stages(&p).await.map_err(status)?;
        Ok(Response::new(pb::StageList { items: stages.into_iter().map(stage).collect() }))
    }

    async fn save_stages(&self, req: Request<pb::StageList>) -> R<pb::StageList> {
        let p = principal(&req)?;
        let r = req.get_ref();
        let items: Vec<_> =
            r.items.iter().map(|s| (Some(s.id.as_str()), s.name.as_str(), s.outcome.as_str())).collect();
        let stages = self.app.save_stages(&p, &items).await.map_err(status)?;
        Ok(Response::new(pb::StageList { items: stages.into_iter().map(stage).collect() }))
    }

    async fn create_deal(&self, req: Request<pb::DealInput>) -> R<pb::Deal> {
        let p = principal(&req)?;
        let created = self.app.create_deal(&p, &deal_input(req.get_ref())).await.map_err(status)?;
        Ok(Response::new(deal(created)))
    }

    async fn update_deal(&self, req: Request<pb::UpdateDealRequest>) -> R<pb::Deal> {
        let p = principal(&req)?;
        let r = req.get_ref();
        let empty = pb::DealInput::default();
        let input = deal_input(r.deal.as_ref().unwrap_or(&empty));
        let updated = self.app.update_deal(&p, &r.id, &input, &r.update_mask).await.map_err(status)?;
        Ok(Response::new(deal(updated)))
    }

    async fn list_deals(&self, req: Request<pb::ListDealsRequest>) -> R<pb::DealPage> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let found = self.app.deals(&p, &r.stage_id, &r.contact_id, &page(r.page)?).await.map_err(status)?;
        let info = page_info(&found);
        Ok(Response::new(pb::DealPage { items: found.items.into_iter().map(deal).collect(), page: info }))
    }

    async fn save_segment(&self, req: Request<pb::SegmentInput>) -> R<pb::Segment> {
        let p = principal(&req)?;
        let r = req.get_ref();
        let saved = self.app.save_segment(&p, &r.id, &r.name, &r.filter_json).await.map_err(status)?;
        Ok(Response::new(segment(saved)))
    }

    async fn get_segment(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Segment> {
        let p = principal(&req)?;
        let found = self.app.segment(&p, &req.get_ref().id).await.map_err(status)?;
        Ok(Response::new(segment(found)))
    }

    async fn list_segments(&self, req: Request<pb::ListRequest>) -> R<pb::SegmentPage> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let found = self.app.segments(&p, &page(r.page)?).await.map_err(status)?;
        let info = page_info(&found);
        Ok(Response::new(pb::SegmentPage { items: found.items.into_iter().map(segment).collect(), page: info }))
    }

    async fn delete_segment(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.app.delete_segment(&p, &req.get_ref().id).await.map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }
}
