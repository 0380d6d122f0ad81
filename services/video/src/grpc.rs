//! gRPC adapters: proto <-> app views and calls into the use cases, for `nexus.video.v1.Video`
//! and D-ID's `nexus.webhooks.v1.WebhookReceiver`.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;

use nexus_kernel::Locale;
use nexus_platform::grpc::{status, ts};
use nexus_platform::identity::principal;
use nexus_proto::common::{PageInfo, TextDirection};
use nexus_proto::nexus::video::v1::{self as pb, video_server::Video as VideoApi};
use nexus_proto::nexus::webhooks::v1::webhook_receiver_server::WebhookReceiver;
use nexus_proto::nexus::webhooks::v1::{DeliverWebhookRequest, DeliverWebhookResponse};
use tonic::{Request, Response, Status};

use crate::app::{App, caller_locale};
use crate::domain::links::ByteRange;
use crate::domain::{Video, VideoId, VideoInput};
use nexus_platform::grpc::page_request;

pub struct VideoService {
    pub app: Arc<App>,
}

type R<T> = Result<Response<T>, Status>;

fn dir(l: &str) -> i32 {
    match l.parse::<Locale>().map(Locale::direction) {
        Ok(nexus_kernel::TextDirection::Rtl) => TextDirection::Rtl as i32,
        _ => TextDirection::Ltr as i32,
    }
}

/// A video, its failure explained in `locale`.
impl VideoService {
    /// A video as answered, with a fresh thumbnail link.
    fn record(&self, v: Video, locale: Locale) -> pb::VideoRecord {
        let thumbnail = self.app.thumbnail_url(&v);
        video(v, thumbnail, locale)
    }
}

fn video(v: Video, thumbnail_url: String, locale: Locale) -> pb::VideoRecord {
    let error_message = if v.error_code.is_empty() {
        String::new()
    } else {
        nexus_i18n::error_message(locale, &v.error_code, &[], 422)
    };
    pb::VideoRecord {
        id: VideoId::from_uuid(v.id).to_string(),
        title: v.title,
        status: v.status,
        dir: dir(&v.language),
        language: v.language,
        aspect_ratio: v.aspect_ratio,
        captions: v.captions,
        avatar_url: v.avatar_url,
        voice_id: v.voice_id,
        voice_provider: v.voice_provider,
        provider: v.provider,
        characters: v.characters,
        characters_billed: v.characters_billed,
        estimated_credits: v.estimated_credits,
        credits_charged: v.credits_charged,
        duration_seconds: v.duration_seconds,
        size_bytes: v.size_bytes,
        error_code: v.error_code,
        error_message,
        created_at: Some(ts(v.created_at)),
        updated_at: Some(ts(v.updated_at)),
        finished_at: v.finished_at.map(ts),
        width: v.width,
        height: v.height,
        thumbnail_url,
        music: v.music,
    }
}

fn avatar(a: crate::repo::avatars::Avatar) -> pb::AvatarRecord {
    pb::AvatarRecord {
        id: crate::domain::avatars::AvatarId::from_uuid(a.id).to_string(),
        name: a.name,
        content_type: a.content_type,
        width: u32::try_from(a.width).unwrap_or(0),
        height: u32::try_from(a.height).unwrap_or(0),
        size_bytes: a.size_bytes,
        created_at: Some(ts(a.created_at)),
    }
}

fn input(r: &pb::CreateVideoRequest) -> VideoInput {
    VideoInput {
        script: r.script.clone(),
        avatar_url: r.avatar_url.clone(),
        voice_id: r.voice_id.clone(),
        language: r.language.clone(),
        aspect_ratio: r.aspect_ratio.clone(),
        captions: r.captions,
        title: r.title.clone(),
        topic: r.topic.clone(),
        brief: r.brief.clone(),
        music: r.music.clone(),
    }
}

#[tonic::async_trait]
impl VideoApi for VideoService {
    async fn estimate_video(&self, req: Request<pb::CreateVideoRequest>) -> R<pb::Estimate> {
        let p = principal(&req)?;
        let e = self.app.estimate(&p, &input(req.get_ref())).await.map_err(status)?;
        Ok(Response::new(pb::Estimate {
            characters: e.estimate.characters,
            estimated_seconds: e.estimate.seconds,
            credits: e.credits,
            minutes: e.estimate.minutes,
            voice_provider: e.voice_provider.into(),
            render_provider: e.render_provider.into(),
        }))
    }

    async fn create_video(&self, req: Request<pb::CreateVideoRequest>) -> R<pb::VideoRecord> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let v = self.app.create_video(&p, &input(&r), &r.idempotency_key).await.map_err(status)?;
        Ok(Response::new(self.record(v, caller_locale(Some(&p)))))
    }

    async fn get_video(&self, req: Request<pb::GetByIdRequest>) -> R<pb::VideoRecord> {
        let p = principal(&req)?;
        let v = self.app.get_video(&p, &req.get_ref().id).await.map_err(status)?;
        Ok(Response::new(self.record(v, caller_locale(Some(&p)))))
    }

    async fn list_videos(&self, req: Request<pb::ListRequest>) -> R<pb::VideoPage> {
        let p = principal(&req)?;
        let page = page_request(req.into_inner().page)?;
        let result = self.app.list_videos(&p, &page).await.map_err(status)?;
        let locale = caller_locale(Some(&p));
        Ok(Response::new(pb::VideoPage {
            items: result.items.into_iter().map(|v| self.record(v, locale)).collect(),
            page: Some(PageInfo { next_cursor: result.next_cursor.unwrap_or_default() }),
        }))
    }

    async fn cancel_video(&self, req: Request<pb::GetByIdRequest>) -> R<pb::VideoRecord> {
        let p = principal(&req)?;
        let v = self.app.cancel_video(&p, &req.get_ref().id).await.map_err(status)?;
        Ok(Response::new(self.record(v, caller_locale(Some(&p)))))
    }

    async fn list_transitions(&self, req: Request<pb::GetByIdRequest>) -> R<pb::TransitionList> {
        let p = principal(&req)?;
        let rows = self.app.transitions(&p, &req.get_ref().id).await.map_err(status)?;
        Ok(Response::new(pb::TransitionList {
            items: rows
                .into_iter()
                .map(|t| pb::Transition { from_status: t.from, to_status: t.to, reason: t.reason, at: Some(ts(t.at)) })
                .collect(),
        }))
    }

    async fn create_download_link(&self, req: Request<pb::GetByIdRequest>) -> R<pb::DownloadLink> {
        let p = principal(&req)?;
        let link = self.app.create_download_link(&p, &req.get_ref().id).await.map_err(status)?;
        Ok(Response::new(pb::DownloadLink { url: link.url, token: link.token, expires_at: Some(ts(link.expires_at)) }))
    }

    type OpenDownloadStream =
        Pin<Box<dyn Stream<Item = Result<nexus_proto::common::FileChunk, Status>> + Send + 'static>>;

    async fn open_download(&self, req: Request<nexus_proto::common::OpenFileRequest>) -> R<Self::OpenDownloadStream> {
        let r = req.into_inner();
        let range = ByteRange::requested(r.has_range, r.start, r.end, r.suffix_length);
        let d = self.app.open_download(&r.token, range).await.map_err(status)?;
        Ok(Response::new(nexus_platform::grpc::file_stream(d, "video")))
    }

    async fn delete_video(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.app.delete_video(&p, &req.get_ref().id).await.map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn upload_avatar(&self, req: Request<pb::UploadAvatarRequest>) -> R<pb::AvatarRecord> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let a = self.app.upload_avatar(&p, &r.name, &r.content_type, r.data).await.map_err(status)?;
        Ok(Response::new(avatar(a)))
    }

    async fn list_avatars(&self, req: Request<pb::ListRequest>) -> R<pb::AvatarPage> {
        let p = principal(&req)?;
        let page = page_request(req.into_inner().page)?;
        let result = self.app.list_avatars(&p, &page).await.map_err(status)?;
        Ok(Response::new(pb::AvatarPage {
            items: result.items.into_iter().map(avatar).collect(),
            page: Some(PageInfo { next_cursor: result.next_cursor.unwrap_or_default() }),
        }))
    }

    async fn delete_avatar(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.app.delete_avatar(&p, &req.get_ref().id).await.map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn list_voices(&self, req: Request<pb::Empty>) -> R<pb::VoiceList> {
        let p = principal(&req)?;
        let voices = self.app.voices(&p).await.map_err(status)?;
        let provider = self.app.speech.name();
        Ok(Response::new(pb::VoiceList {
            items: voices
                .into_iter()
                .map(|v| pb::Voice {
                    id: v.voice_id,
                    name: v.name,
                    category: v.category.unwrap_or_default(),
                    provider: provider.into(),
                    preview_url: v.preview_url.unwrap_or_default(),
                })
                .collect(),
        }))
    }
}

pub struct Webhooks {
    pub app: Arc<App>,
}

#[tonic::async_trait]
impl WebhookReceiver for Webhooks {
    async fn deliver(&self, req: Request<DeliverWebhookRequest>) -> R<DeliverWebhookResponse> {
        let r = req.into_inner();
        let answer = self.app.deliver_webhook(&r.provider, &r.method, &r.query).await.map_err(status)?;
        Ok(Response::new(DeliverWebhookResponse {
            status: answer.status,
            content_type: "application/json".into(),
            body: serde_json::to_vec(&answer.body).unwrap_or_default(),
        }))
    }
}
