//! gRPC adapters: proto <-> app conversion, one module per gRPC service. Permission checks live
//! in the use cases; adapters only take the caller's principal from the request.

pub mod contacts;
pub mod crm;
pub mod transfer;
pub mod webhooks;
pub mod whatsapp;

use nexus_platform::grpc::{page_info, page_request as page};
use tonic::{Response, Status};

type R<T> = Result<Response<T>, Status>;

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
