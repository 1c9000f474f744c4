'use strict';
// What the server observed of each call (CONTRACT.md section 4). Calls that
// carried x-conform-call-id are kept by id for Observer.GetCall, which can
// wait for a call to settle because each call resolves a promise when it ends.

const CALL_ID_HEADER = 'x-conform-call-id';

// Calls kept at most, oldest dropped first: a peer left running under a CI
// loop must not grow without bound.
const MAX_KEPT_CALLS = 10000;

// Outcome enum values of observer.proto (proto-loader gives enums as strings).
const Outcome = {
  COMPLETED: 'COMPLETED',
  CANCELLED: 'CANCELLED',
  DEADLINE_EXCEEDED: 'DEADLINE_EXCEEDED',
  RUNNING: 'RUNNING',
};

// Request headers whose names start with "x-": -bin values arrive decoded, so
// they are put back into base64, unpadded as the gRPC spec asks senders to
// (the Go and Python peers do the same); repeated keys are joined with ",".
function xHeaders(metadata) {
  const out = {};
  for (const key of Object.keys(metadata.getMap()).sort()) {
    if (!key.startsWith('x-')) continue;
    const values = metadata.get(key).map((v) =>
      Buffer.isBuffer(v) ? v.toString('base64').replace(/=+$/, '') : String(v));
    out[key] = values.join(',');
  }
  return out;
}

// The call's deadline in ms, 0 when none. grpc-js drops grpc-timeout from the
// metadata and keeps only the deadline it computed (Date.now() + timeout), so
// this is the time left when the handler starts, rounded to the nearest 10 ms
// to hide the millisecond or two grpc-js took to get there.
function timeoutMs(deadline) {
  const at = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  if (!Number.isFinite(at)) return 0;
  const left = at - Date.now();
  if (left <= 0) return 0;
  return left < 5 ? left : Math.round(left / 10) * 10;
}

// One call's record, updated by its handler.
class CallState {
  constructor(record) {
    this.record = record;
    this.done = new Promise((resolve) => { this.settle = resolve; });
  }

  get finished() {
    return this.record.outcome !== Outcome.RUNNING;
  }

  requestRead() { this.record.requests_received += 1; }

  // The client's END_STREAM reached the handler; never for a cancel.
  halfClose() { this.record.half_close_received = true; }

  responseSent() { this.record.responses_sent += 1; }

  // The first ending wins: a handler that ends after a reset stays CANCELLED.
  finish(outcome, statusCode) {
    if (this.finished) return;
    this.record.outcome = outcome;
    this.record.status_code = statusCode;
    this.settle();
  }
}

// Calls that carried x-conform-call-id, by id (a Map keeps insertion order).
class CallRegistry {
  constructor() {
    this.calls = new Map();
  }

  open(method, metadata, requestEncoding, deadline) {
    const headers = xHeaders(metadata);
    const record = {
      call_id: headers[CALL_ID_HEADER] || '',
      method,
      requests_received: 0,
      half_close_received: false,
      outcome: Outcome.RUNNING,
      status_code: 0,
      responses_sent: 0,
      request_encoding: requestEncoding,
      timeout_ms: timeoutMs(deadline),
      metadata: headers,
    };
    const state = new CallState(record);
    if (record.call_id) {
      // A rerun fixture with the same id sees its own, newest call.
      this.calls.delete(record.call_id);
      this.calls.set(record.call_id, state);
      while (this.calls.size > MAX_KEPT_CALLS) {
        this.calls.delete(this.calls.keys().next().value);
      }
    }
    return state;
  }

  // The record of callId after waiting up to waitMs for it to settle; null
  // when no call carried that id.
  async get(callId, waitMs) {
    const state = this.calls.get(callId);
    if (!state) return null;
    if (!state.finished && waitMs > 0) {
      let timer;
      // Timing out is an answer too: the record says RUNNING.
      await Promise.race([
        state.done,
        new Promise((resolve) => { timer = setTimeout(resolve, waitMs); }),
      ]);
      clearTimeout(timer);
    }
    return { ...state.record, metadata: { ...state.record.metadata } };
  }
}

module.exports = { CALL_ID_HEADER, CallRegistry, Outcome };
