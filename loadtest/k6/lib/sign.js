// Webhook signatures exactly as the providers make them. Pure functions:
// the HMAC primitive comes in as `p`, so k6 passes k6/crypto and
// k6/encoding (see inlet.js) and the Node test passes node:crypto.
//
//   p.hmac(key, message, encoding): HMAC-SHA256 of message (a string) with
//     key (a string, used as its UTF-8 bytes, or bytes), encoded 'hex' or
//     'base64' (standard alphabet, padded).
//   p.b64decode(text): bytes of unpadded standard base64.

// Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256("<unix>.<body>")>, keyed
// with the whole secret text (whsec_ included).
export function signStripe(p, secret, body, ts) {
  return `t=${ts},v1=${p.hmac(secret, `${ts}.${body}`, 'hex')}`;
}

// X-Hub-Signature-256: sha256=<hex HMAC-SHA256(body)>.
export function signGitHub(p, secret, body) {
  return `sha256=${p.hmac(secret, body, 'hex')}`;
}

// X-Shopify-Hmac-Sha256: base64 HMAC-SHA256(body).
export function signShopify(p, secret, body) {
  return p.hmac(secret, body, 'base64');
}

// The key of a Standard Webhooks secret: the base64 after "whsec_".
export function standardWebhooksKey(p, secret) {
  return p.b64decode(secret.replace(/^whsec_/, '').replace(/=+$/, ''));
}

// webhook-signature: v1,<base64 HMAC-SHA256("<id>.<ts>.<body>")>.
export function signStandardWebhooks(p, secret, id, ts, body) {
  return `v1,${p.hmac(standardWebhooksKey(p, secret), `${id}.${ts}.${body}`, 'base64')}`;
}

// The signature headers for a provider kind (stripe, github, shopify,
// standard-webhooks). id is the Standard Webhooks message id; ts Unix
// seconds.
export function signatureHeaders(p, kind, secret, body, id, ts) {
  switch (kind) {
    case 'stripe':
      return { 'Stripe-Signature': signStripe(p, secret, body, ts) };
    case 'github':
      return { 'X-Hub-Signature-256': signGitHub(p, secret, body) };
    case 'shopify':
      return { 'X-Shopify-Hmac-Sha256': signShopify(p, secret, body) };
    case 'standard-webhooks':
      return {
        'webhook-id': id,
        'webhook-timestamp': String(ts),
        'webhook-signature': signStandardWebhooks(p, secret, id, ts, body),
      };
    default:
      throw new Error(`cannot sign kind ${kind}`);
  }
}
