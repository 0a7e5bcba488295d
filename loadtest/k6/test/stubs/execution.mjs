// Stub of k6/execution: scenario.iterationInTest is globalThis.__k6iter
// (the iteration across all VUs) when a test sets it, else __ITER.
export default {
  get scenario() {
    return { iterationInTest: globalThis.__k6iter ?? globalThis.__ITER ?? 0 };
  },
};
