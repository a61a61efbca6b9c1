/**
 * Task arguments as the console shows them: decoded with the app's codec, then turned into plain
 * JSON in which every non-JSON value is spelled out ({"$type": "BigInt", "value": "12"}), so what
 * is shown is exactly what the task receives. Pretty-printed and cut at a size cap.
 */
import type { Codec } from '../core/codec.js';
import type { TaskRecord } from '../core/records.js';

export type DisplayValue = null | boolean | number | string | DisplayValue[] | { [key: string]: DisplayValue };

export const ARGS_DISPLAY_LIMIT_BYTES = 16 * 1024;
const MAX_DEPTH = 64;
const BYTES_PREVIEW = 32;

export type ArgsView =
  | {
      available: true;
      /** Pretty JSON, cut at `limitBytes` when `truncated`. */
      json: string;
      truncated: boolean;
      /** Size of the whole pretty JSON. */
      bytes: number;
      limitBytes: number;
      /** False when the codec could not decode them (e.g. a custom type unknown here): raw codec JSON is shown. */
      decoded: boolean;
      note?: string;
    }
  | { available: false; reason: string };

function bytesView(kind: string, bytes: Uint8Array): DisplayValue {
  const preview = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, BYTES_PREVIEW)).toString('hex');
  return { $type: kind, bytes: bytes.byteLength, hex: bytes.byteLength > BYTES_PREVIEW ? `${preview}…` : preview };
}

function className(value: object): string {
  const proto: unknown = Object.getPrototypeOf(value);
  const ctor = proto !== null && typeof proto === 'object' ? (proto as { constructor?: unknown }).constructor : undefined;
  return typeof ctor === 'function' && ctor.name ? ctor.name : 'Object';
}

/** A JSON-safe stand-in for any value (cycles and very deep nesting are cut, never thrown). */
export function toDisplay(value: unknown, depth = 0, ancestors: object[] = []): DisplayValue {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0) ? value : { $type: 'number', value: Object.is(value, -0) ? '-0' : String(value) };
    case 'bigint':
      return { $type: 'BigInt', value: value.toString() };
    case 'undefined':
      return { $type: 'undefined' };
    case 'symbol':
      return { $type: 'Symbol', value: value.description ?? '' };
    case 'function':
      return { $type: 'Function', name: value.name };
  }
  if (value === null) return null;
  const object = value as object;
  if (ancestors.includes(object)) return { $type: 'Circular' };
  if (depth >= MAX_DEPTH) return { $type: 'TooDeep' };
  ancestors.push(object);
  try {
    const inner = (v: unknown): DisplayValue => toDisplay(v, depth + 1, ancestors);
    if (Array.isArray(object)) return Array.from(object, inner);
    if (object instanceof Date) return { $type: 'Date', value: Number.isNaN(object.getTime()) ? 'Invalid Date' : object.toISOString() };
    if (object instanceof Map) return { $type: 'Map', size: object.size, entries: [...object].map(([k, v]) => [inner(k), inner(v)]) };
    if (object instanceof Set) return { $type: 'Set', size: object.size, values: [...object].map(inner) };
    if (Buffer.isBuffer(object)) return bytesView('Buffer', object);
    if (object instanceof Uint8Array) return bytesView('Uint8Array', object);
    const fields: { [key: string]: DisplayValue } = {};
    for (const key of Object.keys(object)) fields[key] = inner((object as Record<string, unknown>)[key]);
    const proto: unknown = Object.getPrototypeOf(object);
    // A plain object is shown as is, unless its own "$type" key would read as one of our markers.
    if ((proto === Object.prototype || proto === null) && !Object.hasOwn(object, '$type')) return fields;
    return { $type: className(object), value: fields };
  } finally {
    ancestors.pop();
  }
}

/** Cuts UTF-8 text at a byte budget without splitting a character. */
function cutUtf8(text: string, limitBytes: number): string {
  const cut = Buffer.from(text, 'utf8').subarray(0, limitBytes).toString('utf8');
  return cut.endsWith('\uFFFD') && !text.startsWith(cut) ? cut.replace(/\uFFFD+$/, '') : cut;
}

function pretty(value: DisplayValue, limitBytes: number, decoded: boolean, note?: string): ArgsView {
  const json = JSON.stringify(value, null, 2);
  const bytes = Buffer.byteLength(json, 'utf8');
  const truncated = bytes > limitBytes;
  return { available: true, json: truncated ? cutUtf8(json, limitBytes) : json, truncated, bytes, limitBytes, decoded, ...(note ? { note } : {}) };
}

export function argsView(record: TaskRecord, codec: Codec, limitBytes = ARGS_DISPLAY_LIMIT_BYTES): ArgsView {
  if (record.argsJson === undefined) {
    return {
      available: false,
      reason: record.payloadRef
        ? `The arguments (${record.payloadSize} bytes) are kept in the payload store, not in the record; the console does not load them.`
        : 'The record holds no arguments.',
    };
  }
  try {
    return pretty(toDisplay(codec.decodeArgs(Buffer.from(record.argsJson, 'utf8'))), limitBytes, true);
  } catch (err) {
    let raw: DisplayValue;
    try {
      raw = JSON.parse(record.argsJson) as DisplayValue;
    } catch {
      raw = record.argsJson;
    }
    return pretty(raw, limitBytes, false, `Shown as stored (codec JSON): ${err instanceof Error ? err.message : String(err)}`);
  }
}
