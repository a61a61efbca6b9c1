import { memoryStores, type MemoryStores } from '../../adapters/memory/index.js';
import { shardId } from '../../src/core/documents.js';
import type { ShardProgress } from '../../src/core/iteration.js';
import type { TaskRecord } from '../../src/core/records.js';
import type { OutboxEntry } from '../../src/core/stores.js';
import { describeStoreContract, type ContractHarness } from './suite.js';

/**
 * Raw reads go through the memory store's inspection aids: the documents as stored (expiry
 * applied, as the store defines it) and the payload items without copying through the API.
 */
function memoryHarness(): ContractHarness {
  const stores: MemoryStores = memoryStores();
  const documents = stores.state.documents;
  const liveRecord = (id: string): TaskRecord | undefined => documents.rawDocument('task', id)?.value as TaskRecord | undefined;
  const livePayload = (id: string): { data: Uint8Array; expiresAt: number } | undefined => {
    const item = stores.payloads.rawItem(id);
    return item && item.expiresAt > Date.now() ? item : undefined;
  };
  return {
    stores,
    raw: {
      async rawTask(id) {
        const record = liveRecord(id);
        return record && (JSON.parse(JSON.stringify(record)) as TaskRecord);
      },
      async rawPayload(id) {
        const item = livePayload(id);
        return item && Uint8Array.from(item.data);
      },
      async rawTaskExpiry(id) {
        return liveRecord(id)?.expiresAt;
      },
      async rawPayloadExpiry(id) {
        return livePayload(id)?.expiresAt;
      },
      async rawOutbox(taskId) {
        return documents.rawDocument('outbox', taskId)?.value as OutboxEntry | undefined;
      },
      async rawShard(iterationId, shardIndex) {
        const doc = documents.rawDocument('shard', shardId(iterationId, shardIndex))?.value as (ShardProgress & { iterationId: string }) | undefined;
        if (!doc) return undefined;
        const { iterationId: _id, ...shard } = doc;
        return shard;
      },
    },
    // One process, one store: concurrent calls interleave on the event loop.
    async contenders(count) {
      return Array.from({ length: count }, () => stores);
    },
    async cleanup() {},
  };
}

describeStoreContract('memory', async () => memoryHarness());
