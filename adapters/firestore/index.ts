/**
 * cloud-defer/firestore: the stores on Firestore (native mode) or its emulator, through the
 * user's own @google-cloud/firestore client. The library is an optional peer dependency, loaded
 * when firestoreStores() is first called, never by importing this module.
 *
 *   import { Firestore } from '@google-cloud/firestore';
 *   import { firestoreStores, firestoreQuery } from 'cloud-defer/firestore';
 *   const stores = firestoreStores({ firestore: new Firestore() });
 *   const deferred = createDeferred({ stores, sources: [stores.source] });
 *   await stores.transaction(async (tx) => { ...; await deferred.defer(task, args, { transaction: tx }); });
 *
 * The lifecycle is the core's (DocumentStateStore, DocumentIterationStore); documents.ts stores
 * its documents, transaction-hook.ts joins defers to transactions, and docs/firestore.md lists
 * the TTL policy, indexes and index exemptions production needs.
 */
import type { Firestore, Transaction } from '@google-cloud/firestore';
import { DocumentIterationStore, DocumentStateStore, type RetryPolicy } from '../../src/core/documents.js';
import type { IterationSource } from '../../src/core/iteration.js';
import type { Stores } from '../../src/core/stores.js';
import { collectionNames, type CollectionNames, FirestoreDocuments } from './documents.js';
import { loadLibrary, type FirestoreLibrary } from './library.js';
import { FirestorePayloadStore } from './payload-store.js';
import { firestoreQuerySource } from './sources.js';
import { FirestoreTransactionHook } from './transaction-hook.js';

export interface FirestoreStoresOptions {
  /** A `new Firestore(...)` client; FIRESTORE_EMULATOR_HOST works as Google defines it. */
  firestore: Firestore;
  /** Start of every collection id: letters, digits, "_" or "-". Default "cloudDefer" (cloudDeferTasks, ...). */
  collectionPrefix?: string;
  /** Where "now" comes from for retention checks. Default Date.now. */
  now?: () => number;
  /** How long lost commits (contention, lock timeouts) are decided again before STORE_UNAVAILABLE. Default 60 s, backoff with jitter. */
  retry?: Partial<RetryPolicy>;
  /** The library the client comes from, when it is not the `@google-cloud/firestore` cloud-defer resolves (e.g. firebase-admin/firestore). */
  library?: FirestoreLibrary;
}

export interface FirestoreStores extends Stores {
  readonly kind: 'firestore';
  readonly payloads: FirestorePayloadStore;
  readonly state: DocumentStateStore;
  readonly transactions: readonly [FirestoreTransactionHook];
  readonly iterations: DocumentIterationStore;
  /** deferIteration over a collection: pass it in createDeferred({ sources }) and defer firestoreQuery(...). */
  readonly source: IterationSource;
  readonly collections: CollectionNames;
  /** firestore.runTransaction(work); defers given `{ transaction: tx }` are enqueued once it committed, never on failure. */
  transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Stops the enqueue relays of pending transactional defers; the client stays the caller's. */
  close(): Promise<void>;
}

export function firestoreStores(options: FirestoreStoresOptions): FirestoreStores {
  const { firestore } = options;
  const library = loadLibrary(firestore, options.library);
  const collections = collectionNames(options.collectionPrefix ?? 'cloudDefer');
  const docs = new FirestoreDocuments(firestore, library, collections, options.now ?? Date.now);
  const hook = new FirestoreTransactionHook(docs);
  return {
    kind: 'firestore',
    collections,
    payloads: new FirestorePayloadStore(docs),
    state: new DocumentStateStore(docs, options.retry ? { retry: options.retry } : {}),
    transactions: [hook],
    iterations: new DocumentIterationStore(docs, options.retry ? { retry: options.retry } : {}),
    source: firestoreQuerySource(firestore, library) as IterationSource,
    transaction: (work) => hook.run(work),
    async close() {
      hook.stop();
    },
  };
}

export type { FirestorePayloadStore } from './payload-store.js';
export type { FirestoreTransactionHook } from './transaction-hook.js';
export type { CollectionNames } from './documents.js';
export type { FirestoreLibrary } from './library.js';
export { firestoreQuery, firestoreQuerySource, FIRESTORE_QUERY } from './sources.js';
export type { FirestoreQuerySpec, FirestoreQueryRange, FirestoreWhere, WhereValue } from './sources.js';
export { firestoreCounters, FirestoreTaskCounters, type FirestoreCountersOptions } from './counters.js';
