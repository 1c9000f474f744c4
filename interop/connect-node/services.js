'use strict';
// The contract's methods (docs/contract.md section 2) as Connect service
// implementations, each body run inside the wrappers of call.js so that the
// control headers and the Observer apply.

const { Code, ConnectError } = require('@connectrpc/connect');
const { Fail, padded, quoted } = require('./contract');
const { streamResponse, unaryResponse } = require('./call');

// GetCall waits at most this long whatever wait_ms says, as the reference.
const MAX_GET_CALL_WAIT_MS = 60000;
const now = () => BigInt(Math.floor(Date.now() / 1000));

/** The RecordSummary of readings in arrival order, padded as the call asks. */
function summarise(readings, responseSize) {
  const summary = { count: readings.length, deviceIds: [] };
  if (readings.length > 0) {
    const temperatures = readings.map((r) => r.temperature);
    summary.min = Math.min(...temperatures);
    summary.max = Math.max(...temperatures);
    summary.mean = temperatures.reduce((a, b) => a + b, 0) / readings.length;
    summary.firstTimestamp = readings[0].timestamp;
    summary.lastTimestamp = readings[readings.length - 1].timestamp;
    summary.outOfOrder = readings.filter((r, i) => i > 0 && r.timestamp < readings[i - 1].timestamp).length;
    for (const r of readings) if (!summary.deviceIds.includes(r.deviceId)) summary.deviceIds.push(r.deviceId);
  }
  if (responseSize !== null) {
    if (summary.deviceIds.length === 0) summary.deviceIds.push('');
    const last = summary.deviceIds.length - 1;
    summary.deviceIds[last] = padded(summary.deviceIds[last], responseSize);
  }
  return summary;
}

function services(registry) {
  const latest = new Map(); // device id -> last reading of a Record that ended OK
  const chat = {
    chatStream: streamResponse(registry, '/ChatService/ChatStream', async function* chatStream(call, requests) {
      await call.failAtStart();
      if (call.readsExhausted()) return;
      for await (const m of call.reads(requests)) {
        yield { user: 'server', content: padded('echo: ' + m.content, call.responseSize), timestamp: now() };
      }
    }),
  };
  const greeter = {
    sayHello: unaryResponse(registry, '/Greeter/SayHello', async (call, request) => {
      await call.failAtStart();
      return { message: padded('Hello ' + request.name, call.responseSize) };
    }),
    serverStream: streamResponse(registry, '/Greeter/ServerStream', async function* serverStream(call, request) {
      await call.failAtStart();
      const count = call.responseCount === null ? 3 : call.responseCount;
      for (let i = 1; i <= count; i++) yield { data: padded(`${request.data}-${i}`, call.responseSize) };
    }),
    clientStream: unaryResponse(registry, '/Greeter/ClientStream', async (call, requests) => {
      await call.failAtStart();
      const received = await call.readAll(requests);
      return { data: padded(received.map((r) => r.data).join(','), call.responseSize) };
    }),
    allStream: streamResponse(registry, '/Greeter/AllStream', async function* allStream(call, requests) {
      await call.failAtStart();
      if (call.readsExhausted()) return;
      for await (const r of call.reads(requests)) yield { data: padded('echo: ' + r.data, call.responseSize) };
    }),
  };
  const sensor = {
    record: unaryResponse(registry, '/SensorService/Record', async (call, requests) => {
      await call.failAtStart();
      const readings = [];
      if (!call.readsExhausted()) {
        for await (const reading of call.reads(requests)) {
          if (!reading.deviceId) {
            throw new Fail(Code.InvalidArgument, `Record: reading ${readings.length + 1} has an empty device_id`);
          }
          readings.push(reading);
        }
      }
      const summary = summarise(readings, call.responseSize);
      // Stored only once the reply is due (after delay-ms), as the reference
      // does; a call cancelled during the delay stores nothing.
      await call.beforeResponse();
      call.delayMs = 0;
      if (!call.ctx.signal.aborted) for (const r of readings) latest.set(r.deviceId, r);
      return summary;
    }),
    watch: streamResponse(registry, '/SensorService/Watch', async function* watch(call, request) {
      if (!request.deviceId) throw new Fail(Code.InvalidArgument, 'Watch: device_id must not be empty');
      await call.failAtStart();
      let count = request.limit || 3;
      if (call.responseCount !== null) count = call.responseCount;
      for (let i = 0; i < count; i++) {
        yield { timestamp: BigInt(1000 + i), temperature: 20.0 + 0.25 * i, deviceId: padded(request.deviceId, call.responseSize) };
      }
    }),
    latest: unaryResponse(registry, '/SensorService/Latest', async (call, request) => {
      if (!request.deviceId) throw new Fail(Code.InvalidArgument, 'Latest: device_id must not be empty');
      await call.failAtStart();
      const reading = latest.get(request.deviceId);
      if (!reading) throw new Fail(Code.NotFound, `Latest: no Record call stored a reading for device ${quoted(request.deviceId)}`);
      return { timestamp: reading.timestamp, temperature: reading.temperature, deviceId: padded(reading.deviceId, call.responseSize) };
    }),
  };
  const observer = {
    // Not itself recorded: a GetCall carrying the id it asks about would
    // replace the very call it looks for.
    async getCall(request) {
      const record = await registry.get(request.callId, Math.min(request.waitMs, MAX_GET_CALL_WAIT_MS));
      if (!record) throw new ConnectError(`GetCall: no call carried x-conform-call-id ${quoted(request.callId)}`, Code.NotFound);
      return record;
    },
  };
  return { chat, greeter, sensor, observer };
}

module.exports = { services };
