// Checks lib/sign.js against signatures computed by Go (loadtest/gen):
// the committed vectors.json, and the vectors in $INLET_SIGN_VECTORS when
// the Go test passes fresh ones. Run: node loadtest/k6/test/sign.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { signatureHeaders } from '../lib/sign.js';

const prims = {
  hmac: (key, msg, enc) => createHmac('sha256', typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key))
    .update(msg, 'utf8').digest(enc),
  b64decode: (s) => Buffer.from(s, 'base64'),
};

const sets = [['vectors.json', JSON.parse(readFileSync(new URL('./vectors.json', import.meta.url), 'utf8'))]];
if (process.env.INLET_SIGN_VECTORS) sets.push(['$INLET_SIGN_VECTORS', JSON.parse(process.env.INLET_SIGN_VECTORS)]);

for (const [from, vectors] of sets) {
  test(`signatures match Go (${from})`, () => {
    assert.ok(vectors.length >= 4);
    for (const v of vectors) {
      const got = signatureHeaders(prims, v.kind, v.secret, v.body, v.id, v.ts);
      for (const [name, want] of Object.entries(v.headers)) {
        const key = Object.keys(got).find((k) => k.toLowerCase() === name.toLowerCase());
        assert.equal(got[key], want, `${v.kind} ${name}`);
      }
    }
  });
}
