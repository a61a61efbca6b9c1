// Firestore values: conversion from and to the wire, and the total order Firestore sorts them in:
// null < booleans < numbers (NaN first; integers and doubles compared by value) < timestamps <
// strings (UTF-8 order) < bytes < references < geo points < arrays < vectors < maps.
import { invalidArgument } from './errors.js';
import { compareDocumentNames, compareUtf8, isDocumentName } from './names.js';
import type { WireValue } from './wire.js';

export type Fields = ReadonlyMap<string, Value>;

export type Value =
  | { readonly kind: 'null' }
  | { readonly kind: 'boolean'; readonly value: boolean }
  | { readonly kind: 'integer'; readonly value: bigint }
  | { readonly kind: 'double'; readonly value: number }
  | { readonly kind: 'timestamp'; readonly seconds: number; readonly nanos: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'bytes'; readonly value: Buffer }
  | { readonly kind: 'reference'; readonly value: string }
  | { readonly kind: 'geoPoint'; readonly latitude: number; readonly longitude: number }
  | { readonly kind: 'array'; readonly values: readonly Value[] }
  | { readonly kind: 'map'; readonly fields: Fields };

export const NULL_VALUE: Value = { kind: 'null' };
export const INT64_MAX = 2n ** 63n - 1n;
export const INT64_MIN = -(2n ** 63n);

/** Maps and arrays may nest this deep (the document's top level is depth 0). */
const MAX_DEPTH = 20;
// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range Firestore timestamps allow.
const MIN_SECONDS = -62_135_596_800;
const MAX_SECONDS = 253_402_300_799;

export function fieldsFromWire(fields: Record<string, WireValue> | undefined, depth = 0): Map<string, Value> {
  const result = new Map<string, Value>();
  for (const [key, value] of Object.entries(fields ?? {})) result.set(key, valueFromWire(value, depth + 1));
  return result;
}

export function valueFromWire(value: WireValue, depth = 1): Value {
  if (depth > MAX_DEPTH + 1) throw invalidArgument(`A value is nested deeper than ${MAX_DEPTH} levels.`);
  switch (value.valueType) {
    case 'nullValue':
      return NULL_VALUE;
    case 'booleanValue':
      return { kind: 'boolean', value: value.booleanValue === true };
    case 'integerValue':
      return { kind: 'integer', value: BigInt(value.integerValue ?? 0) };
    case 'doubleValue':
      return { kind: 'double', value: Number(value.doubleValue ?? 0) };
    case 'timestampValue': {
      const seconds = Number(value.timestampValue?.seconds ?? 0);
      const nanos = value.timestampValue?.nanos ?? 0;
      if (seconds < MIN_SECONDS || seconds > MAX_SECONDS || nanos < 0 || nanos > 999_999_999) {
        throw invalidArgument('A timestamp value is out of range.');
      }
      // Firestore keeps microseconds.
      return { kind: 'timestamp', seconds, nanos: nanos - (nanos % 1000) };
    }
    case 'stringValue':
      return { kind: 'string', value: value.stringValue ?? '' };
    case 'bytesValue':
      return { kind: 'bytes', value: Buffer.from(value.bytesValue ?? Buffer.alloc(0)) };
    case 'referenceValue': {
      const reference = value.referenceValue ?? '';
      if (!isDocumentName(reference)) throw invalidArgument(`Invalid reference value: "${reference}".`);
      return { kind: 'reference', value: reference };
    }
    case 'geoPointValue': {
      const latitude = value.geoPointValue?.latitude ?? 0;
      const longitude = value.geoPointValue?.longitude ?? 0;
      if (!(Math.abs(latitude) <= 90) || !(Math.abs(longitude) <= 180)) {
        throw invalidArgument('A geo point is out of range.');
      }
      return { kind: 'geoPoint', latitude, longitude };
    }
    case 'arrayValue': {
      const values = value.arrayValue?.values ?? [];
      if (values.some((element) => element.valueType === 'arrayValue')) {
        throw invalidArgument('An array cannot directly contain another array.');
      }
      return { kind: 'array', values: values.map((element) => valueFromWire(element, depth + 1)) };
    }
    case 'mapValue':
      return { kind: 'map', fields: fieldsFromWire(value.mapValue?.fields, depth) };
    default:
      throw invalidArgument(`Unsupported value type: ${value.valueType ?? 'none'}.`);
  }
}

export function fieldsToWire(fields: Fields): Record<string, WireValue> {
  const result: Record<string, WireValue> = {};
  for (const [key, value] of fields) result[key] = valueToWire(value);
  return result;
}

export function valueToWire(value: Value): WireValue {
  switch (value.kind) {
    case 'null':
      return { nullValue: 'NULL_VALUE' };
    case 'boolean':
      return { booleanValue: value.value };
    case 'integer':
      return { integerValue: value.value.toString() };
    case 'double':
      return { doubleValue: value.value };
    case 'timestamp':
      return { timestampValue: { seconds: String(value.seconds), nanos: value.nanos } };
    case 'string':
      return { stringValue: value.value };
    case 'bytes':
      return { bytesValue: value.value };
    case 'reference':
      return { referenceValue: value.value };
    case 'geoPoint':
      return { geoPointValue: { latitude: value.latitude, longitude: value.longitude } };
    case 'array':
      return { arrayValue: { values: value.values.map(valueToWire) } };
    case 'map':
      return { mapValue: { fields: fieldsToWire(value.fields) } };
  }
}

/** A map of the form Firestore uses for vectors: `{ __type__: '__vector__', value: [numbers] }`. */
function isVector(value: Value): value is { kind: 'map'; fields: Fields } {
  if (value.kind !== 'map') return false;
  const type = value.fields.get('__type__');
  return type?.kind === 'string' && type.value === '__vector__';
}

/** Position of a value's type in the cross-type order; integers and doubles share one. */
export function typeOrder(value: Value): number {
  switch (value.kind) {
    case 'null':
      return 0;
    case 'boolean':
      return 1;
    case 'integer':
    case 'double':
      return 2;
    case 'timestamp':
      return 3;
    case 'string':
      return 4;
    case 'bytes':
      return 5;
    case 'reference':
      return 6;
    case 'geoPoint':
      return 7;
    case 'array':
      return 8;
    case 'map':
      return isVector(value) ? 9 : 10;
  }
}

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

function compareDoubles(a: number, b: number): number {
  // NaN sorts before every other number and equals itself; -0 equals 0.
  if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : -1;
  if (Number.isNaN(b)) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Exact comparison of an int64 with a double (no rounding of either). */
function compareIntegerToDouble(integer: bigint, double: number): number {
  if (Number.isNaN(double)) return 1;
  if (double === Infinity) return -1;
  if (double === -Infinity) return 1;
  const floor = Math.floor(double);
  const floorAsBigint = BigInt(floor);
  if (integer !== floorAsBigint) return integer < floorAsBigint ? -1 : 1;
  return double > floor ? -1 : 0;
}

export function compareNumbers(a: Value, b: Value): number {
  if (a.kind === 'integer' && b.kind === 'integer') return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
  if (a.kind === 'double' && b.kind === 'double') return compareDoubles(a.value, b.value);
  if (a.kind === 'integer' && b.kind === 'double') return compareIntegerToDouble(a.value, b.value);
  if (a.kind === 'double' && b.kind === 'integer') return -compareIntegerToDouble(b.value, a.value);
  throw new Error('compareNumbers needs two numbers');
}

function sortedKeys(fields: Fields): string[] {
  return [...fields.keys()].sort(compareUtf8);
}

function compareMaps(a: Fields, b: Fields): number {
  const left = sortedKeys(a);
  const right = sortedKeys(b);
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const byKey = compareUtf8(left[i]!, right[i]!);
    if (byKey !== 0) return byKey;
    const byValue = compareValues(a.get(left[i]!)!, b.get(right[i]!)!);
    if (byValue !== 0) return byValue;
  }
  return sign(left.length - right.length);
}

function compareArrays(a: readonly Value[], b: readonly Value[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const order = compareValues(a[i]!, b[i]!);
    if (order !== 0) return order;
  }
  return sign(a.length - b.length);
}

function vectorElements(value: { fields: Fields }): readonly Value[] {
  const elements = value.fields.get('value');
  return elements?.kind === 'array' ? elements.values : [];
}

/** Firestore's total order over all values: negative, zero or positive. */
export function compareValues(a: Value, b: Value): number {
  const byType = typeOrder(a) - typeOrder(b);
  if (byType !== 0) return sign(byType);
  switch (a.kind) {
    case 'null':
      return 0;
    case 'boolean':
      return sign(Number(a.value) - Number((b as typeof a).value));
    case 'integer':
    case 'double':
      return compareNumbers(a, b);
    case 'timestamp': {
      const other = b as typeof a;
      return sign(a.seconds - other.seconds) || sign(a.nanos - other.nanos);
    }
    case 'string':
      return compareUtf8(a.value, (b as typeof a).value);
    case 'bytes':
      return sign(Buffer.compare(a.value, (b as typeof a).value));
    case 'reference':
      return compareDocumentNames(a.value, (b as typeof a).value);
    case 'geoPoint': {
      const other = b as typeof a;
      return compareDoubles(a.latitude, other.latitude) || compareDoubles(a.longitude, other.longitude);
    }
    case 'array':
      return compareArrays(a.values, (b as typeof a).values);
    case 'map': {
      const other = b as typeof a;
      if (isVector(a)) {
        // Vectors sort by length first, then element by element.
        const left = vectorElements(a);
        const right = vectorElements(other);
        return sign(left.length - right.length) || compareArrays(left, right);
      }
      return compareMaps(a.fields, other.fields);
    }
  }
}

/** Equality as queries and array transforms see it: 3 equals 3.0, NaN equals NaN, -0 equals 0. */
export function valuesEqual(a: Value, b: Value): boolean {
  return compareValues(a, b) === 0;
}

export function fieldsEqual(a: Fields, b: Fields): boolean {
  return compareMaps(a, b) === 0 && [...a].every(([key, value]) => sameRepresentation(value, b.get(key)!));
}

/** Stricter than equality: 3 and 3.0 differ, so rewriting one as the other counts as a change. */
function sameRepresentation(a: Value, b: Value): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'double' && b.kind === 'double') return Object.is(a.value, b.value);
  if (a.kind === 'array' && b.kind === 'array') {
    return a.values.every((value, i) => sameRepresentation(value, b.values[i]!));
  }
  if (a.kind === 'map' && b.kind === 'map') return fieldsEqual(a.fields, b.fields);
  return true;
}

export function isNumber(value: Value | undefined): value is Extract<Value, { kind: 'integer' | 'double' }> {
  return value?.kind === 'integer' || value?.kind === 'double';
}

export function isNaNValue(value: Value | undefined): boolean {
  return value?.kind === 'double' && Number.isNaN(value.value);
}
