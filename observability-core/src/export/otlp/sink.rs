//! The trace sink: OTLP over HTTP/protobuf and over gRPC, with protobuf
//! bodies encoded straight from the spans ([`super::super::encode`]),
//! several times cheaper per span than building the protobuf structs first.
//! gRPC is the same message behind the 5-byte gRPC frame, over HTTP/2, with
//! the outcome in `grpc-status`. Requests over the size limit, or refused as
//! too large, are split; retries stay within the export's deadline.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::Request;
use opentelemetry_sdk::Resource;

use super::transport::{Sent, Transport, Wire};
use crate::config::OtlpSettings;
use crate::export::encode::Encoder;
use crate::export::error::{BuildError, ExportError};
use crate::export::queue::Exported;
use crate::export::{Batch, ExportFuture, Outcome, Sink};

/// The gRPC method of the trace service.
const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

pub(crate) struct HttpSink {
    /// What encoding and sending need, shared with the exports in flight
    /// (a batch too large for the collector is encoded again in parts).
    shared: Arc<Shared>,
    /// The buffer the next batch is encoded into.
    body: Vec<u8>,
}

struct Shared {
    transport: Transport,
    encoder: Encoder,
    resource: Vec<u8>,
    schema_url: String,
    /// Bytes of one request at most, before compression.
    max_request_bytes: usize,
}

impl HttpSink {
    pub(super) fn new(
        settings: &OtlpSettings,
        max_request_bytes: usize,
        resource: &Resource,
        wire: Wire,
    ) -> Result<Self, BuildError> {
        let mut encoder = Encoder;
        let encoded_resource = encoder.resource(resource);
        Ok(Self {
            shared: Arc::new(Shared {
                transport: Transport::new(settings, wire, GRPC_EXPORT_PATH)?,
                encoder,
                resource: encoded_resource,
                schema_url: resource.schema_url().unwrap_or_default().to_owned(),
                max_request_bytes,
            }),
            body: Vec::new(),
        })
    }
}

/// An encoded request and the size of its message before compression.
struct Encoded {
    request: Request<Bytes>,
    message_len: usize,
}

impl Shared {
    /// Encodes `batch` into `body` (left empty for the next batch when
    /// uncompressed: the encoded batch becomes the request's body without
    /// a copy).
    fn encode(&self, body: &mut Vec<u8>, batch: &[Box<Exported>]) -> Result<Encoded, ExportError> {
        let mut encoder = self.encoder;
        let headroom = self.transport.headroom();
        let start = encoder.request(body, headroom, &self.resource, &self.schema_url, batch);
        let message_len = body.len() - start;
        let body = self.transport.body(body, start)?;
        Ok(Encoded {
            request: self.transport.request(body)?,
            message_len,
        })
    }

    /// Delivers `batch` by `deadline`: requests over the size limit, or
    /// refused by the collector as too large, are split in halves and
    /// sent again; a single span that is still too large is dropped and
    /// counted. Every span ends up in the outcome.
    async fn deliver(
        self: Arc<Self>,
        batch: Batch,
        first: Result<Encoded, ExportError>,
        deadline: tokio::time::Instant,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let mut first = Some(first);
        // Ranges of `batch` still to send, the next one last.
        let mut todo: Vec<std::ops::Range<usize>> = Vec::with_capacity(8);
        todo.push(0..batch.len());
        while let Some(range) = todo.pop() {
            let len = range.len() as u64;
            let encoded = match first.take() {
                Some(encoded) => encoded,
                None => self.encode(&mut Vec::new(), &batch[range.clone()]),
            };
            let encoded = match encoded {
                Ok(encoded) => encoded,
                Err(error) => {
                    outcome.fail(len, error);
                    continue;
                }
            };
            let too_large = if encoded.message_len > self.max_request_bytes {
                true
            } else {
                match self.transport.send(encoded.request, deadline).await {
                    Sent::Ok => {
                        outcome.sent += len;
                        false
                    }
                    Sent::TooLarge => true,
                    Sent::Failed(error) => {
                        outcome.fail(len, error);
                        false
                    }
                }
            };
            if too_large {
                if range.len() > 1 {
                    let middle = range.start + range.len() / 2;
                    todo.push(middle..range.end);
                    todo.push(range.start..middle);
                } else {
                    outcome.too_large += 1;
                }
            }
        }
        outcome
    }
}

impl Sink for HttpSink {
    fn name(&self) -> &'static str {
        "otlp"
    }

    fn component_type(&self) -> &'static str {
        match self.shared.transport.wire {
            Wire::Http => "otlp_http_span_exporter",
            Wire::Grpc => "otlp_grpc_span_exporter",
        }
    }

    fn export(&mut self, batch: Batch, deadline: Instant) -> ExportFuture<'static> {
        let encoded = self.shared.encode(&mut self.body, &batch);
        let shared = Arc::clone(&self.shared);
        let deadline = deadline.min(Instant::now() + shared.transport.timeout);
        Box::pin(shared.deliver(batch, encoded, tokio::time::Instant::from_std(deadline)))
    }
}
