// Burst: a base rate, plus 9x more for BURST (30s) starting at BURST_AT
// (10s): 10x for 30 s. Ingest may answer 503 during the burst (a slow
// Kafka); it must never answer wrongly, and p99 must recover after.
//   k6 run -e RATE=50 -e DURATION=60s loadtest/k6/burst.js
import { KINDS, cfg, constantRate, newEvent, rate, send, thresholds } from './lib/inlet.js';

const base = rate(50);

export const options = {
  scenarios: {
    base: constantRate(base),
    burst: constantRate(9 * base, { startTime: __ENV.BURST_AT || '10s', duration: __ENV.BURST || '30s', exec: 'burst' }),
  },
  thresholds: thresholds({
    inlet_retryable: [`rate<${Number(__ENV.BURST_ERROR_RATE || 0.05)}`],
    http_req_failed: [`rate<${Number(__ENV.BURST_ERROR_RATE || 0.05)}`],
    // The base traffic's latency: p99 over the whole run, burst included.
    'http_req_duration{scenario:base}': [`p(99)<${cfg.p99 * 2}`],
  }),
};

export default function () {
  send(newEvent(KINDS[__ITER % KINDS.length]));
}

export function burst() {
  send(newEvent(KINDS[(__ITER + 1) % KINDS.length]));
}
