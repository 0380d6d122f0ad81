//! `nexus.messaging.v1.Contacts`.

use std::sync::Arc;

use nexus_platform::grpc::{status, ts};
use nexus_platform::identity::{Principal, principal};
use nexus_proto::nexus::messaging::v1::{self as pb, contacts_server::Contacts};
use tonic::{Request, Response};

use super::{R, page, page_info, string_map, value_string};
use crate::app::App;
use crate::app::contacts::{ConsentChange, ContactPatch};
use crate::domain::contact::{Contact, ContactInput, ContactQuery};
use crate::domain::fields::FieldDef;

pub struct ContactsService {
    pub app: Arc<App>,
}

pub(crate) fn contact(c: Contact) -> pb::Contact {
    pb::Contact {
        id: c.id.to_string(),
        name: c.name,
        phone: c.phone.unwrap_or_default(),
        email: c.email.unwrap_or_default(),
        language: c.language.map(|l| l.code().to_owned()).unwrap_or_default(),
        tags: c.tags,
        fields: c.fields.iter().map(|(k, v)| (k.clone(), value_string(v))).collect(),
        owner_id: c.owner_id.map(|o| nexus_kernel::UserId::from_uuid(o).to_string()).unwrap_or_default(),
        stage: c.stage.as_str().to_owned(),
        source: c.source,
        identities: c
            .identities
            .into_iter()
            .map(|(kind, value)| pb::Identity { kind: kind.as_str().to_owned(), value })
            .collect(),
        consents: c
            .consents
            .into_iter()
            .map(|k| pb::Consent {
                channel: k.channel.as_str().to_owned(),
                purpose: k.purpose.as_str().to_owned(),
                status: k.status.as_str().to_owned(),
                source: k.source,
                proof: k.proof,
                changed_at: Some(ts(k.changed_at)),
            })
            .collect(),
        anonymized: c.anonymized,
        created_at: Some(ts(c.created_at)),
        updated_at: Some(ts(c.updated_at)),
    }
}

fn field(f: FieldDef) -> pb::FieldDefinition {
    pb::FieldDefinition { key: f.key, label: f.label, kind: f.kind.as_str().to_owned(), options: f.options }
}

/// Input fields as given: the use case decides what an empty string means.
fn input(c: &pb::ContactInput) -> ContactInput<'_> {
    ContactInput {
        name: Some(&c.name),
        phone: Some(&c.phone),
        email: Some(&c.email),
        language: Some(&c.language),
        tags: Some(&c.tags),
        stage: Some(&c.stage),
        source: Some(&c.source),
    }
}

impl ContactsService {
    async fn settings(&self, p: &Principal, region: Option<String>) -> R<pb::BookSettings> {
        let (do_not_sell, changed_at) = self.app.do_not_sell(p).await.map_err(status)?;
        Ok(Response::new(pb::BookSettings {
            default_region: region.unwrap_or_default(),
            do_not_sell: Some(do_not_sell),
            do_not_sell_changed_at: changed_at.map(ts),
        }))
    }
}

#[tonic::async_trait]
impl Contacts for ContactsService {
    async fn get_settings(&self, req: Request<pb::Empty>) -> R<pb::BookSettings> {
        let p = principal(&req)?;
        let region = self.app.default_region(&p).await.map_err(status)?;
        self.settings(&p, region).await
    }

    async fn update_settings(&self, req: Request<pb::BookSettings>) -> R<pb::BookSettings> {
        let p = principal(&req)?;
        let region = self.app.set_default_region(&p, &req.get_ref().default_region).await.map_err(status)?;
        if let Some(on) = req.get_ref().do_not_sell {
            self.app.set_do_not_sell(&p, on).await.map_err(status)?;
        }
        self.settings(&p, region).await
    }

    async fn create_contact(&self, req: Request<pb::ContactInput>) -> R<pb::Contact> {
        let p = principal(&req)?;
        let c = req.get_ref();
        let fields = string_map(c.fields.clone());
        let created = self.app.create_contact(&p, &input(c), &fields, &c.owner_id).await.map_err(status)?;
        Ok(Response::new(contact(created)))
    }

    async fn get_contact(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Contact> {
        let p = principal(&req)?;
        let found = self.app.contact(&p, &req.get_ref().id).await.map_err(status)?;
        Ok(Response::new(contact(found)))
    }

    async fn update_contact(&self, req: Request<pb::UpdateContactRequest>) -> R<pb::Contact> {
        let p = principal(&req)?;
        let r = req.get_ref();
        let given = r.contact.clone().unwrap_or_default();
        let patch = ContactPatch {
            input: input(&given),
            fields: string_map(given.fields.clone()),
            owner_id: &given.owner_id,
            mask: r.update_mask.clone(),
        };
        let updated = self.app.update_contact(&p, &r.id, &patch).await.map_err(status)?;
        Ok(Response::new(contact(updated)))
    }

    async fn anonymize_contact(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Contact> {
        let p = principal(&req)?;
        let done = self.app.anonymize_contact(&p, &req.get_ref().id).await.map_err(status)?;
        Ok(Response::new(contact(done)))
    }

    async fn search_contacts(&self, req: Request<pb::SearchContactsRequest>) -> R<pb::ContactPage> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let page = page(r.page)?;
        let mut query = ContactQuery::new(&r.text, &r.tags, &r.stage).map_err(status)?;
        query.segment_id = Some(r.segment_id).filter(|s| !s.trim().is_empty());
        let found = self.app.search_contacts(&p, query, &string_map(r.fields), &page).await.map_err(status)?;
        let info = page_info(&found);
        Ok(Response::new(pb::ContactPage { items: found.items.into_iter().map(contact).collect(), page: info }))
    }

    async fn merge_contacts(&self, req: Request<pb::MergeContactsRequest>) -> R<pb::Contact> {
        let p = principal(&req)?;
        let r = req.get_ref();
        let kept = self.app.merge_contacts(&p, &r.kept_id, &r.merged_id).await.map_err(status)?;
        Ok(Response::new(contact(kept)))
    }

    async fn add_identity(&self, req: Request<pb::AddIdentityRequest>) -> R<pb::Contact> {
        let p = principal(&req)?;
        let r = req.get_ref();
        let identity = r.identity.clone().unwrap_or_default();
        let c = self.app.add_identity(&p, &r.contact_id, &identity.kind, &identity.value).await.map_err(status)?;
        Ok(Response::new(contact(c)))
    }

    async fn set_consent(&self, req: Request<pb::SetConsentRequest>) -> R<pb::Contact> {
        let p = principal(&req)?;
        let r = req.get_ref();
        let change = ConsentChange {
            channel: &r.channel,
            purpose: &r.purpose,
            status: &r.status,
            source: &r.source,
            proof: &r.proof,
        };
        let c = self.app.set_consent(&p, &r.contact_id, &change).await.map_err(status)?;
        Ok(Response::new(contact(c)))
    }

    async fn define_field(&self, req: Request<pb::FieldDefinition>) -> R<pb::FieldDefinition> {
        let p = principal(&req)?;
        let f = req.get_ref();
        let saved = self.app.define_field(&p, &f.key, &f.label, &f.kind, &f.options).await.map_err(status)?;
        Ok(Response::new(field(saved)))
    }

    async fn list_fields(&self, req: Request<pb::Empty>) -> R<pb::FieldList> {
        let p = principal(&req)?;
        let fields = self.app.fields(&p).await.map_err(status)?;
        Ok(Response::new(pb::FieldList { items: fields.into_iter().map(field).collect() }))
    }

    async fn delete_field(&self, req: Request<pb::DeleteFieldRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.app.delete_field(&p, &req.get_ref().key).await.map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }
}
