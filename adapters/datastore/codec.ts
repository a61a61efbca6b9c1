/**
 * A task record as a Datastore entity: one property per TaskRecord field, under the field's own
 * name, so records read naturally in the Cloud console. Strings and numbers are stored as they
 * are (the client writes whole numbers as integers, others as doubles, and reads both back
 * exactly); `lastError` and `history` are JSON strings. Absent optional fields are absent
 * properties. None of these is indexed but `expiresAt` (the sweep's query); listing uses the
 * separate listing keys of listing.ts.
 */
import { CloudDeferError } from '../../src/core/errors.js';
import { TASK_RECORD_FIELDS, type TaskRecord } from '../../src/core/records.js';
import type { EntityData } from './context.js';
import { listingKeys } from './listing-keys.js';

type FieldKind = 'string' | 'number' | 'json';

/** Derived from TASK_RECORD_FIELDS (exhaustive over the record), errors and history as JSON. */
const FIELD_KINDS: { readonly [K in keyof TaskRecord]-?: FieldKind } = Object.fromEntries(
  Object.entries(TASK_RECORD_FIELDS).map(([name, type]) => [name, type === 'error' || type === 'history' ? 'json' : type]),
) as { readonly [K in keyof TaskRecord]-?: FieldKind };
const FIELDS = Object.entries(FIELD_KINDS) as Array<[keyof TaskRecord, FieldKind]>;

/** Record fields that are not indexed: all but expiresAt. */
export const UNINDEXED_FIELDS: readonly string[] = FIELDS.map(([name]) => name).filter((name) => name !== 'expiresAt');

/** Datastore's entity limit is 1,048,572 bytes; leave room for the key and the listing keys. */
const MAX_RECORD_BYTES = 1_000_000;

export function recordToEntity(record: TaskRecord): EntityData {
  const data: EntityData = {};
  let bytes = 0;
  for (const [name, kind] of FIELDS) {
    const value = record[name];
    if (value === undefined) continue;
    const stored = kind === 'json' ? JSON.stringify(value) : value;
    if (typeof stored === 'string') bytes += Buffer.byteLength(stored);
    data[name] = stored;
  }
  if (bytes > MAX_RECORD_BYTES) {
    throw new CloudDeferError(
      'INVALID_OPTION',
      `Task ${record.id}'s record is ${bytes} bytes, more than a Datastore entity holds; lower inlineLimitBytes (at most about 900 KiB with Datastore stores) so that large arguments go to the PayloadStore.`,
    );
  }
  return { ...data, ...listingKeys(record) };
}

export function entityToRecord(entity: EntityData): TaskRecord {
  const record: Record<string, unknown> = {};
  for (const [name, kind] of FIELDS) {
    const value = entity[name];
    if (value === undefined || value === null) continue;
    record[name] = kind === 'json' ? JSON.parse(String(value)) : value;
  }
  record.history ??= [];
  return record as unknown as TaskRecord;
}
