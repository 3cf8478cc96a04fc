//! What the tests through the globals `init()` installs share: a call
//! through the client layer, and a request through an app.
#![allow(dead_code, clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Request};
use http_body_util::BodyExt;
use observability_http::ClientLayer;
use tower::{Layer, ServiceExt};

/// The headers a call to `uri` through `client` carries.
pub(crate) async fn outgoing(client: ClientLayer, uri: &str) -> HeaderMap {
    let sent = Arc::new(Mutex::new(HeaderMap::new()));
    let record = Arc::clone(&sent);
    let service = client.layer(tower::service_fn(move |request: Request<Body>| {
        *record.lock().unwrap() = request.headers().clone();
        async { Ok::<_, Infallible>(http::Response::new(Body::empty())) }
    }));
    let request = Request::get(uri).body(Body::empty());
    service.oneshot(request.unwrap()).await.unwrap();
    sent.lock().unwrap().clone()
}

/// A header's value as text, empty when absent.
pub(crate) fn text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The body of `app`'s answer to a GET of `path` with `headers`.
pub(crate) async fn get(app: Router, path: &str, headers: &[(&str, &str)]) -> String {
    answer(app, path, headers).await.0
}

/// `app`'s answer to a GET of `path` with `headers`: its body and its
/// headers.
pub(crate) async fn answer(
    app: Router,
    path: &str,
    headers: &[(&str, &str)],
) -> (String, HeaderMap) {
    let mut request = Request::get(path);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = app
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (String::from_utf8(body.to_vec()).unwrap(), parts.headers)
}
