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
        (name = "webhook-endpoints", description = "Outbound webhooks to your own systems: signed (Standard Webhooks), retried for a day, replayable"),
        (name = "ads", description = "Advertising: platform connections (Meta, TikTok, Google, the local sandbox) and marketing campaigns"),
        (name = "commerce", description = "Dropshipping: supplier and store connections, catalogue, pricing, orders and fulfilment, sales and commissions"),
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
                && p.parameter_in == ParameterIn::Query
            {
                if p.name == "cursor" {
                    describe_cursor(p);
                }
                allow_empty_instant(p);
            }
            if let RefOr::T(p) = p
                && p.parameter_in == ParameterIn::Header
                && p.name.eq_ignore_ascii_case("idempotency-key")
            {
                describe_idempotency_key(p);
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

/// An `Idempotency-Key` as every service checks it: at most 200 printable characters (a header
/// value cannot carry others, and the gateway passes only ASCII on). A required one is not blank.
fn describe_idempotency_key(p: &mut utoipa::openapi::path::Parameter) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, Type};

    let required = p.required == utoipa::openapi::Required::True;
    let pattern = if required { r"^[\x20-\x7E]*[\x21-\x7E][\x20-\x7E]*$" } else { r"^[\x20-\x7E]*$" };
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(required.then_some(1))
        .max_length(Some(200))
        .pattern(Some(pattern));
    p.schema = Some(RefOr::T(schema.into()));
}

/// An optional query instant (`format: date-time`) may also be sent empty, which the services
/// read as absent (`?to=` is "until now"): the schema says so, so an empty value is not taken for
/// a malformed one.
fn allow_empty_instant(p: &mut utoipa::openapi::path::Parameter) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};

    let instant = |s: &Option<RefOr<Schema>>| matches!(s, Some(RefOr::T(Schema::Object(o))) if o.format == Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)));
    if p.required == utoipa::openapi::Required::True || !instant(&p.schema) {
        return;
    }
    let Some(RefOr::T(date_time)) = p.schema.take() else { return };
    let empty = ObjectBuilder::new().schema_type(Type::String).pattern(Some(r"^\s*$"));
    p.schema = Some(AnyOfBuilder::new().item(date_time).item(empty).into());
}

/// Schemas of fields whose values are a fixed list the services check, stated once for every
/// route that takes them (`#[schema(schema_with = …)]` / `#[param(schema_with = …)]`).
pub mod vocab {
    use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
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

    /// The five locales products and stores are written in (`nexus_kernel::Locale`).
    pub const LOCALES: &[&str] = &["en", "es", "pt", "he", "ar"];

    /// Languages of a store or a product's translations: each of the five locales at most once.
    fn languages(description: &str) -> Array {
        ArrayBuilder::new()
            .items(one_of(LOCALES, "en, es, pt, he or ar."))
            .max_items(Some(LOCALES.len()))
            .unique_items(true)
            .description(Some(description))
            .build()
    }

    /// A store's languages.
    pub fn store_languages() -> Array {
        languages("A store's languages, each at most once: its products are localized into them.")
    }

    /// The languages a product is localized into.
    pub fn translation_languages() -> Array {
        languages("Each at most once; absent or empty: the languages of the workspace's stores.")
    }

    /// At least one scope: a key with none could do nothing.
    pub fn api_key_scopes() -> Array {
        ArrayBuilder::new().items(one_of(API_KEY_SCOPES, "read, write or admin.")).min_items(Some(1)).build()
    }

    // The patterns below are written out again in `#[schema(pattern = …)]` attributes (utoipa
    // takes only literals there); `every_text_pattern_is_one_of_these` keeps the copies equal.

    /// Optional text as content checks it (`text_field`): no control characters but line breaks
    /// and tabs.
    pub const TEXT: &str = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$";
    /// Required text as content checks it: as [`TEXT`], and something besides spaces.
    pub const REQUIRED_TEXT: &str =
        r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$";
    /// A name as auth checks it (`check_name`): something besides spaces, no control characters
    /// at all (not even line breaks).
    pub const NAME: &str = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$";
    /// An avatar (`check_avatar_url` of auth): empty, or an https URL with a DNS name. Host labels
    /// take the ASCII characters URLs allow in hosts, the last one starts with a letter (so it
    /// never reads as an IP address); the path (with a query) takes URL characters.
    pub const AVATAR_URL: &str = r"^(https://([A-Za-z0-9!$&'()*+,;=_~-]+\.)+[A-Za-z][A-Za-z0-9!$&'()*+,;=_~-]*(/[A-Za-z0-9._~!$&'()*+,;=:@%/?#-]*)?)?$";
    /// A write key's browser origin (`check_origins` of analytics): `http(s)://host[:port]`,
    /// nothing after the host but an optional `/`; the host as in [`AVATAR_URL`].
    pub const ORIGIN: &str =
        r"^https?://([A-Za-z0-9!$&'()*+,;=_~-]+\.)+[A-Za-z][A-Za-z0-9!$&'()*+,;=_~-]*(:[1-9][0-9]{0,3})?/?$";
    /// An optional event-name filter of the reports (`filter_name` of analytics): no control
    /// characters (up to 200 characters, stated apart).
    pub const PRINTABLE: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";
    /// An order customer's email as commerce checks it: empty, or printable with an `@` and no
    /// spaces (the address is the store's to verify, not ours).
    pub const ORDER_EMAIL: &str = r"^([^\s@\x00-\x1F\x7F-\x9F]*@[^\s\x00-\x1F\x7F-\x9F]*)?$";
    /// A funnel's steps (`check_funnel` of analytics): 2 to 10 comma-separated names, each with
    /// something besides spaces and no control characters.
    pub const FUNNEL_STEPS: &str = r"^[^,\x00-\x1F\x7F-\x9F]*[^\s,\x00-\x1F\x7F-\x9F][^,\x00-\x1F\x7F-\x9F]*(,[^,\x00-\x1F\x7F-\x9F]*[^\s,\x00-\x1F\x7F-\x9F][^,\x00-\x1F\x7F-\x9F]*){1,9}$";
    /// Where a payment page sends the user back (`check_return_url` of subscriptions): empty, or
    /// an http(s) URL without spaces or control characters (up to 2,048 characters, stated apart).
    pub const RETURN_URL: &str = r"^(https?://[^\s\x00-\x1F\x7F-\x9F]*)?$";
    /// An https address as messaging checks a WhatsApp media link or template button: no spaces
    /// or control characters.
    pub const HTTPS_URL: &str = r"^https://[^\s\x00-\x1F\x7F-\x9F]+$";
    /// As [`HTTPS_URL`], or empty.
    pub const HTTPS_URL_OR_EMPTY: &str = r"^(https://[^\s\x00-\x1F\x7F-\x9F]+)?$";
    /// Where a broadcast parameter comes from (`check_specs` of messaging): `name`, `phone`,
    /// `field:<key>` (a custom field's key) or `text:<literal>` (one line with something besides
    /// spaces).
    pub const BROADCAST_PARAM: &str = r"^(name|phone|field:[a-z][a-z0-9_]{0,39}|text:[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*)$";

    /// An optional list of at most `max_items` texts of at most `max_len` characters each.
    fn texts(max_items: usize, max_len: usize, description: &str) -> Array {
        let item = ObjectBuilder::new().schema_type(Type::String).max_length(Some(max_len)).pattern(Some(TEXT)).build();
        ArrayBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
            .items(item)
            .max_items(Some(max_items))
            .description(Some(description))
            .build()
    }

    /// A broadcast's parameter sources: at most 20, each a [`BROADCAST_PARAM`] (a literal up to
    /// 1,024 characters).
    pub fn broadcast_params() -> Array {
        let item = ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(1_029))
            .pattern(Some(BROADCAST_PARAM))
            .build();
        ArrayBuilder::new().items(item).max_items(Some(20)).build()
    }

    /// An agent's knowledge (`nexus_content::domain::agents`).
    pub fn agent_knowledge() -> Array {
        texts(50, 2_000, "Up to 50 snippets of up to 2,000 characters the agent answers from.")
    }

    /// A brief's facts (`nexus_content::domain::generation::Brief`).
    pub fn brief_facts() -> Array {
        texts(10, 200, "Up to 10 facts of up to 200 characters each.")
    }

    /// Browser origins of a write key (`nexus_analytics::domain::workspace::check_origins`): up to
    /// 20 `http(s)://host[:port]`, nothing after the host but an optional `/`. The host is a DNS
    /// name here (the service also takes addresses, which no browser page should be served from).
    pub fn origins() -> Array {
        let origin = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(ORIGIN))
            .examples(["https://shop.example.com"])
            .build();
        ArrayBuilder::new().items(origin).max_items(Some(20)).build()
    }

    /// An avatar URL, empty to remove it, or null (unchanged).
    pub fn avatar_url_or_null() -> Object {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .max_length(Some(2048))
            .pattern(Some(AVATAR_URL))
            .description(Some("https URL with a host name (up to 2,048 characters), or empty to remove."))
            .examples(["https://cdn.example.com/ana.png"])
            .build()
    }

    /// Plans a subscription can change to (the catalogue's codes); `free` cancels.
    pub const PLANS: &[&str] = &["free", "pro", "premium"];

    pub fn plan_code() -> Object {
        let mut schema = one_of(PLANS, "free (cancels at the end of the period), pro or premium.");
        schema.examples = vec!["premium".into()];
        schema
    }

    /// IANA time zone names as the tz database (`chrono-tz`) spells them.
    pub fn time_zone() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())))
            .description(Some("IANA time zone, e.g. `America/Sao_Paulo`."))
            .examples(["Europe/Madrid"])
            .build()
    }

    /// IANA time zone names as the tz database (`chrono-tz`) spells them, or null (unchanged).
    pub fn time_zone_or_null() -> Object {
        let names = std::iter::once(serde_json::Value::Null)
            .chain(chrono_tz::TZ_VARIANTS.iter().map(|tz| serde_json::Value::from(tz.name())));
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .enum_values(Some(names))
            .description(Some("IANA time zone, e.g. `America/Sao_Paulo`."))
            .examples(["Asia/Jerusalem"])
            .build()
    }

    #[cfg(test)]
    mod tests {
        /// Strings on both sides of each rule: spaces, line breaks, C0 and C1 controls, scripts.
        const SAMPLES: &[&str] = &[
            "",
            " ",
            "\t\n",
            "Trail Runner X",
            "  padded  ",
            "two\nlines\tand a tab",
            "\tleading tab",
            "עברית",
            "عربى",
            "emoji 👟",
            "\u{a0}no-break\u{a0}",
            "\u{2003}",
            "nul\u{0}",
            "bell\u{7}x",
            "x\u{1f}",
            "c1\u{85}x",
            "\u{85}",
            "del\u{7f}",
            "\u{9f}",
        ];

        fn agrees(pattern: &str, server: impl Fn(&str) -> bool) {
            let re = regex::Regex::new(pattern).unwrap();
            for s in SAMPLES {
                // The schema may be stricter at the ends (the services trim first) but never laxer.
                if re.is_match(s) {
                    assert!(server(s), "{pattern} admits {s:?}, which the service refuses");
                } else if s.trim() == *s {
                    assert!(!server(s), "{pattern} refuses {s:?}, which the service accepts");
                }
            }
        }

        #[test]
        fn text_patterns_agree_with_the_services() {
            use nexus_content::domain::text_field;
            agrees(super::TEXT, |s| text_field("f", s, 10_000, false).is_ok());
            agrees(super::REQUIRED_TEXT, |s| text_field("f", s, 10_000, true).is_ok());
            agrees(super::NAME, |s| nexus_auth::domain::check_name(s).is_ok());
            use nexus_analytics::domain::report;
            agrees(super::NAME, |s| report::check_property(s).is_ok());
            agrees(super::PRINTABLE, |s| report::filter_name(s).is_ok());
            let steps = regex::Regex::new(super::FUNNEL_STEPS).unwrap();
            for (a, b) in SAMPLES.iter().zip(SAMPLES.iter().rev()) {
                let joined = format!("{a},{b}");
                let list: Vec<String> = joined.split(',').map(str::to_owned).collect();
                if steps.is_match(&joined) {
                    assert!(report::check_funnel(&list, 60).is_ok(), "{joined:?}");
                } else if a.trim() == *a && b.trim() == *b {
                    assert!(report::check_funnel(&list, 60).is_err(), "{joined:?}");
                }
            }
            assert!(!steps.is_match("one"));
            assert!(steps.is_match(&["s"; 10].join(",")) && !steps.is_match(&["s"; 11].join(",")));
            let re = regex::Regex::new(super::RETURN_URL).unwrap();
            for url in [
                "",
                "https://app.example.com/billing?x=1",
                "http://localhost:3000/",
                "https://",
                "ftp://x.example",
                "https://a b",
                "https://a\u{85}",
                "https://a\u{a0}b",
                " https://a",
            ] {
                assert_eq!(re.is_match(url), nexus_subscriptions::domain::check_return_url(url).is_ok(), "{url:?}");
            }
        }

        #[test]
        fn url_patterns_admit_only_what_the_services_accept() {
            let avatar = regex::Regex::new(super::AVATAR_URL).unwrap();
            let origin = regex::Regex::new(super::ORIGIN).unwrap();
            // Appending `*` is how a contract test makes a value break a pattern; hosts take it.
            let hosts = ["cdn.example.com", "a.bc*", "x-1.y_z.Co", "a!$&'()*+,;=_~-.b0"];
            for host in hosts {
                for path in ["", "/", "/a/b.png?x", "/p*"] {
                    let url = format!("https://{host}{path}");
                    assert!(avatar.is_match(&url), "{url}");
                    assert!(nexus_auth::domain::check_avatar_url(&url).is_ok(), "{url}");
                }
                for o in [format!("https://{host}"), format!("http://{host}:8080/")] {
                    assert!(origin.is_match(&o), "{o}");
                    let checked = nexus_analytics::domain::workspace::check_origins(std::slice::from_ref(&o));
                    assert!(checked.is_ok(), "{o}");
                }
            }
            for refused in ["http://a.bc", "https://a b.cc", "ftp://a.bc"] {
                assert!(!avatar.is_match(refused), "{refused:?}");
                assert!(nexus_auth::domain::check_avatar_url(refused).is_err(), "{refused:?}");
            }
            for refused in ["https://a.bc/x", "https://a.bc?x", "a.bc", "https://"] {
                assert!(!origin.is_match(refused), "{refused:?}");
            }
            assert!(avatar.is_match(""));
        }

        #[test]
        fn order_emails_need_an_at_and_no_spaces() {
            let re = regex::Regex::new(super::ORDER_EMAIL).unwrap();
            for ok in ["", "ana@example.com", "x@y"] {
                assert!(re.is_match(ok), "{ok:?}");
            }
            for bad in ["ana.example.com", "ana @example.com", "ana@exa mple.com", "a\u{85}@b", "a\t@b"] {
                assert!(!re.is_match(bad), "{bad:?}");
            }
        }

        #[test]
        fn whatsapp_patterns_admit_only_what_messaging_takes() {
            use nexus_messaging::domain::broadcast::check_specs;
            let param = regex::Regex::new(super::BROADCAST_PARAM).unwrap();
            for sample in SAMPLES {
                for spec in [format!("text:{sample}"), format!("field:{sample}"), (*sample).to_owned()] {
                    if param.is_match(&spec) {
                        assert!(check_specs(std::slice::from_ref(&spec)).is_ok(), "{spec:?}");
                    }
                }
            }
            for ok in ["name", "phone", "field:tier", "text:20% off", "text:עברית"] {
                assert!(param.is_match(ok) && check_specs(&[ok.to_owned()]).is_ok(), "{ok:?}");
            }
            for bad in ["email", "field:", "text:", "text:  ", "text:a\nb", "other:x"] {
                assert!(!param.is_match(bad) && check_specs(&[bad.to_owned()]).is_err(), "{bad:?}");
            }
            let url = regex::Regex::new(super::HTTPS_URL).unwrap();
            for (link, ok) in [
                ("https://cdn.example.com/a.jpg", true),
                ("https://", false),
                ("http://a.b/c", false),
                ("https://a b", false),
            ] {
                assert_eq!(url.is_match(link), ok, "{link:?}");
                let media = nexus_messaging::domain::whatsapp::Content::Media {
                    kind: "image".into(),
                    link: link.into(),
                    caption: String::new(),
                };
                assert_eq!(media.check().is_ok(), ok, "{link:?}");
            }
        }

        /// The attributes' copies of the patterns stay equal to the ones tested above.
        #[test]
        fn every_text_pattern_is_one_of_these() {
            let doc = serde_json::to_value(crate::openapi()).unwrap();
            fn walk(v: &serde_json::Value, found: &mut Vec<String>) {
                match v {
                    serde_json::Value::Object(m) => {
                        if let Some(serde_json::Value::String(p)) = m.get("pattern")
                            && p.contains(r"\x7F-\x9F")
                        {
                            found.push(p.clone());
                        }
                        m.values().for_each(|v| walk(v, found));
                    }
                    serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, found)),
                    _ => {}
                }
            }
            let mut found = Vec::new();
            walk(&doc, &mut found);
            assert!(found.len() > 10, "{found:?}");
            for p in found {
                assert!(
                    [
                        super::TEXT,
                        super::REQUIRED_TEXT,
                        super::NAME,
                        super::RETURN_URL,
                        super::PRINTABLE,
                        super::ORDER_EMAIL,
                        super::FUNNEL_STEPS,
                        super::HTTPS_URL,
                        super::HTTPS_URL_OR_EMPTY,
                        super::BROADCAST_PARAM
                    ]
                    .contains(&p.as_str()),
                    "{p}"
                );
            }
        }

        #[test]
        fn time_zones_are_the_ones_auth_accepts() {
            let schema = serde_json::to_value(super::time_zone_or_null()).unwrap();
            let names = schema["enum"].as_array().unwrap();
            assert!(names.len() > 300);
            for name in names.iter().filter_map(|n| n.as_str()) {
                assert!(nexus_auth::domain::check_timezone(name).is_ok(), "{name}");
            }
        }

        #[test]
        fn the_currencies_are_the_ones_the_kernel_prices_in() {
            for code in super::CURRENCIES {
                assert!(code.parse::<nexus_kernel::money::Currency>().is_ok(), "{code}");
            }
        }
    }
}

#[cfg(test)]
mod schema_names {
    /// utoipa names a component after its Rust type and keeps one of two same-named types without
    /// a word: a route would then document another route's body (two `PublishRequest`s once made
    /// product publishing ask for a page's `slug`). Every schema type has its own name.
    #[test]
    fn every_schema_type_has_its_own_name() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![];
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap().flatten() {
                let path = e.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|x| x == "rs") {
                    files.push(path);
                }
            }
        }
        let mut seen = std::collections::BTreeMap::<String, String>::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let mut schema_pending = false;
            for line in text.lines().map(str::trim) {
                if line.starts_with("#[derive(") && line.contains("ToSchema") {
                    schema_pending = true;
                } else if schema_pending
                    && let Some(rest) = line.strip_prefix("pub struct ").or(line.strip_prefix("pub enum "))
                {
                    let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    let here = file.display().to_string();
                    if let Some(other) = seen.insert(name.clone(), here.clone()) {
                        panic!("two schema types named {name}: {other} and {here}");
                    }
                    schema_pending = false;
                } else if !line.starts_with("#[") && !line.starts_with("///") && !line.is_empty() {
                    schema_pending = false;
                }
            }
        }
        assert!(seen.len() > 100, "found only {} schema types", seen.len());
    }
}
