"""One call as the contract scripts it: the control headers of CONTRACT.md
section 3 applied around the handler's reads and writes, and the CallRecord
kept up to date as it goes (section 4)."""

import asyncio
import functools

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
    """Ends the call with a status of the handler's own (never OK)."""

    def __init__(self, code, message=""):
        super().__init__(f"status {code}: {message}")
        self.code = code
        self.message = message


def _int_header(headers, name):
    """A numeric control header; absent or malformed means not set, so a
    garbled header leaves the call on its default behaviour."""
    try:
        value = int(headers[name])
    except (KeyError, ValueError):
        return None
    return value if value >= 0 else None


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
        self.response_count = _int_header(headers, "x-conform-response-count")
        self.interval_ms = _int_header(headers, "x-conform-response-interval-ms") or 0
        self.delay_ms = _int_header(headers, "x-conform-delay-ms") or 0
        self.fail_after = _int_header(headers, "x-conform-fail-after")
        self.fail_code = _int_header(headers, "x-conform-fail-code")
        if self.fail_code is None:
            self.fail_code = 2
        self.fail_message = headers.get("x-conform-fail-message", "")
        self.close_after = _int_header(headers, "x-conform-close-after-requests")
        self.response_encoding = headers.get("x-conform-response-encoding")
        self.echo_initial = headers.get("x-grpc-test-echo-initial")
        self.unary_prepared = False
        self.compression = None
        self.metadata_sent = False
        self.trailers = ()
        for key, value in context.invocation_metadata() or ():
            if key == "x-grpc-test-echo-trailing-bin":
                self.trailers = ((key, value),)

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
        if self.echo_initial is not None:
            await self.context.send_initial_metadata(
                (("x-grpc-test-echo-initial", self.echo_initial),)
            )
            self.metadata_sent = True

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
        """The pause due before the next response, then fail-after: the failure
        takes the place of response N+1, after the same pause."""
        sent = self.state.record.responses_sent
        pause_ms = self.delay_ms if sent == 0 else self.interval_ms
        if pause_ms:
            await asyncio.sleep(pause_ms / 1000.0)
        if self.fail_after is not None and sent >= self.fail_after:
            raise Fail(self.fail_code, self.fail_message)

    async def before_unary_response(self):
        """before_response for the one response of a unary-response method; a
        handler may call it early (to act only once the call will end OK) and
        the wrapper then does not pause twice."""
        if not self.unary_prepared:
            self.unary_prepared = True
            await self.before_response()

    async def write(self, message):
        """One streamed response, after its pause."""
        await self.before_response()
        await self.context.write(message)
        self.state.response_sent()

    def end(self):
        """The handler is about to end OK: fail-after N with exactly N
        responses sent ends with the scripted status instead."""
        if self.fail_after is not None and self.state.record.responses_sent >= self.fail_after:
            raise Fail(self.fail_code, self.fail_message)

    def expired(self):
        remaining = self.context.time_remaining()
        return remaining is not None and remaining <= 0


def contract_call(method):
    """Wraps a handler body `body(self, call, request)` into a grpc.aio handler
    that keeps the call's record and turns Fail into the call's status.

    Unary responses are returned by the body and counted here; streamed ones
    are written by the body through call.write."""

    def wrap(body):
        @functools.wraps(body)
        async def handler(self, request, context):
            call = Call(self.registry, method, context)
            try:
                await call.begin()
                response = await body(self, call, request)
                if response is not None:
                    await call.before_unary_response()
                    await call.before_unary_send()
                    call.state.response_sent()
                else:
                    call.end()
                call.state.finish(observer_pb2.COMPLETED, 0)
                return response
            except Fail as fail:
                code = _STATUS_BY_NUMBER.get(fail.code)
                if code is None or code is grpc.StatusCode.OK:
                    # grpcio can only send its enum's non-OK codes.
                    code = grpc.StatusCode.UNKNOWN
                call.state.finish(observer_pb2.COMPLETED, code.value[0])
                await context.abort(code, fail.message, call.trailers)
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
