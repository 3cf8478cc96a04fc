//! gRPC over HTTP/2: recognised by its content type, named
//! `{package.Service}/{Method}`, with the `rpc.*` attributes.

use http::{HeaderMap, HeaderValue};
use opentelemetry::KeyValue;

use crate::attributes::{RPC_METHOD, RPC_SERVICE, RPC_SYSTEM};

/// Whether a request is gRPC (`content-type: application/grpc...`).
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    is_grpc_content_type(headers.get(http::header::CONTENT_TYPE))
}

/// Whether a `content-type` value is gRPC's.
pub(crate) fn is_grpc_content_type(content_type: Option<&HeaderValue>) -> bool {
    content_type.is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"))
}

/// `rpc.system`, `rpc.service`, `rpc.method` from `/package.Service/Method`.
pub(crate) fn rpc_attributes(path: &str, attrs: &mut Vec<KeyValue>) {
    attrs.push(KeyValue::new(RPC_SYSTEM, "grpc"));
    if let Some((service, method)) = path.trim_start_matches('/').split_once('/') {
        attrs.push(KeyValue::new(RPC_SERVICE, service.to_owned()));
        attrs.push(KeyValue::new(RPC_METHOD, method.to_owned()));
    }
}
