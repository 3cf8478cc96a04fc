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

/// The longest `/package.Service/Method` path taken as a gRPC method.
pub(crate) const MAX_METHOD_PATH: usize = 256;

/// `(package.Service, Method)` of a gRPC request path, when it has the
/// form the gRPC protocol gives it (`/` service `/` method, protobuf
/// identifiers joined by dots, at most [`MAX_METHOD_PATH`] bytes). The path
/// is the client's text: anything else never names a span.
pub(crate) fn method_of(path: &str) -> Option<(&str, &str)> {
    if path.len() > MAX_METHOD_PATH {
        return None;
    }
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let identifier = |part: &str| {
        part.as_bytes()
            .first()
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
            && part.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
    };
    (service.split('.').all(identifier) && identifier(method)).then_some((service, method))
}

/// `rpc.system`, and `rpc.service`, `rpc.method` from a valid
/// `/package.Service/Method` path.
pub(crate) fn rpc_attributes(path: &str, attrs: &mut Vec<KeyValue>) {
    attrs.push(KeyValue::new(RPC_SYSTEM, "grpc"));
    if let Some((service, method)) = method_of(path) {
        attrs.push(KeyValue::new(RPC_SERVICE, service.to_owned()));
        attrs.push(KeyValue::new(RPC_METHOD, method.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_method_paths_are_methods() {
        assert_eq!(
            method_of("/grpc.health.v1.Health/Check"),
            Some(("grpc.health.v1.Health", "Check"))
        );
        assert_eq!(method_of("/Svc/_do_it2"), Some(("Svc", "_do_it2")));
        for bad in [
            "", "/", "/a", "/a/", "//m", "/a/b/c", "/a..b/m", "/a/m?x=1", "/1a/m", "/a b/m",
            "/é/m", "no/slash",
        ] {
            assert_eq!(method_of(bad), None, "{bad:?}");
        }
        let long = format!("/{}/m", "a".repeat(MAX_METHOD_PATH));
        assert_eq!(method_of(&long), None);
    }
}
