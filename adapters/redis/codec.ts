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
import type { AttemptRecord, TaskErrorInfo, TaskRecord } from '../../src/core/records.js';

const STRING_FIELDS = ['id', 'taskName', 'queue', 'cloudTaskName', 'status', 'reference', 'payloadRef', 'iterationId', 'leaseOwner'] as const;
const NUMBER_FIELDS = [
  'uniqueUntil',
  'createdAt',
  'updatedAt',
  'eta',
  'startedAt',
  'finishedAt',
  'attempts',
  'executionCount',
  'maxAttempts',
  'durationMs',
  'payloadSize',
  'shardIndex',
  'leaseUntil',
  'version',
  'expiresAt',
] as const;

type StringField = (typeof STRING_FIELDS)[number];
type NumberField = (typeof NUMBER_FIELDS)[number];

const STRING_SET: ReadonlySet<string> = new Set(STRING_FIELDS);
const NUMBER_SET: ReadonlySet<string> = new Set(NUMBER_FIELDS);

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

/** One field's stored text, for the fields a transition patch may set. */
export function encodeField(name: keyof TaskRecord, value: unknown): string {
  if (name === 'lastError') return encodeError(value as TaskErrorInfo);
  if (name === 'history') return encodeHistory(value as AttemptRecord[]);
  return String(value);
}

/** Flat field/value list for HSET. */
export function recordToFields(record: TaskRecord): string[] {
  const fields: string[] = [];
  for (const name of STRING_FIELDS) {
    const value = record[name];
    if (value !== undefined) fields.push(name, value);
  }
  for (const name of NUMBER_FIELDS) {
    const value = record[name];
    if (value !== undefined) fields.push(name, String(value));
  }
  if (record.lastError !== undefined) fields.push('lastError', encodeError(record.lastError));
  if (record.history.length > 0) fields.push('history', encodeHistory(record.history));
  return fields;
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
  const record: Partial<Record<StringField, string>> & Partial<Record<NumberField, number>> & {
    lastError?: TaskErrorInfo;
    history: AttemptRecord[];
  } = { history: [] };
  const bookkeeping: RecordBookkeeping = {};
  for (const [name, value] of entries) {
    if (STRING_SET.has(name)) record[name as StringField] = value;
    else if (NUMBER_SET.has(name)) record[name as NumberField] = Number(value);
    else if (name === 'lastError') record.lastError = JSON.parse(value) as TaskErrorInfo;
    else if (name === 'history') record.history = value === '' ? [] : value.split('\n').map((line) => JSON.parse(line) as AttemptRecord);
    else if (name === '_ref') bookkeeping.referenceKey = value;
    else if (name === '_sweep') bookkeeping.sweepMember = value;
  }
  if (record.id === undefined || record.status === undefined) return undefined;
  return { record: record as TaskRecord, bookkeeping };
}
