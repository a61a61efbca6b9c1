/**
 * cloud-defer/redis: the stores on Redis, single node or Cluster, through the user's own ioredis
 * client. ioredis is only referred to as types: this module never loads it.
 *
 *   import Redis from 'ioredis';
 *   import { redisStores } from 'cloud-defer/redis';
 *   const stores = redisStores({ client: new Redis(process.env.REDIS_URL) });
 *
 * What it does to the client: registers its Lua scripts as commands named cloudDefer* with
 * defineCommand, and nothing else (no option, listener or connection of its own). close() does
 * not disconnect the client, which stays the caller's.
 *
 * See keys.ts for the key layout, codec.ts for the record encoding, indexes.ts for listing and
 * sweeping, transaction-hook.ts for transactions, and lua/ for the scripts.
 */
import type { Cluster, Redis } from 'ioredis';
import type { Stores } from '../../src/core/stores.js';
import type { AdapterContext } from './context.js';
import { guarded } from './errors.js';
import { Indexes } from './indexes.js';
import { KeyLayout } from './keys.js';
import { RedisPayloadStore } from './payload-store.js';
import { isClusterClient, Scripts } from './scripts.js';
import { RedisStateStore } from './state-store.js';
import { RedisTransactionHook } from './transaction-hook.js';
import { RedisIterationStore } from './iteration-store.js';
export { redisCounters, RedisTaskCounters, type RedisCountersOptions } from './counters.js';

export interface RedisStoresOptions {
  /** An ioredis client: `new Redis(...)` or `new Cluster(...)`. */
  client: Redis | Cluster;
  /** Start of every key name; no "{" or "}". Default "cloud-defer". */
  prefix?: string;
  /**
   * Expired records leave entries in the listing indexes; createTask starts a background sweep
   * of them at most this often (ms). 0 turns the automatic sweep off (call sweepExpired()
   * yourself). Default 60000.
   */
  sweepIntervalMs?: number;
  /** Records handled per sweep. Default 500. */
  sweepBatchSize?: number;
  /**
   * Told when the server's maxmemory-policy could evict the stores' keys (anything but
   * noeviction). Default: process.emitWarning with code CLOUD_DEFER_REDIS_EVICTION.
   */
  onEvictionRisk?: (message: string, policy: string) => void;
}

export interface RedisStores extends Stores {
  readonly kind: 'redis';
  readonly payloads: RedisPayloadStore;
  readonly state: RedisStateStore;
  readonly transactions: readonly [RedisTransactionHook];
  readonly iterations: RedisIterationStore;
  readonly prefix: string;
  /** Remove the index entries of up to `limit` records whose retention has passed; returns how many. */
  sweepExpired(limit?: number): Promise<number>;
  /** Waits for a background sweep to finish. Does not disconnect the client. */
  close(): Promise<void>;
  /** The server's maxmemory-policy as read at start-up (undefined when CONFIG GET is refused, as on some managed Redis). */
  readonly evictionPolicy: Promise<string | undefined>;
}

/**
 * Records carry TTLs, so any volatile-* policy evicts them first (and allkeys-* any key): tasks
 * would vanish with their reference holds. Reads the policy once; a refused CONFIG GET says nothing.
 */
async function checkEvictionPolicy(client: Redis | Cluster, warn: (message: string, policy: string) => void): Promise<string | undefined> {
  let policy: string | undefined;
  try {
    const reply = (await client.call('CONFIG', 'GET', 'maxmemory-policy')) as unknown;
    if (Array.isArray(reply) && typeof reply[1] === 'string') policy = reply[1];
  } catch {
    return undefined;
  }
  if (policy !== undefined && policy !== 'noeviction') {
    warn(
      `Redis maxmemory-policy is "${policy}": under memory pressure Redis may evict cloud-defer's task records and reference holds (they carry TTLs), losing tasks. Set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, or the instance's configuration on Memorystore).`,
      policy,
    );
  }
  return policy;
}

export function redisStores(options: RedisStoresOptions): RedisStores {
  const { client, prefix = 'cloud-defer', sweepIntervalMs = 60_000, sweepBatchSize = 500 } = options;
  const cluster = isClusterClient(client);
  const evictionPolicy = checkEvictionPolicy(
    client,
    options.onEvictionRisk ?? ((message) => process.emitWarning(message, { code: 'CLOUD_DEFER_REDIS_EVICTION' })),
  );
  const layout = new KeyLayout(prefix, String(client.options.keyPrefix ?? ''), cluster);
  const ctx: AdapterContext = {
    client,
    layout,
    cluster,
    scripts: new Scripts(client),
    indexes: new Indexes(client, layout),
    guard: (action, work) => guarded(client, action, work),
  };

  const sweepExpired = (limit = sweepBatchSize): Promise<number> => ctx.guard('sweep expired index entries', () => ctx.indexes.sweep(limit));
  let sweeping: Promise<unknown> | undefined;
  let nextSweepAt = 0;
  const state = new RedisStateStore(ctx);
  state.onTaskCreated = () => {
    if (sweepIntervalMs <= 0 || sweeping || Date.now() < nextSweepAt) return;
    nextSweepAt = Date.now() + sweepIntervalMs;
    // Housekeeping only: a failed sweep is retried at the next interval and listings prune as they read.
    sweeping = sweepExpired()
      .catch(() => undefined)
      .finally(() => {
        sweeping = undefined;
      });
  };

  return {
    kind: 'redis',
    prefix,
    payloads: new RedisPayloadStore(ctx),
    state,
    transactions: [new RedisTransactionHook(ctx)],
    iterations: new RedisIterationStore(ctx),
    sweepExpired,
    evictionPolicy,
    async close() {
      nextSweepAt = Number.POSITIVE_INFINITY;
      await sweeping;
    },
  };
}

export type { RedisPayloadStore } from './payload-store.js';
export type { RedisStateStore } from './state-store.js';
export type { RedisTransactionHook } from './transaction-hook.js';
export type { RedisIterationStore } from './iteration-store.js';
export { redisSources, redisSortedSetSource, redisKeyPatternSource, sortedSet, keyPattern } from './sources.js';
export type { SortedSetSpec, KeyPatternSpec } from './sources.js';
