'use strict';
// The connect-node peer: the contract (docs/contract.md) on
// @connectrpc/connect-node, serving the gRPC protocol on Node's own http2
// module (not grpc-js). The services' descriptors come from out/contract.binpb
// (a FileDescriptorSet written by ./build), so no code is generated.
//
//   node server.js PORT   -> prints "listening on 127.0.0.1:PORT"; SIGTERM stops it

const fs = require('fs');
const http2 = require('http2');
const path = require('path');
const { createFileRegistry, fromBinary } = require('@bufbuild/protobuf');
const { FileDescriptorSetSchema } = require('@bufbuild/protobuf/wkt');
const { connectNodeAdapter } = require('@connectrpc/connect-node');
const { CallRegistry } = require('./contract');
const { services } = require('./services');

// Calls in flight get this long to finish after SIGTERM.
const STOP_GRACE_MS = 1000;
// The contract's largest request message (decompressed), gRPC's default:
// Connect's own default is about 4 GiB.
const READ_MAX_BYTES = 4 * 1024 * 1024;

function main() {
  const port = process.argv[2];
  if (!/^[0-9]+$/.test(port || '')) {
    console.error('usage: node server.js PORT');
    process.exit(2);
  }
  const descriptors = createFileRegistry(
    fromBinary(FileDescriptorSetSchema, fs.readFileSync(path.join(__dirname, 'out', 'contract.binpb'))));
  const impl = services(new CallRegistry());
  // Connect's defaults otherwise; only the gRPC protocol is served (Connect
  // and gRPC-Web would answer the same paths in their own ways).
  const handler = connectNodeAdapter({
    grpc: true, grpcWeb: false, connect: false,
    readMaxBytes: READ_MAX_BYTES,
    routes(router) {
      router.service(descriptors.getService('ChatService'), impl.chat);
      router.service(descriptors.getService('Greeter'), impl.greeter);
      router.service(descriptors.getService('SensorService'), impl.sensor);
      router.service(descriptors.getService('conform.v1.Observer'), impl.observer);
    },
  });
  const server = http2.createServer(handler);
  server.listen(Number(port), '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
  const stop = () => {
    server.close();
    setTimeout(() => process.exit(0), STOP_GRACE_MS).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
