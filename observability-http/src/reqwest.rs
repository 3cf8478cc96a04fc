//! reqwest, which most Rust services use for outgoing calls (feature
//! `reqwest`): [`send`] wraps one request in a CLIENT span and injects its
//! context.
//!
//! ```no_run
//! # async fn call() -> Result<(), reqwest::Error> {
//! let client = reqwest::Client::new();
//! let response = observability_http::reqwest::send(client.get("http://inventory/items/7")).await?;
//! # Ok(()) }
//! ```

use std::sync::OnceLock;

use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};

use crate::attributes::{self as attr, ERROR_TYPE};
use crate::client::future::record_client_status;
use crate::client::start_client_span;
use crate::tracer::TracerSource;

fn tracer() -> &'static TracerSource {
    static TRACER: OnceLock<TracerSource> = OnceLock::new();
    TRACER.get_or_init(|| TracerSource::global("observability-http"))
}

/// Sends the request inside a CLIENT span, child of the current context,
/// with the span's context injected into its headers. The span ends when
/// the response headers arrive (or the request fails); 4xx, 5xx and
/// transport errors are errors.
pub async fn send(request: reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
    let (client, request) = request.build_split();
    let mut request = request?;
    let method = request.method().clone();
    let uri: http::Uri = request.url().as_str().parse().unwrap_or_default();
    let cx: Context = start_client_span(
        tracer().get(),
        &Default::default(),
        &method,
        &uri,
        request.headers_mut(),
        false,
    );
    let result = {
        use opentelemetry::context::FutureExt;
        client.execute(request).with_context(cx.clone()).await
    };
    let span = cx.span();
    match &result {
        Ok(response) => record_client_status(&cx, response.status()),
        Err(error) => {
            let kind = if error.is_timeout() {
                "timeout".to_owned()
            } else if error.is_connect() {
                "connect".to_owned()
            } else {
                attr::error_type(error)
            };
            span.set_attribute(KeyValue::new(ERROR_TYPE, kind));
            span.set_status(Status::error(error.to_string()));
        }
    }
    span.end();
    result
}
