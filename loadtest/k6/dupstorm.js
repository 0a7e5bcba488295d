// Duplicate storm: iteration i sends one new event COPIES (10) times at
// once (http.batch) and, once more, the event of iteration i -
// REDELIVER_AFTER (5). Every copy must be 2xx (the sender must stop
// retrying); downstream the processor must make one output per event
// (check with inlet-load -scenario dupstorm, which reads the topics).
//   k6 run -e RATE=10 -e DURATION=30s loadtest/k6/dupstorm.js
import http from 'k6/http';
import { KINDS, constantRate, iteration, newEvent, rate, record, request, send, thresholds, use } from './lib/inlet.js';

export { setup } from './lib/inlet.js';

const r = rate(10);
const copies = Number(__ENV.COPIES || 10);
const later = Number(__ENV.REDELIVER_AFTER || 5);

export const options = {
  scenarios: { dupstorm: constantRate(r) }, // events/s; requests/s is about 11x
  thresholds: thresholds(),
};

// The event of iteration i, made the same in any VU (iterations are spread
// over the VUs, which share no memory): id, kind and time from i alone.
function stormed(data, i) {
  return newEvent(KINDS[i % KINDS.length], { id: `${data.runId}-s${i}`, time: data.t0 + Math.floor((i * 1000) / r) });
}

export default function (data) {
  use(data);
  const i = iteration();
  const ev = stormed(data, i);
  const reqs = [];
  for (let c = 0; c < copies; c += 1) reqs.push(request(ev));
  for (const res of http.batch(reqs)) record(res, 202);
  if (i >= later) send(stormed(data, i - later));
}
