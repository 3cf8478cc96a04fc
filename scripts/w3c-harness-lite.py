#!/usr/bin/env python3
"""A small stand-in for the W3C trace-context harness (test/test.py of
w3c/trace-context): drives the `w3c-test-service` example the way the real
harness does and checks what its outgoing call carried.

    scripts/w3c-harness-lite.py path/to/w3c-test-service

It starts the service on a free port, runs a callback server on another,
POSTs cases to /test, and checks the traceparent/tracestate the callback
received. Exits non-zero on the first failure.
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TP = f"00-{TRACE}-{PARENT}-01"

received = []


class Callback(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        self.rfile.read(length)
        received.append(
            (self.headers.get_all("traceparent") or [], self.headers.get_all("tracestate") or [])
        )
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, callback_port, headers):
    body = json.dumps([{"url": f"http://127.0.0.1:{callback_port}/callback", "arguments": []}]).encode()
    return raw_post(port, body, headers)


def raw_post(port, body, headers):
    # Written by hand: repeated header names must reach the service as sent.
    lines = ["POST /test HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        response = b""
        while chunk := s.recv(65536):
            response += chunk
    return int(response.split(b" ", 2)[1])


def check(name, port, callback_port, headers, expect):
    received.clear()
    status = request(port, callback_port, headers)
    assert status == 200, f"{name}: status {status}"
    assert len(received) == 1, f"{name}: callback called {len(received)} times"
    traceparents, tracestates = received[0]
    assert len(traceparents) == 1, f"{name}: {traceparents}"
    version, trace_id, parent_id, flags = traceparents[0].split("-")
    assert version == "00" and len(trace_id) == 32 and len(parent_id) == 16 and len(flags) == 2, name
    if expect.get("continue"):
        assert trace_id == TRACE, f"{name}: trace not continued: {traceparents}"
        assert parent_id != PARENT, f"{name}: the service's own span id is sent"
    else:
        assert trace_id != TRACE, f"{name}: should have restarted: {traceparents}"
    if "tracestate" in expect:
        got = ",".join(tracestates)
        assert got == expect["tracestate"], f"{name}: tracestate {got!r} != {expect['tracestate']!r}"
    if "flags" in expect:
        assert flags == expect["flags"], f"{name}: flags {flags}"


def free_port_service(binary, env):
    port = free_port()
    service = subprocess.Popen([binary, f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                               env={**os.environ, **env})
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return port, service


def default_sampler_cases():
    members33 = ",".join(f"k{i}=v" for i in range(33))
    members32 = ",".join(f"k{i}=v" for i in range(32))
    key256 = "k" * 256
    vendor256 = "t" * 241 + "@" + "s" * 14
    late_at = "t" * 242 + "@v"
    return [
        ("continues a valid traceparent", [("traceparent", TP)], {"continue": True}),
        ("passes tracestate on", [("traceparent", TP), ("tracestate", "foo=1,bar=2")],
         {"continue": True, "tracestate": "foo=1,bar=2"}),
        ("joins repeated tracestate", [("traceparent", TP), ("tracestate", "foo=1"), ("tracestate", "bar=2")],
         {"continue": True, "tracestate": "foo=1,bar=2"}),
        ("keeps 32 members", [("traceparent", TP), ("tracestate", members32)],
         {"continue": True, "tracestate": members32}),
        ("drops 33 members", [("traceparent", TP), ("tracestate", members33)],
         {"continue": True, "tracestate": ""}),
        # Duplicated keys: passed on, the first member of each key kept.
        ("keeps one of duplicated keys", [("traceparent", TP), ("tracestate", "foo=1,foo=1")],
         {"continue": True, "tracestate": "foo=1"}),
        ("keeps the first of duplicated keys", [("traceparent", TP), ("tracestate", "foo=1,foo=2")],
         {"continue": True, "tracestate": "foo=1"}),
        ("keeps one of duplicated headers", [("traceparent", TP), ("tracestate", "foo=1"), ("tracestate", "foo=1")],
         {"continue": True, "tracestate": "foo=1"}),
        ("keeps the first of duplicated headers", [("traceparent", TP), ("tracestate", "foo=1"), ("tracestate", "foo=2")],
         {"continue": True, "tracestate": "foo=1"}),
        # The current key grammar: ( lcalpha / DIGIT ) 0*255 ( keychar ), `@` a keychar.
        ("accepts a key ending in @", [("traceparent", TP), ("tracestate", "foo@=1,bar=2")],
         {"continue": True, "tracestate": "foo@=1,bar=2"}),
        ("accepts @@ in a key", [("traceparent", TP), ("tracestate", "foo@@bar=1,bar=2")],
         {"continue": True, "tracestate": "foo@@bar=1,bar=2"}),
        ("accepts 241 + @ + 14 characters", [("traceparent", TP), ("tracestate", f"{vendor256}=1")],
         {"continue": True, "tracestate": f"{vendor256}=1"}),
        ("accepts @ late in a long key", [("traceparent", TP), ("tracestate", f"{late_at}=1")],
         {"continue": True, "tracestate": f"{late_at}=1"}),
        ("accepts a key starting with a digit", [("traceparent", TP), ("tracestate", "1foo=1")],
         {"continue": True, "tracestate": "1foo=1"}),
        ("accepts a 256-character key", [("traceparent", TP), ("tracestate", f"{key256}=1")],
         {"continue": True, "tracestate": f"{key256}=1"}),
        ("drops the header for a 257-character key", [("traceparent", TP), ("tracestate", f"{key256}k=1,bar=2")],
         {"continue": True, "tracestate": ""}),
        ("drops the header for a key starting with @", [("traceparent", TP), ("tracestate", "@foo=1,bar=2")],
         {"continue": True, "tracestate": ""}),
        ("restarts on duplicated traceparent", [("traceparent", TP), ("traceparent", TP)], {}),
        ("restarts on uppercase", [("traceparent", TP.upper())], {}),
        ("restarts on zero trace id", [("traceparent", f"00-{'0'*32}-{PARENT}-01")], {}),
        ("restarts on version ff", [("traceparent", f"ff-{TRACE}-{PARENT}-01")], {}),
        ("restarts on version 00 with extra", [("traceparent", TP + "-extra")], {}),
        ("accepts a future version", [("traceparent", f"cc-{TRACE}-{PARENT}-01-future")], {"continue": True}),
        ("passes the random flag", [("traceparent", f"00-{TRACE}-{PARENT}-03")], {"continue": True, "flags": "03"}),
        # Sampled out by the caller: the server and client spans are dropped,
        # the random flag is passed on as received.
        ("passes the random flag sampled out", [("traceparent", f"00-{TRACE}-{PARENT}-02"), ("tracestate", "foo@@bar=1")],
         {"continue": True, "flags": "02", "tracestate": "foo@@bar=1"}),
        ("passes no random flag it did not get", [("traceparent", f"00-{TRACE}-{PARENT}-00")],
         {"continue": True, "flags": "00"}),
        ("restarts on an uppercase trace id with the random flag", [("traceparent", f"00-{TRACE.upper()}-{PARENT}-02")],
         {}),
        ("starts a trace without traceparent", [], {}),
    ]


def dropping_sampler_cases():
    """Cases for a sampler that drops every span whatever the caller says."""
    return [
        ("passes the random flag of a sampled caller", [("traceparent", f"00-{TRACE}-{PARENT}-03")],
         {"continue": True, "flags": "02"}),
        ("passes the random flag of an unsampled caller", [("traceparent", f"00-{TRACE}-{PARENT}-02")],
         {"continue": True, "flags": "02"}),
        ("passes no random flag it did not get", [("traceparent", f"00-{TRACE}-{PARENT}-01")],
         {"continue": True, "flags": "00"}),
        ("passes tracestate on", [("traceparent", f"00-{TRACE}-{PARENT}-03"), ("tracestate", "foo@=1,bar=2")],
         {"continue": True, "flags": "02", "tracestate": "foo@=1,bar=2"}),
    ]


def main():
    binary = sys.argv[1]
    callback_port = free_port()
    server = HTTPServer(("127.0.0.1", callback_port), Callback)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    runs = [
        ("default sampler", {}, default_sampler_cases()),
        ("always_off", {"OTEL_TRACES_SAMPLER": "always_off"}, dropping_sampler_cases()),
        ("traceidratio 0", {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
         dropping_sampler_cases()),
    ]
    passed = 0
    try:
        for label, env, cases in runs:
            port, service = free_port_service(binary, env)
            try:
                for name, headers, expect in cases:
                    check(f"{label}: {name}", port, callback_port, headers, expect)
                    passed += 1
            finally:
                service.terminate()
                service.wait(timeout=10)
        print(f"w3c harness-lite: {passed} passed, 0 failed")
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
