// Duplicate storm: each iteration sends one new event 10 times at once
// (http.batch) and re-sends, once, the event this VU stormed REDELIVER_AFTER
// iterations earlier. Every copy must be 2xx (the sender must stop
// retrying); downstream the processor must make one output per event
// (check with inlet-load -scenario dupstorm, which reads the topics).
//   k6 run -e RATE=10 -e DURATION=30s loadtest/k6/dupstorm.js
import http from 'k6/http';
import { KINDS, constantRate, newEvent, rate, record, request, send, thresholds } from './lib/inlet.js';

const copies = Number(__ENV.COPIES || 10);
const later = Number(__ENV.REDELIVER_AFTER || 5);
const sent = []; // this VU's stormed events, oldest first

export const options = {
  scenarios: { dupstorm: constantRate(rate(10)) }, // events/s; requests/s is about 11x
  thresholds: thresholds(),
};

export default function () {
  const ev = newEvent(KINDS[__ITER % KINDS.length]);
  const reqs = [];
  for (let i = 0; i < copies; i += 1) reqs.push(request(ev));
  for (const res of http.batch(reqs)) record(res, 202);
  sent.push(ev);
  if (sent.length > later) send(sent.shift());
}
