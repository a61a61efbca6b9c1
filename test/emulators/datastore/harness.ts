import { randomBytes } from 'node:crypto';
import { Datastore } from '@google-cloud/datastore';
import { googleEmulator, googleSuites, type GoogleEmulatorMode } from '../google.js';
import { startDatastoreEmulator, type DatastoreEmulator } from './index.js';

export interface DatastoreForTests {
  /** The official client, set up the way users set it up for an emulator. */
  datastore: Datastore;
  stop(): Promise<void>;
  /** True when DATASTORE_EMULATOR_HOST named an emulator already running (Google's, say). */
  external: boolean;
  projectId: string;
  /** The namespace this harness isolates its data in (external emulators only). */
  namespace?: string;
  /** Our emulator, when the harness started one. */
  emulator?: DatastoreEmulator;
  /** Google's emulator in use, when it is one the harness started. */
  google?: GoogleEmulatorMode;
}

export interface DatastoreForTestsOptions {
  /**
   * 'datastore-mode' or 'datastore-legacy': Google's emulator of that kind (started once and
   * shared; ours when gcloud is absent, which googleEmulator() says once). 'ours': our emulator.
   * Default: DATASTORE_EMULATOR_HOST when set, else Google's when CLOUD_DEFER_GOOGLE_SUITES lists
   * datastore-mode or datastore-legacy, else ours.
   */
  backend?: 'ours' | 'datastore-mode' | 'datastore-legacy';
  /** For our emulator: its concurrency mode (see startDatastoreEmulator). */
  concurrencyMode?: 'datastore-mode' | 'optimistic-with-entity-groups' | 'pessimistic';
  lockWaits?: { upgradeTimeoutMs?: number; outsideWaitMs?: number };
}

/**
 * Google's Firestore emulator 1.19.9 in Datastore mode fails every commit of a transaction that a
 * read began (Lookup or RunQuery with new_transaction) with "Transaction lock timeout"; the real
 * service and the legacy emulator take them. So on that emulator only, every transaction of this
 * client begins explicitly (BeginTransaction) before its first call. Public API only: the
 * returned Transaction's own methods are wrapped.
 */
export function beginTransactionsExplicitly(datastore: Datastore): Datastore {
  const transaction = datastore.transaction.bind(datastore);
  datastore.transaction = ((options?: Parameters<Datastore['transaction']>[0]) => {
    const tx = transaction(options);
    const run = tx.run.bind(tx) as (...args: unknown[]) => Promise<unknown>;
    let begun: Promise<unknown> | undefined;
    // The caller's own run(options) (say, previous_transaction on a retry) begins it as asked.
    const begin = (options: unknown[] = []): Promise<unknown> => (begun ??= run(...options));
    (tx as { run: unknown }).run = (...args: unknown[]) => {
      const callback = args.find((arg) => typeof arg === 'function') as ((error: unknown, ...rest: unknown[]) => void) | undefined;
      const done = begin(args.filter((arg) => typeof arg !== 'function')).then((result) => (Array.isArray(result) ? result : [result]));
      if (callback)
        void done.then(
          (result) => callback(null, ...result),
          (error) => callback(error),
        );
      return callback ? undefined : done;
    };
    for (const name of ['get', 'runQuery', 'runAggregationQuery', 'commit'] as const) {
      const method = (tx[name] as (...args: unknown[]) => unknown).bind(tx);
      (tx as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => begin().then(() => method(...args));
    }
    return tx;
  }) as Datastore['transaction'];
  return datastore;
}

function chosenBackend(options: DatastoreForTestsOptions): DatastoreForTestsOptions['backend'] | 'user' {
  if (options.backend) return options.backend;
  if (process.env.DATASTORE_EMULATOR_HOST) return 'user';
  const suites = googleSuites();
  if (suites.has('datastore-mode')) return 'datastore-mode';
  if (suites.has('datastore-legacy')) return 'datastore-legacy';
  return 'ours';
}

const DEFAULT_PROJECT = 'cloud-defer-test';
const RUN_ID = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
let harnesses = 0;

/**
 * A Datastore client for tests. When DATASTORE_EMULATOR_HOST is set (for example to Google's
 * emulator) the client uses it, in a namespace of its own for each call so runs do not see each
 * other's data. Otherwise it starts our emulator and points a client at it through the same
 * environment variables a user would set, restoring them at once so nothing else sees them.
 */
export async function datastoreForTests(options: DatastoreForTestsOptions = {}): Promise<DatastoreForTests> {
  harnesses += 1;
  const backend = chosenBackend(options);
  const google = backend === 'datastore-mode' || backend === 'datastore-legacy' ? await googleEmulator(backend) : undefined;
  if (google) {
    const projectId = DEFAULT_PROJECT;
    const namespace = `test-${RUN_ID}-${harnesses}`;
    const datastore = withEnvironment({ DATASTORE_EMULATOR_HOST: google.address, DATASTORE_PROJECT_ID: projectId }, () => new Datastore({ namespace }));
    if (google.mode === 'datastore-mode') beginTransactionsExplicitly(datastore);
    return { datastore, external: true, projectId, namespace, google: google.mode, stop: () => closeClients(datastore) };
  }
  if (backend === 'user') {
    const projectId = process.env.DATASTORE_PROJECT_ID || DEFAULT_PROJECT;
    const namespace = `test-${RUN_ID}-${harnesses}`;
    const datastore = new Datastore({ projectId, namespace });
    return { datastore, external: true, projectId, namespace, stop: () => closeClients(datastore) };
  }
  const emulator = await startDatastoreEmulator({
    projectId: DEFAULT_PROJECT,
    ...(options.concurrencyMode ? { concurrencyMode: options.concurrencyMode } : {}),
    ...(options.lockWaits ? { lockWaits: options.lockWaits } : {}),
  });
  const projectId = emulator.projectId ?? DEFAULT_PROJECT;
  const datastore = withEnvironment({ DATASTORE_EMULATOR_HOST: emulator.address, DATASTORE_PROJECT_ID: projectId }, () => new Datastore());
  return {
    datastore,
    external: false,
    projectId,
    emulator,
    stop: async () => {
      await closeClients(datastore);
      await emulator.stop();
    },
  };
}

/** Runs `create` with the variables set, then puts the environment back as it was. */
function withEnvironment<T>(variables: Record<string, string>, create: () => T): T {
  const saved = Object.fromEntries(Object.keys(variables).map((name) => [name, process.env[name]]));
  Object.assign(process.env, variables);
  try {
    return create();
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

async function closeClients(datastore: Datastore): Promise<void> {
  await Promise.all([...datastore.clients_.values()].map((client) => client.close()));
}
