// RunAggregationQuery's aggregations (count with up_to, sum, avg) over a query's results.
import { invalidArgument } from './errors.js';
import { parseFieldPath } from './field-paths.js';
import { valueAt } from './query.js';
import type { StoredDocument } from './store.js';
import { INT64_MAX, INT64_MIN, isNaNValue, isNumber, NULL_VALUE, type Value } from './values.js';
import type { WireAggregation } from './wire.js';

export interface Aggregation {
  readonly alias: string;
  readonly compute: (documents: readonly StoredDocument[]) => Value;
}

function sum(values: readonly Value[]): Value {
  let integerSum = 0n;
  let doubleSum = 0;
  let allIntegers = true;
  for (const value of values) {
    if (value.kind === 'integer') integerSum += value.value;
    else if (value.kind === 'double') {
      allIntegers = false;
      doubleSum += value.value;
    }
  }
  // Integers stay integers unless a double joins in or the sum leaves int64 range.
  if (allIntegers && integerSum <= INT64_MAX && integerSum >= INT64_MIN) return { kind: 'integer', value: integerSum };
  return { kind: 'double', value: doubleSum + Number(integerSum) };
}

/**
 * The documents an aggregation query aggregates over: as on Firestore, a sum or avg on a field
 * restricts the whole query (its count too) to documents that have that field.
 */
export function aggregatedDocuments(wire: readonly WireAggregation[], documents: readonly StoredDocument[]): readonly StoredDocument[] {
  const paths = wire
    .map((aggregation) => (aggregation.operator === 'sum' ? aggregation.sum : aggregation.operator === 'avg' ? aggregation.avg : undefined))
    .filter((operand) => operand?.field?.fieldPath)
    .map((operand) => parseFieldPath(operand!.field!.fieldPath));
  if (paths.length === 0) return documents;
  return documents.filter((document) => paths.every((path) => valueAt(document, path) !== undefined));
}

export function compileAggregations(wire: readonly WireAggregation[]): Aggregation[] {
  if (wire.length === 0) throw invalidArgument('An aggregation query needs at least one aggregation.');
  return wire.map((aggregation, i) => {
    const alias = aggregation.alias || `field_${i + 1}`;
    switch (aggregation.operator) {
      case 'count': {
        const upTo = aggregation.count?.upTo ? Number(aggregation.count.upTo.value ?? 0) : undefined;
        if (upTo !== undefined && upTo <= 0) throw invalidArgument('count up_to must be positive.');
        return {
          alias,
          compute: (documents) => ({ kind: 'integer', value: BigInt(Math.min(documents.length, upTo ?? Infinity)) }),
        };
      }
      case 'sum':
      case 'avg': {
        const operand = aggregation.operator === 'sum' ? aggregation.sum : aggregation.avg;
        const path = parseFieldPath(operand?.field?.fieldPath);
        const numbers = (documents: readonly StoredDocument[]): Value[] => documents.map((document) => valueAt(document, path)).filter(isNumber);
        if (aggregation.operator === 'sum') return { alias, compute: (documents) => sum(numbers(documents)) };
        return {
          alias,
          compute: (documents) => {
            const values = numbers(documents);
            if (values.length === 0) return NULL_VALUE;
            if (values.some(isNaNValue)) return { kind: 'double', value: NaN };
            const total = values.reduce((acc, value) => acc + Number((value as { value: number | bigint }).value), 0);
            return { kind: 'double', value: total / values.length };
          },
        };
      }
      default:
        throw invalidArgument(`Unsupported aggregation: ${aggregation.operator ?? 'none'}.`);
    }
  });
}
