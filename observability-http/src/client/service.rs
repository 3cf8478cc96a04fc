use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http::{HeaderMap, Method, Request, Response, Uri};
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use tower::Service;

use super::ClientFuture;
use super::layer::ClientConfig;
use crate::attributes::{self as attr, split_host_port};
use crate::body::ResponseBody;
use crate::grpc;
use crate::metrics::{ClientRequest, RpcCall};
use crate::propagation::inject_context;
use crate::recent::{self, Slot};
use crate::tracer::{TracerSource, dropped_child};

/// The service a [`ClientLayer`](super::ClientLayer) wraps around `S`.
#[derive(Clone, Debug)]
pub struct ClientService<S> {
    inner: S,
    config: Arc<ClientConfig>,
}

impl<S> ClientService<S> {
    pub(crate) fn new(inner: S, config: Arc<ClientConfig>) -> Self {
        Self { inner, config }
    }
}

/// Starts a CLIENT span for a request, child of the current context, and
/// injects its context into `headers`. Returns the context holding the span.
pub(crate) fn start_client_span(
    source: &TracerSource,
    redaction: &attr::QueryRedaction,
    method: &Method,
    uri: &Uri,
    headers: &mut HeaderMap,
    grpc: bool,
) -> Context {
    let parent = Context::current();
    let (tracer, drop_rule) = source.with_drop_rule();
    // Under a parent the sampler drops whatever it says (one that was not
    // sampled, under a parent-based sampler; any, under `always_off`): the
    // span context the SDK would give the span, and no span, as the server
    // layer does.
    let dropped = drop_rule.and_then(|rule| {
        let span = parent.span();
        let psc = span.span_context();
        dropped_child(rule, psc.is_valid().then_some(psc))
    });
    if let Some(child) = dropped {
        let cx = parent.with_remote_span_context(child);
        inject_context(&cx, headers);
        return cx;
    }
    let (method_name, mut method_original) = attr::method(method);
    let mut name: Cow<'static, str> = if grpc {
        Cow::Owned(uri.path().trim_start_matches('/').to_owned())
    } else {
        Cow::Borrowed(attr::span_name_of_method(method_name))
    };
    let mut describe = |attributes: &mut Vec<KeyValue>, headers: &HeaderMap| {
        let original = method_original.take();
        client_attributes(
            attributes,
            method_name,
            original,
            uri,
            headers,
            redaction,
            grpc,
        );
    };
    // Without the tracer when the provider allows (the same span, fewer
    // steps).
    if let Some((starter, scope)) = source.starter() {
        let span = parent.span();
        let parent_span = parent.has_active_span().then(|| span.span_context());
        // Called only when the span records, and then the tracer is not.
        let mut named = |attributes: &mut Vec<KeyValue>, _: &mut Option<_>| {
            describe(attributes, headers);
            std::mem::take(&mut name)
        };
        let started = starter.start(scope, SpanKind::Client, &parent, parent_span, &mut named);
        if let Some(started) = started {
            inject_context(&started.context, headers);
            return started.context;
        }
    }
    let mut span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Client)
        .start_with_context(tracer, &parent);
    if opentelemetry::trace::Span::is_recording(&span) {
        let mut attributes = Vec::new();
        describe(&mut attributes, headers);
        opentelemetry::trace::Span::set_attributes(&mut span, attributes);
    }
    let cx = parent.with_span(span);
    inject_context(&cx, headers);
    cx
}

/// A CLIENT span's attributes for a call to `uri` with `headers`, pushed
/// onto `attrs`.
fn client_attributes(
    attrs: &mut Vec<KeyValue>,
    method_name: &'static str,
    method_original: Option<String>,
    uri: &Uri,
    headers: &HeaderMap,
    redaction: &attr::QueryRedaction,
    grpc: bool,
) {
    attrs.reserve(8);
    attrs.push(KeyValue::new(attr::HTTP_REQUEST_METHOD, method_name));
    if let Some(original) = method_original {
        attrs.push(KeyValue::new(attr::HTTP_REQUEST_METHOD_ORIGINAL, original));
    }
    if let Some(url) = attr::full_url(uri, redaction) {
        attrs.push(KeyValue::new(attr::URL_FULL, url));
    }
    let host = uri.authority().map(|a| a.as_str()).or_else(|| {
        headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
    });
    if let Some(host) = host {
        let host = host.rsplit('@').next().unwrap_or(host);
        let (address, port) = split_host_port(host);
        attrs.push(KeyValue::new(
            attr::SERVER_ADDRESS,
            recent::shared(Slot::CalledAddress, address),
        ));
        let port = port.or_else(|| attr::default_port(uri.scheme_str()));
        if let Some(port) = port {
            attrs.push(KeyValue::new(attr::SERVER_PORT, i64::from(port)));
        }
    }
    if grpc {
        grpc::rpc_attributes(uri.path(), attrs);
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ClientService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: std::fmt::Debug + std::fmt::Display,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ClientFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // In parts, so the headers can be written while method and URI are read.
        let (mut parts, body) = request.into_parts();
        let grpc = grpc::is_grpc(&parts.headers);
        let (metered, rpc) = if grpc {
            let rpc = self
                .config
                .metrics
                .get()
                .map(|instruments| RpcCall::start(&instruments.rpc, parts.uri.path()));
            (None, rpc)
        } else {
            let metered = ClientRequest::start(&self.config.metrics, &parts.method, &parts.uri);
            (metered, None)
        };
        let cx = start_client_span(
            &self.config.tracer,
            &self.config.query_redaction,
            &parts.method,
            &parts.uri,
            &mut parts.headers,
            grpc,
        );
        let request = Request::from_parts(parts, body);
        let future = {
            let _attached = cx.clone().attach();
            self.inner.call(request)
        };
        ClientFuture::new(future, cx, grpc, metered, rpc)
    }
}
