//! A RabbitMQ publisher and worker: one trace from `send` to `process`.
//!
//! ```sh
//! # a RabbitMQ broker (scripts/services.sh starts one on 127.0.0.1:5673)
//! AMQP_ADDR=amqp://guest:guest@127.0.0.1:5673/%2f cargo run -p examples --bin rabbitmq-worker
//! ```

use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use observability_core::Exporter;
use observability_messaging::amqp;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(addr) = std::env::var("AMQP_ADDR") else {
        eprintln!("set AMQP_ADDR to a RabbitMQ broker, e.g. amqp://guest:guest@127.0.0.1:5672/%2f");
        std::process::exit(2);
    };
    let telemetry = observability_core::builder()
        .service_name("rabbitmq-worker")
        .default_exporter(Exporter::Console)
        .try_init()?;

    let connection = Connection::connect(&addr, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .queue_declare(
            ShortString::from("example-jobs"),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;

    // Publisher: the message's headers carry the span's context.
    async {
        let properties =
            BasicProperties::default().with_correlation_id(ShortString::from("order-7"));
        amqp::publish(
            &channel,
            "",
            "example-jobs",
            BasicPublishOptions::default(),
            b"resize image 7",
            properties,
        )
        .await?
        .await?;
        Ok::<_, lapin::Error>(())
    }
    .instrument(tracing::info_span!("upload_image", image.id = 7))
    .await?;

    // Worker: process in a CONSUMER span, ack on success.
    while let Some(message) = channel
        .basic_get(
            ShortString::from("example-jobs"),
            BasicGetOptions::default(),
        )
        .await?
    {
        let delivery = message.delivery;
        amqp::Process::new()
            .ack(true)
            .run(&delivery, || async {
                tracing::info!(bytes = delivery.data.len(), "resizing");
                let _resize = tracing::info_span!("resize").entered();
                Ok::<_, std::io::Error>(())
            })
            .await?;
    }
    connection.close(0, ShortString::from("done")).await?;
    telemetry.shutdown().await?;
    Ok(())
}
