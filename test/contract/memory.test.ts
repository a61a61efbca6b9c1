import { memoryStores, type MemoryStores } from '../../adapters/memory/index.js';
import type { TaskRecord } from '../../src/core/records.js';
import type { OutboxEntry } from '../../src/core/stores.js';
import { describeStoreContract, type ContractHarness } from './suite.js';

/**
 * The memory store documents no per-item inspection aid yet (only size() and rawSize()), so the
 * raw reads look at its private maps through this narrow view. Proposed in the Redis adapter's
 * report: public rawRecord(id) / rawPayload(id) / rawOutbox(taskId) aids that would replace it.
 * Expiry is read the way the store defines it: an item whose expiresAt has passed is gone.
 */
interface MemoryInternals {
  state: { records: Map<string, TaskRecord>; outbox: Map<string, OutboxEntry> };
  payloads: { items: Map<string, { value: Uint8Array; expiresAt: number }> };
}

function memoryHarness(): ContractHarness {
  const stores: MemoryStores = memoryStores();
  const internals = stores as unknown as MemoryInternals;
  const liveRecord = (id: string): TaskRecord | undefined => {
    const record = internals.state.records.get(id);
    return record && record.expiresAt > Date.now() ? record : undefined;
  };
  const livePayload = (id: string): { value: Uint8Array; expiresAt: number } | undefined => {
    const item = internals.payloads.items.get(id);
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
        return item && Uint8Array.from(item.value);
      },
      async rawTaskExpiry(id) {
        return liveRecord(id)?.expiresAt;
      },
      async rawPayloadExpiry(id) {
        return livePayload(id)?.expiresAt;
      },
      async rawOutbox(taskId) {
        const entry = internals.state.outbox.get(taskId);
        return entry && structuredClone(entry);
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
