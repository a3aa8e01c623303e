// Pull scenario: setup pushes one image (LAYERS layers of LAYER_SIZE) unless IMAGE names one that exists
// (repo:tag); every iteration pulls it as a runtime does: the manifest by tag, then the config and every layer.
//   k6 run -e WHARF_URL=http://registry:5000 -e LAYERS=4 -e LAYER_SIZE=10MB -e VUS=16 -e DURATION=2m pull.js
import crypto from 'k6/crypto';
import { Counter, Trend } from 'k6/metrics';
import { env, envInt, parseSize, pullImage, pushImage, requireRegistry, runId, PREFIX } from './lib/registry.js';

const pullDuration = new Trend('pull_duration', true);
const pulledBytes = new Counter('pulled_bytes');

export const options = {
  vus: envInt('VUS', 8),
  duration: env('DURATION', '1m'),
  setupTimeout: '10m',
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max'],
  thresholds: {
    http_req_failed: [`rate<${env('MAX_ERROR_RATE', '0.01')}`],
    checks: ['rate>0.99'],
    'http_req_duration{op:manifest-pull}': [`p(99)<${envInt('MANIFEST_P99_MS', 100)}`],
    pull_duration: [`p(99)<${envInt('PULL_P99_MS', 30000)}`],
  },
};

export function setup() {
  requireRegistry();
  const image = env('IMAGE', '');
  if (image !== '') {
    const at = image.lastIndexOf(':');
    return { repo: image.substring(0, at), tag: image.substring(at + 1) };
  }
  const repo = `${PREFIX}/pull-${runId()}`;
  const layers = [];
  for (let i = 0; i < envInt('LAYERS', 4); i++) layers.push(crypto.randomBytes(parseSize(env('LAYER_SIZE', '10MB'))));
  if (pushImage(repo, 'latest', layers) === '') throw new Error(`setup: could not push ${repo}:latest`);
  return { repo, tag: 'latest' };
}

/** @param {{repo: string, tag: string}} data */
export default function (data) {
  const t0 = Date.now();
  const bytes = pullImage(data.repo, data.tag, { verify: env('VERIFY', '0') === '1' });
  if (bytes >= 0) {
    pullDuration.add(Date.now() - t0);
    pulledBytes.add(bytes);
  }
}
