// Burst: a base rate for DURATION, plus 9x more for BURST starting at
// BURST_AT: 10x. By default the burst fits inside the run with time to
// recover after it: from DURATION/5, for 30s or 3/5 of DURATION if
// shorter. Ingest may answer 503 during the burst (a slow Kafka); it must
// never answer wrongly, and p99 must recover after.
//   k6 run -e RATE=50 -e DURATION=60s loadtest/k6/burst.js
import { KINDS, cfg, constantRate, iteration, newEvent, rate, seconds, send, thresholds, use } from './lib/inlet.js';

export { setup } from './lib/inlet.js';

const base = rate(50);
const total = seconds(cfg.duration);
const burstAt = __ENV.BURST_AT || `${total / 5}s`;
const burstFor = __ENV.BURST || `${Math.min(30, (total * 3) / 5)}s`;

export const options = {
  scenarios: {
    base: constantRate(base),
    burst: constantRate(9 * base, { startTime: burstAt, duration: burstFor, exec: 'burst' }),
  },
  thresholds: thresholds({
    inlet_retryable: [`rate<=${Number(__ENV.BURST_ERROR_RATE || 0.05)}`],
    http_req_failed: [`rate<=${Number(__ENV.BURST_ERROR_RATE || 0.05)}`],
    // The base traffic's latency: p99 over the whole run, burst included.
    'http_req_duration{scenario:base}': [`p(99)<${cfg.p99 * 2}`],
  }),
};

export default function (data) {
  use(data);
  send(newEvent(KINDS[iteration() % KINDS.length]));
}

export function burst(data) {
  use(data);
  send(newEvent(KINDS[(iteration() + 1) % KINDS.length]));
}
