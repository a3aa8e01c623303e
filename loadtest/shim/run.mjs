#!/usr/bin/env node
// Runs a k6 script under Node with this shim of the k6 modules: the init context, setup(), the default
// function for a few iterations (one VU), teardown(). Exits 1 if any check failed, anything threw, no check
// ran, or a threshold names a metric the script does not define. It does not enforce thresholds' values
// (a few iterations say nothing about p99) and ignores options' VUs, durations and scenarios.
//   node shim/run.mjs [-i ITERATIONS] [-e KEY=VALUE ...] k6/pull.js
import { register } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

register('./hooks.mjs', import.meta.url);

const args = process.argv.slice(2);
let iterations = 3;
let script = '';
const env = Object.assign({}, process.env);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '-i' || args[i] === '--iterations') iterations = parseInt(args[++i], 10);
  else if (args[i] === '-e' || args[i] === '--env') { const kv = args[++i]; const at = kv.indexOf('='); env[kv.slice(0, at)] = kv.slice(at + 1); }
  else script = args[i];
}
if (!script) { console.error('usage: run.mjs [-i N] [-e KEY=VALUE ...] script.js'); process.exit(2); }
const scriptPath = path.resolve(script);

globalThis.__ENV = env;
globalThis.__VU = 0; // init context, as in k6
globalThis.__ITER = 0;
let inInit = true;
globalThis.open = (file, mode) => {
  if (!inInit) throw new Error('open() is only available in the init context');
  const p = path.resolve(path.dirname(scriptPath), file);
  if (mode === 'b') { const b = readFileSync(p); return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength); }
  return readFileSync(p, 'utf8');
};

const { state } = await import('./k6/state.mjs');
const t0 = Date.now();
let exitCode = 0;
const problems = [];
try {
  const mod = await import(pathToFileURL(scriptPath).href);
  inInit = false;
  if (typeof mod.default !== 'function') throw new Error('the script has no default function');
  const options = mod.options || {};
  for (const key of Object.keys(options.thresholds || {})) {
    const name = key.replace(/\{.*\}$/, '');
    if (!state.metrics.has(name)) problems.push(`threshold on unknown metric: ${key}`);
    for (const expr of [].concat(options.thresholds[key]).map((t) => (typeof t === 'string' ? t : t.threshold))) {
      if (!/^(avg|min|max|med|count|rate|value|p\(\d+(\.\d+)?\))\s*(<|<=|>|>=|==|===|!=)\s*-?\d+(\.\d+)?$/.test(expr)) problems.push(`bad threshold expression on ${key}: ${expr}`);
    }
  }
  globalThis.__VU = 1;
  const data = typeof mod.setup === 'function' ? await mod.setup() : undefined;
  const shared = data === undefined ? undefined : JSON.parse(JSON.stringify(data)); // k6 passes a copy
  for (let i = 0; i < iterations; i++) {
    globalThis.__ITER = i;
    const it = Date.now();
    await mod.default(shared);
    state.metrics.get('iterations').values.push(1);
    state.metrics.get('iteration_duration').values.push(Date.now() - it);
  }
  if (typeof mod.teardown === 'function') await mod.teardown(shared);
} catch (e) {
  problems.push(`exception: ${e && e.stack || e}`);
}

const pct = (v, p) => { if (!v.length) return NaN; const s = [...v].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]; };
console.log(`\n${path.basename(scriptPath)}: ${iterations} iteration(s) under the k6 shim in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
for (const [name, c] of state.checks) console.log(`  ${c.fails ? '✗' : '✓'} ${name}: ${c.passes} passed, ${c.fails} failed`);
for (const [name, m] of state.metrics) {
  if (!m.values.length) continue;
  const v = m.values;
  if (m.type === 'trend') console.log(`  ${name}: n=${v.length} med=${pct(v, 50).toFixed(1)} p99=${pct(v, 99).toFixed(1)} max=${Math.max(...v).toFixed(1)}${m.isTime ? ' ms' : ''}`);
  else if (m.type === 'rate') console.log(`  ${name}: ${(100 * v.reduce((a, b) => a + b, 0) / v.length).toFixed(2)} % of ${v.length}`);
  else if (m.type === 'counter') console.log(`  ${name}: ${v.reduce((a, b) => a + b, 0)}`);
  else console.log(`  ${name}: ${v[v.length - 1]}`);
}
const totalChecks = [...state.checks.values()].reduce((a, c) => a + c.passes + c.fails, 0);
if (totalChecks === 0) problems.push('no check ran');
for (const f of [...new Set(state.failures)].slice(0, 20)) problems.push(f);
if (problems.length) {
  exitCode = 1;
  console.log('FAILED:');
  for (const p of problems) console.log(`  ${p}`);
} else {
  console.log('PASSED');
}
process.exit(exitCode);
