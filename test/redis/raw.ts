/**
 * The tests' own reading of what the Redis adapter writes (its documented key layout and record
 * encoding, see adapters/redis/keys.ts and codec.ts), written independently of the adapter's code
 * so that the contract suite checks the stored data, not the adapter's view of it.
 */
import type { Cluster, Redis } from 'ioredis';
import type { AttemptRecord, TaskRecord } from '../../src/core/records.js';
import type { OutboxEntry } from '../../src/core/stores.js';
import type { RawBackend } from '../contract/suite.js';

const NUMBER_FIELDS = new Set([
  'uniqueUntil',
  'createdAt',
  'updatedAt',
  'eta',
  'startedAt',
  'finishedAt',
  'attempts',
  'executionCount',
  'maxAttempts',
  'durationMs',
  'payloadSize',
  'shardIndex',
  'leaseUntil',
  'version',
  'expiresAt',
]);

/** "<tag>_<random>" ids carry their hash tag before the first "_"; other ids are their own tag. */
export function tagOf(id: string): string {
  const cut = id.indexOf('_');
  return cut > 0 ? id.slice(0, cut) : id;
}

export function rawTaskKey(prefix: string, id: string): string {
  return `${prefix}:{${tagOf(id)}}:task:${id}`;
}

export function decodeRawRecord(hash: Record<string, string>): TaskRecord | undefined {
  if (Object.keys(hash).length === 0) return undefined;
  const record: Record<string, unknown> = { history: [] };
  for (const [field, text] of Object.entries(hash)) {
    if (field.startsWith('_')) continue; // the adapter's bookkeeping
    if (NUMBER_FIELDS.has(field)) record[field] = Number(text);
    else if (field === 'lastError') record[field] = JSON.parse(text);
    else if (field === 'history') record[field] = text === '' ? [] : text.split('\n').map((line) => JSON.parse(line) as AttemptRecord);
    else record[field] = text;
  }
  return record as unknown as TaskRecord;
}

export function redisRawBackend(client: Redis | Cluster, prefix: string, cluster: boolean): RawBackend {
  const payloadKey = (id: string): string => `${prefix}:{${tagOf(id)}}:payload:${id}`;
  const expiry = async (key: string): Promise<number | undefined> => {
    const at = Number(await client.pexpiretime(key));
    return at > 0 ? at : undefined;
  };
  return {
    async rawTask(id) {
      return decodeRawRecord(await client.hgetall(rawTaskKey(prefix, id)));
    },
    async rawPayload(id) {
      const bytes = await client.getBuffer(payloadKey(id));
      return bytes ?? undefined;
    },
    rawTaskExpiry: (id) => expiry(rawTaskKey(prefix, id)),
    rawPayloadExpiry: (id) => expiry(payloadKey(id)),
    async rawOutbox(taskId) {
      const entries = cluster ? `${prefix}:{${tagOf(taskId)}}:outbox:entries` : `${prefix}:outbox:entries`;
      const text = await client.hget(entries, taskId);
      return text === null ? undefined : (JSON.parse(text) as OutboxEntry);
    },
  };
}
