"""The contract's methods (docs/contract.md section 2) on grpclib, each body
run inside contract_call so the control headers and the Observer apply."""

import functools
import time

from grpclib import Status

import chat_grpc
import chat_pb2
import greeter_grpc
import greeter_pb2
import observer_grpc
import observer_pb2
import sensor_grpc
import sensor_pb2
from contract import CLIENT_ENDINGS, Call, Fail, ended_by_client, padded, quoted

INVALID_ARGUMENT = Status.INVALID_ARGUMENT.value
NOT_FOUND = Status.NOT_FOUND.value
# GetCall waits at most this long whatever wait_ms says, as the reference.
MAX_GET_CALL_WAIT_MS = 60_000


def contract_call(method, single_request=False, stream_response=False):
    """Wraps `body(self, call, request)` into a grpclib handler that keeps the
    call's record and turns Fail into the call's status.

    With single_request the one request is read first (grpclib hands unary
    requests over only through recv_message, like any other). Unary responses
    are returned by the body and sent here; streamed ones are written by the
    body through call.write."""

    def wrap(body):
        @functools.wraps(body)
        async def handler(self, stream):
            call = Call(self.registry, method, stream, unary_response=not stream_response)
            try:
                request = None
                await call.begin()
                if single_request:
                    request = await call.read()
                    # The END_STREAM after it, as the reference reads it
                    # before its handler runs.
                    if request is not None:
                        await call.read()
                response = await body(self, call, request)
                if response is not None:
                    await call.before_response()
                    await call.send(response)
                call.state.finish(observer_pb2.COMPLETED, 0)
                # Explicitly, for the echoed metadata: grpclib's own ending
                # sends the status alone.
                await call.end()
            except Fail as fail:
                await call.end_with(fail)
            except CLIENT_ENDINGS as err:
                ended_by_client(call, err)
                raise
            except Exception:
                call.state.finish(observer_pb2.COMPLETED, Status.UNKNOWN.value)
                raise

        return handler

    return wrap


def summarise(readings, response_size):
    """The RecordSummary of readings, in arrival order."""
    summary = sensor_pb2.RecordSummary(count=len(readings))
    if readings:
        temperatures = [r.temperature for r in readings]
        summary.min, summary.max = min(temperatures), max(temperatures)
        total = 0.0
        for t in temperatures:
            total += t
        summary.mean = total / len(readings)
        summary.first_timestamp = readings[0].timestamp
        summary.last_timestamp = readings[-1].timestamp
        summary.out_of_order = sum(1 for a, b in zip(readings, readings[1:]) if b.timestamp < a.timestamp)
        seen = []
        for r in readings:
            if r.device_id not in seen:
                seen.append(r.device_id)
        summary.device_ids.extend(seen)
    if response_size is not None:
        if not summary.device_ids:
            summary.device_ids.append("")
        summary.device_ids[-1] = padded(summary.device_ids[-1], response_size)
    return summary


class ChatService(chat_grpc.ChatServiceBase):
    def __init__(self, registry):
        self.registry = registry

    @contract_call("/ChatService/ChatStream", stream_response=True)
    async def ChatStream(self, call, _request):
        await call.fail_at_start()
        while not call.reads_exhausted():
            message = await call.read()
            if message is None:
                break
            await call.write(chat_pb2.Message(user="server", timestamp=int(time.time()),
                                              content=padded("echo: " + message.content, call.response_size)))


class Greeter(greeter_grpc.GreeterBase):
    def __init__(self, registry):
        self.registry = registry

    @contract_call("/Greeter/SayHello", single_request=True)
    async def SayHello(self, call, request):
        await call.fail_at_start()
        return greeter_pb2.HelloReply(message=padded("Hello " + request.name, call.response_size))

    @contract_call("/Greeter/ServerStream", single_request=True, stream_response=True)
    async def ServerStream(self, call, request):
        await call.fail_at_start()
        count = 3 if call.response_count is None else call.response_count
        for i in range(1, count + 1):
            await call.write(greeter_pb2.StreamResponseData(data=padded(f"{request.data}-{i}", call.response_size)))

    @contract_call("/Greeter/ClientStream")
    async def ClientStream(self, call, _request):
        await call.fail_at_start()
        received = await call.read_all()
        return greeter_pb2.StreamResponseData(data=padded(",".join(r.data for r in received), call.response_size))

    @contract_call("/Greeter/AllStream", stream_response=True)
    async def AllStream(self, call, _request):
        await call.fail_at_start()
        while not call.reads_exhausted():
            request = await call.read()
            if request is None:
                break
            await call.write(greeter_pb2.StreamResponseData(data=padded("echo: " + request.data, call.response_size)))


class SensorService(sensor_grpc.SensorServiceBase):
    def __init__(self, registry):
        self.registry = registry
        # Per device, the last reading of a Record call that ended OK.
        self.latest = {}

    @contract_call("/SensorService/Record")
    async def Record(self, call, _request):
        await call.fail_at_start()
        readings = []
        while not call.reads_exhausted():
            reading = await call.read()
            if reading is None:
                break
            if not reading.device_id:
                raise Fail(INVALID_ARGUMENT, f"Record: reading {len(readings) + 1} has an empty device_id")
            readings.append(reading)
        summary = summarise(readings, call.response_size)
        # Stored only once the reply is due (after delay-ms), as the reference
        # does; a call cancelled during the delay stores nothing.
        await call.before_response()
        call.delay_ms = 0
        for r in readings:
            self.latest[r.device_id] = r
        return summary

    @contract_call("/SensorService/Watch", single_request=True, stream_response=True)
    async def Watch(self, call, request):
        if not request.device_id:
            raise Fail(INVALID_ARGUMENT, "Watch: device_id must not be empty")
        await call.fail_at_start()
        count = request.limit or 3
        if call.response_count is not None:
            count = call.response_count
        for i in range(count):
            await call.write(sensor_pb2.SensorData(timestamp=1000 + i, temperature=20.0 + 0.25 * i,
                                                   device_id=padded(request.device_id, call.response_size)))

    @contract_call("/SensorService/Latest", single_request=True)
    async def Latest(self, call, request):
        if not request.device_id:
            raise Fail(INVALID_ARGUMENT, "Latest: device_id must not be empty")
        await call.fail_at_start()
        reading = self.latest.get(request.device_id)
        if reading is None:
            raise Fail(NOT_FOUND, f"Latest: no Record call stored a reading for device {quoted(request.device_id)}")
        answer = sensor_pb2.SensorData()
        answer.CopyFrom(reading)
        answer.device_id = padded(answer.device_id, call.response_size)
        return answer


class Observer(observer_grpc.ObserverBase):
    def __init__(self, registry):
        self.registry = registry

    async def GetCall(self, stream):
        # Not itself recorded: a GetCall carrying the id it asks about would
        # replace the very call it looks for.
        request = await stream.recv_message()
        record = await self.registry.get(request.call_id, min(request.wait_ms, MAX_GET_CALL_WAIT_MS))
        if record is None:
            await stream.send_trailing_metadata(
                status=Status.NOT_FOUND,
                status_message=f"GetCall: no call carried x-conform-call-id {quoted(request.call_id)}")
            return
        await stream.send_message(record)
