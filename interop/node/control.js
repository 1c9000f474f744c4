'use strict';
// One call as the contract scripts it: the control headers of CONTRACT.md
// section 3 applied around the handler's reads and writes, the CallRecord kept
// up to date as it goes (section 4), and grpc-js's four handler shapes wrapped
// so every method body is a plain async function.

const grpc = require('@grpc/grpc-js');
const { Outcome } = require('./calls');

// Ends the call with a status of the handler's own.
class Fail extends Error {
  // scripted: the x-conform-fail-after status, which carries the scripted details.
  constructor(code, message, scripted = false) {
    super(message);
    this.code = code;
    this.scripted = scripted;
  }
}

// The call was reset or ran out of time; the body stops at its next step.
class Cancelled extends Error {}

// How early grpc-js may end a call for its deadline, by our clock (see onCancelled).
const DEADLINE_SLACK_MS = 5;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Longest pause a header may ask for, as the reference bounds it.
const MAX_PAUSE_MS = 600000;
const U32_MAX = 4294967295;
// Largest x-conform-response-size, as the reference bounds it (16 MiB).
const MAX_RESPONSE_SIZE = 16 * 1024 * 1024;

function controlError(name, value, reason) {
  return new Fail(grpc.status.INVALID_ARGUMENT,
    `control header ${name}: ${reason} (got ${JSON.stringify(value)})`);
}

function textHeader(metadata, name) {
  const values = metadata.get(name);
  return values.length === 0 ? null : String(values[0]);
}

// A control header holding a decimal u32 (spaces around tolerated); null when
// absent. Malformed is INVALID_ARGUMENT naming the header, as the reference
// answers, so a fixture's typo never passes as "absent".
function number(metadata, name) {
  const value = textHeader(metadata, name);
  if (value === null) return null;
  const text = value.trim();
  if (!/^[0-9]+$/.test(text) || Number(text) > U32_MAX) {
    throw controlError(name, value, 'expected a decimal integer from 0 to 4294967295');
  }
  return Number(text);
}

function pause(metadata, name) {
  const ms = number(metadata, name) || 0;
  if (ms > MAX_PAUSE_MS) {
    throw controlError(name, textHeader(metadata, name), 'pauses above 600000 ms are refused');
  }
  return ms;
}

// Lenient percent-decoding, as the reference does: a % not followed by two hex
// digits stays as it is, so plain text may be sent as it is.
function percentDecode(value) {
  const raw = Buffer.from(value, 'latin1');
  const out = [];
  for (let i = 0; i < raw.length; i += 1) {
    const hex = raw.subarray(i + 1, i + 3).toString('latin1');
    if (raw[i] === 0x25 && /^[0-9a-fA-F]{2}$/.test(hex)) {
      out.push(parseInt(hex, 16));
      i += 2;
    } else {
      out.push(raw[i]);
    }
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(out));
}

class Call {
  // stream: grpc-js's call object (ServerUnaryCall, ServerReadableStream, ...).
  constructor(registry, method, stream) {
    const md = stream.metadata;
    this.stream = stream;
    // grpc-js drops grpc-encoding from the metadata but keeps it on its
    // internal call object (read-only use; the version is pinned in
    // package-lock.json).
    const encoding = (stream.call && stream.call.incomingEncoding) || 'identity';
    this.state = registry.open(method, md, encoding === 'identity' ? '' : encoding,
      stream.getDeadline());
    this.deadline = stream.getDeadline();
    // Parsed in begin(), where a malformed header can end the call.
    this.responseCount = null;
    this.intervalMs = 0;
    this.delayMs = 0;
    this.failAfter = null;
    this.failCode = grpc.status.UNKNOWN;
    this.failMessage = '';
    this.closeAfter = null;
    // Every value of a repeated echo header, in order.
    this.echoInitial = md.get('x-grpc-test-echo-initial').map(String);
    this.responseSize = null;
    this.failDetails = null;
    this.trailers = new grpc.Metadata();
    for (const value of md.get('x-grpc-test-echo-trailing-bin')) {
      this.trailers.add('x-grpc-test-echo-trailing-bin', value);
    }
    this.unaryPrepared = false;
    this.cancelled = false;
    this.queue = [];
    this.ended = false;
    this.waiter = null;
    this.whenCancelled = new Promise((resolve) => { this.cancelledNow = resolve; });
    stream.on('cancelled', () => this.onCancelled());
  }

  // grpc-js reports the end of every stream as 'cancelled', also after the
  // handler sent its status; the first ending wins, so only a call still
  // running becomes CANCELLED, or DEADLINE_EXCEEDED once its deadline passed.
  onCancelled() {
    this.cancelled = true;
    const at = this.deadline instanceof Date ? this.deadline.getTime() : Number(this.deadline);
    // grpc-js's deadline timer is a setTimeout from libuv's cached loop time,
    // which can fire a millisecond or two before Date.now() reaches the
    // deadline it computed: without this slack a deadline was now and then
    // recorded as CANCELLED.
    if (Number.isFinite(at) && Date.now() + DEADLINE_SLACK_MS >= at) {
      this.state.finish(Outcome.DEADLINE_EXCEEDED, grpc.status.DEADLINE_EXCEEDED);
    } else {
      this.state.finish(Outcome.CANCELLED, grpc.status.CANCELLED);
    }
    this.wake();
    this.cancelledNow();
  }

  // What happens before the body: the echoed response header, then the
  // control headers. grpc-js never compresses responses, so
  // x-conform-response-encoding has no effect.
  begin() {
    if (this.echoInitial.length > 0) {
      const md = new grpc.Metadata();
      for (const value of this.echoInitial) md.add('x-grpc-test-echo-initial', value);
      this.stream.sendMetadata(md);
    }
    this.parseControl();
  }

  // The handler-side control headers, with the reference's rules; fail-code
  // and fail-message are read only with fail-after.
  parseControl() {
    const md = this.stream.metadata;
    this.responseCount = number(md, 'x-conform-response-count');
    this.intervalMs = pause(md, 'x-conform-response-interval-ms');
    this.delayMs = pause(md, 'x-conform-delay-ms');
    this.failAfter = number(md, 'x-conform-fail-after');
    if (this.failAfter !== null) {
      const code = number(md, 'x-conform-fail-code');
      if (code !== null && code > 16) {
        throw controlError('x-conform-fail-code', textHeader(md, 'x-conform-fail-code'),
          'expected a gRPC status code from 0 to 16');
      }
      this.failCode = code === null ? grpc.status.UNKNOWN : code;
      const message = textHeader(md, 'x-conform-fail-message') || '';
      try {
        this.failMessage = percentDecode(message);
      } catch (err) {
        throw controlError('x-conform-fail-message', message, 'percent-decodes to invalid UTF-8');
      }
    }
    this.closeAfter = number(md, 'x-conform-close-after-requests');
    this.responseSize = number(md, 'x-conform-response-size');
    if (this.responseSize !== null && this.responseSize > MAX_RESPONSE_SIZE) {
      throw controlError('x-conform-response-size', textHeader(md, 'x-conform-response-size'),
        'sizes above 16777216 bytes are refused');
    }
    // grpc-js hands -bin values over as Buffers, already base64-decoded
    // (padded or not).
    const details = md.get('x-conform-fail-details-bin');
    if (this.failAfter !== null && details.length > 0) this.failDetails = Buffer.from(details[0]);
  }

  // text padded at its end with x to x-conform-response-size UTF-8 bytes; a
  // longer text is left as it is.
  pad(text) {
    if (this.responseSize === null) return text;
    const missing = this.responseSize - Buffer.byteLength(text, 'utf8');
    return missing > 0 ? text + 'x'.repeat(missing) : text;
  }

  // fail-after 0: the scripted status after delay-ms, before anything else
  // (before any request is read).
  async failAtStart() {
    if (this.failAfter === 0) {
      if (this.delayMs > 0) await sleep(this.delayMs);
      if (this.cancelled) throw new Cancelled();
      throw new Fail(this.failCode, this.failMessage, true);
    }
  }

  // Reading client streams: each message is taken off the stream one at a time
  // (the stream is paused between reads, so grpc-js only pulls what the body
  // asked for plus its own read-ahead).
  listen() {
    this.stream.on('data', (message) => {
      this.queue.push(message);
      this.stream.pause();
      this.wake();
    });
    this.stream.on('end', () => { this.ended = true; this.wake(); });
    this.stream.on('error', () => { this.wake(); });
    this.stream.pause();
  }

  wake() {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w();
    }
  }

  // The next request, or null at the client's half-close.
  async read() {
    for (;;) {
      if (this.cancelled) throw new Cancelled();
      if (this.queue.length > 0) {
        this.state.requestRead();
        return this.queue.shift();
      }
      if (this.ended) {
        this.state.halfClose();
        return null;
      }
      await new Promise((resolve) => {
        this.waiter = resolve;
        this.stream.resume();
      });
    }
  }

  readsExhausted() {
    return this.closeAfter !== null && this.state.record.requests_received >= this.closeAfter;
  }

  // Requests until half-close or close-after-requests.
  async readAll() {
    const messages = [];
    while (!this.readsExhausted()) {
      const message = await this.read();
      if (message === null) break;
      messages.push(message);
    }
    return messages;
  }

  // delay-ms before the first response, response-interval-ms before each
  // later one.
  async beforeResponse() {
    const sent = this.state.record.responses_sent;
    const ms = sent === 0 ? this.delayMs : this.intervalMs;
    if (ms > 0) await sleep(ms);
    if (this.cancelled) throw new Cancelled();
  }

  // beforeResponse for the one response of a unary-response method; a body may
  // call it early, and the wrapper then does not pause twice. fail-after N > 0
  // changes nothing for a single response, as in the reference.
  async beforeUnaryResponse() {
    if (!this.unaryPrepared) {
      this.unaryPrepared = true;
      await this.beforeResponse();
    }
  }

  // One streamed response, after its pause; waits for the stream to drain so a
  // slow client holds the body back instead of filling memory. fail-after N
  // ends the call right after the N-th.
  async write(message) {
    await this.beforeResponse();
    const flushed = new Promise((resolve) => this.stream.write(message, resolve));
    this.state.responseSent();
    // A reset stream never calls back.
    await Promise.race([flushed, this.whenCancelled]);
    if (this.cancelled) throw new Cancelled();
    if (this.failAfter && this.state.record.responses_sent === this.failAfter) {
      throw new Fail(this.failCode, this.failMessage, true);
    }
  }

  // The status object grpc-js sends for a failure, trailers included.
  failure(err) {
    if (err instanceof Fail) {
      this.state.finish(Outcome.COMPLETED, err.code);
      let metadata = this.trailers;
      if (err.scripted && this.failDetails !== null) {
        metadata = this.trailers.clone();
        metadata.set('grpc-status-details-bin', this.failDetails);
      }
      return { code: err.code, details: err.message, metadata };
    }
    this.state.finish(Outcome.COMPLETED, grpc.status.UNKNOWN);
    return { code: grpc.status.UNKNOWN, details: `handler failed: ${err.message}`, metadata: this.trailers };
  }
}

// Handlers for the four shapes; body(call, request) for unary requests,
// body(call) for client streams. Unary responses are returned by the body.

function unaryResponse(registry, method, body, streamingRequest) {
  return (stream, callback) => {
    const call = new Call(registry, method, stream);
    if (streamingRequest) call.listen();
    // grpc-js runs unary handlers at the half-close, with the request.
    else { call.state.requestRead(); call.state.halfClose(); }
    (async () => {
      call.begin();
      const response = await body(call, stream.request);
      await call.beforeUnaryResponse();
      call.state.responseSent();
      call.state.finish(Outcome.COMPLETED, grpc.status.OK);
      callback(null, response, call.trailers);
    })().catch((err) => {
      if (err instanceof Cancelled) return; // grpc-js already ended the call.
      callback(call.failure(err));
    });
  };
}

function streamResponse(registry, method, body, streamingRequest) {
  return (stream) => {
    const call = new Call(registry, method, stream);
    if (streamingRequest) call.listen();
    else { call.state.requestRead(); call.state.halfClose(); }
    (async () => {
      call.begin();
      await body(call, stream.request);
      call.state.finish(Outcome.COMPLETED, grpc.status.OK);
      stream.end(call.trailers);
    })().catch((err) => {
      if (err instanceof Cancelled) return;
      // grpc-js ends a writable server stream with the status of an 'error'.
      stream.emit('error', call.failure(err));
    });
  };
}

module.exports = {
  Fail,
  unary: (registry, method, body) => unaryResponse(registry, method, body, false),
  clientStream: (registry, method, body) => unaryResponse(registry, method, body, true),
  serverStream: (registry, method, body) => streamResponse(registry, method, body, false),
  bidi: (registry, method, body) => streamResponse(registry, method, body, true),
};
