"""One call as the contract scripts it, on grpcio's synchronous server: the
control headers of docs/contract.md section 3 applied around the handler's
reads and writes, and the CallRecord kept up to date as it goes (section 4).

The header parsing, the call registry's record shape and the lenient
percent-decoding are the Python peer's (interop/python); what differs is the
server API: handlers run on a thread pool, requests come from a blocking
iterator, responses are yielded, and the end of a call (cancel, deadline) is
reported by a callback on grpcio's own thread."""

import base64
import binascii
import threading

import grpc

import observer_pb2
from calls import header_map, timeout_ms
from control import Fail, _control_error, _number, _pause, _percent_decode

# Numeric status codes the grpcio API can send (it takes enum members only).
STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}

COMPRESSION_BY_NAME = {
    "gzip": grpc.Compression.Gzip,
    "deflate": grpc.Compression.Deflate,
    "identity": grpc.Compression.NoCompression,
}

# How long a read that ended waits for a reset to show as cancellation:
# grpcio ends a pending read the same way at a half-close and at a reset, and
# reports the reset on another thread right after.
CANCEL_GRACE_S = 0.005
# The largest x-conform-response-size (contract extension: 16 MiB).
MAX_RESPONSE_SIZE = 16 * 1024 * 1024
UNKNOWN = grpc.StatusCode.UNKNOWN.value[0]


def padded(text, size):
    """text padded at its end with "x" to size UTF-8 bytes (a longer text is
    left as it is); size None leaves it alone."""
    if size is None:
        return text
    missing = size - len(text.encode("utf-8"))
    return text + "x" * missing if missing > 0 else text


class CallState:
    """One call's record; the first ending wins (a handler that ends after a
    reset stays CANCELLED)."""

    def __init__(self, record):
        self.record = record
        self.lock = threading.Lock()
        self.done = threading.Event()

    def request_read(self):
        with self.lock:
            self.record.requests_received += 1

    def half_close(self):
        with self.lock:
            self.record.half_close_received = True

    def response_sent(self):
        with self.lock:
            self.record.responses_sent += 1

    def finish(self, outcome, status_code=0):
        with self.lock:
            if self.done.is_set():
                return
            self.record.outcome = outcome
            self.record.status_code = status_code
            self.done.set()


class Call:
    """A call in progress: its context, its record and its script."""

    def __init__(self, registry, method, context):
        headers = header_map(context)
        self.context = context
        self.headers = headers
        self.state = registry.open(method, context, headers, headers.get("grpc-encoding", ""))
        # Set by grpcio's termination callback: the call is over for the
        # client (cancel or deadline), so pauses end at once.
        self.ended = threading.Event()
        context.add_callback(self._on_termination)
        self.response_count = self.fail_after = self.close_after = self.response_size = None
        self.interval_ms = self.delay_ms = 0
        self.fail_code = UNKNOWN
        self.fail_message = ""
        self.fail_details = None
        self.compression = None
        self.metadata_sent = False
        self.trailers = tuple(
            (k, v) for k, v in context.invocation_metadata() or () if k == "x-grpc-test-echo-trailing-bin"
        )

    def _on_termination(self):
        """grpcio calls this when the RPC ends, however it ends; after a
        handler's own ending the record is already final."""
        remaining = self.context.time_remaining()
        if remaining is not None and remaining <= 0:
            self.state.finish(observer_pb2.DEADLINE_EXCEEDED, grpc.StatusCode.DEADLINE_EXCEEDED.value[0])
        else:
            self.state.finish(observer_pb2.CANCELLED, grpc.StatusCode.CANCELLED.value[0])
        self.ended.set()

    def begin(self):
        """Echo headers and the response encoding, then the control headers."""
        if self.trailers:
            self.context.set_trailing_metadata(self.trailers)
        self.compression = COMPRESSION_BY_NAME.get(self.headers.get("x-conform-response-encoding", ""))
        if self.compression is not None:
            # C-core compresses even when the client's grpc-accept-encoding
            # does not list the encoding and hides that header (README).
            self.context.set_compression(self.compression)
        # Every value, in order, each a header of its own (self.headers has
        # them comma-joined, as the record shows them).
        echo = tuple(
            (k, v) for k, v in self.context.invocation_metadata() or () if k == "x-grpc-test-echo-initial"
        )
        if echo:
            self.context.send_initial_metadata(echo)
            self.metadata_sent = True
        self._parse_control()

    def _parse_control(self):
        h = self.headers
        self.response_count = _number(h, "x-conform-response-count")
        self.interval_ms = _pause(h, "x-conform-response-interval-ms")
        self.delay_ms = _pause(h, "x-conform-delay-ms")
        self.response_size = _number(h, "x-conform-response-size")
        if self.response_size is not None and self.response_size > MAX_RESPONSE_SIZE:
            raise _control_error("x-conform-response-size", h["x-conform-response-size"],
                                 f"sizes above {MAX_RESPONSE_SIZE} bytes are refused")
        self.fail_after = _number(h, "x-conform-fail-after")
        if self.fail_after is not None:
            code = _number(h, "x-conform-fail-code")
            if code is not None and code > 16:
                raise _control_error("x-conform-fail-code", h["x-conform-fail-code"],
                                     "expected a gRPC status code from 0 to 16")
            self.fail_code = UNKNOWN if code is None else code
            message = h.get("x-conform-fail-message", "")
            try:
                self.fail_message = _percent_decode(message)
            except UnicodeDecodeError:
                raise _control_error("x-conform-fail-message", message,
                                     "percent-decodes to invalid UTF-8") from None
            self.fail_details = self._fail_details()
        self.close_after = _number(h, "x-conform-close-after-requests")

    def _fail_details(self):
        """x-conform-fail-details-bin as bytes. grpcio hands the handler -bin
        values already decoded; a stack build that passes the text through is
        decoded here, padded or not."""
        for key, value in self.context.invocation_metadata() or ():
            if key != "x-conform-fail-details-bin":
                continue
            if isinstance(value, bytes):
                return value
            try:
                return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
            except (binascii.Error, ValueError):
                raise _control_error(key, value, "expected base64 of a google.rpc.Status") from None
        return None

    def scripted_failure(self):
        """The status fail-after asks for, with its details trailer."""
        fail = Fail(self.fail_code, self.fail_message)
        fail.details = self.fail_details
        return fail

    def pause(self, ms):
        """Sleeps ms, or less when the call ends for the client meanwhile."""
        if ms:
            self.ended.wait(ms / 1000.0)

    def fail_at_start(self):
        """fail-after 0: the scripted status after delay-ms, before any
        request is read."""
        if self.fail_after == 0:
            self.pause(self.delay_ms)
            raise self.scripted_failure()

    def reads_exhausted(self):
        return self.close_after is not None and self.state.record.requests_received >= self.close_after

    def read(self, requests):
        """The next request, or None at the client's half-close (or its end)."""
        try:
            message = next(requests)
        except StopIteration:
            # A reset may end the read as a half-close would; the termination
            # callback follows within well under a millisecond.
            if not self.ended.wait(CANCEL_GRACE_S):
                self.state.half_close()
            return None
        except grpc.RpcError:
            # grpcio raises this only for a call the client (or C-core, e.g.
            # for a request it cannot decompress) cancelled; its termination
            # callback may come only once the handler has returned, so the
            # ending is recorded here (the first ending wins).
            self._on_termination()
            return None
        self.state.request_read()
        return message

    def read_all(self, requests):
        messages = []
        while not self.reads_exhausted():
            message = self.read(requests)
            if message is None:
                break
            messages.append(message)
        return messages

    def live(self):
        return not self.ended.is_set() and self.context.is_active()

    def before_response(self):
        """delay-ms before the first response, response-interval-ms before
        each later one; False when the call ended for the client meanwhile."""
        self.pause(self.delay_ms if self.state.record.responses_sent == 0 else self.interval_ms)
        return self.live()

    def streamed(self):
        """Counts a response about to be yielded to grpcio."""
        self.state.response_sent()

    def after_streamed(self):
        """fail-after N ends the call right after the N-th response."""
        if self.fail_after and self.state.record.responses_sent == self.fail_after:
            raise self.scripted_failure()

    def before_unary_send(self):
        """grpcio compresses a unary response only when the handler sent its
        initial metadata itself."""
        if self.compression is not None and not self.metadata_sent:
            self.context.send_initial_metadata(())
            self.metadata_sent = True

    def end_with(self, fail):
        """Ends the call with fail's status, the echoed trailer and, when the
        call asked, the google.rpc.Status details trailer."""
        trailers = self.trailers
        details = getattr(fail, "details", None)
        if details is not None:
            trailers = trailers + (("grpc-status-details-bin", details),)
        self.context.set_trailing_metadata(trailers)
        code = STATUS_BY_NUMBER[fail.code]
        if code is grpc.StatusCode.OK:
            self.context.set_code(code)
            self.context.set_details(fail.message)
            return
        self.context.abort(code, fail.message)
