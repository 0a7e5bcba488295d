// Stub of k6/encoding: b64decode returns an ArrayBuffer, as k6's does.
export function b64decode(s, enc = 'std') {
  const alphabet = enc.includes('url') ? 'base64url' : 'base64';
  const b = Buffer.from(s, alphabet);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
}
export function b64encode(v, enc = 'std') {
  const b = typeof v === 'string' ? Buffer.from(v) : Buffer.from(new Uint8Array(v));
  return b.toString(enc.includes('url') ? 'base64url' : 'base64');
}
export default { b64decode, b64encode };
