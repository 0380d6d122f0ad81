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
        (name = "contacts", description = "The contact book: contacts, custom fields, identities, consent"),
        (name = "crm", description = "The CRM: contact timelines and tasks, the sales pipeline and deals, saved segments"),
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

/// Routes that answer from the gateway alone (no service call, so never 503).
const LOCAL_ONLY: &[&str] = &["/v1/locales"];

/// Adds the error responses the edge can give on any route (so no operation forgets them):
/// 401 everywhere (a credential that does not verify is refused before routing, public routes
/// included), 429 and 500 everywhere, 503 where a service is called, 400 where there are path or
/// query parameters, 409 where an `Idempotency-Key` is taken, and the body errors (400, 413, 415,
/// 422) where there is a request body. Operation-specific errors stay with the operation.
/// Also states the one format of every `cursor` parameter.
pub fn add_standard_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{Operation, Parameter, ParameterIn};
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
    let add = |op: &mut Operation, json_api: bool, calls_service: bool| {
        let mut standard = vec![
            ("401", "A credential was sent and does not verify (or none was sent where one is required)"),
            ("429", "Too many requests; see `Retry-After`"),
            ("500", "Unexpected failure; quote the request id to support"),
        ];
        if calls_service {
            standard.push(("503", "A service is unavailable; see `Retry-After`"));
        }
        let params: Vec<&Parameter> = op
            .parameters
            .iter()
            .flatten()
            .filter_map(|p| match p {
                RefOr::T(p) => Some(p),
                RefOr::Ref(_) => None,
            })
            .collect();
        if params.iter().any(|p| matches!(p.parameter_in, ParameterIn::Query | ParameterIn::Path)) {
            standard.push(("400", "Malformed or missing query or path parameter"));
        }
        if params
            .iter()
            .any(|p| p.parameter_in == ParameterIn::Header && p.name.eq_ignore_ascii_case("idempotency-key"))
        {
            standard.push(("409", "The idempotency key belongs to another or an unfinished request"));
        }
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
        for p in op.parameters.iter_mut().flatten() {
            if let RefOr::T(p) = p
                && p.name == "cursor"
                && p.parameter_in == ParameterIn::Query
            {
                describe_cursor(p);
            }
        }
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let json_api = path.starts_with("/v1/");
        let calls_service = !LOCAL_ONLY.contains(&path.as_str());
        for op in
            [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
        {
            add(op, json_api, calls_service);
        }
    }
}

/// A cursor is opaque: only a previous page's `next_cursor` is valid. The format is named so
/// clients (and the contract test's generator) can tell it from free text.
fn describe_cursor(p: &mut utoipa::openapi::path::Parameter) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{Object, Schema, SchemaFormat, Type};

    let mut schema = Object::with_type(Type::String);
    schema.format = Some(SchemaFormat::Custom("cursor".into()));
    p.schema = Some(RefOr::T(Schema::Object(schema)));
    p.description = Some(
        "`next_cursor` of the previous page: an opaque token (unpadded base64url, at most 512 characters); \
         any other value is refused with 400 `request.invalid_cursor`."
            .into(),
    );
}

/// Schemas of fields whose values are a fixed list the services check, stated once for every
/// route that takes them (`#[schema(schema_with = …)]` / `#[param(schema_with = …)]`).
pub mod vocab {
    use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
    use utoipa::openapi::{Array, ArrayBuilder};

    /// ISO 4217 codes NexusOne prices and pays out in (`nexus_kernel::money`).
    pub const CURRENCIES: &[&str] = &[
        "USD", "EUR", "GBP", "BRL", "MXN", "ARS", "COP", "CLP", "ILS", "AED", "SAR", "EGP", "JPY", "CAD", "AUD", "KWD",
        "BHD",
    ];
    /// Scopes of an API key.
    pub const API_KEY_SCOPES: &[&str] = &["read", "write", "admin"];

    fn one_of(values: &[&str], description: &str) -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values.iter().copied()))
            .description(Some(description))
            .build()
    }

    /// A currency choice in a query; empty is the same as absent (the default currency).
    pub fn currency() -> Object {
        let codes: Vec<&str> = std::iter::once("").chain(CURRENCIES.iter().copied()).collect();
        let mut schema =
            one_of(&codes, "ISO 4217 code of a currency NexusOne prices in; empty or absent: the default.");
        schema.examples = vec!["BRL".into()];
        schema
    }

    /// A currency in a request body (required there, so no empty choice).
    pub fn currency_code() -> Object {
        let mut schema = one_of(CURRENCIES, "ISO 4217 code of a currency NexusOne prices in.");
        schema.examples = vec!["BRL".into()];
        schema
    }

    pub fn api_key_scopes() -> Array {
        ArrayBuilder::new().items(one_of(API_KEY_SCOPES, "read, write or admin.")).build()
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn the_currencies_are_the_ones_the_kernel_prices_in() {
            for code in super::CURRENCIES {
                assert!(code.parse::<nexus_kernel::money::Currency>().is_ok(), "{code}");
            }
        }
    }
}
