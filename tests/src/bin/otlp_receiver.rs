//! A counting OTLP receiver for load benchmarks: decodes every export and
//! prints the number of spans received. Trace exports (gRPC and HTTP) are
//! walked down to their spans, whose fields are checked against the wire
//! format and skipped: the least work that still counts them exactly.
//!
//! ```sh
//! cargo run --release -p tests --bin otlp-receiver -- 127.0.0.1:4317 127.0.0.1:4318
//! ```
//!
//! It prints `spans=<n>` each second the count changes, and once more when
//! its standard input closes (then it exits). With
//! `OTLP_RECEIVER_DELAY_MS=<ms>` it answers each export only after that
//! long, as a distant collector would. With `OTLP_RECEIVER_NAGLE=1` its gRPC
//! connections keep Nagle's algorithm on, as tonic's server does unless told.

use std::io::Read;
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let grpc = args.next().unwrap_or_else(|| "127.0.0.1:4317".to_owned());
    let http = args.next().unwrap_or_else(|| "127.0.0.1:4318".to_owned());
    let receiver = if std::env::var("OTLP_RECEIVER_NAGLE").is_ok_and(|v| v == "1") {
        observability_tests::OtlpReceiver::start_counting_with_nagle(&grpc, &http)
    } else {
        observability_tests::OtlpReceiver::start_counting(&grpc, &http)
    };
    if let Some(delay) = std::env::var("OTLP_RECEIVER_DELAY_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
    {
        receiver.set_behaviour(observability_tests::Behaviour::Delay(
            Duration::from_millis(delay),
        ));
    }
    println!(
        "listening grpc={} http={}",
        receiver.grpc_endpoint(),
        receiver.http_endpoint()
    );
    let (done_tx, done) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = done_tx.send(());
    });
    let mut last = 0;
    loop {
        let stop = done.recv_timeout(Duration::from_secs(1)).is_ok();
        let count = receiver.span_count();
        if count != last || stop {
            println!("spans={count}");
            last = count;
        }
        if stop {
            break;
        }
    }
}
