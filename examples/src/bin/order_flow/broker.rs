//! The queue between the API and the worker, whichever broker carries it:
//! an in-process channel (the string-map carrier), RabbitMQ or SQS. Each
//! publish is a PRODUCER span whose context travels with the message; each
//! delivery is handled in a CONSUMER span that continues it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use observability_messaging::{amqp, sqs};
use tokio::sync::{Mutex, mpsc, watch};

use crate::Error;
use crate::args::Args;
use crate::order::Order;
use crate::telemetry::Telemetry;
use crate::worker::Worker;

/// A message on the in-process queue: the trace headers and the body.
type MemoryMessage = (HashMap<String, String>, Vec<u8>);

/// A named queue on one broker, and the telemetry of the part using it.
#[derive(Clone)]
pub(crate) struct Broker {
    queue: Arc<str>,
    transport: Transport,
    telemetry: Telemetry,
}

#[derive(Clone)]
enum Transport {
    Memory {
        tx: mpsc::Sender<MemoryMessage>,
        rx: Arc<Mutex<mpsc::Receiver<MemoryMessage>>>,
    },
    Rabbitmq {
        /// Kept with its channel: dropping the connection would close both.
        _connection: Arc<lapin::Connection>,
        channel: lapin::Channel,
    },
    Sqs {
        client: aws_sdk_sqs::Client,
        url: String,
    },
}

impl Broker {
    /// Connects to the broker `args` names and declares the queue.
    pub(crate) async fn connect(args: &Args) -> Result<Self, Error> {
        let queue = args.queue.as_str();
        let transport = match args.broker.as_str() {
            "memory" => {
                let (tx, rx) = mpsc::channel(64);
                Transport::Memory {
                    tx,
                    rx: Arc::new(Mutex::new(rx)),
                }
            }
            "rabbitmq" => {
                let addr = args
                    .amqp_addr
                    .clone()
                    .ok_or("--broker rabbitmq needs --amqp-addr or AMQP_ADDR")?;
                let connection =
                    lapin::Connection::connect(&addr, lapin::ConnectionProperties::default())
                        .await?;
                let channel = connection.create_channel().await?;
                channel
                    .queue_declare(
                        queue.into(),
                        lapin::options::QueueDeclareOptions::default(),
                        lapin::types::FieldTable::default(),
                    )
                    .await?;
                Transport::Rabbitmq {
                    _connection: Arc::new(connection),
                    channel,
                }
            }
            "sqs" => {
                let endpoint = args
                    .sqs_endpoint
                    .clone()
                    .ok_or("--broker sqs needs --sqs-endpoint or SQS_ENDPOINT")?;
                let config = aws_sdk_sqs::Config::builder()
                    .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                    .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                        "test",
                        "test",
                        None,
                        None,
                        "order-flow",
                    ))
                    .endpoint_url(endpoint)
                    .build();
                let client = aws_sdk_sqs::Client::from_conf(config);
                let created = client.create_queue().queue_name(queue).send().await?;
                let url = created.queue_url().unwrap_or_default().to_owned();
                Transport::Sqs { client, url }
            }
            other => {
                return Err(format!("--broker {other}: expected memory, rabbitmq or sqs").into());
            }
        };
        Ok(Self {
            queue: queue.into(),
            transport,
            telemetry: Telemetry::default(),
        })
    }

    /// The same queue, its spans in the part of `telemetry`.
    pub(crate) fn traced_by(&self, telemetry: &Telemetry) -> Self {
        Self {
            telemetry: telemetry.clone(),
            ..self.clone()
        }
    }

    /// The queue's name.
    pub(crate) fn queue(&self) -> &str {
        &self.queue
    }

    /// Publishes inside a PRODUCER span, the context in the message.
    pub(crate) async fn publish(&self, order: &Order) -> Result<(), Error> {
        let body = serde_json::to_vec(order)?;
        match &self.transport {
            Transport::Memory { tx, .. } => {
                self.telemetry
                    .producer(self.queue())
                    .send(HashMap::new(), |headers| async move {
                        tx.send((headers, body)).await.map_err(|e| e.to_string())
                    })
                    .await?;
            }
            Transport::Rabbitmq { channel, .. } => {
                let properties = lapin::BasicProperties::default()
                    .with_correlation_id(order.order_id.to_string().into());
                amqp::publish(
                    channel,
                    "",
                    self.queue(),
                    Default::default(),
                    &body,
                    properties,
                )
                .await?
                .await?;
            }
            Transport::Sqs { client, url } => {
                let body = String::from_utf8(body)?;
                sqs::send(client.send_message().queue_url(url).message_body(body)).await?;
            }
        }
        Ok(())
    }

    /// Consumes until `stop` turns true (or `max` messages), each in a
    /// CONSUMER span.
    pub(crate) async fn consume(
        &self,
        worker: Arc<Worker>,
        max: Option<usize>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), Error> {
        let mut handled = 0;
        loop {
            if max.is_some_and(|m| handled >= m) {
                return Ok(());
            }
            tokio::select! {
                n = self.next(&worker) => match n? {
                    None => return Ok(()),
                    Some(n) => handled += n,
                },
                _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
            }
        }
    }

    /// Handles what the next poll brings: how many messages, or `None` when
    /// the queue is closed.
    async fn next(&self, worker: &Worker) -> Result<Option<usize>, Error> {
        match &self.transport {
            Transport::Memory { rx, .. } => {
                let Some((headers, body)) = rx.lock().await.recv().await else {
                    return Ok(None);
                };
                let _ = self
                    .telemetry
                    .consumer(self.queue())
                    .process(&headers, None, || worker.handle(&body))
                    .await;
                Ok(Some(1))
            }
            Transport::Rabbitmq { channel, .. } => {
                let Some(message) = channel
                    .basic_get(self.queue().into(), Default::default())
                    .await?
                else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return Ok(Some(0));
                };
                let delivery = message.delivery;
                let _ = self
                    .telemetry
                    .amqp_process()
                    .queue(self.queue())
                    .ack(true)
                    .run(&delivery, || worker.handle(&delivery.data))
                    .await;
                Ok(Some(1))
            }
            Transport::Sqs { client, url } => {
                let received = sqs::receive(sqs::with_trace_attributes(
                    client
                        .receive_message()
                        .queue_url(url)
                        .wait_time_seconds(1)
                        .max_number_of_messages(10),
                ))
                .await?;
                for message in received.messages() {
                    let body = message.body().unwrap_or_default().as_bytes().to_vec();
                    let _ = self
                        .telemetry
                        .sqs_process(url)
                        .delete_on_success(client)
                        .run(message, || worker.handle(&body))
                        .await;
                }
                Ok(Some(received.messages().len()))
            }
        }
    }
}
