"""One call as the contract scripts it, on grpclib: the control headers of
docs/contract.md section 3 applied around the handler's reads and writes, the
CallRecord kept up to date as it goes (section 4), and the registry behind
Observer.GetCall."""

import asyncio
import base64
import binascii
import collections
import json
import math

from grpclib import Status
from grpclib.encoding.base import StatusDetailsCodecBase
from grpclib.exceptions import StreamTerminatedError

import observer_pb2

CALL_ID_HEADER = "x-conform-call-id"
# Calls kept at most, oldest dropped first.
MAX_KEPT_CALLS = 10_000
# Longest pause a header may ask for, as the reference bounds it.
MAX_PAUSE_MS = 600_000
# The largest x-conform-response-size (16 MiB).
MAX_RESPONSE_SIZE = 16 * 1024 * 1024
_U32_MAX = 2**32 - 1
_HEX = frozenset(b"0123456789abcdefABCDEF")


class Fail(Exception):
    """Ends the call with a status of the handler's own (and, for a scripted
    failure, the call's google.rpc.Status details)."""

    def __init__(self, code, message="", details=None):
        super().__init__(f"status {code}: {message}")
        self.code = code
        self.message = message
        self.details = details


class RawStatusDetails(StatusDetailsCodecBase):
    """grpclib's hook for grpc-status-details-bin: the bytes the call asked
    for (x-conform-fail-details-bin), sent as they are."""

    def encode(self, status, message, details):
        return details

    def decode(self, status, message, data):
        return data


def quoted(value):
    """A header value quoted as the reference shows it in its messages."""
    return json.dumps(value, ensure_ascii=False)


def control_error(name, value, reason):
    return Fail(Status.INVALID_ARGUMENT.value, f"control header {name}: {reason} (got {quoted(value)})")


def text(value):
    """A metadata value as text: grpclib hands -bin values decoded, so they are
    put back into unpadded base64 (as the other Python peers show them)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii").rstrip("=")
    return value


def header_map(metadata):
    """Request metadata as a dict; repeated keys joined with ','."""
    headers = {}
    for key, value in (metadata or {}).items():
        value = text(value)
        headers[key] = headers[key] + "," + value if key in headers else value
    return headers


def number(headers, name):
    """A control header holding a decimal u32 (spaces around tolerated); None
    when absent; malformed is INVALID_ARGUMENT naming the header."""
    value = headers.get(name)
    if value is None:
        return None
    t = value.strip()
    if not t or not t.isascii() or not t.isdigit() or int(t) > _U32_MAX:
        raise control_error(name, value, "expected a decimal integer from 0 to 4294967295")
    return int(t)


def pause_ms(headers, name):
    ms = number(headers, name) or 0
    if ms > MAX_PAUSE_MS:
        raise control_error(name, headers[name], "pauses above 600000 ms are refused")
    return ms


def percent_decode(value):
    """Lenient percent-decoding, as the reference does: a % not followed by two
    hex digits stays as it is."""
    raw = value.encode("utf-8", "surrogateescape")
    out, i = bytearray(), 0
    while i < len(raw):
        if raw[i] == 0x25 and i + 2 < len(raw) and raw[i + 1] in _HEX and raw[i + 2] in _HEX:
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return bytes(out).decode("utf-8")


def padded(value, size):
    """value padded at its end with "x" to size UTF-8 bytes (longer is left as
    it is); size None leaves it alone."""
    if size is None:
        return value
    missing = size - len(value.encode("utf-8"))
    return value + "x" * missing if missing > 0 else value


def timeout_ms(stream):
    """The call's deadline in ms, 0 when none: grpclib keeps only the
    deadline, so this is the time remaining at handler start, rounded to the
    nearest 10 ms (the microseconds since the header was read would otherwise
    show as e.g. 4999 for 5000m)."""
    if stream.deadline is None:
        return 0
    remaining = stream.deadline.time_remaining()
    if remaining <= 0:
        return 0
    if remaining < 0.005:
        return int(math.ceil(remaining * 1000))
    return int(round(remaining * 100.0)) * 10


class CallState:
    """One call's record; the first ending wins."""

    def __init__(self, record):
        self.record = record
        self.done = asyncio.Event()

    def finish(self, outcome, status_code=0):
        if self.done.is_set():
            return
        self.record.outcome = outcome
        self.record.status_code = status_code
        self.done.set()


class CallRegistry:
    """Calls that carried x-conform-call-id, by id."""

    def __init__(self):
        self._calls = collections.OrderedDict()

    def open(self, method, stream, headers):
        record = observer_pb2.CallRecord(
            call_id=headers.get(CALL_ID_HEADER, ""), method=method, outcome=observer_pb2.RUNNING,
            # grpclib takes grpc-* headers out of the metadata it hands over.
            request_encoding=headers.get("grpc-encoding", ""), timeout_ms=timeout_ms(stream))
        for key, value in headers.items():
            if key.startswith("x-"):
                record.metadata[key] = value
        state = CallState(record)
        if record.call_id:
            self._calls.pop(record.call_id, None)
            self._calls[record.call_id] = state
            while len(self._calls) > MAX_KEPT_CALLS:
                self._calls.popitem(last=False)
        return state

    async def get(self, call_id, wait_ms):
        state = self._calls.get(call_id)
        if state is None:
            return None
        if not state.done.is_set() and wait_ms > 0:
            try:
                await asyncio.wait_for(state.done.wait(), wait_ms / 1000.0)
            except asyncio.TimeoutError:
                pass  # Timing out is an answer too: the record says RUNNING.
        answer = observer_pb2.CallRecord()
        answer.CopyFrom(state.record)
        return answer


def fail_details(stream):
    """x-conform-fail-details-bin as bytes (grpclib decodes -bin values)."""
    value = (stream.metadata or {}).get("x-conform-fail-details-bin")
    if value is None or isinstance(value, bytes):
        return value
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise control_error("x-conform-fail-details-bin", value, "expected base64 of a google.rpc.Status") from None


class Call:
    """A call in progress: its stream, its record and its script."""

    def __init__(self, registry, method, stream, unary_response):
        self.stream = stream
        self.unary_response = unary_response
        self.headers = header_map(stream.metadata)
        self.state = registry.open(method, stream, self.headers)
        self.metadata_sent = False
        self.trailers = [(k, v) for k, v in (stream.metadata or {}).items()
                         if k == "x-grpc-test-echo-trailing-bin"]
        self.response_count = self.fail_after = self.close_after = self.response_size = None
        self.interval_ms = self.delay_ms = 0
        self.scripted = Fail(Status.UNKNOWN.value)

    def echo_initial(self):
        """Every x-grpc-test-echo-initial value, in order, each as its own
        header (not the comma-joined value the record shows)."""
        return [(k, v) for k, v in (self.stream.metadata or {}).items()
                if k == "x-grpc-test-echo-initial"]

    async def send(self, message):
        """One response; the echoed header goes with the first (a call that
        ends before any response carries it in its trailers-only answer, as
        the reference does)."""
        if not self.metadata_sent:
            await self.stream.send_initial_metadata(metadata=self.echo_initial())
            self.metadata_sent = True
        await self.stream.send_message(message)
        self.state.record.responses_sent += 1

    async def end(self, status=Status.OK, message=None, details=None):
        """The trailers: status, the echoed trailer, and the echoed header
        when no response headers went out (trailers-only)."""
        metadata = list(self.trailers) if self.metadata_sent else self.echo_initial() + list(self.trailers)
        await self.stream.send_trailing_metadata(status=status, status_message=message,
                                                 status_details=details, metadata=metadata)

    async def begin(self):
        """The control headers, parsed. grpclib has no compression:
        x-conform-response-encoding cannot be honoured (README)."""
        h = self.headers
        self.response_count = number(h, "x-conform-response-count")
        self.interval_ms = pause_ms(h, "x-conform-response-interval-ms")
        self.delay_ms = pause_ms(h, "x-conform-delay-ms")
        self.response_size = number(h, "x-conform-response-size")
        if self.response_size is not None and self.response_size > MAX_RESPONSE_SIZE:
            raise control_error("x-conform-response-size", h["x-conform-response-size"],
                                f"sizes above {MAX_RESPONSE_SIZE} bytes are refused")
        self.fail_after = number(h, "x-conform-fail-after")
        if self.fail_after is not None:
            code = number(h, "x-conform-fail-code")
            if code is not None and code > 16:
                raise control_error("x-conform-fail-code", h["x-conform-fail-code"],
                                    "expected a gRPC status code from 0 to 16")
            message = h.get("x-conform-fail-message", "")
            try:
                decoded = percent_decode(message)
            except UnicodeDecodeError:
                raise control_error("x-conform-fail-message", message,
                                    "percent-decodes to invalid UTF-8") from None
            self.scripted = Fail(Status.UNKNOWN.value if code is None else code, decoded, fail_details(self.stream))
        self.close_after = number(h, "x-conform-close-after-requests")

    async def fail_at_start(self):
        if self.fail_after == 0:
            await self.pause(self.delay_ms)
            raise self.scripted

    async def pause(self, ms):
        if ms:
            await asyncio.sleep(ms / 1000.0)

    def reads_exhausted(self):
        return self.close_after is not None and self.state.record.requests_received >= self.close_after

    async def read(self):
        """The next request, or None at the client's half-close."""
        message = await self.stream.recv_message()
        if message is None:
            self.state.record.half_close_received = True
            return None
        self.state.record.requests_received += 1
        return message

    async def read_all(self):
        messages = []
        while not self.reads_exhausted():
            message = await self.read()
            if message is None:
                break
            messages.append(message)
        return messages

    async def before_response(self):
        await self.pause(self.delay_ms if self.state.record.responses_sent == 0 else self.interval_ms)

    async def write(self, message):
        """One streamed response after its pause; fail-after N ends the call
        right after the N-th."""
        await self.before_response()
        await self.send(message)
        if self.fail_after and self.state.record.responses_sent == self.fail_after:
            raise self.scripted

    async def end_with(self, fail):
        """Ends the call with fail's status, the echoed trailer and the
        scripted details."""
        if fail.code == 0 and not self.state.record.responses_sent and self.unary_response:
            # grpclib refuses to end a unary-response call OK without its
            # message (ProtocolError): the scripted OK goes out as UNKNOWN.
            fail = Fail(Status.UNKNOWN.value, fail.message, fail.details)
        self.state.finish(observer_pb2.COMPLETED, fail.code)
        await self.end(Status(fail.code), fail.message or None, fail.details)


def ended_by_client(call, err):
    """Records how a call that did not end by itself ended: the deadline
    (grpclib cancels the handler's task when it passes) or the client's reset
    (StreamTerminatedError, or the same cancellation), told apart by the time
    left."""
    deadline = call.stream.deadline
    if isinstance(err, asyncio.TimeoutError) or (deadline is not None and deadline.time_remaining() <= 0):
        call.state.finish(observer_pb2.DEADLINE_EXCEEDED, Status.DEADLINE_EXCEEDED.value)
    else:
        call.state.finish(observer_pb2.CANCELLED, Status.CANCELLED.value)


CLIENT_ENDINGS = (asyncio.TimeoutError, asyncio.CancelledError, StreamTerminatedError)
