//! `/v1/ads/audiences`: custom audiences from a CRM segment's members. Emails and phones are
//! normalized and SHA-256 hashed by the ads service; only hashes reach the platform.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::nexus::ads::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{ads_client as client, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiJson;
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_audience))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"connection_id": "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "ad_account": "act_1234567890", "name": "Newsletter buyers",
    "emails": ["ana.perez@example.com"], "phones": ["+52 1 55 1234 5678"]}))]
pub struct AudienceRequest {
    pub connection_id: String,
    pub ad_account: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
    pub emails: Option<Vec<String>>,
    /// With the country code (+52…, 0034…); others are dropped.
    pub phones: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AudienceBody {
    #[schema(example = "aud_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub id: String,
    pub connection_id: String,
    pub ad_account: String,
    pub name: String,
    pub platform_id: String,
    /// Hashed members sent.
    pub members: i32,
    /// Inputs that were not an email or an international phone number.
    pub dropped: i32,
    pub created_at: Option<String>,
}

/// Create a custom audience on the ad account from a segment's members.
#[utoipa::path(post, path = "/v1/ads/audiences", tag = "ads", security(("bearer" = []), ("api_key" = [])), request_body = AudienceRequest,
    responses((status = 201, description = "Uploaded", body = AudienceBody),
        (status = 400, description = "No usable member, too many, or an ad account that is not chosen", body = ErrorEnvelope),
        (status = 404, description = "No such connection in this workspace", body = ErrorEnvelope)))]
pub async fn create_audience(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<AudienceRequest>,
) -> Result<(StatusCode, Json<AudienceBody>), ApiError> {
    let req = pb::CreateAudienceRequest {
        connection_id: b.connection_id,
        ad_account: b.ad_account,
        name: b.name,
        emails: b.emails.unwrap_or_default(),
        phones: b.phones.unwrap_or_default(),
    };
    let a = client(&state).create_audience(req).await?.into_inner();
    Ok((
        StatusCode::CREATED,
        Json(AudienceBody {
            id: a.id,
            connection_id: a.connection_id,
            ad_account: a.ad_account,
            name: a.name,
            platform_id: a.platform_id,
            members: a.members,
            dropped: a.dropped,
            created_at: ts(a.created_at),
        }),
    ))
}
