// Steady load: a constant arrival rate (k6 starts iterations on schedule
// whatever the answers: an open model), valid events of every provider.
//   k6 run -e RATE=200 -e DURATION=60s loadtest/k6/steady.js
import { KINDS, constantRate, iteration, newEvent, rate, send, thresholds, use } from './lib/inlet.js';

export { setup } from './lib/inlet.js';

export const options = {
  scenarios: { steady: constantRate(rate(100)) },
  thresholds: thresholds(),
};

export default function (data) {
  use(data);
  send(newEvent(KINDS[iteration() % KINDS.length]));
}
