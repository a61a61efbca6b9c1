import { compareKeys, compareUtf8, keyStorageSize, utf8Length } from './keys.js';
import type { Entity, Timestamp, Value, ValueType } from './types.js';

const VALUE_TYPES: ValueType[] = [
  'nullValue',
  'booleanValue',
  'integerValue',
  'doubleValue',
  'timestampValue',
  'keyValue',
  'stringValue',
  'blobValue',
  'geoPointValue',
  'entityValue',
  'arrayValue',
];

export function valueTypeOf(value: Value): ValueType | undefined {
  if (value.valueType) return value.valueType;
  return VALUE_TYPES.find((type) => value[type] !== undefined && value[type] !== null);
}

/**
 * Datastore's order across types: null, fixed-point numbers (integers, then dates and times),
 * booleans, byte sequences (short blobs, then strings), floating-point numbers, geo points, keys.
 * Embedded entities and arrays are not indexed as a whole, so their place is only for stability.
 */
const TYPE_RANK: Record<ValueType, number> = {
  nullValue: 0,
  integerValue: 1,
  timestampValue: 2,
  booleanValue: 3,
  blobValue: 4,
  stringValue: 5,
  doubleValue: 6,
  geoPointValue: 7,
  keyValue: 8,
  entityValue: 9,
  arrayValue: 10,
};

export function typeRank(value: Value): number {
  const type = valueTypeOf(value);
  return type ? TYPE_RANK[type] : -1;
}

export function timestampMicros(timestamp: Timestamp | undefined): bigint {
  const seconds = BigInt(timestamp?.seconds ?? 0);
  return seconds * 1_000_000n + BigInt(Math.floor((timestamp?.nanos ?? 0) / 1000));
}

export function microsToTimestamp(micros: number | bigint): Timestamp {
  const value = BigInt(micros);
  const seconds = value / 1_000_000n;
  return { seconds: seconds.toString(), nanos: Number(value - seconds * 1_000_000n) * 1000 };
}

const sign = (n: number | bigint): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

function compareDoubles(a: number, b: number): number {
  // NaN sorts before every other number, as in the service's index encoding.
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) ? (Number.isNaN(b) ? 0 : -1) : 1;
  return sign(a - b);
}

/** Total order over values as Datastore indexes them. */
export function compareValues(a: Value, b: Value): number {
  const byType = typeRank(a) - typeRank(b);
  if (byType !== 0) return sign(byType);
  switch (valueTypeOf(a)) {
    case 'integerValue':
      return sign(BigInt(a.integerValue ?? '0') - BigInt(b.integerValue ?? '0'));
    case 'timestampValue':
      return sign(timestampMicros(a.timestampValue) - timestampMicros(b.timestampValue));
    case 'booleanValue':
      return Number(a.booleanValue ?? false) - Number(b.booleanValue ?? false);
    case 'blobValue':
      return Buffer.compare(Buffer.from(a.blobValue ?? []), Buffer.from(b.blobValue ?? []));
    case 'stringValue':
      return compareUtf8(a.stringValue ?? '', b.stringValue ?? '');
    case 'doubleValue':
      return compareDoubles(a.doubleValue ?? 0, b.doubleValue ?? 0);
    case 'geoPointValue':
      return (
        compareDoubles(a.geoPointValue?.latitude ?? 0, b.geoPointValue?.latitude ?? 0) ||
        compareDoubles(a.geoPointValue?.longitude ?? 0, b.geoPointValue?.longitude ?? 0)
      );
    case 'keyValue':
      return compareKeys(a.keyValue ?? {}, b.keyValue ?? {});
    default:
      return 0;
  }
}

export const sameType = (a: Value, b: Value): boolean => typeRank(a) === typeRank(b);
export const valuesEqual = (a: Value, b: Value): boolean => sameType(a, b) && compareValues(a, b) === 0;

export const keyAsValue = (entity: Entity): Value => ({ valueType: 'keyValue', keyValue: entity.key });

/**
 * The index entries of a property: the value itself, or each element of an array, leaving out
 * values excluded from indexes. A dotted path reaches into embedded entities (Datastore indexes
 * their properties as `outer.inner`) unless the entity has a top-level property with that name.
 */
export function indexedValues(entity: Entity, path: string): Value[] {
  if (path === '__key__') return entity.key ? [keyAsValue(entity)] : [];
  const properties = entity.properties ?? {};
  if (path in properties) return flattenIndexed(properties[path]);
  const dot = path.indexOf('.');
  if (dot < 0) return [];
  const head = path.slice(0, dot);
  const rest = path.slice(dot + 1);
  const outer = properties[head];
  if (!outer) return [];
  const embedded = valueTypeOf(outer) === 'arrayValue' ? (outer.arrayValue?.values ?? []) : [outer];
  // An embedded entity excluded from indexes takes all of its own values out with it.
  return embedded.flatMap((value) =>
    valueTypeOf(value) === 'entityValue' && value.entityValue && !value.excludeFromIndexes ? indexedValues(value.entityValue, rest) : [],
  );
}

function flattenIndexed(value: Value): Value[] {
  if (valueTypeOf(value) === 'arrayValue') {
    return (value.arrayValue?.values ?? []).filter((element) => isIndexable(element));
  }
  return isIndexable(value) ? [value] : [];
}

function isIndexable(value: Value): boolean {
  if (value.excludeFromIndexes) return false;
  // An embedded entity is indexed through its properties, never as one value.
  return valueTypeOf(value) !== 'entityValue';
}

/** Value storage size as Google documents it (strings +1, numbers and timestamps 8, ...). */
export function valueStorageSize(value: Value, namespaceId: string): number {
  switch (valueTypeOf(value)) {
    case 'stringValue':
      return utf8Length(value.stringValue ?? '') + 1;
    case 'blobValue':
      return value.blobValue?.length ?? 0;
    case 'booleanValue':
    case 'nullValue':
      return 1;
    case 'integerValue':
    case 'doubleValue':
    case 'timestampValue':
      return 8;
    case 'geoPointValue':
      return 16;
    case 'keyValue':
      return keyStorageSize(value.keyValue ?? {}, value.keyValue?.partitionId?.namespaceId ?? namespaceId);
    case 'entityValue':
      return entityStorageSize(value.entityValue ?? {}, namespaceId);
    case 'arrayValue':
      return (value.arrayValue?.values ?? []).reduce((sum, v) => sum + valueStorageSize(v, namespaceId), 0);
    default:
      return 0;
  }
}

/** Entity storage size: key + each property (name + 1 + value) + 32, as Google documents it. */
export function entityStorageSize(entity: Entity, namespaceId: string): number {
  let size = 32 + (entity.key ? keyStorageSize(entity.key, namespaceId) : 0);
  for (const [name, value] of Object.entries(entity.properties ?? {})) {
    size += utf8Length(name) + 1 + valueStorageSize(value, namespaceId);
  }
  return size;
}
