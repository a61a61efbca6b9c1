import { randomBytes } from 'node:crypto';
import { Datastore } from '@google-cloud/datastore';
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
export async function datastoreForTests(): Promise<DatastoreForTests> {
  harnesses += 1;
  if (process.env.DATASTORE_EMULATOR_HOST) {
    const projectId = process.env.DATASTORE_PROJECT_ID || DEFAULT_PROJECT;
    const namespace = `test-${RUN_ID}-${harnesses}`;
    const datastore = new Datastore({ projectId, namespace });
    return { datastore, external: true, projectId, namespace, stop: () => closeClients(datastore) };
  }
  const emulator = await startDatastoreEmulator({ projectId: DEFAULT_PROJECT });
  const projectId = emulator.projectId ?? DEFAULT_PROJECT;
  const datastore = withEnvironment(
    { DATASTORE_EMULATOR_HOST: emulator.address, DATASTORE_PROJECT_ID: projectId },
    () => new Datastore(),
  );
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
  const saved = Object.fromEntries(Object.keys(variables).map(name => [name, process.env[name]]));
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
  await Promise.all([...datastore.clients_.values()].map(client => client.close()));
}
