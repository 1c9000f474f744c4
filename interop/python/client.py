"""The grpcio client under test (docs/clients.md): reads a plan on stdin,
runs its calls on one grpc.aio channel, prints the report on stdout.

Each step maps to grpc.aio's call objects: the request-streaming modes start
the call at once (`stream_unary` / `stream_stream` without an iterator, then
`write` and `done_writing`); the unary-request modes are invoked at
`half_close` with the one request sent before. Every wait is bounded by the
plan's `timeout_ms`."""

import asyncio
import base64
import json
import sys
import time

import grpc
from google.protobuf import empty_pb2, json_format, message_factory

import chat_pb2
import greeter_pb2
import observer_pb2
import sensor_pb2

INTERFACE_VERSION = 1
# After giving up on a call (cancelled), how long its status may take to come.
STATUS_AFTER_CANCEL_S = 0.5
UNARY, SERVER_STREAMING, CLIENT_STREAMING, BIDI = "unary", "server_streaming", "client_streaming", "bidi"
UNARY_REQUEST = (UNARY, SERVER_STREAMING)


def method_types():
    """`/Service/Method` -> (request class, response class) of the protos."""
    types = {}
    for module in (chat_pb2, greeter_pb2, sensor_pb2, observer_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                types[f"/{service.full_name}/{method.name}"] = (
                    message_factory.GetMessageClass(method.input_type),
                    message_factory.GetMessageClass(method.output_type),
                )
    return types


def expand(template, number):
    """`template` with every `{i}` in its strings replaced by `number`."""
    if isinstance(template, str):
        return template.replace("{i}", str(number))
    if isinstance(template, list):
        return [expand(item, number) for item in template]
    if isinstance(template, dict):
        return {name: expand(value, number) for name, value in template.items()}
    return template


def request_metadata(pairs):
    """The plan's pairs as grpcio metadata: `-bin` values as bytes."""
    metadata = []
    for name, value in pairs:
        if name.endswith("-bin"):
            metadata.append((name, base64.b64decode(value + "=" * (-len(value) % 4), validate=True)))
        else:
            metadata.append((name, value))
    return tuple(metadata)


def metadata_pairs(metadata):
    """grpcio metadata as report pairs: bytes values (`-bin`) in base64."""
    if metadata is None:
        return None
    return [
        [key, base64.b64encode(value).decode() if isinstance(value, bytes) else value]
        for key, value in metadata
    ]


class GaveUp(Exception):
    """The plan's timeout_ms passed while this client waited."""


class Call:
    """One planned call and what grpc.aio surfaced of it."""

    def __init__(self, plan_call, channel, types, give_up_at):
        self.plan = plan_call
        self.mode = plan_call["mode"]
        self.request_type, self.response_type = types.get(
            plan_call["method"], (empty_pb2.Empty, empty_pb2.Empty)
        )
        self.channel = channel
        self.give_up_at = give_up_at
        self.request = None
        self.call = None
        self.finished = False
        self.error = None
        self.cancelled_here = False
        self.refused_writes = 0
        self.write_error = None
        self.messages = []
        self.kwargs = {"metadata": request_metadata(plan_call.get("metadata") or [])}
        if plan_call.get("deadline_ms") is not None:
            self.kwargs["timeout"] = plan_call["deadline_ms"] / 1000
        compression = plan_call.get("compression")
        if compression is not None:
            if compression != "gzip":
                raise ValueError(f"call {plan_call['method']}: compression {compression!r}: only gzip")
            self.kwargs["compression"] = grpc.Compression.Gzip

    def multicallable(self):
        serializers = {
            "request_serializer": self.request_type.SerializeToString,
            "response_deserializer": self.response_type.FromString,
        }
        factory = {
            UNARY: self.channel.unary_unary,
            SERVER_STREAMING: self.channel.unary_stream,
            CLIENT_STREAMING: self.channel.stream_unary,
            BIDI: self.channel.stream_stream,
        }[self.mode]
        return factory(self.plan["method"], **serializers)

    async def bounded(self, awaitable, waiting_for):
        remaining = self.give_up_at - time.monotonic()
        try:
            return await asyncio.wait_for(awaitable, max(remaining, 0))
        except asyncio.TimeoutError:
            raise GaveUp(f"the plan's timeout_ms passed while waiting for {waiting_for}") from None

    async def run(self):
        if self.mode not in UNARY_REQUEST:
            self.call = self.multicallable()(**self.kwargs)
        try:
            for step in self.plan["steps"]:
                op = step["op"]
                if op == "pause":
                    await asyncio.sleep(max(0, min(step["ms"] / 1000, self.give_up_at - time.monotonic())))
                elif not self.finished:
                    await self.step(op, step)
            if self.call is None and self.request is not None:
                self.invoke()
            await self.receive_all()
        except GaveUp as gave_up:
            self.error = f"client gave up: {gave_up}"
            print(f"{self.plan['method']}: {gave_up}", file=sys.stderr)
            if self.call is not None:
                self.call.cancel()
        return await self.report()

    async def step(self, op, step):
        if op == "send":
            await self.send(step["message"])
        elif op == "send_many":
            for number in range(1, step["count"] + 1):
                await self.send(expand(step["template"], number))
        elif op == "half_close":
            if self.mode in UNARY_REQUEST:
                self.invoke()
            else:
                await self.guarded(self.bounded(self.call.done_writing(), "done_writing"))
        elif op == "receive_headers":
            if self.call is not None:
                await self.guarded(self.bounded(self.call.initial_metadata(), "the response headers"))
        elif op == "receive":
            await self.receive()
        elif op == "receive_all":
            await self.receive_all()
        elif op == "cancel":
            if self.call is not None:
                self.call.cancel()
                self.cancelled_here = True
            self.finished = True
        else:
            raise ValueError(f"call {self.plan['method']}: unknown step op {op!r}")

    async def guarded(self, awaitable):
        """Awaits a write-side or header wait. An RPC error there does not end
        the steps: what the server sent before is still read by the receive
        steps, which report how the call ended."""
        try:
            return await awaitable
        except grpc.aio.AioRpcError as error:
            if self.write_error is None:
                print(f"{self.plan['method']}: {error.code()} {error.details()!r} on a write", file=sys.stderr)
                self.write_error = str(error)
        except asyncio.InvalidStateError as error:
            # grpc.aio refuses to write on a call that is over: the call's
            # status tells how it ended.
            if not self.refused_writes:
                print(f"{self.plan['method']}: {error} (said once a call)", file=sys.stderr)
            self.refused_writes += 1
        return None

    async def send(self, json_message):
        message = json_format.ParseDict(json_message, self.request_type())
        if self.mode in UNARY_REQUEST:
            self.request = message
        else:
            await self.guarded(self.bounded(self.call.write(message), "a write"))

    def invoke(self):
        if self.request is None:
            raise ValueError(f"call {self.plan['method']}: half_close without a request before it")
        self.call = self.multicallable()(self.request, **self.kwargs)

    async def receive(self):
        if self.call is None or self.finished:
            return
        try:
            if self.mode in (UNARY, CLIENT_STREAMING):
                response = await self.bounded(self.call, "the response")
                # grpc.aio gives None for an OK answer without a message.
                if response is not None:
                    self.messages.append(response)
                self.finished = True
                return
            message = await self.bounded(self.call.read(), "a response")
        except grpc.aio.AioRpcError as error:
            return self.end(error)
        if message is grpc.aio.EOF:
            self.finished = True
        else:
            self.messages.append(message)

    async def receive_all(self):
        while self.call is not None and not self.finished:
            await self.receive()

    def end(self, error):
        self.finished = True
        self.error = str(error)

    async def report(self):
        """The report entry, from what the call object says once it is over."""
        if self.call is None:
            return {"headers": None, "messages": [], "trailers": [],
                    "status": {"code": grpc.StatusCode.UNKNOWN.value[0], "message": ""},
                    "error": self.error or "the call was never invoked"}
        try:
            # The call is over or cancelled by now: its status is due at once.
            code = await asyncio.wait_for(self.call.code(), STATUS_AFTER_CANCEL_S)
            details = await self.call.details()
        except asyncio.TimeoutError:
            code, details = grpc.StatusCode.UNKNOWN, ""
            self.error = (self.error or "") + "; no status came after call.cancel()"
        if code != grpc.StatusCode.OK and self.error is None:
            self.error = self.write_error or (
                f"{code} {details!r}" + (" (call.cancel())" if self.cancelled_here else "")
            )
        return {
            "headers": metadata_pairs(await self.call.initial_metadata()),
            "messages": [
                json_format.MessageToDict(m, preserving_proto_field_name=True) for m in self.messages
            ],
            "trailers": metadata_pairs(await self.call.trailing_metadata()) or [],
            "status": {"code": code.value[0], "message": details or ""},
            "error": self.error,
        }


def channel_options(channel):
    options = []
    keepalive = channel.get("keepalive")
    if keepalive is not None:
        options += [
            ("grpc.keepalive_time_ms", keepalive["time_ms"]),
            ("grpc.keepalive_timeout_ms", keepalive["timeout_ms"]),
            ("grpc.keepalive_permit_without_calls", 1 if keepalive["permit_without_stream"] else 0),
        ]
    if channel.get("max_receive_message_bytes") is not None:
        options.append(("grpc.max_receive_message_length", channel["max_receive_message_bytes"]))
    return options


async def run(plan):
    give_up_at = time.monotonic() + plan["timeout_ms"] / 1000
    types = method_types()
    options = channel_options(plan.get("channel") or {})
    async with grpc.aio.insecure_channel(plan["target"], options=options) as channel:
        calls = [Call(c, channel, types, give_up_at) for c in plan["calls"]]
        if plan.get("concurrent"):
            reports = await asyncio.gather(*(call.run() for call in calls))
        else:
            reports = [await call.run() for call in calls]
    return {"version": INTERFACE_VERSION, "client": f"grpcio/{grpc.__version__}", "calls": list(reports)}


def main():
    plan = json.load(sys.stdin)
    if plan.get("version") != INTERFACE_VERSION:
        sys.exit(f"the plan's version is {plan.get('version')}; this client speaks {INTERFACE_VERSION}")
    print(f"fixture {plan['fixture']}: {len(plan['calls'])} call(s) to {plan['target']}", file=sys.stderr)
    report = asyncio.run(run(plan))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
