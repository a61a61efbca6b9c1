/**
 * The tests' own reading of what the Redis adapter writes (its documented key layout, see
 * adapters/redis/keys.ts: a document is a hash whose field "d" holds the value as JSON), written
 * independently of the adapter's code so that the contract suite checks the stored data, not
 * the adapter's view of it.
 */
import type { Cluster, Redis } from 'ioredis';
import type { TaskRecord } from '../../src/core/records.js';
import type { OutboxEntry } from '../../src/core/stores.js';
import type { RawBackend } from '../contract/suite.js';

/** "<tag>_<random>" ids carry their hash tag before the first "_"; other ids are their own tag. */
export function tagOf(id: string): string {
  const cut = id.indexOf('_');
  return cut > 0 ? id.slice(0, cut) : id;
}

export function rawTaskKey(prefix: string, id: string): string {
  return `${prefix}:{${tagOf(id)}}:task:${id}`;
}

export function redisRawBackend(client: Redis | Cluster, prefix: string): RawBackend {
  const payloadKey = (id: string): string => `${prefix}:{${tagOf(id)}}:payload:${id}`;
  const value = async <T>(key: string): Promise<T | undefined> => {
    const text = await client.hget(key, 'd');
    return text === null ? undefined : (JSON.parse(text) as T);
  };
  const expiry = async (key: string): Promise<number | undefined> => {
    const at = Number(await client.pexpiretime(key));
    return at > 0 ? at : undefined;
  };
  return {
    rawTask: (id) => value<TaskRecord>(rawTaskKey(prefix, id)),
    async rawPayload(id) {
      return (await client.getBuffer(payloadKey(id))) ?? undefined;
    },
    rawTaskExpiry: (id) => expiry(rawTaskKey(prefix, id)),
    rawPayloadExpiry: (id) => expiry(payloadKey(id)),
    rawOutbox: (taskId) => value<OutboxEntry>(`${prefix}:{${tagOf(taskId)}}:outbox:${taskId}`),
  };
}
