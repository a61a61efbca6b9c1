/** Opening the Redis stores for tests: a fresh key prefix per harness, removed again afterwards. */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Cluster, Redis } from 'ioredis';
import { redisStores, type RedisStores, type RedisStoresOptions } from '../../adapters/redis/index.js';
import type { ContractHarness } from '../contract/suite.js';
import { redisRawBackend } from './raw.js';

export const REDIS_HOST = '127.0.0.1';
export const REDIS_PORT = 6379;

export type TestClient = Redis | Cluster;

export function testPrefix(): string {
  return `cdtest-${randomUUID().slice(0, 13)}`;
}

export async function whenReady(client: TestClient): Promise<void> {
  if (client.status !== 'ready') await once(client, 'ready');
}

/** Remove every key under `prefix`, node by node on a Cluster. */
export async function deleteKeys(client: TestClient, prefix: string): Promise<void> {
  const nodes: Redis[] = client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      await Promise.all(keys.map((key) => node.unlink(key)));
    } while (cursor !== '0');
  }
}

export interface RedisHarness extends ContractHarness {
  stores: RedisStores;
  prefix: string;
  client: TestClient;
  rawClient: TestClient;
}

export interface RedisHarnessOptions {
  connect(): TestClient;
  /** Connections shared round-robin by the contenders (default 50). */
  maxContenderConnections?: number;
  storeOptions?: Omit<RedisStoresOptions, 'client' | 'prefix'>;
}

export async function openRedisHarness(options: RedisHarnessOptions): Promise<RedisHarness> {
  const prefix = testPrefix();
  const client = options.connect();
  const rawClient = options.connect();
  await Promise.all([whenReady(client), whenReady(rawClient)]);
  const stores = redisStores({ client, prefix, ...options.storeOptions });
  const pool: Array<{ client: TestClient; stores: RedisStores }> = [];
  return {
    prefix,
    client,
    rawClient,
    stores,
    raw: redisRawBackend(rawClient, prefix),
    async contenders(count) {
      const connections = Math.min(count, options.maxContenderConnections ?? 50);
      while (pool.length < connections) {
        const own = options.connect();
        pool.push({ client: own, stores: redisStores({ client: own, prefix, ...options.storeOptions }) });
      }
      // Connected before the race starts, so that the calls meet at the server, not in a queue.
      await Promise.all(pool.map((entry) => whenReady(entry.client)));
      return Array.from({ length: count }, (_, i) => pool[i % connections]!.stores);
    },
    async cleanup() {
      await Promise.all([stores.close(), ...pool.map((entry) => entry.stores.close())]);
      await deleteKeys(rawClient, prefix);
      await Promise.all([client, rawClient, ...pool.map((entry) => entry.client)].map((c) => c.quit()));
    },
  };
}
