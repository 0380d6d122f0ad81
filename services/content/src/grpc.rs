//! gRPC adapters: proto <-> app views and calls into the use cases, for `nexus.content.v1.Content`
//! and the image providers' `nexus.webhooks.v1.WebhookReceiver`.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use nexus_kernel::{Error, Locale};
use nexus_platform::grpc::{status, ts};
use nexus_platform::identity::{Principal, principal};
use nexus_proto::common::{PageInfo, TextDirection};
use nexus_proto::nexus::content::v1::{self as pb, content_server::Content};
use nexus_proto::nexus::webhooks::v1::webhook_receiver_server::WebhookReceiver;
use nexus_proto::nexus::webhooks::v1::{DeliverWebhookRequest, DeliverWebhookResponse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::app::generations::Prepared;
use crate::app::images::ImageRequest;
use crate::app::pages::LeadSubmission;
use crate::app::webhooks::Delivery;
use crate::app::{App, caller_locale};
use crate::domain::agents::{Agent, AgentSpec, Message};
use crate::domain::generation::{Brief, Generation, GenerationInput, RawBrief};
use crate::domain::images::Image;
use crate::domain::pages::{LeadInput, MagicPage};
use crate::domain::translation::TranslationInput;
use nexus_platform::grpc::page_request;

pub struct ContentService {
    pub app: Arc<App>,
}

type R<T> = Result<Response<T>, Status>;

fn dir(l: &str) -> i32 {
    match l.parse::<Locale>().map(Locale::direction) {
        Ok(nexus_kernel::TextDirection::Rtl) => TextDirection::Rtl as i32,
        _ => TextDirection::Ltr as i32,
    }
}

fn usage(u: crate::domain::generation::Usage) -> pb::Usage {
    pb::Usage { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens }
}

fn generation(r: Generation) -> pb::Generation {
    pb::Generation {
        id: crate::domain::GenerationId::from_uuid(r.id).to_string(),
        kind: r.kind,
        platform: r.platform.unwrap_or_default(),
        dir: dir(&r.language),
        language: r.language,
        tone: r.tone,
        status: r.status,
        provider: r.provider,
        model: r.model,
        prompt_version: r.prompt_version,
        variants: r.variants.into_iter().map(|v| pb::Variant { title: v.title, body: v.body }).collect(),
        usage: Some(usage(r.usage)),
        credits: r.credits,
        title_limit: u32::try_from(r.title_limit).unwrap_or(0),
        body_limit: u32::try_from(r.body_limit).unwrap_or(0),
        input_json: r.input_json,
        created_at: Some(ts(r.created_at)),
    }
}

fn page(r: MagicPage) -> pb::Page {
    pb::Page {
        id: crate::domain::PageId::from_uuid(r.id).to_string(),
        title: r.title,
        dir: dir(&r.language),
        language: r.language,
        status: r.status,
        slug: r.slug.unwrap_or_default(),
        current_version: u32::try_from(r.current_version).unwrap_or(0),
        published_version: r.published_version.and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
        sections_json: serde_json::to_string(&r.sections).unwrap_or_default(),
        views: r.views,
        leads: r.leads,
        provider: r.provider,
        created_at: Some(ts(r.created_at)),
        updated_at: Some(ts(r.updated_at)),
        published_at: r.published_at.map(ts),
    }
}

fn image(r: Image) -> pb::Image {
    pb::Image {
        id: crate::domain::ImageId::from_uuid(r.id).to_string(),
        purpose: r.purpose,
        status: r.status,
        provider: r.provider,
        content_type: r.content_type,
        width: u32::try_from(r.width).unwrap_or(0),
        height: u32::try_from(r.height).unwrap_or(0),
        size_bytes: r.size_bytes,
        prompt: r.prompt,
        created_at: Some(ts(r.created_at)),
    }
}

fn agent(r: Agent) -> pb::Agent {
    pb::Agent {
        id: crate::domain::AgentId::from_uuid(r.id).to_string(),
        name: r.spec.name,
        instructions: r.spec.instructions,
        dir: dir(&r.language),
        language: r.language,
        knowledge: r.spec.knowledge,
        created_at: Some(ts(r.created_at)),
        updated_at: Some(ts(r.updated_at)),
    }
}

fn message(m: Message) -> pb::ChatMessage {
    pb::ChatMessage { role: m.role, content: m.content, created_at: Some(ts(m.created_at)) }
}

fn agent_spec(p: &Principal, a: Option<pb::AgentInput>) -> Result<AgentSpec, Error> {
    let a = a.unwrap_or_default();
    AgentSpec::parse(&a.name, &a.instructions, &a.language, &a.knowledge, caller_locale(Some(p)))
}

fn generation_input(app: &App, p: &Principal, r: &pb::GenerateRequest) -> Result<GenerationInput, Error> {
    let brief = Brief::parse(
        RawBrief {
            product: &r.product,
            description: &r.description,
            audience: &r.audience,
            facts: &r.facts,
            call_to_action: &r.call_to_action,
            tone: &r.tone,
            language: &r.language,
        },
        caller_locale(Some(p)),
    )?;
    GenerationInput::new(&r.kind, &r.platform, r.variants, r.max_tokens, brief, app.cfg.generation.max_max_tokens)
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::GenerateEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Content for ContentService {
    async fn generate(&self, req: Request<pb::GenerateRequest>) -> R<pb::Generation> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let input = generation_input(&self.app, &p, &r).map_err(status)?;
        let row = match self.app.prepare_generation(&p, input, &r.idempotency_key).await.map_err(status)? {
            Prepared::Done(row) => row,
            Prepared::Run(job) => self.app.run_generation(job, None).await.map_err(status)?,
        };
        Ok(Response::new(generation(row)))
    }

    type GenerateStreamStream = EventStream;

    async fn generate_stream(&self, req: Request<pb::GenerateRequest>) -> R<Self::GenerateStreamStream> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let input = generation_input(&self.app, &p, &r).map_err(status)?;
        // Validation and the credit hold happen before the stream opens, so the caller gets
        // those errors as the RPC's status (and the gateway as an HTTP status, not an event).
        let prepared = self.app.prepare_generation(&p, input, &r.idempotency_key).await.map_err(status)?;
        let (out_tx, out_rx) = mpsc::channel::<Result<pb::GenerateEvent, Status>>(64);
        let job = match prepared {
            Prepared::Done(row) => {
                let _ = out_tx
                    .send(Ok(pb::GenerateEvent { event: Some(pb::generate_event::Event::Done(generation(row))) }))
                    .await;
                return Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))));
            }
            Prepared::Run(job) => job,
        };
        let (delta_tx, mut delta_rx) = mpsc::channel(64);
        let forward = out_tx.clone();
        // Deltas flow to the caller; when the caller hangs up, the forwarder stops, the delta
        // channel closes and the generator stops with what it produced.
        tokio::spawn(async move {
            while let Some(d) = delta_rx.recv().await {
                let d: crate::app::generator::Delta = d;
                let ev = pb::GenerateEvent {
                    event: Some(pb::generate_event::Event::Delta(pb::Delta {
                        variant: d.variant,
                        field: d.field.to_owned(),
                        text: d.text,
                    })),
                };
                if forward.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
        });
        let app = self.app.clone();
        tokio::spawn(nexus_platform::RequestContext::current().scope(async move {
            let result = app.run_generation(job, Some(delta_tx)).await;
            let last = match result {
                Ok(row) => Ok(pb::GenerateEvent { event: Some(pb::generate_event::Event::Done(generation(row))) }),
                Err(e) => Err(status(e)),
            };
            let _ = out_tx.send(last).await;
        }));
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    async fn translate(&self, req: Request<pb::TranslateRequest>) -> R<pb::Translation> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let input = TranslationInput::parse(&r.texts, &r.source_language, &r.target_languages).map_err(status)?;
        let out = self.app.translate(&p, input).await.map_err(status)?;
        Ok(Response::new(pb::Translation {
            provider: out.provider.to_owned(),
            model: out.model,
            translations: out
                .translations
                .into_iter()
                .map(|t| pb::TranslatedTexts {
                    language: t.language.code().to_owned(),
                    dir: dir(t.language.code()),
                    texts: t.texts,
                })
                .collect(),
            usage: Some(usage(out.usage)),
            credits: out.credits,
        }))
    }

    async fn get_generation(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Generation> {
        let p = principal(&req)?;
        let row = self.app.get_generation(&p, &req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(generation(row)))
    }

    async fn list_generations(&self, req: Request<pb::ListRequest>) -> R<pb::GenerationPage> {
        let p = principal(&req)?;
        let page = page_request(req.into_inner().page)?;
        let result = self.app.list_generations(&p, &page).await.map_err(status)?;
        Ok(Response::new(pb::GenerationPage {
            items: result.items.into_iter().map(generation).collect(),
            page: Some(PageInfo { next_cursor: result.next_cursor.unwrap_or_default() }),
        }))
    }

    async fn create_page(&self, req: Request<pb::CreatePageRequest>) -> R<pb::Page> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let brief = self
            .app
            .page_brief(
                &p,
                RawBrief {
                    product: &r.product,
                    description: &r.description,
                    audience: &r.audience,
                    facts: &r.facts,
                    call_to_action: &r.call_to_action,
                    tone: &r.tone,
                    language: &r.language,
                },
            )
            .map_err(status)?;
        let row = self.app.create_page(&p, &r.title, brief, &r.idempotency_key).await.map_err(status)?;
        Ok(Response::new(page(row)))
    }

    async fn get_page(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Page> {
        let p = principal(&req)?;
        Ok(Response::new(page(self.app.get_page(&p, &req.into_inner().id).await.map_err(status)?)))
    }

    async fn list_pages(&self, req: Request<pb::ListRequest>) -> R<pb::PageList> {
        let p = principal(&req)?;
        let request = page_request(req.into_inner().page)?;
        let result = self.app.list_pages(&p, &request).await.map_err(status)?;
        Ok(Response::new(pb::PageList {
            items: result.items.into_iter().map(page).collect(),
            page: Some(PageInfo { next_cursor: result.next_cursor.unwrap_or_default() }),
        }))
    }

    async fn list_page_versions(&self, req: Request<pb::GetByIdRequest>) -> R<pb::PageVersionList> {
        let p = principal(&req)?;
        let rows = self.app.list_versions(&p, &req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::PageVersionList {
            items: rows
                .into_iter()
                .map(|v| pb::PageVersion {
                    version: u32::try_from(v.version).unwrap_or(0),
                    change: v.change,
                    sections_json: serde_json::to_string(&v.sections).unwrap_or_default(),
                    created_at: Some(ts(v.created_at)),
                })
                .collect(),
        }))
    }

    async fn update_section(&self, req: Request<pb::UpdateSectionRequest>) -> R<pb::Page> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let row = self
            .app
            .update_section(&p, &r.page_id, &r.section, &r.content_json, r.base_version)
            .await
            .map_err(status)?;
        Ok(Response::new(page(row)))
    }

    async fn regenerate_section(&self, req: Request<pb::RegenerateSectionRequest>) -> R<pb::Page> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let row = self.app.regenerate_section(&p, &r.page_id, &r.section, &r.idempotency_key).await.map_err(status)?;
        Ok(Response::new(page(row)))
    }

    async fn publish_page(&self, req: Request<pb::PublishPageRequest>) -> R<pb::Page> {
        let p = principal(&req)?;
        let r = req.into_inner();
        Ok(Response::new(page(self.app.publish(&p, &r.id, &r.slug).await.map_err(status)?)))
    }

    async fn unpublish_page(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Page> {
        let p = principal(&req)?;
        Ok(Response::new(page(self.app.unpublish(&p, &req.into_inner().id).await.map_err(status)?)))
    }

    async fn delete_page(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.app.delete_page(&p, &req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    // Public: the gateway calls these without a user token; the slug is the only key.
    async fn get_published_page(&self, req: Request<pb::GetPublishedPageRequest>) -> R<pb::PublishedPage> {
        let r = req.into_inner();
        let published = self.app.published_page(&r.slug, r.count_view, r.thanks).await.map_err(status)?;
        Ok(Response::new(pb::PublishedPage {
            html: published.html,
            language: published.language.code().to_owned(),
            etag: published.etag,
        }))
    }

    async fn get_published_asset(&self, req: Request<pb::GetPublishedAssetRequest>) -> R<pb::Asset> {
        let r = req.into_inner();
        let (content_type, data) = self.app.published_asset(&r.slug, &r.asset_id).await.map_err(status)?;
        let etag = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(&data)[..12]);
        Ok(Response::new(pb::Asset { content_type, data, etag }))
    }

    async fn capture_lead(&self, req: Request<pb::CaptureLeadRequest>) -> R<pb::CaptureLeadResponse> {
        let r = req.into_inner();
        let sub = LeadSubmission {
            lead: LeadInput { name: r.name, email: r.email, phone: r.phone, message: r.message },
            honeypot: r.website,
            consent: r.consent,
            client_ip: r.client_ip,
        };
        let language = self.app.capture_lead(&r.slug, sub).await.map_err(status)?;
        Ok(Response::new(pb::CaptureLeadResponse { accepted: true, language: language.code().to_owned() }))
    }

    async fn create_image(&self, req: Request<pb::CreateImageRequest>) -> R<pb::Image> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let ask = ImageRequest {
            purpose: r.purpose,
            prompt: r.prompt,
            caption: r.caption,
            language: r.language,
            width: r.width,
            height: r.height,
        };
        Ok(Response::new(image(self.app.create_image(&p, ask, &r.idempotency_key).await.map_err(status)?)))
    }

    async fn get_image(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Image> {
        let p = principal(&req)?;
        Ok(Response::new(image(self.app.get_image(&p, &req.into_inner().id).await.map_err(status)?)))
    }

    async fn read_image(&self, req: Request<pb::GetByIdRequest>) -> R<pb::ImageFile> {
        let p = principal(&req)?;
        let f = self.app.read_image(&p, &req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::ImageFile {
            content_type: f.content_type,
            data: f.data,
            width: u32::try_from(f.image.width).unwrap_or(0),
            height: u32::try_from(f.image.height).unwrap_or(0),
            prompt: f.image.prompt,
        }))
    }

    async fn create_agent(&self, req: Request<pb::AgentInput>) -> R<pb::Agent> {
        let p = principal(&req)?;
        let spec = agent_spec(&p, Some(req.into_inner())).map_err(status)?;
        Ok(Response::new(agent(self.app.create_agent(&p, spec).await.map_err(status)?)))
    }

    async fn get_agent(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Agent> {
        let p = principal(&req)?;
        Ok(Response::new(agent(self.app.get_agent(&p, &req.into_inner().id).await.map_err(status)?)))
    }

    async fn list_agents(&self, req: Request<pb::ListRequest>) -> R<pb::AgentList> {
        let p = principal(&req)?;
        let page = page_request(req.into_inner().page)?;
        let result = self.app.list_agents(&p, &page).await.map_err(status)?;
        Ok(Response::new(pb::AgentList {
            items: result.items.into_iter().map(agent).collect(),
            page: Some(PageInfo { next_cursor: result.next_cursor.unwrap_or_default() }),
        }))
    }

    async fn update_agent(&self, req: Request<pb::UpdateAgentRequest>) -> R<pb::Agent> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let spec = agent_spec(&p, r.agent).map_err(status)?;
        Ok(Response::new(agent(self.app.update_agent(&p, &r.id, spec).await.map_err(status)?)))
    }

    async fn delete_agent(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.app.delete_agent(&p, &req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn chat(&self, req: Request<pb::ChatRequest>) -> R<pb::ChatReply> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let reply =
            self.app.chat(&p, &r.agent_id, &r.contact_id, &r.message, &r.idempotency_key).await.map_err(status)?;
        Ok(Response::new(pb::ChatReply {
            conversation_id: crate::domain::ConversationId::from_uuid(reply.conversation_id).to_string(),
            reply: Some(message(reply.message)),
            provider: self.app.text.provider().to_owned(),
            credits: reply.credits,
            usage: Some(usage(reply.usage)),
            dir: dir(&reply.language),
        }))
    }

    async fn list_messages(&self, req: Request<pb::ListMessagesRequest>) -> R<pb::MessageList> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let rows = self.app.messages(&p, &r.agent_id, &r.contact_id, r.limit).await.map_err(status)?;
        Ok(Response::new(pb::MessageList { items: rows.into_iter().map(message).collect() }))
    }
}

pub struct Webhooks {
    pub app: Arc<App>,
}

#[tonic::async_trait]
impl WebhookReceiver for Webhooks {
    async fn deliver(&self, req: Request<DeliverWebhookRequest>) -> R<DeliverWebhookResponse> {
        let r = req.into_inner();
        let delivery =
            Delivery { provider: &r.provider, method: &r.method, headers: &r.headers, query: &r.query, body: &r.body };
        let answer = self.app.deliver_webhook(delivery).await.map_err(status)?;
        Ok(Response::new(DeliverWebhookResponse {
            status: answer.status,
            content_type: "application/json".into(),
            body: serde_json::to_vec(&answer.body).unwrap_or_default(),
        }))
    }
}
