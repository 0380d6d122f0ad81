//! `nexus.messaging.v1.Webhooks`.

use std::sync::Arc;

use nexus_platform::grpc::{from_ts, status, ts};
use nexus_platform::identity::principal;
use nexus_proto::nexus::messaging::v1::{self as pb, webhooks_server::Webhooks};
use tonic::{Request, Response};

use super::{R, page, page_info};
use crate::app::webhooks::{self as app, EndpointInput};
use crate::domain::webhooks::{Attempt, Endpoint, EventType, Message};

pub struct WebhooksService {
    pub hooks: Arc<app::Webhooks>,
}

fn endpoint(e: Endpoint) -> pb::Endpoint {
    pb::Endpoint {
        id: e.id.to_string(),
        url: e.url,
        description: e.description,
        event_types: e.event_types,
        rate_limit: e.rate_limit,
        status: e.status.as_str().to_owned(),
        disabled_reason: e.disabled_reason,
        failing_since: e.failing_since.map(ts),
        created_at: Some(ts(e.created_at)),
        updated_at: Some(ts(e.updated_at)),
    }
}

fn created((e, secret): (Endpoint, String)) -> pb::CreatedEndpoint {
    pb::CreatedEndpoint { endpoint: Some(endpoint(e)), secret }
}

fn message(m: Message) -> pb::Message {
    pb::Message {
        id: m.id.to_string(),
        event_type: m.event_type,
        payload_json: m.payload.to_string(),
        created_at: Some(ts(m.created_at)),
    }
}

fn attempt(a: Attempt) -> pb::Attempt {
    pb::Attempt {
        id: a.id.to_string(),
        endpoint_id: a.endpoint_id.to_string(),
        message_id: a.message_id.to_string(),
        attempt: a.attempt,
        outcome: a.outcome,
        status_code: a.status_code.unwrap_or(0),
        duration_ms: a.duration_ms,
        response_body: a.response_body,
        started_at: Some(ts(a.started_at)),
        request_headers_json: a.request_headers.to_string(),
        request_body_sha256: a.request_sha256,
        delivery_id: a.delivery_id.to_string(),
    }
}

fn event_type(e: &EventType) -> pb::EventType {
    pb::EventType {
        name: e.name.to_owned(),
        description: e.description.to_owned(),
        schema_json: e.schema.to_owned(),
        example_json: e.example.to_owned(),
    }
}

fn input(e: pb::EndpointInput) -> EndpointInput {
    EndpointInput { url: e.url, description: e.description, event_types: e.event_types, rate_limit: e.rate_limit }
}

#[tonic::async_trait]
impl Webhooks for WebhooksService {
    async fn list_event_types(&self, req: Request<pb::Empty>) -> R<pb::EventTypeList> {
        let p = principal(&req)?;
        let types = self.hooks.event_types(&p).map_err(status)?;
        Ok(Response::new(pb::EventTypeList { items: types.iter().map(event_type).collect() }))
    }

    async fn create_endpoint(&self, req: Request<pb::EndpointInput>) -> R<pb::CreatedEndpoint> {
        let p = principal(&req)?;
        let made = self.hooks.create_endpoint(&p, &input(req.into_inner())).await.map_err(status)?;
        Ok(Response::new(created(made)))
    }

    async fn get_endpoint(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Endpoint> {
        let p = principal(&req)?;
        let e = self.hooks.endpoint(&p, &req.get_ref().id).await.map_err(status)?;
        Ok(Response::new(endpoint(e)))
    }

    async fn list_endpoints(&self, req: Request<pb::ListRequest>) -> R<pb::EndpointPage> {
        let p = principal(&req)?;
        let page_req = page(req.into_inner().page)?;
        let found = self.hooks.endpoints(&p, &page_req).await.map_err(status)?;
        let info = page_info(&found);
        Ok(Response::new(pb::EndpointPage { items: found.items.into_iter().map(endpoint).collect(), page: info }))
    }

    async fn update_endpoint(&self, req: Request<pb::UpdateEndpointRequest>) -> R<pb::Endpoint> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let given = r.endpoint.map(input);
        let e =
            self.hooks.update_endpoint(&p, &r.id, given.as_ref(), &r.update_mask, r.enable).await.map_err(status)?;
        Ok(Response::new(endpoint(e)))
    }

    async fn delete_endpoint(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.hooks.delete_endpoint(&p, &req.get_ref().id).await.map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn rotate_secret(&self, req: Request<pb::GetByIdRequest>) -> R<pb::CreatedEndpoint> {
        let p = principal(&req)?;
        let made = self.hooks.rotate_secret(&p, &req.get_ref().id).await.map_err(status)?;
        Ok(Response::new(created(made)))
    }

    async fn send_test(&self, req: Request<pb::SendTestRequest>) -> R<pb::Message> {
        let p = principal(&req)?;
        let r = req.get_ref();
        let m = self.hooks.send_test(&p, &r.endpoint_id, &r.event_type).await.map_err(status)?;
        Ok(Response::new(message(m)))
    }

    async fn list_messages(&self, req: Request<pb::ListMessagesRequest>) -> R<pb::MessagePage> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let page_req = page(r.page)?;
        let found = self.hooks.messages(&p, &r.event_type, &page_req).await.map_err(status)?;
        let info = page_info(&found);
        Ok(Response::new(pb::MessagePage { items: found.items.into_iter().map(message).collect(), page: info }))
    }

    async fn list_attempts(&self, req: Request<pb::ListAttemptsRequest>) -> R<pb::AttemptPage> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let page_req = page(r.page)?;
        let found = self.hooks.attempts(&p, &r.endpoint_id, &r.message_id, &page_req).await.map_err(status)?;
        let info = page_info(&found);
        Ok(Response::new(pb::AttemptPage { items: found.items.into_iter().map(attempt).collect(), page: info }))
    }

    async fn replay(&self, req: Request<pb::ReplayRequest>) -> R<pb::ReplayResult> {
        let p = principal(&req)?;
        let r = req.get_ref();
        let since = r.since.as_ref().and_then(from_ts);
        let scheduled = self.hooks.replay(&p, &r.endpoint_id, &r.message_id, since).await.map_err(status)?;
        Ok(Response::new(pb::ReplayResult { scheduled: i64::try_from(scheduled).unwrap_or(i64::MAX) }))
    }
}
