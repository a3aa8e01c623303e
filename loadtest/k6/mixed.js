// Mixed scenario: 75 % of iterations pull one of a few prepared images, 25 % push a new image (PULL_RATIO).
// The profile of a registry that serves CI pushes and a fleet's pulls at once.
//   k6 run -e WHARF_URL=http://registry:5000 -e PULL_RATIO=0.75 -e LAYER_SIZE=10MB -e VUS=16 -e DURATION=5m mixed.js
import crypto from 'k6/crypto';
import { Trend } from 'k6/metrics';
import { env, envInt, parseSize, pullImage, pushImage, requireRegistry, runId, uniqueBlob, PREFIX } from './lib/registry.js';

const PULL_RATIO = parseFloat(env('PULL_RATIO', '0.75'));
const LAYER_SIZE = parseSize(env('LAYER_SIZE', '10MB'));
const LAYERS = envInt('LAYERS', 2);
const TEMPLATE = crypto.randomBytes(LAYER_SIZE);

const pullDuration = new Trend('mixed_pull_duration', true);
const pushDuration = new Trend('mixed_push_duration', true);

export const options = {
  vus: envInt('VUS', 8),
  duration: env('DURATION', '1m'),
  setupTimeout: '10m',
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max'],
  thresholds: {
    http_req_failed: [`rate<${env('MAX_ERROR_RATE', '0.01')}`],
    checks: ['rate>0.99'],
    mixed_pull_duration: [`p(99)<${envInt('PULL_P99_MS', 30000)}`],
    mixed_push_duration: [`p(99)<${envInt('PUSH_P99_MS', 60000)}`],
  },
};

export function setup() {
  requireRegistry();
  const run = runId();
  const images = [];
  for (let i = 0; i < envInt('IMAGES', 3); i++) {
    const repo = `${PREFIX}/mixed-${run}-${i}`;
    const layers = [];
    for (let l = 0; l < LAYERS; l++) layers.push(uniqueBlob(TEMPLATE));
    if (pushImage(repo, 'latest', layers) === '') throw new Error(`setup: could not push ${repo}:latest`);
    images.push(repo);
  }
  return { run, images };
}

/** @param {{run: string, images: string[]}} data */
export default function (data) {
  const t0 = Date.now();
  if (Math.random() < PULL_RATIO) {
    const repo = data.images[Math.floor(Math.random() * data.images.length)];
    if (pullImage(repo, 'latest', { tags: { profile: 'pull' } }) >= 0) pullDuration.add(Date.now() - t0);
  } else {
    const layers = [];
    for (let l = 0; l < LAYERS; l++) layers.push(uniqueBlob(TEMPLATE));
    const repo = `${PREFIX}/mixed-${data.run}-push-${__VU}`;
    if (pushImage(repo, `i${__ITER}`, layers, { tags: { profile: 'push' } }) !== '') pushDuration.add(Date.now() - t0);
  }
}
