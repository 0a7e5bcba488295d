// Imports every k6 script with k6's modules stubbed (run with
// --import ./register.mjs), checks its options (scenarios with an
// arrival-rate executor, thresholds including the unexpected-answers
// counter) and runs a few iterations. With $K6_CAPTURE set, the requests
// made are written there as JSON for the Go test to verify with
// pkg/webhook.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';

globalThis.__ENV = { BODY_LIMIT: '4096', RUN_ID: 'nodetest' };
globalThis.__VU = 1;

const dir = new URL('../', import.meta.url);
const scripts = readdirSync(dir).filter((f) => f.endsWith('.js')).sort();
const captured = {};

test('every scenario has a script', () => {
  for (const s of ['steady', 'ramp', 'burst', 'dupstorm', 'outoforder', 'mix', 'large']) {
    assert.ok(scripts.includes(`${s}.js`), `${s}.js missing`);
  }
});

for (const file of scripts) {
  test(file, async () => {
    const mod = await import(new URL(file, dir).href);
    const { options } = mod;
    assert.ok(options && options.scenarios, 'options.scenarios');
    for (const [name, sc] of Object.entries(options.scenarios)) {
      assert.match(sc.executor, /arrival-rate$/, `${name}: open-model executor`);
      assert.ok(sc.maxVUs > 0 && sc.preAllocatedVUs > 0, `${name}: VUs bounded`);
      assert.ok(sc.duration || sc.stages, `${name}: bounded in time`);
    }
    assert.deepEqual(options.thresholds.inlet_unexpected_answers, ['count==0']);
    assert.ok(Object.keys(options.thresholds).some((k) => k.startsWith('http_req_duration')), 'latency thresholds');
    globalThis.__k6requests = [];
    globalThis.__k6checks = 0;
    const data = mod.setup ? mod.setup() : undefined;
    for (let i = 0; i < 20; i += 1) {
      globalThis.__ITER = i;
      mod.default(data);
      for (const [name, sc] of Object.entries(options.scenarios)) {
        if (sc.exec && sc.exec !== 'default') mod[sc.exec](data);
        void name;
      }
    }
    assert.ok(globalThis.__k6requests.length >= 20, 'requests made');
    assert.equal(globalThis.__k6checks, 0, 'every stubbed answer was the expected one');
    captured[file] = globalThis.__k6requests;
  });
}

test('write capture', () => {
  if (process.env.K6_CAPTURE) writeFileSync(process.env.K6_CAPTURE, JSON.stringify(captured));
});
