import { decodeCursor, type CursorPosition } from './cursors.js';
import { invalidArgument, unimplemented } from './errors.js';
import { compareUtf8, isReservedName } from './keys.js';
import type { Filter, PropertyOperator, Query, Value } from './types.js';
import { valueTypeOf } from './values.js';

export const KEY_PROPERTY = '__key__';
export const SCATTER_PROPERTY = '__scatter__';

export interface SortSpec {
  property: string;
  descending: boolean;
}

export type FilterNode = { type: 'and' | 'or'; children: FilterNode[] } | { type: 'property'; property: string; op: PropertyOperator; value: Value };

/** A validated query, ready to run against a snapshot. */
export interface QueryPlan {
  kind?: string;
  filter?: FilterNode;
  /**
   * The effective order: explicit orders, then inequality properties, then distinct_on and
   * projected properties not ordered yet; the key breaks remaining ties.
   */
  orders: SortSpec[];
  /** Ties on every order are broken by key in the direction of the last explicit order. */
  keyDescending: boolean;
  /** Projected property names; empty for full entities. */
  projection: string[];
  keysOnly: boolean;
  distinctOn: string[];
  start?: CursorPosition;
  end?: CursorPosition;
  offset: number;
  limit?: number;
  /** Identifies the order a cursor belongs to. */
  signature: string;
}

const INEQUALITIES = new Set<PropertyOperator>(['LESS_THAN', 'LESS_THAN_OR_EQUAL', 'GREATER_THAN', 'GREATER_THAN_OR_EQUAL', 'NOT_EQUAL', 'NOT_IN']);
const MAX_IN_VALUES = 30;
const MAX_NOT_IN_VALUES = 10;

export function compileQuery(query: Query | undefined): QueryPlan {
  if (!query) throw invalidArgument('A query is required.');
  if (query.findNearest) throw unimplemented('find_nearest (vector search) is not supported by this emulator.');
  const kinds = query.kind ?? [];
  if (kinds.length > 1) throw invalidArgument('Only one kind may be specified per query.');
  const kind = kinds[0]?.name || undefined;
  if (kind && isReservedName(kind)) {
    throw unimplemented(`Metadata and statistics queries (kind "${kind}") are not supported by this emulator.`);
  }
  const filter = query.filter ? compileFilter(query.filter) : undefined;
  const leaves = filter ? leafFilters(filter) : [];
  checkOperatorCombinations(leaves);

  const explicit: SortSpec[] = (query.order ?? []).map((order) => {
    const property = order.property?.name;
    if (!property) throw invalidArgument('An order must name a property.');
    return { property, descending: order.direction === 'DESCENDING' };
  });
  const scatter = explicit.some((order) => order.property === SCATTER_PROPERTY);
  if (scatter && explicit.length > 1) throw invalidArgument('__scatter__ must be the only sort order.');
  // Google's Datastore-mode emulator: implicit orders (and the key) follow the last explicit direction.
  const descending = explicit[explicit.length - 1]?.descending ?? false;
  const filterOrders = [...explicit, ...implicitInequalityOrders(leaves, explicit, descending)];

  const projected = (query.projection ?? []).map((p) => p.property?.name ?? '');
  if (projected.some((name) => !name)) throw invalidArgument('A projection must name a property.');
  const keysOnly = projected.length > 0 && projected.every((name) => name === KEY_PROPERTY);
  const projection = [...new Set(keysOnly ? [] : projected.filter((name) => name !== KEY_PROPERTY))];
  const distinctOn = (query.distinctOn ?? []).map((p) => p.name ?? '');
  if (distinctOn.some((name) => !name)) throw invalidArgument('distinct_on must name properties.');
  checkDistinctOrder(explicit, distinctOn);

  if (!kind) checkKindless(leaves, filterOrders, projection);
  const orders = [...filterOrders, ...indexOrders(filterOrders, distinctOn, projection, descending)];

  const offset = query.offset ?? 0;
  const limit = query.limit ? (query.limit.value ?? 0) : undefined;
  if (offset < 0) throw invalidArgument('The offset must not be negative.');
  if (limit !== undefined && limit < 0) throw invalidArgument('The limit must not be negative.');

  const signature = JSON.stringify([orders, projection, distinctOn]);
  const start = query.startCursor?.length ? decodeCursor(query.startCursor, signature) : undefined;
  const end = query.endCursor?.length ? decodeCursor(query.endCursor, signature) : undefined;
  return { kind, filter, orders, keyDescending: descending, projection, keysOnly, distinctOn, start, end, offset, limit, signature };
}

function compileFilter(filter: Filter): FilterNode {
  if (filter.compositeFilter) {
    const op = filter.compositeFilter.op;
    if (op !== 'AND' && op !== 'OR') throw invalidArgument('A composite filter needs the operator AND or OR.');
    const children = (filter.compositeFilter.filters ?? []).map(compileFilter);
    if (children.length === 0) throw invalidArgument('A composite filter must have at least one filter.');
    return { type: op === 'AND' ? 'and' : 'or', children };
  }
  const propertyFilter = filter.propertyFilter;
  if (!propertyFilter) throw invalidArgument('A filter must be a composite or a property filter.');
  const property = propertyFilter.property?.name;
  const op = propertyFilter.op;
  const value = propertyFilter.value;
  if (!property) throw invalidArgument('A property filter must name a property.');
  if (!op || op === 'OPERATOR_UNSPECIFIED') throw invalidArgument(`The filter on "${property}" has no operator.`);
  if (!value || !valueTypeOf(value)) throw invalidArgument(`The filter on "${property}" has no value.`);
  checkFilterValue(property, op, value);
  return { type: 'property', property, op, value };
}

function checkFilterValue(property: string, op: PropertyOperator, value: Value): void {
  const isArray = valueTypeOf(value) === 'arrayValue';
  if (op === 'HAS_ANCESTOR') {
    if (property !== KEY_PROPERTY) throw invalidArgument('An ancestor filter must be on __key__.');
    if (valueTypeOf(value) !== 'keyValue') throw invalidArgument('An ancestor filter needs a key value.');
    return;
  }
  if (op === 'IN' || op === 'NOT_IN') {
    const values = value.arrayValue?.values ?? [];
    if (!isArray || values.length === 0) throw invalidArgument(`${op} needs a non-empty array value.`);
    const max = op === 'IN' ? MAX_IN_VALUES : MAX_NOT_IN_VALUES;
    if (values.length > max) throw invalidArgument(`${op} allows at most ${max} values.`);
    if (property === KEY_PROPERTY && values.some((v) => valueTypeOf(v) !== 'keyValue')) {
      throw invalidArgument('A __key__ filter needs key values.');
    }
    return;
  }
  if (isArray) throw invalidArgument(`The ${op} filter on "${property}" cannot take an array value.`);
  if (property === KEY_PROPERTY && valueTypeOf(value) !== 'keyValue') {
    throw invalidArgument('A __key__ filter needs a key value.');
  }
}

export function leafFilters(node: FilterNode): Array<Extract<FilterNode, { type: 'property' }>> {
  return node.type === 'property' ? [node] : node.children.flatMap(leafFilters);
}

function checkOperatorCombinations(leaves: Array<Extract<FilterNode, { type: 'property' }>>): void {
  const count = (op: PropertyOperator) => leaves.filter((leaf) => leaf.op === op).length;
  if (count('NOT_EQUAL') + count('NOT_IN') > 1) {
    throw invalidArgument('A query may have only one NOT_EQUAL or NOT_IN filter.');
  }
  if (count('NOT_IN') > 0 && count('IN') > 0) throw invalidArgument('A query may not combine IN and NOT_IN.');
}

/** Properties with inequality filters sort after the explicit orders, by name, as in Firestore. */
function implicitInequalityOrders(leaves: Array<Extract<FilterNode, { type: 'property' }>>, explicit: SortSpec[], descending: boolean): SortSpec[] {
  const ordered = new Set(explicit.map((order) => order.property));
  const names = new Set(leaves.filter((leaf) => INEQUALITIES.has(leaf.op) && !ordered.has(leaf.property)).map((leaf) => leaf.property));
  return [...names].sort().map((property) => ({ property, descending }));
}

/**
 * A projection (or distinct_on) query reads an index on those properties, so its rows come in
 * their order even when the query names none: distinct_on properties as listed, then the other
 * projected ones by name (UTF-8 bytes), as Google's emulators answer.
 */
function indexOrders(ordered: SortSpec[], distinctOn: string[], projection: string[], descending: boolean): SortSpec[] {
  const seen = new Set(ordered.map((order) => order.property));
  const rest = projection.filter((name) => !distinctOn.includes(name)).sort(compareUtf8);
  const added: SortSpec[] = [];
  for (const property of [...distinctOn, ...rest]) {
    if (seen.has(property)) continue;
    seen.add(property);
    added.push({ property, descending });
  }
  return added;
}

/** Google's Datastore-mode emulator refuses an order on another property before a distinct_on one. */
function checkDistinctOrder(explicit: SortSpec[], distinctOn: string[]): void {
  if (distinctOn.length === 0) return;
  const pending = new Set(distinctOn);
  for (const order of explicit) {
    if (distinctOn.includes(order.property)) pending.delete(order.property);
    else if (pending.size > 0) throw invalidArgument('All group by properties must be ordered before any non group by properties.');
  }
}

function checkKindless(leaves: Array<Extract<FilterNode, { type: 'property' }>>, orders: SortSpec[], projection: string[]): void {
  const onlyKeys =
    leaves.every((leaf) => leaf.property === KEY_PROPERTY) &&
    orders.every((order) => order.property === KEY_PROPERTY && !order.descending) &&
    projection.length === 0;
  if (!onlyKeys) {
    throw invalidArgument('A query without a kind may only filter on __key__ and order by __key__ ascending.');
  }
}

export const isInequality = (op: PropertyOperator): boolean => INEQUALITIES.has(op);
