/** deferIteration on Firestore: Firestore stores, and a Firestore collection (with filters) as the source; on ours and on Google's emulator. */
import type { Firestore } from '@google-cloud/firestore';
import { firestoreQuery, firestoreStores, type FirestoreStores } from '../../adapters/firestore/index.js';
import { firestoreForTests, type FirestoreForTests } from '../emulators/firestore/harness.js';
import { firestoreBackends, uniquePrefix } from '../firestore/harness.js';
import { writeItems } from '../firestore/items.js';
import { describeIteration } from './suite.js';

for (const { label, backend, google } of firestoreBackends()) {
  let env: FirestoreForTests | undefined;
  let prefix = '';
  let collections = 0;
  const opened: FirestoreStores[] = [];
  const open = async (): Promise<FirestoreForTests> => {
    if (!env) {
      env = await firestoreForTests(backend ? { backend } : {});
      prefix = uniquePrefix(env);
    }
    return env;
  };

  /** A fresh collection holding one document per id, with its position as field `n`. */
  const collectionOf = async (firestore: Firestore, ids: string[]): Promise<string> => {
    const path = `${prefix}Items${(collections += 1)}`;
    await writeItems(firestore, path, ids);
    return path;
  };

  describeIteration({
    name: `Firestore collection source, Firestore stores${label ? `,${label}` : ''}`,
    // Our test emulator scans a collection on every page query, so a walk costs O(items^2): 100,000
    // items took 60-85 s of a 100 s bound on a loaded 2-core machine. 25,000 keeps a 2x margin; the
    // 100,000-item walk runs on memory, Redis and Datastore. Google's writes the items slowly: 5,000.
    bigItems: google ? 5_000 : 25_000,
    options: async () => {
      const stores = firestoreStores({ firestore: (await open()).firestore, collectionPrefix: prefix });
      opened.push(stores);
      return { stores, sources: [stores.source] };
    },
    source: async (ids) => firestoreQuery(await collectionOf((await open()).firestore, ids), { select: 'id' }),
    filtered: async (ids, from, to) =>
      firestoreQuery(await collectionOf((await open()).firestore, ids), {
        select: 'id',
        where: [
          ['n', '>=', from],
          ['n', '<=', to],
        ],
      }),
    cleanup: async () => {
      await Promise.all(opened.splice(0).map((stores) => stores.close()));
      if (env?.external) await env.clear();
      await env?.stop();
      env = undefined;
    },
  });
}
