// One Write of a Commit or BatchWrite: decoding and validation, the precondition, the update (whole
// document or masked fields), the delete, and the field transforms applied after the update.
import { type Micros, wireToMicros } from './clock.js';
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from './errors.js';
import { type FieldPath, getField, parseFieldPath, withField } from './field-paths.js';
import { parseDocumentName } from './names.js';
import type { StoredDocument } from './store.js';
import {
  compareNumbers,
  type Fields,
  fieldsFromWire,
  INT64_MAX,
  INT64_MIN,
  isNaNValue,
  isNumber,
  NULL_VALUE,
  type Value,
  valueFromWire,
  valuesEqual,
} from './values.js';
import type { WireFieldTransform, WirePrecondition, WireValue, WireWrite } from './wire.js';

export type FieldTransform =
  | { readonly path: FieldPath; readonly kind: 'serverTime' }
  | { readonly path: FieldPath; readonly kind: 'increment' | 'maximum' | 'minimum'; readonly operand: Value }
  | { readonly path: FieldPath; readonly kind: 'append' | 'remove'; readonly elements: readonly Value[] };

export type Precondition = { readonly exists: boolean } | { readonly updateTime: Micros };

export interface DecodedWrite {
  readonly name: string;
  readonly operation: 'update' | 'delete' | 'transform';
  /** For updates: the new fields (all of them, or those the mask names). */
  readonly fields: Fields;
  readonly mask: readonly FieldPath[] | undefined;
  readonly transforms: readonly FieldTransform[];
  readonly precondition: Precondition | undefined;
}

export interface WriteOutcome {
  /** The document's fields after the write; null when it is deleted. */
  readonly fields: Fields | null;
  readonly transformResults: readonly Value[];
}

function decodePrecondition(precondition: WirePrecondition | null | undefined): Precondition | undefined {
  switch (precondition?.conditionType) {
    case 'exists':
      return { exists: precondition.exists === true };
    case 'updateTime':
      return { updateTime: wireToMicros(precondition.updateTime, 'precondition update_time') };
    default:
      return undefined;
  }
}

const elementsOf = (array: { values?: WireValue[] } | null | undefined): Value[] => (array?.values ?? []).map((value) => valueFromWire(value));

function decodeTransform(transform: WireFieldTransform): FieldTransform {
  const path = parseFieldPath(transform.fieldPath);
  const numericOperand = (operand: typeof transform.increment, what: string): Value => {
    const value = operand ? valueFromWire(operand) : undefined;
    if (!isNumber(value)) throw invalidArgument(`${what} requires an integer or double operand.`);
    return value;
  };
  switch (transform.transformType) {
    case 'setToServerValue':
      if (transform.setToServerValue !== 'REQUEST_TIME' && transform.setToServerValue !== 1) {
        throw invalidArgument('Unsupported server value.');
      }
      return { path, kind: 'serverTime' };
    case 'increment':
      return { path, kind: 'increment', operand: numericOperand(transform.increment, 'increment') };
    case 'maximum':
      return { path, kind: 'maximum', operand: numericOperand(transform.maximum, 'maximum') };
    case 'minimum':
      return { path, kind: 'minimum', operand: numericOperand(transform.minimum, 'minimum') };
    case 'appendMissingElements':
      return { path, kind: 'append', elements: elementsOf(transform.appendMissingElements) };
    case 'removeAllFromArray':
      return { path, kind: 'remove', elements: elementsOf(transform.removeAllFromArray) };
    default:
      throw invalidArgument(`Unsupported field transform: ${transform.transformType ?? 'none'}.`);
  }
}

export function decodeWrite(write: WireWrite, database: string): DecodedWrite {
  const precondition = decodePrecondition(write.currentDocument);
  switch (write.operation) {
    case 'update': {
      const name = parseDocumentName(write.update?.name, database).name;
      const mask = write.updateMask ? (write.updateMask.fieldPaths ?? []).map(parseFieldPath) : undefined;
      const transforms = (write.updateTransforms ?? []).map(decodeTransform);
      const fields = fieldsFromWire(write.update?.fields);
      return { name, operation: 'update', fields, mask, transforms, precondition };
    }
    case 'delete':
      return {
        name: parseDocumentName(write.delete, database).name,
        operation: 'delete',
        fields: new Map(),
        mask: undefined,
        transforms: [],
        precondition,
      };
    case 'transform': {
      const transforms = (write.transform?.fieldTransforms ?? []).map(decodeTransform);
      if (transforms.length === 0) throw invalidArgument('A transform write needs at least one field transform.');
      const name = parseDocumentName(write.transform?.document, database).name;
      return { name, operation: 'transform', fields: new Map(), mask: undefined, transforms, precondition };
    }
    default:
      throw invalidArgument('A write needs an update, a delete or a transform.');
  }
}

export function checkPrecondition(write: DecodedWrite, current: StoredDocument | null): void {
  const precondition = write.precondition;
  if (!precondition) return;
  if ('exists' in precondition) {
    if (precondition.exists && !current) throw notFound(`No document to update: ${write.name}`);
    if (!precondition.exists && current) throw alreadyExists(`Document already exists: ${write.name}`);
    return;
  }
  if (!current || current.updateTime !== precondition.updateTime) {
    throw failedPrecondition(`The document's update time does not match the precondition: ${write.name}`);
  }
}

function saturatingAdd(a: bigint, b: bigint): bigint {
  const sum = a + b;
  return sum > INT64_MAX ? INT64_MAX : sum < INT64_MIN ? INT64_MIN : sum;
}

const asDouble = (value: Extract<Value, { kind: 'integer' | 'double' }>): number => Number(value.value);

/** The field's new value under one transform (its result is the new value, or null for arrays). */
function transformedValue(transform: FieldTransform, current: Value | undefined, requestTime: Micros): Value {
  switch (transform.kind) {
    case 'serverTime': {
      // REQUEST_TIME has millisecond precision.
      const millis = Math.floor(requestTime / 1000);
      return { kind: 'timestamp', seconds: Math.floor(millis / 1000), nanos: (millis % 1000) * 1_000_000 };
    }
    case 'increment': {
      const operand = transform.operand as Extract<Value, { kind: 'integer' | 'double' }>;
      if (!isNumber(current)) return operand;
      if (current.kind === 'integer' && operand.kind === 'integer') {
        return { kind: 'integer', value: saturatingAdd(current.value, operand.value) };
      }
      return { kind: 'double', value: asDouble(current) + asDouble(operand) };
    }
    case 'maximum':
    case 'minimum': {
      if (!isNumber(current)) return transform.operand;
      if (isNaNValue(current) || isNaNValue(transform.operand)) return { kind: 'double', value: NaN };
      const order = compareNumbers(transform.operand, current);
      const operandWins = transform.kind === 'maximum' ? order > 0 : order < 0;
      return operandWins ? transform.operand : current;
    }
    case 'append': {
      const elements = current?.kind === 'array' ? [...current.values] : [];
      for (const element of transform.elements) {
        if (!elements.some((existing) => valuesEqual(existing, element))) elements.push(element);
      }
      return { kind: 'array', values: elements };
    }
    case 'remove': {
      const elements = current?.kind === 'array' ? current.values : [];
      return { kind: 'array', values: elements.filter((e) => !transform.elements.some((r) => valuesEqual(e, r))) };
    }
  }
}

/** Applies a decoded write to the document's current state; the precondition is checked first. */
export function applyWrite(write: DecodedWrite, current: StoredDocument | null, requestTime: Micros): WriteOutcome {
  checkPrecondition(write, current);
  if (write.operation === 'delete') return { fields: null, transformResults: [] };

  let fields: Fields;
  if (write.operation === 'transform') fields = current?.fields ?? new Map();
  else if (write.mask === undefined) fields = write.fields;
  else {
    fields = current?.fields ?? new Map();
    // Masked paths missing from the input are deleted.
    for (const path of write.mask) fields = withField(fields, path, getField(write.fields, path));
  }

  const transformResults: Value[] = [];
  for (const transform of write.transforms) {
    const value = transformedValue(transform, getField(fields, transform.path), requestTime);
    fields = withField(fields, transform.path, value);
    transformResults.push(transform.kind === 'append' || transform.kind === 'remove' ? NULL_VALUE : value);
  }
  return { fields, transformResults };
}
