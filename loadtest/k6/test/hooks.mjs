// Module resolution hooks for running the k6 scripts under Node: 'k6' and
// 'k6/*' resolve to the stubs in ./stubs.
export async function resolve(specifier, context, next) {
  if (specifier === 'k6' || specifier.startsWith('k6/')) {
    const name = specifier === 'k6' ? 'k6' : specifier.slice(3);
    return { url: new URL(`./stubs/${name}.mjs`, import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
