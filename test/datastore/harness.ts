/**
 * Datastore stores for tests, on datastoreForTests() (our emulator, or the one DATASTORE_EMULATOR_HOST
 * names), with raw reads for the contract suite and contenders on clients of their own.
 */
import { Datastore } from '@google-cloud/datastore';
import { datastoreStores, type DatastoreStores, type DatastoreStoresOptions } from '../../adapters/datastore/index.js';
import type { ContractHarness } from '../contract/suite.js';
import { beginTransactionsExplicitly, datastoreForTests, type DatastoreForTests, type DatastoreForTestsOptions } from '../emulators/datastore/harness.js';
import { gcloudPresent, googleEmulatorsOff, googleSuites, sayAbsentOnce } from '../emulators/google.js';
import { rawDatastore, type RawDatastore } from './raw.js';

export interface DatastoreHarness extends ContractHarness {
  stores: DatastoreStores;
  raw: RawDatastore;
  datastore: Datastore;
  env: DatastoreForTests;
  /** A second client on the same data (its own connection). */
  newClient(): Datastore;
}

export interface DatastoreBackend {
  /** Appended to suite names: '' or " on Google's Datastore-mode emulator". */
  readonly label: string;
  readonly backend: DatastoreForTestsOptions;
  readonly google: boolean;
}

/**
 * Where the Datastore store suites run: ours (or DATASTORE_EMULATOR_HOST's), then Google's Firestore
 * emulator in Datastore mode when gcloud is installed (said once when it is not).
 * CLOUD_DEFER_GOOGLE_SUITES=datastore-mode|datastore-legacy runs them on Google's only,
 * CLOUD_DEFER_GOOGLE_EMULATORS=off on ours only.
 */
export function datastoreBackends(): DatastoreBackend[] {
  const suites = googleSuites();
  if (suites.has('datastore-mode') || suites.has('datastore-legacy') || process.env.DATASTORE_EMULATOR_HOST) {
    return [{ label: suites.size ? " on Google's emulator" : '', backend: {}, google: suites.size > 0 }];
  }
  if (googleEmulatorsOff()) return [{ label: '', backend: {}, google: false }];
  if (!gcloudPresent()) {
    sayAbsentOnce();
    return [{ label: '', backend: {}, google: false }];
  }
  return [
    { label: '', backend: {}, google: false },
    { label: " on Google's Datastore-mode emulator", backend: { backend: 'datastore-mode' }, google: true },
  ];
}

export async function openDatastoreHarness(
  options: Omit<DatastoreStoresOptions, 'datastore'> = {},
  backend: DatastoreForTestsOptions = {},
): Promise<DatastoreHarness> {
  const env = await datastoreForTests(backend);
  const { datastore } = env;
  const clients: Datastore[] = [];
  const newClient = (): Datastore => {
    const client = new Datastore({ ...datastore.options });
    // The same work-around for Google's Datastore-mode emulator as the harness's own client.
    if (env.google === 'datastore-mode') beginTransactionsExplicitly(client);
    clients.push(client);
    return client;
  };
  const stores = datastoreStores({ datastore, ...options });
  return {
    env,
    datastore,
    stores,
    raw: rawDatastore(datastore, stores.namespace, options.kindPrefix),
    newClient,
    async contenders(count) {
      return Array.from({ length: count }, () => datastoreStores({ datastore: newClient(), ...options, namespace: stores.namespace }));
    },
    async cleanup() {
      await Promise.all(clients.map((client) => Promise.all([...client.clients_.values()].map((stub) => stub.close()))));
      await env.stop();
    },
  };
}
