//! The layers' RED metrics, recorded through the OpenTelemetry metrics API
//! (so any meter provider works): `http.server.request.duration`,
//! `http.server.active_requests` and `http.client.request.duration`, with
//! the attributes and bucket boundaries of the HTTP semantic conventions
//! ("Semantic conventions for HTTP metrics"). A duration is recorded with
//! the request's span current, so a provider that keeps exemplars links
//! it to the trace.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use opentelemetry::metrics::{Histogram, Meter, MeterProvider, ObservableUpDownCounter};
use opentelemetry::{InstrumentationScope, KeyValue};

use crate::attributes::{
    ERROR_TYPE, HTTP_REQUEST_METHOD, HTTP_RESPONSE_STATUS_CODE, HTTP_ROUTE, SERVER_ADDRESS,
    SERVER_PORT, URL_SCHEME,
};

/// The conventions' boundaries for HTTP durations, in seconds.
pub const DURATION_BOUNDARIES: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("observability-http")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// Where a layer gets its instruments: the global meter provider at the
/// first request (a layer built before `init()` still records), or a
/// meter given to the builder; none when metrics are off.
#[derive(Clone)]
pub(crate) struct Instruments<T> {
    cell: Arc<OnceLock<Option<T>>>,
    meter: Option<Meter>,
    /// The given provider, when it is `observability-metrics`' (whose
    /// bound histograms record without finding the series again).
    ours: Option<observability_metrics::MeterProvider>,
    enabled: bool,
    make: fn(&Meter, Option<&observability_metrics::MeterProvider>) -> T,
}

impl<T> std::fmt::Debug for Instruments<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instruments")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl<T> Instruments<T> {
    pub(crate) fn new(
        make: fn(&Meter, Option<&observability_metrics::MeterProvider>) -> T,
    ) -> Self {
        Self {
            cell: Arc::new(OnceLock::new()),
            meter: None,
            ours: None,
            enabled: true,
            make,
        }
    }

    /// Records with `provider`'s meter instead of the global one.
    pub(crate) fn with_provider<P: MeterProvider + 'static>(mut self, provider: &P) -> Self {
        self.meter = Some(provider.meter_with_scope(scope()));
        self.ours = (provider as &dyn std::any::Any)
            .downcast_ref::<observability_metrics::MeterProvider>()
            .cloned();
        self
    }

    /// Records nothing when `enabled` is false.
    pub(crate) fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// The instruments; `None` when metrics are off, or when they would go
    /// to the API's no-op global provider (nothing set one): a request
    /// then does no metrics work at all.
    pub(crate) fn get(&self) -> Option<&T> {
        self.cell
            .get_or_init(|| {
                if !self.enabled {
                    return None;
                }
                if let Some(meter) = &self.meter {
                    return Some((self.make)(meter, self.ours.as_ref()));
                }
                // The provider `init()` installed, if it did.
                if let Some(ours) = observability_metrics::global() {
                    return Some((self.make)(&ours.meter_with_scope(scope()), Some(&ours)));
                }
                let provider = opentelemetry::global::meter_provider();
                // The API's `NoopMeterProvider` is the only provider without
                // state; every real one holds some.
                if std::mem::size_of_val(&*provider) == 0 {
                    return None;
                }
                Some((self.make)(&provider.meter_with_scope(scope()), None))
            })
            .as_ref()
    }
}

/// The methods a request is counted under (`http.request.method`, with
/// `_OTHER` for any other).
const METHODS: [&str; 10] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE", "_OTHER",
];

/// The schemes a request is counted under (`url.scheme`): a client's
/// `X-Forwarded-Proto` cannot add series.
const SCHEMES: [&str; 3] = ["http", "https", "_OTHER"];

/// Requests in progress per method and scheme, and whether a cell was ever
/// used: two atomic operations per request, read by the observable
/// up-down counter `http.server.active_requests` at each collection (an
/// up-down counter on the wire, as the conventions say, for a fraction of
/// the cost of two recordings per request).
#[derive(Default)]
struct Active {
    count: [[AtomicI64; 3]; 10],
    used: [[AtomicBool; 3]; 10],
}

/// The `meter_provider` and `record_metrics` options both layers' builders
/// have (a builder with a `metrics: Instruments<_>` field); `$what` names
/// the instruments in the docs.
macro_rules! metrics_options {
    ($what:literal) => {
        #[doc = concat!("Records ", $what, " with this meter provider instead of the global one.")]
        pub fn meter_provider<P: opentelemetry::metrics::MeterProvider + 'static>(
            mut self,
            provider: &P,
        ) -> Self {
            self.metrics = self.metrics.with_provider(provider);
            self
        }

        #[doc = concat!(
            "Whether to record ", $what,
            " (default on; to the global meter provider, which records nothing until one is set)."
        )]
        pub fn record_metrics(mut self, on: bool) -> Self {
            self.metrics = self.metrics.enabled(on);
            self
        }
    };
}
pub(crate) use metrics_options;

/// What identifies a duration's attribute set, in small numbers: the
/// method and scheme indices, the interned route's address, the status,
/// and whether `error.type` is the status (1) or `_OTHER` (2).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SetKey {
    method: u8,
    scheme: u8,
    error: u8,
    status: u16,
    route: usize,
}

/// A multiply-xor hasher for [`SetKey`]s.
#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// Attribute sets bound at most, per layer; past it, recordings find
/// their series each time.
const MAX_BOUND_SETS: usize = 1024;

/// The duration histogram of `observability-metrics`' provider, with a
/// handle per attribute set seen: a request records without hashing or
/// comparing its attributes.
struct Bound {
    histogram: observability_metrics::Histogram,
    sets: std::sync::RwLock<
        std::collections::HashMap<
            SetKey,
            observability_metrics::BoundHistogram,
            std::hash::BuildHasherDefault<KeyHasher>,
        >,
    >,
}

/// The server's instruments.
pub(crate) struct ServerInstruments {
    duration: Histogram<f64>,
    bound: Option<Bound>,
    /// `rpc.server.duration`, for gRPC requests.
    pub(crate) rpc: Histogram<f64>,
    active: Arc<Active>,
    _active_requests: ObservableUpDownCounter<i64>,
}

impl ServerInstruments {
    pub(crate) fn make(meter: &Meter, ours: Option<&observability_metrics::MeterProvider>) -> Self {
        let active = Arc::new(Active::default());
        let reader = Arc::clone(&active);
        let active_requests = meter
            .i64_observable_up_down_counter("http.server.active_requests")
            .with_unit("{request}")
            .with_description("Number of active HTTP server requests.")
            .with_callback(move |observer| {
                for (m, method) in METHODS.iter().enumerate() {
                    for (s, scheme) in SCHEMES.iter().enumerate() {
                        if reader.used[m][s].load(Ordering::Relaxed) {
                            observer.observe(
                                reader.count[m][s].load(Ordering::Relaxed),
                                &[
                                    KeyValue::new(HTTP_REQUEST_METHOD, *method),
                                    KeyValue::new(URL_SCHEME, *scheme),
                                ],
                            );
                        }
                    }
                }
            })
            .build();
        Self {
            duration: meter
                .f64_histogram("http.server.request.duration")
                .with_unit("s")
                .with_description("Duration of HTTP server requests.")
                .with_boundaries(DURATION_BOUNDARIES.to_vec())
                .build(),
            bound: ours.map(|provider| Bound {
                histogram: provider.histogram(
                    scope(),
                    "http.server.request.duration",
                    "s",
                    "Duration of HTTP server requests.",
                    DURATION_BOUNDARIES.to_vec(),
                ),
                sets: Default::default(),
            }),
            active,
            _active_requests: active_requests,
            rpc: rpc_duration(
                meter,
                "rpc.server.duration",
                "Measures the duration of inbound RPC.",
            ),
        }
    }
}

/// A server request being timed: counted active until it ends.
pub(crate) struct ServerRequest {
    start: Instant,
    method: usize,
    scheme: usize,
    route: Option<&'static str>,
}

impl ServerRequest {
    /// Starts timing a request (and counts it active).
    pub(crate) fn start(
        instruments: &ServerInstruments,
        method: &'static str,
        scheme: &str,
        route: Option<&'static str>,
    ) -> Self {
        let method = METHODS
            .iter()
            .position(|m| *m == method)
            .unwrap_or(METHODS.len() - 1);
        let scheme = if scheme.eq_ignore_ascii_case("http") {
            0
        } else if scheme.eq_ignore_ascii_case("https") {
            1
        } else {
            2
        };
        let used = &instruments.active.used[method][scheme];
        if !used.load(Ordering::Relaxed) {
            used.store(true, Ordering::Relaxed);
        }
        instruments.active.count[method][scheme].fetch_add(1, Ordering::Relaxed);
        Self {
            start: Instant::now(),
            method,
            scheme,
            route,
        }
    }

    /// Records the duration with the response's status, or the error's
    /// type (call with the request's span current, for exemplars).
    pub(crate) fn end(
        self,
        instruments: &ServerInstruments,
        status: Option<http::StatusCode>,
        error: Option<&'static str>,
    ) {
        let elapsed = self.start.elapsed().as_secs_f64();
        self.abandon(instruments);
        // `error.type`: the caller's (2), or a server error's status (1).
        let error_kind: u8 = match (status, error) {
            (_, Some(_)) => 2,
            (Some(s), None) if s.is_server_error() => 1,
            _ => 0,
        };
        let bound = instruments.bound.as_ref().map(|bound| {
            let key = SetKey {
                method: self.method as u8,
                scheme: self.scheme as u8,
                error: error_kind,
                status: status.map_or(0, |s| s.as_u16()),
                route: self.route.map_or(0, |r| r.as_ptr() as usize),
            };
            (bound, key)
        });
        if let Some((bound, key)) = &bound {
            let sets = bound.sets.read().unwrap_or_else(|e| e.into_inner());
            if let Some(series) = sets.get(key) {
                series.record(elapsed);
                return;
            }
        }
        let method = KeyValue::new(HTTP_REQUEST_METHOD, METHODS[self.method]);
        let scheme = KeyValue::new(URL_SCHEME, SCHEMES[self.scheme]);
        let error = match (error_kind, error, status) {
            (2, Some(error), _) => Some(KeyValue::new(ERROR_TYPE, error)),
            (1, _, Some(s)) => Some(KeyValue::new(ERROR_TYPE, status_text(s))),
            _ => None,
        };
        let status =
            status.map(|s| KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(s.as_u16())));
        let route = self.route.map(|r| KeyValue::new(HTTP_ROUTE, r));
        let record = |attributes: &[KeyValue]| match bound {
            Some((bound, key)) => {
                let mut sets = bound.sets.write().unwrap_or_else(|e| e.into_inner());
                if sets.len() < MAX_BOUND_SETS {
                    let series = bound.histogram.bind(attributes);
                    series.record(elapsed);
                    sets.insert(key, series);
                } else {
                    drop(sets);
                    bound.histogram.record(elapsed, attributes);
                }
            }
            None => instruments.duration.record(elapsed, attributes),
        };
        // Always in this order (method, scheme, route, status, error): the
        // order the series was first seen in is compared first.
        match (route, status, error) {
            (Some(r), Some(s), None) => record(&[method, scheme, r, s]),
            (Some(r), Some(s), Some(e)) => record(&[method, scheme, r, s, e]),
            (None, Some(s), None) => record(&[method, scheme, s]),
            (None, Some(s), Some(e)) => record(&[method, scheme, s, e]),
            (Some(r), None, Some(e)) => record(&[method, scheme, r, e]),
            (Some(r), None, None) => record(&[method, scheme, r]),
            (None, None, Some(e)) => record(&[method, scheme, e]),
            (None, None, None) => record(&[method, scheme]),
        }
    }

    /// A request dropped before its response is no longer active.
    pub(crate) fn abandon(&self, instruments: &ServerInstruments) {
        instruments.active.count[self.method][self.scheme].fetch_sub(1, Ordering::Relaxed);
    }
}

/// The client's instruments.
pub(crate) struct ClientInstruments {
    duration: Histogram<f64>,
    /// `rpc.client.duration`, for gRPC calls.
    pub(crate) rpc: Histogram<f64>,
}

impl ClientInstruments {
    pub(crate) fn make(meter: &Meter, _: Option<&observability_metrics::MeterProvider>) -> Self {
        Self {
            duration: meter
                .f64_histogram("http.client.request.duration")
                .with_unit("s")
                .with_description("Duration of HTTP client requests.")
                .with_boundaries(DURATION_BOUNDARIES.to_vec())
                .build(),
            rpc: rpc_duration(
                meter,
                "rpc.client.duration",
                "Measures the duration of outbound RPC.",
            ),
        }
    }
}

/// A client request being timed.
pub(crate) struct ClientRequest {
    instruments: Arc<OnceLock<Option<ClientInstruments>>>,
    start: Instant,
    method: &'static str,
    address: Option<String>,
    port: Option<u16>,
}

impl ClientRequest {
    /// Starts timing a request to `uri`.
    pub(crate) fn start(
        instruments: &Instruments<ClientInstruments>,
        method: &http::Method,
        uri: &http::Uri,
    ) -> Option<Self> {
        instruments.get()?;
        let (method, _) = crate::attributes::method(method);
        let (address, port) = match uri.authority() {
            Some(authority) => {
                let host = authority.as_str();
                let host = host.rsplit('@').next().unwrap_or(host);
                let (address, port) = crate::attributes::split_host_port(host);
                let port = port.or_else(|| crate::attributes::default_port(uri.scheme_str()));
                (Some(address.to_owned()), port)
            }
            None => (None, None),
        };
        Some(Self {
            instruments: Arc::clone(&instruments.cell),
            start: Instant::now(),
            method,
            address,
            port,
        })
    }

    /// Records the duration: with the status, or the error's type.
    pub(crate) fn end(self, status: Option<http::StatusCode>, error: Option<&'static str>) {
        let Some(Some(instruments)) = self.instruments.get() else {
            return;
        };
        let mut attributes = Vec::with_capacity(5);
        attributes.push(KeyValue::new(HTTP_REQUEST_METHOD, self.method));
        if let Some(address) = self.address {
            attributes.push(KeyValue::new(SERVER_ADDRESS, address));
        }
        if let Some(port) = self.port {
            attributes.push(KeyValue::new(SERVER_PORT, i64::from(port)));
        }
        if let Some(status) = status {
            attributes.push(KeyValue::new(
                HTTP_RESPONSE_STATUS_CODE,
                i64::from(status.as_u16()),
            ));
            if status.is_client_error() || status.is_server_error() {
                attributes.push(KeyValue::new(ERROR_TYPE, status_text(status)));
            }
        }
        if let Some(error) = error {
            attributes.push(KeyValue::new(ERROR_TYPE, error));
        }
        instruments
            .duration
            .record(self.start.elapsed().as_secs_f64(), &attributes);
    }
}

/// The RPC conventions' duration histogram (milliseconds, as the RPC
/// conventions the spans follow say; "Semantic conventions for RPC
/// metrics", before 1.38).
fn rpc_duration(meter: &Meter, name: &'static str, description: &'static str) -> Histogram<f64> {
    meter
        .f64_histogram(name)
        .with_unit("ms")
        .with_description(description)
        .with_boundaries(
            DURATION_BOUNDARIES
                .iter()
                .map(|seconds| seconds * 1000.0)
                .collect(),
        )
        .build()
}

/// A gRPC call being timed, from the request to the end of the response
/// body (where the trailers give its status); boxed, so that an HTTP
/// request's future and body carry one word for it.
pub(crate) struct RpcCall(Box<RpcState>);

struct RpcState {
    histogram: Histogram<f64>,
    start: Instant,
    path: String,
    status: Option<i64>,
}

impl std::fmt::Debug for RpcCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcCall")
            .field("path", &self.0.path)
            .finish_non_exhaustive()
    }
}

impl RpcCall {
    /// Starts timing a call to `path` (`/package.Service/Method`).
    pub(crate) fn start(histogram: &Histogram<f64>, path: &str) -> Self {
        Self(Box::new(RpcState {
            histogram: histogram.clone(),
            start: Instant::now(),
            path: path.to_owned(),
            status: None,
        }))
    }

    /// Takes `grpc-status` from response headers or trailers.
    pub(crate) fn status_from(&mut self, headers: &http::HeaderMap) {
        if let Some(code) = headers
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            self.0.status = Some(code);
        }
    }

    /// Records the duration (call with the call's span current, for
    /// exemplars).
    pub(crate) fn end(self) {
        let mut attributes = Vec::with_capacity(4);
        let call = self.0;
        crate::grpc::rpc_attributes(&call.path, &mut attributes);
        if let Some(code) = call.status {
            attributes.push(KeyValue::new(crate::attributes::RPC_GRPC_STATUS_CODE, code));
        }
        let millis = call.start.elapsed().as_secs_f64() * 1000.0;
        call.histogram.record(millis, &attributes);
    }
}

/// A status code as `error.type` text, without allocating for the usual
/// ones.
fn status_text(status: http::StatusCode) -> Cow<'static, str> {
    match status.as_u16() {
        400 => "400".into(),
        401 => "401".into(),
        403 => "403".into(),
        404 => "404".into(),
        409 => "409".into(),
        429 => "429".into(),
        500 => "500".into(),
        502 => "502".into(),
        503 => "503".into(),
        504 => "504".into(),
        other => other.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_recorded_for_the_no_op_global_provider_and_a_given_one_records() {
        // No test here sets a global meter provider: it is the API's no-op.
        assert!(Instruments::new(ServerInstruments::make).get().is_none());
        let provider = observability_metrics::MeterProvider::new(Default::default());
        let given = Instruments::new(ServerInstruments::make).with_provider(&provider);
        let instruments = given.get().expect("a given provider records");
        ServerRequest::start(instruments, "GET", "http", Some("/a")).end(
            instruments,
            Some(http::StatusCode::OK),
            None,
        );
        let collected = provider.collect();
        assert!(collected.metric("http.server.request.duration").is_some());
        let off = Instruments::new(ServerInstruments::make)
            .with_provider(&provider)
            .enabled(false);
        assert!(off.get().is_none());
    }

    /// Any provider through the API; ours through bound series: the same
    /// series either way.
    #[test]
    fn bound_and_api_recordings_land_in_the_same_series() {
        struct Foreign(observability_metrics::MeterProvider);
        impl MeterProvider for Foreign {
            fn meter_with_scope(&self, scope: InstrumentationScope) -> Meter {
                self.0.meter_with_scope(scope)
            }
        }
        let provider = observability_metrics::MeterProvider::new(Default::default());
        let ours = Instruments::new(ServerInstruments::make).with_provider(&provider);
        let foreign =
            Instruments::new(ServerInstruments::make).with_provider(&Foreign(provider.clone()));
        assert!(ours.get().unwrap().bound.is_some());
        assert!(foreign.get().unwrap().bound.is_none());
        for instruments in [&ours, &foreign, &ours] {
            let instruments = instruments.get().unwrap();
            ServerRequest::start(instruments, "GET", "https", Some("/a")).end(
                instruments,
                Some(http::StatusCode::SERVICE_UNAVAILABLE),
                None,
            );
        }
        let collected = provider.collect();
        let observability_metrics::Data::Histogram { points, .. } = &collected
            .metric("http.server.request.duration")
            .unwrap()
            .data
        else {
            panic!("not a histogram")
        };
        assert_eq!(points.len(), 1, "{points:?}");
        assert_eq!(points[0].count, 3);
        let attributes: Vec<String> = points[0]
            .attributes
            .iter()
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect();
        assert_eq!(
            attributes,
            [
                "error.type=503",
                "http.request.method=GET",
                "http.response.status_code=503",
                "http.route=/a",
                "url.scheme=https"
            ]
        );
    }
}
