/**
 * listTasks: newest first with the shared cursor format, as range scans of one listing key
 * (listing-keys.ts), descending, in batches. Each record read is checked against the whole query
 * and its retention; a scan that reads SCAN_BUDGET entities without filling the page returns
 * what it has with a cursor at the last entity read, so a rare combination of filters cannot
 * turn one call into a walk over every record (such a page may be short; its cursor goes on).
 */
import { decodeCursor, encodeCursor, type CursorPosition, pageLimit } from '../../src/core/cursor.js';
import type { TaskRecord } from '../../src/core/records.js';
import type { TaskPage, TaskQuery } from '../../src/core/stores.js';
import { where, type AdapterContext } from './context.js';
import { prefixEnd, rangeFor, sortKey } from './listing-keys.js';

const MAX_LIMIT = 1000;
const SCAN_BUDGET = 5000;

function matches(record: TaskRecord, query: TaskQuery): boolean {
  return (
    (query.status === undefined || record.status === query.status) &&
    (query.queue === undefined || record.queue === query.queue) &&
    (query.taskName === undefined || record.taskName === query.taskName) &&
    (query.reference === undefined || record.reference === query.reference) &&
    (query.iterationId === undefined || record.iterationId === query.iterationId)
  );
}

export async function listTasks(ctx: AdapterContext, query: TaskQuery): Promise<TaskPage> {
  const limit = pageLimit(query.limit);
  const after = query.cursor !== undefined ? decodeCursor(query.cursor) : undefined;
  const { property, prefix } = rangeFor(query);
  const now = ctx.now();
  const records: TaskRecord[] = [];
  // Exclusive upper bound of the next batch: below the cursor, or the end of the prefix range.
  let upper = after ? prefix + sortKey(after) : prefixEnd(prefix);
  let scanned = 0;
  let batch = limit + 1;
  let lastRead: CursorPosition | undefined;
  for (;;) {
    const q = ctx.query(ctx.kinds.task).order(property, { descending: true }).limit(batch);
    if (prefix) where(q, property, '>=', prefix);
    if (upper !== undefined) where(q, property, '<', upper);
    const entities = await ctx.runQuery(q);
    for (const entity of entities) {
      scanned += 1;
      const record = JSON.parse(String(entity.value)) as TaskRecord;
      lastRead = record;
      upper = String(entity[property]);
      if (record.expiresAt <= now || !matches(record, query)) continue;
      if (records.length === limit) return { records, nextCursor: encodeCursor(records[limit - 1]!) };
      records.push(record);
    }
    if (entities.length < batch) return { records };
    // Everything up to lastRead has been looked at, so the next page may start after it.
    if (scanned >= SCAN_BUDGET) return { records, nextCursor: encodeCursor(lastRead!) };
    // Later batches are larger: the filters the range cannot express are skipping records.
    batch = Math.min(MAX_LIMIT, batch * 2);
  }
}
