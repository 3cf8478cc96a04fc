//! A collection as an OTLP `ExportMetricsServiceRequest` in protobuf
//! (opentelemetry-proto, `metrics/v1/metrics.proto`): the body of an
//! OTLP/HTTP request, or the message of an OTLP/gRPC call.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};

use crate::data::{
    Collection, Data, Exemplar, HistogramPoint, Metric, Number, NumberPoint, Temporality,
};

/// A protobuf message being written; nested messages are written into
/// their own buffer and then added with their length.
#[derive(Default)]
struct Message(Vec<u8>);

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;

impl Message {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn tag(&mut self, field: u64, wire: u64) {
        self.varint((field << 3) | wire);
    }

    fn uint(&mut self, field: u64, v: u64) {
        if v != 0 {
            self.tag(field, VARINT);
            self.varint(v);
        }
    }

    fn fixed64(&mut self, field: u64, v: u64) {
        if v != 0 {
            self.tag(field, FIXED64);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A double, written even when zero (`oneof` members and `optional`
    /// fields are present whatever their value).
    fn double(&mut self, field: u64, v: f64) {
        self.tag(field, FIXED64);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn bytes(&mut self, field: u64, bytes: &[u8]) {
        self.tag(field, LEN);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn string(&mut self, field: u64, text: &str) {
        if !text.is_empty() {
            self.bytes(field, text.as_bytes());
        }
    }

    fn message(&mut self, field: u64, write: impl FnOnce(&mut Message)) {
        let mut inner = Message::default();
        write(&mut inner);
        self.bytes(field, &inner.0);
    }

    fn key_values(&mut self, field: u64, attributes: &[KeyValue]) {
        for kv in attributes {
            self.message(field, |m| {
                m.string(1, kv.key.as_str());
                m.message(2, |m| m.any_value(&kv.value));
            });
        }
    }

    /// `AnyValue`: 1 string, 2 bool, 3 int, 4 double, 5 array.
    fn any_value(&mut self, value: &Value) {
        match value {
            Value::String(s) => self.bytes(1, s.as_str().as_bytes()),
            Value::Bool(b) => {
                self.tag(2, VARINT);
                self.varint(u64::from(*b));
            }
            Value::I64(i) => {
                self.tag(3, VARINT);
                self.varint(*i as u64);
            }
            Value::F64(f) => self.double(4, *f),
            Value::Array(array) => self.message(5, |m| m.array(array)),
            other => self.bytes(1, other.as_str().as_bytes()),
        }
    }

    /// `ArrayValue`: repeated `AnyValue` values (field 1).
    fn array(&mut self, array: &Array) {
        let values: Vec<Value> = match array {
            Array::Bool(v) => v.iter().map(|&b| Value::Bool(b)).collect(),
            Array::I64(v) => v.iter().map(|&i| Value::I64(i)).collect(),
            Array::F64(v) => v.iter().map(|&f| Value::F64(f)).collect(),
            Array::String(v) => v.iter().map(|s| Value::String(s.clone())).collect(),
            _ => Vec::new(),
        };
        for value in &values {
            self.message(1, |m| m.any_value(value));
        }
    }
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// OTLP's `AggregationTemporality`: 1 delta, 2 cumulative.
fn temporality(t: Temporality) -> u64 {
    match t {
        Temporality::Delta => 1,
        Temporality::Cumulative => 2,
    }
}

/// Encodes `collection` as an `ExportMetricsServiceRequest` for a resource
/// with `resource` attributes and `schema_url`.
pub fn encode_request(collection: &Collection, resource: &[KeyValue], schema_url: &str) -> Vec<u8> {
    let mut request = Message::default();
    // ExportMetricsServiceRequest.resource_metrics = 1
    request.message(1, |rm| {
        // ResourceMetrics: resource = 1, scope_metrics = 2, schema_url = 3
        rm.message(1, |r| r.key_values(1, resource));
        for scope in &collection.scopes {
            rm.message(2, |sm| {
                sm.message(1, |s| scope_of(s, &scope.scope));
                for metric in &scope.metrics {
                    sm.message(2, |m| metric_of(m, metric));
                }
                sm.string(3, scope.scope.schema_url().unwrap_or_default());
            });
        }
        rm.string(3, schema_url);
    });
    request.0
}

/// `InstrumentationScope`: name 1, version 2, attributes 3.
fn scope_of(m: &mut Message, scope: &InstrumentationScope) {
    m.string(1, scope.name());
    m.string(2, scope.version().unwrap_or_default());
    let attributes: Vec<KeyValue> = scope.attributes().cloned().collect();
    m.key_values(3, &attributes);
}

/// `Metric`: name 1, description 2, unit 3, gauge 5, sum 7, histogram 9.
fn metric_of(m: &mut Message, metric: &Metric) {
    m.string(1, &metric.name);
    m.string(2, &metric.description);
    m.string(3, &metric.unit);
    match &metric.data {
        Data::Gauge { points } => m.message(5, |g| {
            for p in points {
                g.message(1, |d| number_point(d, p));
            }
        }),
        Data::Sum {
            points,
            monotonic,
            temporality: t,
        } => m.message(7, |s| {
            for p in points {
                s.message(1, |d| number_point(d, p));
            }
            s.uint(2, temporality(*t));
            s.uint(3, u64::from(*monotonic));
        }),
        Data::Histogram {
            points,
            temporality: t,
        } => m.message(9, |h| {
            for p in points {
                h.message(1, |d| histogram_point(d, p));
            }
            h.uint(2, temporality(*t));
        }),
    }
}

/// `NumberDataPoint`: start 2, time 3, as_double 4, exemplars 5, as_int 6,
/// attributes 7.
fn number_point(m: &mut Message, p: &NumberPoint) {
    m.fixed64(2, nanos(p.start));
    m.fixed64(3, nanos(p.time));
    number(m, 4, 6, p.value);
    for e in &p.exemplars {
        m.message(5, |x| exemplar(x, e));
    }
    m.key_values(7, &p.attributes);
}

/// A `oneof` number: `double_field` or `int_field` (sfixed64).
fn number(m: &mut Message, double_field: u64, int_field: u64, value: Number) {
    match value {
        Number::F64(v) => m.double(double_field, v),
        Number::I64(v) => {
            m.tag(int_field, FIXED64);
            m.0.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// `HistogramDataPoint`: start 2, time 3, count 4, sum 5, bucket_counts 6,
/// explicit_bounds 7, exemplars 8, attributes 9, min 11, max 12.
fn histogram_point(m: &mut Message, p: &HistogramPoint) {
    m.fixed64(2, nanos(p.start));
    m.fixed64(3, nanos(p.time));
    m.fixed64(4, p.count);
    m.double(5, p.sum);
    let packed = |values: &mut dyn Iterator<Item = u64>| {
        let mut out = Vec::new();
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    };
    m.bytes(6, &packed(&mut p.counts.iter().copied()));
    if !p.bounds.is_empty() {
        m.bytes(7, &packed(&mut p.bounds.iter().map(|b| b.to_bits())));
    }
    for e in &p.exemplars {
        m.message(8, |x| exemplar(x, e));
    }
    m.key_values(9, &p.attributes);
    if let Some(min) = p.min {
        m.double(11, min);
    }
    if let Some(max) = p.max {
        m.double(12, max);
    }
}

/// `Exemplar`: time 2, as_double 3, span_id 4, trace_id 5, as_int 6.
fn exemplar(m: &mut Message, e: &Exemplar) {
    m.fixed64(2, nanos(e.time));
    number(m, 3, 6, e.value);
    m.bytes(4, &e.span_id.to_bytes());
    m.bytes(5, &e.trace_id.to_bytes());
}
