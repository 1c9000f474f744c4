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
from control import quoted

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]
# GetCall waits at most this long whatever wait_ms says, as the reference.
MAX_GET_CALL_WAIT_MS = 60_000


class ChatService(chat_pb2_grpc.ChatServiceServicer):
    def __init__(self, registry):
        self.registry = registry

    @contract_call("/ChatService/ChatStream", stream_response=True)
    async def ChatStream(self, call, _requests):
        await call.fail_at_start()
        while not call.reads_exhausted():
            message = await call.read()
            if message is None:
                break
            await call.write(
                chat_pb2.Message(
                    user="server",
                    content=call.pad("echo: " + message.content),
                    timestamp=int(time.time()),
                )
            )


class Greeter(greeter_pb2_grpc.GreeterServicer):
    def __init__(self, registry):
        self.registry = registry

    @contract_call("/Greeter/SayHello", single_request=True)
    async def SayHello(self, call, request):
        await call.fail_at_start()
        return greeter_pb2.HelloReply(message=call.pad("Hello " + request.name))

    @contract_call("/Greeter/ServerStream", single_request=True, stream_response=True)
    async def ServerStream(self, call, request):
        await call.fail_at_start()
        count = 3 if call.response_count is None else call.response_count
        for i in range(1, count + 1):
            await call.write(greeter_pb2.StreamResponseData(data=call.pad(f"{request.data}-{i}")))

    @contract_call("/Greeter/ClientStream")
    async def ClientStream(self, call, _requests):
        await call.fail_at_start()
        received = await call.read_all()
        return greeter_pb2.StreamResponseData(data=call.pad(",".join(r.data for r in received)))

    @contract_call("/Greeter/AllStream", stream_response=True)
    async def AllStream(self, call, _requests):
        await call.fail_at_start()
        while not call.reads_exhausted():
            request = await call.read()
            if request is None:
                break
            await call.write(greeter_pb2.StreamResponseData(data=call.pad("echo: " + request.data)))


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
        await call.fail_at_start()
        readings = []
        while not call.reads_exhausted():
            reading = await call.read()
            if reading is None:
                break
            if not reading.device_id:
                raise Fail(INVALID_ARGUMENT, f"Record: reading {len(readings) + 1} has an empty device_id")
            readings.append(reading)
        summary = summarise(readings)
        # Stored only once the reply is due (after delay-ms), as the reference
        # does; a call cancelled during the delay stores nothing.
        await call.before_unary_response()
        for r in readings:
            self.latest[r.device_id] = r
        if call.response_size is not None:
            # The contract pads the last device id, or one added when none.
            last = summary.device_ids.pop() if summary.device_ids else ""
            summary.device_ids.append(call.pad(last))
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
            await call.write(
                sensor_pb2.SensorData(
                    timestamp=1000 + i, temperature=20.0 + 0.25 * i, device_id=call.pad(request.device_id)
                )
            )

    @contract_call("/SensorService/Latest", single_request=True)
    async def Latest(self, call, request):
        if not request.device_id:
            raise Fail(INVALID_ARGUMENT, "Latest: device_id must not be empty")
        await call.fail_at_start()
        reading = self.latest.get(request.device_id)
        if reading is None:
            raise Fail(NOT_FOUND, f"Latest: no Record call stored a reading for device {quoted(request.device_id)}")
        reply = sensor_pb2.SensorData()
        reply.CopyFrom(reading)
        reply.device_id = call.pad(reading.device_id)
        return reply


class Observer(observer_pb2_grpc.ObserverServicer):
    def __init__(self, registry):
        self.registry = registry

    async def GetCall(self, request, context):
        # Not itself recorded: a GetCall carrying the id it asks about would
        # replace the very call it looks for.
        record = await self.registry.get(request.call_id, min(request.wait_ms, MAX_GET_CALL_WAIT_MS))
        if record is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"GetCall: no call carried x-conform-call-id {quoted(request.call_id)}"
            )
        return record
