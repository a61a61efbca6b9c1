/** deferIteration on Firestore: Firestore stores, and a Firestore collection (with filters) as the source. */
import type { Firestore } from '@google-cloud/firestore';
import { firestoreQuery, firestoreStores } from '../../adapters/firestore/index.js';
import { firestoreForTests, type FirestoreForTests } from '../emulators/firestore/harness.js';
import { uniquePrefix } from '../firestore/harness.js';
import { writeItems } from '../firestore/items.js';
import { googleSuites } from '../emulators/google.js';
import { describeIteration } from './suite.js';

let env: FirestoreForTests | undefined;
let prefix = '';
let collections = 0;
const open = async (): Promise<FirestoreForTests> => {
  if (!env) {
    env = await firestoreForTests();
    prefix = uniquePrefix(env);
  }
  return env;
};

/** A fresh collection holding one document per id, with its position as field `n`. */
async function collectionOf(firestore: Firestore, ids: string[]): Promise<string> {
  const path = `${prefix}Items${(collections += 1)}`;
  await writeItems(firestore, path, ids);
  return path;
}

describeIteration({
  name: `Firestore collection source, Firestore stores${googleSuites().has('firestore') ? ", on Google's emulator" : ''}`,
  // Our test emulator scans a collection on every page query, so a walk costs O(items^2): 100,000
  // items took 60-85 s of a 100 s bound on a loaded 2-core machine. 25,000 keeps a 2x margin; the
  // 100,000-item walk runs on memory, Redis and Datastore.
  bigItems: googleSuites().has('firestore') ? 5_000 : 25_000,
  options: async () => {
    const stores = firestoreStores({ firestore: (await open()).firestore, collectionPrefix: prefix });
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
    if (env?.external) await env.clear();
    await env?.stop();
    env = undefined;
  },
});
