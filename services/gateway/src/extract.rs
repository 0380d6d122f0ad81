//! Extractors whose rejections are API errors (never axum's plain-text ones).

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use bytes::Bytes;
use nexus_kernel::ErrorKind;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// JSON body: 415 without a JSON content type, 413 over the limit, 400 for malformed JSON, 422
/// for a well-formed body of the wrong shape (naming the field).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

fn body_error(status: StatusCode) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorKind::PayloadTooLarge, "request.body_too_large")
    } else {
        ApiError::new(ErrorKind::InvalidArgument, "request.malformed_json")
    }
}

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime::Mime>().ok())
            .is_some_and(|m| {
                m.type_() == "application" && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
            });
        if !is_json {
            return Err(ApiError::new(ErrorKind::UnsupportedMediaType, "request.unsupported_media_type"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e: BytesRejection| body_error(e.status()))?;
        let value = parse_body(&bytes)?;
        // Every request body is a JSON object; serde would also fill a struct from an array.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::new(ErrorKind::Unprocessable, "request.invalid_body")
                .with_param("detail", "body")
                .with_field("body", "invalid"));
        }
        Ok(ApiJson(value))
    }
}

/// Parses JSON, telling a syntax error from a shape error and naming the field of the latter.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        shape_error(&e.into_inner(), path)
    })
}

/// [`parse_json`] for typed request bodies. JSON does not tell `2` from `2.0`: an integral number
/// written with a fraction is read as the integer it is, so integer fields accept every value
/// their schema allows.
fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| shape_error(&e, ".".to_owned()))?;
    integral_floats_to_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        shape_error(&e.into_inner(), path)
    })
}

fn integral_floats_to_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // Only values an f64 holds exactly as an integer; others stay floats (and refused).
            if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
                #[allow(clippy::cast_possible_truncation)]
                let i = f as i64;
                *n = i.into();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

fn shape_error(inner: &serde_json::Error, path: String) -> ApiError {
    match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof | serde_json::error::Category::Io => {
            ApiError::new(ErrorKind::InvalidArgument, "request.malformed_json")
        }
        serde_json::error::Category::Data => {
            // serde names a missing field only in its (English) message; pull it out.
            let field = if path == "." {
                let msg = inner.to_string();
                msg.split('`').nth(1).map_or_else(|| "body".to_owned(), str::to_owned)
            } else {
                path
            };
            ApiError::new(ErrorKind::Unprocessable, "request.invalid_body")
                .with_param("detail", field.clone())
                .with_field(field, "invalid")
        }
    }
}

/// Query string with API-error rejections.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state).await.map(|q| ApiQuery(q.0)).map_err(
            |e: QueryRejection| {
                let detail = e.body_text().rsplit(": ").next().unwrap_or("query").to_owned();
                ApiError::new(ErrorKind::InvalidArgument, "request.invalid_query").with_param("detail", detail)
            },
        )
    }
}

/// Path parameters with API-error rejections.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state).await.map(|p| ApiPath(p.0)).map_err(
            |e: PathRejection| {
                let detail = e.body_text().rsplit(": ").next().unwrap_or("path").to_owned();
                ApiError::new(ErrorKind::InvalidArgument, "request.invalid_path").with_param("detail", detail)
            },
        )
    }
}

/// Raw body bytes (webhooks) with API-error rejections.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state).await.map(RawBody).map_err(|e| body_error(e.status()))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        body_error(e.status())
    }
}
