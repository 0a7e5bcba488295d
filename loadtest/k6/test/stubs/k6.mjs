// Stub of k6: check runs the checks and returns whether all passed.
export function check(value, checks) {
  let ok = true;
  for (const fn of Object.values(checks)) ok = Boolean(fn(value)) && ok;
  globalThis.__k6checks = (globalThis.__k6checks || 0) + (ok ? 0 : 1);
  return ok;
}
export function sleep() {}
export function group(_name, fn) { return fn(); }
export default { check, sleep, group };
