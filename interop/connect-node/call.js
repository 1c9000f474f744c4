'use strict';
// A call in progress on @connectrpc/connect (its handler context, its record
// and its script) and the wrappers that turn a method body into a Connect
// handler for each RPC mode.

const { Code, ConnectError } = require('@connectrpc/connect');
const {
  CANCEL_GRACE_MS, CallRegistry, Fail, MAX_RESPONSE_SIZE, Outcome,
  controlError, number, pauseMs, percentDecode, sleep,
} = require('./contract');

class Call {
  constructor(registry, method, ctx) {
    this.ctx = ctx;
    this.headers = ctx.requestHeader;
    this.state = registry.open(method, this.headers);
    this.record = this.state.record;
  }

  /** Echo headers, then the control headers with the reference's rules. */
  begin() {
    const h = this.headers;
    const echo = h.get('x-grpc-test-echo-initial');
    if (echo !== null) this.ctx.responseHeader.set('x-grpc-test-echo-initial', echo);
    const echoTrailer = h.get('x-grpc-test-echo-trailing-bin');
    if (echoTrailer !== null) this.ctx.responseTrailer.set('x-grpc-test-echo-trailing-bin', echoTrailer);
    this.responseCount = number(h, 'x-conform-response-count');
    this.intervalMs = pauseMs(h, 'x-conform-response-interval-ms');
    this.delayMs = pauseMs(h, 'x-conform-delay-ms');
    this.responseSize = number(h, 'x-conform-response-size');
    if (this.responseSize !== null && this.responseSize > MAX_RESPONSE_SIZE) {
      throw controlError('x-conform-response-size', h.get('x-conform-response-size'),
        `sizes above ${MAX_RESPONSE_SIZE} bytes are refused`);
    }
    this.failAfter = number(h, 'x-conform-fail-after');
    this.scripted = null;
    if (this.failAfter !== null) {
      const code = number(h, 'x-conform-fail-code');
      if (code !== null && code > 16) {
        throw controlError('x-conform-fail-code', h.get('x-conform-fail-code'), 'expected a gRPC status code from 0 to 16');
      }
      const message = h.get('x-conform-fail-message') || '';
      let decoded;
      try {
        decoded = percentDecode(message);
      } catch (err) {
        throw controlError('x-conform-fail-message', message, 'percent-decodes to invalid UTF-8');
      }
      this.scripted = new Fail(code === null ? Code.Unknown : code, decoded, this.failDetails());
    }
    this.closeAfter = number(h, 'x-conform-close-after-requests');
  }

  /** x-conform-fail-details-bin, checked to be base64 (padded or not). */
  failDetails() {
    const value = this.headers.get('x-conform-fail-details-bin');
    if (value === null) return null;
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.replace(/=+$/, '').length % 4 === 1) {
      throw controlError('x-conform-fail-details-bin', value, 'expected base64 of a google.rpc.Status');
    }
    return Buffer.from(value, 'base64');
  }

  pause(ms) {
    return sleep(ms, this.ctx.signal);
  }

  async failAtStart() {
    if (this.failAfter === 0) {
      await this.pause(this.delayMs);
      throw this.scripted;
    }
  }

  readsExhausted() {
    return this.closeAfter !== null && this.record.requestsReceived >= this.closeAfter;
  }

  /** Requests one at a time; marks the half-close when they end cleanly.
   * Each wait for a request also ends when the call's signal aborts (the
   * deadline passed or the client reset): Connect enforces grpc-timeout only
   * through that signal, and a read it leaves pending would hold the call. */
  async *reads(requests) {
    const it = requests[Symbol.asyncIterator]();
    for (;;) {
      const next = await this.untilAborted(it.next());
      if (next.done) break;
      this.record.requestsReceived += 1;
      yield next.value;
      if (this.readsExhausted()) return;
    }
    // A reset may end the body as a half-close does; its abort follows.
    await new Promise((resolve) => setTimeout(resolve, CANCEL_GRACE_MS));
    if (!this.ctx.signal.aborted) this.record.halfCloseReceived = true;
  }

  /** promise, or the signal's reason once the call's signal aborts. */
  untilAborted(promise) {
    const signal = this.ctx.signal;
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      promise.then(
        (value) => { signal.removeEventListener('abort', onAbort); resolve(value); },
        (err) => { signal.removeEventListener('abort', onAbort); reject(err); });
    });
  }

  async readAll(requests) {
    const messages = [];
    if (this.readsExhausted()) return messages;
    for await (const message of this.reads(requests)) messages.push(message);
    return messages;
  }

  /** delay-ms before the first response, interval before each later one. */
  beforeResponse() {
    return this.pause(this.record.responsesSent === 0 ? this.delayMs : this.intervalMs);
  }

  /** Records how the call ended for the client (reset or deadline), when it did. */
  endedByClient() {
    const reason = this.ctx.signal.reason;
    const deadline = reason instanceof ConnectError && reason.code === Code.DeadlineExceeded;
    CallRegistry.finish(this.state, deadline ? Outcome.DEADLINE_EXCEEDED : Outcome.CANCELLED,
      deadline ? Code.DeadlineExceeded : Code.Canceled);
  }

  /** The ConnectError that ends the call with fail's status (and details). */
  failure(fail, unaryResponse) {
    let code = fail.code;
    if (code === 0 && unaryResponse) code = Code.Unknown; // no OK without the response
    CallRegistry.finish(this.state, Outcome.COMPLETED, code);
    if (code === 0) return null;
    if (fail.details) this.ctx.responseTrailer.set('grpc-status-details-bin', fail.details.toString('base64'));
    return new ConnectError(fail.message, code);
  }

  /** How a body's exception ends the call (rethrown as Connect's error). */
  settle(err, unaryResponse) {
    if (this.ctx.signal.aborted) {
      this.endedByClient();
      const reason = this.ctx.signal.reason;
      return reason instanceof ConnectError ? reason : err;
    }
    if (err instanceof Fail) return this.failure(err, unaryResponse);
    CallRegistry.finish(this.state, Outcome.COMPLETED, err instanceof ConnectError ? err.code : Code.Unknown);
    return err;
  }
}

/** A unary-response handler: body(call, request or requests) returns the response. */
function unaryResponse(registry, method, body) {
  return async (input, ctx) => {
    const call = new Call(registry, method, ctx);
    const single = !(input && typeof input[Symbol.asyncIterator] === 'function');
    if (single) {
      // Connect reads a unary request and its END_STREAM before the handler.
      call.record.requestsReceived = 1;
      call.record.halfCloseReceived = true;
    }
    try {
      call.begin();
      const response = await body(call, input);
      await call.beforeResponse();
      if (ctx.signal.aborted) throw ctx.signal.reason;
      call.record.responsesSent += 1;
      CallRegistry.finish(call.state, Outcome.COMPLETED, 0);
      return response;
    } catch (err) {
      throw call.settle(err, true);
    } finally {
      // A call that ended for the client without the body noticing.
      if (ctx.signal.aborted) call.endedByClient();
    }
  };
}

/** A streaming-response handler: body(call, input) yields responses. */
function streamResponse(registry, method, body) {
  return async function* handler(input, ctx) {
    const call = new Call(registry, method, ctx);
    const single = !(input && typeof input[Symbol.asyncIterator] === 'function');
    if (single) {
      call.record.requestsReceived = 1;
      call.record.halfCloseReceived = true;
    }
    try {
      call.begin();
      for await (const response of body(call, input)) {
        await call.beforeResponse();
        if (ctx.signal.aborted) throw ctx.signal.reason;
        call.record.responsesSent += 1;
        yield response;
        if (call.failAfter && call.record.responsesSent === call.failAfter) throw call.scripted;
      }
      if (ctx.signal.aborted) throw ctx.signal.reason;
      CallRegistry.finish(call.state, Outcome.COMPLETED, 0);
    } catch (err) {
      const ending = call.settle(err, false);
      if (ending) throw ending;
    } finally {
      // Connect stops pulling responses when the client resets.
      if (ctx.signal.aborted) call.endedByClient();
    }
  };
}

module.exports = { Call, streamResponse, unaryResponse };
