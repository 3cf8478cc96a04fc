use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::HeaderName;
use opentelemetry::trace::TracerProvider;
use tower::Layer;

use super::ServerService;
use super::body_kind::WrapBody;
use super::hook::{Hook, RequestHead, SpanStart};
use crate::attributes::QueryRedaction;
use crate::metrics::{Instruments, ServerInstruments};
use crate::tracer::TracerSource;

/// Paths not traced unless [`ServerLayerBuilder::skip_paths`] says otherwise.
pub const DEFAULT_SKIP_PATHS: &[&str] = &[
    "/health", "/healthz", "/ready", "/readyz", "/livez", "/metrics",
];

#[derive(Debug)]
pub(crate) struct ServerConfig {
    pub(crate) skip_paths: Vec<String>,
    /// Bit `n` set when a skipped path is `n` bytes long (63 for 63 and
    /// longer): most requests are told apart by length alone.
    pub(crate) skip_lengths: u64,
    pub(crate) request_headers: Vec<HeaderName>,
    pub(crate) response_headers: Vec<HeaderName>,
    pub(crate) traceresponse: bool,
    pub(crate) server_timing: bool,
    /// Which query values `url.query` redacts.
    pub(crate) query_redaction: QueryRedaction,
    /// Renames spans or adds attributes, before a span starts.
    pub(crate) on_request: Option<Hook>,
    pub(crate) tracer: TracerSource,
    /// Whether the next span will record, guessed from the last one of the
    /// same kind (see `ServerService::call`).
    pub(crate) recording: RecordingGuess,
    /// `http.server.request.duration` and `http.server.active_requests`.
    pub(crate) metrics: Instruments<ServerInstruments>,
}

/// What the caller's context says about sampling, which is what a sampler
/// usually decides by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parent {
    /// No caller's context: a new trace.
    None,
    /// The caller sampled its span.
    Sampled,
    /// The caller did not sample its span.
    NotSampled,
}

/// For each kind of parent, whether the last span started under it
/// recorded. A span expected to record gets its name and attributes in the
/// builder; one that is not starts bare, so that a request the sampler drops
/// builds nothing. Parent-based sampling (the default) follows the caller's
/// flag, and the initial guesses say so; any other sampler (`always_off`, a
/// ratio that ignores the parent) is learnt from its first answer.
#[derive(Debug)]
pub(crate) struct RecordingGuess([AtomicBool; 3]);

impl Default for RecordingGuess {
    fn default() -> Self {
        Self([
            AtomicBool::new(true),
            AtomicBool::new(true),
            AtomicBool::new(false),
        ])
    }
}

impl RecordingGuess {
    fn slot(&self, parent: Parent) -> &AtomicBool {
        &self.0[parent as usize]
    }

    /// Whether a span under `parent` is expected to record.
    pub(crate) fn expect(&self, parent: Parent) -> bool {
        self.slot(parent).load(Ordering::Relaxed)
    }

    /// Records how a span under `parent` turned out, when the guess
    /// `expected` was wrong.
    pub(crate) fn learn(&self, parent: Parent, expected: bool, recorded: bool) {
        if expected != recorded {
            self.slot(parent).store(recorded, Ordering::Relaxed);
        }
    }
}

/// The bit of [`ServerConfig::skip_lengths`] for `path`.
#[inline]
fn length_bit(path: &str) -> u64 {
    1 << path.len().min(63)
}

impl ServerConfig {
    /// Whether responses carry the span's context (`traceresponse`,
    /// `server-timing`).
    pub(crate) fn writes_context(&self) -> bool {
        self.traceresponse || self.server_timing
    }

    #[inline]
    pub(crate) fn skips(&self, path: &str) -> bool {
        self.skip_lengths & length_bit(path) != 0 && self.skip_paths.iter().any(|p| p == path)
    }
}

/// A tower [`Layer`] that traces incoming requests: it extracts `traceparent`,
/// `tracestate` and `baggage` with the global propagator and runs the
/// request inside a SERVER span named `{method} {http.route}`, with the
/// stable HTTP semantic-convention attributes (or the gRPC ones for gRPC
/// requests). Works with `axum::Router::layer`, hyper services and tonic
/// servers.
///
/// Span names and `http.route` values made from axum's route templates are
/// kept for the life of the process (at most 1024 of them; routes beyond
/// that get a copy per span), so spans share them instead of copying them.
///
/// ```
/// use axum::{Router, routing::get};
///
/// let app: Router = Router::new()
///     .route("/orders/{id}", get(|| async { "order" }))
///     .layer(observability_http::ServerLayer::new().for_axum());
/// ```
///
/// `M` is the body the service answers with (see
/// [`ServerBody`](super::ServerBody)): [`ResponseBody`](crate::ResponseBody)
/// around any body by default, axum's own body after `for_axum` (with the
/// `axum` feature, on by default).
#[derive(Clone, Debug)]
pub struct ServerLayer<M = WrapBody> {
    config: Arc<ServerConfig>,
    body: PhantomData<fn() -> M>,
}

impl Default for ServerLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerLayer {
    /// A layer with the defaults: health and metrics paths skipped, no
    /// headers recorded, no context written to responses, the global
    /// tracer provider.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for the options.
    pub fn builder() -> ServerLayerBuilder {
        ServerLayerBuilder {
            skip_paths: DEFAULT_SKIP_PATHS.iter().map(|p| (*p).to_owned()).collect(),
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            traceresponse: false,
            server_timing: false,
            query_redaction: QueryRedaction::default(),
            on_request: None,
            tracer: None,
            metrics: Instruments::new(ServerInstruments::make),
        }
    }
}

impl<M> ServerLayer<M> {
    /// The same layer answering with `axum::body::Body`, the body an axum
    /// router's services have: for `Router::layer`. A response whose span
    /// does not record keeps its body as it is; a traced one is boxed once,
    /// as the router would box it anyway. Without it the router boxes the
    /// layer's [`ResponseBody`](crate::ResponseBody) of every response,
    /// sampled out or not (an allocation and a `dyn` call per frame, about
    /// 370 instructions a sampled-out request).
    ///
    /// The inner service's body must then be `axum::body::Body`, as it is
    /// under `Router::layer` and `Router::route_layer`.
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn for_axum(self) -> ServerLayer<super::AxumBody> {
        ServerLayer {
            config: self.config,
            body: PhantomData,
        }
    }
}

impl<S, M> Layer<S> for ServerLayer<M> {
    type Service = ServerService<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerService::new(inner, Arc::clone(&self.config))
    }
}

/// Options of a [`ServerLayer`].
#[derive(Debug)]
#[must_use = "call build() to get the layer"]
pub struct ServerLayerBuilder {
    skip_paths: Vec<String>,
    request_headers: Vec<HeaderName>,
    response_headers: Vec<HeaderName>,
    traceresponse: bool,
    server_timing: bool,
    query_redaction: QueryRedaction,
    on_request: Option<Hook>,
    tracer: Option<TracerSource>,
    metrics: Instruments<ServerInstruments>,
}

impl ServerLayerBuilder {
    /// Paths that get no span (exact matches); replaces the defaults
    /// ([`DEFAULT_SKIP_PATHS`]). An empty list traces everything.
    pub fn skip_paths<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.skip_paths = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Records this request header as `http.request.header.<name>`.
    /// `authorization`, `proxy-authorization`, `cookie` and `set-cookie` are
    /// never recorded.
    pub fn record_request_header(mut self, name: HeaderName) -> Self {
        self.request_headers.push(name);
        self
    }

    /// Records this response header as `http.response.header.<name>` (same
    /// exclusions as [`record_request_header`](Self::record_request_header)).
    pub fn record_response_header(mut self, name: HeaderName) -> Self {
        self.response_headers.push(name);
        self
    }

    /// Writes `traceresponse: 00-{trace id}-{span id}-{flags}` on every
    /// traced response (off by default: it tells callers your trace ids).
    pub fn write_traceresponse(mut self, on: bool) -> Self {
        self.traceresponse = on;
        self
    }

    /// Adds `server-timing: traceparent;desc="00-..."` to every traced
    /// response, which browsers expose to page scripts (off by default).
    pub fn write_server_timing(mut self, on: bool) -> Self {
        self.server_timing = on;
        self
    }

    /// Redacts the values of these query keys in `url.query` too, besides
    /// [`SENSITIVE_QUERY_KEYS`](crate::SENSITIVE_QUERY_KEYS) and keys ending in
    /// `_token`, `_secret`, `_password`, `_signature` or `_key` (compared
    /// after percent-decoding, ignoring case).
    pub fn redact_query_keys<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        self.query_redaction.add(keys);
        self
    }

    /// Calls `hook` before each recorded server span starts, with the
    /// request's head and the span's name and attributes as the layer made
    /// them: rename the span, add attributes from the request. It runs only
    /// for spans that record (a sampled-out request pays nothing), so it
    /// should be cheap and must not block.
    ///
    /// ```
    /// use observability_http::ServerLayer;
    /// use opentelemetry::KeyValue;
    ///
    /// let layer = ServerLayer::builder()
    ///     .on_request(|request, span| {
    ///         if let Some(tenant) = request.headers().get("x-tenant").and_then(|v| v.to_str().ok()) {
    ///             span.set_attribute(KeyValue::new("tenant.id", tenant.to_owned()));
    ///         }
    ///         if request.uri().path().starts_with("/admin") {
    ///             span.set_name("admin");
    ///         }
    ///     })
    ///     .build();
    /// ```
    pub fn on_request<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RequestHead<'_>, &mut SpanStart<'_>) + Send + Sync + 'static,
    {
        self.on_request = Some(Hook(Arc::new(hook)));
        self
    }

    /// Uses this provider instead of the global one.
    pub fn tracer_provider<P>(mut self, provider: &P) -> Self
    where
        P: TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
    {
        self.tracer = Some(TracerSource::from_provider("observability-http", provider));
        self
    }

    crate::metrics::metrics_options!(
        "`http.server.request.duration` and `http.server.active_requests` (`rpc.server.duration` for gRPC)"
    );

    /// The layer.
    pub fn build(self) -> ServerLayer {
        ServerLayer {
            body: PhantomData,
            config: Arc::new(ServerConfig {
                skip_lengths: self
                    .skip_paths
                    .iter()
                    .fold(0, |bits, p| bits | length_bit(p)),
                skip_paths: self.skip_paths,
                request_headers: self.request_headers,
                response_headers: self.response_headers,
                traceresponse: self.traceresponse,
                server_timing: self.server_timing,
                query_redaction: self.query_redaction,
                on_request: self.on_request,
                tracer: self
                    .tracer
                    .unwrap_or_else(|| TracerSource::global("observability-http")),
                recording: RecordingGuess::default(),
                metrics: self.metrics,
            }),
        }
    }
}
