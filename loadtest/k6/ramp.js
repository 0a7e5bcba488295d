// Ramp to saturation: the arrival rate rises linearly from RATE/20 to RATE
// over DURATION. The p99 threshold aborts the test once latency crosses
// KNEE_P99_MS (after a 10s grace); inlet_offered_rate's last value in the
// summary is the rate reached then: the knee.
//   k6 run -e RATE=1000 -e DURATION=60s loadtest/k6/ramp.js
import { Gauge } from 'k6/metrics';
import { KINDS, cfg, gracefulStop, iteration, newEvent, rate, seconds, send, thresholds, use } from './lib/inlet.js';

export { setup } from './lib/inlet.js'; // data.t0: the ramp's start

const target = rate(400);
const start = Math.max(1, Math.round(target / 20));
const kneeP99 = Number(__ENV.KNEE_P99_MS || 500);
const offered = new Gauge('inlet_offered_rate');

export const options = {
  scenarios: {
    ramp: {
      executor: 'ramping-arrival-rate', startRate: start, timeUnit: '1s',
      preAllocatedVUs: cfg.preVUs, maxVUs: cfg.maxVUs, gracefulStop: gracefulStop(),
      stages: [{ target, duration: cfg.duration }],
    },
  },
  thresholds: thresholds({
    'http_req_duration{expected_response:true}': [
      { threshold: `p(99)<${kneeP99}`, abortOnFail: true, delayAbortEval: '10s' },
      `p(95)<${cfg.p95}`,
    ],
    // Past the knee ingest may answer 503 (Kafka slow): allowed, the
    // sender retries; wrong answers are not.
    inlet_retryable: ['rate<0.5'],
    http_req_failed: ['rate<0.5'],
  }),
};

const total = seconds(cfg.duration);

export default function (data) {
  use(data);
  const el = (Date.now() - data.t0) / 1000;
  offered.add(start + (target - start) * Math.min(1, el / total));
  send(newEvent(KINDS[iteration() % KINDS.length]));
}
