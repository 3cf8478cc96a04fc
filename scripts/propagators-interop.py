#!/usr/bin/env python3
"""The B3, Jaeger, X-Ray and OT propagators of opentelemetry-python, as an
independent implementation for the interop test
(tests/tests/propagators_interop.rs):

    propagators-interop.py inject    # contexts Python writes, as JSON
    propagators-interop.py extract   # reads JSON cases on stdin, prints what Python reads

Needs opentelemetry-api and the propagator packages from PyPI (scripts/test.sh
installs them).
"""
import json
import sys

from opentelemetry import trace
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat
from opentelemetry.propagators.jaeger import JaegerPropagator
from opentelemetry.propagators.ot_trace import OTTracePropagator
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags


class Headers(Getter):
    """HTTP headers: names compared without case."""

    def get(self, carrier, key):
        value = {k.lower(): v for k, v in carrier.items()}.get(key.lower())
        return None if value is None else [value]

    def keys(self, carrier):
        return list(carrier.keys())

PROPAGATORS = {
    "b3": B3SingleFormat(),
    "b3multi": B3MultiFormat(),
    "jaeger": JaegerPropagator(),
    "xray": AwsXRayPropagator(),
    "ottrace": OTTracePropagator(),
}

CONTEXTS = [
    (0x5759E988BD862E3FE1BE46A994272793, 0x53995C3F42CD8AD8, True),
    (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, False),
]


def inject():
    cases = []
    for name, propagator in PROPAGATORS.items():
        for trace_id, span_id, sampled in CONTEXTS:
            flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
            sc = SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags)
            carrier = {}
            propagator.inject(carrier, context=trace.set_span_in_context(NonRecordingSpan(sc)))
            cases.append({
                "format": name,
                "trace_id": f"{trace_id:032x}",
                "span_id": f"{span_id:016x}",
                "sampled": sampled,
                "headers": carrier,
            })
    json.dump(cases, sys.stdout)


def extract():
    out = []
    for case in json.load(sys.stdin):
        cx = PROPAGATORS[case["format"]].extract(case["headers"], getter=Headers())
        sc = trace.get_current_span(cx).get_span_context()
        out.append({
            "format": case["format"],
            "valid": sc.is_valid,
            "trace_id": f"{sc.trace_id:032x}",
            "span_id": f"{sc.span_id:016x}",
            "sampled": sc.trace_flags.sampled,
        })
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    {"inject": inject, "extract": extract}[sys.argv[1]]()
