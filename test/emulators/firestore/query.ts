// The structured query engine: which documents a query selects (collection or collection group
// below a parent), its filters, its order (explicit orders, then inequality fields, then
// `__name__`), cursors, offset, limit and projection.
import { invalidArgument, unimplemented } from './errors.js';
import { type FieldPath, formatFieldPath, getField, isDocumentNamePath, parseFieldPath } from './field-paths.js';
import { compareUtf8, parseParent, segmentsOf } from './names.js';
import type { StoredDocument } from './store.js';
import { compareValues, isNaNValue, typeOrder, type Value, valueFromWire, valuesEqual } from './values.js';
import type { WireCursor, WireFieldFilter, WireFilter, WireStructuredQuery, WireUnaryFilter } from './wire.js';

export interface Ordering {
  readonly path: FieldPath;
  readonly descending: boolean;
}

interface Bound {
  readonly values: readonly Value[];
  /** Firestore's `before`: the position is just before the documents equal to `values`. */
  readonly before: boolean;
}

type Predicate = (document: StoredDocument) => boolean;

export interface CompiledQuery {
  readonly database: string;
  readonly parentSegments: readonly string[];
  readonly collectionId: string;
  readonly allDescendants: boolean;
  readonly matches: Predicate;
  /** The full order, always ending with `__name__`. */
  readonly orderings: readonly Ordering[];
  /** Whether filters or orders beyond the collection selector (and `__name__` order) were given. */
  readonly hasFiltersOrOrders: boolean;
  readonly startAt: Bound | undefined;
  readonly endAt: Bound | undefined;
  readonly offset: number;
  readonly limit: number | undefined;
  readonly projection: readonly FieldPath[] | undefined;
}

/** A field's value for queries; `__name__` is the document's own name as a reference. */
export function valueAt(document: StoredDocument, path: FieldPath): Value | undefined {
  return isDocumentNamePath(path) ? { kind: 'reference', value: document.name } : getField(document.fields, path);
}

const INEQUALITY_OPERATORS = new Set(['LESS_THAN', 'LESS_THAN_OR_EQUAL', 'GREATER_THAN', 'GREATER_THAN_OR_EQUAL', 'NOT_EQUAL', 'NOT_IN']);
const ARRAY_OPERANDS = new Set(['IN', 'NOT_IN', 'ARRAY_CONTAINS_ANY']);

interface CompiledFilter {
  readonly matches: Predicate;
  /** Fields with inequality filters: they join the order after the explicit orders. */
  readonly inequalityPaths: readonly FieldPath[];
}

function compileFieldFilter(filter: WireFieldFilter): CompiledFilter {
  const path = parseFieldPath(filter.field?.fieldPath);
  const op = filter.op ?? 'OPERATOR_UNSPECIFIED';
  if (!filter.value) throw invalidArgument(`Filter on ${filter.field?.fieldPath} has no value.`);
  const operand = valueFromWire(filter.value);
  let elements: readonly Value[] = [];
  if (ARRAY_OPERANDS.has(op)) {
    if (operand.kind !== 'array' || operand.values.length === 0) {
      throw invalidArgument(`A ${op} filter needs a non-empty array value.`);
    }
    elements = operand.values;
  }
  if (isDocumentNamePath(path)) {
    const references = ARRAY_OPERANDS.has(op) ? elements : [operand];
    if (op === 'ARRAY_CONTAINS' || op === 'ARRAY_CONTAINS_ANY' || references.some((v) => v.kind !== 'reference')) {
      throw invalidArgument(`A filter on ${path[0]} needs a document reference value.`);
    }
  }
  const sameTypeAs = (value: Value): boolean => typeOrder(value) === typeOrder(operand);
  const compare = (document: StoredDocument, accept: (order: number) => boolean): boolean => {
    const value = valueAt(document, path);
    // NaN is ordered before every number, but no range (nor equality) filter matches it.
    return value !== undefined && sameTypeAs(value) && !isNaNValue(value) && accept(compareValues(value, operand));
  };
  const inSet = (value: Value): boolean => elements.some((element) => valuesEqual(value, element));
  let matches: Predicate;
  switch (op) {
    case 'EQUAL':
      matches = (d) => compare(d, (order) => order === 0);
      break;
    case 'NOT_EQUAL':
      // Like not-in, != leaves out documents whose field is missing or null.
      matches = (d) => {
        const value = valueAt(d, path);
        return value !== undefined && value.kind !== 'null' && !valuesEqual(value, operand);
      };
      break;
    case 'LESS_THAN':
      matches = (d) => compare(d, (order) => order < 0);
      break;
    case 'LESS_THAN_OR_EQUAL':
      matches = (d) => compare(d, (order) => order <= 0);
      break;
    case 'GREATER_THAN':
      matches = (d) => compare(d, (order) => order > 0);
      break;
    case 'GREATER_THAN_OR_EQUAL':
      matches = (d) => compare(d, (order) => order >= 0);
      break;
    case 'ARRAY_CONTAINS':
      matches = (d) => {
        const value = valueAt(d, path);
        return value?.kind === 'array' && value.values.some((element) => valuesEqual(element, operand));
      };
      break;
    case 'IN':
      matches = (d) => {
        const value = valueAt(d, path);
        return value !== undefined && inSet(value);
      };
      break;
    case 'ARRAY_CONTAINS_ANY':
      matches = (d) => {
        const value = valueAt(d, path);
        return value?.kind === 'array' && value.values.some(inSet);
      };
      break;
    case 'NOT_IN':
      // A null in the list matches nothing; documents whose field is null never match.
      matches = (d) => {
        const value = valueAt(d, path);
        return value !== undefined && value.kind !== 'null' && !inSet(value) && !elements.some((e) => e.kind === 'null');
      };
      break;
    default:
      throw invalidArgument(`Unsupported field filter operator: ${op}.`);
  }
  return { matches, inequalityPaths: INEQUALITY_OPERATORS.has(op) ? [path] : [] };
}

function compileUnaryFilter(filter: WireUnaryFilter): CompiledFilter {
  const path = parseFieldPath(filter.field?.fieldPath);
  const at = (document: StoredDocument): Value | undefined => valueAt(document, path);
  switch (filter.op) {
    case 'IS_NAN':
      return { matches: (d) => isNaNValue(at(d)), inequalityPaths: [] };
    case 'IS_NULL':
      return { matches: (d) => at(d)?.kind === 'null', inequalityPaths: [] };
    // The negations are `!=` filters: the field must exist, and they order like inequalities.
    case 'IS_NOT_NAN':
      return { matches: (d) => at(d) !== undefined && !isNaNValue(at(d)), inequalityPaths: [path] };
    case 'IS_NOT_NULL':
      return { matches: (d) => at(d) !== undefined && at(d)?.kind !== 'null', inequalityPaths: [path] };
    default:
      throw invalidArgument(`Unsupported unary filter operator: ${filter.op ?? 'none'}.`);
  }
}

function compileFilter(filter: WireFilter): CompiledFilter {
  switch (filter.filterType) {
    case 'fieldFilter':
      return compileFieldFilter(filter.fieldFilter ?? {});
    case 'unaryFilter':
      return compileUnaryFilter(filter.unaryFilter ?? {});
    case 'compositeFilter': {
      const parts = (filter.compositeFilter?.filters ?? []).map(compileFilter);
      const inequalityPaths = parts.flatMap((part) => part.inequalityPaths);
      const op = filter.compositeFilter?.op;
      if (op === 'AND') return { matches: (d) => parts.every((part) => part.matches(d)), inequalityPaths };
      if (op === 'OR') {
        return { matches: (d) => parts.length === 0 || parts.some((part) => part.matches(d)), inequalityPaths };
      }
      throw invalidArgument(`Unsupported composite filter operator: ${op ?? 'none'}.`);
    }
    default:
      throw invalidArgument('A filter needs a field, unary or composite filter.');
  }
}

/** Explicit orders, then inequality fields not yet ordered (by path), then `__name__`, in the last direction. */
function normalizeOrderings(explicit: readonly Ordering[], inequalityPaths: readonly FieldPath[]): Ordering[] {
  const orderings = [...explicit];
  const ordered = new Set(explicit.map((ordering) => formatFieldPath(ordering.path)));
  const descending = explicit.at(-1)?.descending ?? false;
  const implicit = [...new Map(inequalityPaths.map((path) => [formatFieldPath(path), path])).entries()]
    .filter(([key]) => !ordered.has(key))
    .sort(([a], [b]) => compareUtf8(a, b));
  for (const [key, path] of implicit) {
    orderings.push({ path, descending });
    ordered.add(key);
  }
  if (!ordered.has('__name__')) orderings.push({ path: ['__name__'], descending });
  // Firestore orders by the key last: an explicit __name__ before another (or an inequality) field is refused.
  const keyAt = orderings.findIndex((ordering) => isDocumentNamePath(ordering.path));
  if (keyAt !== orderings.length - 1) throw invalidArgument('order by clause cannot contain more fields after the key __name__');
  return orderings;
}

function compileBound(cursor: WireCursor | null | undefined, orderings: readonly Ordering[]): Bound | undefined {
  if (!cursor) return undefined;
  const values = (cursor.values ?? []).map((value) => valueFromWire(value));
  if (values.length > orderings.length) throw invalidArgument('Too many cursor values: more than the query orders by.');
  values.forEach((value, i) => {
    if (isDocumentNamePath(orderings[i]!.path) && value.kind !== 'reference') {
      throw invalidArgument('A cursor value for __name__ must be a document reference.');
    }
  });
  return { values, before: cursor.before === true };
}

export function compileQuery(parent: string | undefined, query: WireStructuredQuery | null | undefined): CompiledQuery {
  const { database, segments } = parseParent(parent);
  if (!query) throw invalidArgument('A structured query is required.');
  if (query.findNearest) throw unimplemented('Vector search (find_nearest) is not implemented by this emulator.');
  const from = query.from ?? [];
  if (from.length !== 1) throw invalidArgument('A query must select exactly one collection.');
  const filter = query.where ? compileFilter(query.where) : { matches: () => true, inequalityPaths: [] };
  const explicit = (query.orderBy ?? []).map((order) => ({
    path: parseFieldPath(order.field?.fieldPath),
    descending: order.direction === 'DESCENDING',
  }));
  const orderings = normalizeOrderings(explicit, filter.inequalityPaths);
  const offset = query.offset ?? 0;
  const limit = query.limit ? (query.limit.value ?? 0) : undefined;
  if (offset < 0 || (limit !== undefined && limit < 0)) throw invalidArgument('Offset and limit cannot be negative.');
  return {
    database,
    parentSegments: segments,
    collectionId: from[0]!.collectionId ?? '',
    allDescendants: from[0]!.allDescendants === true,
    matches: filter.matches,
    orderings,
    hasFiltersOrOrders: query.where != null || explicit.some((ordering) => !isDocumentNamePath(ordering.path)),
    startAt: compileBound(query.startAt, orderings),
    endAt: compileBound(query.endAt, orderings),
    offset,
    limit,
    projection: query.select ? (query.select.fields ?? []).map((field) => parseFieldPath(field.fieldPath)) : undefined,
  };
}

const collectionPrefixes = new WeakMap<CompiledQuery, string>();

function collectionPrefix(query: CompiledQuery): string {
  let prefix = collectionPrefixes.get(query);
  if (prefix === undefined) {
    prefix = [`${query.database}/documents`, ...query.parentSegments, query.collectionId].join('/') + '/';
    collectionPrefixes.set(query, prefix);
  }
  return prefix;
}

/** The one collection path a query reads (none for a collection-group query, which reads them all). */
export function queryCollectionPath(query: CompiledQuery): string | undefined {
  return query.allDescendants ? undefined : collectionPrefix(query).slice(0, -1);
}

/** The first `count` of `documents` in `compare` order, as a stable sort would give them (a page of a long walk need not sort it all). */
function firstInOrder(documents: StoredDocument[], count: number, compare: (a: StoredDocument, b: StoredDocument) => number): StoredDocument[] {
  const first: StoredDocument[] = [];
  for (const document of documents) {
    if (first.length === count && compare(document, first[count - 1]!) >= 0) continue;
    let low = 0;
    let high = first.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (compare(first[middle]!, document) <= 0) low = middle + 1;
      else high = middle;
    }
    first.splice(low, 0, document);
    if (first.length > count) first.pop();
  }
  return first;
}

/** Whether the document is in the collection below the parent (collection groups: any so named, at any depth). */
function isSelected(query: CompiledQuery, document: StoredDocument): boolean {
  if (!query.allDescendants) {
    // One collection: a prefix test, without splitting every name of the store on every query.
    const prefix = collectionPrefix(query);
    return document.name.startsWith(prefix) && document.name.indexOf('/', prefix.length) === -1;
  }
  if (!document.name.startsWith(`${query.database}/documents/`)) return false;
  const segments = segmentsOf(document.name);
  const parent = query.parentSegments;
  if (segments.length < parent.length + 2 || !parent.every((id, i) => segments[i] === id)) return false;
  const collectionId = segments[segments.length - 2];
  if (!query.allDescendants) return segments.length === parent.length + 2 && collectionId === query.collectionId;
  return query.collectionId === '' || collectionId === query.collectionId;
}

function compareByOrderings(orderings: readonly Ordering[], a: StoredDocument, b: StoredDocument): number {
  for (const { path, descending } of orderings) {
    const order = compareValues(valueAt(a, path)!, valueAt(b, path)!);
    if (order !== 0) return descending ? -order : order;
  }
  return 0;
}

/** Where the document sits relative to the cursor values, in query order. */
function compareToBound(orderings: readonly Ordering[], document: StoredDocument, bound: Bound): number {
  for (let i = 0; i < bound.values.length; i++) {
    const { path, descending } = orderings[i]!;
    const order = compareValues(valueAt(document, path)!, bound.values[i]!);
    if (order !== 0) return descending ? -order : order;
  }
  return 0;
}

function withinBounds(query: CompiledQuery, document: StoredDocument): boolean {
  if (query.startAt) {
    const position = compareToBound(query.orderings, document, query.startAt);
    if (query.startAt.before ? position < 0 : position <= 0) return false;
  }
  if (query.endAt) {
    const position = compareToBound(query.orderings, document, query.endAt);
    if (query.endAt.before ? position >= 0 : position > 0) return false;
  }
  return true;
}

/** The documents the query returns, in order, after cursors, offset and limit (not yet projected). */
export function executeQuery(query: CompiledQuery, documents: Iterable<StoredDocument>): StoredDocument[] {
  const matching: StoredDocument[] = [];
  for (const document of documents) {
    if (!isSelected(query, document)) continue;
    // Ordering by a field also requires it to exist.
    if (query.orderings.some((ordering) => valueAt(document, ordering.path) === undefined)) continue;
    if (query.matches(document) && withinBounds(query, document)) matching.push(document);
  }
  const compare = (a: StoredDocument, b: StoredDocument): number => compareByOrderings(query.orderings, a, b);
  if (query.limit === undefined) return matching.sort(compare).slice(query.offset);
  const end = query.offset + query.limit;
  const ordered = end * 8 < matching.length ? firstInOrder(matching, end, compare) : matching.sort(compare);
  return ordered.slice(query.offset, end);
}
