import { invalidArgument } from './errors.js';
import type { Key, PathElement, Value } from './types.js';
import { microsToTimestamp, timestampMicros, valueTypeOf } from './values.js';

/**
 * A place in a query's result order: the row's sort values (projected and distinct_on values
 * among them, which tell rows of one entity apart) and its key. Like a real cursor it names a
 * position in the index, not an entity, so it still works after that entity changes or goes away.
 */
export interface CursorPosition {
  values: Value[];
  key: Key;
}

type EncodedValue = [string, ...Array<string | number | boolean>];
type EncodedElement = [string, 'i' | 'n', string];

interface EncodedCursor {
  /** The query's order signature: a cursor only continues the query that made it. */
  s: string;
  /** null marks the position before the first result. */
  p: { v: EncodedValue[]; k: EncodedElement[] } | null;
}

export function encodeCursor(signature: string, position: CursorPosition | undefined): Buffer {
  const cursor: EncodedCursor = {
    s: signature,
    p: position ? { v: position.values.map(encodeValue), k: encodePath(position.key.path ?? []) } : null,
  };
  return Buffer.from(JSON.stringify(cursor), 'utf8');
}

/** Reads a cursor given back by a client; `undefined` means "from the very start". */
export function decodeCursor(bytes: Uint8Array, signature: string): CursorPosition | undefined {
  let cursor: EncodedCursor;
  try {
    cursor = JSON.parse(Buffer.from(bytes).toString('utf8')) as EncodedCursor;
  } catch {
    throw invalidArgument('Invalid query cursor.');
  }
  if (typeof cursor !== 'object' || cursor === null || typeof cursor.s !== 'string') {
    throw invalidArgument('Invalid query cursor.');
  }
  if (cursor.s !== signature) throw invalidArgument('The query cursor does not match the query.');
  if (!cursor.p) return undefined;
  return { values: cursor.p.v.map(decodeValue), key: { path: cursor.p.k.map(decodeElement) } };
}

function encodePath(path: PathElement[]): EncodedElement[] {
  return path.map((e) => (e.id !== undefined ? [e.kind ?? '', 'i', e.id] : [e.kind ?? '', 'n', e.name ?? '']));
}

function decodeElement([kind, type, id]: EncodedElement): PathElement {
  return type === 'i' ? { kind, id } : { kind, name: id };
}

function encodeValue(value: Value): EncodedValue {
  switch (valueTypeOf(value)) {
    case 'booleanValue':
      return ['b', value.booleanValue ?? false];
    case 'integerValue':
      return ['i', value.integerValue ?? '0'];
    case 'doubleValue':
      return ['d', String(value.doubleValue ?? 0)];
    case 'timestampValue':
      return ['t', timestampMicros(value.timestampValue).toString()];
    case 'keyValue':
      return ['k', JSON.stringify(encodePath(value.keyValue?.path ?? []))];
    case 'stringValue':
      return ['s', value.stringValue ?? ''];
    case 'blobValue':
      return ['x', Buffer.from(value.blobValue ?? []).toString('base64')];
    case 'geoPointValue':
      return ['g', value.geoPointValue?.latitude ?? 0, value.geoPointValue?.longitude ?? 0];
    default:
      return ['n'];
  }
}

function decodeValue([type, first, second]: EncodedValue): Value {
  switch (type) {
    case 'b':
      return { valueType: 'booleanValue', booleanValue: Boolean(first) };
    case 'i':
      return { valueType: 'integerValue', integerValue: String(first) };
    case 'd':
      return { valueType: 'doubleValue', doubleValue: Number(first) };
    case 't':
      return { valueType: 'timestampValue', timestampValue: microsToTimestamp(BigInt(String(first))) };
    case 'k':
      return { valueType: 'keyValue', keyValue: { path: (JSON.parse(String(first)) as EncodedElement[]).map(decodeElement) } };
    case 's':
      return { valueType: 'stringValue', stringValue: String(first) };
    case 'x':
      return { valueType: 'blobValue', blobValue: Buffer.from(String(first), 'base64') };
    case 'g':
      return { valueType: 'geoPointValue', geoPointValue: { latitude: Number(first), longitude: Number(second) } };
    default:
      return { valueType: 'nullValue', nullValue: 'NULL_VALUE' };
  }
}
