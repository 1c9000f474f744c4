"""The Python peer: the contract (CONTRACT.md) on grpcio's asyncio server.

Run by ./start PORT with out/gen on the path; prints the readiness line the
interop runner waits for and stops on SIGTERM. `--reflection` adds
grpcio-reflection (which serves reflection v1alpha), `--tls-cert` and
`--tls-key` serve TLS instead of h2c."""

import argparse
import asyncio
import signal

from grpc import aio

import chat_pb2_grpc
import greeter_pb2_grpc
import observer_pb2_grpc
import sensor_pb2_grpc
from calls import CallRegistry
from services import ChatService, Greeter, Observer, SensorService

# Calls in flight get this long to finish after SIGTERM.
STOP_GRACE_S = 1.0


async def serve(port, reflection, tls):
    registry = CallRegistry()
    # grpcio's defaults throughout: 4 MiB messages, gzip and deflate accepted on
    # requests, responses uncompressed unless a call asks (control.Call.begin).
    server = aio.server()
    chat_pb2_grpc.add_ChatServiceServicer_to_server(ChatService(registry), server)
    greeter_pb2_grpc.add_GreeterServicer_to_server(Greeter(registry), server)
    sensor_pb2_grpc.add_SensorServiceServicer_to_server(SensorService(registry), server)
    observer_pb2_grpc.add_ObserverServicer_to_server(Observer(registry), server)
    if reflection:
        from grpc_reflection.v1alpha import reflection as grpc_reflection

        names = [
            "ChatService",
            "Greeter",
            "SensorService",
            "conform.v1.Observer",
            grpc_reflection.SERVICE_NAME,
        ]
        grpc_reflection.enable_server_reflection(names, server)
    address = f"127.0.0.1:{port}"
    if tls:
        import grpc

        with open(tls[0], "rb") as cert, open(tls[1], "rb") as key:
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
        bound = server.add_secure_port(address, credentials)
    else:
        bound = server.add_insecure_port(address)
    if bound == 0:
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
    parser = argparse.ArgumentParser(description="the contract on grpcio")
    parser.add_argument("port", type=int)
    parser.add_argument("--reflection", action="store_true", help="serve grpcio-reflection")
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve TLS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    asyncio.run(serve(args.port, args.reflection, tls))


if __name__ == "__main__":
    main()
