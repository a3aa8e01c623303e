// Push scenario: every iteration pushes a new one-layer image (fresh random bytes, so nothing deduplicates)
// to the VU's own repository, monolithic (POST + one PUT ?digest=) and/or chunked (POST, PATCH × chunk, PUT).
//   k6 run -e WHARF_URL=http://registry:5000 -e SIZES=1MB,10MB,100MB -e PUSH_MODE=both -e VUS=8 -e DURATION=2m push.js
import crypto from 'k6/crypto';
import { Counter, Trend } from 'k6/metrics';
import { env, envInt, parseSize, pushImage, requireRegistry, runId, uniqueBlob, PREFIX } from './lib/registry.js';

const SIZE_NAMES = env('SIZES', '1MB,10MB,100MB').split(',').map((s) => s.trim()).filter((s) => s !== '');
const MODES = env('PUSH_MODE', 'both') === 'both' ? ['monolithic', 'chunked'] : [env('PUSH_MODE', 'both')];
const CHUNK = parseSize(env('CHUNK', '5MiB'));
// One random template per size, made once per VU in the init context; each push changes its first bytes.
const TEMPLATES = SIZE_NAMES.map((s) => crypto.randomBytes(parseSize(s)));

const pushDuration = new Trend('push_duration', true);
const pushedBytes = new Counter('pushed_bytes');

export const options = {
  vus: envInt('VUS', 4),
  duration: env('DURATION', '1m'),
  setupTimeout: '2m',
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max'],
  thresholds: {
    http_req_failed: [`rate<${env('MAX_ERROR_RATE', '0.01')}`],
    checks: ['rate>0.99'],
    push_duration: [`p(99)<${envInt('PUSH_P99_MS', 60000)}`],
  },
};

export function setup() {
  requireRegistry();
  return { run: runId() };
}

/** @param {{run: string}} data */
export default function (data) {
  const i = __ITER % (SIZE_NAMES.length * MODES.length);
  const sizeIndex = i % SIZE_NAMES.length;
  const mode = MODES[Math.floor(i / SIZE_NAMES.length) % MODES.length];
  const size = SIZE_NAMES[sizeIndex];
  const layer = uniqueBlob(TEMPLATES[sizeIndex]);
  const tags = { size, mode };
  const t0 = Date.now();
  const digest = pushImage(`${PREFIX}/push-${data.run}-${__VU}`, `${mode}-${size}-${__ITER}`.toLowerCase(), [layer], { mode, chunk: CHUNK, tags });
  if (digest !== '') {
    pushDuration.add(Date.now() - t0, tags);
    pushedBytes.add(layer.byteLength, tags);
  }
}
