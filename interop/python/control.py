"""One call as the contract scripts it: the control headers of CONTRACT.md
section 3 applied around the handler's reads and writes, and the CallRecord
kept up to date as it goes (section 4)."""

import asyncio
import base64
import binascii
import functools
import json

import grpc
from grpc import aio

import observer_pb2
from calls import header_map

# Numeric status codes the grpcio API can send (it takes enum members only).
_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}

_COMPRESSION_BY_NAME = {
    "gzip": grpc.Compression.Gzip,
    "deflate": grpc.Compression.Deflate,
    "identity": grpc.Compression.NoCompression,
}


# How long a read that ended waits for a reset to show as cancellation.
CANCEL_GRACE_S = 0.005


class Fail(Exception):
    """Ends the call with a status of the handler's own."""

    def __init__(self, code, message="", scripted=False):
        super().__init__(f"status {code}: {message}")
        self.code = code
        self.message = message
        # The x-conform-fail-after status, which carries the scripted details.
        self.scripted = scripted


# Longest pause a header may ask for, as the reference bounds it.
MAX_PAUSE_MS = 600_000
# Largest x-conform-response-size, as the reference bounds it (16 MiB).
MAX_RESPONSE_SIZE = 16 * 1024 * 1024
_U32_MAX = 2**32 - 1


def quoted(value):
    """A header value quoted as the reference shows it in its messages."""
    return json.dumps(value, ensure_ascii=False)


def _control_error(name, value, reason):
    return Fail(
        grpc.StatusCode.INVALID_ARGUMENT.value[0],
        f"control header {name}: {reason} (got {quoted(value)})",
    )


def _number(headers, name):
    """A control header holding a decimal u32 (spaces around tolerated);
    None when absent. Malformed is INVALID_ARGUMENT naming the header, as the
    reference answers, so a fixture's typo never passes as "absent"."""
    value = headers.get(name)
    if value is None:
        return None
    text = value.strip()
    if not text or not text.isascii() or not text.isdigit() or int(text) > _U32_MAX:
        raise _control_error(name, value, "expected a decimal integer from 0 to 4294967295")
    return int(text)


def _pause(headers, name):
    ms = _number(headers, name) or 0
    if ms > MAX_PAUSE_MS:
        raise _control_error(name, headers[name], "pauses above 600000 ms are refused")
    return ms


_HEX = frozenset(b"0123456789abcdefABCDEF")


def _percent_decode(value):
    """Lenient percent-decoding, as the reference does: a % not followed by two
    hex digits stays as it is, so plain text may be sent as it is."""
    raw = value.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x25 and i + 2 < len(raw) and raw[i + 1] in _HEX and raw[i + 2] in _HEX:
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return bytes(out).decode("utf-8")


class Call:
    """A call in progress: its context, its record and its script."""

    def __init__(self, registry, method, context):
        headers = header_map(context)
        self.context = context
        # grpcio consumes grpc-encoding before metadata reaches the handler;
        # when a stack build does pass it through it is used.
        self.state = registry.open(
            method, context, headers, headers.get("grpc-encoding", "")
        )
        # Parsed in begin(), where a malformed header can end the call.
        self.headers = headers
        self.response_count = None
        self.interval_ms = self.delay_ms = 0
        self.fail_after = self.close_after = None
        self.fail_code = grpc.StatusCode.UNKNOWN.value[0]
        self.fail_message = ""
        self.response_encoding = headers.get("x-conform-response-encoding")
        self.response_size = None
        self.fail_details = None
        self.unary_prepared = False
        self.compression = None
        self.metadata_sent = False
        # Every value of a repeated echo header, in order.
        metadata = tuple(context.invocation_metadata() or ())
        self.echo_initial = tuple(
            (k, v) for k, v in metadata if k == "x-grpc-test-echo-initial"
        )
        self.trailers = tuple(
            (k, v) for k, v in metadata if k == "x-grpc-test-echo-trailing-bin"
        )

    async def begin(self):
        """What happens before the handler's body: echo headers and the
        response encoding."""
        if self.trailers:
            self.context.set_trailing_metadata(self.trailers)
        self.compression = _COMPRESSION_BY_NAME.get(self.response_encoding or "")
        if self.compression is not None:
            # C-core compresses even when the client's grpc-accept-encoding
            # does not list the encoding, and hides that header from the
            # handler, so "when the client accepts it" cannot be honoured here
            # (README: known limitations).
            self.context.set_compression(self.compression)
        if self.echo_initial:
            await self.context.send_initial_metadata(self.echo_initial)
            self.metadata_sent = True
        self._parse_control()

    def _parse_control(self):
        """The handler-side control headers, with the reference's rules;
        fail-code and fail-message are read only with fail-after."""
        h = self.headers
        self.response_count = _number(h, "x-conform-response-count")
        self.interval_ms = _pause(h, "x-conform-response-interval-ms")
        self.delay_ms = _pause(h, "x-conform-delay-ms")
        self.fail_after = _number(h, "x-conform-fail-after")
        if self.fail_after is not None:
            code = _number(h, "x-conform-fail-code")
            if code is not None and code > 16:
                raise _control_error("x-conform-fail-code", h["x-conform-fail-code"],
                                     "expected a gRPC status code from 0 to 16")
            self.fail_code = 2 if code is None else code
            message = h.get("x-conform-fail-message", "")
            try:
                self.fail_message = _percent_decode(message)
            except UnicodeDecodeError:
                raise _control_error("x-conform-fail-message", message,
                                     "percent-decodes to invalid UTF-8") from None
        self.close_after = _number(h, "x-conform-close-after-requests")
        self.response_size = _number(h, "x-conform-response-size")
        if self.response_size is not None and self.response_size > MAX_RESPONSE_SIZE:
            raise _control_error("x-conform-response-size", h["x-conform-response-size"],
                                 "sizes above 16777216 bytes are refused")
        if self.fail_after is not None:
            self.fail_details = self._details()

    def _details(self):
        """x-conform-fail-details-bin: grpcio hands -bin values over decoded;
        a build that passes the text is decoded here (padded or not)."""
        for key, value in self.context.invocation_metadata() or ():
            if key != "x-conform-fail-details-bin":
                continue
            if isinstance(value, bytes):
                return value
            try:
                return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
            except (binascii.Error, ValueError):
                raise _control_error("x-conform-fail-details-bin", value, "expected base64") from None
        return None

    def pad(self, text):
        """text padded at its end with x to x-conform-response-size UTF-8
        bytes; a longer text is left as it is."""
        if self.response_size is None:
            return text
        missing = self.response_size - len(text.encode("utf-8"))
        return text + "x" * missing if missing > 0 else text
    async def fail_at_start(self):
        """fail-after 0: the scripted status after delay-ms, before anything
        else (before any request is read)."""
        if self.fail_after == 0:
            await self.pause(self.delay_ms)
            raise Fail(self.fail_code, self.fail_message, scripted=True)

    async def pause(self, ms):
        if ms:
            await asyncio.sleep(ms / 1000.0)

    async def before_unary_send(self):
        """grpc.aio applies set_compression to a unary response only when the
        handler sent its initial metadata itself (streamed responses are
        compressed either way), so a unary response that should be compressed
        sends them just before it; error endings stay trailers-only."""
        if self.compression is not None and not self.metadata_sent:
            await self.context.send_initial_metadata(())
            self.metadata_sent = True

    def reads_exhausted(self):
        """Whether close-after-requests says to stop reading now."""
        received = self.state.record.requests_received
        return self.close_after is not None and received >= self.close_after

    async def read(self):
        """The next request, or None at the client's half-close."""
        message = await self.context.read()
        if message is aio.EOF:
            # grpcio ends a pending read with EOF both at a half-close and
            # when the client resets the stream; for a reset, the handler task
            # is cancelled right after (well under a millisecond here). This
            # bounded pause lets that cancellation land before the call is
            # taken for half-closed.
            await asyncio.sleep(CANCEL_GRACE_S)
            self.state.half_close()
            return None
        self.state.request_read()
        return message

    async def read_all(self):
        """Requests until half-close or close-after-requests."""
        messages = []
        while not self.reads_exhausted():
            message = await self.read()
            if message is None:
                break
            messages.append(message)
        return messages

    async def before_response(self):
        """delay-ms before the first response, response-interval-ms before
        each later one."""
        sent = self.state.record.responses_sent
        await self.pause(self.delay_ms if sent == 0 else self.interval_ms)

    async def before_unary_response(self):
        """before_response for the one response of a unary-response method; a
        handler may call it early (to act only once the call will end OK) and
        the wrapper then does not pause twice. fail-after N > 0 changes
        nothing for a single response, as in the reference."""
        if not self.unary_prepared:
            self.unary_prepared = True
            await self.before_response()

    async def write(self, message):
        """One streamed response after its pause; fail-after N ends the call
        right after the N-th."""
        await self.before_response()
        try:
            await self.context.write(message)
        except asyncio.CancelledError:
            # A client reset that lands while C-core completes the write
            # cancels the handler inside it, after the message was handed to
            # the stack (the client may even have its headers). It counts as
            # sent, as the reference counts what it handed to its transport;
            # without this the count raced with the reset.
            self.state.response_sent()
            raise
        self.state.response_sent()
        if self.fail_after and self.state.record.responses_sent == self.fail_after:
            raise Fail(self.fail_code, self.fail_message, scripted=True)

    def expired(self):
        remaining = self.context.time_remaining()
        return remaining is not None and remaining <= 0


def contract_call(method, single_request=False, stream_response=False):
    """Wraps a handler body `body(self, call, request)` into a grpc.aio handler
    that keeps the call's record and turns Fail into the call's status.

    With single_request (unary and server-streaming methods) the request is
    counted as read before anything else, as the reference does. Unary
    responses are returned by the body and counted here; streamed ones are
    written by the body through call.write."""

    def wrap(body):
        @functools.wraps(body)
        async def handler(self, request, context):
            call = Call(self.registry, method, context)
            if single_request:
                # Not a half-close: C-core starts unary handlers as soon as
                # the message is in, before (or without) the client's
                # END_STREAM, and never tells the handler about it.
                call.state.request_read()
            try:
                await call.begin()
                response = await body(self, call, request)
                if response is not None:
                    await call.before_unary_response()
                    await call.before_unary_send()
                    call.state.response_sent()
                call.state.finish(observer_pb2.COMPLETED, 0)
                return response
            except Fail as fail:
                if fail.code == 0 and not stream_response:
                    # grpcio can only end a unary-response call OK with a
                    # response; a scripted OK without one goes out as UNKNOWN.
                    fail = Fail(grpc.StatusCode.UNKNOWN.value[0], fail.message)
                call.state.finish(observer_pb2.COMPLETED, fail.code)
                await _end_with(context, call, fail)
            except asyncio.CancelledError:
                # The status the client sees for such an ending, as the other
                # peers record it.
                if call.expired():
                    call.state.finish(observer_pb2.DEADLINE_EXCEEDED, grpc.StatusCode.DEADLINE_EXCEEDED.value[0])
                else:
                    call.state.finish(observer_pb2.CANCELLED, grpc.StatusCode.CANCELLED.value[0])
                raise
            except aio.AbortError:
                raise
            except Exception:
                call.state.finish(observer_pb2.COMPLETED, grpc.StatusCode.UNKNOWN.value[0])
                raise

        return handler

    return wrap


async def _end_with(context, call, fail):
    """Ends the call with fail's status (grpc-message percent-encoded by
    grpcio) and the echoed trailer. abort() refuses OK, so a scripted OK
    (fail-code 0) sets the status and lets the handler return nothing."""
    code = _STATUS_BY_NUMBER[fail.code]
    trailers = call.trailers
    if call.fail_details is not None and fail.scripted:
        trailers = trailers + (("grpc-status-details-bin", call.fail_details),)
    if code is grpc.StatusCode.OK:
        context.set_code(code)
        context.set_details(fail.message)
        return None
    await context.abort(code, fail.message, trailers)
