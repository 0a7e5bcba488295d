// Stub of k6/crypto on node:crypto: hmac(algorithm, secret, data, encoding),
// secret and data strings (UTF-8) or ArrayBuffers.
import { createHmac } from 'node:crypto';

const bytes = (v) => (typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(new Uint8Array(v)));
export function hmac(alg, secret, data, enc) {
  return createHmac(alg, bytes(secret)).update(bytes(data)).digest(enc);
}
export default { hmac };
