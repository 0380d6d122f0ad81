//! The document's frame: info, servers, security schemes, tags. Paths come from the routes.

use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "NexusOne API",
        description = "Marketing platform API: AI copy and landing pages, avatar videos, WhatsApp, ads and social posts, dropshipping, analytics.\n\nErrors always use the envelope `{\"error\":{\"code\",\"message\",\"request_id\"}}`; `message` follows `Accept-Language` (en, es, pt, he, ar).",
        version = "1.0.0",
        license(name = "Proprietary")
    ),
    servers((url = "http://127.0.0.1:8080", description = "Local (make run)")),
    tags(
        (name = "meta", description = "Facts about the API"),
        (name = "webhooks", description = "Provider callbacks, verified by the owning service"),
        (name = "auth", description = "Sign-up, login, tokens, OAuth"),
        (name = "account", description = "The signed-in user: profile, sessions, two-step verification"),
        (name = "workspaces", description = "Workspaces and members"),
        (name = "api-keys", description = "API keys for server-to-server use"),
        (name = "billing", description = "Plans, subscription, credits and usage"),
        (name = "content", description = "AI copy in five languages, streamed or not"),
        (name = "pages", description = "Magic landing pages, their public addresses and leads"),
        (name = "agents", description = "AI agents: custom assistants with knowledge and per-contact history"),
        (name = "analytics", description = "Event tracking (write key), reports and the audit trail"),
        (name = "operations", description = "Fleet health for platform operators"),
        (name = "local", description = "Offline helpers, only in local mode"),
    ),
    components(schemas(crate::error::ErrorEnvelope, crate::error::ErrorBody, crate::error::FieldError)),
    modifiers(&Security)
)]
struct Base;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))));
        // The browser-safe, write-only key of /v1/track (`Authorization: Bearer wk_…`).
        components.add_security_scheme(
            "write_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("wk_…").build()),
        );
    }
}

pub fn base() -> utoipa::openapi::OpenApi {
    Base::openapi()
}

/// Stable pretty JSON, as committed in `services/gateway/openapi.json`.
pub fn to_pretty_json(doc: &utoipa::openapi::OpenApi) -> String {
    let mut s = doc.to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}

/// Adds the error responses the edge can give on any route (so no operation forgets them):
/// 429 and 500 everywhere, 503 where a service is called, and the body errors (400, 413, 415,
/// 422) where there is a request body. Operation-specific errors stay with the operation.
pub fn add_standard_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::Operation;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

    let envelope = |description: &str| -> RefOr<utoipa::openapi::Response> {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorEnvelope"))).build(),
                )
                .build(),
        )
    };
    let add = |op: &mut Operation, json_api: bool| {
        let mut standard = vec![
            ("429", "Too many requests; see `Retry-After`"),
            ("500", "Unexpected failure; quote the request id to support"),
        ];
        // Webhooks take any bytes; only the JSON API parses bodies.
        if json_api && op.request_body.is_some() {
            standard.extend([
                ("400", "Malformed JSON"),
                ("413", "Body larger than the limit"),
                ("415", "Body is not JSON"),
                ("422", "Missing field or field of the wrong type"),
            ]);
        }
        for (status, description) in standard {
            op.responses.responses.entry(status.to_owned()).or_insert_with(|| envelope(description));
        }
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let json_api = path.starts_with("/v1/");
        for op in
            [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
        {
            add(op, json_api);
        }
    }
}
