'use strict';
// The contract's methods (CONTRACT.md section 2), each body run inside a
// control.js wrapper so the control headers and the Observer apply.

const grpc = require('@grpc/grpc-js');
const { Fail, unary, clientStream, serverStream, bidi } = require('./control');

// GetCall waits at most this long whatever wait_ms says, as the reference.
const MAX_GET_CALL_WAIT_MS = 60000;

// The RecordSummary of readings, in arrival order. Temperatures are proto
// floats: Math.fround keeps the sums on the float32 values the client sent.
function summarise(readings) {
  const summary = {
    count: readings.length, min: 0, max: 0, mean: 0,
    first_timestamp: 0, last_timestamp: 0, out_of_order: 0, device_ids: [],
  };
  if (readings.length === 0) return summary;
  const temps = readings.map((r) => Math.fround(r.temperature));
  summary.min = Math.min(...temps);
  summary.max = Math.max(...temps);
  let total = 0;
  for (const t of temps) total += t;
  summary.mean = total / readings.length;
  summary.first_timestamp = readings[0].timestamp;
  summary.last_timestamp = readings[readings.length - 1].timestamp;
  for (let i = 1; i < readings.length; i += 1) {
    if (BigInt(readings[i].timestamp) < BigInt(readings[i - 1].timestamp)) summary.out_of_order += 1;
  }
  for (const r of readings) {
    if (!summary.device_ids.includes(r.device_id)) summary.device_ids.push(r.device_id);
  }
  return summary;
}

function services(registry) {
  // Per device, the last reading of a Record call that ended OK.
  const latest = new Map();

  const chat = {
    ChatStream: bidi(registry, '/ChatService/ChatStream', async (call) => {
      await call.failAtStart();
      while (!call.readsExhausted()) {
        const message = await call.read();
        if (message === null) break;
        await call.write({
          user: 'server',
          content: call.pad(`echo: ${message.content}`),
          timestamp: String(Math.floor(Date.now() / 1000)),
        });
      }
    }),
  };

  const greeter = {
    SayHello: unary(registry, '/Greeter/SayHello', async (call, request) => {
      await call.failAtStart();
      return { message: call.pad(`Hello ${request.name}`) };
    }),
    ServerStream: serverStream(registry, '/Greeter/ServerStream', async (call, request) => {
      await call.failAtStart();
      const count = call.responseCount === null ? 3 : call.responseCount;
      for (let i = 1; i <= count; i += 1) {
        await call.write({ data: call.pad(`${request.data}-${i}`) });
      }
    }),
    ClientStream: clientStream(registry, '/Greeter/ClientStream', async (call) => {
      await call.failAtStart();
      const received = await call.readAll();
      return { data: call.pad(received.map((r) => r.data).join(',')) };
    }),
    AllStream: bidi(registry, '/Greeter/AllStream', async (call) => {
      await call.failAtStart();
      while (!call.readsExhausted()) {
        const request = await call.read();
        if (request === null) break;
        await call.write({ data: call.pad(`echo: ${request.data}`) });
      }
    }),
  };

  const sensor = {
    Record: clientStream(registry, '/SensorService/Record', async (call) => {
      await call.failAtStart();
      const readings = [];
      while (!call.readsExhausted()) {
        const reading = await call.read();
        if (reading === null) break;
        if (!reading.device_id) {
          throw new Fail(grpc.status.INVALID_ARGUMENT,
            `Record: reading ${readings.length + 1} has an empty device_id`);
        }
        readings.push(reading);
      }
      const summary = summarise(readings);
      // Stored only once the reply is due (after delay-ms), as the reference
      // does; a call cancelled during the delay stores nothing.
      await call.beforeUnaryResponse();
      for (const r of readings) latest.set(r.device_id, r);
      if (call.responseSize !== null) {
        // The contract pads the last device id, or one added when none.
        const last = summary.device_ids.length > 0 ? summary.device_ids.pop() : '';
        summary.device_ids.push(call.pad(last));
      }
      return summary;
    }),
    Watch: serverStream(registry, '/SensorService/Watch', async (call, request) => {
      if (!request.device_id) throw new Fail(grpc.status.INVALID_ARGUMENT, 'Watch: device_id must not be empty');
      await call.failAtStart();
      let count = request.limit || 3;
      if (call.responseCount !== null) count = call.responseCount;
      for (let i = 0; i < count; i += 1) {
        await call.write({
          timestamp: String(1000 + i), temperature: 20.0 + 0.25 * i, device_id: call.pad(request.device_id),
        });
      }
    }),
    Latest: unary(registry, '/SensorService/Latest', async (call, request) => {
      if (!request.device_id) throw new Fail(grpc.status.INVALID_ARGUMENT, 'Latest: device_id must not be empty');
      await call.failAtStart();
      const reading = latest.get(request.device_id);
      if (!reading) {
        throw new Fail(grpc.status.NOT_FOUND,
          `Latest: no Record call stored a reading for device ${JSON.stringify(request.device_id)}`);
      }
      return { ...reading, device_id: call.pad(reading.device_id) };
    }),
  };

  const observer = {
    // Not itself recorded: a GetCall carrying the id it asks about would
    // replace the very call it looks for.
    GetCall: (stream, callback) => {
      const { call_id: callId, wait_ms: waitMs } = stream.request;
      registry.get(callId, Math.min(waitMs, MAX_GET_CALL_WAIT_MS)).then((record) => {
        if (record === null) {
          callback({
            code: grpc.status.NOT_FOUND,
            details: `GetCall: no call carried x-conform-call-id ${JSON.stringify(callId)}`,
          });
        } else {
          callback(null, record);
        }
      });
    },
  };

  return { chat, greeter, sensor, observer };
}

module.exports = { services, summarise };
