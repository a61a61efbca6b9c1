// A Firestore client for tests. When FIRESTORE_EMULATOR_HOST was set before the tests started, it
// talks to that emulator (Google's) and keeps each run apart with a unique collection prefix;
// otherwise it starts the in-process emulator and points a client at it.
import { randomBytes } from 'node:crypto';
import { Firestore } from '@google-cloud/firestore';
import { googleEmulator, googleSuites } from '../google.js';
import { startFirestoreEmulator } from './index.js';

/** Read once at load time, so an emulator started by this harness is never mistaken for the user's. */
const USER_EMULATOR_HOST = process.env.FIRESTORE_EMULATOR_HOST;
const PROJECT_ID = process.env.FIRESTORE_TEST_PROJECT ?? 'cloud-defer-test';

export interface FirestoreForTests {
  readonly firestore: Firestore;
  /** Closes the client (and stops the emulator this harness started). */
  stop(): Promise<void>;
  /** True when the tests run against an emulator the user started (Google's). */
  readonly external: boolean;
  /** `host:port` of the emulator in use, for tests that speak to it below the client's surface. */
  readonly address: string;
  /** The project the client uses. */
  readonly projectId: string;
  /** Prefix for collection ids: unique per run against an external emulator, empty otherwise. */
  readonly prefix: string;
  /** Deletes everything this run wrote (our emulator: everything). */
  clear(): Promise<void>;
}

/** Runs `create` with FIRESTORE_EMULATOR_HOST set to `address`, then restores the variable as it was. */
function withEmulatorHost<T>(address: string, create: () => T): T {
  const previous = process.env.FIRESTORE_EMULATOR_HOST;
  process.env.FIRESTORE_EMULATOR_HOST = address;
  try {
    // The client reads the variable in its constructor only.
    return create();
  } finally {
    if (previous === undefined) delete process.env.FIRESTORE_EMULATOR_HOST;
    else process.env.FIRESTORE_EMULATOR_HOST = previous;
  }
}

export interface FirestoreForTestsOptions {
  /**
   * 'google': Google's emulator in Firestore mode (started once and shared; ours when gcloud is
   * absent, which googleEmulator() says once). 'ours': the in-process one. Default: the user's
   * FIRESTORE_EMULATOR_HOST, else Google's when CLOUD_DEFER_GOOGLE_SUITES lists "firestore",
   * else ours.
   */
  readonly backend?: 'google' | 'ours';
}

export async function firestoreForTests(options: FirestoreForTestsOptions = {}): Promise<FirestoreForTests> {
  const wantsGoogle = options.backend === 'google' || (options.backend === undefined && !USER_EMULATOR_HOST && googleSuites().has('firestore'));
  const google = wantsGoogle ? await googleEmulator('firestore') : undefined;
  const host = options.backend === undefined ? (google?.address ?? USER_EMULATOR_HOST) : google?.address;
  if (host) {
    const firestore = withEmulatorHost(host, () => new Firestore({ projectId: PROJECT_ID }));
    const prefix = `t${Date.now().toString(36)}${randomBytes(3).toString('hex')}_`;
    return {
      firestore,
      external: true,
      address: host,
      projectId: PROJECT_ID,
      prefix,
      stop: () => firestore.terminate(),
      clear: async () => {
        const collections = await firestore.listCollections();
        await Promise.all(collections.filter((c) => c.id.startsWith(prefix)).map((c) => firestore.recursiveDelete(c)));
      },
    };
  }
  const emulator = await startFirestoreEmulator();
  const firestore = withEmulatorHost(emulator.address, () => new Firestore({ projectId: PROJECT_ID }));
  return {
    firestore,
    external: false,
    address: emulator.address,
    projectId: PROJECT_ID,
    prefix: '',
    stop: async () => {
      await firestore.terminate();
      await emulator.stop();
    },
    clear: async () => emulator.reset(),
  };
}
