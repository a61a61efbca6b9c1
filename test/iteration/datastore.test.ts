/** deferIteration on Datastore: Datastore stores, and a Datastore kind as the source. */
import type { Datastore } from '@google-cloud/datastore';
import { datastoreQuery, datastoreStores, type DatastoreFilter } from '../../adapters/datastore/index.js';
import { datastoreForTests, type DatastoreForTests } from '../emulators/datastore/harness.js';
import { fillKind } from '../datastore/entities.js';
import { googleSuites } from '../emulators/google.js';
import { datastoreBackends } from '../datastore/harness.js';
import { describeIteration } from './suite.js';

/**
 * Our emulator answers every 300-result batch of a query by re-running it over the whole kind
 * (about 0.25 s a batch at 100,000 entities), so a walk of 100,000 entities through it takes
 * minutes. Above this size the suite's source is the plain list, still with Datastore stores;
 * the Datastore kind source is walked at 10,000 entities in test/datastore/source.test.ts.
 */
const KIND_SOURCE_MAX = 20_000;

for (const { label, backend, google } of datastoreBackends()) {
  let env: DatastoreForTests | undefined;
  const legacy = backend.backend === 'datastore-legacy' || googleSuites().has('datastore-legacy');
  const client = async (): Promise<Datastore> => (env ??= await datastoreForTests(backend)).datastore;

  describeIteration({
    name: `Datastore kind source, Datastore stores${label}`,
    ...(google ? { bigItems: 5_000 } : {}),
    options: async () => {
      const stores = datastoreStores({ datastore: await client() });
      return { stores, sources: [stores.source] };
    },
    source: async (ids) => (ids.length > KIND_SOURCE_MAX ? ids : datastoreQuery(await fillKind(await client(), ids), { select: 'id' })),
    filtered: async (ids, from, to) => {
      const numbers = Array.from({ length: to - from + 1 }, (_, i) => from + i);
      // IN is an equality filter: the built-in indexes serve it with the key range (see sources.ts).
      // Google's legacy emulator has no IN: a range there (walked by cursors, see sources.ts).
      const inList = numbers.length <= 30 && !legacy;
      const filters: DatastoreFilter[] = inList
        ? [['n', 'IN', numbers]]
        : [
            ['n', '>=', from],
            ['n', '<=', to],
          ];
      return datastoreQuery(await fillKind(await client(), ids), { select: 'id', filters });
    },
    cleanup: async () => {
      await env?.stop();
      env = undefined;
    },
  });
}
