// The shim's `k6/http`: k6's synchronous request API. Each call hands the request to a worker thread and blocks
// on Atomics.wait until the worker has the whole response, then takes it with receiveMessageOnPort.
import { Worker, MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { state, metric } from './state.mjs';

const flag = new Int32Array(new SharedArrayBuffer(4));
const { port1, port2 } = new MessageChannel();
const worker = new Worker(new URL('./http-worker.mjs', import.meta.url), { workerData: { port: port2, flag }, transferList: [port2] });
worker.unref();
port1.unref();

const m = {
  reqs: metric('http_reqs', 'counter'), duration: metric('http_req_duration', 'trend', true),
  failed: metric('http_req_failed', 'rate'), waiting: metric('http_req_waiting', 'trend', true),
  sent: metric('data_sent', 'counter'), received: metric('data_received', 'counter'),
};

/** Go's http.CanonicalHeaderKey, as k6 names response headers. */
function canonical(name) {
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_, d, c) => d + c.toUpperCase());
}

function parseTimeout(t) {
  if (t === undefined || t === null) return 60000;
  if (typeof t === 'number') return t;
  const mm = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(t);
  if (!mm) throw new Error(`k6/http: bad timeout ${t}`);
  return parseFloat(mm[1]) * { ms: 1, s: 1000, m: 60000, h: 3600000 }[mm[2]];
}

function encodeBody(body) {
  if (body === null || body === undefined) return null;
  if (typeof body === 'string' || body instanceof ArrayBuffer) return body;
  if (ArrayBuffer.isView(body)) return body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength);
  if (typeof body === 'object') return new URLSearchParams(body).toString();
  return String(body);
}

export function request(method, url, body, params) {
  const p = params || {};
  const responseType = p.responseType || 'text';
  const headers = Object.assign({}, p.headers || {});
  const encoded = encodeBody(body);
  if (encoded !== null && typeof body === 'object' && !(body instanceof ArrayBuffer) && !ArrayBuffer.isView(body)
      && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/x-www-form-urlencoded';
  const req = { method: method.toUpperCase(), url: String(url), headers, body: encoded, responseType, timeout: parseTimeout(p.timeout) };

  let res = null;
  for (let redirects = 0; ; redirects++) {
    Atomics.store(flag, 0, 0);
    port1.postMessage(req);
    while (Atomics.load(flag, 0) === 0) Atomics.wait(flag, 0, 0, 1000);
    const msg = receiveMessageOnPort(port1);
    if (!msg) throw new Error('k6 shim: the HTTP worker answered nothing');
    res = msg.message;
    const loc = res.headers.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'location');
    const max = p.redirects === undefined ? 10 : p.redirects;
    if ([301, 302, 303, 307, 308].includes(res.status) && loc >= 0 && redirects < max) {
      req.url = new URL(res.headers[loc + 1], req.url).href;
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && req.method === 'POST')) { req.method = 'GET'; req.body = null; }
      continue;
    }
    break;
  }

  const hdrs = {};
  for (let i = 0; i + 1 < res.headers.length; i += 2) {
    const k = canonical(res.headers[i]);
    hdrs[k] = hdrs[k] === undefined ? res.headers[i + 1] : `${hdrs[k]}, ${res.headers[i + 1]}`;
  }
  let resBody = null;
  if (responseType === 'text') resBody = res.body ? Buffer.from(res.body).toString('utf8') : '';
  else if (responseType === 'binary') resBody = res.body || new ArrayBuffer(0);

  const duration = res.timings.duration || 0;
  m.reqs.values.push(1);
  m.duration.values.push(duration);
  m.waiting.values.push(res.timings.waiting || 0);
  m.failed.values.push(res.status === 0 || res.status >= 400 ? 1 : 0);
  m.sent.values.push(encoded === null ? 0 : typeof encoded === 'string' ? Buffer.byteLength(encoded) : encoded.byteLength);
  m.received.values.push(res.received || 0);

  const response = {
    status: res.status, status_text: res.statusText || '', proto: res.proto || '', url: req.url,
    headers: hdrs, body: resBody, error: res.error || '', error_code: res.error ? (res.error_code || 1000) : 0,
    timings: {
      duration, waiting: res.timings.waiting || 0, receiving: res.timings.receiving || 0, sending: res.timings.sending || 0,
      blocked: 0, connecting: 0, tls_handshaking: 0,
    },
    cookies: {}, remote_ip: '', remote_port: 0, ocsp: {}, tls_version: '', tls_cipher_suite: '',
    request: { method: req.method, url: req.url, headers: headers, body: typeof encoded === 'string' ? encoded : '', cookies: {} },
    json(selector) {
      if (typeof resBody !== 'string') throw new Error('json() needs a text body');
      const v = JSON.parse(resBody);
      if (!selector) return v;
      return selector.split('.').reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), v);
    },
    html() { throw new Error('the k6 shim does not implement Response.html()'); },
  };
  return response;
}

export const get = (url, params) => request('GET', url, null, params);
export const head = (url, params) => request('HEAD', url, null, params);
export const options = (url, body, params) => request('OPTIONS', url, body, params);
export const del = (url, body, params) => request('DELETE', url, body, params);
export const post = (url, body, params) => request('POST', url, body, params);
export const put = (url, body, params) => request('PUT', url, body, params);
export const patch = (url, body, params) => request('PATCH', url, body, params);
export function batch(reqs) {
  const list = Array.isArray(reqs) ? reqs : Object.values(reqs);
  const results = list.map((r) => (typeof r === 'string' ? get(r) : Array.isArray(r) ? request(r[0], r[1], r[2], r[3])
    : request(r.method, r.url, r.body, r.params)));
  if (Array.isArray(reqs)) return results;
  return Object.fromEntries(Object.keys(reqs).map((k, i) => [k, results[i]]));
}
export function setResponseCallback() {}
export function expectedStatuses() { return {}; }
export default { request, get, head, options, del, post, put, patch, batch, setResponseCallback, expectedStatuses };
