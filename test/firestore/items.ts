import type { Firestore } from '@google-cloud/firestore';

/** Writes one document per id under `collection`, with its position in `ids` as field `n`. */
export async function writeItems(firestore: Firestore, collection: string, ids: readonly string[]): Promise<void> {
  const BATCH = 500;
  const batches: Array<() => Promise<unknown>> = [];
  for (let start = 0; start < ids.length; start += BATCH) {
    batches.push(() => {
      const batch = firestore.batch();
      ids.slice(start, start + BATCH).forEach((id, k) => batch.set(firestore.collection(collection).doc(id), { n: start + k }));
      return batch.commit();
    });
  }
  // A few commits in flight at once: fast, without one huge burst.
  for (let i = 0; i < batches.length; i += 8) await Promise.all(batches.slice(i, i + 8).map((commit) => commit()));
}
