//! `/v1/contacts` and `/v1/contact-fields`: the workspace's contact book (messaging).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::nexus::messaging::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{contacts_client as client, next_cursor, non_empty as opt, paging, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_settings, update_settings))
        .routes(routes!(create_contact, search_contacts))
        .routes(routes!(get_contact, update_contact))
        .routes(routes!(anonymize_contact))
        .routes(routes!(merge_contacts))
        .routes(routes!(add_identity))
        .routes(routes!(set_consent))
        .routes(routes!(list_fields))
        .routes(routes!(define_field, delete_field))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"kind": "whatsapp", "value": "5511987654321"}))]
pub struct IdentityBody {
    /// whatsapp, email or shop_customer.
    #[schema(example = "whatsapp", pattern = "^(whatsapp|email|shop_customer)$")]
    pub kind: String,
    /// A WhatsApp number in international form (digits, optional `+`), an email address, or the
    /// shop's customer id.
    #[schema(example = "5511987654321", min_length = 1, max_length = 254)]
    pub value: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentBody {
    /// whatsapp, email, sms or ads (the ad platforms; withdrawn: the contact's "do not sell or
    /// share").
    pub channel: String,
    /// marketing or transactional.
    pub purpose: String,
    /// granted or withdrawn.
    pub status: String,
    /// Where the decision came from: form, import, keyword, api, …
    pub source: String,
    /// The words agreed to, or the reply that withdrew consent.
    pub proof: String,
    pub changed_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7", "name": "Ana Silva", "phone": "+5511987654321", "email": "ana@example.com",
    "language": "pt", "tags": ["vip"], "fields": {"tier": "Gold"}, "owner_id": "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d8",
    "stage": "customer", "source": "page:summer-sale", "identities": [{"kind": "email", "value": "ana@example.com"}],
    "consents": [{"channel": "whatsapp", "purpose": "marketing", "status": "granted", "source": "form",
        "proof": "lead form on page /p/summer-sale", "changed_at": "2026-11-25T10:00:00+00:00"}],
    "anonymized": false, "created_at": "2026-11-25T10:00:00+00:00", "updated_at": "2026-11-25T10:00:00+00:00"}))]
pub struct ContactBody {
    pub id: String,
    pub name: String,
    /// E.164.
    pub phone: Option<String>,
    pub email: Option<String>,
    /// en, es, pt, he or ar.
    pub language: Option<String>,
    pub tags: Vec<String>,
    /// Custom field values by key (numbers and dates as strings).
    pub fields: BTreeMap<String, String>,
    pub owner_id: Option<String>,
    /// subscriber, lead, qualified, opportunity, customer, evangelist or other.
    pub stage: String,
    pub source: String,
    pub identities: Vec<IdentityBody>,
    pub consents: Vec<ConsentBody>,
    /// The person was erased: only the record and its statistics remain.
    pub anonymized: bool,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactList {
    pub items: Vec<ContactBody>,
    pub next_cursor: Option<String>,
}

pub(crate) fn contact(c: pb::Contact) -> ContactBody {
    ContactBody {
        id: c.id,
        name: c.name,
        phone: opt(c.phone),
        email: opt(c.email),
        language: opt(c.language),
        tags: c.tags,
        fields: c.fields.into_iter().collect(),
        owner_id: opt(c.owner_id),
        stage: c.stage,
        source: c.source,
        identities: c.identities.into_iter().map(|i| IdentityBody { kind: i.kind, value: i.value }).collect(),
        consents: c
            .consents
            .into_iter()
            .map(|k| ConsentBody {
                channel: k.channel,
                purpose: k.purpose,
                status: k.status,
                source: k.source,
                proof: k.proof,
                changed_at: ts(k.changed_at),
            })
            .collect(),
        anonymized: c.anonymized,
        created_at: ts(c.created_at),
        updated_at: ts(c.updated_at),
    }
}

/// A contact's attributes as a client sends them. On update, the attributes present are
/// changed (an empty string clears one) and the absent ones are kept.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Ana Silva", "phone": "(11) 98765-4321", "email": "ana@example.com", "language": "pt",
    "tags": ["vip"], "fields": {"tier": "Gold"}, "stage": "lead", "source": "fair-2026"}))]
pub struct ContactRequest {
    #[schema(max_length = 200)]
    pub name: Option<String>,
    /// Any common format; stored as E.164 (numbers without a country code are read in the
    /// book's default region).
    #[schema(max_length = 40)]
    pub phone: Option<String>,
    #[schema(max_length = 254)]
    pub email: Option<String>,
    #[schema(pattern = "^(|en|es|pt|he|ar)$")]
    pub language: Option<String>,
    /// Letters, digits, spaces and `-_:.`; at most 50 tags of 64 characters.
    #[schema(max_items = 50)]
    pub tags: Option<Vec<String>>,
    /// Custom field values by key, as strings ("12.50", "2026-03-01"); on update an empty
    /// string removes the value.
    pub fields: Option<BTreeMap<String, String>>,
    /// A member's user id (`usr_…`).
    #[schema(example = "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d8")]
    pub owner_id: Option<String>,
    #[schema(pattern = "^(|subscriber|lead|qualified|opportunity|customer|evangelist|other)$")]
    pub stage: Option<String>,
    #[schema(max_length = 64)]
    pub source: Option<String>,
}

impl ContactRequest {
    fn input(&self) -> pb::ContactInput {
        pb::ContactInput {
            name: self.name.clone().unwrap_or_default(),
            phone: self.phone.clone().unwrap_or_default(),
            email: self.email.clone().unwrap_or_default(),
            language: self.language.clone().unwrap_or_default(),
            tags: self.tags.clone().unwrap_or_default(),
            fields: self
                .fields
                .iter()
                .flatten()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            owner_id: self.owner_id.clone().unwrap_or_default(),
            stage: self.stage.clone().unwrap_or_default(),
            source: self.source.clone().unwrap_or_default(),
        }
    }

    /// The attributes present, as an update mask.
    fn mask(&self) -> Vec<String> {
        let present = [
            ("name", self.name.is_some()),
            ("phone", self.phone.is_some()),
            ("email", self.email.is_some()),
            ("language", self.language.is_some()),
            ("tags", self.tags.is_some()),
            ("owner_id", self.owner_id.is_some()),
            ("stage", self.stage.is_some()),
            ("source", self.source.is_some()),
        ];
        let mut mask: Vec<String> = present.iter().filter(|(_, p)| *p).map(|(n, _)| (*n).to_owned()).collect();
        mask.extend(self.fields.iter().flatten().map(|(k, _)| format!("fields.{k}")));
        mask
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"default_region": "BR", "do_not_sell": true}))]
pub struct BookSettingsBody {
    /// ISO 3166 alpha-2 region for numbers typed without a country code; empty: none.
    #[schema(example = "BR", pattern = "^([A-Za-z]{2})?$")]
    pub default_region: String,
    /// "Do not sell or share" (CCPA) for the whole workspace: no contact is sent to an ad
    /// platform (custom audiences are refused, and their refreshes fail). Absent: unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub do_not_sell: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"default_region": "BR", "do_not_sell": true, "do_not_sell_changed_at": "2026-12-01T10:00:00Z"}))]
pub struct BookSettingsView {
    /// ISO 3166 alpha-2 region for numbers typed without a country code; empty: none.
    pub default_region: String,
    /// "Do not sell or share" (CCPA) for the whole workspace.
    pub do_not_sell: bool,
    /// When `do_not_sell` last changed (RFC 3339); absent: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub do_not_sell_changed_at: Option<String>,
}

impl From<pb::BookSettings> for BookSettingsView {
    fn from(s: pb::BookSettings) -> Self {
        BookSettingsView {
            default_region: s.default_region,
            do_not_sell: s.do_not_sell.unwrap_or(false),
            do_not_sell_changed_at: ts(s.do_not_sell_changed_at),
        }
    }
}

/// The contact book's settings.
#[utoipa::path(get, path = "/v1/contacts/settings", tag = "contacts", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Settings", body = BookSettingsView)))]
pub async fn get_settings(
    State(state): State<AppState>,
    _a: Authenticated,
) -> Result<Json<BookSettingsView>, ApiError> {
    let s = client(&state).get_settings(pb::Empty {}).await?.into_inner();
    Ok(Json(s.into()))
}

/// Change the contact book's settings.
#[utoipa::path(put, path = "/v1/contacts/settings", tag = "contacts", security(("bearer" = []), ("api_key" = [])),
    request_body = BookSettingsBody,
    responses((status = 200, description = "Settings", body = BookSettingsView), (status = 400, description = "Unknown region", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot change settings", body = ErrorEnvelope)))]
pub async fn update_settings(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<BookSettingsBody>,
) -> Result<Json<BookSettingsView>, ApiError> {
    let req = pb::BookSettings { default_region: b.default_region, do_not_sell: b.do_not_sell, ..Default::default() };
    let s = client(&state).update_settings(req).await?.into_inner();
    Ok(Json(s.into()))
}

/// Add a contact (one live contact per phone and per email).
#[utoipa::path(post, path = "/v1/contacts", tag = "contacts", security(("bearer" = []), ("api_key" = [])),
    request_body = ContactRequest,
    responses((status = 201, description = "The new contact", body = ContactBody), (status = 400, description = "Invalid details (each bad field named)", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot add contacts", body = ErrorEnvelope),
        (status = 409, description = "Another contact has this phone or email", body = ErrorEnvelope)))]
pub async fn create_contact(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<ContactRequest>,
) -> Result<(StatusCode, Json<ContactBody>), ApiError> {
    let created = client(&state).create_contact(b.input()).await?.into_inner();
    Ok((StatusCode::CREATED, Json(contact(created))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Part of a name, email or phone (3 to 200 characters).
    #[param(example = "silva", min_length = 3, max_length = 200)]
    pub q: Option<String>,
    /// Comma-separated tags the contacts must all have (letters, digits, spaces and `-_:.`).
    #[param(example = "vip,black friday", pattern = r"^[\w .:-]{0,64}(,[\w .:-]{0,64}){0,49}$")]
    pub tags: Option<String>,
    #[param(example = "customer", pattern = "^(|subscriber|lead|qualified|opportunity|customer|evangelist|other)$")]
    pub stage: Option<String>,
    /// Custom field conditions `key:value`, comma-separated (equality; a field the book does not
    /// define matches nothing).
    #[param(example = "tier:Gold", pattern = "^([^,:]+:[^,]*(,[^,:]+:[^,]*)*)?$")]
    pub fields: Option<String>,
    /// Contacts of a saved segment.
    #[param(example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")]
    pub segment_id: Option<String>,
    /// 1 to 100; default 20.
    #[param(example = 20, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(
        example = "eyJhdCI6IjIwMjYtMTEtMjVUMTA6MDA6MDBaIiwiaWQiOiIwMTkyZjBjNS1jMmI4LTdjMzEtYTFmMS1lNGYyYjFhMGM5ZDcifQ"
    )]
    pub cursor: Option<String>,
}

/// Search the contact book by text, tags, stage, custom fields or segment; newest first.
#[utoipa::path(get, path = "/v1/contacts", tag = "contacts", security(("bearer" = []), ("api_key" = [])), params(SearchQuery),
    responses((status = 200, description = "A page of contacts", body = ContactList), (status = 400, description = "Invalid search, page size or cursor", body = ErrorEnvelope),
        (status = 404, description = "No such segment", body = ErrorEnvelope)))]
pub async fn search_contacts(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<ContactList>, ApiError> {
    let list = |s: &Option<String>| -> Vec<String> {
        s.iter().flat_map(|s| s.split(',')).map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
    };
    let fields = list(&q.fields)
        .into_iter()
        .map(|kv| match kv.split_once(':') {
            Some((k, v)) => Ok((k.trim().to_owned(), v.trim().to_owned())),
            None => Err(ApiError::new(nexus_kernel::ErrorKind::InvalidArgument, "request.invalid_query")
                .with_param("detail", "fields: key:value")),
        })
        .collect::<Result<_, _>>()?;
    let req = pb::SearchContactsRequest {
        page: paging(q.limit, q.cursor),
        text: q.q.unwrap_or_default(),
        tags: list(&q.tags),
        stage: q.stage.unwrap_or_default(),
        fields,
        segment_id: q.segment_id.unwrap_or_default(),
    };
    let r = client(&state).search_contacts(req).await?.into_inner();
    Ok(Json(ContactList { items: r.items.into_iter().map(contact).collect(), next_cursor: next_cursor(r.page) }))
}

/// One contact with its identities and consents.
#[utoipa::path(get, path = "/v1/contacts/{id}", tag = "contacts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    responses((status = 200, description = "The contact", body = ContactBody), (status = 404, description = "No such contact in this workspace", body = ErrorEnvelope)))]
pub async fn get_contact(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ContactBody>, ApiError> {
    Ok(Json(contact(client(&state).get_contact(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Change the attributes present in the body (an empty string clears one). A stage change is
/// recorded on the timeline.
#[utoipa::path(patch, path = "/v1/contacts/{id}", tag = "contacts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    request_body = ContactRequest,
    responses((status = 200, description = "The contact", body = ContactBody), (status = 400, description = "Invalid details, or nothing to change", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot change contacts", body = ErrorEnvelope),
        (status = 404, description = "No such contact in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Another contact has this phone or email, or the contact was anonymized", body = ErrorEnvelope)))]
pub async fn update_contact(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ContactRequest>,
) -> Result<Json<ContactBody>, ApiError> {
    let req = pb::UpdateContactRequest { id, contact: Some(b.input()), update_mask: b.mask() };
    Ok(Json(contact(client(&state).update_contact(req).await?.into_inner())))
}

/// Erase the person: name, phone, email, fields, identities and consents are removed; the
/// timeline keeps its entries without personal details, and statistics keep counting.
#[utoipa::path(post, path = "/v1/contacts/{id}/anonymize", tag = "contacts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    responses((status = 200, description = "The anonymized contact", body = ContactBody), (status = 403, description = "Viewers cannot erase contacts", body = ErrorEnvelope),
        (status = 404, description = "No such contact in this workspace", body = ErrorEnvelope)))]
pub async fn anonymize_contact(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ContactBody>, ApiError> {
    Ok(Json(contact(client(&state).anonymize_contact(pb::GetByIdRequest { id }).await?.into_inner())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"merged_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d9"}))]
pub struct MergeRequest {
    /// The contact folded into this one (it stays as a record pointing here).
    pub merged_id: String,
}

/// Merge another contact into this one: this contact keeps its values and takes the other's
/// where it has none; tags join; identities, activities, deals and newer consents move over.
#[utoipa::path(post, path = "/v1/contacts/{id}/merge", tag = "contacts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    request_body = MergeRequest,
    responses((status = 200, description = "The kept contact", body = ContactBody), (status = 400, description = "A contact cannot be merged into itself", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot merge", body = ErrorEnvelope),
        (status = 404, description = "Either contact is not in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Either contact was anonymized", body = ErrorEnvelope)))]
pub async fn merge_contacts(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<MergeRequest>,
) -> Result<Json<ContactBody>, ApiError> {
    let req = pb::MergeContactsRequest { kept_id: id, merged_id: b.merged_id };
    Ok(Json(contact(client(&state).merge_contacts(req).await?.into_inner())))
}

/// Give a contact a channel identity (one identity belongs to one contact).
#[utoipa::path(post, path = "/v1/contacts/{id}/identities", tag = "contacts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    request_body = IdentityBody,
    responses((status = 200, description = "The contact", body = ContactBody), (status = 400, description = "Unknown kind or invalid value", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot change contacts", body = ErrorEnvelope),
        (status = 404, description = "No such contact in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Another contact holds this identity, or the contact was anonymized", body = ErrorEnvelope)))]
pub async fn add_identity(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<IdentityBody>,
) -> Result<Json<ContactBody>, ApiError> {
    let req = pb::AddIdentityRequest { contact_id: id, identity: Some(pb::Identity { kind: b.kind, value: b.value }) };
    Ok(Json(contact(client(&state).add_identity(req).await?.into_inner())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"channel": "whatsapp", "purpose": "marketing", "status": "granted", "source": "form",
    "proof": "I agree to receive offers on WhatsApp."}))]
pub struct ConsentRequest {
    /// whatsapp, email, sms or ads (the ad platforms: `ads` withdrawn is the contact's "do not
    /// sell or share", CCPA; no custom audience will hold the contact).
    #[schema(pattern = "^(whatsapp|email|sms|ads)$")]
    pub channel: String,
    #[schema(pattern = "^(marketing|transactional)$")]
    pub purpose: String,
    #[schema(pattern = "^(granted|withdrawn)$")]
    pub status: String,
    /// Where the decision came from: lowercase letters, digits, `_-:` (form, import, api, …).
    #[schema(pattern = "^[a-z0-9_:-]{1,40}$")]
    pub source: String,
    /// The words agreed to, or the reply that withdrew consent.
    #[schema(max_length = 2000)]
    pub proof: Option<String>,
}

/// Record consent given or withdrawn for a channel and purpose (kept on the timeline).
#[utoipa::path(put, path = "/v1/contacts/{id}/consents", tag = "contacts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    request_body = ConsentRequest,
    responses((status = 200, description = "The contact", body = ContactBody), (status = 400, description = "Unknown channel, purpose or status; invalid source or proof", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot change contacts", body = ErrorEnvelope),
        (status = 404, description = "No such contact in this workspace", body = ErrorEnvelope),
        (status = 409, description = "The contact was anonymized", body = ErrorEnvelope)))]
pub async fn set_consent(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ConsentRequest>,
) -> Result<Json<ContactBody>, ApiError> {
    let req = pb::SetConsentRequest {
        contact_id: id,
        channel: b.channel,
        purpose: b.purpose,
        status: b.status,
        source: b.source,
        proof: b.proof.unwrap_or_default(),
    };
    Ok(Json(contact(client(&state).set_consent(req).await?.into_inner())))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"key": "tier", "label": "Loyalty tier", "kind": "choice", "options": ["Silver", "Gold"]}))]
pub struct FieldBody {
    pub key: String,
    pub label: String,
    /// text, number, date or choice.
    pub kind: String,
    pub options: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldList {
    pub items: Vec<FieldBody>,
}

fn field(f: pb::FieldDefinition) -> FieldBody {
    FieldBody { key: f.key, label: f.label, kind: f.kind, options: f.options }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"label": "Loyalty tier", "kind": "choice", "options": ["Silver", "Gold"]}))]
pub struct FieldRequest {
    #[schema(min_length = 1, max_length = 100)]
    pub label: String,
    #[schema(pattern = "^(text|number|date|choice)$")]
    pub kind: String,
    /// The allowed values of a choice field (1 to 50).
    #[schema(max_items = 50)]
    pub options: Option<Vec<String>>,
}

/// The workspace's custom contact fields.
#[utoipa::path(get, path = "/v1/contact-fields", tag = "contacts", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Fields", body = FieldList)))]
pub async fn list_fields(State(state): State<AppState>, _a: Authenticated) -> Result<Json<FieldList>, ApiError> {
    let r = client(&state).list_fields(pb::Empty {}).await?.into_inner();
    Ok(Json(FieldList { items: r.items.into_iter().map(field).collect() }))
}

/// Define or relabel a custom field (its type cannot change once defined).
#[utoipa::path(put, path = "/v1/contact-fields/{key}", tag = "contacts", security(("bearer" = []), ("api_key" = [])),
    params(("key" = String, Path, example = "tier", pattern = "^[a-z][a-z0-9_]{0,39}$")),
    request_body = FieldRequest,
    responses((status = 200, description = "The field", body = FieldBody), (status = 400, description = "Invalid key, label, type or options", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot define fields", body = ErrorEnvelope),
        (status = 409, description = "The field exists with another type, or the workspace has as many fields as allowed", body = ErrorEnvelope)))]
pub async fn define_field(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(key): ApiPath<String>,
    ApiJson(b): ApiJson<FieldRequest>,
) -> Result<Json<FieldBody>, ApiError> {
    let req = pb::FieldDefinition { key, label: b.label, kind: b.kind, options: b.options.unwrap_or_default() };
    Ok(Json(field(client(&state).define_field(req).await?.into_inner())))
}

/// Delete a custom field definition (values already stored stay on the contacts).
#[utoipa::path(delete, path = "/v1/contact-fields/{key}", tag = "contacts", security(("bearer" = []), ("api_key" = [])),
    params(("key" = String, Path, example = "tier")),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Viewers cannot delete fields", body = ErrorEnvelope),
        (status = 404, description = "No such field", body = ErrorEnvelope)))]
pub async fn delete_field(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(key): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).delete_field(pb::DeleteFieldRequest { key }).await?;
    Ok(StatusCode::NO_CONTENT)
}
