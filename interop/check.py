#!/usr/bin/env python3
"""Smoke checks of one running peer against CONTRACT.md, with grpcio.

    interop/python/out/venv/bin/python interop/check.py --target 127.0.0.1:PORT [--peer NAME]

Needs interop/python/build (it provides grpcio, h2 and the generated modules
in interop/python/out). Each check calls the peer for real and asserts what the
contract says; a check a peer's stack cannot pass is listed in KNOWN with the
reason and reported as "known" rather than failed (a known check that passes
is reported too, so the list stays honest). Every call has a deadline.
Exit status: 0 when no check failed unexpectedly.
"""

import argparse
import json
import os
import socket
import struct
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "python", "out", "gen"))

try:
    import grpc

    import chat_pb2
    import chat_pb2_grpc
    import greeter_pb2 as g
    import greeter_pb2_grpc
    import observer_pb2 as o
    import observer_pb2_grpc
    import sensor_pb2 as s
    import sensor_pb2_grpc
except ImportError as err:  # pragma: no cover - setup error
    sys.exit(f"check.py: {err}; run interop/python/build and use its venv python")

# Every call's deadline unless a check needs its own.
DEADLINE_S = 10.0

# Checks a peer's stack cannot pass, with why (the peer's README says more).
KNOWN = {
    "python": {
        "observer_request_encoding": "grpcio consumes grpc-encoding; handlers never see it",
        "response_encoding_not_accepted": "C-core compresses with the asked encoding whatever the "
                                          "client's grpc-accept-encoding, which it hides from the handler",
        "observer_unary_half_close": "C-core runs a unary handler once the message is in and never "
                                     "tells it about END_STREAM: half_close_received is false",
        "unary_waits_for_end_stream": "grpcio (C-core) answers a unary call before the client's END_STREAM",
    },
    "go": {
        "observer_unary_half_close": "grpc-go runs a unary handler without looking for END_STREAM: "
                                     "half_close_received is false",
        "unary_waits_for_end_stream": "grpc-go answers a unary call before the client's END_STREAM",
        "response_encoding_on_the_wire": "grpc-go 1.33 has no per-call send compressor: it only mirrors "
                                         "the request's encoding (interop/go/README.md)",
    },
    "cpp": {
        "observer_unary_half_close": "C-core runs a unary handler once the message is in and never "
                                     "tells it about END_STREAM: half_close_received is false",
        "unary_waits_for_end_stream": "C-core answers a unary call before the client's END_STREAM",
        "observer_request_encoding": "C-core consumes grpc-encoding; handlers never see it",
        "response_encoding_not_accepted": "C-core compresses with the asked encoding whatever the "
                                          "client's grpc-accept-encoding",
    },
    "node": {
        "response_encoding_on_the_wire": "grpc-js never compresses responses",
    },
    "java": {
        "message_size_limit": "grpc-java 1.41 resets an oversize request's stream (RST_STREAM CANCEL, "
        "from deframeFailed) without sending RESOURCE_EXHAUSTED: the client sees CANCELLED",
    },
}


class CheckFailed(AssertionError):
    pass


def expect(condition, what):
    if not condition:
        raise CheckFailed(what)


def expect_eq(actual, wanted, what):
    if actual != wanted:
        raise CheckFailed(f"{what}: got {actual!r}, want {wanted!r}")


def expect_timeout(actual_ms, sent_ms, what):
    """timeout_ms as the peer saw it: grpcio's client rounds the grpc-timeout
    it sends up (e.g. 5000 ms may leave as 5010m) and a peer whose stack hides
    the header reads the time remaining, so allow a little above."""
    if not sent_ms <= actual_ms <= sent_ms * 1.02 + 20:
        raise CheckFailed(f"{what}: got {actual_ms}, want {sent_ms} (or a little above)")


def expect_deadline_outcome(outcome):
    """grpcio's client resets the stream at its own deadline, which it sent
    rounded up (see expect_timeout): the peer may see that reset a moment
    before its own deadline passes. Both endings are right; grpc-conform's raw
    HTTP/2 fixtures, which do not reset, tell them apart."""
    expect(outcome in (o.DEADLINE_EXCEEDED, o.CANCELLED),
           f"outcome {o.Outcome.Name(outcome)}, want DEADLINE_EXCEEDED (or CANCELLED by the client's reset)")


def expect_status(fn, code, what):
    """fn() must fail with `code`; returns the RpcError."""
    try:
        fn()
    except grpc.RpcError as err:
        expect_eq(err.code(), code, f"{what} status")
        return err
    raise CheckFailed(f"{what}: succeeded, want {code}")


class Peer:
    """Stubs on one channel, plus helpers for the Observer."""

    def __init__(self, target):
        self.target = target
        self.channel = grpc.insecure_channel(target)
        self.greeter = greeter_pb2_grpc.GreeterStub(self.channel)
        self.chat = chat_pb2_grpc.ChatServiceStub(self.channel)
        self.sensor = sensor_pb2_grpc.SensorServiceStub(self.channel)
        self.observer = observer_pb2_grpc.ObserverStub(self.channel)
        self.ids = 0

    def call_id(self, name):
        self.ids += 1
        return f"check-{name}-{os.getpid()}-{self.ids}"

    def record(self, call_id, wait_ms=3000):
        return self.observer.GetCall(
            o.CallQuery(call_id=call_id, wait_ms=wait_ms), timeout=DEADLINE_S
        )

    def wait_requests(self, call_id, count, within_s=5.0):
        """Polls the Observer until the call read `count` requests."""
        end = time.monotonic() + within_s
        while time.monotonic() < end:
            try:
                if self.record(call_id, wait_ms=0).requests_received >= count:
                    return
            except grpc.RpcError as err:
                if err.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            time.sleep(0.05)
        raise CheckFailed(f"server never read {count} requests of {call_id}")


def raw_call(target, path, message, headers, timeout_s=DEADLINE_S):
    """One gRPC call over a bare HTTP/2 connection (the h2 library), for what
    grpcio hides: the response's headers, its messages' compressed flags and
    its trailers. Returns (headers, [(flag, payload)], trailers)."""
    import h2.config
    import h2.connection
    import h2.events

    host, port = target.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout_s)
    try:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(":method", "POST"), (":scheme", "http"), (":path", path),
                                   (":authority", target), ("content-type", "application/grpc"),
                                   ("te", "trailers")] + list(headers))
        body = message.SerializeToString()
        conn.send_data(stream, b"\x00" + struct.pack(">I", len(body)) + body, end_stream=True)
        sock.sendall(conn.data_to_send())
        response, data, trailers = {}, b"", {}
        end = time.monotonic() + timeout_s
        done = False
        while not done:
            sock.settimeout(max(0.01, end - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                raise CheckFailed(f"{path}: connection closed before the call ended")
            for event in conn.receive_data(chunk):
                if isinstance(event, h2.events.ResponseReceived):
                    response = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    data += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.TrailersReceived):
                    trailers = dict(event.headers)
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                    done = True
            sock.sendall(conn.data_to_send())
    finally:
        sock.close()
    messages = []
    while len(data) >= 5:
        flag, size = data[0], struct.unpack(">I", data[1:5])[0]
        messages.append((flag, data[5:5 + size]))
        data = data[5 + size:]
    return response, messages, trailers


def gated(messages, gate):
    """Yields messages, then blocks until gate is set: a client stream that
    stays open (bounded by the gate's own timeout)."""
    for message in messages:
        yield message
    gate.wait(DEADLINE_S)


CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


@check
def say_hello(p):
    reply = p.greeter.SayHello(g.HelloRequest(name="peer"), timeout=DEADLINE_S)
    expect_eq(reply.message, "Hello peer", "SayHello")


@check
def server_stream_default(p):
    got = [r.data for r in p.greeter.ServerStream(g.StreamRequestData(data="x"), timeout=DEADLINE_S)]
    expect_eq(got, ["x-1", "x-2", "x-3"], "ServerStream")


@check
def client_stream(p):
    reqs = [g.StreamRequestData(data=d) for d in ("a", "b", "c")]
    expect_eq(p.greeter.ClientStream(iter(reqs), timeout=DEADLINE_S).data, "a,b,c", "ClientStream")
    expect_eq(p.greeter.ClientStream(iter([]), timeout=DEADLINE_S).data, "", "empty ClientStream")


@check
def all_stream(p):
    reqs = [g.StreamRequestData(data=d) for d in ("a", "b")]
    got = [r.data for r in p.greeter.AllStream(iter(reqs), timeout=DEADLINE_S)]
    expect_eq(got, ["echo: a", "echo: b"], "AllStream")


@check
def chat_stream(p):
    before = int(time.time())
    reqs = [chat_pb2.Message(user="u", content=c) for c in ("hi", "there")]
    got = list(p.chat.ChatStream(iter(reqs), timeout=DEADLINE_S))
    expect_eq([(m.user, m.content) for m in got], [("server", "echo: hi"), ("server", "echo: there")], "ChatStream")
    for m in got:
        expect(before - 2 <= m.timestamp <= int(time.time()) + 2, f"timestamp {m.timestamp} is not now in seconds")


@check
def chat_stream_full_duplex(p):
    """Each echo arrives while the client stream is still open."""
    gate = threading.Event()
    responses = p.chat.ChatStream(gated([chat_pb2.Message(content="one")], gate), timeout=DEADLINE_S)
    try:
        first = next(responses)
        expect_eq(first.content, "echo: one", "first echo before half-close")
    finally:
        gate.set()
    expect_eq(list(responses), [], "nothing after half-close")


@check
def record_and_latest(p):
    device = f"dev-{os.getpid()}"
    readings = [
        s.SensorData(timestamp=10, temperature=20.5, device_id=device),
        s.SensorData(timestamp=30, temperature=19.0, device_id=device + "-b"),
        s.SensorData(timestamp=20, temperature=22.25, device_id=device),
    ]
    summary = p.sensor.Record(iter(readings), timeout=DEADLINE_S)
    expect_eq(summary.count, 3, "count")
    expect_eq((summary.min, summary.max), (19.0, 22.25), "min, max")
    expect(abs(summary.mean - (20.5 + 19.0 + 22.25) / 3) < 1e-9, f"mean {summary.mean}")
    expect_eq((summary.first_timestamp, summary.last_timestamp), (10, 20), "first, last")
    expect_eq(summary.out_of_order, 1, "out_of_order")
    expect_eq(list(summary.device_ids), [device, device + "-b"], "device_ids")
    latest = p.sensor.Latest(s.DeviceQuery(device_id=device), timeout=DEADLINE_S)
    expect_eq((latest.timestamp, latest.temperature), (20, 22.25), "Latest")
    empty = p.sensor.Record(iter([]), timeout=DEADLINE_S)
    expect_eq(empty.count, 0, "empty Record count")


@check
def record_rejects_empty_device(p):
    gate = threading.Event()
    # The stream stays open: the peer must end the call without a half-close.
    reqs = gated([s.SensorData(timestamp=1, temperature=1.0, device_id="")], gate)
    try:
        expect_status(lambda: p.sensor.Record(reqs, timeout=DEADLINE_S), grpc.StatusCode.INVALID_ARGUMENT, "Record")
    finally:
        gate.set()


@check
def latest_errors(p):
    expect_status(lambda: p.sensor.Latest(s.DeviceQuery(device_id=""), timeout=DEADLINE_S),
                  grpc.StatusCode.INVALID_ARGUMENT, "Latest empty")
    expect_status(lambda: p.sensor.Latest(s.DeviceQuery(device_id="never-recorded"), timeout=DEADLINE_S),
                  grpc.StatusCode.NOT_FOUND, "Latest unknown")


@check
def watch(p):
    got = list(p.sensor.Watch(s.WatchRequest(device_id="w"), timeout=DEADLINE_S))
    expect_eq([(r.timestamp, r.temperature, r.device_id) for r in got],
              [(1000, 20.0, "w"), (1001, 20.25, "w"), (1002, 20.5, "w")], "Watch default")
    expect_eq(len(list(p.sensor.Watch(s.WatchRequest(device_id="w", limit=5), timeout=DEADLINE_S))), 5, "Watch limit")
    expect_status(lambda: list(p.sensor.Watch(s.WatchRequest(device_id=""), timeout=DEADLINE_S)),
                  grpc.StatusCode.INVALID_ARGUMENT, "Watch empty")


@check
def response_count(p):
    md = (("x-conform-response-count", "5"),)
    got = list(p.greeter.ServerStream(g.StreamRequestData(data="n"), metadata=md, timeout=DEADLINE_S))
    expect_eq(len(got), 5, "ServerStream responses")
    got = list(p.sensor.Watch(s.WatchRequest(device_id="w", limit=2), metadata=md, timeout=DEADLINE_S))
    expect_eq(len(got), 5, "Watch responses (header overrides limit)")


@check
def response_interval(p):
    md = (("x-conform-response-interval-ms", "200"),)
    start = time.monotonic()
    got = list(p.greeter.ServerStream(g.StreamRequestData(data="t"), metadata=md, timeout=DEADLINE_S))
    elapsed = time.monotonic() - start
    expect_eq(len(got), 3, "responses")
    expect(elapsed >= 0.38, f"3 responses 200 ms apart took {elapsed:.3f} s")


@check
def fail_after_stream(p):
    md = (("x-conform-fail-after", "1"), ("x-conform-fail-code", "9"),
          ("x-conform-fail-message", "stopped at 100% now"))
    got = []

    def run():
        for r in p.greeter.ServerStream(g.StreamRequestData(data="f"), metadata=md, timeout=DEADLINE_S):
            got.append(r.data)

    err = expect_status(run, grpc.StatusCode.FAILED_PRECONDITION, "ServerStream fail-after 1")
    expect_eq(got, ["f-1"], "responses before the failure")
    expect_eq(err.details(), "stopped at 100% now", "decoded grpc-message")


@check
def fail_after_zero_unary(p):
    md = (("x-conform-fail-after", "0"), ("x-grpc-test-echo-initial", "on-error"),
          ("x-grpc-test-echo-trailing-bin", b"\x07"))
    err = expect_status(lambda: p.greeter.SayHello(g.HelloRequest(name="z"), metadata=md, timeout=DEADLINE_S),
                        grpc.StatusCode.UNKNOWN, "SayHello fail-after 0 (default code 2)")
    # A trailers-only answer carries the echoed header in its one block, which
    # grpcio shows as trailing metadata.
    seen = [tuple(m) for m in (err.initial_metadata() or ())] + [tuple(m) for m in (err.trailing_metadata() or ())]
    expect(("x-grpc-test-echo-initial", "on-error") in seen, f"echoed header on an error: {seen}")
    expect(("x-grpc-test-echo-trailing-bin", b"\x07") in seen, f"echoed trailer on an error: {seen}")


@check
def echo_metadata(p):
    md = (("x-grpc-test-echo-initial", "hello-initial"), ("x-grpc-test-echo-trailing-bin", b"\x00\x01\xfe"))
    _, call = p.greeter.SayHello.with_call(g.HelloRequest(name="e"), metadata=md, timeout=DEADLINE_S)
    expect(("x-grpc-test-echo-initial", "hello-initial") in [tuple(m) for m in call.initial_metadata()],
           f"initial metadata {call.initial_metadata()}")
    expect(("x-grpc-test-echo-trailing-bin", b"\x00\x01\xfe") in [tuple(m) for m in call.trailing_metadata()],
           f"trailing metadata {call.trailing_metadata()}")


@check
def response_encoding_on_the_wire(p):
    """Asked for gzip by a client that accepts it: the response is compressed.
    The message is large enough that compressing it pays (C-core sends a
    message uncompressed when gzip would not make it smaller)."""
    headers, messages, trailers = raw_call(
        p.target, "/Greeter/SayHello", g.HelloRequest(name="a" * 1000),
        [("grpc-accept-encoding", "identity,gzip"), ("x-conform-response-encoding", "gzip")])
    expect_eq(trailers.get("grpc-status", headers.get("grpc-status")), "0", "grpc-status")
    expect_eq(headers.get("grpc-encoding"), "gzip", "grpc-encoding")
    expect_eq([flag for flag, _ in messages], [1], "compressed flags")


@check
def response_encoding_not_accepted(p):
    """Asked for gzip by a client that accepts only identity: nothing is
    compressed (doc/compression.md)."""
    headers, messages, trailers = raw_call(
        p.target, "/Greeter/SayHello", g.HelloRequest(name="a" * 1000),
        [("grpc-accept-encoding", "identity"), ("x-conform-response-encoding", "gzip")])
    expect_eq(trailers.get("grpc-status", headers.get("grpc-status")), "0", "grpc-status")
    expect_eq([flag for flag, _ in messages], [0], "compressed flags")


@check
def response_encoding_gzip(p):
    """The peer must still answer correctly when asked to gzip (whether it
    does is visible only on the wire, which grpc-conform checks)."""
    md = (("x-conform-response-encoding", "gzip"),)
    reply = p.greeter.SayHello(g.HelloRequest(name="gz"), metadata=md, timeout=DEADLINE_S,
                               compression=grpc.Compression.Gzip)
    expect_eq(reply.message, "Hello gz", "SayHello with gzip both ways")


@check
def close_after_requests(p):
    cid = p.call_id("close")
    md = (("x-conform-call-id", cid), ("x-conform-close-after-requests", "2"))
    gate = threading.Event()
    reqs = gated([g.StreamRequestData(data=d) for d in ("a", "b", "c")], gate)
    try:
        reply = p.greeter.ClientStream(reqs, metadata=md, timeout=DEADLINE_S)
    finally:
        gate.set()
    expect_eq(reply.data, "a,b", "reply about the first 2")
    rec = p.record(cid)
    expect_eq((rec.outcome, rec.status_code), (o.COMPLETED, 0), "outcome")
    expect_eq(rec.requests_received, 2, "requests_received")
    expect_eq(rec.half_close_received, False, "half_close_received")


@check
def observer_completed(p):
    cid = p.call_id("hello")
    md = (("x-conform-call-id", cid), ("x-extra", "yes"))
    p.greeter.SayHello(g.HelloRequest(name="o"), metadata=md, timeout=5.0)
    rec = p.record(cid)
    expect_eq(rec.call_id, cid, "call_id")
    expect_eq(rec.method, "/Greeter/SayHello", "method")
    expect_eq((rec.outcome, rec.status_code), (o.COMPLETED, 0), "outcome")
    expect_eq((rec.requests_received, rec.responses_sent), (1, 1), "counts")
    expect_timeout(rec.timeout_ms, 5000, "timeout_ms")
    expect_eq(rec.metadata.get("x-extra"), "yes", "metadata x-extra")
    expect_eq(rec.metadata.get("x-conform-call-id"), cid, "metadata x-conform-call-id")


@check
def observer_unary_half_close(p):
    cid = p.call_id("unary-half-close")
    p.greeter.SayHello(g.HelloRequest(name="h"), metadata=(("x-conform-call-id", cid),), timeout=DEADLINE_S)
    expect_eq(p.record(cid).half_close_received, True, "half_close_received of a unary call")


@check
def unary_waits_for_end_stream(p):
    """A unary request whose END_STREAM is withheld gets no answer until it
    comes (BEHAVIOURS.md: every server waits). The client below streams one
    message to SayHello and keeps its side open for a second."""
    say_hello = p.channel.stream_unary("/Greeter/SayHello",
                                       request_serializer=g.HelloRequest.SerializeToString,
                                       response_deserializer=g.HelloReply.FromString)
    gate = threading.Event()
    future = say_hello.future(gated([g.HelloRequest(name="w")], gate), timeout=DEADLINE_S)
    try:
        time.sleep(1.0)
        early = future.done()
    finally:
        gate.set()
    expect_eq(future.result(timeout=DEADLINE_S).message, "Hello w", "reply after END_STREAM")
    expect(not early, "answered before the client's END_STREAM")


@check
def observer_request_encoding(p):
    cid = p.call_id("enc")
    p.greeter.SayHello(g.HelloRequest(name="o"), metadata=(("x-conform-call-id", cid),),
                       timeout=DEADLINE_S, compression=grpc.Compression.Gzip)
    expect_eq(p.record(cid).request_encoding, "gzip", "request_encoding")


@check
def observer_status_and_stream(p):
    cid = p.call_id("fail")
    md = (("x-conform-call-id", cid), ("x-conform-fail-after", "2"), ("x-conform-fail-code", "14"))
    expect_status(lambda: list(p.greeter.ServerStream(g.StreamRequestData(data="s"), metadata=md, timeout=DEADLINE_S)),
                  grpc.StatusCode.UNAVAILABLE, "ServerStream fail-after 2")
    rec = p.record(cid)
    expect_eq((rec.outcome, rec.status_code, rec.responses_sent), (o.COMPLETED, 14, 2), "record")
    expect_eq(rec.timeout_ms > 0, True, "timeout_ms set")


@check
def observer_cancel_is_not_half_close(p):
    cid = p.call_id("cancel")
    gate = threading.Event()
    reqs = gated([g.StreamRequestData(data=d) for d in ("a", "b")], gate)
    future = p.greeter.ClientStream.future(reqs, metadata=(("x-conform-call-id", cid),), timeout=DEADLINE_S)
    try:
        p.wait_requests(cid, 2)
        future.cancel()
    finally:
        gate.set()
    rec = p.record(cid)
    expect_eq(rec.outcome, o.CANCELLED, "outcome")
    expect_eq((rec.requests_received, rec.half_close_received), (2, False), "requests, half-close")


@check
def observer_deadline(p):
    cid = p.call_id("deadline")
    md = (("x-conform-call-id", cid), ("x-conform-delay-ms", "1500"))
    expect_status(lambda: p.greeter.SayHello(g.HelloRequest(name="d"), metadata=md, timeout=0.3),
                  grpc.StatusCode.DEADLINE_EXCEEDED, "SayHello past its deadline")
    rec = p.record(cid)
    expect_deadline_outcome(rec.outcome)
    expect_timeout(rec.timeout_ms, 300, "timeout_ms")
    expect_eq(rec.responses_sent, 0, "responses_sent")


@check
def observer_unknown_id(p):
    expect_status(lambda: p.observer.GetCall(o.CallQuery(call_id="never-used", wait_ms=10), timeout=DEADLINE_S),
                  grpc.StatusCode.NOT_FOUND, "GetCall unknown id")


@check
def observer_running(p):
    cid = p.call_id("running")
    gate = threading.Event()
    reqs = gated([], gate)
    future = p.greeter.ClientStream.future(reqs, metadata=(("x-conform-call-id", cid),), timeout=DEADLINE_S)
    try:
        end = time.monotonic() + 5
        rec = None
        while time.monotonic() < end:
            try:
                rec = p.record(cid, wait_ms=100)
                break
            except grpc.RpcError as err:
                if err.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                time.sleep(0.05)
        expect(rec is not None, "call never showed up")
        expect_eq(rec.outcome, o.RUNNING, "outcome while open")
    finally:
        gate.set()
    expect_eq(future.result(timeout=DEADLINE_S).data, "", "reply after half-close")
    rec = p.record(cid)
    expect_eq((rec.outcome, rec.half_close_received), (o.COMPLETED, True), "after half-close")


@check
def delay_before_response(p):
    md = (("x-conform-delay-ms", "400"),)
    start = time.monotonic()
    p.greeter.SayHello(g.HelloRequest(name="slow"), metadata=md, timeout=DEADLINE_S)
    elapsed = time.monotonic() - start
    expect(elapsed >= 0.39, f"SayHello with a 400 ms delay took {elapsed:.3f} s")


@check
def bidi_fail_after(p):
    md = (("x-conform-fail-after", "1"), ("x-conform-fail-code", "8"), ("x-conform-fail-message", "enough"))
    got = []
    gate = threading.Event()
    reqs = gated([g.StreamRequestData(data=d) for d in ("a", "b", "c")], gate)

    def run():
        for r in p.greeter.AllStream(reqs, metadata=md, timeout=DEADLINE_S):
            got.append(r.data)

    try:
        err = expect_status(run, grpc.StatusCode.RESOURCE_EXHAUSTED, "AllStream fail-after 1")
    finally:
        gate.set()
    expect_eq(got, ["echo: a"], "responses before the failure")
    expect_eq(err.details(), "enough", "message")


@check
def bidi_close_after_requests(p):
    cid = p.call_id("bidi-close")
    md = (("x-conform-call-id", cid), ("x-conform-close-after-requests", "2"))
    gate = threading.Event()
    reqs = gated([chat_pb2.Message(content=c) for c in ("1", "2", "3")], gate)
    try:
        got = [m.content for m in p.chat.ChatStream(reqs, metadata=md, timeout=DEADLINE_S)]
    finally:
        gate.set()
    expect_eq(got, ["echo: 1", "echo: 2"], "echoes before the server closed")
    rec = p.record(cid)
    expect_eq((rec.outcome, rec.status_code, rec.requests_received, rec.responses_sent, rec.half_close_received),
              (o.COMPLETED, 0, 2, 2, False), "record")


@check
def record_fail_after_zero_stores_nothing(p):
    device = f"nostore-{os.getpid()}"
    md = (("x-conform-fail-after", "0"), ("x-conform-fail-code", "10"))
    expect_status(lambda: p.sensor.Record(iter([s.SensorData(timestamp=1, temperature=1.0, device_id=device)]),
                                          metadata=md, timeout=DEADLINE_S),
                  grpc.StatusCode.ABORTED, "Record fail-after 0")
    expect_status(lambda: p.sensor.Latest(s.DeviceQuery(device_id=device), timeout=DEADLINE_S),
                  grpc.StatusCode.NOT_FOUND, "Latest after a failed Record")


@check
def watch_count_and_failure(p):
    md = (("x-conform-response-count", "4"), ("x-conform-fail-after", "4"), ("x-conform-fail-code", "13"))
    got = []

    def run():
        for r in p.sensor.Watch(s.WatchRequest(device_id="wf", limit=1), metadata=md, timeout=DEADLINE_S):
            got.append(r.timestamp)

    expect_status(run, grpc.StatusCode.INTERNAL, "Watch failing after its last response")
    expect_eq(got, [1000, 1001, 1002, 1003], "all 4 readings first")


@check
def observer_bidi_completed(p):
    cid = p.call_id("chat")
    reqs = [chat_pb2.Message(content=c) for c in ("x", "y", "z")]
    list(p.chat.ChatStream(iter(reqs), metadata=(("x-conform-call-id", cid),), timeout=DEADLINE_S))
    rec = p.record(cid)
    expect_eq(rec.method, "/ChatService/ChatStream", "method")
    expect_eq((rec.outcome, rec.status_code, rec.requests_received, rec.responses_sent, rec.half_close_received),
              (o.COMPLETED, 0, 3, 3, True), "record")


@check
def observer_binary_metadata(p):
    cid = p.call_id("bin")
    md = (("x-conform-call-id", cid), ("x-blob-bin", b"\x01\x02\x03\x04"))
    p.greeter.SayHello(g.HelloRequest(name="b"), metadata=md, timeout=DEADLINE_S)
    expect_eq(p.record(cid).metadata.get("x-blob-bin"), "AQIDBA", "-bin value as unpadded base64")


@check
def observer_cancel_mid_server_stream(p):
    cid = p.call_id("cancel-stream")
    md = (("x-conform-call-id", cid), ("x-conform-response-count", "50"),
          ("x-conform-response-interval-ms", "100"))
    responses = p.greeter.ServerStream(g.StreamRequestData(data="c"), metadata=md, timeout=DEADLINE_S)
    expect_eq(next(responses).data, "c-1", "first response")
    responses.cancel()
    rec = p.record(cid)
    expect_eq(rec.outcome, o.CANCELLED, "outcome")
    expect(rec.responses_sent < 50, f"responses_sent {rec.responses_sent}: the stream went on after the cancel")


@check
def deadline_after_headers(p):
    """The deadline still holds once responses are flowing."""
    cid = p.call_id("stream-deadline")
    md = (("x-conform-call-id", cid), ("x-conform-response-count", "20"),
          ("x-conform-response-interval-ms", "100"))
    got = []

    def run():
        for r in p.greeter.ServerStream(g.StreamRequestData(data="d"), metadata=md, timeout=0.5):
            got.append(r.data)

    expect_status(run, grpc.StatusCode.DEADLINE_EXCEEDED, "ServerStream past its deadline")
    expect(1 <= len(got) < 20, f"{len(got)} responses before the deadline")
    rec = p.record(cid)
    expect_deadline_outcome(rec.outcome)
    expect(rec.responses_sent < 20, f"responses_sent {rec.responses_sent}: the stream outlived its deadline")


@check
def message_size_limit(p):
    """4 MiB is the default limit of every stack here: one byte more fails."""
    big = "x" * (4 * 1024 * 1024)
    expect_status(lambda: p.greeter.SayHello(g.HelloRequest(name=big), timeout=DEADLINE_S),
                  grpc.StatusCode.RESOURCE_EXHAUSTED, "SayHello above 4 MiB")


@check
def malformed_control_header(p):
    """A malformed control header is INVALID_ARGUMENT naming the header, as the
    reference answers, not a silently ignored header."""
    for name, value in (("x-conform-response-count", "three"), ("x-conform-delay-ms", "600001")):
        err = expect_status(lambda: list(p.greeter.ServerStream(g.StreamRequestData(data="m"),
                                                                metadata=((name, value),), timeout=DEADLINE_S)),
                            grpc.StatusCode.INVALID_ARGUMENT, f"{name}: {value}")
        expect(name in (err.details() or ""), f"message {err.details()!r} does not name {name}")


@check
def fail_after_zero_reads_nothing(p):
    """fail-after 0 ends the call at the handler's start, before any request
    is read (the reference's rule)."""
    cid = p.call_id("fail-zero")
    md = (("x-conform-call-id", cid), ("x-conform-fail-after", "0"), ("x-conform-fail-code", "7"))
    gate = threading.Event()
    reqs = gated([g.StreamRequestData(data=d) for d in ("a", "b")], gate)
    try:
        expect_status(lambda: p.greeter.ClientStream(reqs, metadata=md, timeout=DEADLINE_S),
                      grpc.StatusCode.PERMISSION_DENIED, "ClientStream fail-after 0")
    finally:
        gate.set()
    rec = p.record(cid)
    expect_eq((rec.outcome, rec.status_code, rec.requests_received, rec.responses_sent),
              (o.COMPLETED, 7, 0, 0), "record")


@check
def fail_message_percent_decoded(p):
    md = (("x-conform-fail-after", "0"), ("x-conform-fail-message", "caf%C3%A9%0Aline 2"))
    err = expect_status(lambda: p.greeter.SayHello(g.HelloRequest(name="p"), metadata=md, timeout=DEADLINE_S),
                        grpc.StatusCode.UNKNOWN, "SayHello fail-after 0")
    expect_eq(err.details(), "café\nline 2", "message")


@check
def unknown_method(p):
    call = p.channel.unary_unary("/Greeter/NoSuchMethod")
    expect_status(lambda: call(b"", timeout=DEADLINE_S), grpc.StatusCode.UNIMPLEMENTED, "unknown method")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port of the running peer")
    parser.add_argument("--peer", default="", help="peer name, for its KNOWN limitations")
    parser.add_argument("--only", default="", help="run only checks whose name contains this")
    parser.add_argument("--json", default="", metavar="PATH",
                        help="also write the results as {\"fixtures\": [{\"name\", \"outcome\"}]}")
    args = parser.parse_args()
    peer = Peer(args.target)
    known = KNOWN.get(args.peer, {})
    passed = failed = known_failed = 0
    results = []
    for fn in CHECKS:
        name = fn.__name__
        if args.only and args.only not in name:
            continue
        try:
            fn(peer)
        except (CheckFailed, grpc.RpcError, Exception) as err:  # noqa: BLE001 - report any failure
            detail = str(err) if isinstance(err, CheckFailed) else traceback.format_exception_only(err)[-1].strip()
            if name in known:
                known_failed += 1
                results.append({"name": name, "outcome": "known", "detail": f"{detail} ({known[name]})"})
                print(f"known {name}: {detail} ({known[name]})")
            else:
                failed += 1
                results.append({"name": name, "outcome": "fail", "detail": detail})
                print(f"FAIL  {name}: {detail}")
            continue
        passed += 1
        results.append({"name": name, "outcome": "pass"})
        note = " (listed as known: remove it from KNOWN)" if name in known else ""
        print(f"ok    {name}{note}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"peer": args.peer, "fixtures": results}, out, indent=1)
    print(f"{args.peer or args.target}: {known_failed} known")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
