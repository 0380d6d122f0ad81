//! `nexus.messaging.v1.ContactTransfer`: CSV import (client stream: options first, then bytes),
//! import progress and errors, and CSV export (server stream).

use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use nexus_kernel::Error;
use nexus_platform::grpc::{status, ts};
use nexus_platform::identity::principal;
use nexus_proto::common::PageInfo;
use nexus_proto::nexus::messaging::v1::{self as pb, contact_transfer_server::ContactTransfer, import_chunk::Part};
use tonic::{Request, Response, Status, Streaming};

use crate::app::App;
use crate::app::transfer::{ConsentOption, ImportErrorView, ImportOptions};
use crate::domain::contact::ContactQuery;
use crate::domain::import::{Import, Limits};
use nexus_platform::grpc::page_request;

pub struct TransferService {
    pub app: std::sync::Arc<App>,
}

type R<T> = Result<Response<T>, Status>;
type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportChunk, Status>> + Send>>;

pub fn import(i: Import) -> pb::Import {
    pb::Import {
        id: i.id.to_string(),
        status: i.status.as_str().to_owned(),
        dry_run: i.dry_run,
        total_rows: i.total_rows,
        created: i.created,
        updated: i.updated,
        failed: i.failed,
        created_at: Some(ts(i.created_at)),
        finished_at: i.finished_at.map(ts),
    }
}

fn import_error(e: ImportErrorView) -> pb::ImportError {
    pb::ImportError { line: e.line, field: e.field, code: e.code, message: e.message }
}

fn options(o: pb::ImportOptions) -> ImportOptions {
    ImportOptions {
        mapping: o.mapping.into_iter().collect(),
        dry_run: o.dry_run,
        tags: o.tags,
        consent: o.consent.map(|c| ConsentOption {
            channel: c.channel,
            purpose: c.purpose,
            status: c.status,
            source: c.source,
            proof: c.proof,
        }),
    }
}

/// The data chunks after the options, up to the `end` marker. A second options message, a
/// broken stream, or one that closes without `end` (a cancelled upload looks closed to the
/// server) ends the import with an error, so a partial file is never taken for the whole.
fn data(rest: Streaming<pb::ImportChunk>) -> impl Stream<Item = Result<Bytes, Error>> + Send + 'static {
    futures::stream::unfold(Some(rest), |state| async move {
        let mut rest = state?;
        let interrupted = || Error::invalid("messaging.import_interrupted");
        match rest.message().await {
            Ok(Some(pb::ImportChunk { part: Some(Part::Data(d)) })) => Some((Ok(d.into()), Some(rest))),
            Ok(Some(pb::ImportChunk { part: Some(Part::End(true)) })) => None,
            Ok(Some(_)) => Some((
                Err(Error::invalid("messaging.import_options_first").with_violation("options", "repeated")),
                None,
            )),
            Ok(None) => Some((Err(interrupted()), None)),
            Err(s) => Some((Err(interrupted().with_source(s)), None)),
        }
    })
}

#[tonic::async_trait]
impl ContactTransfer for TransferService {
    async fn import_contacts(&self, req: Request<Streaming<pb::ImportChunk>>) -> R<pb::Import> {
        let p = principal(&req)?;
        let mut stream = req.into_inner();
        let first = stream.message().await?.ok_or_else(|| {
            status(Error::invalid("messaging.import_options_first").with_violation("options", "missing"))
        })?;
        let Some(Part::Options(o)) = first.part else {
            return Err(status(Error::invalid("messaging.import_options_first").with_violation("options", "missing")));
        };
        let done = self.app.import_contacts(&p, options(o), data(stream), Limits::default()).await.map_err(status)?;
        Ok(Response::new(import(done)))
    }

    async fn get_import(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Import> {
        let p = principal(&req)?;
        let found = self.app.import(&p, &req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(import(found)))
    }

    async fn list_import_errors(&self, req: Request<pb::ListImportErrorsRequest>) -> R<pb::ImportErrorPage> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let page = page_request(r.page)?;
        let found = self.app.import_errors(&p, &r.import_id, &page).await.map_err(status)?;
        Ok(Response::new(pb::ImportErrorPage {
            items: found.items.into_iter().map(import_error).collect(),
            page: Some(PageInfo { next_cursor: found.next_cursor.unwrap_or_default() }),
        }))
    }

    type ExportContactsStream = ExportStream;

    async fn export_contacts(&self, req: Request<pb::ExportRequest>) -> R<Self::ExportContactsStream> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let query =
            ContactQuery { segment_id: Some(r.segment_id).filter(|s| !s.trim().is_empty()), ..Default::default() };
        let chunks = self.app.export_contacts(&p, query).await.map_err(status)?;
        let out = chunks.map(|c| c.map(|data| pb::ExportChunk { data: data.to_vec() }).map_err(status));
        Ok(Response::new(Box::pin(out)))
    }
}
