/** Fault injection at the transport boundary, over the real Cloud Tasks transport. */
import { CloudDeferError } from '../../src/core/errors.js';
import type { QueueTransport } from '../../src/core/transport.js';

/** A transport whose next `cutNext` enqueues fail, as if the process died right after a commit. */
export function cuttingTransport(transport: QueueTransport): QueueTransport & { cutNext: number } {
  const wrapper = Object.create(transport) as QueueTransport & { cutNext: number };
  wrapper.cutNext = 0;
  wrapper.enqueue = async (request) => {
    if (wrapper.cutNext > 0) {
      wrapper.cutNext -= 1;
      throw new CloudDeferError('ENQUEUE_FAILED', 'simulated crash between commit and enqueue');
    }
    return transport.enqueue(request);
  };
  return wrapper;
}
