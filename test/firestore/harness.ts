/**
 * Opening the Firestore stores for tests, on the in-process emulator or on the one named by
 * FIRESTORE_EMULATOR_HOST, or on Google's, through firestoreForTests(). Each harness uses collections
 * of its own (a fresh collection prefix) and more clients for the contenders, so that concurrent
 * callers meet at the server on separate channels.
 */
import { randomBytes } from 'node:crypto';
import { Firestore } from '@google-cloud/firestore';
import { firestoreStores, type FirestoreStores, type FirestoreStoresOptions } from '../../adapters/firestore/index.js';
import type { ContractHarness } from '../contract/suite.js';
import { firestoreForTests, type FirestoreForTests } from '../emulators/firestore/harness.js';
import { gcloudPresent, googleEmulatorsOff, googleSuites, sayAbsentOnce } from '../emulators/google.js';
import { firestoreRawBackend } from './raw.js';

export interface FirestoreBackend {
  /** Appended to suite names: '' or " on Google's emulator". */
  readonly label: string;
  /** For firestoreForTests() and openFirestoreHarness(). */
  readonly backend?: 'google';
  readonly google: boolean;
}

/**
 * Where the Firestore suites run: ours (or the user's FIRESTORE_EMULATOR_HOST), then Google's
 * emulator in Firestore mode when gcloud is installed (said once when it is not).
 * CLOUD_DEFER_GOOGLE_SUITES=firestore runs them on Google's only, CLOUD_DEFER_GOOGLE_EMULATORS=off
 * on ours only.
 */
export function firestoreBackends(): FirestoreBackend[] {
  if (googleSuites().has('firestore')) return [{ label: " on Google's emulator", google: true }];
  if (googleEmulatorsOff()) return [{ label: '', google: false }];
  if (!gcloudPresent()) {
    sayAbsentOnce();
    return [{ label: '', google: false }];
  }
  return [
    { label: '', google: false },
    { label: " on Google's emulator", backend: 'google', google: true },
  ];
}

/** Clients shared round-robin by the contenders. */
const CONTENDER_CLIENTS = 8;

/** Another client on the same emulator, made the way users make one (FIRESTORE_EMULATOR_HOST). */
export function anotherClient(env: FirestoreForTests): Firestore {
  const previous = process.env.FIRESTORE_EMULATOR_HOST;
  process.env.FIRESTORE_EMULATOR_HOST = env.address;
  try {
    return new Firestore({ projectId: env.projectId });
  } finally {
    if (previous === undefined) delete process.env.FIRESTORE_EMULATOR_HOST;
    else process.env.FIRESTORE_EMULATOR_HOST = previous;
  }
}

export function uniquePrefix(env: FirestoreForTests): string {
  return `${env.prefix}cd${randomBytes(4).toString('hex')}`;
}

export interface FirestoreHarness extends ContractHarness {
  stores: FirestoreStores;
  env: FirestoreForTests;
  firestore: Firestore;
  /** Collection prefix of these stores. */
  prefix: string;
  raw: ReturnType<typeof firestoreRawBackend>;
}

export async function openFirestoreHarness(
  storeOptions: Omit<FirestoreStoresOptions, 'firestore' | 'collectionPrefix'> = {},
  where: { backend?: 'google' } = {},
): Promise<FirestoreHarness> {
  const env = await firestoreForTests(where.backend ? { backend: where.backend } : {});
  const prefix = uniquePrefix(env);
  const rawClient = anotherClient(env);
  const pool: Array<{ client: Firestore; stores: FirestoreStores }> = [];
  const stores = firestoreStores({ firestore: env.firestore, collectionPrefix: prefix, ...storeOptions });
  return {
    env,
    prefix,
    firestore: env.firestore,
    stores,
    raw: firestoreRawBackend(rawClient, prefix),
    async contenders(count) {
      while (pool.length < Math.min(count, CONTENDER_CLIENTS)) {
        const client = anotherClient(env);
        pool.push({ client, stores: firestoreStores({ firestore: client, collectionPrefix: prefix, ...storeOptions }) });
      }
      return Array.from({ length: count }, (_, i) => pool[i % pool.length]!.stores);
    },
    async cleanup() {
      await Promise.all([stores, ...pool.map((entry) => entry.stores)].map((each) => each.close()));
      await Promise.all([rawClient, ...pool.map((entry) => entry.client)].map((client) => client.terminate()));
      if (env.external) await env.clear();
      await env.stop();
    },
  };
}
