// Listing scenario: setup makes REPOS repositories with TAGS tags each (one small image per repository,
// tagged TAGS times); every iteration walks the catalog page by page (n=PAGE, following Link, at most
// MAX_PAGES pages) and lists one repository's tags page by page, checking it gets every tag exactly once.
//   k6 run -e WHARF_URL=http://registry:5000 -e REPOS=200 -e TAGS=500 -e PAGE=100 -e VUS=16 -e DURATION=2m listing.js
import http from 'k6/http';
import { check } from 'k6';
import { Trend } from 'k6/metrics';
import { absolute, digestOf, env, envInt, header, headers, pushBlob, requireRegistry, runId, BASE, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, PREFIX } from './lib/registry.js';

const REPOS = envInt('REPOS', 100);
const TAGS = envInt('TAGS', 100);
const PAGE = envInt('PAGE', 100);
const MAX_PAGES = envInt('MAX_PAGES', 10);

const catalogWalk = new Trend('catalog_walk_duration', true);
const tagsWalk = new Trend('tags_walk_duration', true);

export const options = {
  vus: envInt('VUS', 8),
  duration: env('DURATION', '1m'),
  setupTimeout: '30m',
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max'],
  thresholds: {
    http_req_failed: [`rate<${env('MAX_ERROR_RATE', '0.01')}`],
    checks: ['rate>0.99'],
    'http_req_duration{op:list}': [`p(99)<${envInt('LIST_P99_MS', 200)}`],
  },
};

export function setup() {
  requireRegistry();
  const run = runId();
  const repos = [];
  for (let r = 0; r < REPOS; r++) {
    const repo = `${PREFIX}/list-${run}/r${String(r).padStart(5, '0')}`;
    const layer = `layer of ${repo}`;
    const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf(layer)] } });
    if (!pushBlob(repo, layer, digestOf(layer)) || !pushBlob(repo, config, digestOf(config))) throw new Error(`setup: blobs of ${repo}`);
    const manifest = JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: digestOf(config), size: config.length },
      layers: [{ mediaType: OCI_LAYER, digest: digestOf(layer), size: layer.length }],
    });
    for (let t = 0; t < TAGS; t++) {
      const res = http.put(`${BASE}/v2/${repo}/manifests/v${t}`, manifest, {
        headers: headers({ 'Content-Type': OCI_MANIFEST }), tags: { name: 'PUT /v2/<repo>/manifests/<tag>', op: 'setup' },
      });
      if (res.status !== 201) throw new Error(`setup: tag ${repo}:v${t} answered ${res.status}`);
    }
    repos.push(repo);
  }
  return { repos };
}

/** The next page's URL from a Link header, or ''. @param {string} link */
function nextLink(link) {
  const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(link || '');
  return m ? absolute(m[1]) : '';
}

/** @param {{repos: string[]}} data */
export default function (data) {
  // The catalog, page by page.
  let t0 = Date.now();
  let url = `${BASE}/v2/_catalog?n=${PAGE}`;
  let previous = '';
  let pages = 0;
  while (url !== '' && pages < MAX_PAGES) {
    const res = http.get(url, { headers: headers(), tags: { name: 'GET /v2/_catalog', op: 'list' } });
    /** @type {string[] | null} */
    let names = null;
    try { names = JSON.parse(/** @type {string} */ (res.body)).repositories; } catch (e) { names = null; }
    const ok = check(res, {
      'catalog page (200)': (r) => r.status === 200,
      'catalog page is a JSON list of at most n names': () => Array.isArray(names) && names.length <= PAGE,
      'catalog pages are sorted and do not repeat': () => names !== null && names.every((n, i) => (i === 0 ? n > previous : n > names[i - 1])),
    });
    if (!ok || names === null) break;
    if (names.length > 0) previous = names[names.length - 1];
    url = nextLink(header(res, 'Link'));
    pages++;
  }
  catalogWalk.add(Date.now() - t0);

  // One repository's tags, page by page.
  const repo = data.repos[(__VU * 7919 + __ITER) % data.repos.length];
  t0 = Date.now();
  url = `${BASE}/v2/${repo}/tags/list?n=${PAGE}`;
  /** @type {Record<string, boolean>} */
  const seen = {};
  let count = 0;
  let duplicates = 0;
  for (let guard = 0; url !== '' && guard < TAGS + 2; guard++) {
    const res = http.get(url, { headers: headers(), tags: { name: 'GET /v2/<repo>/tags/list', op: 'list' } });
    /** @type {string[] | null} */
    let tags = null;
    try { tags = JSON.parse(/** @type {string} */ (res.body)).tags; } catch (e) { tags = null; }
    if (!check(res, { 'tags page (200)': (r) => r.status === 200 && Array.isArray(tags) && tags.length <= PAGE }) || tags === null) return;
    for (const t of tags) { if (seen[t]) duplicates++; seen[t] = true; count++; }
    url = nextLink(header(res, 'Link'));
  }
  tagsWalk.add(Date.now() - t0);
  check(count, { 'every tag listed exactly once': (c) => c === TAGS && duplicates === 0 });
}
