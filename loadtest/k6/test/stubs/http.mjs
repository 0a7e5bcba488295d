// Stub of k6/http: records every request in globalThis.__k6requests and
// answers with the status the request expects (tags.expect), or with what
// globalThis.__k6answer(request) returns. json(key) reads the answer.
function answer(method, url, body, params = {}) {
  const req = { method, url, body, headers: params.headers || {}, tags: params.tags || {}, timeout: params.timeout };
  (globalThis.__k6requests ||= []).push(req);
  const status = globalThis.__k6answer ? globalThis.__k6answer(req) : Number(req.tags.expect || 200);
  // A batch answer counts its lines, as ingest's does.
  const lines = url.includes('/events/') ? String(body).split('\n').filter((l) => l.trim()).length : 0;
  const text = url.includes('/events/') ? JSON.stringify({ accepted: status === 200 ? lines : 0, rejected: 0, failed: 0 }) : '{}';
  return { status, body: text, request: req, json: (sel) => (sel ? JSON.parse(text)[sel] : JSON.parse(text)) };
}
export function request(method, url, body, params) { return answer(method, url, body, params); }
export function post(url, body, params) { return answer('POST', url, body, params); }
export function get(url, params) { return answer('GET', url, null, params); }
export function batch(reqs) { return reqs.map(([m, u, b, p]) => answer(m, u, b, p)); }
export function expectedStatuses(...s) { return { expected: s }; }
export function setResponseCallback() {}
export default { request, post, get, batch, expectedStatuses, setResponseCallback };
