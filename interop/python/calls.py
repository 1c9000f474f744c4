"""What the server observed of each call (CONTRACT.md section 4).

Every handler opens a CallState; calls that carried x-conform-call-id are kept
by id so Observer.GetCall can answer about them, and GetCall can wait for a
call to settle because each state carries an asyncio.Event set on its end.
"""

import asyncio
import base64
import collections
import math

import observer_pb2

CALL_ID_HEADER = "x-conform-call-id"

# Calls kept at most, oldest dropped first: a peer left running under a CI loop
# must not grow without bound.
MAX_KEPT_CALLS = 10_000


def _text(key, value):
    """Metadata value as text; -bin values arrive decoded, so they are put back
    into base64, unpadded as the gRPC spec asks senders to (the Go peer does
    the same)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii").rstrip("=")
    return value


def header_map(context):
    """Request metadata as a dict; repeated keys are joined with ',' as HTTP
    folds them."""
    headers = {}
    for key, value in context.invocation_metadata() or ():
        value = _text(key, value)
        headers[key] = headers[key] + "," + value if key in headers else value
    return headers


def timeout_ms(context):
    """The call's deadline in ms, 0 when none.

    grpcio hides the grpc-timeout header, so this is the time remaining when
    the handler starts, rounded to the nearest 10 ms: the few hundred
    microseconds between the transport reading the header and the handler
    starting would otherwise show as e.g. 4999 for a client's 5000m."""
    remaining = context.time_remaining()
    if remaining is None or remaining > 10**8 or remaining <= 0:
        return 0
    if remaining < 0.005:
        return int(math.ceil(remaining * 1000))
    return int(round(remaining * 100.0)) * 10


class CallState:
    """One call's record, updated by its handler."""

    def __init__(self, record):
        self.record = record
        self.done = asyncio.Event()

    def request_read(self):
        self.record.requests_received += 1

    def half_close(self):
        """The client's END_STREAM reached the handler; never for a cancel."""
        self.record.half_close_received = True

    def response_sent(self):
        self.record.responses_sent += 1

    def finish(self, outcome, status_code=0):
        """The first ending wins: a handler that ends after a reset stays
        CANCELLED."""
        if self.done.is_set():
            return
        self.record.outcome = outcome
        self.record.status_code = status_code
        self.done.set()


class CallRegistry:
    """Calls that carried x-conform-call-id, by id."""

    def __init__(self):
        self._calls = collections.OrderedDict()

    def open(self, method, context, headers, request_encoding):
        record = observer_pb2.CallRecord(
            call_id=headers.get(CALL_ID_HEADER, ""),
            method=method,
            outcome=observer_pb2.RUNNING,
            request_encoding=request_encoding,
            timeout_ms=timeout_ms(context),
        )
        for key, value in headers.items():
            if key.startswith("x-"):
                record.metadata[key] = value
        state = CallState(record)
        if record.call_id:
            # A rerun fixture with the same id sees its own, newest call.
            self._calls.pop(record.call_id, None)
            self._calls[record.call_id] = state
            while len(self._calls) > MAX_KEPT_CALLS:
                self._calls.popitem(last=False)
        return state

    async def get(self, call_id, wait_ms):
        """The record of call_id after waiting up to wait_ms for it to settle;
        None when no call carried that id."""
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
