/**
 * cloud-defer/datastore: the stores on Firestore in Datastore mode (or its emulator), through the
 * user's own @google-cloud/datastore client. The client is only referred to as types: this module
 * never loads the library itself.
 *
 *   import { Datastore } from '@google-cloud/datastore';
 *   import { datastoreStores } from 'cloud-defer/datastore';
 *   const stores = datastoreStores({ datastore: new Datastore() });
 *   const deferred = createDeferred({ stores, sources: [stores.source] });
 *
 * See kinds.ts for the entity layout, codec.ts for the record encoding, listing-keys.ts for
 * listing without composite indexes, context.ts for transactions and their retries,
 * transaction-hook.ts for transactional defers, and sweep.ts for retention.
 */
import type { Datastore } from '@google-cloud/datastore';
import type { Stores } from '../../src/core/stores.js';
import type { IterationSource } from '../../src/core/iteration.js';
import { AdapterContext, type RetryPolicy } from './context.js';
import { DatastoreIterationStore } from './iteration-store.js';
import { kindNames, type KindNames } from './kinds.js';
import { DatastorePayloadStore } from './payload-store.js';
import { datastoreQuerySource } from './sources.js';
import { DatastoreStateStore } from './state-store.js';
import { sweepExpired } from './sweep.js';
import { DatastoreTransactionHook } from './transaction-hook.js';

export interface DatastoreStoresOptions {
  /** A `new Datastore(...)` client; DATASTORE_EMULATOR_HOST works as Google defines it. */
  datastore: Datastore;
  /** Namespace of every entity the stores write. Default: the client's namespace (else the default one). */
  namespace?: string;
  /** Start of every kind name: letters, digits or '_'. Default "CloudDefer" (CloudDeferTask, ...). */
  kindPrefix?: string;
  /** Transactions that meet contention (ABORTED) are run again; default 10 attempts, 20 ms doubling to 1 s, jittered. */
  retry?: Partial<RetryPolicy>;
  /** Where "now" comes from for retention checks. Default Date.now. */
  now?: () => number;
}

export interface DatastoreStores extends Stores {
  readonly kind: 'datastore';
  readonly payloads: DatastorePayloadStore;
  readonly state: DatastoreStateStore;
  readonly transactions: readonly [DatastoreTransactionHook];
  readonly iterations: DatastoreIterationStore;
  /** deferIteration over a kind: pass it in createDeferred({ sources }) and defer datastoreQuery(...). */
  readonly source: IterationSource;
  readonly namespace: string | undefined;
  readonly kinds: KindNames;
  /** Remove up to `limit` (default 500) expired records, payloads and iterations; returns how many. */
  sweepExpired(limit?: number): Promise<number>;
  /** Nothing to release: the client stays the caller's. */
  close(): Promise<void>;
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 10, baseDelayMs: 20, maxDelayMs: 1_000 };

export function datastoreStores(options: DatastoreStoresOptions): DatastoreStores {
  const { datastore } = options;
  const namespace = options.namespace ?? datastore.namespace;
  const kinds = kindNames(options.kindPrefix ?? 'CloudDefer');
  const ctx = new AdapterContext(datastore, namespace, kinds, options.now ?? Date.now, { ...DEFAULT_RETRY, ...options.retry });
  return {
    kind: 'datastore',
    namespace,
    kinds,
    payloads: new DatastorePayloadStore(ctx),
    state: new DatastoreStateStore(ctx),
    transactions: [new DatastoreTransactionHook(ctx)],
    iterations: new DatastoreIterationStore(ctx),
    source: datastoreQuerySource(datastore) as IterationSource,
    sweepExpired: (limit = 500) => ctx.guard('remove expired entities', () => sweepExpired(ctx, limit)),
    async close() {},
  };
}

export type { DatastorePayloadStore } from './payload-store.js';
export type { DatastoreStateStore } from './state-store.js';
export type { DatastoreTransactionHook } from './transaction-hook.js';
export type { DatastoreIterationStore } from './iteration-store.js';
export type { KindNames } from './kinds.js';
export type { RetryPolicy } from './context.js';
export type { KeyPath } from './key-paths.js';
export { datastoreQuery, datastoreQuerySource, DATASTORE_QUERY } from './sources.js';
export type { DatastoreQuerySpec, DatastoreKeyRange, DatastoreFilter, FilterOperator, FilterValue } from './sources.js';
export { datastoreCounters, DatastoreTaskCounters, type DatastoreCountersOptions } from './counters.js';
