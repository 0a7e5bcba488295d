// Out-of-order updates: each iteration is one Shopify order with UPDATES
// (5) updates 1 s apart in updated_at, sent in shuffled order. Ingest takes
// them all; downstream the newest updated_at must win (older ones are
// skipped as stale): inlet-load -scenario outoforder checks inlet.state.
//   k6 run -e RATE=20 -e DURATION=30s loadtest/k6/outoforder.js
import { constantRate, newEvent, nextId, orderIdOf, rate, send, thresholds, use } from './lib/inlet.js';

export { setup } from './lib/inlet.js';

const updates = Number(__ENV.UPDATES || 5);

export const options = {
  scenarios: { outoforder: constantRate(rate(20)) }, // orders/s
  thresholds: thresholds(),
};

export default function (data) {
  use(data);
  const order = orderIdOf(nextId());
  const base = Date.now() - updates * 1000;
  const evs = [];
  for (let k = 0; k < updates; k += 1) evs.push(newEvent('shopify', { orderId: order, time: base + k * 1000 }));
  for (let i = evs.length - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [evs[i], evs[j]] = [evs[j], evs[i]];
  }
  for (const ev of evs) send(ev);
}
