/**
 * Newest-first listings (tasks, iterations) in the shared cursor format: a query ordered by
 * createdAt descending then document id descending, started after the cursor's (createdAt, id).
 * Records past their retention may still be there (TTL deletion is lazy): they are skipped, and
 * reading goes on until the page is full.
 *
 * Indexes: unfiltered, the automatic single-field index on createdAt serves it. Each equality
 * filter needs a composite index (filter field ASC, createdAt DESC, __name__ DESC); Firestore
 * merges those for several filters at once. docs/firestore.md lists them as firestore.indexes.json.
 */
import type { DocumentSnapshot, Query } from '@google-cloud/firestore';
import { decodeCursor, encodeCursor, type CursorPosition } from '../../src/core/cursor.js';
import type { AdapterContext } from './context.js';

/** Reads at least this many documents per round trip, so expired leftovers cost few reads. */
const MIN_BATCH = 50;

export function pageLimit(limit: number | undefined): number {
  return Math.min(Math.max(limit ?? 50, 1), 1000);
}

export interface NewestFirstPage<T> {
  records: T[];
  nextCursor?: string;
}

/** One page of `query` (filters only, no order) decoded by `decode`, which answers undefined for expired documents. */
export async function newestFirstPage<T extends CursorPosition>(
  ctx: AdapterContext,
  query: Query,
  options: { cursor?: string; limit?: number },
  decode: (snapshot: DocumentSnapshot) => T | undefined,
): Promise<NewestFirstPage<T>> {
  const limit = pageLimit(options.limit);
  let position = options.cursor ? decodeCursor(options.cursor) : undefined;
  const ordered = query.orderBy('createdAt', 'desc').orderBy(ctx.library.FieldPath.documentId(), 'desc');
  // One more than the page: whether it exists says if there is a next page.
  const found: T[] = [];
  for (;;) {
    const want = limit + 1 - found.length;
    const batch = Math.max(want, MIN_BATCH);
    const snapshot = await (position ? ordered.startAfter(position.createdAt, position.id) : ordered).limit(batch).get();
    for (const document of snapshot.docs) {
      position = { createdAt: document.get('createdAt') as number, id: document.id };
      const record = decode(document);
      if (record) found.push(record);
      if (found.length > limit) break;
    }
    if (found.length > limit || snapshot.size < batch) break;
  }
  const records = found.slice(0, limit);
  const last = records[records.length - 1];
  return { records, ...(found.length > limit && last ? { nextCursor: encodeCursor(last) } : {}) };
}
