// Large bodies near the limit (BODY_LIMIT, the source's max_body, default
// 1 MiB): most are 512 B to 4.5 KiB under it, one in ten is exactly at it
// (accepted) and one in ten is 1 byte over (413 expected).
//   k6 run -e RATE=10 -e DURATION=30s loadtest/k6/large.js
import { cfg, constantRate, iteration, newEvent, rate, send, thresholds, use } from './lib/inlet.js';

export { setup } from './lib/inlet.js';

export const options = {
  scenarios: { large: constantRate(rate(10)) },
  thresholds: thresholds({ 'http_req_duration{expected_response:true}': [`p(95)<${cfg.p95 * 4}`, `p(99)<${cfg.p99 * 2}`] }),
};

export default function (data) {
  use(data);
  const ev = newEvent('shopify');
  switch (iteration() % 10) {
    case 4:
      ev.size = cfg.bodyLimit;
      send(ev);
      break;
    case 9:
      ev.size = cfg.bodyLimit + 1;
      send(ev, { expect: 413 });
      break;
    default:
      ev.size = cfg.bodyLimit - 512 - Math.floor(Math.random() * 4096);
      send(ev);
  }
}
