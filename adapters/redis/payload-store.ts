import type { PayloadStore } from '../../src/core/stores.js';
import type { AdapterContext } from './context.js';

/**
 * Payload bytes as plain Redis strings with a PX time-to-live. Strings are binary-safe and hold
 * up to 512 MB, so nothing is chunked.
 */
export class RedisPayloadStore implements PayloadStore {
  constructor(private readonly ctx: AdapterContext) {}

  async put(id: string, data: Uint8Array, ttlMs: number): Promise<void> {
    const key = this.ctx.layout.payload(id);
    await this.ctx.guard('store a payload', async () => {
      // PX must be positive; a payload whose time is already up is simply not kept.
      if (ttlMs <= 0) await this.ctx.client.del(key);
      else await this.ctx.client.set(key, Buffer.from(data.buffer, data.byteOffset, data.byteLength), 'PX', Math.ceil(ttlMs));
    });
  }

  async get(id: string): Promise<Uint8Array | undefined> {
    const bytes = await this.ctx.guard('read a payload', () => this.ctx.client.getBuffer(this.ctx.layout.payload(id)));
    return bytes === null ? undefined : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async delete(id: string): Promise<void> {
    await this.ctx.guard('delete a payload', () => this.ctx.client.del(this.ctx.layout.payload(id)));
  }
}
