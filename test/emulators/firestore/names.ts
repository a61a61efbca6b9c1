// Resource names: `projects/P/databases/D` (a database), `<database>/documents` (its root) and
// `<root>/c1/d1/c2/d2...` (documents), with Firestore's rules for ids and name length.
import { invalidArgument } from './errors.js';

const MAX_ID_BYTES = 1500;
const MAX_DOCUMENT_NAME_BYTES = 6 * 1024;
const DATABASE_PATTERN = /^projects\/[^/]+\/databases\/[^/]+$/;

export interface DocumentName {
  /** The full resource name. */
  readonly name: string;
  /** `projects/P/databases/D`. */
  readonly database: string;
  /** Alternating collection ids and document ids below the root: always an even count. */
  readonly segments: readonly string[];
}

export function rootOf(database: string): string {
  return `${database}/documents`;
}

export function checkDatabase(database: string | undefined): string {
  if (!database || !DATABASE_PATTERN.test(database)) {
    throw invalidArgument(`Invalid database name: "${database ?? ''}".`);
  }
  return database;
}

/** Splits `projects/P/databases/D/documents/...` into its database and the path segments below the root. */
function splitResourceName(name: string): { database: string; segments: string[] } | undefined {
  const parts = name.split('/');
  const shaped = parts.length >= 5 && parts[0] === 'projects' && parts[2] === 'databases' && parts[4] === 'documents';
  if (!shaped) return undefined;
  if (!parts[1] || !parts[3]) return undefined;
  return { database: parts.slice(0, 4).join('/'), segments: parts.slice(5) };
}

/** Why an id cannot be used, or undefined when it can. */
function idProblem(id: string): string | undefined {
  if (id === '') return 'is empty';
  if (id === '.' || id === '..') return `cannot be "${id}"`;
  // __id<number>__ is the one reserved form Firestore accepts (ids of entities with numeric keys).
  if (/^__.*__$/s.test(id) && !/^__id-?\d+__$/.test(id)) return 'matches the reserved pattern __.*__';
  if (Buffer.byteLength(id, 'utf8') > MAX_ID_BYTES) return `is longer than ${MAX_ID_BYTES} bytes`;
  return undefined;
}

/** A document name in `database` with valid ids; anything else is INVALID_ARGUMENT. */
export function parseDocumentName(name: string | undefined, database?: string): DocumentName {
  const split = name ? splitResourceName(name) : undefined;
  if (!name || !split || split.segments.length === 0 || split.segments.length % 2 !== 0) {
    throw invalidArgument(`Invalid document name: "${name ?? ''}".`);
  }
  if (database !== undefined && split.database !== database) {
    throw invalidArgument(`Document "${name}" is not in database "${database}".`);
  }
  for (const id of split.segments) {
    const problem = idProblem(id);
    if (problem) throw invalidArgument(`Document name "${name}" is invalid: an id ${problem}.`);
  }
  if (Buffer.byteLength(split.segments.join('/'), 'utf8') > MAX_DOCUMENT_NAME_BYTES) {
    throw invalidArgument(`Document name "${name.slice(0, 100)}..." is longer than ${MAX_DOCUMENT_NAME_BYTES} bytes.`);
  }
  return { name, database: split.database, segments: split.segments };
}

/** A query or listing parent: the database root or a document. Returns its segments below the root. */
export function parseParent(parent: string | undefined): { database: string; segments: readonly string[] } {
  const split = parent ? splitResourceName(parent) : undefined;
  if (!split || split.segments.length % 2 !== 0 || split.segments.some((id) => idProblem(id) !== undefined)) {
    throw invalidArgument(`Invalid parent: "${parent ?? ''}".`);
  }
  return split;
}

export function isDocumentName(name: string): boolean {
  const split = splitResourceName(name);
  return split !== undefined && split.segments.length > 0 && split.segments.length % 2 === 0;
}

/** Segments of a document name below the root, without validation (names in the store are valid). */
export function segmentsOf(name: string): string[] {
  return name.split('/').slice(5);
}

/** Compares UTF-16 code units as UTF-8 bytes would: surrogates (astral code points) above every BMP character. */
function compareCodeUnits(a: number, b: number): number {
  const aSurrogate = a >= 0xd800 && a <= 0xdfff;
  const bSurrogate = b >= 0xd800 && b <= 0xdfff;
  if (aSurrogate !== bSurrogate) return aSurrogate ? 1 : -1;
  return a < b ? -1 : 1;
}

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

/** Compares strings in UTF-8 byte order (= code point order), as Firestore sorts them. */
export function compareUtf8(left: string, right: string): number {
  if (left === right) return 0;
  const length = Math.min(left.length, right.length);
  for (let i = 0; i < length; i++) {
    const a = left.charCodeAt(i);
    const b = right.charCodeAt(i);
    if (a !== b) return compareCodeUnits(a, b);
  }
  return sign(left.length - right.length);
}

const SLASH = 0x2f;

/**
 * Orders document names segment by segment (a parent before its subcollections' documents). In
 * one pass: the end of a segment sorts before any character, so `/` counts as the lowest one.
 */
export function compareDocumentNames(left: string, right: string): number {
  if (left === right) return 0;
  const length = Math.min(left.length, right.length);
  for (let i = 0; i < length; i++) {
    const a = left.charCodeAt(i);
    const b = right.charCodeAt(i);
    if (a === b) continue;
    if (a === SLASH) return -1;
    if (b === SLASH) return 1;
    return compareCodeUnits(a, b);
  }
  return sign(left.length - right.length);
}
