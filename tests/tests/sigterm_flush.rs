//! Every example that serves stops on SIGTERM the way it does on ctrl-c:
//! it stops serving, flushes what it traced, and exits 0. Needs the example
//! binaries (built by `cargo build --workspace`, as `scripts/test.sh` does).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use observability_tests::OtlpReceiver;

fn binary(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/<name>
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p examples` (scripts/test.sh does)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn request(port: u16, raw: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(error) => panic!("nothing listens on {port}: {error}"),
        }
    };
    stream.write_all(raw.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 "), "{response}");
}

/// Starts `name` with `args`, sends `raw`, SIGTERMs it, and checks that it
/// exited 0 and that its spans reached the receiver.
fn serves_and_flushes_on_sigterm(name: &str, args: &[&str], port: u16, raw: &str) {
    let receiver = OtlpReceiver::start();
    let mut child = Command::new(binary(name))
        .args(args)
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint())
        // Long enough that nothing is exported before the signal.
        .env("OTEL_BSP_SCHEDULE_DELAY", "60000")
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    request(port, raw);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        receiver.spans().is_empty(),
        "{name}: exported before the signal"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{name} did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{name} exited with {status}");
    let spans = receiver.spans();
    assert!(
        spans.iter().any(|s| s.span.kind == 2),
        "{name}: its server span was flushed at SIGTERM: {:?}",
        spans.iter().map(|s| &s.span.name).collect::<Vec<_>>()
    );
}

#[test]
fn w3c_test_service_flushes_on_sigterm() {
    let port = free_port();
    let body = "[]";
    let raw = format!(
        "POST /test HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    serves_and_flushes_on_sigterm(
        "w3c-test-service",
        &[&format!("127.0.0.1:{port}")],
        port,
        &raw,
    );
}

#[test]
fn axum_server_flushes_on_sigterm() {
    let port = free_port();
    let raw = "GET /orders/7 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    serves_and_flushes_on_sigterm(
        "axum-server",
        &["--serve", &format!("127.0.0.1:{port}")],
        port,
        raw,
    );
}
