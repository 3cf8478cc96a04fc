//! An SQS producer and worker: one trace from `send` to `process`.
//!
//! ```sh
//! # an SQS-compatible server on 127.0.0.1:4566 (scripts/services.sh starts moto)
//! SQS_ENDPOINT=http://127.0.0.1:4566 cargo run -p examples --bin sqs-worker
//! ```
//!
//! Against AWS itself, build the client from `aws-config` instead
//! (`aws_config::load_from_env()`); nothing else changes.

use aws_sdk_sqs::config::{Credentials, Region};
use observability_core::Exporter;
use observability_messaging::sqs;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(endpoint) = std::env::var("SQS_ENDPOINT") else {
        eprintln!(
            "set SQS_ENDPOINT to an SQS-compatible server, e.g. http://127.0.0.1:4566 (moto_server -H 127.0.0.1 -p 4566)"
        );
        std::process::exit(2);
    };
    let telemetry = observability_core::builder()
        .service_name("sqs-worker")
        .default_exporter(Exporter::Console)
        .try_init()?;

    let config = aws_sdk_sqs::Config::builder()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "example"))
        .endpoint_url(endpoint)
        .build();
    let client = aws_sdk_sqs::Client::from_conf(config);
    let url = client
        .create_queue()
        .queue_name("example-orders")
        .send()
        .await?
        .queue_url()
        .unwrap_or_default()
        .to_owned();

    // Producer: inside a request's span, the message carries its context.
    async {
        sqs::send(
            client
                .send_message()
                .queue_url(&url)
                .message_body(r#"{"order":7}"#),
        )
        .await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    }
    .instrument(tracing::info_span!("place_order", order.id = 7))
    .await?;

    // Worker: receive (asking for the trace attributes), process, delete.
    let received = sqs::receive(sqs::with_trace_attributes(
        client
            .receive_message()
            .queue_url(&url)
            .wait_time_seconds(1),
    ))
    .await?;
    for message in received.messages() {
        sqs::Process::new(&url)
            .delete_on_success(&client)
            .run(message, || async {
                tracing::info!(body = message.body(), "processing");
                let _charge = tracing::info_span!("charge_card").entered();
                Ok::<_, std::io::Error>(())
            })
            .await?;
    }
    telemetry.shutdown().await?;
    Ok(())
}
