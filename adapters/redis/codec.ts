/**
 * Task records are stored as one Redis hash per task rather than one JSON string:
 * - scripts read and change single fields (status, leaseOwner, attempts...) with HGET/HSET/HINCRBY
 *   and never parse JSON, so Lua's cjson (14 significant digits, `{}` for empty arrays) can never
 *   round a number or reshape a field of a record it rewrites;
 * - one key per task keeps retention to a single PEXPIREAT.
 * Fields hold their TaskRecord names. Numbers are written with JavaScript's String(), which reads
 * back exactly; `lastError` is JSON; `history` is one JSON attempt per line (JSON.stringify never
 * emits a raw newline), so a script can append and trim it without parsing. Absent optional fields
 * are absent from the hash. Fields starting with "_" are the adapter's own bookkeeping:
 *   _ref    the reference key this record claimed (full name), to free or extend it later;
 *   _sweep  this record's member in the expiry index (see indexes.ts).
 */
import { TASK_RECORD_FIELDS, type AttemptRecord, type TaskErrorInfo, type TaskRecord } from '../../src/core/records.js';

type FieldKind = 'string' | 'number' | 'json' | 'history';

/** How each field is stored, from TASK_RECORD_FIELDS (exhaustive over the record): errors as JSON. */
const FIELD_KINDS: { readonly [K in keyof TaskRecord]-?: FieldKind } = Object.fromEntries(
  Object.entries(TASK_RECORD_FIELDS).map(([name, type]) => [name, type === 'error' ? 'json' : type]),
) as { readonly [K in keyof TaskRecord]-?: FieldKind };
const FIELDS = Object.entries(FIELD_KINDS) as Array<[keyof TaskRecord, FieldKind]>;
const KIND_OF: ReadonlyMap<string, FieldKind> = new Map(FIELDS);

/** Hidden bookkeeping fields a record hash may carry. */
export interface RecordBookkeeping {
  referenceKey?: string;
  sweepMember?: string;
}

export function encodeHistory(history: readonly AttemptRecord[]): string {
  return history.map((attempt) => JSON.stringify(attempt)).join('\n');
}

export function encodeError(error: TaskErrorInfo): string {
  return JSON.stringify(error);
}

/** One field's stored text. */
export function encodeField(name: keyof TaskRecord, value: unknown): string {
  switch (FIELD_KINDS[name]) {
    case 'json':
      return JSON.stringify(value);
    case 'history':
      return encodeHistory(value as AttemptRecord[]);
    default:
      return String(value);
  }
}

/** Flat field/value list for HSET; absent optional fields and an empty history are left out. */
export function recordToFields(record: TaskRecord): string[] {
  const fields: string[] = [];
  for (const [name, kind] of FIELDS) {
    const value = record[name];
    if (value === undefined || (kind === 'history' && (value as AttemptRecord[]).length === 0)) continue;
    fields.push(name, encodeField(name, value));
  }
  return fields;
}

function decodeField(kind: FieldKind, text: string): unknown {
  switch (kind) {
    case 'string':
      return text;
    case 'number':
      return Number(text);
    case 'json':
      return JSON.parse(text);
    case 'history':
      return text === '' ? [] : text.split('\n').map((line) => JSON.parse(line) as AttemptRecord);
  }
}

/** A hash as replies give it: a flat [field, value, ...] list (scripts) or an object (HGETALL). */
export type HashReply = readonly string[] | Readonly<Record<string, string>>;

function hashEntries(hash: HashReply): Array<[string, string]> {
  if (!Array.isArray(hash)) return Object.entries(hash as Readonly<Record<string, string>>);
  const flat = hash as readonly string[];
  const entries: Array<[string, string]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) entries.push([flat[i]!, flat[i + 1]!]);
  return entries;
}

/** Decode a record hash into the record and its bookkeeping; undefined when there is none. */
export function fieldsToRecord(hash: HashReply): { record: TaskRecord; bookkeeping: RecordBookkeeping } | undefined {
  const entries = hashEntries(hash);
  if (entries.length === 0) return undefined;
  const record: Record<string, unknown> = { history: [] };
  const bookkeeping: RecordBookkeeping = {};
  for (const [name, value] of entries) {
    const kind = KIND_OF.get(name);
    if (kind) record[name] = decodeField(kind, value);
    else if (name === '_ref') bookkeeping.referenceKey = value;
    else if (name === '_sweep') bookkeeping.sweepMember = value;
  }
  if (record.id === undefined || record.status === undefined) return undefined;
  return { record: record as unknown as TaskRecord, bookkeeping };
}
