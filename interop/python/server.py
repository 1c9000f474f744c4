"""The Python peer: the contract (CONTRACT.md) on grpcio's asyncio server.

Run by ./start PORT with out/gen on the path; prints the readiness line the
interop runner waits for and stops on SIGTERM."""

import asyncio
import signal
import sys

from grpc import aio

import chat_pb2_grpc
import greeter_pb2_grpc
import observer_pb2_grpc
import sensor_pb2_grpc
from calls import CallRegistry
from services import ChatService, Greeter, Observer, SensorService

# Calls in flight get this long to finish after SIGTERM.
STOP_GRACE_S = 1.0


async def serve(port):
    registry = CallRegistry()
    # grpcio's defaults throughout: 4 MiB messages, gzip and deflate accepted on
    # requests, responses uncompressed unless a call asks (control.Call.begin).
    server = aio.server()
    chat_pb2_grpc.add_ChatServiceServicer_to_server(ChatService(registry), server)
    greeter_pb2_grpc.add_GreeterServicer_to_server(Greeter(registry), server)
    sensor_pb2_grpc.add_SensorServiceServicer_to_server(SensorService(registry), server)
    observer_pb2_grpc.add_ObserverServicer_to_server(Observer(registry), server)
    address = f"127.0.0.1:{port}"
    if server.add_insecure_port(address) == 0:
        raise SystemExit(f"python peer: cannot listen on {address}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on {address}", flush=True)
    await stop.wait()
    await server.stop(STOP_GRACE_S)


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        raise SystemExit("usage: server.py PORT")
    asyncio.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
