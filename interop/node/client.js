'use strict';
// The grpc-js client under test (docs/clients.md): reads a plan on stdin,
// runs its calls on one grpc.Client (one channel), prints the report on
// stdout. Messages go through proto-loader's serializers of each method.

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const INTERFACE_VERSION = 1;
const PROTO_DIR = path.join(__dirname, '..', '..', 'proto');
const UNARY_REQUEST = new Set(['unary', 'server_streaming']);
const ONE_RESPONSE = new Set(['unary', 'client_streaming']);
// After giving up on a call (cancelled), how long its status may take to come.
const STATUS_AFTER_CANCEL_MS = 500;
const EXIT_LINGER_MS = 200;

class GaveUp extends Error {}

/** `/Service/Method` -> proto-loader's method definition. */
function loadMethods() {
  const definition = protoLoader.loadSync(
    ['chat.proto', 'greeter.proto', 'sensor.proto', 'observer.proto'],
    { keepCase: true, longs: String, enums: String, bytes: String, defaults: false, includeDirs: [PROTO_DIR] },
  );
  const methods = new Map();
  for (const service of Object.values(definition)) {
    if (service.format) continue; // a message or enum type, not a service
    for (const method of Object.values(service)) methods.set(method.path, method);
  }
  return methods;
}

/** A method the protos lack (an UNIMPLEMENTED probe): empty messages both ways. */
const UNKNOWN_METHOD = {
  requestSerialize: () => Buffer.alloc(0),
  responseDeserialize: () => ({}),
  responseType: { type: { field: [] } },
};

/** The shortest decimal that is the same float32 (as proto3 JSON prints a float). */
function shortestFloat(value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return value;
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(value.toPrecision(digits));
    if (Math.fround(candidate) === value) return candidate;
  }
  return value;
}

/** The response object as proto3 JSON: float fields printed as float32. */
function responseJson(method, message) {
  for (const field of method.responseType.type.field) {
    if (field.type !== 'TYPE_FLOAT' || !(field.name in message)) continue;
    const value = message[field.name];
    message[field.name] = Array.isArray(value) ? value.map(shortestFloat) : shortestFloat(value);
  }
  return message;
}

/** `template` with every `{i}` in its strings replaced by `number`. */
function expand(template, number) {
  if (typeof template === 'string') return template.split('{i}').join(String(number));
  if (Array.isArray(template)) return template.map((item) => expand(item, number));
  if (template !== null && typeof template === 'object') {
    return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, expand(v, number)]));
  }
  return template;
}

function requestMetadata(pairs) {
  const metadata = new grpc.Metadata();
  for (const [name, value] of pairs || []) {
    metadata.add(name, name.endsWith('-bin') ? Buffer.from(value, 'base64') : value);
  }
  return metadata;
}

/** grpc-js metadata as report pairs, every value of a key, Buffers in base64. */
function metadataPairs(metadata) {
  const pairs = [];
  for (const [key, values] of Object.entries(metadata.toJSON())) {
    for (const value of values) pairs.push([key, Buffer.isBuffer(value) ? value.toString('base64') : value]);
  }
  return pairs;
}

/** One planned call and what grpc-js surfaced of it. */
class Call {
  constructor(plan, client, methods, giveUpAt) {
    this.plan = plan;
    this.client = client;
    this.method = methods.get(plan.method) || UNKNOWN_METHOD;
    this.giveUpAt = giveUpAt;
    this.request = undefined;
    this.call = undefined;
    this.headers = null;
    this.messages = [];
    this.single = undefined; // the one response of unary and client streaming
    this.status = undefined;
    // The error the callback of a unary or client-streaming call got: what the
    // application is told of the call's end (see report()).
    this.callbackError = null;
    this.error = null;
    this.gaveUp = null; // why this client cancelled the call itself
    this.over = false;
    this.wakers = new Set();
  }

  /** Every event of the call re-checks what the steps wait for. */
  wake() {
    for (const waker of this.wakers) waker();
  }

  /** Resolves once `ready()` holds; GaveUp when the plan's timeout_ms passes first. */
  until(ready, waitingFor, deadline = this.giveUpAt) {
    if (ready()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waker = () => {
        if (!ready()) return;
        clearTimeout(timer);
        this.wakers.delete(waker);
        resolve();
      };
      const timer = setTimeout(() => {
        this.wakers.delete(waker);
        reject(new GaveUp(`the plan's timeout_ms passed while waiting for ${waitingFor}`));
      }, Math.max(0, deadline - Date.now()));
      this.wakers.add(waker);
    });
  }

  options() {
    const options = {};
    if (this.plan.deadline_ms !== null && this.plan.deadline_ms !== undefined) {
      options.deadline = Date.now() + this.plan.deadline_ms;
    }
    return options;
  }

  /** Starts the call with grpc-js's API for its mode, listening to every event. */
  start() {
    const { requestSerialize, responseDeserialize } = this.method;
    const args = [this.plan.method, requestSerialize, responseDeserialize];
    const metadata = requestMetadata(this.plan.metadata);
    const done = (error, value) => {
      if (error) {
        this.error = error.message;
        this.callbackError = error;
      } else {
        this.single = value;
      }
      this.wake();
    };
    const call = {
      unary: () => this.client.makeUnaryRequest(...args, this.request, metadata, this.options(), done),
      server_streaming: () => this.client.makeServerStreamRequest(...args, this.request, metadata, this.options()),
      client_streaming: () => this.client.makeClientStreamRequest(...args, metadata, this.options(), done),
      bidi: () => this.client.makeBidiStreamRequest(...args, metadata, this.options()),
    }[this.plan.mode]();
    call.on('metadata', (headers) => { this.headers = metadataPairs(headers); this.wake(); });
    call.on('status', (status) => { this.status = status; this.wake(); });
    if (!ONE_RESPONSE.has(this.plan.mode)) {
      // The first error is the call's (a later one is a write on a call that is over).
      call.on('error', (error) => { if (this.error === null) this.error = error.message; this.wake(); });
      call.on('readable', () => this.wake());
      call.on('end', () => this.wake());
    }
    this.call = call;
  }

  async run() {
    if (!UNARY_REQUEST.has(this.plan.mode)) this.start();
    try {
      for (const step of this.plan.steps) {
        if (step.op === 'pause') {
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(step.ms, this.giveUpAt - Date.now()))));
        } else if (!this.over) {
          await this.step(step);
        }
      }
      if (!this.call && this.request !== undefined) this.start();
      await this.receiveAll();
      if (this.call) await this.until(() => this.status !== undefined, 'the status');
    } catch (error) {
      if (!(error instanceof GaveUp)) throw error;
      process.stderr.write(`${this.plan.method}: ${error.message}\n`);
      this.gaveUp = error.message;
      if (this.call) {
        this.call.cancel();
        await this.until(() => this.status !== undefined, 'the status after cancel()', Date.now() + STATUS_AFTER_CANCEL_MS)
          .catch((late) => process.stderr.write(`${this.plan.method}: ${late.message}\n`));
      }
    }
    return this.report();
  }

  async step(step) {
    switch (step.op) {
      case 'send': return this.send(step.message);
      case 'send_many':
        for (let number = 1; number <= step.count; number++) await this.send(expand(step.template, number));
        return undefined;
      case 'half_close':
        if (UNARY_REQUEST.has(this.plan.mode)) return this.start();
        return this.call.end();
      case 'receive_headers':
        return this.call && this.until(() => this.headers !== null || this.status !== undefined, 'the response headers');
      case 'receive': return this.receive();
      case 'receive_all': return this.receiveAll();
      case 'cancel':
        if (this.call) this.call.cancel();
        this.over = true;
        return undefined;
      default: throw new Error(`call ${this.plan.method}: unknown step op ${JSON.stringify(step.op)}`);
    }
  }

  /** Writes one request and waits for grpc-js's write callback (or the call's end). */
  async send(json) {
    if (UNARY_REQUEST.has(this.plan.mode)) {
      this.request = json;
      return;
    }
    let written = false;
    this.call.write(json, () => { written = true; this.wake(); });
    await this.until(() => written || this.status !== undefined, 'a write');
  }

  /** One response, or the end of the call. */
  async receive() {
    if (!this.call || this.over) return;
    if (ONE_RESPONSE.has(this.plan.mode)) {
      await this.until(() => this.single !== undefined || this.status !== undefined, 'the response');
      if (this.single !== undefined) this.messages.push(responseJson(this.method, this.single));
      this.over = true;
      return;
    }
    let message = null;
    await this.until(() => {
      message = this.call.read();
      return message !== null || this.call.readableEnded || this.status !== undefined;
    }, 'a response');
    if (message !== null) this.messages.push(responseJson(this.method, message));
    else this.over = true;
  }

  async receiveAll() {
    while (this.call && !this.over) await this.receive();
  }

  /**
   * The status the application got. For a unary or client-streaming call that
   * is the callback's error when there is one: grpc-js turns an OK without a
   * response message into UNIMPLEMENTED "No message received" there, while
   * its 'status' event still carries the server's OK.
   */
  applicationStatus() {
    const fromCallback = this.callbackError;
    if (fromCallback && typeof fromCallback.code === 'number') {
      return { code: fromCallback.code, details: fromCallback.details, metadata: fromCallback.metadata };
    }
    return this.status || { code: grpc.status.UNKNOWN, details: '', metadata: new grpc.Metadata() };
  }

  report() {
    if (!this.call) {
      return { headers: null, messages: [], trailers: [], status: { code: grpc.status.UNKNOWN, message: '' },
        error: this.error || 'the call was never invoked' };
    }
    const status = this.applicationStatus();
    let { code, details } = status;
    let error = this.error;
    if (typeof code !== 'number') {
      // grpc-js ends a call whose response it cannot decompress with a status
      // whose code and details are undefined: the application gets no code.
      error = `grpc-js gave the status {code: ${code}, details: ${details}}; reported as UNKNOWN`
        + (this.error ? `; its error: ${this.error}` : '');
      code = grpc.status.UNKNOWN;
      details = '';
    }
    return {
      headers: this.headers,
      messages: this.messages,
      trailers: metadataPairs(status.metadata || new grpc.Metadata()),
      status: { code, message: details || '' },
      error: this.gaveUp !== null
        ? `client gave up: ${this.gaveUp}; then grpc-js: ${error}`
        : (code === grpc.status.OK ? null : (error || `${code} ${details}`)),
    };
  }
}

/**
 * The channel's options. grpc-js compresses per channel
 * (`grpc.default_compression_algorithm`), not per call: gzip when any call
 * asks for it.
 */
function channelOptions(plan) {
  const options = {};
  const keepalive = plan.channel && plan.channel.keepalive;
  if (keepalive) {
    options['grpc.keepalive_time_ms'] = keepalive.time_ms;
    options['grpc.keepalive_timeout_ms'] = keepalive.timeout_ms;
    options['grpc.keepalive_permit_without_calls'] = keepalive.permit_without_stream ? 1 : 0;
  }
  const limit = plan.channel && plan.channel.max_receive_message_bytes;
  if (limit !== null && limit !== undefined) options['grpc.max_receive_message_length'] = limit;
  const encodings = new Set(plan.calls.map((call) => call.compression || null));
  for (const encoding of encodings) {
    if (encoding !== null && encoding !== 'gzip') throw new Error(`compression ${JSON.stringify(encoding)}: only gzip`);
  }
  if (encodings.has('gzip')) {
    options['grpc.default_compression_algorithm'] = 2; // gzip
    if (encodings.size > 1) process.stderr.write('grpc-js compresses per channel: every call of this plan is gzip\n');
  }
  return options;
}

async function run(plan) {
  const giveUpAt = Date.now() + plan.timeout_ms;
  const methods = loadMethods();
  const client = new grpc.Client(plan.target, grpc.credentials.createInsecure(), channelOptions(plan));
  const calls = plan.calls.map((call) => new Call(call, client, methods, giveUpAt));
  const reports = [];
  if (plan.concurrent) {
    reports.push(...await Promise.all(calls.map((call) => call.run())));
  } else {
    for (const call of calls) reports.push(await call.run());
  }
  // The channel is not closed: grpc-js would then close its session (a
  // GOAWAY the server may or may not answer before the process exits), a
  // race that made transcripts differ from run to run. The process exits
  // with its connection open, as the kit's own client does.
  const version = JSON.parse(fs.readFileSync(require.resolve('@grpc/grpc-js/package.json'), 'utf8')).version;
  return { version: INTERFACE_VERSION, client: `grpc-js/${version}`, calls: reports };
}

function main() {
  const plan = JSON.parse(fs.readFileSync(0, 'utf8'));
  if (plan.version !== INTERFACE_VERSION) {
    throw new Error(`the plan's version is ${plan.version}; this client speaks ${INTERFACE_VERSION}`);
  }
  process.stderr.write(`fixture ${plan.fixture}: ${plan.calls.length} call(s) to ${plan.target}\n`);
  run(plan).then(
    // Exit once grpc-js's last frames (a reset queued by a cancel just before)
    // are out: when the event loop drains, or after EXIT_LINGER_MS at most.
    (report) => process.stdout.write(`${JSON.stringify(report)}\n`, () => {
      setTimeout(() => process.exit(0), EXIT_LINGER_MS).unref();
    }),
    (error) => { process.stderr.write(`${error.stack || error}\n`); process.exit(1); },
  );
}

main();
