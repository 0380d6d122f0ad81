//! The public web: published landing pages at /p/{slug}, their images, and their lead forms.
//! No token: the slug is the key. Every answer carries a strict Content-Security-Policy.

use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nexus_kernel::ErrorKind;
use nexus_proto::nexus::content::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{anonymous, content_client as client};
use crate::AppState;
use crate::edge::Edge;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiPath, ApiQuery, RawBody, parse_json};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(page)).routes(routes!(asset)).routes(routes!(lead))
}

/// Nothing but the page's own inline styles, its own images and its own form.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; \
    base-uri 'none'; frame-ancestors 'none'";

fn set(resp: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PublicPageQuery {
    /// Set after a lead was sent: shows the thank-you notice.
    #[param(example = "1")]
    pub thanks: Option<String>,
}

/// A published landing page, as a complete HTML document in the page's language and direction.
#[utoipa::path(get, path = "/p/{slug}", tag = "pages",
    params(("slug" = String, Path, example = "spring-sale"), PublicPageQuery),
    responses((status = 200, description = "The page", content_type = "text/html", body = String, example = "<!DOCTYPE html><html lang=\"ar\" dir=\"rtl\">…</html>"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 404, description = "No published page at this address", body = ErrorEnvelope),
        (status = 503, description = "Pages unavailable", body = ErrorEnvelope)))]
pub async fn page(
    State(state): State<AppState>,
    method: Method,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(q): ApiQuery<PublicPageQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let req = pb::GetPublishedPageRequest {
        slug,
        // HEAD requests (link checkers, previews) are not views.
        count_view: method != Method::HEAD,
        thanks: q.thanks.is_some(),
    };
    let p = anonymous().scope(client(&state).get_published_page(req)).await?.into_inner();
    let etag = format!("\"{}\"", p.etag);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if matches { StatusCode::NOT_MODIFIED.into_response() } else { Response::new(Body::from(p.html)) };
    set(&mut resp, header::CONTENT_TYPE, "text/html; charset=utf-8");
    set(&mut resp, header::CONTENT_SECURITY_POLICY, PAGE_CSP);
    set(&mut resp, header::CONTENT_LANGUAGE, &p.language);
    set(&mut resp, header::ETAG, &etag);
    // Revalidate every time (cheap with the ETag) so edits and unpublishing show at once.
    set(&mut resp, header::CACHE_CONTROL, "public, no-cache");
    set(&mut resp, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(&mut resp, header::REFERRER_POLICY, "no-referrer");
    set(&mut resp, header::X_FRAME_OPTIONS, "DENY");
    Ok(resp)
}

/// An image shown on a published page.
#[utoipa::path(get, path = "/p/{slug}/assets/{asset}", tag = "pages",
    params(("slug" = String, Path, example = "spring-sale"), ("asset" = String, Path, example = "img_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "The image", content_type = "image/svg+xml", body = String),
        (status = 404, description = "Not an image of this published page", body = ErrorEnvelope)))]
pub async fn asset(
    State(state): State<AppState>,
    ApiPath((slug, asset)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let a = anonymous()
        .scope(client(&state).get_published_asset(pb::GetPublishedAssetRequest { slug, asset_id: asset }))
        .await?
        .into_inner();
    let mut resp = Response::new(Body::from(a.data));
    set(&mut resp, header::CONTENT_TYPE, &a.content_type);
    // SVGs may hold script; served as images only, with nothing allowed to run.
    set(&mut resp, header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; sandbox");
    set(&mut resp, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(&mut resp, header::ETAG, &format!("\"{}\"", a.etag));
    set(&mut resp, header::CACHE_CONTROL, "public, max-age=86400");
    Ok(resp)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Ana Silva", "email": "ana@example.com", "message": "Do you deliver to Lisbon?", "consent": true}))]
pub struct LeadRequest {
    /// Text without control characters (line breaks and tabs are fine).
    #[schema(pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Text without control characters (line breaks and tabs are fine).
    #[schema(pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub message: Option<String>,
    /// Must stay empty (a field hidden from people; bots fill it).
    pub website: Option<String>,
    /// Agreed to be contacted.
    pub consent: Option<bool>,
}

/// The HTML form's fields (strings, checkbox as "yes").
#[derive(Debug, Default, Deserialize)]
struct LeadForm {
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    message: Option<String>,
    website: Option<String>,
    consent: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeadAccepted {
    pub accepted: bool,
}

/// Send a lead from a published page's form (HTML form posts are redirected back to the page
/// with a thank-you notice; JSON gets 202). Rate limited per address and page.
#[utoipa::path(post, path = "/p/{slug}/leads", tag = "pages",
    params(("slug" = String, Path, example = "spring-sale")),
    request_body(content = LeadRequest, description = "JSON, or the page form as application/x-www-form-urlencoded"),
    responses((status = 202, description = "Received", body = LeadAccepted), (status = 303, description = "Form post received; back to the page"),
        (status = 400, description = "Malformed body", body = ErrorEnvelope), (status = 404, description = "No published page at this address", body = ErrorEnvelope),
        (status = 415, description = "Neither JSON nor a form", body = ErrorEnvelope), (status = 422, description = "Invalid email, phone or field", body = ErrorEnvelope)))]
pub async fn lead(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let ip = req.extensions().get::<Edge>().map(|e| e.client_ip.to_string()).unwrap_or_default();
    let content_type =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let form = content_type.starts_with("application/x-www-form-urlencoded");
    let body = if form {
        let f = axum::Form::<LeadForm>::from_request(req, &state)
            .await
            .map_err(|_| ApiError::new(ErrorKind::InvalidArgument, "request.invalid"))?
            .0;
        LeadRequest {
            name: f.name,
            email: f.email,
            phone: f.phone,
            message: f.message,
            website: f.website,
            consent: Some(f.consent.is_some_and(|c| !c.is_empty())),
        }
    } else if content_type.starts_with("application/json") {
        let RawBody(bytes) = RawBody::from_request(req, &state).await?;
        parse_json::<LeadRequest>(&bytes)?
    } else {
        return Err(ApiError::new(ErrorKind::UnsupportedMediaType, "request.unsupported_media_type"));
    };
    let r = pb::CaptureLeadRequest {
        slug: slug.clone(),
        name: body.name.unwrap_or_default(),
        email: body.email.unwrap_or_default(),
        phone: body.phone.unwrap_or_default(),
        message: body.message.unwrap_or_default(),
        website: body.website.unwrap_or_default(),
        consent: body.consent.unwrap_or(false),
        client_ip: ip,
    };
    anonymous().scope(client(&state).capture_lead(r)).await?;
    if form {
        let mut resp = StatusCode::SEE_OTHER.into_response();
        // The slug was checked by the service (lowercase letters, digits, hyphens).
        set(&mut resp, header::LOCATION, &format!("/p/{slug}?thanks=1#lead"));
        return Ok(resp);
    }
    Ok((StatusCode::ACCEPTED, axum::Json(LeadAccepted { accepted: true })).into_response())
}
