// Runs in a worker thread: performs one HTTP request per message with Node's http client and answers on the
// port, then wakes the main thread, which waits with Atomics.wait (so k6/http calls are synchronous, as in k6).
import http from 'node:http';
import https from 'node:https';
import { workerData } from 'node:worker_threads';

const { port, flag } = workerData;
const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };

function answer(msg) {
  port.postMessage(msg, msg.body instanceof ArrayBuffer ? [msg.body] : []);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

port.on('message', (req) => {
  const started = performance.now();
  let url;
  try { url = new URL(req.url); } catch (e) { answer({ status: 0, error: `invalid URL ${req.url}`, headers: [], body: null, timings: {} }); return; }
  const mod = url.protocol === 'https:' ? https : http;
  const body = req.body === null || req.body === undefined ? null
    : typeof req.body === 'string' ? Buffer.from(req.body, 'utf8') : Buffer.from(req.body);
  const headers = Object.assign({}, req.headers);
  if (body !== null && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-length')) headers['Content-Length'] = String(body.length);
  if (body === null && ['POST', 'PUT', 'PATCH'].includes(req.method)) headers['Content-Length'] = '0';
  if (!Object.keys(headers).some((k) => k.toLowerCase() === 'user-agent')) headers['User-Agent'] = 'k6-shim (wharf loadtest)';
  let sentAt = 0;
  let firstByte = 0;
  const r = mod.request(url, { method: req.method, headers, agent: agents[url.protocol], timeout: req.timeout }, (res) => {
    firstByte = performance.now();
    const chunks = [];
    let received = 0;
    res.on('data', (c) => { received += c.length; if (req.responseType !== 'none') chunks.push(c); });
    res.on('end', () => {
      const done = performance.now();
      let out = null;
      if (req.responseType !== 'none') {
        const all = Buffer.concat(chunks);
        out = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
      }
      answer({
        status: res.statusCode, statusText: res.statusMessage, proto: `HTTP/${res.httpVersion}`, headers: res.rawHeaders, body: out, received,
        timings: { duration: done - (sentAt || started), waiting: firstByte - (sentAt || started), receiving: done - firstByte, sending: (sentAt || started) - started },
      });
    });
    res.on('error', (e) => answer({ status: 0, error: String(e), headers: [], body: null, timings: {} }));
  });
  r.on('timeout', () => r.destroy(new Error('request timeout')));
  r.on('error', (e) => answer({ status: 0, error: String(e && e.message || e), error_code: 1000, headers: [], body: null, timings: {} }));
  r.on('finish', () => { sentAt = performance.now(); });
  if (body !== null) r.end(body); else r.end();
});
