//! reqwest, which most Rust services use for outgoing calls (feature
//! `reqwest` for reqwest 0.13, `reqwest-0-12` for reqwest 0.12; both may be
//! on): [`send`] (or [`SendTraced::send_traced`]) wraps one request in a
//! CLIENT span and injects its context.
//!
//! ```no_run
//! # async fn call() -> Result<(), reqwest::Error> {
//! use observability_http::reqwest::SendTraced;
//!
//! let client = reqwest::Client::new();
//! let response = client.get("http://inventory/items/7").send_traced().await?;
//! # Ok(()) }
//! ```
//!
//! Import the trait (or call `observability_http::reqwest::send(..)` by its
//! path): `use observability_http::reqwest;` would hide the reqwest crate's
//! own name in that module.

use std::future::Future;
use std::sync::OnceLock;

use http::{HeaderMap, Method, StatusCode, Uri};
use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};

use crate::attributes::{self as attr, ERROR_TYPE};
use crate::client::future::record_client_status;
use crate::client::start_client_span;
use crate::metrics::{ClientInstruments, ClientRequest, Instruments};
use crate::tracer::TracerSource;

fn tracer() -> &'static TracerSource {
    static TRACER: OnceLock<TracerSource> = OnceLock::new();
    TRACER.get_or_init(|| TracerSource::global("observability-http"))
}

/// Sends the request inside a CLIENT span, child of the current context,
/// with the span's context injected into its headers. The span ends when
/// the response headers arrive (or the request fails); 4xx, 5xx and
/// transport errors are errors.
pub async fn send<R: SendTraced>(request: R) -> R::Output {
    request.send_traced().await
}

/// A reqwest `RequestBuilder` that can be sent inside a CLIENT span (see
/// [`send`]); implemented for the reqwest versions whose features are on.
pub trait SendTraced: Sized {
    /// What `send` returns for this version of reqwest.
    type Output;

    /// Sends the request inside a CLIENT span, its context injected.
    fn send_traced(self) -> impl Future<Output = Self::Output> + Send;
}

/// What the span and the duration need of a request, in any reqwest
/// version.
struct Started {
    cx: Context,
    metered: Option<ClientRequest>,
}

fn instruments() -> &'static Instruments<ClientInstruments> {
    static INSTRUMENTS: OnceLock<Instruments<ClientInstruments>> = OnceLock::new();
    INSTRUMENTS.get_or_init(|| Instruments::new(ClientInstruments::make))
}

fn start(method: &Method, uri: &Uri, headers: &mut HeaderMap) -> Started {
    let metered = ClientRequest::start(instruments(), method, uri);
    let cx = start_client_span(tracer(), &Default::default(), method, uri, headers, false);
    Started { cx, metered }
}

impl Started {
    /// Ends the span with the response's status, or with the error.
    fn end(self, outcome: Result<StatusCode, (&'static str, String, String)>) {
        if let Some(metered) = self.metered {
            // With the span current: the duration's exemplar is its.
            let _attached = self.cx.clone().attach();
            match &outcome {
                Ok(status) => metered.end(Some(*status), None),
                Err((kind, _, _)) if !kind.is_empty() => metered.end(None, Some(kind)),
                Err(_) => metered.end(None, Some("_OTHER")),
            }
        }
        let span = self.cx.span();
        match outcome {
            Ok(status) => record_client_status(&self.cx, status),
            Err((kind, detail, message)) => {
                let kind = if kind.is_empty() {
                    detail
                } else {
                    kind.to_owned()
                };
                span.set_attribute(KeyValue::new(ERROR_TYPE, kind));
                span.set_status(Status::error(message));
            }
        }
        span.end();
    }
}

macro_rules! send_traced {
    ($reqwest:ident) => {
        impl SendTraced for $reqwest::RequestBuilder {
            type Output = $reqwest::Result<$reqwest::Response>;

            async fn send_traced(self) -> Self::Output {
                let (client, request) = self.build_split();
                let mut request = request?;
                let method = request.method().clone();
                let uri: Uri = request.url().as_str().parse().unwrap_or_default();
                let started = start(&method, &uri, request.headers_mut());
                let result = {
                    use opentelemetry::context::FutureExt;
                    client
                        .execute(request)
                        .with_context(started.cx.clone())
                        .await
                };
                started.end(match &result {
                    Ok(response) => Ok(response.status()),
                    Err(error) => Err((
                        if error.is_timeout() {
                            "timeout"
                        } else if error.is_connect() {
                            "connect"
                        } else {
                            ""
                        },
                        attr::error_type(error),
                        error.to_string(),
                    )),
                });
                result
            }
        }
    };
}

#[cfg(feature = "reqwest")]
send_traced!(reqwest);

#[cfg(feature = "reqwest-0-12")]
use reqwest_0_12 as reqwest012;
#[cfg(feature = "reqwest-0-12")]
send_traced!(reqwest012);
