//! Trace Context and Baggage as one propagator (the default
//! `OTEL_PROPAGATORS`, `tracecontext,baggage`), and the shortcut an HTTP
//! server takes when it is the global one: the header values it already
//! found go straight to the parsers, with no carrier, no `dyn` calls and no
//! list of values per header.

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};

use crate::{BaggagePropagator, TraceContextPropagator, baggage, trace_context};

/// W3C Trace Context followed by W3C Baggage (or Trace Context alone): what
/// [`TextMapCompositePropagator`](opentelemetry::propagation::TextMapCompositePropagator)
/// of [`TraceContextPropagator`] and [`BaggagePropagator`] does, as one
/// propagator that [`W3cPropagator::global`] recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct W3cPropagator {
    baggage: bool,
}

impl Default for W3cPropagator {
    fn default() -> Self {
        Self::new()
    }
}

/// The header names, in statics of their own: the address of the first name
/// tells a `W3cPropagator` behind a `dyn TextMapPropagator` (see
/// [`W3cPropagator::of`]).
fn fields(baggage: bool) -> &'static [String] {
    use std::sync::OnceLock;
    static WITH_BAGGAGE: OnceLock<[String; 3]> = OnceLock::new();
    static WITHOUT: OnceLock<[String; 2]> = OnceLock::new();
    if baggage {
        WITH_BAGGAGE.get_or_init(|| {
            [
                "traceparent".to_owned(),
                "tracestate".to_owned(),
                "baggage".to_owned(),
            ]
        })
    } else {
        WITHOUT.get_or_init(|| ["traceparent".to_owned(), "tracestate".to_owned()])
    }
}

impl W3cPropagator {
    /// Trace Context and Baggage.
    pub fn new() -> Self {
        Self { baggage: true }
    }

    /// Trace Context alone (`OTEL_PROPAGATORS=tracecontext`).
    pub fn trace_context_only() -> Self {
        Self { baggage: false }
    }

    /// Whether it reads and writes `baggage` too.
    pub fn has_baggage(&self) -> bool {
        self.baggage
    }

    /// The `W3cPropagator` `propagator` is, if it is one (told by the
    /// identity of its field names, which only this type returns).
    pub fn of(propagator: &dyn TextMapPropagator) -> Option<Self> {
        let first = propagator.fields().next()?.as_ptr();
        [true, false]
            .into_iter()
            .find(|&baggage| std::ptr::eq(first, fields(baggage)[0].as_ptr()))
            .map(|baggage| Self { baggage })
    }

    /// The global propagator, if it is a `W3cPropagator`.
    pub fn global() -> Option<Self> {
        opentelemetry::global::get_text_map_propagator(|p| Self::of(p))
    }

    /// What [`extract`](TextMapPropagator::extract) returns for a carrier
    /// holding these values (each header at most once), in parts: the
    /// caller's span context, if valid, and the context holding everything
    /// else that was extracted (the baggage, and what must travel beside
    /// the span context). `parent.context.with_remote_span_context(sc)` is
    /// the extracted context; a server may put a child of the span context
    /// there instead, without building the context twice.
    // Inlined (with the parser's two steps below it) into a server's
    // request path: its result is then built in place rather than moved
    // out of two calls, about 40 instructions a request.
    #[inline]
    pub fn extract_parts(&self, headers: &W3cHeaders<'_>) -> W3cParent {
        let root = Context::new();
        let (span_context, context) = match headers.traceparent {
            Some(traceparent) => trace_context::extract_parts(
                &root,
                traceparent,
                headers.tracestate.as_ref().map(std::slice::from_ref),
            ),
            None => (None, root),
        };
        let context = match (self.baggage, headers.baggage) {
            (true, Some(value)) => baggage::extract_values(&context, std::slice::from_ref(&value)),
            _ => context,
        };
        W3cParent {
            span_context,
            context,
        }
    }
}

/// The value of each header the W3C propagators read, for a request that
/// has each at most once (a request with a header twice goes through
/// [`TextMapPropagator::extract`], which sees every value).
#[derive(Clone, Copy, Debug, Default)]
pub struct W3cHeaders<'a> {
    /// `traceparent`, as bytes (a value that is not ASCII is invalid
    /// whatever its encoding).
    pub traceparent: Option<&'a [u8]>,
    /// `tracestate`.
    pub tracestate: Option<&'a str>,
    /// `baggage`.
    pub baggage: Option<&'a str>,
}

/// What [`W3cPropagator::extract_parts`] found.
#[derive(Debug)]
pub struct W3cParent {
    /// The caller's span context, when `traceparent` was valid.
    pub span_context: Option<SpanContext>,
    /// The rest of the extracted context, without a span.
    pub context: Context,
}

impl W3cParent {
    /// The extracted context, as [`TextMapPropagator::extract`] returns it.
    pub fn into_context(self) -> Context {
        match self.span_context {
            Some(sc) => self.context.with_remote_span_context(sc),
            None => self.context,
        }
    }
}

impl TextMapPropagator for W3cPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        TraceContextPropagator::new().inject_context(cx, injector);
        if self.baggage {
            BaggagePropagator::new().inject_context(cx, injector);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let cx = TraceContextPropagator::new().extract_with_context(cx, extractor);
        if self.baggage {
            BaggagePropagator::new().extract_with_context(&cx, extractor)
        } else {
            cx
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(fields(self.baggage))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::propagation::TextMapCompositePropagator;

    use super::*;

    fn composite(baggage: bool) -> TextMapCompositePropagator {
        let mut list: Vec<Box<dyn TextMapPropagator + Send + Sync>> =
            vec![Box::new(TraceContextPropagator::new())];
        if baggage {
            list.push(Box::new(BaggagePropagator::new()));
        }
        TextMapCompositePropagator::new(list)
    }

    /// What travels on from a context: the headers the composite writes.
    fn sent(cx: &Context) -> Vec<(String, String)> {
        let mut out: HashMap<String, String> = HashMap::new();
        composite(true).inject_context(cx, &mut out);
        // Baggage members come in no particular order.
        let mut out: Vec<_> = out
            .into_iter()
            .map(|(k, v)| {
                let mut members: Vec<&str> = v.split(',').collect();
                members.sort_unstable();
                (k, members.join(","))
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn it_is_recognised_behind_dyn_and_nothing_else_is() {
        for p in [W3cPropagator::new(), W3cPropagator::trace_context_only()] {
            assert_eq!(W3cPropagator::of(&p), Some(p));
        }
        assert_eq!(W3cPropagator::of(&composite(true)), None);
        assert_eq!(W3cPropagator::of(&TraceContextPropagator::new()), None);
        assert_eq!(W3cPropagator::of(&BaggagePropagator::new()), None);
        let sorted = |p: &dyn TextMapPropagator| {
            let mut names: Vec<String> = p.fields().map(str::to_owned).collect();
            names.sort();
            names
        };
        assert_eq!(sorted(&W3cPropagator::new()), sorted(&composite(true)));
    }

    /// The parts, put together, are the context the composite extracts from
    /// the same headers: same span context, same values carried beside it
    /// (the random flag, a trace state the API cannot hold), same baggage.
    #[test]
    fn parts_make_the_context_the_composite_extracts() {
        let traceparents = [
            None,
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02"),
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            Some("zz"),
        ];
        let states = [
            None,
            Some("vendor=value,other=x"),
            Some("1tenant@sys@tem=v,a=b"),
            Some("bad key=v"),
        ];
        let baggages = [None, Some("user=alice,tier=gold;p=1"), Some("=")];
        for baggage in [true, false] {
            let w3c = if baggage {
                W3cPropagator::new()
            } else {
                W3cPropagator::trace_context_only()
            };
            for tp in traceparents {
                for ts in states {
                    for bg in baggages {
                        let mut carrier: HashMap<String, String> = HashMap::new();
                        for (k, v) in [("traceparent", tp), ("tracestate", ts), ("baggage", bg)] {
                            if let Some(v) = v {
                                carrier.insert(k.to_owned(), v.to_owned());
                            }
                        }
                        let expected = composite(baggage).extract(&carrier);
                        let headers = W3cHeaders {
                            traceparent: tp.map(str::as_bytes),
                            tracestate: ts,
                            baggage: bg,
                        };
                        let got = w3c.extract_parts(&headers).into_context();
                        let case = format!("{tp:?} {ts:?} {bg:?} baggage={baggage}");
                        assert_eq!(
                            got.span().span_context(),
                            expected.span().span_context(),
                            "{case}"
                        );
                        assert_eq!(got.baggage().len(), expected.baggage().len(), "{case}");
                        assert_eq!(sent(&got), sent(&expected), "{case}");
                        assert_eq!(
                            w3c.extract(&carrier).span().span_context(),
                            expected.span().span_context(),
                            "{case}"
                        );
                        assert_eq!(sent(&w3c.extract(&carrier)), sent(&expected), "{case}");
                    }
                }
            }
        }
    }

    /// Text that is often almost a `traceparent`, a `tracestate` or a
    /// `baggage` value, and sometimes anything.
    fn traceparent() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            4 => "00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]",
            2 => "[ \t]{0,1}0[0-2f]-[0-9a-fA-F]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-[a-z0-9]{0,3})?[ \t]{0,1}",
            1 => "00-0{32}-[0-9a-f]{16}-01",
            1 => "\\PC{0,60}",
        ]
    }

    fn tracestate() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            4 => "([a-z0-9][a-z0-9_*/@-]{0,6}=[!-+--<>-~]{1,6},){0,4}",
            1 => "\\PC{0,40}",
        ]
    }

    fn baggage() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            4 => "([a-z]{1,4}=[a-z0-9%]{0,6}(;p=1)?[ ,]{0,2}){0,4}",
            1 => "\\PC{0,40}",
        ]
    }

    proptest::proptest! {
        /// Whatever the headers hold, the parts are what the composite
        /// extracts: the same span context and the same headers sent on.
        #[test]
        fn parts_agree_with_the_composite_on_any_text(
            tp in proptest::option::of(traceparent()),
            ts in proptest::option::of(tracestate()),
            bg in proptest::option::of(baggage()),
        ) {
            let mut carrier: HashMap<String, String> = HashMap::new();
            for (k, v) in [("traceparent", &tp), ("tracestate", &ts), ("baggage", &bg)] {
                if let Some(v) = v {
                    carrier.insert(k.to_owned(), v.clone());
                }
            }
            let expected = composite(true).extract(&carrier);
            let got = W3cPropagator::new()
                .extract_parts(&W3cHeaders {
                    traceparent: tp.as_deref().map(str::as_bytes),
                    tracestate: ts.as_deref(),
                    baggage: bg.as_deref(),
                })
                .into_context();
            let (got_sc, expected_sc) = (
                got.span().span_context().clone(),
                expected.span().span_context().clone(),
            );
            proptest::prop_assert_eq!(got_sc, expected_sc);
            proptest::prop_assert_eq!(sent(&got), sent(&expected));
        }
    }
}
