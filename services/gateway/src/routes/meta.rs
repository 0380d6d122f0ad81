//! Facts about the API itself that frontends need before anything else.

use axum::Json;
use nexus_kernel::Locale;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_locales))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LocaleInfo {
    /// BCP-47 language code.
    #[schema(example = "ar")]
    pub code: String,
    /// The language's name in itself.
    #[schema(example = "العربية")]
    pub name: String,
    /// Text direction: `ltr` or `rtl`.
    #[schema(example = "rtl")]
    pub dir: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LocaleList {
    pub items: Vec<LocaleInfo>,
    /// Used when neither the user's setting nor `Accept-Language` names a supported locale.
    #[schema(example = "en")]
    pub default: String,
}

fn native_name(l: Locale) -> &'static str {
    match l {
        Locale::En => "English",
        Locale::Es => "Español",
        Locale::Pt => "Português",
        Locale::He => "עברית",
        Locale::Ar => "العربية",
    }
}

/// The languages NexusOne speaks and their text direction.
#[utoipa::path(
    get,
    path = "/v1/locales",
    tag = "meta",
    responses(
        (status = 200, description = "Supported locales", body = LocaleList),
    )
)]
pub async fn list_locales() -> Json<LocaleList> {
    Json(LocaleList {
        items: Locale::ALL
            .iter()
            .map(|l| LocaleInfo {
                code: l.code().into(),
                name: native_name(*l).into(),
                dir: l.direction().as_str().into(),
            })
            .collect(),
        default: Locale::default().code().into(),
    })
}
