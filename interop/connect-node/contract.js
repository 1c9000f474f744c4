'use strict';
// One call as the contract scripts it, on @connectrpc/connect: the control
// headers of docs/contract.md section 3 applied around the handler's reads and
// writes, the CallRecord kept up to date as it goes (section 4), and the
// registry behind Observer.GetCall.

const { Code, ConnectError } = require('@connectrpc/connect');

const CALL_ID_HEADER = 'x-conform-call-id';
// Calls kept at most, oldest dropped first.
const MAX_KEPT_CALLS = 10000;
// Longest pause a header may ask for, as the reference bounds it.
const MAX_PAUSE_MS = 600000;
// The largest x-conform-response-size (16 MiB).
const MAX_RESPONSE_SIZE = 16 * 1024 * 1024;
const U32_MAX = 4294967295;
// How long a request stream that ended waits for a reset to show: Node ends
// the request body before it reports the stream's abort.
const CANCEL_GRACE_MS = 5;
// conform.v1.Outcome.
const Outcome = { COMPLETED: 1, CANCELLED: 2, DEADLINE_EXCEEDED: 3, RUNNING: 4 };
const TIMEOUT_UNITS_MS = { H: 3600000, M: 60000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** Ends the call with a status of the handler's own. */
class Fail extends Error {
  constructor(code, message, details) {
    super(message || '');
    this.code = code;
    this.details = details;
  }
}

const quoted = (value) => JSON.stringify(value);

function controlError(name, value, reason) {
  return new Fail(Code.InvalidArgument, `control header ${name}: ${reason} (got ${quoted(value)})`);
}

/** A control header holding a decimal u32 (spaces around tolerated); null when absent. */
function number(headers, name) {
  const value = headers.get(name);
  if (value === null) return null;
  const text = value.trim();
  if (!/^[0-9]+$/.test(text) || Number(text) > U32_MAX) {
    throw controlError(name, value, 'expected a decimal integer from 0 to 4294967295');
  }
  return Number(text);
}

function pauseMs(headers, name) {
  const ms = number(headers, name) || 0;
  if (ms > MAX_PAUSE_MS) throw controlError(name, headers.get(name), 'pauses above 600000 ms are refused');
  return ms;
}

/** Lenient percent-decoding, as the reference: a % not followed by two hex digits stays. */
function percentDecode(value) {
  const raw = Buffer.from(value, 'utf8');
  const out = [];
  for (let i = 0; i < raw.length; i++) {
    const hex = raw.subarray(i + 1, i + 3).toString('latin1');
    if (raw[i] === 0x25 && /^[0-9a-fA-F]{2}$/.test(hex)) {
      out.push(parseInt(hex, 16));
      i += 2;
    } else {
      out.push(raw[i]);
    }
  }
  const decoded = new TextDecoder('utf-8', { fatal: true });
  return decoded.decode(Buffer.from(out));
}

/** text padded at its end with "x" to size UTF-8 bytes (longer is left); null leaves it. */
function padded(text, size) {
  if (size === null) return text;
  const missing = size - Buffer.byteLength(text, 'utf8');
  return missing > 0 ? text + 'x'.repeat(missing) : text;
}

/** grpc-timeout in whole milliseconds, rounded up; 0 when absent. */
function timeoutMs(headers) {
  const value = headers.get('grpc-timeout');
  const match = value && /^([0-9]{1,8})([HMSmun])$/.exec(value);
  return match ? BigInt(Math.ceil(Number(match[1]) * TIMEOUT_UNITS_MS[match[2]])) : 0n;
}

/** Calls that carried x-conform-call-id, by id. */
class CallRegistry {
  constructor() {
    this.calls = new Map();
  }

  open(method, headers) {
    const metadata = {};
    for (const [key, value] of headers) {
      if (key.startsWith('x-')) metadata[key] = value;
    }
    const state = {
      record: {
        callId: headers.get(CALL_ID_HEADER) || '', method, requestsReceived: 0, halfCloseReceived: false,
        outcome: Outcome.RUNNING, statusCode: 0, responsesSent: 0,
        requestEncoding: headers.get('grpc-encoding') || '', timeoutMs: timeoutMs(headers), metadata,
      },
      waiters: [],
    };
    if (state.record.callId) {
      this.calls.delete(state.record.callId);
      this.calls.set(state.record.callId, state);
      while (this.calls.size > MAX_KEPT_CALLS) this.calls.delete(this.calls.keys().next().value);
    }
    return state;
  }

  /** The first ending wins: a handler that ends after a reset stays CANCELLED. */
  static finish(state, outcome, statusCode) {
    if (state.record.outcome !== Outcome.RUNNING) return;
    state.record.outcome = outcome;
    state.record.statusCode = statusCode;
    for (const wake of state.waiters.splice(0)) wake();
  }

  /** A copy of call_id's record after up to waitMs for it to settle; null when unknown. */
  async get(callId, waitMs) {
    const state = this.calls.get(callId);
    if (!state) return null;
    if (state.record.outcome === Outcome.RUNNING && waitMs > 0) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        state.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
    return { ...state.record, metadata: { ...state.record.metadata } };
  }
}

/** Sleeps ms, or less when signal aborts. */
function sleep(ms, signal) {
  if (!ms || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve(); };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

module.exports = {
  CANCEL_GRACE_MS, CallRegistry, ConnectError, Fail, MAX_RESPONSE_SIZE, Outcome,
  controlError, number, padded, pauseMs, percentDecode, quoted, sleep,
};
