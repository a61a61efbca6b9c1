/** Fills a fresh kind with entities named after the given ids, for the iteration source tests. */
import { randomUUID } from 'node:crypto';
import type { Datastore } from '@google-cloud/datastore';

const BATCH = 500;
const IN_FLIGHT = 8;

/** Writes one entity per id, { n: its index }, into a new kind; returns the kind. */
export async function fillKind(datastore: Datastore, ids: readonly string[], namespace = datastore.namespace): Promise<string> {
  const kind = `Item${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const batches: Array<() => Promise<unknown>> = [];
  for (let start = 0; start < ids.length; start += BATCH) {
    const entities = ids.slice(start, start + BATCH).map((id, i) => ({ key: datastore.key({ namespace, path: [kind, id] }), data: { n: start + i } }));
    batches.push(() => datastore.save(entities));
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < batches.length) await batches[next++]!();
    }),
  );
  return kind;
}
