import type { PayloadStore } from '../../src/core/stores.js';
import type { RedisDocuments } from './documents.js';

/**
 * Payload bytes as plain Redis strings with a PX time-to-live. Strings are binary-safe and hold
 * up to 512 MB, so nothing is chunked.
 */
export class RedisPayloadStore implements PayloadStore {
  constructor(private readonly docs: RedisDocuments) {}

  async put(id: string, data: Uint8Array, ttlMs: number): Promise<void> {
    const { client, layout } = this.docs;
    await this.docs.guard('store a payload', async () => {
      // PX must be positive; a payload whose time is already up is simply not kept.
      if (ttlMs <= 0) await client.del(layout.payload(id));
      else await client.set(layout.payload(id), Buffer.from(data.buffer, data.byteOffset, data.byteLength), 'PX', Math.ceil(ttlMs));
    });
  }

  async get(id: string): Promise<Uint8Array | undefined> {
    const bytes = await this.docs.guard('read a payload', () => this.docs.client.getBuffer(this.docs.layout.payload(id)));
    return bytes === null ? undefined : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async delete(id: string): Promise<void> {
    await this.docs.guard('delete a payload', () => this.docs.client.del(this.docs.layout.payload(id)));
  }
}
