// Module resolution hooks for running the k6 scripts under Node: 'k6' and
// 'k6/*' resolve to the stubs in ./stubs.
export async function resolve(specifier, context, next) {
  if (specifier === 'k6' || specifier.startsWith('k6/')) {
    const name = specifier === 'k6' ? 'k6' : specifier.slice(3);
    return { url: new URL(`./stubs/${name}.mjs`, import.meta.url).href, shortCircuit: true };
  }
  // A script imported as file.js?vu=N passes ?vu=N on to its relative
  // imports: each simulated VU gets its own copy of the scripts and lib,
  // as in k6.
  const vu = context.parentURL && new URL(context.parentURL).searchParams.get('vu');
  if (vu && specifier.startsWith('.')) {
    const url = new URL(specifier, context.parentURL);
    url.searchParams.set('vu', vu);
    return { url: url.href, shortCircuit: true };
  }
  return next(specifier, context);
}
