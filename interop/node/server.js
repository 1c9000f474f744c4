'use strict';
// The Node peer: the contract (CONTRACT.md) on @grpc/grpc-js. Run by
// ./start PORT; prints the readiness line the interop runner waits for and
// stops on SIGTERM.

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { CallRegistry } = require('./calls');
const { services } = require('./services');

const PROTO_DIR = path.join(__dirname, '..', '..', 'proto');

// Calls in flight get this long to finish after SIGTERM.
const STOP_GRACE_MS = 1000;

function load() {
  // Field names as in the .proto (keepCase); int64 as strings, enums as names:
  // proto-loader's usual choices for exact round trips.
  const definition = protoLoader.loadSync(
    ['chat.proto', 'greeter.proto', 'sensor.proto', 'observer.proto'],
    { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: true },
  );
  return grpc.loadPackageDefinition(definition);
}

function main() {
  const port = process.argv[2];
  if (!/^\d+$/.test(port || '')) {
    console.error('usage: server.js PORT');
    process.exit(2);
  }
  const proto = load();
  const impl = services(new CallRegistry());
  // grpc-js defaults throughout: 4 MiB messages, gzip and deflate accepted on
  // requests; it has no response compression.
  const server = new grpc.Server();
  server.addService(proto.ChatService.service, impl.chat);
  server.addService(proto.Greeter.service, impl.greeter);
  server.addService(proto.SensorService.service, impl.sensor);
  server.addService(proto.conform.v1.Observer.service, impl.observer);
  const address = `127.0.0.1:${port}`;
  server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) {
      console.error(`node peer: cannot listen on ${address}: ${err.message}`);
      process.exit(1);
    }
    console.log(`listening on ${address}`);
  });
  const stop = () => {
    const force = setTimeout(() => server.forceShutdown(), STOP_GRACE_MS);
    server.tryShutdown(() => { clearTimeout(force); process.exit(0); });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
