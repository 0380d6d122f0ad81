//! gRPC adapters: proto <-> app conversion, one module per gRPC service. Permission checks live
//! in the use cases; adapters only take the caller's principal from the request.

pub mod contacts;
pub mod crm;
pub mod transfer;
pub mod webhooks;

use nexus_kernel::{Page, PageRequest};
use nexus_platform::grpc::status;
use nexus_proto::common::PageInfo;
use tonic::{Response, Status};

type R<T> = Result<Response<T>, Status>;

/// The page a request asks for (size and opaque cursor checked).
fn page(p: Option<nexus_proto::common::PageRequest>) -> Result<PageRequest, Status> {
    let p = p.unwrap_or_default();
    PageRequest::new(Some(p.page_size), Some(p.cursor)).map_err(status)
}

fn page_info<T>(p: &Page<T>) -> Option<PageInfo> {
    Some(PageInfo { next_cursor: p.next_cursor.clone().unwrap_or_default() })
}

/// A proto map of strings as JSON values (custom fields travel as strings; the field's kind
/// decides how each is read).
fn string_map(m: std::collections::HashMap<String, String>) -> serde_json::Map<String, serde_json::Value> {
    m.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect()
}

fn value_string(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
