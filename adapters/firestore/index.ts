/**
 * cloud-defer/firestore: the stores on Firestore (native mode) or its emulator, through the
 * user's own @google-cloud/firestore client. The library is an optional peer dependency, loaded
 * when firestoreStores() is first called, never by importing this module.
 *
 *   import { Firestore } from '@google-cloud/firestore';
 *   import { firestoreStores, firestoreQuery } from 'cloud-defer/firestore';
 *   const stores = firestoreStores({ firestore: new Firestore() });
 *   const deferred = createDeferred({ stores, sources: [stores.source] });
 *   await firestore.runTransaction(async (tx) => { ...; await deferred.defer(task, args, { transaction: tx }); });
 *
 * See collections.ts for the document layout, codec.ts for the record encoding, context.ts for
 * how changes are made atomic, transaction-hook.ts for transactional defers, listing.ts for
 * indexes, and docs/firestore.md for the TTL policy and composite indexes production needs.
 */
import type { Firestore } from '@google-cloud/firestore';
import type { IterationSource } from '../../src/core/iteration.js';
import type { Stores } from '../../src/core/stores.js';
import { collectionNames, type CollectionNames } from './collections.js';
import { AdapterContext } from './context.js';
import { FirestoreIterationStore } from './iteration-store.js';
import { loadLibrary, type FirestoreLibrary } from './library.js';
import { FirestorePayloadStore } from './payload-store.js';
import { firestoreQuerySource } from './sources.js';
import { FirestoreStateStore } from './state-store.js';
import { FirestoreTransactionHook } from './transaction-hook.js';

export interface FirestoreStoresOptions {
  /** A `new Firestore(...)` client; FIRESTORE_EMULATOR_HOST works as Google defines it. */
  firestore: Firestore;
  /** Start of every collection id: letters, digits, "_" or "-". Default "cloudDefer" (cloudDeferTasks, ...). */
  collectionPrefix?: string;
  /** Attempts of a transaction or compare-and-set write that keeps meeting other writers. Default 10. */
  maxAttempts?: number;
  /** Where "now" comes from for retention checks. Default Date.now. */
  now?: () => number;
  /** The library the client comes from, when it is not the `@google-cloud/firestore` cloud-defer resolves (e.g. firebase-admin/firestore). */
  library?: FirestoreLibrary;
}

export interface FirestoreStores extends Stores {
  readonly kind: 'firestore';
  readonly payloads: FirestorePayloadStore;
  readonly state: FirestoreStateStore;
  readonly transactions: readonly [FirestoreTransactionHook];
  readonly iterations: FirestoreIterationStore;
  /** deferIteration over a collection: pass it in createDeferred({ sources }) and defer firestoreQuery(...). */
  readonly source: IterationSource;
  readonly collections: CollectionNames;
  /** Nothing to release: the client stays the caller's. Expiry is Firestore's TTL policy (docs/firestore.md). */
  close(): Promise<void>;
}

export function firestoreStores(options: FirestoreStoresOptions): FirestoreStores {
  const { firestore } = options;
  const library = loadLibrary(firestore, options.library);
  const collections = collectionNames(options.collectionPrefix ?? 'cloudDefer');
  const ctx = new AdapterContext(firestore, library, collections, options.now ?? Date.now, options.maxAttempts ?? 10);
  return {
    kind: 'firestore',
    collections,
    payloads: new FirestorePayloadStore(ctx),
    state: new FirestoreStateStore(ctx),
    transactions: [new FirestoreTransactionHook(ctx)],
    iterations: new FirestoreIterationStore(ctx),
    source: firestoreQuerySource(firestore, library) as IterationSource,
    async close() {},
  };
}

export type { FirestorePayloadStore } from './payload-store.js';
export type { FirestoreStateStore } from './state-store.js';
export type { FirestoreTransactionHook } from './transaction-hook.js';
export type { FirestoreIterationStore } from './iteration-store.js';
export type { CollectionNames } from './collections.js';
export type { FirestoreLibrary } from './library.js';
export { firestoreQuery, firestoreQuerySource, FIRESTORE_QUERY } from './sources.js';
export type { FirestoreQuerySpec, FirestoreQueryRange, FirestoreWhere, WhereValue } from './sources.js';
export { firestoreCounters, FirestoreTaskCounters, type FirestoreCountersOptions } from './counters.js';
