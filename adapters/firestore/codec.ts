/**
 * Task records as Firestore documents: every TaskRecord field is a top-level field of the same
 * name and its natural type (times stay epoch-ms numbers, so they round-trip exactly; lastError
 * is a map, history an array of maps); a field that is undefined is absent. One field is added:
 * `expireAt`, the record's expiresAt as a timestamp, for the TTL policy.
 */
import type { DocumentData, DocumentSnapshot, UpdateData } from '@google-cloud/firestore';
import type { TaskRecord } from '../../src/core/records.js';
import type { AdapterContext } from './context.js';

export const EXPIRE_AT = 'expireAt';

/** JSON-like values without undefined anywhere (Firestore refuses undefined inside maps and arrays). */
export function withoutUndefined<T>(value: T): T {
  if (Array.isArray(value)) return value.map((item: unknown) => withoutUndefined(item)) as T;
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) if (item !== undefined) out[key] = withoutUndefined(item);
  return out as T;
}

export function recordToDocument(ctx: AdapterContext, record: TaskRecord): DocumentData {
  return { ...withoutUndefined(record), [EXPIRE_AT]: ctx.expireAt(record.expiresAt) };
}

export function documentToRecord(data: DocumentData): TaskRecord {
  const { [EXPIRE_AT]: _expireAt, ...fields } = data;
  return fields as TaskRecord;
}

/** The record in a snapshot, or undefined when it is missing or past its retention. */
export function liveRecord(ctx: AdapterContext, snapshot: DocumentSnapshot): TaskRecord | undefined {
  return ctx.isLive(snapshot) ? documentToRecord(snapshot.data()!) : undefined;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The fields that turn `before` into `after`: changed ones set, vanished ones deleted. */
export function recordUpdate(ctx: AdapterContext, before: TaskRecord, after: TaskRecord): UpdateData<DocumentData> {
  const update: Record<string, unknown> = {};
  const next = withoutUndefined(after) as unknown as Record<string, unknown>;
  const previous = before as unknown as Record<string, unknown>;
  for (const [field, value] of Object.entries(next)) if (!same(previous[field], value)) update[field] = value;
  for (const field of Object.keys(previous)) {
    if (previous[field] !== undefined && next[field] === undefined) update[field] = ctx.library.FieldValue.delete();
  }
  if (before.expiresAt !== after.expiresAt) update[EXPIRE_AT] = ctx.expireAt(after.expiresAt);
  return update;
}
