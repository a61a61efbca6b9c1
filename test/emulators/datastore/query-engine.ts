import { createHash } from 'node:crypto';
import type { CursorPosition } from './cursors.js';
import { compareKeys, isAncestorOrSelf, pathId } from './keys.js';
import { isInequality, KEY_PROPERTY, SCATTER_PROPERTY, type FilterNode, type QueryPlan, type SortSpec } from './query-plan.js';
import type { LiveEntity } from './store.js';
import type { Entity, Value } from './types.js';
import { compareValues, indexedValues, keyAsValue, sameType, valuesEqual } from './values.js';

type PropertyFilterNode = Extract<FilterNode, { type: 'property' }>;

/** One query result: an entity (once per combination of projected or distinct_on array elements). */
export interface QueryRow {
  found: LiveEntity;
  position: CursorPosition;
  /** This row's index values of the projected and distinct_on properties. */
  projected?: Record<string, Value>;
}

export interface PlanResult {
  /** Matching rows in order, between the cursors, before offset and limit. */
  rows: QueryRow[];
  /** Whether the end cursor cut rows off. */
  cutByEnd: boolean;
}

export function runPlan(plan: QueryPlan, candidates: Iterable<LiveEntity>): PlanResult {
  const ranges = rangesOf(plan);
  let rows: QueryRow[] = [];
  for (const found of candidates) {
    if (plan.filter && !matchesFilter(plan.filter, found.entity)) continue;
    for (const projected of projections(plan, found.entity, ranges)) {
      const row = rowFor(plan, found, projected, ranges);
      if (row) rows.push(row);
    }
  }
  rows.sort((a, b) => comparePositions(plan, a.position, b.position));
  rows = dropDuplicates(plan, rows);
  if (plan.start) {
    const start = plan.start;
    rows = rows.filter((row) => comparePositions(plan, row.position, start) > 0);
  }
  let cutByEnd = false;
  if (plan.end) {
    const end = plan.end;
    const before = rows.length;
    rows = rows.filter((row) => comparePositions(plan, row.position, end) <= 0);
    cutByEnd = rows.length < before;
  }
  return { rows, cutByEnd };
}

/** Whether an entity is in the query's result set at all (ignoring cursors, offset and limit). */
export function qualifies(plan: QueryPlan, entity: Entity): boolean {
  if (plan.filter && !matchesFilter(plan.filter, entity)) return false;
  const ranges = rangesOf(plan);
  return projections(plan, entity, ranges).some((projected) => rowFor(plan, { entity, version: 0, createVersion: 0 }, projected, ranges));
}

/** The inequality filters on each property the plan orders or projects by. */
function rangesOf(plan: QueryPlan): Map<string, PropertyFilterNode[]> {
  const properties = new Set([...plan.orders.map((order) => order.property), ...plan.projection, ...plan.distinctOn]);
  return new Map([...properties].map((property) => [property, rangeFiltersOn(plan.filter, property)]));
}

export function comparePositions(plan: QueryPlan, a: CursorPosition, b: CursorPosition): number {
  for (let i = 0; i < plan.orders.length; i++) {
    const order = compareValues(a.values[i], b.values[i]);
    if (order !== 0) return plan.orders[i].descending ? -order : order;
  }
  const byKey = compareKeys(a.key, b.key);
  return plan.keyDescending ? -byKey : byKey;
}

export function matchesFilter(node: FilterNode, entity: Entity): boolean {
  if (node.type !== 'property') {
    const matchesChild = (child: FilterNode) => matchesFilter(child, entity);
    return node.type === 'and' ? node.children.every(matchesChild) : node.children.some(matchesChild);
  }
  if (node.op === 'HAS_ANCESTOR') return isAncestorOrSelf(node.value.keyValue ?? {}, entity.key ?? {});
  // A filter holds when any one index entry of the property satisfies it.
  return indexedValues(entity, node.property).some((value) => satisfies(node, value));
}

function satisfies(node: PropertyFilterNode, value: Value): boolean {
  const listed = node.value.arrayValue?.values ?? [];
  switch (node.op) {
    case 'EQUAL':
      return valuesEqual(value, node.value);
    case 'NOT_EQUAL':
      return !valuesEqual(value, node.value);
    case 'IN':
      return listed.some((candidate) => valuesEqual(value, candidate));
    case 'NOT_IN':
      return !listed.some((candidate) => valuesEqual(value, candidate));
    default: {
      // Range comparisons stay within one type, as index range scans do.
      if (!sameType(value, node.value)) return false;
      const order = compareValues(value, node.value);
      if (node.op === 'LESS_THAN') return order < 0;
      if (node.op === 'LESS_THAN_OR_EQUAL') return order <= 0;
      if (node.op === 'GREATER_THAN') return order > 0;
      return order >= 0;
    }
  }
}

/**
 * Each combination of indexed values of the projected and distinct_on properties (an index
 * row each), only values within the inequality filters on their property; [undefined] without.
 */
function projections(plan: QueryPlan, entity: Entity, ranges: Map<string, PropertyFilterNode[]>): Array<Record<string, Value> | undefined> {
  const properties = [...new Set([...plan.projection, ...plan.distinctOn])];
  if (properties.length === 0) return [undefined];
  let combos: Array<Record<string, Value>> = [{}];
  for (const property of properties) {
    const limits = ranges.get(property) ?? [];
    const values = indexedValues(entity, property).filter((value) => limits.every((range) => satisfies(range, value)));
    combos = combos.flatMap((combo) => values.map((value) => ({ ...combo, [property]: value })));
  }
  return combos;
}

function rowFor(
  plan: QueryPlan,
  found: LiveEntity,
  projected: Record<string, Value> | undefined,
  ranges: Map<string, PropertyFilterNode[]>,
): QueryRow | undefined {
  const values: Value[] = [];
  for (const order of plan.orders) {
    const value = sortValue(order, found.entity, projected, ranges.get(order.property) ?? []);
    if (!value) return undefined; // Entities without the property are not in its index.
    values.push(value);
  }
  return { found, position: { values, key: found.entity.key ?? {} }, projected };
}

/**
 * The index entry a row sorts by: the smallest value ascending, the largest descending, among
 * the values that satisfy the inequality filters on that property (if any do).
 */
function sortValue(order: SortSpec, entity: Entity, projected: Record<string, Value> | undefined, ranges: PropertyFilterNode[]): Value | undefined {
  if (order.property === KEY_PROPERTY) return keyAsValue(entity);
  if (order.property === SCATTER_PROPERTY) return scatterValue(entity);
  if (projected && order.property in projected) return projected[order.property];
  const all = indexedValues(entity, order.property);
  const inRange = all.filter((value) => ranges.every((range) => satisfies(range, value)));
  const candidates = inRange.length > 0 ? inRange : all;
  if (candidates.length === 0) return undefined;
  return candidates.reduce((best, value) => {
    const versusBest = compareValues(value, best);
    return (order.descending ? versusBest > 0 : versusBest < 0) ? value : best;
  });
}

/** A pseudo-random but stable value per key, standing in for the service's __scatter__ property. */
function scatterValue(entity: Entity): Value {
  const digest = createHash('sha256')
    .update(pathId(entity.key?.path ?? []))
    .digest();
  return { valueType: 'blobValue', blobValue: digest.subarray(0, 8) };
}

function rangeFiltersOn(filter: FilterNode | undefined, property: string): PropertyFilterNode[] {
  if (!filter) return [];
  if (filter.type === 'property') return filter.property === property && isInequality(filter.op) ? [filter] : [];
  if (filter.type === 'or') return [];
  return filter.children.flatMap((child) => rangeFiltersOn(child, property));
}

/** Projection rows that repeat, and rows after the first for each distinct_on combination. */
function dropDuplicates(plan: QueryPlan, rows: QueryRow[]): QueryRow[] {
  if (plan.projection.length === 0 && plan.distinctOn.length === 0) return rows;
  const seen = new Set<string>();
  return rows.filter((row) => {
    const identity =
      plan.distinctOn.length > 0
        ? JSON.stringify(plan.distinctOn.map((p) => valueIdentity(row.projected?.[p])))
        : pathId(row.found.entity.key?.path ?? []) + JSON.stringify(plan.projection.map((p) => valueIdentity(row.projected?.[p])));
    if (seen.has(identity)) return false;
    seen.add(identity);
    return true;
  });
}

function valueIdentity(value: Value | undefined): string {
  if (!value) return '';
  return JSON.stringify(value, (_key, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : typeof v === 'number' ? String(v) : v));
}
