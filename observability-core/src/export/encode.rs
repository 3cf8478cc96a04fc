//! OTLP trace requests encoded straight from `SpanData` into protobuf bytes,
//! without building the intermediate message structs: the wire format of
//! `opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest`.

use std::time::{SystemTime, UNIX_EPOCH};

use observability_propagation::starter::HttpServerRequest;
use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;

use super::queue::Exported;
use super::same_scope;

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// A tag of one byte: `field`'s number (at most 15) and its wire type.
const fn tag_byte(field: u32, wire: u32) -> u8 {
    ((field << 3) | wire) as u8
}

// The one-byte tags of the fields written as constant bytes.
// `KeyValue`: `key` and `value`.
const KEY: u8 = tag_byte(1, LEN);
const VALUE: u8 = tag_byte(2, LEN);
// `AnyValue`: `string_value`, `bool_value` and `int_value`.
const STRING_VALUE: u8 = tag_byte(1, LEN);
const BOOL_VALUE: u8 = tag_byte(2, VARINT);
const INT_VALUE: u8 = tag_byte(3, VARINT);
// `Span`: the ids, the kind, the times and the attributes.
const TRACE_ID: u8 = tag_byte(1, LEN);
const SPAN_ID: u8 = tag_byte(2, LEN);
const PARENT_SPAN_ID: u8 = tag_byte(4, LEN);
const KIND: u8 = tag_byte(6, VARINT);
const START_TIME: u8 = tag_byte(7, FIXED64);
const END_TIME: u8 = tag_byte(8, FIXED64);
const ATTRIBUTES: u8 = tag_byte(9, LEN);

/// A protobuf writer over a byte buffer. Nested messages are written in
/// place behind room for the length they usually need (one byte, two for
/// spans), adjusted afterwards in the rare case it differs, so nothing is
/// copied twice.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Encoder;

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Writes `value` as a varint at the start of `buf`; returns its length.
fn varint_into(buf: &mut [u8; 10], mut value: u64) -> usize {
    let mut n = 0;
    while value >= 0x80 {
        buf[n] = (value as u8) | 0x80;
        value >>= 7;
        n += 1;
    }
    buf[n] = value as u8;
    n + 1
}

/// Writes a length-delimited field's tag and `len` so that they end at
/// `end`; returns where they begin.
fn header_before(out: &mut [u8], end: usize, field: u32, len: usize) -> usize {
    let mut tag_bytes = [0u8; 10];
    let t = varint_into(&mut tag_bytes, u64::from((field << 3) | LEN));
    let mut len_bytes = [0u8; 10];
    let l = varint_into(&mut len_bytes, len as u64);
    let start = end - t - l;
    out[start..start + t].copy_from_slice(&tag_bytes[..t]);
    out[start + t..end].copy_from_slice(&len_bytes[..l]);
    start
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u32) {
    varint(out, u64::from((field << 3) | wire));
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    if field < 16 && bytes.len() < 0x80 {
        // The usual: a tag and a length of one byte each.
        out.extend_from_slice(&[tag_byte(field, LEN), bytes.len() as u8]);
    } else {
        tag(out, field, LEN);
        varint(out, bytes.len() as u64);
    }
    out.extend_from_slice(bytes);
}

fn string_field(out: &mut Vec<u8>, field: u32, text: &str) {
    if !text.is_empty() {
        bytes_field(out, field, text.as_bytes());
    }
}

fn uint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        tag(out, field, VARINT);
        varint(out, value);
    }
}

fn fixed64_field(out: &mut Vec<u8>, field: u32, value: u64) {
    tag(out, field, FIXED64);
    out.extend_from_slice(&value.to_le_bytes());
}

fn fixed32_field(out: &mut Vec<u8>, field: u32, value: u32) {
    tag(out, field, FIXED32);
    out.extend_from_slice(&value.to_le_bytes());
}

/// Writes a `KeyValue` as field `field` (at most 15) of a non-empty `key`
/// and an `AnyValue` holding `head` (its value's tag, and a length or a
/// byte) then `tail`, when the whole is under 128 bytes: every tag and
/// length is known before the first byte, and the fixed parts go in one
/// copy each. `false` (nothing written) for a longer one.
#[inline(always)]
fn short_pair(out: &mut Vec<u8>, field: u32, key: &[u8], head: [u8; 2], tail: &[u8]) -> bool {
    let any_len = 2 + tail.len();
    let kv_len = 2 + key.len() + 2 + any_len;
    if kv_len >= 0x80 {
        return false;
    }
    out.reserve(2 + kv_len);
    out.extend_from_slice(&[tag_byte(field, LEN), kv_len as u8, KEY, key.len() as u8]);
    out.extend_from_slice(key);
    out.extend_from_slice(&[VALUE, any_len as u8, head[0], head[1]]);
    out.extend_from_slice(tail);
    true
}

/// [`short_pair`] for a request's attribute (a span's field 9), whose key
/// is known where this is inlined: the tags, the lengths and the key go
/// out in one copy of a constant length, then `tail`.
#[inline(always)]
fn constant_key_pair(out: &mut Vec<u8>, key: &'static str, head: [u8; 2], tail: &[u8]) -> bool {
    const ROOM: usize = 64;
    let key = key.as_bytes();
    let any_len = 2 + tail.len();
    let kv_len = 2 + key.len() + 2 + any_len;
    if kv_len >= 0x80 || key.len() + 8 > ROOM {
        return false;
    }
    let mut fixed = [0u8; ROOM];
    fixed[..4].copy_from_slice(&[ATTRIBUTES, kv_len as u8, KEY, key.len() as u8]);
    fixed[4..4 + key.len()].copy_from_slice(key);
    fixed[4 + key.len()..8 + key.len()].copy_from_slice(&[VALUE, any_len as u8, head[0], head[1]]);
    out.reserve(2 + kv_len);
    out.extend_from_slice(&fixed[..8 + key.len()]);
    out.extend_from_slice(tail);
    true
}

/// [`short_pair`] for a string.
#[inline(always)]
fn short_text(out: &mut Vec<u8>, field: u32, key: &[u8], text: &[u8]) -> bool {
    text.len() < 0x80 && short_pair(out, field, key, [STRING_VALUE, text.len() as u8], text)
}

/// [`short_pair`] for an integer: its varint's first byte goes in the head.
#[inline(always)]
fn short_int(out: &mut Vec<u8>, field: u32, key: &[u8], int: i64) -> bool {
    let mut number = [0u8; 10];
    let n = varint_into(&mut number, int as u64);
    short_pair(out, field, key, [INT_VALUE, number[0]], &number[1..n])
}

/// Writes the usual attribute — a non-empty key and a string, integer or
/// boolean value, under 128 bytes in all — with [`short_pair`]; `false`
/// (nothing written) for any other, which [`Encoder::key_value`] writes.
/// The bytes are the same either way.
#[inline]
fn short_key_value(out: &mut Vec<u8>, field: u32, kv: &KeyValue) -> bool {
    let key = kv.key.as_str().as_bytes();
    if key.is_empty() || field > 15 {
        return false;
    }
    match &kv.value {
        Value::String(s) => short_text(out, field, key, s.as_str().as_bytes()),
        Value::I64(i) => short_int(out, field, key, *i),
        Value::Bool(b) => short_pair(out, field, key, [BOOL_VALUE, u8::from(*b)], &[]),
        _ => false,
    }
}

/// Writes an HTTP server request's attributes as the span's first
/// attributes (`KeyValue`s of field 9): the bytes encoding
/// [`HttpServerRequest::push_to`]'s list gives, in its order (a test holds
/// them equal), with every key a constant. Spelled out rather than through
/// `HttpServerRequest::for_each`: the writers in its closure were not
/// inlined there, and cost about 0.2 k instructions a span more.
fn request_attributes(out: &mut Vec<u8>, http: &HttpServerRequest) {
    type H = HttpServerRequest;
    text_attribute(out, H::METHOD, http.method);
    if let Some(original) = &http.method_original {
        text_attribute(out, H::METHOD_ORIGINAL, original);
    }
    if let Some(route) = &http.route {
        text_attribute(out, H::ROUTE, route.as_str());
    }
    text_attribute(out, H::PATH, http.path.as_str());
    if let Some(query) = &http.query {
        text_attribute(out, H::QUERY, query);
    }
    text_attribute(out, H::SCHEME, http.scheme.as_str());
    if let Some(address) = &http.server_address {
        text_attribute(out, H::SERVER_ADDRESS, address.as_str());
    }
    if let Some(port) = http.server_port {
        int_attribute(out, H::SERVER_PORT, i64::from(port));
    }
    if let Some(client) = &http.client_address {
        text_attribute(out, H::CLIENT_ADDRESS, client.as_str());
    }
    if let Some((address, port)) = &http.peer {
        text_attribute(out, H::PEER_ADDRESS, address.as_str());
        int_attribute(out, H::PEER_PORT, i64::from(*port));
    }
    if let Some(version) = http.protocol_version {
        text_attribute(out, H::PROTOCOL_VERSION, version);
    }
    if let Some(agent) = &http.user_agent {
        text_attribute(out, H::USER_AGENT, agent.as_str());
    }
    if let Some(code) = http.status_code {
        int_attribute(out, H::STATUS_CODE, code);
    }
}

/// A `KeyValue` (field 9) of a request's key and a string. Inlined, so
/// that the key's length is a constant.
#[inline(always)]
fn text_attribute(out: &mut Vec<u8>, key: &'static str, text: &str) {
    let short = text.len() < 0x80
        && constant_key_pair(out, key, [STRING_VALUE, text.len() as u8], text.as_bytes());
    if !short {
        Encoder.nested(out, 9, |enc, o| {
            string_field(o, 1, key);
            enc.nested(o, 2, |_, v| bytes_field(v, 1, text.as_bytes()));
        });
    }
}

/// A `KeyValue` (field 9) of a request's key and an integer (a port, the
/// status code).
#[inline(always)]
fn int_attribute(out: &mut Vec<u8>, key: &'static str, int: i64) {
    let mut number = [0u8; 10];
    let n = varint_into(&mut number, int as u64);
    if !constant_key_pair(out, key, [INT_VALUE, number[0]], &number[1..n]) {
        Encoder.key_value(out, 9, &KeyValue::new(key, int));
    }
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn kind(kind: &SpanKind) -> u8 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// OTLP span flags: the W3C flags plus "is-remote is known" and "parent is remote".
fn flags(trace_flags: u8, remote: bool) -> u32 {
    u32::from(trace_flags) | 0x100 | if remote { 0x200 } else { 0 }
}

impl Encoder {
    /// Appends the length-delimited field `field` whose contents `write`
    /// produces.
    fn nested(
        &mut self,
        out: &mut Vec<u8>,
        field: u32,
        write: impl FnOnce(&mut Self, &mut Vec<u8>),
    ) {
        self.nested_sized(out, field, 1, write);
    }

    /// [`nested`](Self::nested) with room for a `room`-byte length before
    /// the contents (1 or 2: 2 for messages that usually reach 128 bytes,
    /// such as spans); a length of another size moves the contents once.
    #[inline]
    fn nested_sized(
        &mut self,
        out: &mut Vec<u8>,
        field: u32,
        room: usize,
        write: impl FnOnce(&mut Self, &mut Vec<u8>),
    ) {
        tag(out, field, LEN);
        let at = out.len();
        out.extend_from_slice(&[0; 2][..room]);
        write(self, out);
        let len = out.len() - at - room;
        if room == 1 && len < 0x80 {
            out[at] = len as u8;
            return;
        }
        let mut prefix = [0u8; 10];
        let n = varint_into(&mut prefix, len as u64);
        if n == room {
            out[at..at + room].copy_from_slice(&prefix[..n]);
        } else {
            out.splice(at..at + room, prefix[..n].iter().copied());
        }
    }

    fn any_value(&mut self, out: &mut Vec<u8>, value: &Value) {
        match value {
            Value::String(s) => bytes_field(out, 1, s.as_str().as_bytes()),
            Value::Bool(b) => {
                tag(out, 2, VARINT);
                varint(out, u64::from(*b));
            }
            Value::I64(i) => {
                tag(out, 3, VARINT);
                varint(out, *i as u64);
            }
            Value::F64(f) => fixed64_field(out, 4, f.to_bits()),
            Value::Array(array) => self.nested(out, 5, |enc, arr| {
                let mut item =
                    |enc: &mut Self, v: Value| enc.nested(arr, 1, |enc, o| enc.any_value(o, &v));
                match array {
                    Array::Bool(items) => items.iter().for_each(|v| item(enc, Value::Bool(*v))),
                    Array::I64(items) => items.iter().for_each(|v| item(enc, Value::I64(*v))),
                    Array::F64(items) => items.iter().for_each(|v| item(enc, Value::F64(*v))),
                    Array::String(items) => items
                        .iter()
                        .for_each(|v| item(enc, Value::String(v.clone()))),
                    _ => {}
                }
            }),
            other => bytes_field(out, 1, other.as_str().as_bytes()),
        }
    }

    fn key_values<'a>(
        &mut self,
        out: &mut Vec<u8>,
        field: u32,
        attributes: impl IntoIterator<Item = &'a KeyValue>,
    ) {
        for kv in attributes {
            if !short_key_value(out, field, kv) {
                self.key_value(out, field, kv);
            }
        }
    }

    /// One `KeyValue` message of any size and value type.
    fn key_value(&mut self, out: &mut Vec<u8>, field: u32, kv: &KeyValue) {
        self.nested(out, field, |enc, o| {
            string_field(o, 1, kv.key.as_str());
            enc.nested(o, 2, |enc, v| enc.any_value(v, &kv.value));
        });
    }

    fn scope(&mut self, out: &mut Vec<u8>, scope: &InstrumentationScope) {
        string_field(out, 1, scope.name());
        string_field(out, 2, scope.version().unwrap_or_default());
        self.key_values(out, 3, scope.attributes());
    }

    fn span(&mut self, out: &mut Vec<u8>, span: &Exported) {
        let sc = &span.span_context;
        // The fields of a constant size go out a few at a time, each group
        // in one copy, in the fields' order: the trace and span ids (1, 2).
        let mut ids = [0u8; 28];
        ids[..2].copy_from_slice(&[TRACE_ID, 16]);
        ids[2..18].copy_from_slice(&sc.trace_id().to_bytes());
        ids[18..20].copy_from_slice(&[SPAN_ID, 8]);
        ids[20..].copy_from_slice(&sc.span_id().to_bytes());
        out.extend_from_slice(&ids);
        if *sc.trace_state() != opentelemetry::trace::TraceState::NONE {
            string_field(out, 3, &sc.trace_state().header());
        }
        if span.parent_span_id != SpanId::INVALID {
            let mut parent = [0u8; 10];
            parent[..2].copy_from_slice(&[PARENT_SPAN_ID, 8]);
            parent[2..].copy_from_slice(&span.parent_span_id.to_bytes());
            out.extend_from_slice(&parent);
        }
        string_field(out, 5, &span.name);
        // The kind (6, never 0: one byte) and the times (7, 8).
        let mut times = [0u8; 20];
        times[..3].copy_from_slice(&[KIND, kind(&span.span_kind), START_TIME]);
        times[3..11].copy_from_slice(&nanos(span.start_time).to_le_bytes());
        times[11] = END_TIME;
        times[12..].copy_from_slice(&nanos(span.end_time).to_le_bytes());
        out.extend_from_slice(&times);
        if let Some(http) = &span.http {
            request_attributes(out, http);
        }
        self.key_values(out, 9, &span.attributes);
        uint_field(out, 10, u64::from(span.dropped_attributes_count));
        for event in span.events.iter() {
            self.nested(out, 11, |enc, e| {
                fixed64_field(e, 1, nanos(event.timestamp));
                string_field(e, 2, &event.name);
                enc.key_values(e, 3, &event.attributes);
                uint_field(e, 4, u64::from(event.dropped_attributes_count));
            });
        }
        uint_field(out, 12, u64::from(span.events.dropped_count));
        for link in span.links.iter() {
            self.nested(out, 13, |enc, l| {
                let lc = &link.span_context;
                bytes_field(l, 1, &lc.trace_id().to_bytes());
                bytes_field(l, 2, &lc.span_id().to_bytes());
                string_field(l, 3, &lc.trace_state().header());
                enc.key_values(l, 4, &link.attributes);
                uint_field(l, 5, u64::from(link.dropped_attributes_count));
                fixed32_field(l, 6, flags(lc.trace_flags().to_u8(), lc.is_remote()));
            });
        }
        uint_field(out, 14, u64::from(span.links.dropped_count));
        let (code, message) = match &span.status {
            Status::Unset => (0, ""),
            Status::Ok => (1, ""),
            Status::Error { description } => (2, description.as_ref()),
        };
        if code != 0 {
            self.nested(out, 15, |_, s| {
                string_field(s, 2, message);
                uint_field(s, 3, code);
            });
        }
        fixed32_field(
            out,
            16,
            flags(sc.trace_flags().to_u8(), span.parent_span_is_remote),
        );
    }

    /// The `Resource` message, encoded once per exporter.
    pub(crate) fn resource(&mut self, resource: &Resource) -> Vec<u8> {
        let attributes: Vec<KeyValue> = resource
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
        let mut out = Vec::new();
        self.key_values(&mut out, 1, &attributes);
        out
    }

    /// Encodes one `ExportTraceServiceRequest` for `spans`, grouped by
    /// instrumentation scope, with an encoded `resource` (from
    /// [`resource`](Self::resource)), into `out` (cleared first). The
    /// message starts at the returned offset, which is at least `headroom`,
    /// so that a caller can frame it in place.
    ///
    /// The batch-sized outer messages (the `ResourceSpans` and the first
    /// `ScopeSpans`) are written contents first and their tags and lengths
    /// put in front afterwards, into room left for them: nothing of the
    /// batch is moved. The resource follows the scopes (protobuf fields may
    /// come in any order).
    pub(crate) fn request(
        &mut self,
        out: &mut Vec<u8>,
        headroom: usize,
        resource: &[u8],
        schema_url: &str,
        spans: &[Box<Exported>],
    ) -> usize {
        // Two tags and two lengths of at most five bytes each.
        const OUTER_ROOM: usize = 12;
        out.clear();
        out.resize(headroom + OUTER_ROOM, 0);
        let contents = out.len();
        // Scopes in order of first appearance; a batch rarely has more than a
        // few, and neighbours usually share one.
        let mut scopes: Vec<&InstrumentationScope> = Vec::new();
        let mut scope_of: Vec<usize> = Vec::with_capacity(spans.len());
        for span in spans {
            let scope = &span.instrumentation_scope;
            let index = match scope_of.last() {
                Some(&last) if same_scope(scopes[last], scope) => last,
                _ => match scopes.iter().position(|s| same_scope(s, scope)) {
                    Some(index) => index,
                    None => {
                        scopes.push(scope);
                        scopes.len() - 1
                    }
                },
            };
            scope_of.push(index);
        }
        let scope_spans = |enc: &mut Self, ss: &mut Vec<u8>, index: usize| {
            let scope = scopes[index];
            enc.nested(ss, 1, |enc, s| enc.scope(s, scope));
            for (span, _) in spans.iter().zip(&scope_of).filter(|(_, of)| **of == index) {
                enc.nested_sized(ss, 2, 2, |enc, o| enc.span(o, span));
            }
            string_field(ss, 3, scope.schema_url().unwrap_or_default());
        };
        // The first scope's contents go right after the room left for the
        // headers; any other scope is an ordinary nested message.
        let first = !scopes.is_empty();
        if first {
            scope_spans(self, out, 0);
        }
        let first_end = out.len();
        for index in 1..scopes.len() {
            self.nested(out, 2, |enc, ss| scope_spans(enc, ss, index));
        }
        bytes_field(out, 1, resource);
        string_field(out, 3, schema_url);
        let mut start = contents;
        if first {
            start = header_before(out, start, 2, first_end - contents);
        }
        let resource_spans = out.len() - start;
        header_before(out, start, 1, resource_spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, TraceFlags, TraceId, TraceState};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
    use prost::Message;
    use std::time::Duration;

    fn any_key_value() -> impl proptest::strategy::Strategy<Value = KeyValue> {
        use proptest::prelude::*;
        let value = prop_oneof![
            "[a-z0-9/ .:-]{0,140}".prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            proptest::collection::vec("[a-z]{0,3}", 0..3).prop_map(|v| {
                Value::Array(Array::String(v.into_iter().map(Into::into).collect()))
            }),
        ];
        ("[a-z._]{0,140}", value).prop_map(|(k, v)| KeyValue::new(k, v))
    }

    fn any_request() -> impl proptest::strategy::Strategy<Value = HttpServerRequest> {
        use proptest::prelude::*;
        let text = || proptest::option::of("[a-zA-Z0-9/ .:;()-]{0,200}");
        let port = || proptest::option::of(any::<u16>());
        (
            (
                prop_oneof![Just("GET"), Just("POST"), Just("_OTHER")],
                text(),
                text(),
            ),
            (
                "[a-z/{}]{0,150}",
                text(),
                prop_oneof![Just("http"), Just("https")],
            ),
            (text(), port(), text()),
            (
                proptest::option::of(("[0-9a-f:.]{0,45}", any::<u16>())),
                proptest::option::of(prop_oneof![Just("1.1"), Just("2")]),
                text(),
                proptest::option::of(any::<i64>()),
            ),
        )
            .prop_map(
                |(
                    (method, method_original, route),
                    (path, query, scheme),
                    (server_address, server_port, client_address),
                    (peer, protocol_version, user_agent, status_code),
                )| HttpServerRequest {
                    method,
                    method_original,
                    route: route.map(Into::into),
                    path: path.into(),
                    query,
                    scheme: scheme.into(),
                    server_address: server_address.map(Into::into),
                    server_port,
                    client_address: client_address.map(Into::into),
                    peer: peer.map(|(address, port)| (address.into(), port)),
                    protocol_version,
                    user_agent: user_agent.map(Into::into),
                    status_code,
                },
            )
    }

    proptest::proptest! {
        #[test]
        fn request_attributes_encode_as_their_list_does(http in any_request()) {
            let mut typed = Vec::new();
            request_attributes(&mut typed, &http);
            let mut list = Vec::new();
            http.clone().push_to(&mut list);
            let mut general = Vec::new();
            Encoder.key_values(&mut general, 9, &list);
            proptest::prop_assert_eq!(typed, general);
            // `for_each` and `count` give the list's keys, in its order.
            let mut keys = Vec::new();
            http.for_each(|key, _| keys.push(key));
            let listed: Vec<&str> = list.iter().map(|kv| kv.key.as_str()).collect();
            proptest::prop_assert_eq!(&keys, &listed);
            proptest::prop_assert_eq!(http.count(), list.len());
            proptest::prop_assert!(keys.iter().all(|k| HttpServerRequest::KEYS.contains(k)));
        }

        #[test]
        fn short_attributes_encode_as_the_general_path_does(
            kv in any_key_value(),
            field in 1u32..20,
        ) {
            let mut general = Vec::new();
            Encoder.key_value(&mut general, field, &kv);
            let mut short = Vec::new();
            if short_key_value(&mut short, field, &kv) {
                proptest::prop_assert_eq!(short, general);
            } else {
                proptest::prop_assert!(short.is_empty());
                let key = kv.key.as_str().len();
                let plain = matches!(kv.value, Value::String(_) | Value::I64(_) | Value::Bool(_));
                proptest::prop_assert!(
                    key == 0 || field > 15 || !plain || general.len() > 0x81,
                    "{kv:?} in field {field} should take the short path"
                );
            }
        }
    }

    #[test]
    fn scopes_compare_by_pointer_first_then_by_value() {
        let build = |name: String, version: &'static str, attrs: Vec<KeyValue>| {
            InstrumentationScope::builder(name)
                .with_version(version)
                .with_attributes(attrs)
                .build()
        };
        let fixed = InstrumentationScope::builder("fixed")
            .with_version("1")
            .build();
        assert!(same_scope(&fixed, &fixed.clone()));
        let a = build("lib".into(), "1", vec![]);
        let b = build("lib".into(), "1", vec![]);
        assert!(same_scope(&a, &b), "equal text in different allocations");
        assert!(!same_scope(&a, &build("lib".into(), "2", vec![])));
        assert!(!same_scope(&a, &build("other".into(), "1", vec![])));
        let with = build("lib".into(), "1", vec![KeyValue::new("k", "v")]);
        assert!(same_scope(&with, &with.clone()));
        assert!(!same_scope(&with, &a));
        assert!(!same_scope(
            &with,
            &build("lib".into(), "1", vec![KeyValue::new("k", "w")])
        ));
    }

    fn span(scope: &InstrumentationScope) -> SpanData {
        let t0 = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let mut events = SpanEvents::default();
        events.events.push(opentelemetry::trace::Event::new(
            "retry",
            t0 + Duration::from_millis(1),
            vec![KeyValue::new("attempt", 2)],
            1,
        ));
        events.dropped_count = 3;
        let mut links = SpanLinks::default();
        links.links.push(opentelemetry::trace::Link::new(
            SpanContext::new(
                TraceId::from(9u128),
                SpanId::from(8u64),
                TraceFlags::SAMPLED,
                true,
                TraceState::NONE,
            ),
            vec![KeyValue::new("why", "batch")],
            0,
        ));
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736u128),
                SpanId::from(0x00f067aa0ba902b7u64),
                TraceFlags::new(0x03),
                false,
                "k=v".parse().unwrap(),
            ),
            parent_span_id: SpanId::from(0x1234u64),
            parent_span_is_remote: true,
            span_kind: SpanKind::Server,
            name: "GET /orders/{id}".into(),
            start_time: t0,
            end_time: t0 + Duration::from_millis(5),
            attributes: vec![
                KeyValue::new("s", "text é"),
                KeyValue::new("b", true),
                KeyValue::new("i", -7),
                KeyValue::new("f", 1.5),
                KeyValue::new(
                    "a",
                    Value::Array(Array::String(vec!["x".into(), "y".into()])),
                ),
            ],
            dropped_attributes_count: 4,
            events,
            links,
            status: Status::error("boom"),
            instrumentation_scope: scope.clone(),
        }
    }

    #[test]
    fn decodes_as_the_otlp_protobuf_schema() {
        let scope = InstrumentationScope::builder("lib")
            .with_version("1.0")
            .build();
        let other = InstrumentationScope::builder("other").build();
        let resource = Resource::builder_empty().with_service_name("svc").build();
        let mut root = span(&other);
        root.parent_span_id = SpanId::INVALID;
        root.parent_span_is_remote = false;
        root.status = Status::Unset;
        let spans = vec![span(&scope), root, span(&scope)]
            .into_iter()
            .map(|span| Box::new(Exported::new(span)))
            .collect::<Vec<_>>();
        let mut enc = Encoder;
        let resource_bytes = enc.resource(&resource);
        let mut out = Vec::new();
        let start = enc.request(&mut out, 0, &resource_bytes, "", &spans);
        let out = &out[start..];
        let request = ExportTraceServiceRequest::decode(out).unwrap();

        let rs = &request.resource_spans[0];
        let attrs = &rs.resource.as_ref().unwrap().attributes;
        assert_eq!(attrs[0].key, "service.name");
        assert_eq!(rs.scope_spans.len(), 2, "grouped by scope");
        let ss = &rs.scope_spans[0];
        assert_eq!(ss.scope.as_ref().unwrap().name, "lib");
        assert_eq!(ss.scope.as_ref().unwrap().version, "1.0");
        assert_eq!(ss.spans.len(), 2);
        let s = &ss.spans[0];
        assert_eq!(hex(&s.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&s.span_id), "00f067aa0ba902b7");
        assert_eq!(hex(&s.parent_span_id), "0000000000001234");
        assert_eq!(s.trace_state, "k=v");
        assert_eq!(s.name, "GET /orders/{id}");
        assert_eq!(s.kind, 2);
        assert_eq!(s.start_time_unix_nano, 1_700_000_000_123_456_789);
        assert_eq!(s.end_time_unix_nano - s.start_time_unix_nano, 5_000_000);
        assert_eq!(s.flags, 0x03 | 0x100 | 0x200);
        assert_eq!(s.dropped_attributes_count, 4);
        let value = |k: &str| {
            s.attributes
                .iter()
                .find(|a| a.key == k)
                .unwrap()
                .value
                .clone()
                .unwrap()
                .value
                .unwrap()
        };
        assert_eq!(value("s"), Any::StringValue("text é".into()));
        assert_eq!(value("b"), Any::BoolValue(true));
        assert_eq!(value("i"), Any::IntValue(-7));
        assert_eq!(value("f"), Any::DoubleValue(1.5));
        let Any::ArrayValue(array) = value("a") else {
            panic!("array")
        };
        assert_eq!(array.values.len(), 2);
        assert_eq!(s.events[0].name, "retry");
        assert_eq!(
            s.events[0].time_unix_nano - s.start_time_unix_nano,
            1_000_000
        );
        assert_eq!(s.events[0].dropped_attributes_count, 1);
        assert_eq!(s.dropped_events_count, 3);
        assert_eq!(hex(&s.links[0].span_id), "0000000000000008");
        assert_eq!(s.links[0].attributes[0].key, "why");
        assert_eq!(s.links[0].flags, 0x01 | 0x100 | 0x200);
        let status = s.status.as_ref().unwrap();
        assert_eq!((status.code, status.message.as_str()), (2, "boom"));
        let r = &rs.scope_spans[1].spans[0];
        assert!(r.parent_span_id.is_empty(), "a root has no parent bytes");
        assert_eq!(
            (r.kind, r.start_time_unix_nano),
            (2, 1_700_000_000_123_456_789)
        );
        assert_eq!(r.end_time_unix_nano - r.start_time_unix_nano, 5_000_000);
        assert!(r.status.is_none());
        assert_eq!(r.flags, 0x03 | 0x100);
    }

    #[test]
    fn short_spans_and_room_for_a_frame() {
        let scope = InstrumentationScope::builder("lib").build();
        let mut tiny = span(&scope);
        tiny.attributes.clear();
        tiny.events = SpanEvents::default();
        tiny.links = SpanLinks::default();
        tiny.status = Status::Unset;
        tiny.name = "x".into();
        let spans = [tiny.clone(), span(&scope), tiny].map(|span| Box::new(Exported::new(span)));
        let mut enc = Encoder;
        let resource = enc.resource(&Resource::builder_empty().build());
        let mut out = Vec::new();
        let start = enc.request(&mut out, 5, &resource, "https://schema", &spans);
        assert!(start >= 5, "room for a gRPC frame header");
        let request = ExportTraceServiceRequest::decode(&out[start..]).unwrap();
        let rs = &request.resource_spans[0];
        assert_eq!(rs.schema_url, "https://schema");
        let names: Vec<&str> = rs.scope_spans[0]
            .spans
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["x", "GET /orders/{id}", "x"]);
        assert_eq!(hex(&rs.scope_spans[0].spans[2].span_id), "00f067aa0ba902b7");
    }

    #[test]
    fn long_messages_get_wide_lengths() {
        // Lengths of 1, 2 and 3 varint bytes: short attributes, a value of
        // 300 bytes, and a batch of 2,000 spans (well past 16 KiB).
        let scope = InstrumentationScope::builder("lib").build();
        let resource = Resource::builder_empty().with_service_name("svc").build();
        let long = "x".repeat(300);
        let spans: Vec<Box<Exported>> = (0..2000u64)
            .map(|i| {
                let mut s = span(&scope);
                s.span_context = SpanContext::new(
                    TraceId::from(u128::from(i) + 1),
                    SpanId::from(i + 1),
                    TraceFlags::SAMPLED,
                    false,
                    TraceState::NONE,
                );
                s.attributes.push(KeyValue::new("long", long.clone()));
                Box::new(Exported::new(s))
            })
            .collect();
        let mut enc = Encoder;
        let resource_bytes = enc.resource(&resource);
        let mut out = Vec::new();
        let start = enc.request(&mut out, 0, &resource_bytes, "", &spans);
        let out = &out[start..];
        assert!(out.len() > 1 << 20);
        let request = ExportTraceServiceRequest::decode(out).unwrap();
        let decoded = &request.resource_spans[0].scope_spans[0].spans;
        assert_eq!(decoded.len(), 2000);
        for (i, s) in decoded.iter().enumerate() {
            assert_eq!(s.span_id, (i as u64 + 1).to_be_bytes());
            assert!(s.trace_state.is_empty());
            let last = s.attributes.last().unwrap();
            assert_eq!(last.key, "long");
            assert_eq!(
                last.value.clone().unwrap().value,
                Some(Any::StringValue(long.clone()))
            );
        }
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
