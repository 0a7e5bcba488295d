// Generates the interoperability vectors in this folder: signatures made and
// checked by the providers' official libraries (pinned in package.json),
// and signatures made by Inlet's own signers checked by those libraries.
// interop_test.go (pkg/webhook) checks that Inlet accepts exactly what the
// libraries accept, except where it documents a deliberate difference.
//
// Run it with generate.sh (it installs the libraries in a temporary folder,
// never in the repository); by hand:
//
//   d=$(mktemp -d); cp package.json package-lock.json generate.mjs "$d"
//   (cd "$d" && npm ci) && node "$d/generate.mjs" /path/to/inlet
//
// Everything is deterministic: fixed times, fixed message ids, secrets and
// bodies built from constants. A rerun with the same libraries rewrites the
// same files.

import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import Stripe from 'stripe';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import { sign as octoSign, verifyWithFallback } from '@octokit/webhooks-methods';
import '@shopify/shopify-api/adapters/node';
import { shopifyApi, ApiVersion, LogSeverity } from '@shopify/shopify-api';
import { getHmac as shopifyGetHmac } from '@shopify/shopify-api/test-helpers';

const root = process.argv[2];
if (!root) {
  console.error('usage: node generate.mjs /path/to/inlet (the module root)');
  process.exit(2);
}
const out = join(root, 'pkg/webhook/testdata/interop');
const k6 = await import(pathToFileURL(join(root, 'loadtest/k6/lib/sign.js')).href);

const version = (name) => `${name}@${JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), 'utf8')).version}`;
const LIB = {
  stripe: version('stripe'),
  octokit: version('@octokit/webhooks-methods'),
  shopify: version('@shopify/shopify-api'),
  sw: version('standardwebhooks'),
  svix: version('svix'),
};

// ---- inputs -------------------------------------------------------------

const T0 = 1_700_000_000; // signing time of most vectors (2023-11-14)
const ms = (unix) => unix * 1000;

const BODIES = {
  json: Buffer.from('{"id":"evt_1NtYm2","object":"event","type":"payment_intent.succeeded","data":{"object":{"amount":2000}}}'),
  unicode: Buffer.from('{"id":"evt_ü","name":"Zoë Ångström","city":"東京","note":"naïve café – “quoted” 🚀\\u2028"}'),
  crlf: Buffer.from('{\r\n  "id": "evt_crlf",\r\n  "text": "line1\\r\\nline2"\r\n}\r\n'),
  pretty: Buffer.from('{\n  "id": "evt_pretty",\n  "list": [ 1, 2, 3 ]\n}\n'),
  empty: Buffer.alloc(0),
};
// A large body, stored in the fixtures as a recipe rather than its bytes.
const LARGE = { prefix: '{"id":"evt_large","pad":"', unit: 'abcdefghijklmnopqrstuvwxyz0123456789ÄÖÜ€', count: 20000, suffix: '"}' };
BODIES.large = Buffer.from(LARGE.prefix + LARGE.unit.repeat(LARGE.count) + LARGE.suffix);
// Not UTF-8: the libraries that take a Buffer decode it as UTF-8, replacing
// each invalid byte with U+FFFD, and sign or check that text instead.
BODIES.invalidUTF8 = Buffer.from([0x7b, 0x22, 0x78, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]); // {"x":"<ff>"}
BODIES.invalidUTF8Other = Buffer.from([0x7b, 0x22, 0x78, 0x22, 0x3a, 0x22, 0xfe, 0x22, 0x7d]); // {"x":"<fe>"}

// Standard Webhooks keys: bytes from a fixed formula, covering 0x00 and 0xff.
const keyBytes = (n, seed) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 151 + seed * 37 + (i % 3 === 0 ? 0 : 255)) & 0xff));
const whsec = (b, pad = true) => 'whsec_' + (pad ? b.toString('base64') : b.toString('base64').replace(/=+$/, ''));

function bodyField(body) {
  if (body === BODIES.large) return { body_repeat: LARGE };
  const text = body.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(body)) return { body: text };
  return { body_base64: body.toString('base64') };
}
function secretsField(secrets) {
  const texts = secrets.map((s) => s.toString('utf8'));
  if (texts.every((t, i) => Buffer.from(t, 'utf8').equals(secrets[i]) && !/[\x00-\x1f]/.test(t))) return { secrets: texts };
  return { secrets_base64: secrets.map((s) => s.toString('base64')) };
}
const utf8 = (body) => {
  const text = body.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(body)) throw new Error('body is not UTF-8; this library takes text only');
  return text;
};

// ---- the libraries' verdicts ---------------------------------------------

// Each returns { accepts, error }. A receiver configured with several
// secrets (rotation) accepts when the library accepts under any of them,
// which is how each library's documentation says to rotate (octokit's
// verifyWithFallback does exactly that).

const stripe = new Stripe('sk_test_interop');
function stripeVerdict(body, headers, secrets, receivedMs, tolerance = 300) {
  let error;
  for (const s of secrets) {
    try {
      stripe.webhooks.signature.verifyHeader(body, headers['Stripe-Signature'], s.toString('utf8'), tolerance, undefined, receivedMs);
      return { accepts: true };
    } catch (e) {
      error ??= e.message.split('\n')[0];
    }
  }
  return { accepts: false, error };
}

async function githubVerdict(body, headers, secrets) {
  try {
    const ok = await verifyWithFallback(secrets[0], utf8(body), headers['X-Hub-Signature-256'], secrets.slice(1));
    return ok ? { accepts: true } : { accepts: false, error: 'signature does not match' };
  } catch (e) {
    return { accepts: false, error: e.message };
  }
}

const shopifyApps = new Map();
function shopifyApp(secret) {
  const k = secret.toString('base64');
  if (!shopifyApps.has(k)) {
    shopifyApps.set(k, shopifyApi({
      apiKey: 'interop', apiSecretKey: new Uint8Array(secret), apiVersion: ApiVersion.January25,
      isEmbeddedApp: false, hostName: 'inlet.example', logger: { level: LogSeverity.Error, log: async () => {} },
    }));
  }
  return shopifyApps.get(k);
}
// The library also requires the topic, domain, API version and webhook id
// headers; shopifyHeaders supplies them in the style of the signature
// header's name.
async function shopifyVerdict(body, headers, secrets) {
  let error;
  for (const s of secrets) {
    const r = await shopifyApp(s).webhooks.validate({
      rawBody: utf8(body), rawRequest: { headers: { ...headers }, method: 'POST', url: '/webhooks/shop' }, rawResponse: {},
    });
    if (r.valid) return { accepts: true };
    error ??= r.reason;
  }
  return { accepts: false, error };
}

// standardwebhooks takes no receive time: Date.now is pinned around the
// call.
function swVerdict(lib, body, headers, secrets, receivedMs) {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const realNow = Date.now;
  Date.now = () => receivedMs;
  let error;
  try {
    for (const s of secrets) {
      try {
        const w = lib === 'svix' ? new SvixWebhook(s) : new StandardWebhook(s);
        w.verify(body, lower, { jsonParse: false });
        return { accepts: true };
      } catch (e) {
        error ??= e.message;
      }
    }
  } finally {
    Date.now = realNow;
  }
  return { accepts: false, error };
}

// ---- vectors ----------------------------------------------------------------

const vectors = { stripe: [], github: [], shopify: [], 'standard-webhooks': [] };
const names = new Set();
function add(kind, v) {
  if (names.has(v.name)) throw new Error(`duplicate vector name ${v.name}`);
  names.add(v.name);
  const { accepts, error } = v.verdict;
  vectors[kind].push({
    name: v.name,
    ...(v.note ? { note: v.note } : {}),
    signed_by: v.signedBy,
    ...secretsField(v.secrets),
    ...(v.tolerance ? { tolerance_seconds: v.tolerance } : {}),
    headers: v.headers,
    ...bodyField(v.body),
    received_unix_ms: v.receivedMs,
    ...(v.signedAt !== undefined ? { signed_unix: v.signedAt } : {}),
    library: v.library,
    library_accepts: accepts,
    ...(error ? { library_error: error } : {}),
  });
}
const b = (s) => Buffer.from(s, 'utf8');

// Stripe ---------------------------------------------------------------------

{
  const sec = b('whsec_interopStripeSecret0123456789abcdef');
  const old = b('whsec_interopStripeSecretPREVIOUSrotated01');
  const uni = b('whsec_ünïcødé-秘密-🔑');
  const gen = (body, secret, timestamp, scheme) => stripe.webhooks.generateTestHeaderString({
    payload: body, secret: secret.toString('utf8'), timestamp, ...(scheme ? { scheme } : {}),
  });
  const sig = (body, secret, timestamp) => gen(body.toString('utf8'), secret, timestamp).split(',')[1];
  const lib = `${LIB.stripe} generateTestHeaderString`;
  const S = (name, body, headerValue, { secrets = [sec], receivedMs = ms(T0 + 10), signedBy = lib, tolerance, note } = {}) => {
    const headers = { 'Stripe-Signature': headerValue };
    add('stripe', {
      name: `stripe/${name}`, note, signedBy, secrets, tolerance, headers, body, receivedMs,
      library: `${LIB.stripe} webhooks.signature.verifyHeader`,
      verdict: stripeVerdict(body, headers, secrets, receivedMs, tolerance ?? 300),
    });
  };
  for (const [n, body] of Object.entries({ json: BODIES.json, unicode: BODIES.unicode, crlf: BODIES.crlf, pretty: BODIES.pretty, large: BODIES.large })) {
    S(`${n} body`, body, gen(body.toString('utf8'), sec, T0));
  }
  S('empty body', BODIES.empty, gen('', sec, T0));
  S('non-ASCII secret', BODIES.json, gen(BODIES.json.toString('utf8'), uni, T0), { secrets: [uni] });
  const two = `t=${T0},${sig(BODIES.json, old, T0)},${sig(BODIES.json, sec, T0)}`;
  S('two v1 during a roll, receiver has the new secret', BODIES.json, two, { signedBy: `${lib}, one per secret, joined` });
  S('two v1 during a roll, receiver has the old secret', BODIES.json, two, { secrets: [old], signedBy: `${lib}, one per secret, joined` });
  S('two v1 during a roll, receiver has both secrets', BODIES.json, two, { secrets: [b('whsec_unrelated'), old], signedBy: `${lib}, one per secret, joined` });
  S('two v1, receiver has neither secret', BODIES.json, two, { secrets: [b('whsec_unrelated')], signedBy: `${lib}, one per secret, joined` });
  S('v0 scheme only', BODIES.json, gen(BODIES.json.toString('utf8'), sec, T0, 'v0'));
  S('v1 and v0', BODIES.json, `${gen(BODIES.json.toString('utf8'), sec, T0)},v0=${gen(BODIES.json.toString('utf8'), sec, T0, 'v0').split('v0=')[1]}`);
  S('wrong secret', BODIES.json, gen(BODIES.json.toString('utf8'), b('whsec_wrong'), T0));
  S('tampered body', b(BODIES.json.toString('utf8').replace('2000', '2001')), gen(BODIES.json.toString('utf8'), sec, T0));
  S('CRLF body checked as LF', b(BODIES.crlf.toString('utf8').replaceAll('\r\n', '\n')), gen(BODIES.crlf.toString('utf8'), sec, T0));
  // Tolerance edges (300 s by default in both).
  S('received 300s after signing', BODIES.json, gen(BODIES.json.toString('utf8'), sec, T0), { receivedMs: ms(T0 + 300) });
  S('received 301s after signing', BODIES.json, gen(BODIES.json.toString('utf8'), sec, T0), { receivedMs: ms(T0 + 301) });
  S('received 300.5s after signing', BODIES.json, gen(BODIES.json.toString('utf8'), sec, T0), { receivedMs: ms(T0 + 300) + 500 });
  S('received 300s before signing', BODIES.json, gen(BODIES.json.toString('utf8'), sec, T0), { receivedMs: ms(T0 - 300) });
  S('received 301s before signing', BODIES.json, gen(BODIES.json.toString('utf8'), sec, T0), { receivedMs: ms(T0 - 301) });
  S('received an hour before signing', BODIES.json, gen(BODIES.json.toString('utf8'), sec, T0), { receivedMs: ms(T0 - 3600) });
  S('custom tolerance 10s, received 10s after', BODIES.json, gen(BODIES.json.toString('utf8'), sec, T0), { receivedMs: ms(T0 + 10), tolerance: 10 });
  S('custom tolerance 10s, received 11s after', BODIES.json, gen(BODIES.json.toString('utf8'), sec, T0), { receivedMs: ms(T0 + 11), tolerance: 10 });
  // Spellings Stripe never sends, with a MAC that is right for the text the
  // library checks.
  const v1 = sig(BODIES.json, sec, T0);
  S('upper-case hex', BODIES.json, `t=${T0},v1=${v1.slice(3).toUpperCase()}`, { signedBy: `${lib}, hex upper-cased` });
  S('elements reordered', BODIES.json, `${v1},t=${T0}`, { signedBy: `${lib}, reordered` });
  S('space after comma', BODIES.json, `t=${T0}, ${v1}`, { signedBy: `${lib}, respaced` });
  S('leading zero in t', BODIES.json, `t=0${T0},${v1}`, { signedBy: `${lib}, t rewritten` });
  S('plus sign in t', BODIES.json, `t=+${T0},${v1}`, { signedBy: `${lib}, t rewritten` });
  S('fraction in t', BODIES.json, `t=${T0}.9,${v1}`, { signedBy: `${lib}, t rewritten` });
  S('trailing text in t', BODIES.json, `t=${T0}abc,${v1}`, { signedBy: `${lib}, t rewritten` });
  S('two t elements, last one signed', BODIES.json, `t=${T0 - 5000},t=${T0},${v1}`, { signedBy: `${lib}, t added` });
  S('valid v1 beside a malformed v1', BODIES.json, `t=${T0},v1=zz,${v1}`, { signedBy: `${lib}, v1 added` });
  S('valid v1 among 16 unrelated v1', BODIES.json, `t=${T0},${Array(16).fill(sig(BODIES.json, old, T0)).join(',')},${v1}`, { signedBy: `${lib}, v1 added` });
  S('empty element', BODIES.json, `t=${T0},,${v1}`, { signedBy: `${lib}, element added` });
  // Bodies that are not UTF-8: the library signs and checks the text it
  // decodes from them.
  S('invalid UTF-8 body, library signature', BODIES.invalidUTF8, gen(BODIES.invalidUTF8, sec, T0), {
    note: 'the library signed the U+FFFD-replaced text, not these bytes' });
  S('invalid UTF-8 body, other bytes with the same library signature', BODIES.invalidUTF8Other, gen(BODIES.invalidUTF8, sec, T0), {
    note: 'a different body (0xfe where the signed one had 0xff) decodes to the same text' });
  const raw = `t=${T0},v1=${createHmac('sha256', sec).update(Buffer.concat([b(`${T0}.`), BODIES.invalidUTF8])).digest('hex')}`;
  S('invalid UTF-8 body, MAC over the bytes', BODIES.invalidUTF8, raw, { signedBy: 'node:crypto HMAC over the raw bytes' });
}

// GitHub ---------------------------------------------------------------------

{
  const sec = b('interop-github-secret');
  const old = b('interop-github-secret-previous');
  const uni = b('sécret 🔑 with spaces');
  const bin = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f, 0xc3, 0x28, 0x0a, 0x0d, 0x20]);
  const lib = `${LIB.octokit} sign`;
  const G = async (name, body, sigValue, { secrets = [sec], signedBy = lib, note } = {}) => {
    const headers = { 'X-Hub-Signature-256': sigValue };
    add('github', {
      name: `github/${name}`, note, signedBy, secrets, headers, body, receivedMs: ms(T0),
      library: `${LIB.octokit} verifyWithFallback`, verdict: await githubVerdict(body, headers, secrets),
    });
  };
  for (const [n, body] of Object.entries({ json: BODIES.json, unicode: BODIES.unicode, crlf: BODIES.crlf, pretty: BODIES.pretty, large: BODIES.large })) {
    await G(`${n} body`, body, await octoSign(sec.toString('utf8'), utf8(body)));
  }
  await G('non-ASCII secret', BODIES.json, await octoSign(uni.toString('utf8'), utf8(BODIES.json)), { secrets: [uni] });
  await G('binary secret', BODIES.json, await octoSign(bin, utf8(BODIES.json)), { secrets: [bin] });
  await G('rotation: signed with the old secret', BODIES.json, await octoSign(old.toString('utf8'), utf8(BODIES.json)), { secrets: [sec, old] });
  await G('wrong secret', BODIES.json, await octoSign('wrong', utf8(BODIES.json)));
  await G('tampered body', b(BODIES.json.toString('utf8').replace('2000', '2001')), await octoSign(sec.toString('utf8'), utf8(BODIES.json)));
  const hex = (await octoSign(sec.toString('utf8'), utf8(BODIES.json))).slice('sha256='.length);
  await G('upper-case hex', BODIES.json, 'sha256=' + hex.toUpperCase(), { signedBy: `${lib}, hex upper-cased` });
  await G('upper-case prefix', BODIES.json, 'SHA256=' + hex, { signedBy: `${lib}, prefix upper-cased` });
  await G('no prefix', BODIES.json, hex, { signedBy: `${lib}, prefix removed` });
  await G('sha1 prefix', BODIES.json, 'sha1=' + createHmac('sha1', sec).update(BODIES.json).digest('hex'), { signedBy: 'node:crypto HMAC-SHA1 (the legacy X-Hub-Signature scheme)' });
  await G('empty body', BODIES.empty, 'sha256=' + createHmac('sha256', sec).update(BODIES.empty).digest('hex'), {
    signedBy: 'node:crypto HMAC-SHA256 (the library refuses to sign an empty payload)',
    note: 'the library throws on an empty payload before checking the signature' });
}

// Shopify --------------------------------------------------------------------

{
  const sec = b('interop-shopify-client-secret');
  const old = b('interop-shopify-client-secret-previous');
  const uni = b('shpss_ünïcødé_秘密');
  const bin = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f, 0xc3, 0x28, 0x0a, 0x0d, 0x20]);
  const lib = `${LIB.shopify} test-helpers getHmac`;
  // The headers Shopify sends with a delivery, in its legacy X-Shopify-*
  // names or the newer unprefixed Shopify-* ones.
  const shopifyHeaders = (hmac, style = 'x') => {
    const p = style === 'x' ? 'X-Shopify-' : 'Shopify-';
    return {
      [`${p}Hmac-Sha256`]: hmac, [`${p}Topic`]: 'orders/updated', [`${p}Shop-Domain`]: 'inlet-interop.myshopify.com',
      [`${p}Api-Version`]: '2025-01', [`${p}Webhook-Id`]: 'b54557e4-bdd9-4b37-8a5f-bf7d70bcd043',
    };
  };
  const H = async (name, body, headers, { secrets = [sec], signedBy = lib, note } = {}) => {
    add('shopify', {
      name: `shopify/${name}`, note, signedBy, secrets, headers, body, receivedMs: ms(T0),
      library: `${LIB.shopify} webhooks.validate`, verdict: await shopifyVerdict(body, headers, secrets),
    });
  };
  const mac = (body, secret = sec) => shopifyGetHmac(utf8(body), secret);
  for (const [n, body] of Object.entries({ json: BODIES.json, unicode: BODIES.unicode, crlf: BODIES.crlf, pretty: BODIES.pretty, large: BODIES.large })) {
    await H(`${n} body`, body, shopifyHeaders(mac(body)));
  }
  await H('non-ASCII secret', BODIES.json, shopifyHeaders(mac(BODIES.json, uni.toString('utf8'))), { secrets: [uni] });
  await H('binary secret', BODIES.json, shopifyHeaders(mac(BODIES.json, bin)), { secrets: [bin] });
  await H('rotation: signed with the old secret', BODIES.json, shopifyHeaders(mac(BODIES.json, old)), { secrets: [sec, old] });
  await H('wrong secret', BODIES.json, shopifyHeaders(mac(BODIES.json, 'wrong')));
  await H('tampered body', b(BODIES.json.toString('utf8').replace('2000', '2001')), shopifyHeaders(mac(BODIES.json)));
  const good = mac(BODIES.json);
  await H('unpadded base64', BODIES.json, shopifyHeaders(good.replace(/=+$/, '')), { signedBy: `${lib}, padding removed` });
  await H('hex instead of base64', BODIES.json, shopifyHeaders(createHmac('sha256', sec).update(BODIES.json).digest('hex')), { signedBy: 'node:crypto, hex' });
  await H('new header names (Shopify-*)', BODIES.json, shopifyHeaders(good, 'new'));
  await H('new header names, unicode body', BODIES.unicode, shopifyHeaders(mac(BODIES.unicode), 'new'));
  await H('both header names, the new one valid', BODIES.json, { ...shopifyHeaders(mac(BODIES.json, 'wrong')), ...shopifyHeaders(good, 'new') });
  await H('both header names, only the legacy one valid', BODIES.json, { ...shopifyHeaders(good), ...shopifyHeaders(mac(BODIES.json, 'wrong'), 'new') },
    { note: 'the library reads the new header whenever it is present' });
  await H('empty body', BODIES.empty, shopifyHeaders(createHmac('sha256', sec).update(BODIES.empty).digest('base64')), {
    signedBy: 'node:crypto HMAC-SHA256', note: 'the library refuses an empty body (missing_body) before checking the signature' });
}

// Standard Webhooks -------------------------------------------------------------

{
  const k32 = keyBytes(32, 1);
  const k24 = keyBytes(24, 2);
  const k64 = keyBytes(64, 3);
  const kOld = keyBytes(32, 4);
  const sec = whsec(k32);
  const ID = 'msg_2SvUa7mGHBJNzmHq7bJcdKaJW1x';
  const swSign = (secret, id, unix, body) => new StandardWebhook(secret).sign(id, new Date(unix * 1000), body);
  const lib = `${LIB.sw} Webhook.sign`;
  const W = (name, body, headers, { secrets = [sec], receivedMs = ms(T0 + 10), signedBy = lib, note, libName = 'standardwebhooks' } = {}) => {
    add('standard-webhooks', {
      name: `standard-webhooks/${name}`, note, signedBy, secrets: secrets.map(b), headers, body, receivedMs,
      library: `${libName === 'svix' ? LIB.svix : LIB.sw} Webhook.verify`,
      verdict: swVerdict(libName, body, headers, secrets, receivedMs),
    });
  };
  const hdr = (sig, { id = ID, ts = String(T0) } = {}) => ({ 'Webhook-Id': id, 'Webhook-Timestamp': ts, 'Webhook-Signature': sig });
  for (const [n, body] of Object.entries({ json: BODIES.json, unicode: BODIES.unicode, crlf: BODIES.crlf, pretty: BODIES.pretty, large: BODIES.large, empty: BODIES.empty })) {
    W(`${n} body`, body, hdr(swSign(sec, ID, T0, body)));
  }
  W('24-byte key', BODIES.json, hdr(swSign(whsec(k24), ID, T0, BODIES.json)), { secrets: [whsec(k24)] });
  W('64-byte key', BODIES.json, hdr(swSign(whsec(k64), ID, T0, BODIES.json)), { secrets: [whsec(k64)] });
  W('secret without whsec_ prefix', BODIES.json, hdr(swSign(sec, ID, T0, BODIES.json)), { secrets: [k32.toString('base64')] });
  const sOld = swSign(whsec(kOld), ID, T0, BODIES.json);
  const sNew = swSign(sec, ID, T0, BODIES.json);
  W('two v1 during a roll, receiver has the new secret', BODIES.json, hdr(`${sOld} ${sNew}`), { signedBy: `${lib}, one per secret, joined` });
  W('two v1 during a roll, receiver has the old secret', BODIES.json, hdr(`${sOld} ${sNew}`), { secrets: [whsec(kOld)], signedBy: `${lib}, one per secret, joined` });
  W('receiver rotating, signed with the old secret', BODIES.json, hdr(sOld), { secrets: [sec, whsec(kOld)] });
  W('two v1, receiver has neither secret', BODIES.json, hdr(`${sOld} ${sNew}`), { secrets: [whsec(k24)], signedBy: `${lib}, one per secret, joined` });
  W('v1a entry and v1', BODIES.json, hdr(`v1a,${Buffer.alloc(64, 7).toString('base64')} ${sNew}`), { signedBy: `${lib}, v1a entry added` });
  W('v1a entry only', BODIES.json, hdr(`v1a,${Buffer.alloc(64, 7).toString('base64')}`), { signedBy: 'hand-written v1a entry' });
  W('wrong secret', BODIES.json, hdr(swSign(whsec(k24), ID, T0, BODIES.json)));
  W('tampered body', b(BODIES.json.toString('utf8').replace('2000', '2001')), hdr(sNew));
  W('other message id', BODIES.json, hdr(sNew, { id: 'msg_other' }));
  W('id with characters outside base64', BODIES.json, hdr(swSign(sec, 'evt_ü:/#1', T0, BODIES.json), { id: 'evt_ü:/#1' }));
  // Tolerance edges (300 s both ways in both).
  const at = (unix) => hdr(swSign(sec, ID, unix, BODIES.json), { ts: String(unix) });
  W('received 300s after signing', BODIES.json, at(T0), { receivedMs: ms(T0 + 300) });
  W('received 301s after signing', BODIES.json, at(T0), { receivedMs: ms(T0 + 301) });
  W('received 300.5s after signing', BODIES.json, at(T0), { receivedMs: ms(T0 + 300) + 500 });
  W('received 300s before signing', BODIES.json, at(T0), { receivedMs: ms(T0 - 300) });
  W('received 301s before signing', BODIES.json, at(T0), { receivedMs: ms(T0 - 301) });
  W('received 300.5s before signing', BODIES.json, at(T0), { receivedMs: ms(T0 - 300) - 500 });
  // Spellings the specification does not allow, with a MAC right for what the
  // library checks.
  W('unpadded signature', BODIES.json, hdr(sNew.replace(/=+$/, '')), { signedBy: `${lib}, padding removed` });
  W('entries separated by two spaces', BODIES.json, hdr(`${sOld}  ${sNew}`), { signedBy: `${lib}, respaced` });
  W('valid v1 beside a malformed v1', BODIES.json, hdr(`v1,!! ${sNew}`), { signedBy: `${lib}, entry added` });
  W('valid v1 among 16 unrelated v1', BODIES.json, hdr(`${Array(16).fill(sOld).join(' ')} ${sNew}`), { signedBy: `${lib}, entries added` });
  W('leading zero in timestamp', BODIES.json, hdr(sNew, { ts: `0${T0}` }), { signedBy: `${lib}, timestamp rewritten` });
  W('trailing text in timestamp', BODIES.json, hdr(sNew, { ts: `${T0}abc` }), { signedBy: `${lib}, timestamp rewritten` });
  W('timestamp in milliseconds', BODIES.json, hdr(swSign(sec, ID, T0 * 1000, BODIES.json), { ts: String(T0 * 1000) }), { signedBy: `${lib}, at a time in ms` });
  W('id containing a dot', BODIES.json, hdr(swSign(sec, 'msg.1', T0, BODIES.json), { id: 'msg.1' }));
  // Not UTF-8.
  W('invalid UTF-8 body, library signature', BODIES.invalidUTF8, hdr(swSign(sec, ID, T0, BODIES.invalidUTF8)), {
    note: 'the library signed the U+FFFD-replaced text, not these bytes' });
  W('invalid UTF-8 body, other bytes with the same library signature', BODIES.invalidUTF8Other, hdr(swSign(sec, ID, T0, BODIES.invalidUTF8)), {
    note: 'a different body (0xfe where the signed one had 0xff) decodes to the same text' });
  const raw = 'v1,' + createHmac('sha256', k32).update(Buffer.concat([b(`${ID}.${T0}.`), BODIES.invalidUTF8])).digest('base64');
  W('invalid UTF-8 body, MAC over the bytes', BODIES.invalidUTF8, hdr(raw), { signedBy: 'node:crypto HMAC over the raw bytes' });
  // Svix, which wraps the reference library and also reads svix-* headers.
  W('svix: webhook-* headers', BODIES.json, hdr(sNew), { libName: 'svix' });
  W('svix: svix-* headers', BODIES.json, { 'Svix-Id': ID, 'Svix-Timestamp': String(T0), 'Svix-Signature': sNew }, { libName: 'svix' });
}

// Inlet's signers, checked by the libraries -------------------------------------

{
  // Inlet's pkg/webhook Sign (its tests' helpers, `make run`'s sample curl,
  // loadtest/benchingest) and loadtest/gen's signers, through inletsign;
  // loadtest/k6/lib/sign.js directly, with node:crypto as its tests do.
  const dev = {
    stripe: 'whsec_dev_stripe_secret_change_me', github: 'dev-github-secret', shopify: 'dev-shopify-secret',
    'standard-webhooks': 'whsec_ZGV2LWJpbGxpbmctc2VjcmV0LWNoYW5nZS1tZQ==',
  };
  const other = {
    stripe: 'whsec_ünïcødé-秘密-🔑', github: 'sécret 🔑 with spaces', shopify: 'shpss_ünïcødé_秘密', 'standard-webhooks': whsec(keyBytes(32, 5), false),
  };
  const bodies = { json: BODIES.json, unicode: BODIES.unicode, crlf: BODIES.crlf, empty: BODIES.empty };
  const reqs = [];
  for (const kind of Object.keys(vectors)) {
    for (const [sname, secret] of Object.entries({ dev: dev[kind], 'non-ASCII': other[kind] })) {
      for (const [bname, body] of Object.entries(bodies)) {
        reqs.push({ kind, sname, bname, secret, body_base64: body.toString('base64'), unix: T0, id: kind === 'standard-webhooks' ? `msg_inlet_${sname === 'dev' ? 'dev' : 'na'}_${bname}` : '' });
      }
    }
  }
  const signedOut = JSON.parse(execFileSync('go', ['run', './pkg/webhook/testdata/interop/inletsign'], {
    cwd: root, input: JSON.stringify(reqs.map(({ sname, bname, ...r }) => r)), encoding: 'utf8',
  }));
  const prims = {
    hmac: (key, msg, enc) => createHmac('sha256', typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key)).update(msg, 'utf8').digest(enc),
    b64decode: (s) => Buffer.from(s, 'base64'),
  };
  for (const [i, r] of reqs.entries()) {
    const body = Buffer.from(r.body_base64, 'base64');
    const bySigner = {
      'pkg/webhook Sign': signedOut[i].webhook,
      'loadtest/gen Sign': signedOut[i].gen,
      'loadtest/k6/lib/sign.js': k6.signatureHeaders(prims, r.kind, r.secret, body.toString('utf8'), r.id, T0),
    };
    for (const [signer, raw] of Object.entries(bySigner)) {
      // Canonical header names, as Go's net/http presents them.
      const headers = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k.split('-').map((w) => w[0].toUpperCase() + w.slice(1).toLowerCase()).join('-'), v]));
      const secrets = [b(r.secret)];
      const name = `inlet/${r.kind}/${signer}, ${r.sname} secret, ${r.bname} body`;
      const receivedMs = ms(T0 + 10);
      let library, verdict;
      switch (r.kind) {
        case 'stripe':
          library = `${LIB.stripe} webhooks.signature.verifyHeader`; verdict = stripeVerdict(body, headers, secrets, receivedMs); break;
        case 'github':
          library = `${LIB.octokit} verifyWithFallback`; verdict = await githubVerdict(body, headers, secrets); break;
        case 'shopify': {
          library = `${LIB.shopify} webhooks.validate`;
          const full = { ...headers, 'X-Shopify-Topic': 'orders/updated', 'X-Shopify-Shop-Domain': 'inlet-interop.myshopify.com', 'X-Shopify-Api-Version': '2025-01', 'X-Shopify-Webhook-Id': 'dev-interop' };
          verdict = await shopifyVerdict(body, full, secrets);
          break;
        }
        case 'standard-webhooks':
          library = `${LIB.sw} Webhook.verify`; verdict = swVerdict('standardwebhooks', body, headers, [r.secret], receivedMs); break;
      }
      add(r.kind, { name, signedBy: signer, secrets, headers, body, receivedMs, signedAt: T0, library, verdict });
    }
  }
}

// ---- write --------------------------------------------------------------------

for (const [kind, list] of Object.entries(vectors)) {
  const file = join(out, `${kind}.json`);
  const doc = {
    comment: 'Generated by generate.mjs; do not edit. Each vector: the library named verified headers over the body at received_unix_ms, with the configured secrets (any one may match), and accepted or not.',
    libraries: Object.values(LIB),
    vectors: list,
  };
  writeFileSync(file, JSON.stringify(doc, null, 1) + '\n');
  const acc = list.filter((v) => v.library_accepts).length;
  console.log(`${kind}: ${list.length} vectors (${acc} accepted by the library, ${list.length - acc} rejected) -> ${file}`);
}
