//! The one hook on server spans: rename a span or add attributes from the
//! request, before the span starts (tower-http's `MakeSpan` idea, without a
//! type parameter on the layer).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::{Extensions, HeaderMap, Method, Uri};
use opentelemetry::KeyValue;

/// The parts of a request a hook can read (the body is not there yet).
#[derive(Debug)]
pub struct RequestHead<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) extensions: &'a Extensions,
}

impl RequestHead<'_> {
    /// The request method.
    pub fn method(&self) -> &Method {
        self.method
    }

    /// The request URI (as the client sent it: path and query are its text).
    pub fn uri(&self) -> &Uri {
        self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        self.headers
    }

    /// The request extensions (axum's `MatchedPath`, your own types).
    pub fn extensions(&self) -> &Extensions {
        self.extensions
    }
}

/// A server span about to start: its name and attributes as the layer made
/// them, which the hook may change.
#[derive(Debug)]
pub struct SpanStart<'a> {
    pub(crate) name: &'a mut Cow<'static, str>,
    pub(crate) attributes: &'a mut Vec<KeyValue>,
}

impl SpanStart<'_> {
    /// The span's name (`{method} {route}` unless changed).
    pub fn name(&self) -> &str {
        self.name
    }

    /// Renames the span. A name is low-cardinality by convention: build it
    /// from templates, never from raw client text.
    pub fn set_name(&mut self, name: impl Into<Cow<'static, str>>) {
        *self.name = name.into();
    }

    /// Adds an attribute (an existing one with the same key is replaced).
    pub fn set_attribute(&mut self, attribute: KeyValue) {
        self.attributes.retain(|kv| kv.key != attribute.key);
        self.attributes.push(attribute);
    }

    /// The attributes so far.
    pub fn attributes(&self) -> &[KeyValue] {
        self.attributes
    }
}

type HookFn = dyn Fn(&RequestHead<'_>, &mut SpanStart<'_>) + Send + Sync;

/// A hook given to [`ServerLayerBuilder::on_request`](super::ServerLayerBuilder::on_request).
#[derive(Clone)]
pub(crate) struct Hook(pub(crate) Arc<HookFn>);

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hook")
    }
}
