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

// k6 runs its own copy of a script in every VU (module state, __ITER,
// the init code's clock) and numbers iterations across VUs in
// exec.scenario.iterationInTest. inVUs imports the script once per VU
// (?vu=, see hooks.mjs) and once for setup, and hands the iterations to
// the VUs in turn, as constant-arrival-rate does with many free VUs.
let runs = 0;
async function inVUs(file, { vus = 50, iterations = 150, env = {}, exec = 'default' } = {}) {
  runs += 1;
  const load = (vu, f = file) => import(new URL(`${f}?vu=${runs}.${vu}`, dir).href);
  const saved = globalThis.__ENV;
  globalThis.__ENV = { BODY_LIMIT: '4096', ...env };
  try {
    globalThis.__VU = 0;
    const setupVU = await load(0);
    const mods = [];
    for (let v = 1; v <= vus; v += 1) {
      globalThis.__VU = v;
      mods.push(await load(v));
    }
    globalThis.__VU = 0;
    const data = setupVU.setup ? JSON.parse(JSON.stringify(setupVU.setup())) : undefined;
    globalThis.__k6requests = [];
    for (let i = 0; i < iterations; i += 1) {
      globalThis.__VU = (i % vus) + 1;
      globalThis.__ITER = Math.floor(i / vus);
      globalThis.__k6iter = i;
      mods[i % vus][exec](data);
    }
    const libs = await Promise.all(mods.map((_, v) => load(v + 1, 'lib/inlet.js')));
    return { requests: globalThis.__k6requests, data, libs };
  } finally {
    globalThis.__ENV = saved;
    globalThis.__VU = 1;
    delete globalThis.__k6iter;
  }
}

const secondsOf = (d) => [...d.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)]
  .reduce((t, [, n, u]) => t + Number(n) * { ms: 0.001, s: 1, m: 60, h: 3600 }[u], 0);

test('steady.js rotates the providers across VUs', async () => {
  const { requests } = await inVUs('steady.js');
  const per = {};
  for (const r of requests) per[r.url] = (per[r.url] || 0) + 1;
  assert.equal(Object.keys(per).length, 4, JSON.stringify(per));
  for (const n of Object.values(per)) assert.ok(n >= 37 && n <= 38, JSON.stringify(per));
});

test('large.js sends one in ten at the limit and one in ten over it across VUs', async () => {
  const { requests } = await inVUs('large.js');
  assert.equal(requests.filter((r) => r.body.length === 4096).length, 15, 'at the limit');
  const over = requests.filter((r) => r.tags.expect === '413');
  assert.equal(over.length, 15, 'over the limit');
  for (const r of over) assert.equal(r.body.length, 4097);
});

test('dupstorm.js sends every event once more later, across VUs', async () => {
  const { requests } = await inVUs('dupstorm.js');
  const copies = {};
  for (const r of requests) copies[r.url + r.body] = (copies[r.url + r.body] || 0) + 1;
  const counts = Object.values(copies);
  assert.equal(counts.length, 150, 'events');
  assert.equal(counts.filter((n) => n === 11).length, 145, '10 copies and the later one');
  assert.equal(counts.filter((n) => n === 10).length, 5, 'the last 5: not yet redelivered');
});

test('every script uses one run id in all VUs', async () => {
  const now = Date.now;
  let t = now();
  Date.now = () => (t += 1000); // VUs start at different times
  try {
    for (const file of scripts) {
      const { requests, data } = await inVUs(file, { vus: 8, iterations: 16 });
      const ids = requests.map((r) => r.headers['X-Correlation-ID']).filter(Boolean);
      assert.ok(ids.length > 0, file);
      const prefixes = new Set(ids.map((id) => id.replace(/^(evt|msg)_/, '').split('-')[0]));
      assert.equal(prefixes.size, 1, `${file}: ${[...prefixes].join(' ')}`);
      assert.deepEqual([...prefixes], [data.runId], file);
    }
  } finally {
    Date.now = now;
  }
});

test('burst.js fits the burst inside DURATION, with time after it', async () => {
  for (const [dur, from, len] of [['30s', 6, 18], ['60s', 12, 30], ['2m', 24, 30], ['15s', 3, 9]]) {
    runs += 1;
    globalThis.__ENV = { DURATION: dur, RUN_ID: 'nodetest' };
    const { options } = await import(new URL(`burst.js?vu=${runs}.0`, dir).href);
    const b = options.scenarios.burst;
    assert.deepEqual([secondsOf(b.startTime), secondsOf(b.duration)], [from, len], dur);
    assert.ok(from + len < secondsOf(dur), dur);
  }
  globalThis.__ENV = { BODY_LIMIT: '4096', RUN_ID: 'nodetest' };
});

test('mix.js counts every accepted batch line in inlet_accepted', async () => {
  const { libs } = await inVUs('mix.js', { vus: 2, iterations: 4, env: { BATCH_SHARE: '1', RUN_ID: 'nodetest' } });
  const total = libs.reduce((n, lib) => n + lib.accepted.samples.reduce((m, [v]) => m + v, 0), 0);
  assert.equal(total, 4 * 5);
});

// Ingest answers 408 when a body did not arrive within its read timeout:
// nothing was written, the sender retries. Before, record() counted it in
// inlet_unexpected_answers, failing the run's count==0 threshold.
test('record counts a 408 as retryable, not unexpected', async () => {
  runs += 1;
  const lib = await import(new URL(`lib/inlet.js?vu=${runs}.1`, dir).href);
  const checks = globalThis.__k6checks;
  try {
    for (const expect of [202, 200]) {
      assert.equal(lib.record({ status: 408 }, expect), false);
    }
    assert.deepEqual(lib.unexpected.samples, []);
    assert.deepEqual(lib.retryable.samples.map(([v]) => v), [true, true]);
  } finally {
    globalThis.__k6checks = checks;
  }
});

test('ramp.js reads DURATION=1m30s as 90s', async () => {
  runs += 1;
  globalThis.__ENV = { RATE: '400', DURATION: '1m30s', RUN_ID: 'nodetest' };
  try {
    const mod = await import(new URL(`ramp.js?vu=${runs}.1`, dir).href);
    mod.default({ runId: 'nodetest', t0: Date.now() - 45000 });
    const [v] = globalThis.__k6metrics.inlet_offered_rate.samples.at(-1);
    assert.ok(Math.abs(v - 210) < 5, `offered ${v} at 45s of 90s, want ~210`);
  } finally {
    globalThis.__ENV = { BODY_LIMIT: '4096', RUN_ID: 'nodetest' };
  }
});

// k6 interrupts an iteration still running at the end of its scenario's
// gracefulStop (30s by default) and records none of its unfinished
// requests. With k6's default request timeout (60s), a target that
// accepted connections and never answered gave a run with no http_reqs,
// every threshold passed and exit status 0. Each request must time out
// (and count as retryable) before the scenario stops.
test('every request times out before its scenario stops', async () => {
  for (const env of [{}, { TIMEOUT: '45s' }]) {
    for (const file of scripts) {
      const { requests } = await inVUs(file, { vus: 2, iterations: 10, env: { RUN_ID: 'nodetest', ...env } });
      runs += 1;
      globalThis.__ENV = { BODY_LIMIT: '4096', RUN_ID: 'nodetest', ...env };
      const { options } = await import(new URL(`${file}?vu=${runs}.0`, dir).href);
      globalThis.__ENV = { BODY_LIMIT: '4096', RUN_ID: 'nodetest' };
      assert.ok(requests.length > 0, file);
      for (const r of requests) {
        const timeout = secondsOf(r.timeout || '60s');
        if (env.TIMEOUT) assert.equal(timeout, secondsOf(env.TIMEOUT), `${file}: TIMEOUT`);
        for (const [name, sc] of Object.entries(options.scenarios)) {
          const grace = secondsOf(sc.gracefulStop || '30s');
          assert.ok(timeout < grace, `${file} ${name}: request timeout ${timeout}s, gracefulStop ${grace}s`);
        }
      }
    }
  }
});

// ERROR_RATE (BURST_ERROR_RATE in burst.js) is the largest share of
// failed or retryable answers a run may have. Its thresholds were
// `rate<ERROR_RATE`: ERROR_RATE=0, asking for none, failed a run in which
// every answer was the expected one (k6: ✗ 'rate<0' rate=0.00%).
test('ERROR_RATE is the largest share allowed: 0 passes a run without errors', async () => {
  const holds = (expr, v) => {
    const m = /^rate\s*(<=|<|>=|>|==)\s*([\d.]+)$/.exec(typeof expr === 'string' ? expr : expr.threshold);
    assert.ok(m, `threshold ${JSON.stringify(expr)}`);
    const n = Number(m[2]);
    return { '<=': v <= n, '<': v < n, '>=': v >= n, '>': v > n, '==': v === n }[m[1]];
  };
  for (const file of scripts) {
    runs += 1;
    globalThis.__ENV = { BODY_LIMIT: '4096', RUN_ID: 'nodetest', ERROR_RATE: '0', BURST_ERROR_RATE: '0' };
    try {
      const { options } = await import(new URL(`${file}?vu=${runs}.0`, dir).href);
      for (const metric of ['http_req_failed', 'inlet_retryable']) {
        for (const expr of options.thresholds[metric]) {
          assert.ok(holds(expr, 0), `${file}: ${metric} ${JSON.stringify(expr)} fails a run without errors`);
          if (file !== 'ramp.js') assert.ok(!holds(expr, 0.001), `${file}: ${metric} ${JSON.stringify(expr)} passes errors over ERROR_RATE=0`);
        }
      }
    } finally {
      globalThis.__ENV = { BODY_LIMIT: '4096', RUN_ID: 'nodetest' };
    }
  }
});

test('write capture', () => {
  if (process.env.K6_CAPTURE) writeFileSync(process.env.K6_CAPTURE, JSON.stringify(captured));
});
