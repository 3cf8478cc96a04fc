//! `https://` endpoints: OTLP over TLS (rustls with the system's roots) for
//! both protocols, against a receiver whose self-signed certificate the
//! "system" trusts through `SSL_CERT_FILE` (which the native root store
//! reads). One test: it sets a process-wide variable.
#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)]

use std::time::Duration;

use observability_tests::{OtlpReceiver, Transport};

#[test]
fn https_endpoints_use_rustls_and_the_system_roots() {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (generated.cert.pem(), generated.signing_key.serialize_pem());
    let dir = std::env::temp_dir().join(format!("tls-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bundle = dir.join("roots.pem");
    std::fs::write(&bundle, &cert).unwrap();
    // SAFETY: this binary's only test sets it before any thread reads it.
    unsafe { std::env::set_var("SSL_CERT_FILE", &bundle) };

    let receiver = OtlpReceiver::start_tls(&cert, &key);
    for (protocol, endpoint, transport) in [
        ("grpc", receiver.grpc_tls_endpoint(), Transport::Grpc),
        (
            "http/protobuf",
            receiver.http_tls_endpoint(),
            Transport::Http,
        ),
    ] {
        let before = receiver.spans().len();
        let guard = observability_core::builder()
            .log_writer(tracing_subscriber::fmt::TestWriter::new())
            .env_lookup(move |name| match name {
                "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
                "OTEL_EXPORTER_OTLP_PROTOCOL" => Some(protocol.to_owned()),
                _ => None,
            })
            .build()
            .unwrap();
        tracing::dispatcher::with_default(guard.dispatch(), || {
            let _s = tracing::info_span!("over_tls", protocol).entered();
        });
        let stats = guard.shutdown_blocking().unwrap();
        assert_eq!((stats.exported, stats.dropped()), (1, 0), "{protocol}");
        let spans = receiver.wait_for_spans(before + 1, Duration::from_secs(10));
        let span = spans
            .iter()
            .find(|s| s.attr("protocol").as_deref() == Some(protocol))
            .unwrap();
        assert_eq!(span.transport, transport);
    }

    // A certificate the roots do not vouch for is refused: nothing exported.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let untrusted = OtlpReceiver::start_tls(&other.cert.pem(), &other.signing_key.serialize_pem());
    let endpoint = untrusted.http_tls_endpoint();
    let guard = observability_core::builder()
        .log_writer(tracing_subscriber::fmt::TestWriter::new())
        .env_lookup(move |name| (name == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| endpoint.clone()))
        .build()
        .unwrap();
    tracing::dispatcher::with_default(guard.dispatch(), || {
        let _s = tracing::info_span!("refused").entered();
    });
    let stats = guard.shutdown_blocking().unwrap();
    assert_eq!((stats.exported, stats.dropped()), (0, 1));
    assert!(untrusted.spans().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
