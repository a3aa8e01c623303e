// Fan-out scenario (the pull storm of a fleet rollout): setup pushes one large image (LAYERS × LAYER_SIZE);
// then VUS virtual users all pull that same image at once, ITERATIONS times each. Reports the whole-image
// pull time at p50 / p99 / p99.9.
//   k6 run -e WHARF_URL=http://registry:5000 -e VUS=200 -e LAYERS=4 -e LAYER_SIZE=64MB fanout.js
import crypto from 'k6/crypto';
import { Counter, Trend } from 'k6/metrics';
import { env, envInt, parseSize, pullImage, pushImage, requireRegistry, runId, PREFIX } from './lib/registry.js';

const storm = new Trend('fanout_pull_duration', true);
const pulledBytes = new Counter('fanout_pulled_bytes');

export const options = {
  scenarios: {
    storm: {
      executor: 'per-vu-iterations',
      vus: envInt('VUS', 100),
      iterations: envInt('ITERATIONS', 1),
      maxDuration: env('MAX_DURATION', '30m'),
    },
  },
  setupTimeout: '30m',
  summaryTrendStats: ['min', 'med', 'p(90)', 'p(99)', 'p(99.9)', 'max'],
  thresholds: {
    http_req_failed: [`rate<${env('MAX_ERROR_RATE', '0.001')}`],
    checks: ['rate>0.999'],
    fanout_pull_duration: [`p(99)<${envInt('PULL_P99_MS', 120000)}`, `p(99.9)<${envInt('PULL_P999_MS', 180000)}`],
    'http_req_duration{op:manifest-pull}': [`p(99)<${envInt('MANIFEST_P99_MS', 250)}`],
  },
};

export function setup() {
  requireRegistry();
  const image = env('IMAGE', '');
  if (image !== '') {
    const at = image.lastIndexOf(':');
    return { repo: image.substring(0, at), tag: image.substring(at + 1) };
  }
  const repo = `${PREFIX}/fanout-${runId()}`;
  const layers = [];
  for (let i = 0; i < envInt('LAYERS', 4); i++) layers.push(crypto.randomBytes(parseSize(env('LAYER_SIZE', '64MB'))));
  if (pushImage(repo, 'rollout', layers, { mode: 'chunked' }) === '') throw new Error(`setup: could not push ${repo}:rollout`);
  return { repo, tag: 'rollout' };
}

/** @param {{repo: string, tag: string}} data */
export default function (data) {
  const t0 = Date.now();
  const bytes = pullImage(data.repo, data.tag, { verify: env('VERIFY', '0') === '1' });
  if (bytes >= 0) {
    storm.add(Date.now() - t0);
    pulledBytes.add(bytes);
  }
}
