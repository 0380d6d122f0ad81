//! `nexus.messaging.v1.WhatsApp` and messaging's `nexus.webhooks.v1.WebhookReceiver`
//! (`/webhooks/whatsapp`).

use std::sync::Arc;

use nexus_kernel::Error;
use nexus_platform::grpc::{status, ts};
use nexus_platform::identity::principal;
use nexus_proto::nexus::messaging::v1::{self as pb, whats_app_server::WhatsApp as WhatsAppRpc};
use nexus_proto::nexus::webhooks::v1::webhook_receiver_server::WebhookReceiver;
use nexus_proto::nexus::webhooks::v1::{DeliverWebhookRequest, DeliverWebhookResponse};
use tonic::{Request, Response};

use super::{R, page, page_info};
use crate::app::whatsapp::{self as app, ConnectInput, Simulated};
use crate::domain::consent::Purpose;
use crate::domain::templates::{Button, Category, Draft};
use crate::domain::whatsapp::{Choice, Content};

pub struct WhatsAppService {
    pub wa: Arc<app::WhatsApp>,
    pub default_rate: i32,
}

fn broadcast(b: crate::app::broadcasts::Broadcast) -> pb::Broadcast {
    let t = b.totals;
    pb::Broadcast {
        id: b.row.id.to_string(),
        number_id: b.row.number_id.to_string(),
        template_name: b.row.template_name,
        language: b.row.language,
        status: b.row.status,
        scheduled_at: Some(ts(b.row.scheduled_at)),
        rate: b.row.rate,
        totals: Some(pb::BroadcastTotals {
            total: i64::from(b.row.total),
            queued: t.queued,
            sending: t.sending,
            sent: t.sent,
            delivered: t.delivered,
            read: t.read,
            failed: t.failed,
            replied: t.replied,
            unknown: t.unknown,
            canceled: t.canceled,
        }),
        credits_held: b.row.held,
        created_at: Some(ts(b.row.created_at)),
        finished_at: b.row.finished_at.map(ts),
    }
}

fn number(n: app::Number) -> pb::WhatsAppNumber {
    pb::WhatsAppNumber {
        id: n.id.to_string(),
        waba_id: n.waba_id,
        phone_number_id: n.phone_number_id,
        display_phone_number: n.display_phone_number,
        provider: n.provider,
        quality_rating: n.quality_rating,
        messaging_tier: n.messaging_tier,
        created_at: Some(ts(n.created_at)),
        quality_checked_at: n.quality_checked_at.map(ts),
    }
}

fn message(m: app::Message, locale: nexus_kernel::Locale) -> pb::WhatsAppMessage {
    let error_message = match (m.error, m.error_code) {
        (Some(code), Some(n)) => nexus_i18n::error_message(locale, code, &[("code".into(), n.to_string())], 400),
        _ => String::new(),
    };
    pb::WhatsAppMessage {
        id: m.id.to_string(),
        number_id: m.number_id.to_string(),
        contact_id: m.contact_id.to_string(),
        direction: m.direction,
        r#type: m.kind,
        text: m.text,
        status: m.status,
        wamid: m.wamid,
        error_code: m.error_code.unwrap_or(0),
        error_message,
        provider: m.provider,
        created_at: Some(ts(m.created_at)),
        updated_at: Some(ts(m.updated_at)),
        content_json: m.content.get("payload").map(|p| p.to_string()).unwrap_or_default(),
        media_status: m.media_status,
        media_mime_type: m.media_mime_type,
        media_size: m.media_size,
        media_error: m.media_error,
    }
}

fn template(t: crate::app::templates::Template) -> pb::WhatsAppTemplate {
    pb::WhatsAppTemplate {
        id: t.id.to_string(),
        number_id: t.number_id.to_string(),
        name: t.name,
        language: t.language,
        category: t.category,
        status: t.status,
        reason: t.reason,
        body_params: t.body_params,
        components_json: t.components.to_string(),
        created_at: Some(ts(t.created_at)),
        updated_at: Some(ts(t.updated_at)),
    }
}

fn conversation(c: crate::app::inbox::Conversation) -> pb::Conversation {
    let r = c.row;
    pb::Conversation {
        number_id: r.number_id.to_string(),
        contact_id: r.contact_id.to_string(),
        contact_name: r.contact_name.unwrap_or_default(),
        unread: r.unread,
        assigned_to: c.assigned_to.unwrap_or_default(),
        resolved: r.resolved,
        bot_paused: r.bot_paused,
        last_inbound_at: Some(ts(r.last_inbound_at)),
        last_message_at: Some(ts(r.last_message_at)),
        last_message_text: r.last_text.unwrap_or_default(),
    }
}

fn inbox_event(e: crate::app::inbox::InboxEvent) -> pb::InboxEvent {
    pb::InboxEvent {
        kind: e.kind.to_owned(),
        number_id: e.number_id,
        contact_id: e.contact_id,
        message_id: e.message_id,
        direction: e.direction.to_owned(),
        status: e.status,
        at: e.at.map(ts),
    }
}

type InboxStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::InboxEvent, tonic::Status>> + Send>>;
type MediaStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::MediaChunk, tonic::Status>> + Send>>;

fn content(c: Option<pb::send_message_request::Content>) -> Result<Content, Error> {
    use pb::send_message_request::Content as C;
    let choice = |id: String, title: String, description: String| Choice { id, title, description };
    Ok(match c.ok_or_else(|| Error::invalid("messaging.whatsapp_content_required"))? {
        C::Text(t) => Content::Text(t),
        C::Template(t) => Content::Template { name: t.name, language: t.language, params: t.body_params },
        C::Media(m) => Content::Media { kind: m.kind, link: m.link, caption: m.caption },
        C::Interactive(i) => Content::Interactive {
            body: i.body,
            buttons: i.buttons.into_iter().map(|b| choice(b.id, b.title, String::new())).collect(),
            list_button: i.list_button,
            rows: i.rows.into_iter().map(|r| choice(r.id, r.title, r.description)).collect(),
        },
    })
}

#[tonic::async_trait]
impl WhatsAppRpc for WhatsAppService {
    async fn connect_number(&self, req: Request<pb::ConnectNumberRequest>) -> R<pb::WhatsAppNumber> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let input = ConnectInput {
            waba_id: &r.waba_id,
            phone_number_id: &r.phone_number_id,
            display_phone_number: &r.display_phone_number,
            access_token: &r.access_token,
        };
        let n = self.wa.connect_number(&p, &input).await.map_err(status)?;
        Ok(Response::new(number(n)))
    }

    async fn list_numbers(&self, req: Request<pb::Empty>) -> R<pb::WhatsAppNumberList> {
        let p = principal(&req)?;
        let numbers = self.wa.numbers(&p).await.map_err(status)?;
        Ok(Response::new(pb::WhatsAppNumberList { numbers: numbers.into_iter().map(number).collect() }))
    }

    async fn get_number(&self, req: Request<pb::GetByIdRequest>) -> R<pb::WhatsAppNumber> {
        let p = principal(&req)?;
        let n = self.wa.number(&p, &req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(number(n)))
    }

    async fn send_message(&self, req: Request<pb::SendMessageRequest>) -> R<pb::WhatsAppMessage> {
        let p = principal(&req)?;
        let locale = p.locale.unwrap_or_default();
        let r = req.into_inner();
        let purpose = if r.purpose.trim().is_empty() {
            Purpose::Transactional
        } else {
            r.purpose.trim().parse::<Purpose>().map_err(status)?
        };
        let c = content(r.content).map_err(status)?;
        let m = self.wa.send(&p, &r.number_id, &r.contact_id, &c, purpose).await.map_err(status)?;
        Ok(Response::new(message(m, locale)))
    }

    async fn list_whats_app_messages(
        &self,
        req: Request<pb::ListWhatsAppMessagesRequest>,
    ) -> R<pb::WhatsAppMessageList> {
        let p = principal(&req)?;
        let locale = p.locale.unwrap_or_default();
        let r = req.into_inner();
        let pg = page(r.page)?;
        let found = self.wa.messages(&p, &r.contact_id, &pg).await.map_err(status)?;
        Ok(Response::new(pb::WhatsAppMessageList {
            page: page_info(&found),
            messages: found.items.into_iter().map(|m| message(m, locale)).collect(),
        }))
    }

    async fn simulate(&self, req: Request<pb::SimulateRequest>) -> R<pb::SimulateResponse> {
        use pb::simulate_request::Event;
        let p = principal(&req)?;
        let r = req.into_inner();
        let event = match r.event {
            Some(Event::Inbound(i)) => Simulated::Inbound {
                from: i.from,
                name: i.name,
                text: i.text,
                message_id: i.message_id,
                reply_id: i.reply_id,
                media: i.media.map(|m| crate::app::whatsapp::SimulatedMedia {
                    kind: m.kind,
                    mime_type: m.mime_type,
                    data: m.data,
                }),
            },
            Some(Event::Status(s)) => Simulated::Status {
                wamid: s.wamid,
                status: s.status,
                error_code: (s.error_code != 0).then_some(s.error_code),
            },
            None => return Err(status(Error::invalid("messaging.whatsapp_content_required"))),
        };
        let (http_status, message_id) = self.wa.simulate(&p, &r.number_id, event).await.map_err(status)?;
        Ok(Response::new(pb::SimulateResponse { http_status, message_id }))
    }

    async fn create_template(&self, req: Request<pb::TemplateInput>) -> R<pb::WhatsAppTemplate> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let draft = Draft {
            name: r.name.trim().to_owned(),
            language: r.language.trim().to_owned(),
            category: r.category.trim().parse::<Category>().map_err(status)?,
            header: r.header,
            body: r.body,
            footer: r.footer,
            buttons: r.buttons.into_iter().map(|b| Button { kind: b.r#type, text: b.text, url: b.url }).collect(),
            body_examples: r.body_examples,
        };
        let t = self.wa.create_template(&p, &r.number_id, &draft).await.map_err(status)?;
        Ok(Response::new(template(t)))
    }

    async fn submit_template(&self, req: Request<pb::GetByIdRequest>) -> R<pb::WhatsAppTemplate> {
        let p = principal(&req)?;
        let t = self.wa.submit_template(&p, &req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(template(t)))
    }

    async fn sync_templates(&self, req: Request<pb::TemplatesRequest>) -> R<pb::WhatsAppTemplateList> {
        let p = principal(&req)?;
        let ts = self.wa.sync_templates(&p, &req.into_inner().number_id).await.map_err(status)?;
        Ok(Response::new(pb::WhatsAppTemplateList { templates: ts.into_iter().map(template).collect() }))
    }

    async fn list_templates(&self, req: Request<pb::TemplatesRequest>) -> R<pb::WhatsAppTemplateList> {
        let p = principal(&req)?;
        let ts = self.wa.templates(&p, &req.into_inner().number_id).await.map_err(status)?;
        Ok(Response::new(pb::WhatsAppTemplateList { templates: ts.into_iter().map(template).collect() }))
    }

    async fn get_template(&self, req: Request<pb::GetByIdRequest>) -> R<pb::WhatsAppTemplate> {
        let p = principal(&req)?;
        let t = self.wa.template(&p, &req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(template(t)))
    }

    async fn list_broadcasts(&self, req: Request<pb::ListRequest>) -> R<pb::BroadcastPage> {
        let p = principal(&req)?;
        let pg = page(req.into_inner().page)?;
        let found = self.wa.broadcasts(&p, &pg).await.map_err(status)?;
        Ok(Response::new(pb::BroadcastPage {
            page: page_info(&found),
            broadcasts: found.items.into_iter().map(broadcast).collect(),
        }))
    }

    async fn get_bot(&self, req: Request<pb::TemplatesRequest>) -> R<pb::WhatsAppBot> {
        let p = principal(&req)?;
        let number_id = req.into_inner().number_id;
        let bot = self.wa.bot(&p, &number_id).await.map_err(status)?;
        let bot = bot.ok_or_else(|| status(Error::not_found("messaging.whatsapp_bot_not_found")))?;
        Ok(Response::new(pb::WhatsAppBot {
            number_id,
            config_json: bot.config.0.to_string(),
            enabled: bot.enabled,
            updated_at: Some(ts(bot.updated_at)),
        }))
    }

    async fn list_conversations(&self, req: Request<pb::ListConversationsRequest>) -> R<pb::ConversationPage> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let pg = page(r.page)?;
        let found = self.wa.conversations(&p, &r.filter, &r.number_id, &pg).await.map_err(status)?;
        Ok(Response::new(pb::ConversationPage {
            page: page_info(&found),
            conversations: found.items.into_iter().map(conversation).collect(),
        }))
    }

    async fn assign_conversation(&self, req: Request<pb::AssignConversationRequest>) -> R<pb::Conversation> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let c = self.wa.assign(&p, &r.number_id, &r.contact_id, &r.user_id).await.map_err(status)?;
        Ok(Response::new(conversation(c)))
    }

    async fn resolve_conversation(&self, req: Request<pb::ResolveConversationRequest>) -> R<pb::Conversation> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let c = self.wa.resolve(&p, &r.number_id, &r.contact_id, r.resolved).await.map_err(status)?;
        Ok(Response::new(conversation(c)))
    }

    async fn mark_conversation_read(&self, req: Request<pb::ConversationRequest>) -> R<pb::Conversation> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let c = self.wa.mark_read(&p, &r.number_id, &r.contact_id).await.map_err(status)?;
        Ok(Response::new(conversation(c)))
    }

    type WatchInboxStream = InboxStream;
    type OpenMessageMediaStream = MediaStream;

    async fn open_message_media(&self, req: Request<pb::GetByIdRequest>) -> R<Self::OpenMessageMediaStream> {
        use futures::StreamExt as _;
        let p = principal(&req)?;
        let f = self.wa.open_media(&p, &req.get_ref().id).await.map_err(status)?;
        let head = pb::MediaHead { content_type: f.content_type, size: f.size, filename: f.filename };
        let first = futures::stream::once(async move { Ok(pb::MediaChunk { head: Some(head), data: Vec::new() }) });
        let body = f.body.map(|chunk| match chunk {
            Ok(data) => Ok(pb::MediaChunk { head: None, data: data.to_vec() }),
            Err(e) => {
                tracing::warn!(error = %e, "reading stored media failed");
                Err(status(Error::unavailable("service.unavailable")))
            }
        });
        Ok(Response::new(first.chain(body).boxed()))
    }

    async fn watch_inbox(&self, req: Request<pb::Empty>) -> R<Self::WatchInboxStream> {
        use futures::StreamExt as _;
        let p = principal(&req)?;
        let events = self.wa.watch_inbox(&p).await.map_err(status)?;
        Ok(Response::new(events.map(|e| Ok(inbox_event(e))).boxed()))
    }

    async fn create_broadcast(&self, req: Request<pb::BroadcastInput>) -> R<pb::Broadcast> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let input = crate::app::broadcasts::BroadcastInput {
            number_id: &r.number_id,
            segment_id: &r.segment_id,
            template_name: &r.template_name,
            language: &r.language,
            params: r.params.clone(),
            scheduled_at: r.scheduled_at.as_ref().and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0)),
            rate: r.rate,
        };
        let b = self.wa.create_broadcast(&p, &input, self.default_rate).await.map_err(status)?;
        Ok(Response::new(broadcast(b)))
    }

    async fn get_broadcast(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Broadcast> {
        let p = principal(&req)?;
        let b = self.wa.broadcast(&p, &req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(broadcast(b)))
    }

    async fn pause_broadcast(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Broadcast> {
        let p = principal(&req)?;
        let b = self.wa.control_broadcast(&p, &req.into_inner().id, "pause").await.map_err(status)?;
        Ok(Response::new(broadcast(b)))
    }

    async fn resume_broadcast(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Broadcast> {
        let p = principal(&req)?;
        let b = self.wa.control_broadcast(&p, &req.into_inner().id, "resume").await.map_err(status)?;
        Ok(Response::new(broadcast(b)))
    }

    async fn cancel_broadcast(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Broadcast> {
        let p = principal(&req)?;
        let b = self.wa.control_broadcast(&p, &req.into_inner().id, "cancel").await.map_err(status)?;
        Ok(Response::new(broadcast(b)))
    }

    async fn list_broadcast_recipients(
        &self,
        req: Request<pb::BroadcastRecipientsRequest>,
    ) -> R<pb::BroadcastRecipientList> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let rows = self.wa.broadcast_recipients(&p, &r.broadcast_id, &r.after, r.limit).await.map_err(status)?;
        Ok(Response::new(pb::BroadcastRecipientList {
            recipients: rows
                .into_iter()
                .map(|x| pb::BroadcastRecipient {
                    contact_id: x.contact_id.to_string(),
                    state: x.state,
                    attempts: x.attempts,
                    error_code: x.error_code.unwrap_or(0),
                    message_id: x.message_id.map(|m| m.to_string()).unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn set_bot(&self, req: Request<pb::SetBotRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        let r = req.into_inner();
        self.wa.set_bot(&p, &r.number_id, &r.config_json, r.enabled).await.map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn resume_bot(&self, req: Request<pb::ResumeBotRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        let r = req.into_inner();
        self.wa.resume_bot(&p, &r.number_id, &r.contact_id).await.map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn delete_template(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.wa.delete_template(&p, &req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn refresh_number(&self, req: Request<pb::GetByIdRequest>) -> R<pb::WhatsAppNumber> {
        let p = principal(&req)?;
        let n = self.wa.refresh_number(&p, &req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(number(n)))
    }

    async fn disconnect_number(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.wa.disconnect_number(&p, &req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn delete_bot(&self, req: Request<pb::TemplatesRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.wa.delete_bot(&p, &req.into_inner().number_id).await.map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn draft_template_text(&self, req: Request<pb::DraftTemplateTextRequest>) -> R<pb::DraftedTemplateText> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let category = r.category.trim().parse::<Category>().map_err(status)?;
        let brief = crate::app::templates::TextBrief {
            purpose: &r.purpose,
            category,
            language: &r.language,
            idempotency_key: &r.idempotency_key,
        };
        let t = self.wa.draft_template_text(&p, &r.number_id, &brief).await.map_err(status)?;
        Ok(Response::new(pb::DraftedTemplateText {
            body: t.body,
            body_examples: t.body_examples,
            language: r.language,
            category: category.as_str().to_owned(),
            generation_id: t.generation_id,
            credits: t.credits,
            provider: t.provider,
        }))
    }
}

/// Meta's webhooks, handed over raw by the gateway.
pub struct Webhooks {
    pub wa: Arc<app::WhatsApp>,
}

#[tonic::async_trait]
impl WebhookReceiver for Webhooks {
    async fn deliver(&self, req: Request<DeliverWebhookRequest>) -> R<DeliverWebhookResponse> {
        let r = req.into_inner();
        if r.provider != "whatsapp" {
            return Err(status(Error::not_found("request.not_found")));
        }
        let signature = r.headers.get("x-hub-signature-256").map(String::as_str);
        let answer = self.wa.deliver_webhook(&r.method, &r.query, signature, &r.body).await.map_err(status)?;
        Ok(Response::new(DeliverWebhookResponse {
            status: answer.status,
            content_type: answer.content_type.to_owned(),
            body: answer.body,
        }))
    }
}
