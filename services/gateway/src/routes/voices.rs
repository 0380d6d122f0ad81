//! `/v1/voices`: the voices videos can be spoken in (the speech provider's, cached).

use axum::Json;
use axum::extract::State;
use nexus_proto::nexus::video::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{non_empty as opt, video_client as client};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_voices))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VoiceBody {
    /// What `voice_id` takes when making a video.
    pub id: String,
    pub name: String,
    pub category: Option<String>,
    /// elevenlabs or local.
    pub provider: String,
    pub preview_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"id": "21m00Tcm4TlvDq8ikWAM", "name": "Rachel", "category": "premade", "provider": "elevenlabs"}]}))]
pub struct VoiceList {
    pub items: Vec<VoiceBody>,
}

/// Voices to choose from.
#[utoipa::path(get, path = "/v1/voices", tag = "videos", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Voices", body = VoiceList), (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 503, description = "The speech provider is unavailable", body = ErrorEnvelope)))]
pub async fn list_voices(State(state): State<AppState>, _a: Authenticated) -> Result<Json<VoiceList>, ApiError> {
    let r = client(&state).list_voices(pb::Empty {}).await?.into_inner();
    Ok(Json(VoiceList {
        items: r
            .items
            .into_iter()
            .map(|v| VoiceBody {
                id: v.id,
                name: v.name,
                category: opt(v.category),
                provider: v.provider,
                preview_url: opt(v.preview_url),
            })
            .collect(),
    }))
}
