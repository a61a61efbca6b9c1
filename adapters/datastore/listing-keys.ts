/**
 * Listing keys: indexed string properties that let each listing be ONE range scan of ONE built-in
 * single-property index, newest first, with no composite index (no index.yaml to deploy).
 *
 *   lAll          "<createdAt, 15 digits>:<id>"                    (the sort key)
 *   lStatus       "<status>|<sort key>"
 *   lQueue        "<queue>|<sort key>"
 *   lTask         "<taskName>|<sort key>"
 *   lRef          "<sha256(reference)>|<sort key>"               (only with a reference)
 *   lIteration    "<iterationId>|<sort key>"                      (only in an iteration)
 *   lQueueStatus  "<queue>|<status>|<sort key>"                   (the console's and purge's filter)
 *
 * A filter value is written as is when it is short printable ASCII without "|", else as
 * "#<sha256>" so no key passes Datastore's 1,500-byte limit for indexed strings. A prefix range
 * may therefore catch a record of another value ("a|b" under "a"); listing re-checks every
 * record against the whole query, so that costs a skipped entity, never a wrong answer.
 */
import { createHash } from 'node:crypto';
import { CloudDeferError } from '../../src/core/errors.js';
import type { CursorPosition } from '../../src/core/cursor.js';
import type { TaskRecord } from '../../src/core/records.js';
import type { TaskQuery } from '../../src/core/stores.js';

export const LISTING_PROPERTIES = ['lAll', 'lStatus', 'lQueue', 'lTask', 'lRef', 'lIteration', 'lQueueStatus'] as const;
export type ListingProperty = (typeof LISTING_PROPERTIES)[number];

const CREATED_AT_DIGITS = 15;
const PLAIN = /^[\x20-\x7b\x7d\x7e]{1,200}$/; // printable ASCII but "|"

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** Fixed-width createdAt then the id: sorts like newestFirst (reversed) for ASCII ids. */
export function sortKey(position: CursorPosition): string {
  const { createdAt, id } = position;
  if (!Number.isSafeInteger(createdAt) || createdAt < 0 || createdAt >= 10 ** CREATED_AT_DIGITS) {
    throw new CloudDeferError('INVALID_OPTION', `createdAt must be a whole number of epoch milliseconds (got ${createdAt}).`);
  }
  return `${String(createdAt).padStart(CREATED_AT_DIGITS, '0')}:${id}`;
}

function part(value: string): string {
  return PLAIN.test(value) ? value : `#${sha256(value)}`;
}

export function listingKeys(record: TaskRecord): Partial<Record<ListingProperty, string>> {
  const key = sortKey(record);
  return {
    lAll: key,
    lStatus: `${record.status}|${key}`,
    lQueue: `${part(record.queue)}|${key}`,
    lTask: `${part(record.taskName)}|${key}`,
    lQueueStatus: `${part(record.queue)}|${record.status}|${key}`,
    ...(record.reference !== undefined ? { lRef: `${sha256(record.reference)}|${key}` } : {}),
    ...(record.iterationId !== undefined ? { lIteration: `${part(record.iterationId)}|${key}` } : {}),
  };
}

/** The range of one listing key that holds every record a query can match. */
export interface ListingRange {
  property: ListingProperty;
  /** Every value of the range starts with this ("" for lAll). */
  prefix: string;
}

/** The narrowest listing key for a query; the other filters are checked on the records read. */
export function rangeFor(query: TaskQuery): ListingRange {
  if (query.reference !== undefined) return { property: 'lRef', prefix: `${sha256(query.reference)}|` };
  if (query.iterationId !== undefined) return { property: 'lIteration', prefix: `${part(query.iterationId)}|` };
  if (query.queue !== undefined && query.status !== undefined) {
    return { property: 'lQueueStatus', prefix: `${part(query.queue)}|${query.status}|` };
  }
  if (query.taskName !== undefined) return { property: 'lTask', prefix: `${part(query.taskName)}|` };
  if (query.queue !== undefined) return { property: 'lQueue', prefix: `${part(query.queue)}|` };
  if (query.status !== undefined) return { property: 'lStatus', prefix: `${query.status}|` };
  return { property: 'lAll', prefix: '' };
}

/** The exclusive upper end of a prefix range: the prefix with its last "|" bumped to "}". */
export function prefixEnd(prefix: string): string | undefined {
  return prefix === '' ? undefined : `${prefix.slice(0, -1)}}`;
}
