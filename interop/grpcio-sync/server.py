"""The grpcio-sync peer: the contract (docs/contract.md) on grpcio's
synchronous server (grpc.server with a thread pool), the API the Python peer
(grpc.aio) does not use.

Run by ./start PORT; prints the readiness line the interop runner waits for
and stops on SIGTERM."""

import signal
import sys
import threading
from concurrent import futures

import grpc

import chat_pb2_grpc
import greeter_pb2_grpc
import observer_pb2_grpc
import sensor_pb2_grpc
from handlers import CallRegistry, ChatService, Greeter, Observer, SensorService

# Handler threads; a call waits for a free thread when all are busy (grpcio
# queues it). More workers than the 200 calls a stream-limit fixture holds open, so that
# fixture does not starve the calls of the fixtures running beside it.
MAX_WORKERS = 256
# Calls in flight get this long to finish after SIGTERM.
STOP_GRACE_S = 1.0


def serve(port):
    registry = CallRegistry()
    # grpcio's defaults otherwise: 4 MiB receive limit, gzip and deflate
    # accepted on requests, responses uncompressed unless a call asks.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=MAX_WORKERS))
    chat_pb2_grpc.add_ChatServiceServicer_to_server(ChatService(registry), server)
    greeter_pb2_grpc.add_GreeterServicer_to_server(Greeter(registry), server)
    sensor_pb2_grpc.add_SensorServiceServicer_to_server(SensorService(registry), server)
    observer_pb2_grpc.add_ObserverServicer_to_server(Observer(registry), server)
    address = f"127.0.0.1:{port}"
    if server.add_insecure_port(address) == 0:
        raise SystemExit(f"grpcio-sync peer: cannot listen on {address}")
    server.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"listening on {address}", flush=True)
    stop.wait()
    server.stop(STOP_GRACE_S).wait(STOP_GRACE_S + 1)


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        raise SystemExit("usage: server.py PORT")
    serve(int(sys.argv[1]))


if __name__ == "__main__":
    main()
