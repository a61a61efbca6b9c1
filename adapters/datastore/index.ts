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
 * The lifecycle is the core's (DocumentStateStore, DocumentIterationStore); this adapter stores
 * documents (documents.ts; layout in kinds.ts), payloads (payload-store.ts), joins the user's
 * transactions (transaction-hook.ts) and sweeps what expired (sweep.ts).
 */
import type { Datastore, Transaction } from '@google-cloud/datastore';
import { DocumentIterationStore, DocumentStateStore, type RetryPolicy } from '../../src/core/documents.js';
import type { IterationSource } from '../../src/core/iteration.js';
import type { Stores } from '../../src/core/stores.js';
import { AdapterContext } from './context.js';
import { DatastoreDocuments } from './documents.js';
import { kindNames, type KindNames } from './kinds.js';
import { DatastorePayloadStore } from './payload-store.js';
import { datastoreQuerySource } from './sources.js';
import { sweepExpired } from './sweep.js';
import { DatastoreTransactionHook, runTransaction } from './transaction-hook.js';

export interface DatastoreStoresOptions {
  /** A `new Datastore(...)` client; DATASTORE_EMULATOR_HOST works as Google defines it. */
  datastore: Datastore;
  /** Namespace of every entity the stores write. Default: the client's namespace (else the default one). */
  namespace?: string;
  /** Start of every kind name: letters, digits or '_'. Default "CloudDefer" (CloudDeferTask, ...). */
  kindPrefix?: string;
  /** Where "now" comes from for retention checks. Default Date.now. */
  now?: () => number;
  /** How long lost commits (contention, lock timeouts) are decided again before STORE_UNAVAILABLE. Default 60 s, backoff with jitter. */
  retry?: Partial<RetryPolicy>;
}

export interface DatastoreStores extends Stores {
  readonly kind: 'datastore';
  readonly payloads: DatastorePayloadStore;
  readonly state: DocumentStateStore;
  readonly transactions: readonly [DatastoreTransactionHook];
  readonly iterations: DocumentIterationStore;
  /** The storage primitives the state and iteration stores are built on. */
  readonly documents: DatastoreDocuments;
  /** deferIteration over a kind: pass it in createDeferred({ sources }) and defer datastoreQuery(...). */
  readonly source: IterationSource;
  readonly namespace: string | undefined;
  readonly kinds: KindNames;
  /**
   * Begin a transaction, run `work` (defer with `{ transaction: tx }` inside it), commit, then
   * enqueue the deferred tasks; roll back when `work` throws. The commit's ABORTED reaches you.
   */
  transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Remove up to `limit` (default 500) expired records, payloads and iterations; returns how many. */
  sweepExpired(limit?: number): Promise<number>;
  /** Nothing to release: the client stays the caller's. */
  close(): Promise<void>;
}

export function datastoreStores(options: DatastoreStoresOptions): DatastoreStores {
  const { datastore } = options;
  const namespace = options.namespace ?? datastore.namespace;
  const kinds = kindNames(options.kindPrefix ?? 'CloudDefer');
  const ctx = new AdapterContext(datastore, namespace, kinds, options.now ?? Date.now);
  const documents = new DatastoreDocuments(ctx);
  const hook = new DatastoreTransactionHook(documents);
  return {
    kind: 'datastore',
    namespace,
    kinds,
    documents,
    payloads: new DatastorePayloadStore(ctx),
    state: new DocumentStateStore(documents, options.retry ? { retry: options.retry } : {}),
    transactions: [hook],
    iterations: new DocumentIterationStore(documents, options.retry ? { retry: options.retry } : {}),
    source: datastoreQuerySource(datastore) as IterationSource,
    transaction: (work) => runTransaction(documents, hook, work),
    sweepExpired: (limit = 500) => ctx.guard('remove expired entities', () => sweepExpired(documents, limit)),
    async close() {},
  };
}

export type { DatastorePayloadStore } from './payload-store.js';
export type { DatastoreDocuments } from './documents.js';
export type { DatastoreTransactionHook } from './transaction-hook.js';
export type { KindNames } from './kinds.js';
export type { KeyPath } from './key-paths.js';
export { datastoreQuery, datastoreQuerySource, DATASTORE_QUERY } from './sources.js';
export type { DatastoreQuerySpec, DatastoreKeyRange, DatastoreFilter, FilterOperator, FilterValue } from './sources.js';
export { datastoreCounters, DatastoreTaskCounters, type DatastoreCountersOptions } from './counters.js';
