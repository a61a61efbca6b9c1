/**
 * cloud-defer/redis: the stores on Redis, single node or Cluster, through the user's own ioredis
 * client. ioredis is only referred to as types: this module never loads it.
 *
 *   import Redis from 'ioredis';
 *   import { redisStores } from 'cloud-defer/redis';
 *   const stores = redisStores({ client: new Redis(process.env.REDIS_URL) });
 *
 * The adapter only stores (documents.ts, lua/commit.lua); the core decides every state change
 * (src/core/lifecycle.ts) and runs read -> decide -> commit (src/core/documents.ts). What it does
 * to the client: defines its scripts as commands named cloudDefer* with defineCommand, and
 * nothing else (no option, listener or connection of its own). close() does not disconnect it.
 */
import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import { DocumentIterationStore, DocumentStateStore } from '../../src/core/documents.js';
import { CloudDeferError } from '../../src/core/errors.js';
import { createWithReference } from '../../src/core/lifecycle.js';
import type { TaskRecord } from '../../src/core/records.js';
import type { CreateTaskResult, Stores } from '../../src/core/stores.js';
import { RedisDocuments } from './documents.js';
import { KeyLayout, newTaskId } from './keys.js';
import { RedisPayloadStore } from './payload-store.js';
import { RedisTransactionHook } from './transaction-hook.js';
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

/** The state store over the Redis documents; `onTaskCreated` lets the stores sweep now and then. */
export class RedisStateStore extends DocumentStateStore {
  onTaskCreated: () => void = () => {};
  override newTaskId: (reference: string | undefined) => string = newTaskId;

  constructor(private readonly documents: RedisDocuments) {
    super(documents);
  }

  override async createTask(record: TaskRecord, now: number): Promise<CreateTaskResult> {
    const result = record.reference === undefined ? await this.createWithoutReference(record, now) : await super.createTask(record, now);
    if (result.created) this.onTaskCreated();
    return result;
  }

  /**
   * Without a reference the core's only refusal is an id already taken, which the commit's
   * "absent" guard checks by itself: one round trip instead of a read and a commit (a defer's
   * cost on Redis stays what it was before the core decided).
   */
  private async createWithoutReference(record: TaskRecord, now: number): Promise<CreateTaskResult> {
    const decision = createWithReference(record, now, {});
    if (
      decision.kind === 'create' &&
      (await this.documents.commit([{ kind: 'task', id: record.id, expect: 'absent', value: decision.record, expiresAt: record.expiresAt }]))
    ) {
      this.rememberCreated(decision.record);
      return { created: true };
    }
    throw new CloudDeferError('TASK_ALREADY_EXISTS', `A task record with id ${record.id} already exists.`);
  }
}

export class RedisIterationStore extends DocumentIterationStore {}

export interface RedisStores extends Stores {
  readonly kind: 'redis';
  readonly payloads: RedisPayloadStore;
  readonly state: RedisStateStore;
  readonly transactions: readonly [RedisTransactionHook];
  readonly iterations: RedisIterationStore;
  readonly prefix: string;
  /**
   * Run `work` in a MULTI of the stores' client: EXEC when it resolves, then enqueue the defers
   * it staged (`{ transaction: tx }`); drop the MULTI (nothing sent) when it throws. Rejects with
   * the first failed command of EXEC, or INVALID_STATE when a WATCH aborted it.
   */
  transaction<T>(work: (tx: ChainableCommander) => Promise<T>): Promise<T>;
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
  const docs = new RedisDocuments(client, new KeyLayout(prefix, client.isCluster));
  const evictionPolicy = checkEvictionPolicy(
    client,
    options.onEvictionRisk ?? ((message) => process.emitWarning(message, { code: 'CLOUD_DEFER_REDIS_EVICTION' })),
  );
  const sweepExpired = (limit = sweepBatchSize): Promise<number> => docs.sweep(limit);
  let sweeping: Promise<unknown> | undefined;
  let nextSweepAt = 0;
  const state = new RedisStateStore(docs);
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
  const payloads = new RedisPayloadStore(docs);
  const hook = new RedisTransactionHook(docs, state, payloads);

  return {
    kind: 'redis',
    prefix,
    payloads,
    state,
    transactions: [hook],
    iterations: new RedisIterationStore(docs),
    async transaction<T>(work: (tx: ChainableCommander) => Promise<T>): Promise<T> {
      const tx = client.multi();
      const staging = hook.own(tx);
      let result: T;
      try {
        result = await work(tx);
      } catch (error) {
        staging.closed = true; // never sent: Redis saw nothing of it
        throw error;
      }
      const queued = tx.length;
      staging.closed = true;
      const results = await docs.guard('run a transaction', () => tx.exec());
      if (!results) throw new CloudDeferError('INVALID_STATE', 'The transaction was aborted: a key it WATCHed changed before EXEC. Nothing of it was written.');
      const failed = results.find(([error]) => error);
      if (failed) throw failed[0];
      await hook.afterExec(staging, results, queued);
      return result;
    },
    sweepExpired,
    evictionPolicy,
    async close() {
      nextSweepAt = Number.POSITIVE_INFINITY;
      await sweeping;
    },
  };
}

export type { RedisPayloadStore } from './payload-store.js';
export type { RedisTransactionHook } from './transaction-hook.js';
export { redisSources, redisSortedSetSource, redisKeyPatternSource, sortedSet, keyPattern } from './sources.js';
export type { SortedSetSpec, KeyPatternSpec } from './sources.js';
