//! Property tests of the message carriers: SQS attribute maps, the X-Ray
//! header, AMQP header tables. No input panics; only a well-formed
//! `traceparent` of a string type yields a parent.
#![cfg(all(feature = "sqs", feature = "amqp"))]
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use observability_core::opentelemetry::propagation::TextMapPropagator;
use observability_core::opentelemetry::trace::TraceContextExt;
use observability_core::propagation::TraceContextPropagator;
use observability_messaging::amqp::AmqpHeadersExtractor;
use observability_messaging::sqs;
use proptest::prelude::*;

fn install() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
}

fn attribute(data_type: &str, value: &str, binary: bool) -> Option<MessageAttributeValue> {
    let builder = MessageAttributeValue::builder().data_type(data_type);
    let builder = if binary {
        builder.binary_value(Blob::new(value.as_bytes().to_vec()))
    } else {
        builder.string_value(value)
    };
    builder.build().ok()
}

const VALID: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn sqs_attribute_maps_never_panic(
        entries in proptest::collection::vec((".{0,20}", "(String|Binary|Number|String\\.[a-z]{1,5}|.{0,8})", ".{0,80}", any::<bool>()), 0..12),
        xray in ".{0,120}",
    ) {
        install();
        let mut attributes = HashMap::new();
        for (name, data_type, value, binary) in &entries {
            if let Some(a) = attribute(data_type, value, *binary) {
                attributes.insert(name.clone(), a);
            }
        }
        let message = Message::builder()
            .set_message_attributes(Some(attributes))
            .attributes(MessageSystemAttributeName::AwsTraceHeader, xray)
            .build();
        let _ = sqs::extract(&message);
    }

    #[test]
    fn only_string_typed_traceparents_are_read(data_type in "(Binary|Number|Number\\.int|Custom)", binary in any::<bool>()) {
        install();
        let message = Message::builder()
            .message_attributes("traceparent", attribute(&data_type, VALID, binary).unwrap())
            .build();
        prop_assert!(!sqs::extract(&message).span().span_context().is_valid());
    }

    #[test]
    fn valid_x_ray_headers_are_continued(epoch in "[0-9a-f]{8}", random in "[0-9a-f]{24}", parent in "[0-9a-f]{16}", sampled in any::<bool>()) {
        prop_assume!(epoch != "00000000" || random != "0".repeat(24));
        prop_assume!(parent != "0".repeat(16));
        install();
        let header = format!("Root=1-{epoch}-{random};Parent={parent};Sampled={}", u8::from(sampled));
        let message = Message::builder().attributes(MessageSystemAttributeName::AwsTraceHeader, header).build();
        let cx = sqs::extract(&message);
        let span = cx.span();
        let sc = span.span_context();
        prop_assert_eq!(sc.trace_id().to_string(), format!("{epoch}{random}"));
        prop_assert_eq!(sc.span_id().to_string(), parent);
        prop_assert_eq!(sc.is_sampled(), sampled);
    }

    #[test]
    fn amqp_header_tables_never_panic(values in proptest::collection::vec((".{0,12}", 0u8..6, ".{0,80}", any::<i64>()), 0..10)) {
        let mut table = FieldTable::default();
        for (name, kind, text, number) in &values {
            let value = match kind {
                0 => AMQPValue::LongString(LongString::from(text.clone())),
                1 => AMQPValue::ByteArray(text.as_bytes().to_vec().into()),
                2 => AMQPValue::LongLongInt(*number),
                3 => AMQPValue::Boolean(*number % 2 == 0),
                4 => AMQPValue::FieldTable(FieldTable::default()),
                _ => AMQPValue::Void,
            };
            table.insert(ShortString::from(name.as_str()), value);
        }
        let _ = TraceContextPropagator::new().extract(&AmqpHeadersExtractor(Some(&table)));
    }

    #[test]
    fn a_traceparent_of_a_non_string_amqp_type_is_ignored(number in any::<i64>()) {
        let mut table = FieldTable::default();
        table.insert(ShortString::from("traceparent"), AMQPValue::LongLongInt(number));
        let cx = TraceContextPropagator::new().extract(&AmqpHeadersExtractor(Some(&table)));
        prop_assert!(!cx.span().span_context().is_valid());
        let mut table = FieldTable::default();
        table.insert(ShortString::from("traceparent"), AMQPValue::LongString(LongString::from(VALID)));
        let cx = TraceContextPropagator::new().extract(&AmqpHeadersExtractor(Some(&table)));
        prop_assert!(cx.span().span_context().is_valid());
    }
}
