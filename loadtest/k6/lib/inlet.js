// Shared by the scenario scripts: configuration from __ENV, events like
// the Go generator's (loadtest/gen/event.go), signing, sending, metrics and
// thresholds. Only k6's own modules.
import http from 'k6/http';
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';
import exec from 'k6/execution';
import { check } from 'k6';
import { Counter, Rate } from 'k6/metrics';
import { signatureHeaders } from './sign.js';

function env(name, def) {
  const v = __ENV[name];
  return v === undefined || v === '' ? def : v;
}
function num(name, def) {
  const v = Number(env(name, def));
  if (!Number.isFinite(v)) throw new Error(`${name} is not a number`);
  return v;
}

// Configuration. Every value has a default that works against `make run`.
export const cfg = {
  target: env('TARGET', 'http://127.0.0.1:8080').replace(/\/$/, ''),
  duration: env('DURATION', '30s'),
  preVUs: num('PRE_VUS', 50),
  maxVUs: num('MAX_VUS', 500),
  p95: num('P95_MS', 250),
  p99: num('P99_MS', 1000),
  errorRate: num('ERROR_RATE', 0.01),
  bodyLimit: num('BODY_LIMIT', 1048576),
  // Per request, as inlet-load's -timeout. k6's own default (60s) is past
  // gracefulStop: a request still waiting then is recorded nowhere, and a
  // target that never answers passed every threshold.
  timeout: env('TIMEOUT', '10s'),
  // Each VU runs this file on its own, so a clock default would differ
  // between VUs: the run's value comes from setup() (see use).
  runId: env('RUN_ID', ''),
  secrets: {
    stripe: env('STRIPE_WEBHOOK_SECRET', 'whsec_dev_stripe_secret_change_me'),
    github: env('GITHUB_WEBHOOK_SECRET', 'dev-github-secret'),
    shopify: env('SHOPIFY_WEBHOOK_SECRET', 'dev-shopify-secret'),
    'standard-webhooks': env('BILLING_WHSEC', 'whsec_ZGV2LWJpbGxpbmctc2VjcmV0LWNoYW5nZS1tZQ=='),
  },
  batchToken: env('BILLING_EVENTS_TOKEN', 'dev-billing-token'),
};

export const rate = (def) => num('RATE', def);

// Seconds in a k6 duration ("90s", "1m30s", "500ms").
export function seconds(d) {
  const s = String(d);
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(s)) throw new Error(`bad duration ${s}`);
  let total = 0;
  for (const [, n, u] of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(n) * { ms: 0.001, s: 1, m: 60, h: 3600 }[u];
  return total;
}

// A scenario's gracefulStop: long enough for a request started at its end
// to time out and be counted (retryable), never shorter than k6's 30s.
export const gracefulStop = () => `${Math.max(30, seconds(cfg.timeout) + 5)}s`;

// setup() runs once per test and its result reaches every VU: the run id
// (RUN_ID or the clock) and the start time. Scripts export it and call
// use(data) first in each exec function.
export function setup() {
  const t0 = Date.now();
  return { runId: cfg.runId || `k6${t0.toString(36)}`, t0 };
}
export function use(data) {
  if (data && data.runId) cfg.runId = data.runId;
}

// The iteration's number in its scenario, counted across all VUs (__ITER
// counts the VU's own iterations, a few each when there are many VUs).
export const iteration = () => exec.scenario.iterationInTest;

// The k6 side of sign.js's primitive.
export const prims = {
  hmac: (key, msg, enc) => crypto.hmac('sha256', key, msg, enc),
  b64decode: (s) => encoding.b64decode(s, 'rawstd'),
};

// Answers other than the expected one, 5xx/408/429/timeouts excepted: must
// stay 0 ("no 2xx lost" starts with no wrong answer). Retryable answers are
// a rate: the sender would retry them.
export const unexpected = new Counter('inlet_unexpected_answers');
export const retryable = new Rate('inlet_retryable');
export const accepted = new Counter('inlet_accepted');

// Thresholds every script declares; extra ones are merged in.
export function thresholds(extra = {}) {
  return Object.assign({
    'http_req_duration{expected_response:true}': [`p(95)<${cfg.p95}`, `p(99)<${cfg.p99}`],
    http_req_failed: [`rate<=${cfg.errorRate}`],
    inlet_unexpected_answers: ['count==0'],
    inlet_retryable: [`rate<=${cfg.errorRate}`],
  }, extra);
}

export function constantRate(r, extra = {}) {
  return Object.assign({
    executor: 'constant-arrival-rate', rate: r, timeUnit: '1s', duration: cfg.duration,
    preAllocatedVUs: cfg.preVUs, maxVUs: cfg.maxVUs, gracefulStop: gracefulStop(),
  }, extra);
}

export const KINDS = ['stripe', 'github', 'shopify', 'standard-webhooks'];
const SOURCE = { stripe: 'stripe', github: 'github', shopify: 'shop', 'standard-webhooks': 'billing' };

let seq = 0;
// A unique event id within the run: run id, VU, and a per-VU counter.
export function nextId() {
  if (!cfg.runId) throw new Error('no run id: export setup and call use(data) first');
  seq += 1;
  return `${cfg.runId}-${__VU}-${seq}`;
}

function rfc3339(ms) {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

// An event: {kind, source, id, type, time (ms), invalid, size, orderId}.
export function newEvent(kind, opts = {}) {
  const id = opts.id || nextId();
  return Object.assign({
    kind, source: SOURCE[kind], id, time: Date.now(), invalid: false, size: 0,
    orderId: 0, type: { stripe: 'payment_intent.succeeded', github: 'push', shopify: 'orders/updated', 'standard-webhooks': 'invoice.paid' }[kind],
  }, opts);
}

// The payload: the fields the contracts read; invalid ones break a
// required field; size pads to exactly that many bytes.
export function body(ev) {
  let v;
  const t = rfc3339(ev.time);
  switch (ev.kind) {
    case 'stripe':
      v = { id: `evt_${ev.id}`, object: 'event', type: ev.type, created: Math.floor(ev.time / 1000), livemode: false,
        api_version: '2024-06-20', data: { object: { id: `pi_${ev.id}`, object: 'payment_intent',
          status: ev.invalid ? 'exploded' : 'succeeded', amount: 1000, currency: 'usd', customer: null, metadata: {} } } };
      break;
    case 'github':
      v = { ref: `refs/heads/${ev.id}`, before: '0'.repeat(40), after: 'a'.repeat(40),
        repository: { full_name: 'inletdev/loadtest', name: 'loadtest' }, pusher: { name: 'k6' },
        commits: [{ id: 'a'.repeat(40), message: `load ${ev.id}`, timestamp: t }] };
      if (ev.invalid) delete v.pusher;
      break;
    case 'shopify':
      v = { id: ev.orderId || orderIdOf(ev.id), name: `#${ev.id}`, email: 'load@example.com', created_at: t, updated_at: t,
        currency: 'USD', total_price: '19.90', financial_status: 'paid',
        line_items: ev.invalid ? 'not a list' : [{ id: 1, title: 'Wool hat', quantity: 1, price: '19.90' }] };
      break;
    case 'standard-webhooks':
      v = { type: ev.type, timestamp: t, data: { id: `inv_${ev.id}`, amount: 1200, currency: 'EUR' } };
      if (ev.invalid) delete v.data;
      break;
    default:
      throw new Error(`unknown kind ${ev.kind}`);
  }
  let s = JSON.stringify(v);
  if (ev.size > s.length + 16) {
    s = `${s.slice(0, -1)},"pad":"${'x'.repeat(ev.size - s.length - ',"pad":""'.length)}"}`;
  }
  return s;
}

// A numeric Shopify order id from an event id (stable per id).
export function orderIdOf(id) {
  let h = 0;
  for (let i = 0; i < id.length; i += 1) h = (h * 31 + id.charCodeAt(i)) % 1e12;
  return 1e12 + h;
}

// The raw-topic event id the provider carries.
export function eventId(ev) {
  return { stripe: `evt_${ev.id}`, github: ev.id, shopify: ev.id, 'standard-webhooks': `msg_${ev.id}` }[ev.kind];
}

// The request for a delivery of ev: [method, url, body, params] as
// http.batch takes it. badSig signs with a wrong secret (expect 401).
export function request(ev, { badSig = false, expect = 202 } = {}) {
  const b = body(ev);
  const id = eventId(ev);
  const headers = { 'Content-Type': 'application/json', 'X-Correlation-ID': id };
  if (ev.kind === 'github') Object.assign(headers, { 'X-GitHub-Event': ev.type, 'X-GitHub-Delivery': id });
  if (ev.kind === 'shopify') {
    Object.assign(headers, { 'X-Shopify-Topic': ev.type, 'X-Shopify-API-Version': '2025-01', 'X-Shopify-Webhook-Id': id });
  }
  let secret = cfg.secrets[ev.kind];
  if (badSig) secret = ev.kind === 'standard-webhooks' ? 'whsec_d3Jvbmctc2VjcmV0LWZvci1sb2FkLXRlc3Q=' : 'wrong-secret';
  Object.assign(headers, signatureHeaders(prims, ev.kind, secret, b, id, Math.floor(Date.now() / 1000)));
  return ['POST', `${cfg.target}/webhooks/${ev.source}`, b, {
    headers, timeout: cfg.timeout, responseCallback: http.expectedStatuses(expect === 202 ? { min: 200, max: 299 } : expect),
    tags: { source: ev.source, expect: String(expect) },
  }];
}

// An NDJSON batch of billing events for /events/billing (expect 200).
export function batchRequest(events) {
  const lines = events.map((ev) => JSON.stringify({ id: eventId(ev), type: ev.type, occurred_at: rfc3339(ev.time),
    correlation_id: eventId(ev), data: { id: `inv_${ev.id}`, amount: 1200 } }));
  return ['POST', `${cfg.target}/events/billing`, `${lines.join('\n')}\n`, {
    headers: { 'Content-Type': 'application/x-ndjson', Authorization: `Bearer ${cfg.batchToken}` }, timeout: cfg.timeout,
    responseCallback: http.expectedStatuses(200), tags: { source: 'billing', expect: '200' },
  }];
}

// record counts one answer against its expected status. records is how
// many raw records the answer made durable: 1 for a 2xx webhook.
export function record(res, expect, records) {
  const ok = expect === 202 ? res.status >= 200 && res.status < 300 : res.status === expect;
  const retry = !ok && (res.status === 0 || res.status >= 500 || res.status === 408 || res.status === 429);
  check(res, { expected_answer: () => ok });
  retryable.add(retry);
  if (!ok && !retry) unexpected.add(1, { status: String(res.status) });
  const n = records === undefined ? Number(res.status >= 200 && res.status < 300) : records;
  if (n > 0) accepted.add(n);
  return ok;
}

// sendBatch posts events as one NDJSON batch (expect 200). Each accepted
// line is a raw record, so inlet_accepted counts the answer's "accepted"
// (a 207/503 batch has some too).
export function sendBatch(events) {
  const [method, url, b, params] = batchRequest(events);
  const res = http.request(method, url, b, params);
  let n = 0;
  try {
    n = Number(res.json('accepted')) || 0;
  } catch (e) {
    n = 0; // not JSON: nothing known to be accepted
  }
  record(res, 200, n);
  return res;
}

// send delivers one request and records the answer.
export function send(ev, opts = {}) {
  const [method, url, b, params] = request(ev, opts);
  const res = http.request(method, url, b, params);
  record(res, opts.expect || 202);
  return res;
}
