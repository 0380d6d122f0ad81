//! The contact book of the messaging service as audiences read it: a saved segment's size and
//! its contacts page by page (a segment may hold a million contacts; none is kept longer than
//! its page), called as this service acting for the workspace.

use std::sync::Arc;

use nexus_kernel::{Error, TenantId};
use nexus_platform::grpc::{ContextChannel, upstream_error};
use nexus_platform::identity::ServiceTokens;
use nexus_proto::nexus::common::v1::PageRequest;
use nexus_proto::nexus::messaging::v1 as mpb;

use crate::domain::audiences::{ConsentMark, SegmentContact};

/// Contacts per page read (the most the contact search answers).
pub const PAGE: u32 = 100;

/// The contact book as this service sees it (acting for a workspace).
#[async_trait::async_trait]
pub trait ContactBook: Send + Sync {
    /// How many contacts the segment holds now. Unknown or another workspace's: not found.
    async fn segment_size(&self, tenant: TenantId, segment: &str) -> Result<u64, Error>;
    /// One page of the segment's contacts after `cursor` (empty: the first); the next cursor,
    /// empty after the last page.
    async fn page(&self, tenant: TenantId, segment: &str, cursor: &str)
    -> Result<(Vec<SegmentContact>, String), Error>;
    /// Whether the workspace said "do not sell or share" (CCPA) for its whole contact book.
    async fn do_not_sell(&self, tenant: TenantId) -> Result<bool, Error>;
}

/// [`ContactBook`] over the messaging service's gRPC API, with this service's own tokens.
pub struct MessagingContacts {
    pub channel: ContextChannel,
    pub tokens: Arc<ServiceTokens>,
}

#[async_trait::async_trait]
impl ContactBook for MessagingContacts {
    async fn segment_size(&self, tenant: TenantId, segment: &str) -> Result<u64, Error> {
        let mut client = mpb::crm_client::CrmClient::new(self.channel.clone());
        let ctx = self.tokens.context(Some(tenant)).await?;
        let s = ctx
            .scope(client.get_segment(mpb::GetByIdRequest { id: segment.to_owned() }))
            .await
            .map_err(|s| upstream_error(&s))?
            .into_inner();
        Ok(u64::try_from(s.count).unwrap_or(0))
    }

    async fn page(
        &self,
        tenant: TenantId,
        segment: &str,
        cursor: &str,
    ) -> Result<(Vec<SegmentContact>, String), Error> {
        let mut client = mpb::contacts_client::ContactsClient::new(self.channel.clone());
        let ctx = self.tokens.context(Some(tenant)).await?;
        let req = mpb::SearchContactsRequest {
            page: Some(PageRequest { page_size: PAGE, cursor: cursor.to_owned() }),
            segment_id: segment.to_owned(),
            ..Default::default()
        };
        let found = ctx.scope(client.search_contacts(req)).await.map_err(|s| upstream_error(&s))?.into_inner();
        let contacts = found
            .items
            .into_iter()
            .map(|c| SegmentContact {
                email: c.email,
                phone: c.phone,
                anonymized: c.anonymized,
                consents: c
                    .consents
                    .into_iter()
                    .map(|k| ConsentMark { purpose: k.purpose, status: k.status })
                    .collect(),
            })
            .collect();
        Ok((contacts, found.page.map(|p| p.next_cursor).unwrap_or_default()))
    }

    async fn do_not_sell(&self, tenant: TenantId) -> Result<bool, Error> {
        let mut client = mpb::contacts_client::ContactsClient::new(self.channel.clone());
        let ctx = self.tokens.context(Some(tenant)).await?;
        let s = ctx.scope(client.get_settings(mpb::Empty {})).await.map_err(|s| upstream_error(&s))?.into_inner();
        Ok(s.do_not_sell.unwrap_or(false))
    }
}
