// The shim's `k6/crypto`: randomBytes and the hashes k6 offers, with k6's output encodings.
import nodeCrypto from 'node:crypto';

function bytes(input) {
  if (typeof input === 'string') return Buffer.from(input, 'utf8');
  if (input instanceof ArrayBuffer) return Buffer.from(input);
  if (ArrayBuffer.isView(input)) return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  throw new Error('k6/crypto: input must be a string or an ArrayBuffer');
}
function out(buf, enc) {
  switch (enc) {
    case 'hex': return buf.toString('hex');
    case 'base64': return buf.toString('base64');
    case 'base64url': return buf.toString('base64url');
    case 'base64rawurl': return buf.toString('base64url');
    case 'binary': return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    default: throw new Error(`k6/crypto: unknown output encoding ${enc}`);
  }
}
const hash = (alg) => (input, enc) => out(nodeCrypto.createHash(alg).update(bytes(input)).digest(), enc);

export function randomBytes(size) {
  const buf = new ArrayBuffer(size);
  nodeCrypto.randomFillSync(new Uint8Array(buf));
  return buf;
}
export const md5 = hash('md5');
export const sha1 = hash('sha1');
export const sha256 = hash('sha256');
export const sha384 = hash('sha384');
export const sha512 = hash('sha512');
export function hmac(alg, secret, data, enc) {
  return out(nodeCrypto.createHmac(alg, bytes(secret)).update(bytes(data)).digest(), enc);
}
export default { randomBytes, md5, sha1, sha256, sha384, sha512, hmac };
