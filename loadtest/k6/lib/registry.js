// Helpers shared by the Wharf k6 scenarios: configuration from __ENV, authentication, blob and manifest
// push (monolithic and chunked) and pull, per the OCI Distribution API. Plain k6 JavaScript.
import http from 'k6/http';
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';
import { check } from 'k6';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

/** @param {string} name @param {string} fallback */
export function env(name, fallback) {
  const v = __ENV[name];
  return v === undefined || v === '' ? fallback : v;
}

/** @param {string} name @param {number} fallback */
export function envInt(name, fallback) {
  const v = __ENV[name];
  return v === undefined || v === '' ? fallback : parseInt(v, 10);
}

/** "1MB" → 1000000, "1MiB" → 1048576, "512KB", "100MB", plain bytes. @param {string} text */
export function parseSize(text) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B?|B)?\s*$/i.exec(text);
  if (!m) throw new Error(`bad size: ${text}`);
  const unit = (m[2] || 'B').toUpperCase();
  const mult = { B: 1, K: 1e3, KB: 1e3, KIB: 1024, M: 1e6, MB: 1e6, MIB: 1048576, G: 1e9, GB: 1e9, GIB: 1073741824 }[unit];
  if (mult === undefined) throw new Error(`bad size unit: ${text}`);
  return Math.round(parseFloat(m[1]) * mult);
}

/** Base URL without a trailing slash (WHARF_URL, default http://127.0.0.1:5000). */
export const BASE = env('WHARF_URL', 'http://127.0.0.1:5000').replace(/\/+$/, '');
/** Repository prefix, so runs do not collide (WHARF_REPO_PREFIX, default "k6"). */
export const PREFIX = env('WHARF_REPO_PREFIX', 'k6');
/** Per-request timeout for blob and manifest transfers (HTTP_TIMEOUT, default 300s; k6's own default is 60s). */
export const TIMEOUT = env('HTTP_TIMEOUT', '300s');

/**
 * Headers every request carries: WHARF_TOKEN as a bearer token, or WHARF_USER / WHARF_PASSWORD as basic auth.
 * @returns {Record<string, string>}
 */
export function authHeaders() {
  const token = env('WHARF_TOKEN', '');
  if (token) return { Authorization: `Bearer ${token}` };
  const user = env('WHARF_USER', '');
  if (user) return { Authorization: `Basic ${encoding.b64encode(`${user}:${env('WHARF_PASSWORD', '')}`)}` };
  return {};
}

/** @param {Record<string, string>} [extra] @returns {Record<string, string>} */
export function headers(extra) {
  return Object.assign({}, authHeaders(), extra || {});
}

/** An absolute URL for a Location header that may be relative. @param {string} location */
export function absolute(location) {
  if (/^https?:\/\//i.test(location)) return location;
  return BASE + (location.startsWith('/') ? '' : '/') + location;
}

/** @param {string} url @param {string} query */
function withQuery(url, query) {
  return url + (url.indexOf('?') >= 0 ? '&' : '?') + query;
}

/** A header by name, case-insensitively. @param {{headers: Record<string, string>}} res @param {string} name */
export function header(res, name) {
  const want = name.toLowerCase();
  for (const k of Object.keys(res.headers)) if (k.toLowerCase() === want) return res.headers[k];
  return '';
}

/**
 * Random bytes whose first 16 bytes are replaced by a per-call marker, so every blob is new (no dedup, no mounts).
 * @param {ArrayBuffer} template random bytes made once in the init context
 * @returns {ArrayBuffer}
 */
export function uniqueBlob(template) {
  const copy = template.slice(0);
  const view = new Uint8Array(copy);
  const marker = `${__VU}-${__ITER}-${Date.now()}-${Math.random()}`;
  for (let i = 0; i < 16 && i < view.length; i++) view[i] = marker.charCodeAt(i % marker.length) || 0;
  return copy;
}

/** sha256:<hex> of bytes or a string. @param {ArrayBuffer | string} data */
export function digestOf(data) {
  return `sha256:${crypto.sha256(data, 'hex')}`;
}

/**
 * Push one blob. mode "monolithic": POST then one PUT ?digest= with the whole body; mode "chunked": POST, PATCH
 * with Content-Range per chunk, then PUT ?digest=. Returns true when the registry answered 201.
 * @param {string} repo @param {ArrayBuffer | string} data @param {string} digest
 * @param {{mode?: string, chunk?: number, tags?: Record<string, string>}} [opts]
 */
export function pushBlob(repo, data, digest, opts) {
  const o = opts || {};
  const tags = Object.assign({ op: 'blob-push', mode: o.mode || 'monolithic' }, o.tags || {});
  const start = http.post(`${BASE}/v2/${repo}/blobs/uploads/`, null, {
    headers: headers(), tags: Object.assign({ name: 'POST /v2/<repo>/blobs/uploads/' }, tags),
  });
  if (!check(start, { 'upload started (202)': (r) => r.status === 202 && header(r, 'Location') !== '' })) return false;
  let location = absolute(header(start, 'Location'));
  const size = typeof data === 'string' ? data.length : data.byteLength;
  if (o.mode === 'chunked') {
    const chunk = o.chunk || 5 * 1024 * 1024;
    for (let off = 0; off < size; off += chunk) {
      const end = Math.min(off + chunk, size);
      const body = typeof data === 'string' ? data.substring(off, end) : data.slice(off, end);
      const res = http.patch(location, body, {
        timeout: TIMEOUT,
        headers: headers({ 'Content-Type': 'application/octet-stream', 'Content-Range': `${off}-${end - 1}` }),
        tags: Object.assign({ name: 'PATCH <upload>' }, tags),
      });
      if (!check(res, { 'chunk accepted (202)': (r) => r.status === 202 })) return false;
      location = absolute(header(res, 'Location') || location);
    }
    const done = http.put(withQuery(location, `digest=${encodeURIComponent(digest)}`), null, {
      headers: headers(), tags: Object.assign({ name: 'PUT <upload>?digest=' }, tags),
    });
    return check(done, { 'blob committed (201)': (r) => r.status === 201 });
  }
  const done = http.put(withQuery(location, `digest=${encodeURIComponent(digest)}`), data, {
    timeout: TIMEOUT,
    headers: headers({ 'Content-Type': 'application/octet-stream' }),
    tags: Object.assign({ name: 'PUT <upload>?digest=' }, tags),
  });
  return check(done, { 'blob committed (201)': (r) => r.status === 201 });
}

/**
 * Push an image: its layers (already made), a small config and a manifest under `tag`.
 * Returns the manifest digest, or '' on failure.
 * @param {string} repo @param {string} tag @param {ArrayBuffer[]} layers
 * @param {{mode?: string, chunk?: number, tags?: Record<string, string>}} [opts]
 */
export function pushImage(repo, tag, layers, opts) {
  const descs = [];
  for (const layer of layers) {
    const d = digestOf(layer);
    if (!pushBlob(repo, layer, d, opts)) return '';
    descs.push({ mediaType: OCI_LAYER, digest: d, size: layer.byteLength });
  }
  const config = JSON.stringify({
    architecture: 'amd64', os: 'linux', created: new Date().toISOString(),
    rootfs: { type: 'layers', diff_ids: descs.map((x) => x.digest) }, config: { Labels: { 'k6.vu': `${__VU}` } },
  });
  const configDigest = digestOf(config);
  if (!pushBlob(repo, config, configDigest, opts)) return '';
  return pushManifest(repo, tag, { mediaType: OCI_CONFIG, digest: configDigest, size: config.length }, descs, opts);
}

/**
 * PUT a manifest (ASCII JSON, so its length is its byte count). Returns its digest or ''.
 * @param {string} repo @param {string} tag
 * @param {{mediaType: string, digest: string, size: number}} config
 * @param {{mediaType: string, digest: string, size: number}[]} layers
 * @param {{tags?: Record<string, string>}} [opts]
 */
export function pushManifest(repo, tag, config, layers, opts) {
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers });
  const digest = digestOf(manifest);
  const res = http.put(`${BASE}/v2/${repo}/manifests/${tag}`, manifest, {
    headers: headers({ 'Content-Type': OCI_MANIFEST }),
    tags: Object.assign({ name: 'PUT /v2/<repo>/manifests/<tag>', op: 'manifest-push' }, (opts && opts.tags) || {}),
  });
  const ok = check(res, {
    'manifest stored (201)': (r) => r.status === 201,
    'manifest digest echoed': (r) => header(r, 'Docker-Content-Digest') === '' || header(r, 'Docker-Content-Digest') === digest,
  });
  return ok ? digest : '';
}

/**
 * Pull an image the way a runtime does: GET the manifest by tag, then GET its config and every layer.
 * With verify, each blob's sha256 is checked against its digest (costs k6 CPU; off for big fan-outs).
 * Returns the bytes received, or -1 on failure.
 * @param {string} repo @param {string} ref @param {{verify?: boolean, tags?: Record<string, string>}} [opts]
 */
export function pullImage(repo, ref, opts) {
  const o = opts || {};
  const tags = o.tags || {};
  const m = http.get(`${BASE}/v2/${repo}/manifests/${ref}`, {
    headers: headers({ Accept: `${OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json` }),
    tags: Object.assign({ name: 'GET /v2/<repo>/manifests/<ref>', op: 'manifest-pull' }, tags),
  });
  if (!check(m, { 'manifest pulled (200)': (r) => r.status === 200 })) return -1;
  /** @type {{config: {digest: string, size: number}, layers: {digest: string, size: number}[]}} */
  const manifest = JSON.parse(/** @type {string} */ (m.body));
  let bytes = 0;
  for (const desc of [manifest.config].concat(manifest.layers)) {
    const res = http.get(`${BASE}/v2/${repo}/blobs/${desc.digest}`, {
      headers: headers(), responseType: o.verify ? 'binary' : 'none', timeout: TIMEOUT,
      tags: Object.assign({ name: 'GET /v2/<repo>/blobs/<digest>', op: 'blob-pull' }, tags),
    });
    const ok = check(res, {
      'blob pulled (200)': (r) => r.status === 200,
      'blob has its size': (r) => o.verify ? r.body !== null && /** @type {ArrayBuffer} */ (r.body).byteLength === desc.size
        : parseInt(header(r, 'Content-Length') || `${desc.size}`, 10) === desc.size,
      'blob matches its digest': (r) => !o.verify || digestOf(/** @type {ArrayBuffer} */ (r.body)) === desc.digest,
    });
    if (!ok) return -1;
    bytes += desc.size;
  }
  return bytes;
}

/** Fail fast in setup when the registry is not there. */
export function requireRegistry() {
  const res = http.get(`${BASE}/v2/`, { headers: headers(), tags: { name: 'GET /v2/' } });
  if (res.status !== 200) throw new Error(`${BASE}/v2/ answered ${res.status} ${res.error || ''}: is WHARF_URL right, and the credentials?`);
}

/** A unique run id for repository names. */
export function runId() {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}
