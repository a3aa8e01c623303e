// The shim's `k6/encoding`: b64encode / b64decode with k6's variants.
function bytes(input) {
  if (typeof input === 'string') return Buffer.from(input, 'utf8');
  return Buffer.from(input);
}
export function b64encode(input, encoding) {
  const b = bytes(input);
  switch (encoding || 'std') {
    case 'std': return b.toString('base64');
    case 'rawstd': return b.toString('base64').replace(/=+$/, '');
    case 'url': return b.toString('base64url') + '='.repeat((4 - (b.toString('base64url').length % 4)) % 4);
    case 'rawurl': return b.toString('base64url');
    default: throw new Error(`k6/encoding: unknown encoding ${encoding}`);
  }
}
export function b64decode(input, encoding, format) {
  const b = Buffer.from(input, encoding === 'url' || encoding === 'rawurl' ? 'base64url' : 'base64');
  return format === 's' ? b.toString('utf8') : b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
}
export default { b64encode, b64decode };
