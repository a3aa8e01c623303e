// What one shim run records: checks, metrics (built-in and custom), failures.
export const state = {
  checks: new Map(), // name -> { passes, fails }
  metrics: new Map(), // name -> { type, isTime, values: number[] }
  failures: [],
};

export function metric(name, type, isTime = false) {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(name)) throw new Error(`invalid metric name: ${name}`);
  let m = state.metrics.get(name);
  if (!m) {
    m = { type, isTime, values: [] };
    state.metrics.set(name, m);
  } else if (m.type !== type) {
    throw new Error(`metric ${name} already defined as a ${m.type}`);
  }
  return m;
}

// k6's built-in metrics, so thresholds on them validate.
for (const [n, t, time] of [
  ['checks', 'rate'], ['http_reqs', 'counter'], ['http_req_duration', 'trend', true], ['http_req_failed', 'rate'],
  ['http_req_waiting', 'trend', true], ['http_req_sending', 'trend', true], ['http_req_receiving', 'trend', true],
  ['http_req_blocked', 'trend', true], ['http_req_connecting', 'trend', true], ['http_req_tls_handshaking', 'trend', true],
  ['iterations', 'counter'], ['iteration_duration', 'trend', true], ['data_sent', 'counter'], ['data_received', 'counter'],
  ['vus', 'gauge'], ['vus_max', 'gauge'],
]) metric(n, t, time);
