// Task bodies are copied into slabs used for bodies only. A decoded body shares the gRPC request's
// buffer, and a plain Buffer.from copy lands in Node's shared 8 KiB pool next to request buffers:
// either way one small waiting task would keep kilobytes of dead request data alive.

const SLAB_BYTES = 64 * 1024;
/** Bodies larger than this get an allocation of their own. */
const LARGEST_SLAB_BODY = 4 * 1024;

let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let offset = 0;

export function copyBody(source: Uint8Array): Buffer {
  if (source.length > LARGEST_SLAB_BODY) {
    const own = Buffer.allocUnsafeSlow(source.length);
    own.set(source);
    return own;
  }
  if (offset + source.length > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    offset = 0;
  }
  const copy = slab.subarray(offset, offset + source.length);
  copy.set(source);
  offset += (source.length + 7) & ~7;
  return copy;
}
