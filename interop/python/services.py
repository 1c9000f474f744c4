"""The contract's methods (CONTRACT.md section 2) on grpc.aio, each body run
inside contract_call so the control headers and the Observer apply."""

import time

import grpc

import chat_pb2
import chat_pb2_grpc
import greeter_pb2
import greeter_pb2_grpc
import observer_pb2_grpc
import sensor_pb2
import sensor_pb2_grpc
from control import Fail, contract_call

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]


def unary_request(call):
    """A unary request reached the handler: one message read. Not a
    half-close: C-core starts unary handlers as soon as the message is in,
    before (or without) the client's END_STREAM, and never tells the handler
    about it."""
    call.state.request_read()


class ChatService(chat_pb2_grpc.ChatServiceServicer):
    def __init__(self, registry):
        self.registry = registry

    @contract_call("/ChatService/ChatStream")
    async def ChatStream(self, call, _requests):
        while not call.reads_exhausted():
            message = await call.read()
            if message is None:
                break
            await call.write(
                chat_pb2.Message(
                    user="server",
                    content="echo: " + message.content,
                    timestamp=int(time.time()),
                )
            )


class Greeter(greeter_pb2_grpc.GreeterServicer):
    def __init__(self, registry):
        self.registry = registry

    @contract_call("/Greeter/SayHello")
    async def SayHello(self, call, request):
        unary_request(call)
        return greeter_pb2.HelloReply(message="Hello " + request.name)

    @contract_call("/Greeter/ServerStream")
    async def ServerStream(self, call, request):
        unary_request(call)
        count = 3 if call.response_count is None else call.response_count
        for i in range(1, count + 1):
            await call.write(greeter_pb2.StreamResponseData(data=f"{request.data}-{i}"))

    @contract_call("/Greeter/ClientStream")
    async def ClientStream(self, call, _requests):
        received = await call.read_all()
        return greeter_pb2.StreamResponseData(data=",".join(r.data for r in received))

    @contract_call("/Greeter/AllStream")
    async def AllStream(self, call, _requests):
        while not call.reads_exhausted():
            request = await call.read()
            if request is None:
                break
            await call.write(greeter_pb2.StreamResponseData(data="echo: " + request.data))


def summarise(readings):
    """The RecordSummary of readings, in arrival order."""
    summary = sensor_pb2.RecordSummary(count=len(readings))
    if not readings:
        return summary
    temperatures = [r.temperature for r in readings]
    summary.min = min(temperatures)
    summary.max = max(temperatures)
    total = 0.0
    for t in temperatures:
        total += t
    summary.mean = total / len(readings)
    summary.first_timestamp = readings[0].timestamp
    summary.last_timestamp = readings[-1].timestamp
    summary.out_of_order = sum(
        1 for before, after in zip(readings, readings[1:]) if after.timestamp < before.timestamp
    )
    seen = []
    for r in readings:
        if r.device_id not in seen:
            seen.append(r.device_id)
    summary.device_ids.extend(seen)
    return summary


class SensorService(sensor_pb2_grpc.SensorServiceServicer):
    def __init__(self, registry):
        self.registry = registry
        # Per device, the last reading of a Record call that ended OK.
        self.latest = {}

    @contract_call("/SensorService/Record")
    async def Record(self, call, _requests):
        readings = []
        while not call.reads_exhausted():
            reading = await call.read()
            if reading is None:
                break
            if not reading.device_id:
                raise Fail(INVALID_ARGUMENT, f"reading {len(readings)} has an empty device_id")
            readings.append(reading)
        summary = summarise(readings)
        # Stored only once the call is sure to end OK; a scripted failure
        # (fail-after 0) must not store anything.
        await call.before_unary_response()
        for r in readings:
            self.latest[r.device_id] = r
        return summary

    @contract_call("/SensorService/Watch")
    async def Watch(self, call, request):
        unary_request(call)
        if not request.device_id:
            raise Fail(INVALID_ARGUMENT, "device_id is empty")
        count = request.limit or 3
        if call.response_count is not None:
            count = call.response_count
        for i in range(count):
            await call.write(
                sensor_pb2.SensorData(
                    timestamp=1000 + i, temperature=20.0 + 0.25 * i, device_id=request.device_id
                )
            )

    @contract_call("/SensorService/Latest")
    async def Latest(self, call, request):
        unary_request(call)
        if not request.device_id:
            raise Fail(INVALID_ARGUMENT, "device_id is empty")
        reading = self.latest.get(request.device_id)
        if reading is None:
            raise Fail(NOT_FOUND, f'no Record stored a reading of device "{request.device_id}"')
        return reading


class Observer(observer_pb2_grpc.ObserverServicer):
    def __init__(self, registry):
        self.registry = registry

    async def GetCall(self, request, context):
        # Not itself recorded: a GetCall carrying the id it asks about would
        # replace the very call it looks for.
        record = await self.registry.get(request.call_id, request.wait_ms)
        if record is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f'no call carried x-conform-call-id: "{request.call_id}"')
        return record
