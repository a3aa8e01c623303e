// Module resolution hooks: `import http from 'k6/http'` in a k6 script resolves to this shim's module.
const map = {
  k6: 'k6/index.mjs',
  'k6/http': 'k6/http.mjs',
  'k6/crypto': 'k6/crypto.mjs',
  'k6/encoding': 'k6/encoding.mjs',
  'k6/metrics': 'k6/metrics.mjs',
};
export async function resolve(specifier, context, next) {
  if (Object.prototype.hasOwnProperty.call(map, specifier)) {
    return { url: new URL(map[specifier], import.meta.url).href, shortCircuit: true };
  }
  if (specifier.startsWith('k6/')) throw new Error(`the k6 shim does not implement ${specifier}`);
  return next(specifier, context);
}
