"""The grpclib peer: the contract (docs/contract.md) on grpclib, gRPC in pure
Python on the h2 library and asyncio (no C-core).

Run by ./start PORT; prints the readiness line the interop runner waits for
and stops on SIGTERM."""

import asyncio
import signal
import sys

from grpclib.server import Server

from contract import CallRegistry, RawStatusDetails
from services import ChatService, Greeter, Observer, SensorService

# Calls in flight get this long to finish after SIGTERM.
STOP_GRACE_S = 1.0


async def serve(port):
    registry = CallRegistry()
    handlers = [ChatService(registry), Greeter(registry), SensorService(registry), Observer(registry)]
    # grpclib's defaults, but for the status details codec: the contract's
    # fail-details-bin are bytes to send as they are, not a message grpclib
    # builds (its default codec needs googleapis-common-protos).
    server = Server(handlers, status_details_codec=RawStatusDetails())
    await server.start("127.0.0.1", port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await stop.wait()
    server.close()
    try:
        await asyncio.wait_for(server.wait_closed(), STOP_GRACE_S)
    except asyncio.TimeoutError:
        pass


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        raise SystemExit("usage: server.py PORT")
    asyncio.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
