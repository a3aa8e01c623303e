// The shim's `k6` module: check, group, sleep, fail.
import { state, metric } from './state.mjs';

const checksMetric = metric('checks', 'rate');

export function check(value, sets, tags) {
  let all = true;
  for (const [name, fn] of Object.entries(sets || {})) {
    const ok = typeof fn === 'function' ? !!fn(value) : !!fn;
    const c = state.checks.get(name) || { passes: 0, fails: 0 };
    if (ok) c.passes++; else c.fails++;
    state.checks.set(name, c);
    checksMetric.values.push(ok ? 1 : 0);
    if (!ok) {
      all = false;
      const detail = value && typeof value === 'object' && 'status' in value
        ? ` (status ${value.status}${value.error ? `, ${value.error}` : ''}, ${value.request ? value.request.method + ' ' + value.request.url : ''})` : '';
      state.failures.push(`check failed: ${name}${detail}`);
    }
  }
  return all;
}

export function group(name, fn) {
  return fn();
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
export function sleep(seconds) {
  Atomics.wait(sleeper, 0, 0, Math.max(0, seconds * 1000));
}

export function fail(message) {
  throw new Error(message);
}

export default { check, group, sleep, fail };
