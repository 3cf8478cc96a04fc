use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http::{Request, Response};
use observability_propagation::W3cPropagator;
use observability_propagation::starter::HttpServerRequest;
use opentelemetry::trace::{Span, SpanContext, SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, StringValue};
use tower::Service;

use super::ServerFuture;
use super::body_kind::{ServerBody, WrapBody};
use super::layer::{Parent, ServerConfig};
use crate::attributes::{self as attr, split_host_port};
use crate::grpc;
use crate::propagation::extract_from;
use crate::tracer::dropped_child;

use super::headers::RequestHeaders;
use super::hook::{RequestHead, SpanStart};
use crate::metrics::{RpcCall, ServerRequest};
use crate::recent::{self, Slot};

/// The service a [`ServerLayer`](super::ServerLayer) wraps around `S`,
/// answering with the body `M` says (see [`ServerBody`]). `S` is called
/// with the request's context current, and its future polled so, but for
/// axum's `Route` (what `Router::layer` wraps), which runs nothing of the
/// application until its future is polled. `S` must be `'static`, as the
/// services hyper, axum and tonic run are.
#[derive(Clone, Debug)]
pub struct ServerService<S, M = WrapBody> {
    inner: S,
    config: Arc<ServerConfig>,
    body: PhantomData<fn() -> M>,
}

impl<S, M> ServerService<S, M> {
    pub(crate) fn new(inner: S, config: Arc<ServerConfig>) -> Self {
        Self {
            inner,
            config,
            body: PhantomData,
        }
    }
}

/// Whether calling a service of type `S` runs none of the application, so
/// that the request's context need not be current for it: true of axum's
/// `Route`, what `Router::layer` wraps, whose `call` clones the boxed
/// service inside and calls it only when the future is first polled
/// (tower's `Oneshot`; axum 0.8, `routing/route.rs`), and the future runs
/// with the context current. Decided by type, at compile time.
#[cfg(feature = "axum")]
fn call_runs_nothing<S: 'static>() -> bool {
    std::any::TypeId::of::<S>() == std::any::TypeId::of::<axum::routing::Route>()
}

/// Without axum, no service is known to run nothing in its `call`.
#[cfg(not(feature = "axum"))]
#[allow(clippy::extra_unused_type_parameters)] // the signature of the axum build
fn call_runs_nothing<S: 'static>() -> bool {
    false
}

impl<S, M, ReqBody, ResBody> Service<Request<ReqBody>> for ServerService<S, M>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + 'static,
    S::Error: std::fmt::Debug + std::fmt::Display,
    M: ServerBody<ResBody>,
{
    type Response = Response<M::Body>;
    type Error = S::Error;
    type Future = ServerFuture<S::Future, M>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    // Never inlined: its large future is then written in place for the
    // caller, where inlined into the caller's own `call` (axum's
    // `MapIntoResponse`) it was copied once more (about 65 instructions a
    // request).
    #[inline(never)]
    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if self.config.skips(request.uri().path()) {
            return ServerFuture::untraced(self.inner.call(request));
        }
        let headers = RequestHeaders::scan(request.headers());
        let grpc = headers.is_grpc();
        // The method's name, when something needs it: the metrics, or a
        // span that is not dropped unseen.
        let mut named = None;
        let metered = match self.config.metrics.get() {
            Some(instruments) if !grpc => {
                let method = named.insert(attr::method(request.method())).0;
                let route = matched_path(&request)
                    .and_then(|route| recent::route_name(base_name(method), route))
                    .map(|r| r.route);
                let scheme = headers
                    .x_forwarded_proto()
                    .or_else(|| request.uri().scheme_str())
                    .unwrap_or("http");
                Some(ServerRequest::start(instruments, method, scheme, route))
            }
            _ => None,
        };
        let rpc = match self.config.metrics.get() {
            Some(instruments) if grpc => {
                Some(RpcCall::start(&instruments.rpc, request.uri().path()))
            }
            _ => None,
        };
        // Calls the inner service with the request's context current and
        // returns the future that keeps it. A macro, not a method: returning
        // the large future through a call of its own, even inlined, copied
        // it once more (about 100 instructions a request).
        macro_rules! call_within {
            ($cx:expr, $recording:expr) => {{
                let cx = $cx;
                let future = if call_runs_nothing::<S>() {
                    self.inner.call(request)
                } else {
                    let _attached = cx.clone().attach();
                    self.inner.call(request)
                };
                ServerFuture::traced(
                    future,
                    (cx, $recording),
                    Arc::clone(&self.config),
                    grpc,
                    metered,
                    rpc,
                )
            }};
        }
        let (tracer, drop_rule) = self.config.tracer.with_drop_rule();
        // The default propagators read the values the scan found, without a
        // carrier; any other goes through the carrier.
        // `parent_rest` holds the parent's span already when it came through
        // the carrier.
        let (parent_span, parent_rest, whole) = match headers.w3c().zip(W3cPropagator::global()) {
            Some((values, w3c)) => {
                let parent = w3c.extract_parts(&values);
                (parent.span_context, parent.context, false)
            }
            None => {
                let cx = extract_from(&headers);
                let sc = Some(cx.span().span_context().clone()).filter(SpanContext::is_valid);
                (sc, cx, true)
            }
        };
        // A request the sampler drops whatever it says (the caller did not
        // sample, under a parent-based sampler; `always_off`) gets the span
        // context the SDK would give its span, and no span: nothing could
        // record on it.
        if let Some(child) = drop_rule.and_then(|rule| dropped_child(rule, parent_span.as_ref())) {
            // The SDK's dropped span records nothing.
            return call_within!(parent_rest.with_remote_span_context(child), false);
        }
        let (method, mut method_original) = named.unwrap_or_else(|| attr::method(request.method()));
        // The span, started without the tracer when the provider allows
        // (the same span, fewer steps), as a child of the parent's span:
        // the caller's span context, or the span the carrier's context
        // holds, valid or not (the sampler reads its flag).
        if let Some((starter, scope)) = self.config.tracer.starter() {
            let carried = parent_rest.span();
            let parent = if whole {
                parent_rest
                    .has_active_span()
                    .then(|| carried.span_context())
            } else {
                parent_span.as_ref()
            };
            let mut describe =
                |attributes: &mut Vec<KeyValue>, typed: &mut Option<HttpServerRequest>| {
                    let method = (method, method_original.take());
                    self.describe_into(attributes, Some(typed), &request, &headers, method, grpc)
                };
            let started =
                starter.start(scope, SpanKind::Server, &parent_rest, parent, &mut describe);
            if let Some(started) = started {
                return call_within!(started.context, started.recording);
            }
        }
        let parent = match parent_span {
            Some(sc) if !whole => parent_rest.with_remote_span_context(sc),
            _ => parent_rest,
        };
        let parent_kind = {
            let span = parent.span();
            let sc = span.span_context();
            match (sc.is_valid(), sc.is_sampled()) {
                (false, _) => Parent::None,
                (true, true) => Parent::Sampled,
                (true, false) => Parent::NotSampled,
            }
        };
        // Will the span record? The last span under the same kind of parent
        // is the guess (see `RecordingGuess`). A span expected to record
        // gets its name and attributes in the builder (the sampler sees
        // them, and the span takes them in one move); any other starts bare
        // and gets them only if it does record, so a request that is not
        // sampled builds nothing.
        let expect_recording = self.config.recording.expect(parent_kind);
        let span = if expect_recording {
            let (name, attributes) =
                self.describe(&request, &headers, (method, method_original), grpc);
            tracer
                .span_builder(name)
                .with_kind(SpanKind::Server)
                .with_attributes(attributes)
                .start_with_context(tracer, &parent)
        } else {
            let mut span = tracer
                .span_builder(base_name(method))
                .with_kind(SpanKind::Server)
                .start_with_context(tracer, &parent);
            if span.is_recording() {
                let (name, attributes) =
                    self.describe(&request, &headers, (method, method_original), grpc);
                span.update_name(name);
                span.set_attributes(attributes);
            }
            span
        };
        let recording = span.is_recording();
        self.config
            .recording
            .learn(parent_kind, expect_recording, recording);
        call_within!(parent.with_span(span), recording)
    }
}

impl<S, M> ServerService<S, M> {
    /// The span's name and attributes for `request`.
    fn describe<B>(
        &self,
        request: &Request<B>,
        headers: &RequestHeaders<'_>,
        method: (&'static str, Option<String>),
        grpc: bool,
    ) -> (Cow<'static, str>, Vec<KeyValue>) {
        let mut attributes = Vec::new();
        let name = self.describe_into(&mut attributes, None, request, headers, method, grpc);
        (name, attributes)
    }

    /// The span's name for `request`. Its attributes are pushed onto
    /// `attributes`, but for those of the request, which go in `typed` as
    /// they are when it is given and no hook needs them as a list.
    fn describe_into<B>(
        &self,
        attributes: &mut Vec<KeyValue>,
        typed: Option<&mut Option<HttpServerRequest>>,
        request: &Request<B>,
        headers: &RequestHeaders<'_>,
        (method, method_original): (&'static str, Option<String>),
        grpc: bool,
    ) -> Cow<'static, str> {
        let base = base_name(method);
        let (name, route) = match (grpc, matched_path(request)) {
            // A gRPC span is named `package.Service/Method` only when the
            // path has that form and a bounded length (the path is the
            // client's text); otherwise by the method alone.
            (true, route) => (
                match grpc::method_of(request.uri().path()) {
                    Some(_) => Cow::Owned(request.uri().path()[1..].to_owned()),
                    None => Cow::Borrowed(base),
                },
                route.map(|r| StringValue::from(r.to_owned())),
            ),
            (false, Some(route)) => match recent::route_name(base, route) {
                Some(interned) => (
                    Cow::Borrowed(interned.name),
                    Some(StringValue::from(interned.route)),
                ),
                None => (
                    Cow::Owned(format!("{base} {route}")),
                    Some(StringValue::from(route.to_owned())),
                ),
            },
            (false, None) => (Cow::Borrowed(base), None),
        };
        let fields = request_fields(
            request,
            headers,
            method,
            method_original,
            route,
            &self.config.query_redaction,
        );
        match typed {
            Some(slot) if self.config.on_request.is_none() => *slot = Some(fields),
            _ => fields.push_to(attributes),
        }
        if grpc {
            grpc::rpc_attributes(request.uri().path(), attributes);
        }
        for name in &self.config.request_headers {
            attributes.extend(attr::header_attribute(
                "http.request.header.",
                name.as_str(),
                request.headers(),
            ));
        }
        let mut name = name;
        if let Some(hook) = &self.config.on_request {
            let head = RequestHead {
                method: request.method(),
                uri: request.uri(),
                headers: request.headers(),
                extensions: request.extensions(),
            };
            (hook.0)(
                &head,
                &mut SpanStart {
                    name: &mut name,
                    attributes,
                },
            );
        }
        name
    }
}

/// The span name before the route is known.
fn base_name(method: &'static str) -> &'static str {
    attr::span_name_of_method(method)
}

#[cfg(feature = "axum")]
fn matched_path<B>(request: &Request<B>) -> Option<&str> {
    request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str())
}

#[cfg(not(feature = "axum"))]
fn matched_path<B>(_: &Request<B>) -> Option<&str> {
    None
}

#[cfg(feature = "axum")]
fn peer<B>(request: &Request<B>) -> Option<std::net::SocketAddr> {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| request.extensions().get::<std::net::SocketAddr>().copied())
}

#[cfg(not(feature = "axum"))]
fn peer<B>(request: &Request<B>) -> Option<std::net::SocketAddr> {
    request.extensions().get::<std::net::SocketAddr>().copied()
}

fn request_fields<B>(
    request: &Request<B>,
    headers: &RequestHeaders<'_>,
    method: &'static str,
    method_original: Option<String>,
    route: Option<StringValue>,
    redaction: &attr::QueryRedaction,
) -> HttpServerRequest {
    let uri = request.uri();
    let forwarded = attr::Forwarded::parse(headers.forwarded());
    let scheme = forwarded
        .proto
        .or_else(|| headers.x_forwarded_proto())
        .or_else(|| uri.scheme_str())
        .unwrap_or("http");
    let host = forwarded
        .host
        .or_else(|| headers.x_forwarded_host())
        .map(recent::host)
        .or_else(|| headers.host_value().and_then(recent::host_header))
        .or_else(|| uri.authority().map(|a| recent::host(a.as_str())));
    let (server_address, server_port) = match host {
        Some((address, port)) => (
            (!address.is_empty()).then(|| StringValue::from(address)),
            port.or_else(|| attr::default_port(Some(scheme))),
        ),
        None => (None, None),
    };
    let peer = peer(request);
    // The peer's address is usually the client's too: one string serves both.
    let peer_ip: Option<Arc<str>> = peer.map(|p| recent::peer(p.ip()));
    let client = forwarded
        .for_
        .map(|f| split_host_port(f).0)
        .or_else(|| headers.x_forwarded_for())
        .map(|f| recent::shared(Slot::Client, f))
        .or_else(|| peer_ip.clone());
    HttpServerRequest {
        method,
        method_original,
        route,
        path: recent::shared(Slot::Path, uri.path()).into(),
        query: uri
            .query()
            .map(|query| attr::redact_query_with(query, redaction).into_owned()),
        scheme: lowercase(scheme).into(),
        server_address,
        server_port,
        client_address: client.map(StringValue::from),
        peer: peer
            .zip(peer_ip)
            .map(|(peer, ip)| (StringValue::from(ip), peer.port())),
        protocol_version: attr::protocol_version(request.version()),
        user_agent: headers
            .user_agent()
            .map(|agent| recent::shared(Slot::UserAgent, agent).into()),
        // Set by the response (`ServerFuture`), through the span.
        status_code: None,
    }
}

/// `scheme` in lowercase, without allocating for the usual spellings.
#[inline]
fn lowercase(scheme: &str) -> Cow<'static, str> {
    match scheme {
        "http" => Cow::Borrowed("http"),
        "https" => Cow::Borrowed("https"),
        other => Cow::Owned(other.to_ascii_lowercase()),
    }
}

/// The current span's context of `cx`, for response headers.
pub(crate) fn traceparent_of(cx: &Context) -> Option<String> {
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8() & 0x03
        )
    })
}
