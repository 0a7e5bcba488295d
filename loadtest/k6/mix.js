// Provider mix: Stripe, GitHub, Shopify and Standard Webhooks webhooks and
// NDJSON batches on /events/billing; INVALID_SHARE (5%) of events carry a
// payload that breaks its contract (2xx at ingest, outcome invalid) and
// BAD_SIG_SHARE (1%) are signed with a wrong secret (401 expected).
//   k6 run -e RATE=100 -e DURATION=60s loadtest/k6/mix.js
import { KINDS, constantRate, newEvent, rate, send, sendBatch, thresholds, use } from './lib/inlet.js';

export { setup } from './lib/inlet.js';

const invalidShare = Number(__ENV.INVALID_SHARE || 0.05);
const badSigShare = Number(__ENV.BAD_SIG_SHARE || 0.01);
const batchShare = Number(__ENV.BATCH_SHARE || 0.05);

export const options = {
  scenarios: { mix: constantRate(rate(100)) },
  thresholds: thresholds({
    // The planted 401s are expected answers, so they do not count here.
    'checks{check:expected_answer}': ['rate>0.99'],
  }),
};

export default function (data) {
  use(data);
  const r = Math.random();
  if (r < batchShare) {
    const evs = [];
    for (let i = 0; i < 5; i += 1) evs.push(newEvent('standard-webhooks'));
    sendBatch(evs);
    return;
  }
  const ev = newEvent(KINDS[Math.floor(Math.random() * KINDS.length)]);
  const s = Math.random();
  if (s < badSigShare) {
    send(ev, { badSig: true, expect: 401 });
    return;
  }
  ev.invalid = s < badSigShare + invalidShare;
  send(ev);
}
