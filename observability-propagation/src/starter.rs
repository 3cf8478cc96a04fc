//! Spans the global tracer provider can start without its tracer.
//!
//! Asking a tracer for a span goes through the SDK's generic path: a span
//! builder, the sampler's full result, a span boxed once by the SDK and once
//! more by the global tracer, and on end a copy into the form processors
//! take. Whoever installs the global tracer provider
//! (`observability_core::init()`) can register a [`SpanStarter`] here that
//! makes the same span (the same sampling decision, span context, limits and
//! processors) in one step; the HTTP layers use it for their spans when one
//! is registered, and the tracer otherwise. Nothing downstream can tell the
//! difference: the span in the context is a span like any other.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, RwLock};

use opentelemetry::trace::{SpanContext, SpanKind};
use opentelemetry::{Context, InstrumentationScope, KeyValue, StringValue};

/// A span's name, asked for only when the span records, with its
/// attributes: an HTTP server span's request attributes may go in the
/// second argument as they are ([`HttpServerRequest`]), and the others are
/// pushed onto the list, which the span lists after them. The list is
/// empty, but it may have room an earlier span's attributes left (a starter
/// can reuse it): push, do not replace it.
pub type Describe<'a> =
    &'a mut dyn FnMut(&mut Vec<KeyValue>, &mut Option<HttpServerRequest>) -> Cow<'static, str>;

/// The attributes an HTTP server span takes from its request, as they
/// are, and later its response's status code: a starter may keep them so
/// and write them out without a `KeyValue` each.
/// [`push_to`](Self::push_to) gives them as `KeyValue`s, in the order a
/// span lists them, to whatever needs a list.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpServerRequest {
    /// `http.request.method`.
    pub method: &'static str,
    /// `http.request.method_original`, for a method the conventions do not
    /// name.
    pub method_original: Option<String>,
    /// `http.route`.
    pub route: Option<StringValue>,
    /// `url.path`.
    pub path: StringValue,
    /// `url.query`, as it may be recorded.
    pub query: Option<String>,
    /// `url.scheme`.
    pub scheme: StringValue,
    /// `server.address`.
    pub server_address: Option<StringValue>,
    /// `server.port`.
    pub server_port: Option<u16>,
    /// `client.address`.
    pub client_address: Option<StringValue>,
    /// `network.peer.address` and `network.peer.port`.
    pub peer: Option<(StringValue, u16)>,
    /// `network.protocol.version`.
    pub protocol_version: Option<&'static str>,
    /// `user_agent.original`.
    pub user_agent: Option<StringValue>,
    /// `http.response.status_code`: `None` from the request, and kept here
    /// by a starter's span when the layer sets it (see
    /// [`keep_status_code`](Self::keep_status_code)).
    pub status_code: Option<i64>,
}

/// The value of one of [`HttpServerRequest`]'s attributes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RequestValue<'a> {
    /// A string.
    Text(&'a str),
    /// An integer (a port).
    Int(i64),
}

impl HttpServerRequest {
    /// `http.request.method`.
    pub const METHOD: &'static str = "http.request.method";
    /// `http.request.method_original`.
    pub const METHOD_ORIGINAL: &'static str = "http.request.method_original";
    /// `http.route`.
    pub const ROUTE: &'static str = "http.route";
    /// `url.path`.
    pub const PATH: &'static str = "url.path";
    /// `url.query`.
    pub const QUERY: &'static str = "url.query";
    /// `url.scheme`.
    pub const SCHEME: &'static str = "url.scheme";
    /// `server.address`.
    pub const SERVER_ADDRESS: &'static str = "server.address";
    /// `server.port`.
    pub const SERVER_PORT: &'static str = "server.port";
    /// `client.address`.
    pub const CLIENT_ADDRESS: &'static str = "client.address";
    /// `network.peer.address`.
    pub const PEER_ADDRESS: &'static str = "network.peer.address";
    /// `network.peer.port`.
    pub const PEER_PORT: &'static str = "network.peer.port";
    /// `network.protocol.version`.
    pub const PROTOCOL_VERSION: &'static str = "network.protocol.version";
    /// `user_agent.original`.
    pub const USER_AGENT: &'static str = "user_agent.original";
    /// `http.response.status_code`.
    pub const STATUS_CODE: &'static str = "http.response.status_code";

    /// A request of `method` for `path` over `scheme`, with nothing else
    /// known: the three attributes every server span has.
    pub fn new(
        method: &'static str,
        path: impl Into<StringValue>,
        scheme: impl Into<StringValue>,
    ) -> Self {
        Self {
            method,
            method_original: None,
            route: None,
            path: path.into(),
            query: None,
            scheme: scheme.into(),
            server_address: None,
            server_port: None,
            client_address: None,
            peer: None,
            protocol_version: None,
            user_agent: None,
            status_code: None,
        }
    }

    /// Every key [`for_each`](Self::for_each) may give.
    pub const KEYS: &'static [&'static str] = &[
        Self::METHOD,
        Self::METHOD_ORIGINAL,
        Self::ROUTE,
        Self::PATH,
        Self::QUERY,
        Self::SCHEME,
        Self::SERVER_ADDRESS,
        Self::SERVER_PORT,
        Self::CLIENT_ADDRESS,
        Self::PEER_ADDRESS,
        Self::PEER_PORT,
        Self::PROTOCOL_VERSION,
        Self::USER_AGENT,
        Self::STATUS_CODE,
    ];

    /// Keeps `attribute`'s value as [`status_code`](Self::status_code) when
    /// it is the response's status code (its key, an integer) and none is
    /// kept yet; `false` for any other attribute, which goes in the span's
    /// list. With it, a starter's span keeps the status code the layer sets
    /// beside the request's attributes, without a `KeyValue`.
    #[inline]
    pub fn keep_status_code(&mut self, attribute: &KeyValue) -> bool {
        match attribute.value {
            opentelemetry::Value::I64(code)
                if self.status_code.is_none() && attribute.key.as_str() == Self::STATUS_CODE =>
            {
                self.status_code = Some(code);
                true
            }
            _ => false,
        }
    }

    /// Calls `f` with each attribute's key and value, in the order a span
    /// lists them. Inlined, so that each key is a constant where `f` uses
    /// it.
    #[inline(always)]
    pub fn for_each(&self, mut f: impl FnMut(&'static str, RequestValue<'_>)) {
        use RequestValue::{Int, Text};
        f(Self::METHOD, Text(self.method));
        if let Some(original) = &self.method_original {
            f(Self::METHOD_ORIGINAL, Text(original));
        }
        if let Some(route) = &self.route {
            f(Self::ROUTE, Text(route.as_str()));
        }
        f(Self::PATH, Text(self.path.as_str()));
        if let Some(query) = &self.query {
            f(Self::QUERY, Text(query));
        }
        f(Self::SCHEME, Text(self.scheme.as_str()));
        if let Some(address) = &self.server_address {
            f(Self::SERVER_ADDRESS, Text(address.as_str()));
        }
        if let Some(port) = self.server_port {
            f(Self::SERVER_PORT, Int(i64::from(port)));
        }
        if let Some(client) = &self.client_address {
            f(Self::CLIENT_ADDRESS, Text(client.as_str()));
        }
        if let Some((address, port)) = &self.peer {
            f(Self::PEER_ADDRESS, Text(address.as_str()));
            f(Self::PEER_PORT, Int(i64::from(*port)));
        }
        if let Some(version) = self.protocol_version {
            f(Self::PROTOCOL_VERSION, Text(version));
        }
        if let Some(agent) = &self.user_agent {
            f(Self::USER_AGENT, Text(agent.as_str()));
        }
        if let Some(code) = self.status_code {
            f(Self::STATUS_CODE, Int(code));
        }
    }

    /// How many attributes [`for_each`](Self::for_each) gives.
    pub fn count(&self) -> usize {
        // The method, the path and the scheme, and the others when present.
        3 + usize::from(self.method_original.is_some())
            + usize::from(self.route.is_some())
            + usize::from(self.query.is_some())
            + usize::from(self.server_address.is_some())
            + usize::from(self.server_port.is_some())
            + usize::from(self.client_address.is_some())
            + 2 * usize::from(self.peer.is_some())
            + usize::from(self.protocol_version.is_some())
            + usize::from(self.user_agent.is_some())
            + usize::from(self.status_code.is_some())
    }

    /// Pushes the attributes onto `list` as `KeyValue`s, in order. The
    /// values are those held (shared strings are shared, not copied).
    pub fn push_to(self, list: &mut Vec<KeyValue>) {
        let Self {
            method,
            method_original,
            route,
            path,
            query,
            scheme,
            server_address,
            server_port,
            client_address,
            peer,
            protocol_version,
            user_agent,
            status_code,
        } = self;
        list.reserve(Self::KEYS.len());
        list.push(KeyValue::new(Self::METHOD, method));
        if let Some(original) = method_original {
            list.push(KeyValue::new(Self::METHOD_ORIGINAL, original));
        }
        if let Some(route) = route {
            list.push(KeyValue::new(Self::ROUTE, route));
        }
        list.push(KeyValue::new(Self::PATH, path));
        if let Some(query) = query {
            list.push(KeyValue::new(Self::QUERY, query));
        }
        list.push(KeyValue::new(Self::SCHEME, scheme));
        if let Some(address) = server_address {
            list.push(KeyValue::new(Self::SERVER_ADDRESS, address));
        }
        if let Some(port) = server_port {
            list.push(KeyValue::new(Self::SERVER_PORT, i64::from(port)));
        }
        if let Some(client) = client_address {
            list.push(KeyValue::new(Self::CLIENT_ADDRESS, client));
        }
        if let Some((address, port)) = peer {
            list.push(KeyValue::new(Self::PEER_ADDRESS, address));
            list.push(KeyValue::new(Self::PEER_PORT, i64::from(port)));
        }
        if let Some(version) = protocol_version {
            list.push(KeyValue::new(Self::PROTOCOL_VERSION, version));
        }
        if let Some(agent) = user_agent {
            list.push(KeyValue::new(Self::USER_AGENT, agent));
        }
        if let Some(code) = status_code {
            list.push(KeyValue::new(Self::STATUS_CODE, code));
        }
    }
}

/// Starts spans as the global tracer provider's tracers would.
pub trait SpanStarter: Send + Sync + fmt::Debug {
    /// Starts a span of `scope` and `kind`, child of `parent_span` (the span
    /// context of the parent context's span when it has one, valid or not;
    /// `None` when it has no span), and returns `context` with the span as
    /// its span. `describe` gives the name and pushes the attributes, and is
    /// called only when the sampler keeps the span.
    ///
    /// `None` when the provider cannot start the span this way (it was shut
    /// down, or `context` suppresses telemetry): ask its tracer.
    fn start(
        &self,
        scope: &InstrumentationScope,
        kind: SpanKind,
        context: &Context,
        parent_span: Option<&SpanContext>,
        describe: Describe<'_>,
    ) -> Option<Started>;
}

/// A span [`SpanStarter::start`] started.
#[derive(Debug)]
pub struct Started {
    /// The context given, with the span as its span.
    pub context: Context,
    /// Whether the span records (the sampler kept it): what
    /// `context.span().is_recording()` says, known without locking the span
    /// to ask it.
    pub recording: bool,
}

static STARTER: RwLock<Option<Arc<dyn SpanStarter>>> = RwLock::new(None);

/// Registers how spans of the global tracer provider start without its
/// tracer, or `None` when they cannot. Whoever installs another global
/// tracer provider afterwards clears it, or the layers keep starting their
/// spans into the first one's processors.
pub fn set_global_span_starter(starter: Option<Arc<dyn SpanStarter>>) {
    match STARTER.write() {
        Ok(mut slot) => *slot = starter,
        Err(poisoned) => *poisoned.into_inner() = starter,
    }
}

/// What [`set_global_span_starter`] registered last.
pub fn global_span_starter() -> Option<Arc<dyn SpanStarter>> {
    match STARTER.read() {
        Ok(slot) => slot.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_integer_status_code_only() {
        let mut request = HttpServerRequest::new("GET", "/", "http");
        let code = HttpServerRequest::STATUS_CODE;
        assert!(!request.keep_status_code(&KeyValue::new("http.response.status", 200)));
        assert!(!request.keep_status_code(&KeyValue::new(code, "200")));
        assert_eq!((request.status_code, request.count()), (None, 3));
        assert!(request.keep_status_code(&KeyValue::new(code, 404)));
        assert!(!request.keep_status_code(&KeyValue::new(code, 500)));
        assert_eq!((request.status_code, request.count()), (Some(404), 4));
        let mut list = Vec::new();
        request.push_to(&mut list);
        assert_eq!(list.last(), Some(&KeyValue::new(code, 404)));
    }
}
