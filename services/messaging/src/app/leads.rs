//! Leads captured on published pages (content's `page.lead_captured`) into the contact book.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, Locale, TenantId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::consent::{Channel, Consent, ConsentStatus, Purpose};
use crate::domain::contact::{ContactDraft, ContactInput, IdentityKind, Stage};
use crate::{events, repo};

/// Who acts for leads in activities and audit rows.
const ACTOR: &str = "svc:content";

/// Who acts for a stage the platform moved.
const ACTOR_SYSTEM: &str = "system";

/// A lead as content reported it.
#[derive(Debug, Clone)]
pub struct Lead<'a> {
    pub lead_id: &'a str,
    pub page_id: &'a str,
    pub slug: &'a str,
    pub language: Option<Locale>,
    pub name: &'a str,
    pub email: &'a str,
    pub phone: &'a str,
    pub message: &'a str,
    pub consent: bool,
    pub occurred_at: Option<DateTime<Utc>>,
}

/// Creates or completes the lead's contact (found by email identity, then by phone or email)
/// and adds one `lead` activity per lead, inside the consumer's tenant transaction. Details the
/// book refuses (a phone it cannot read) are left out rather than losing the lead.
pub async fn capture(tx: &mut PgConnection, tenant: TenantId, lead: &Lead<'_>) -> Result<(), Error> {
    let person = Person { name: lead.name, email: lead.email, phone: lead.phone, language: lead.language };
    let source = format!("page:{}", lead.slug);
    let Some((contact, draft)) = find_or_add(tx, tenant, &person, &source, ("lead", Stage::Lead), None).await? else {
        tracing::warn!(lead = lead.lead_id, "lead without a usable name, phone or email: not added to the book");
        return Ok(());
    };
    let phone = draft.phone.as_ref().map(|p| p.as_str().to_owned());
    let email = draft.email.as_ref().map(|e| e.as_str().to_owned());
    let at = lead.occurred_at.unwrap_or_else(Utc::now);
    let activity = repo::activities::NewActivity {
        contact,
        kind: "lead",
        body: lead.message,
        data: serde_json::json!({ "page_id": lead.page_id, "slug": lead.slug, "lead_id": lead.lead_id }),
        actor: ACTOR,
        occurred_at: at,
        source_key: Some(&format!("lead:{}", lead.lead_id)),
    };
    let first_time = repo::activities::insert(tx, tenant, &activity).await?;
    if first_time && lead.consent {
        // The form's consent box covers the channels the person gave us.
        let channels = [(Channel::Email, email.is_some()), (Channel::Whatsapp, phone.is_some())];
        for (channel, given) in channels {
            if given {
                let consent = Consent {
                    channel,
                    purpose: Purpose::Marketing,
                    status: ConsentStatus::Granted,
                    source: "form".into(),
                    proof: format!("lead form on page /p/{} (lead {})", lead.slug, lead.lead_id),
                    changed_at: at,
                };
                super::contacts::record_consent(tx, tenant, contact, &consent, ACTOR).await?;
            }
        }
    }
    Ok(())
}

/// A person another service reported (a page's lead, a store's buyer), as it gave them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Person<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub phone: &'a str,
    pub language: Option<Locale>,
}

/// The contact of `person` (found by email identity, then by phone or email), completed with
/// what it lacks and moved up to `promote` when given and later in the lifecycle; or a new one
/// with `source` and `stage` (`contact.created` says `created_as`). The email becomes an
/// identity of the contact. `None` when nothing usable identifies the person. Answers the
/// contact and the person's valid details.
pub(crate) async fn find_or_add(
    tx: &mut PgConnection,
    tenant: TenantId,
    person: &Person<'_>,
    source: &str,
    (created_as, stage): (&str, Stage),
    promote: Option<Stage>,
) -> Result<Option<(Uuid, ContactDraft)>, Error> {
    let region = repo::book::default_region(tx).await?;
    let draft = tolerant_draft(person, region.as_deref());
    if draft.phone.is_none() && draft.email.is_none() && draft.name.is_none() {
        return Ok(None);
    }
    let phone = draft.phone.as_ref().map(|p| p.as_str().to_owned());
    let email = draft.email.as_ref().map(|e| e.as_str().to_owned());
    let mut found = match &email {
        Some(e) => repo::contacts::by_identity(tx, IdentityKind::Email, e).await?,
        None => None,
    };
    if found.is_none() {
        found = repo::contacts::find_by_phone_or_email(tx, phone.as_deref(), email.as_deref()).await?;
    }
    let contact = match found {
        Some(id) => {
            complete(tx, tenant, id, &draft, promote).await?;
            id
        }
        None => {
            let id = Uuid::now_v7();
            let new = repo::contacts::NewContact {
                draft: &ContactDraft { stage: Some(stage), source: Some(source.to_owned()), ..draft.clone() },
                fields: &serde_json::Map::new(),
                owner_id: None,
            };
            repo::contacts::insert(tx, tenant, id, &new).await?;
            events::contact_created(tx, tenant, id, created_as, stage).await?;
            id
        }
    };
    if let Some(e) = &email {
        repo::contacts::add_identity(tx, tenant, contact, IdentityKind::Email, e).await?;
    }
    Ok(Some((contact, draft)))
}

/// The person's details, each kept only if valid.
fn tolerant_draft(person: &Person<'_>, region: Option<&str>) -> ContactDraft {
    let one = |input: ContactInput<'_>| input.check(region).unwrap_or_default();
    ContactDraft {
        name: one(ContactInput { name: Some(person.name), ..Default::default() }).name,
        phone: one(ContactInput { phone: Some(person.phone), ..Default::default() }).phone,
        email: one(ContactInput { email: Some(person.email), ..Default::default() }).email,
        language: person.language,
        ..Default::default()
    }
}

/// Whether a contact in `from` moves to `to`: only forward, from the stages before a customer.
fn moves_up(from: Stage, to: Stage) -> bool {
    let rank = |s: Stage| match s {
        Stage::Subscriber => 0,
        Stage::Lead => 1,
        Stage::Qualified => 2,
        Stage::Opportunity => 3,
        Stage::Customer => 4,
        Stage::Evangelist => 5,
        // A stage the workspace chose outside the funnel is theirs to change.
        Stage::Other => 6,
    };
    from != Stage::Other && rank(to) > rank(from)
}

/// Fills what an existing contact lacks from the person; never overwrites what the workspace
/// entered, and never takes a phone or email another contact holds. `promote` moves the stage
/// forward only.
async fn complete(
    tx: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    draft: &ContactDraft,
    promote: Option<Stage>,
) -> Result<(), Error> {
    let Some(c) = repo::contacts::get_for_update(tx, id).await? else { return Ok(()) };
    let mut changed = Vec::new();
    let name = if c.name.is_empty() && draft.name.is_some() {
        changed.push("name".to_owned());
        draft.name.clone().unwrap_or_default()
    } else {
        c.name.clone()
    };
    let mut phone = c.phone.clone();
    if phone.is_none()
        && let Some(p) = &draft.phone
        && repo::contacts::find_by_phone_or_email(tx, Some(p.as_str()), None).await?.is_none()
    {
        phone = Some(p.as_str().to_owned());
        changed.push("phone".to_owned());
    }
    let mut email = c.email.clone();
    if email.is_none()
        && let Some(e) = &draft.email
        && repo::contacts::find_by_phone_or_email(tx, None, Some(e.as_str())).await?.is_none()
    {
        email = Some(e.as_str().to_owned());
        changed.push("email".to_owned());
    }
    let language = c.language.or(draft.language);
    if language != c.language {
        changed.push("language".to_owned());
    }
    let stage = match promote {
        Some(to) if moves_up(c.stage, to) => to,
        _ => c.stage,
    };
    if stage != c.stage {
        changed.push("stage".to_owned());
    }
    if changed.is_empty() {
        return Ok(());
    }
    let a = repo::contacts::Attributes {
        name: &name,
        phone: phone.as_deref(),
        email: email.as_deref(),
        language,
        tags: &c.tags,
        fields: &c.fields,
        owner_id: c.owner_id,
        stage: stage.as_str(),
        source: &c.source,
    };
    repo::contacts::update(tx, id, &a).await?;
    if stage != c.stage {
        super::contacts::stage_changed(tx, tenant, id, (c.stage, stage), ACTOR_SYSTEM).await?;
    }
    events::contact_updated(tx, tenant, id, &changed, (c.stage, stage)).await
}
