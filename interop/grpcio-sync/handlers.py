"""The contract's methods (docs/contract.md section 2) on grpcio's
synchronous server, each body run inside contract_call so the control
headers and the Observer apply; the CallRegistry behind Observer.GetCall."""

import collections
import functools
import threading
import time

import grpc

import chat_pb2
import chat_pb2_grpc
import greeter_pb2
import greeter_pb2_grpc
import observer_pb2
import observer_pb2_grpc
import sensor_pb2
import sensor_pb2_grpc
from call import UNKNOWN, Call, CallState, padded
from calls import CALL_ID_HEADER, MAX_KEPT_CALLS, timeout_ms
from control import Fail, quoted
from services import summarise

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]
# GetCall waits at most this long whatever wait_ms says, as the reference.
MAX_GET_CALL_WAIT_MS = 60_000


class CallRegistry:
    """Calls that carried x-conform-call-id, by id (oldest dropped past
    MAX_KEPT_CALLS); handlers run on many threads, hence the lock."""

    def __init__(self):
        self._calls = collections.OrderedDict()
        self._lock = threading.Lock()

    def open(self, method, context, headers, request_encoding):
        record = observer_pb2.CallRecord(
            call_id=headers.get(CALL_ID_HEADER, ""), method=method, outcome=observer_pb2.RUNNING,
            request_encoding=request_encoding, timeout_ms=timeout_ms(context))
        for key, value in headers.items():
            if key.startswith("x-"):
                record.metadata[key] = value
        state = CallState(record)
        if record.call_id:
            with self._lock:
                self._calls.pop(record.call_id, None)
                self._calls[record.call_id] = state
                while len(self._calls) > MAX_KEPT_CALLS:
                    self._calls.popitem(last=False)
        return state

    def get(self, call_id, wait_ms):
        """The record of call_id after waiting up to wait_ms for it to settle
        (RUNNING when it did not); None when no call carried that id."""
        with self._lock:
            state = self._calls.get(call_id)
        if state is None:
            return None
        state.done.wait(wait_ms / 1000.0)
        answer = observer_pb2.CallRecord()
        with state.lock:
            answer.CopyFrom(state.record)
        return answer


def contract_call(method, single_request=False, stream_response=False):
    """Wraps `body(self, call, request_or_iterator)` into a grpcio handler.

    Unary-response bodies return their response (counted here); streaming
    ones are generators of responses, each counted as it is handed to grpcio
    and subject to fail-after. Fail becomes the call's status."""

    def wrap(body):
        def open_call(self, context):
            call = Call(self.registry, method, context)
            if single_request:
                # grpcio reads the one request before the handler runs and
                # never tells it about END_STREAM: not a half-close.
                call.state.request_read()
            return call

        def fail(call, failure):
            if failure.code == 0 and not stream_response:
                # A unary-response call cannot end OK without a response in
                # grpcio: the scripted OK goes out as UNKNOWN.
                failure = Fail(UNKNOWN, failure.message)
            call.state.finish(observer_pb2.COMPLETED, failure.code)
            call.end_with(failure)

        if stream_response:
            @functools.wraps(body)
            def streaming(self, request, context):
                call = open_call(self, context)
                try:
                    call.begin()
                    for response in body(self, call, request):
                        if not call.before_response():
                            return
                        call.streamed()
                        yield response
                        call.after_streamed()
                    call.state.finish(observer_pb2.COMPLETED, 0)
                except Fail as failure:
                    fail(call, failure)
            return streaming

        @functools.wraps(body)
        def unary(self, request, context):
            call = open_call(self, context)
            try:
                call.begin()
                response = body(self, call, request)
                if not call.before_response():
                    return None
                call.before_unary_send()
                call.state.response_sent()
                call.state.finish(observer_pb2.COMPLETED, 0)
                return response
            except Fail as failure:
                fail(call, failure)
                return None
        return unary

    return wrap


class ChatService(chat_pb2_grpc.ChatServiceServicer):
    def __init__(self, registry):
        self.registry = registry

    @contract_call("/ChatService/ChatStream", stream_response=True)
    def ChatStream(self, call, requests):
        call.fail_at_start()
        while not call.reads_exhausted():
            message = call.read(requests)
            if message is None:
                return
            yield chat_pb2.Message(user="server", content=padded("echo: " + message.content, call.response_size),
                                   timestamp=int(time.time()))


class Greeter(greeter_pb2_grpc.GreeterServicer):
    def __init__(self, registry):
        self.registry = registry

    @contract_call("/Greeter/SayHello", single_request=True)
    def SayHello(self, call, request):
        call.fail_at_start()
        return greeter_pb2.HelloReply(message=padded("Hello " + request.name, call.response_size))

    @contract_call("/Greeter/ServerStream", single_request=True, stream_response=True)
    def ServerStream(self, call, request):
        call.fail_at_start()
        count = 3 if call.response_count is None else call.response_count
        for i in range(1, count + 1):
            yield greeter_pb2.StreamResponseData(data=padded(f"{request.data}-{i}", call.response_size))

    @contract_call("/Greeter/ClientStream")
    def ClientStream(self, call, requests):
        call.fail_at_start()
        received = call.read_all(requests)
        return greeter_pb2.StreamResponseData(data=padded(",".join(r.data for r in received), call.response_size))

    @contract_call("/Greeter/AllStream", stream_response=True)
    def AllStream(self, call, requests):
        call.fail_at_start()
        while not call.reads_exhausted():
            request = call.read(requests)
            if request is None:
                return
            yield greeter_pb2.StreamResponseData(data=padded("echo: " + request.data, call.response_size))


class SensorService(sensor_pb2_grpc.SensorServiceServicer):
    def __init__(self, registry):
        self.registry = registry
        # Per device, the last reading of a Record call that ended OK.
        self.latest = {}
        self.lock = threading.Lock()

    @contract_call("/SensorService/Record")
    def Record(self, call, requests):
        call.fail_at_start()
        readings = []
        while not call.reads_exhausted():
            reading = call.read(requests)
            if reading is None:
                break
            if not reading.device_id:
                raise Fail(INVALID_ARGUMENT, f"Record: reading {len(readings) + 1} has an empty device_id")
            readings.append(reading)
        summary = summarise(readings)
        if call.response_size is not None:
            if not summary.device_ids:
                summary.device_ids.append("")
            summary.device_ids[-1] = padded(summary.device_ids[-1], call.response_size)
        # Stored only once the reply is due (after delay-ms), as the reference
        # does; a call cancelled during the delay stores nothing.
        if call.before_response():
            with self.lock:
                for r in readings:
                    self.latest[r.device_id] = r
        call.delay_ms = 0  # already waited: the wrapper must not wait again
        return summary

    @contract_call("/SensorService/Watch", single_request=True, stream_response=True)
    def Watch(self, call, request):
        if not request.device_id:
            raise Fail(INVALID_ARGUMENT, "Watch: device_id must not be empty")
        call.fail_at_start()
        count = request.limit or 3
        if call.response_count is not None:
            count = call.response_count
        for i in range(count):
            yield sensor_pb2.SensorData(timestamp=1000 + i, temperature=20.0 + 0.25 * i,
                                        device_id=padded(request.device_id, call.response_size))

    @contract_call("/SensorService/Latest", single_request=True)
    def Latest(self, call, request):
        if not request.device_id:
            raise Fail(INVALID_ARGUMENT, "Latest: device_id must not be empty")
        call.fail_at_start()
        with self.lock:
            reading = self.latest.get(request.device_id)
        if reading is None:
            raise Fail(NOT_FOUND, f"Latest: no Record call stored a reading for device {quoted(request.device_id)}")
        answer = sensor_pb2.SensorData()
        answer.CopyFrom(reading)
        answer.device_id = padded(answer.device_id, call.response_size)
        return answer


class Observer(observer_pb2_grpc.ObserverServicer):
    def __init__(self, registry):
        self.registry = registry

    def GetCall(self, request, context):
        # Not itself recorded: a GetCall carrying the id it asks about would
        # replace the very call it looks for.
        record = self.registry.get(request.call_id, min(request.wait_ms, MAX_GET_CALL_WAIT_MS))
        if record is None:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"GetCall: no call carried x-conform-call-id {quoted(request.call_id)}")
        return record
