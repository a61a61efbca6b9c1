import { invalidArgument } from './errors.js';
import { isReservedName, MAX_NAME_BYTES, utf8Length } from './keys.js';
import type { Entity, Key, Value } from './types.js';
import { entityStorageSize, timestampMicros, microsToTimestamp, valueTypeOf } from './values.js';

// Production limits of Firestore in Datastore mode (cloud.google.com/datastore/docs/concepts/limits).
export const MAX_ENTITY_BYTES = 1_048_572;
export const MAX_INDEXED_VALUE_BYTES = 1500;
export const MAX_UNINDEXED_VALUE_BYTES = 1_048_487;
export const MAX_NESTING_DEPTH = 20;
export const MAX_INDEX_ENTRIES = 20_000;
export const MAX_LOOKUP_KEYS = 1000;
export const MAX_REQUEST_BYTES = 10 * 1024 * 1024;
export const MAX_TRANSACTION_MS = 270_000;

interface Walk {
  indexEntries: number;
}

/** Where a value sits: an array element may not hold another array; an excluded entity excludes its values. */
interface Place {
  depth: number;
  inArray: boolean;
  underExcluded: boolean;
}

/**
 * Validates an entity about to be written and returns the copy that gets stored: the canonical
 * key, values reduced to their set field, timestamps rounded down to microseconds as the
 * service stores them.
 */
export function prepareEntityForWrite(entity: Entity, key: Key, namespaceId: string): Entity {
  const walk: Walk = { indexEntries: 0 };
  const top: Place = { depth: 1, inArray: false, underExcluded: false };
  const stored: Entity = { key, properties: prepareProperties(entity.properties ?? {}, top, walk) };
  if (walk.indexEntries > MAX_INDEX_ENTRIES) {
    throw invalidArgument(`Too many indexed properties: ${walk.indexEntries} (limit ${MAX_INDEX_ENTRIES}).`);
  }
  const size = entityStorageSize(stored, namespaceId);
  if (size > MAX_ENTITY_BYTES) {
    throw invalidArgument(`entity is too big: ${size} bytes (limit ${MAX_ENTITY_BYTES} bytes).`);
  }
  return stored;
}

function prepareProperties(properties: Record<string, Value>, place: Place, walk: Walk): Record<string, Value> {
  if (place.depth > MAX_NESTING_DEPTH) throw invalidArgument(`Entity values are nested more than ${MAX_NESTING_DEPTH} deep.`);
  const prepared: Record<string, Value> = {};
  for (const [name, value] of Object.entries(properties)) {
    if (!name) throw invalidArgument('A property name must not be empty.');
    if (utf8Length(name) > MAX_NAME_BYTES) throw invalidArgument('A property name is longer than 1500 bytes.');
    if (isReservedName(name)) throw invalidArgument(`The property name "${name}" is reserved.`);
    prepared[name] = prepareValue(name, value, place, walk);
  }
  return prepared;
}

function prepareValue(name: string, value: Value, place: Place, walk: Walk): Value {
  const type = valueTypeOf(value);
  if (!type) throw invalidArgument(`The value of property "${name}" has no value type set.`);
  const indexed = !value.excludeFromIndexes && !place.underExcluded;
  const prepared: Value = { valueType: type };
  if (value.meaning) prepared.meaning = value.meaning;
  if (value.excludeFromIndexes) prepared.excludeFromIndexes = true;
  switch (type) {
    case 'arrayValue': {
      if (place.inArray) throw invalidArgument(`The property "${name}" holds an array inside an array.`);
      if (value.excludeFromIndexes || value.meaning) {
        throw invalidArgument(`The array value of "${name}" must not set meaning or exclude_from_indexes.`);
      }
      const values = (value.arrayValue?.values ?? []).map((v) => prepareValue(name, v, { ...place, inArray: true }, walk));
      return { valueType: type, arrayValue: { values } };
    }
    case 'entityValue':
      prepared.entityValue = {
        ...(value.entityValue?.key ? { key: value.entityValue.key } : {}),
        properties: prepareProperties(value.entityValue?.properties ?? {}, { depth: place.depth + 1, inArray: false, underExcluded: !indexed }, walk),
      };
      return prepared;
    case 'timestampValue':
      prepared.timestampValue = microsToTimestamp(timestampMicros(value.timestampValue));
      break;
    case 'stringValue':
    case 'blobValue': {
      const bytes = type === 'stringValue' ? utf8Length(value.stringValue ?? '') : (value.blobValue?.length ?? 0);
      if (indexed && bytes > MAX_INDEXED_VALUE_BYTES) {
        throw invalidArgument(`The value of property "${name}" is longer than ${MAX_INDEXED_VALUE_BYTES} bytes.`);
      }
      if (bytes > MAX_UNINDEXED_VALUE_BYTES) {
        throw invalidArgument(`The value of property "${name}" is longer than ${MAX_UNINDEXED_VALUE_BYTES} bytes.`);
      }
      if (type === 'stringValue') prepared.stringValue = value.stringValue ?? '';
      else prepared.blobValue = Buffer.from(value.blobValue ?? []);
      break;
    }
    case 'nullValue':
      prepared.nullValue = 'NULL_VALUE';
      break;
    default:
      Object.assign(prepared, { [type]: value[type] });
  }
  if (indexed) walk.indexEntries += 1;
  return prepared;
}
