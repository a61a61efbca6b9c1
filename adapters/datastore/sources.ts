/**
 * An iteration source over a Datastore kind (djangae's defer_iteration over a queryset):
 *
 *   createDeferred({ stores, sources: [datastoreQuerySource(datastore)] });
 *   deferred.deferIteration(datastoreQuery('User', { filters: [['active', '=', true]] }), visit, done);
 *
 * split() samples `shards x 32` keys ordered by __scatter__ (the service gives about one entity
 * in 128 a scatter value), sorts them in key order and takes evenly spaced split points. When the
 * sample holds fewer keys than shards (a small kind, or no scatter values), it reads the query's
 * keys in key order instead (at most ENUMERATE_CAP) and cuts them into equal runs. Each shard is
 * a key range [start, end); read() walks it in key order from the last key processed
 * (`__key__ > after`), a page at a time, never by offset.
 *
 * Inequality filters (`<`, `<=`, `>`, `>=`, `!=`, `NOT_IN`) are applied by Datastore, not here.
 * A key range would be a second inequality (on __key__), which databases with entity-group rules
 * (legacy Datastore) refuse ("Only one inequality filter per query") and which otherwise needs a
 * composite index. So such a query is ordered by its inequality properties, then __key__, and
 * walked with Datastore's own query cursors: split() counts the matching keys and takes the
 * cursors at evenly spaced positions; read() starts at the shard's (or the last page's) cursor
 * and stops at the next shard's. An item's key is the cursor its page started at and its place
 * in the page (the page's last item carries the page's end cursor), so a shard re-deferred
 * mid-page resumes after that item, skipping at most one page. Reading everything and filtering
 * here instead would read what the filters leave out and copy Datastore's ordering of values.
 *
 * Indexes: equality filters need none (the built-in indexes serve `=` with a key range and key
 * order); one inequality property alone needs none either (its built-in index is ordered by the
 * property, then the key); combined with equality filters, or on several properties, it needs a
 * composite index, as any such query does.
 */
import type { Datastore, Key, Query } from '@google-cloud/datastore';
import type { IterationSource, SourcePage, SourceSpec } from '../../src/core/iteration.js';
import { CloudDeferError } from '../../src/core/errors.js';
import { where } from './context.js';
import { compareKeyPaths, fromKeyPath, keyIdentifier, toKeyPath, type KeyPath } from './key-paths.js';

export const DATASTORE_QUERY = 'datastore-query';

const OVERSAMPLING = 32;
const ENUMERATE_CAP = 100_000;

export type FilterOperator = '=' | '<' | '<=' | '>' | '>=' | '!=' | 'IN' | 'NOT_IN';
export type FilterValue = string | number | boolean | null | Date | ReadonlyArray<string | number | boolean | null | Date>;
/** [property, operator, value]: every filter must hold (AND). Values travel in tasks, so no Key or Buffer. */
export type DatastoreFilter = readonly [property: string, op: FilterOperator, value: FilterValue];

export interface DatastoreQuerySpec {
  kind: string;
  /** Default: the client's namespace. */
  namespace?: string;
  filters?: readonly DatastoreFilter[];
  /**
   * What callbacks get: the entity (default; its key under datastore.KEY), its Key, or its key's
   * name (or numeric id as a string). 'key' and 'id' read keys only.
   */
  select?: 'entity' | 'key' | 'id';
}

/**
 * One shard: keys in [start, end) of the query, either end open when absent; for a query with
 * inequality filters, the results between two of Datastore's query cursors (base64) instead.
 */
export interface DatastoreKeyRange extends DatastoreQuerySpec {
  start?: KeyPath;
  end?: KeyPath;
  startCursor?: string;
  endCursor?: string;
}

const INEQUALITIES: ReadonlySet<string> = new Set(['<', '<=', '>', '>=', '!=', 'NOT_IN']);
/** Results per query while counting and positioning cursors for split(). */
const CURSOR_PAGE = 1000;

/** The properties a query with inequality filters is ordered by before __key__. */
export function inequalityProperties(spec: DatastoreQuerySpec): string[] {
  return [...new Set((spec.filters ?? []).filter(([, op]) => INEQUALITIES.has(op)).map(([name]) => name))].sort();
}

/** Where a read resumes in a cursor-walked range: after `skip` results from `cursor` (the range's start when absent). */
interface CursorKey {
  cursor?: string;
  skip: number;
}

/** deferIteration(datastoreQuery('User', { filters }), ...) */
export function datastoreQuery(kind: string, options: Omit<DatastoreQuerySpec, 'kind'> = {}): SourceSpec<DatastoreQuerySpec> {
  if (!kind || /^__.*__$/.test(kind)) throw new CloudDeferError('INVALID_OPTION', `"${kind}" is not a kind deferIteration can walk.`);
  return { kind: DATASTORE_QUERY, spec: { kind, ...options } };
}

export function datastoreQuerySource(datastore: Datastore): IterationSource<DatastoreQuerySpec, DatastoreKeyRange, unknown> {
  const namespaceOf = (spec: DatastoreQuerySpec): string | undefined => spec.namespace ?? datastore.namespace;
  const keyOf = (entity: object): Key => (entity as Record<symbol, Key>)[datastore.KEY]!;
  const queryOf = (spec: DatastoreQuerySpec): Query => {
    const q = datastore.createQuery(namespaceOf(spec) ?? '', spec.kind);
    for (const [name, op, val] of spec.filters ?? []) where(q, name, op, val);
    return q;
  };
  const keysOf = async (q: Query): Promise<KeyPath[]> => {
    const [rows] = (await datastore.runQuery(q)) as [object[], unknown];
    return rows.map((row) => toKeyPath(keyOf(row)));
  };

  /** The query ordered by its inequality properties, then __key__: the same for every cursor taken on it. */
  const orderedQuery = (spec: DatastoreQuerySpec): Query => {
    const q = queryOf(spec);
    for (const name of inequalityProperties(spec)) q.order(name);
    q.order('__key__');
    if (spec.select === 'key' || spec.select === 'id') q.select('__key__');
    return q;
  };
  /** End cursors after `positions` results (ascending) of the query. */
  const cursorsAt = async (spec: DatastoreQuerySpec, positions: number[]): Promise<string[]> => {
    const cursors: string[] = [];
    let at = 0;
    let cursor: string | undefined;
    for (const position of positions) {
      while (at < position) {
        const q = orderedQuery({ ...spec, select: 'key' }).limit(Math.min(CURSOR_PAGE, position - at));
        if (cursor) q.start(cursor);
        const [rows, info] = (await datastore.runQuery(q)) as [object[], { endCursor?: string }];
        at += rows.length;
        cursor = info.endCursor;
        if (rows.length === 0) break;
      }
      if (cursor) cursors.push(cursor);
    }
    return cursors;
  };
  const splitByCursor = async (spec: DatastoreQuerySpec, shards: number): Promise<DatastoreKeyRange[]> => {
    let total = 0;
    let cursor: string | undefined;
    for (;;) {
      const q = orderedQuery({ ...spec, select: 'key' }).limit(CURSOR_PAGE);
      if (cursor) q.start(cursor);
      const [rows, info] = (await datastore.runQuery(q)) as [object[], { endCursor?: string }];
      total += rows.length;
      cursor = info.endCursor;
      if (rows.length < CURSOR_PAGE || total >= ENUMERATE_CAP) break;
    }
    if (total === 0) return [];
    const count = Math.min(shards, total);
    const positions = Array.from({ length: count - 1 }, (_, i) => Math.floor(((i + 1) * total) / count));
    const points = await cursorsAt(spec, positions);
    return Array.from(
      { length: points.length + 1 },
      (_, i): DatastoreKeyRange => ({
        ...spec,
        ...(i > 0 ? { startCursor: points[i - 1]! } : {}),
        ...(i < points.length ? { endCursor: points[i]! } : {}),
      }),
    );
  };
  const readByCursor = async (range: DatastoreKeyRange, after: string | undefined, limit: number): Promise<SourcePage> => {
    const from: CursorKey = after !== undefined ? (JSON.parse(after) as CursorKey) : { ...(range.startCursor ? { cursor: range.startCursor } : {}), skip: 0 };
    const q = orderedQuery(range).limit(limit);
    if (from.cursor) q.start(from.cursor);
    if (from.skip > 0) q.offset(from.skip); // at most one page, after a shard stopped mid-page
    if (range.endCursor) q.end(range.endCursor);
    const [rows, info] = (await datastore.runQuery(q)) as [object[], { endCursor?: string }];
    const items = rows.map((row, i) => {
      const path = toKeyPath(keyOf(row));
      const value = range.select === 'key' ? keyOf(row) : range.select === 'id' ? keyIdentifier(path) : row;
      const last = i === rows.length - 1 && info.endCursor !== undefined;
      const key: CursorKey = last ? { cursor: info.endCursor!, skip: 0 } : { ...(from.cursor ? { cursor: from.cursor } : {}), skip: from.skip + i + 1 };
      return { key: JSON.stringify(key), value };
    });
    return { items, done: rows.length < limit };
  };

  return {
    kind: DATASTORE_QUERY,
    async split(spec, shards) {
      if (inequalityProperties(spec).length > 0) return splitByCursor(spec, shards);
      const sample = await keysOf(
        datastore
          .createQuery(namespaceOf(spec) ?? '', spec.kind)
          .select('__key__')
          .order('__scatter__')
          .limit(shards * OVERSAMPLING),
      );
      const keys = sample.length >= shards ? sample.sort(compareKeyPaths) : await keysOf(queryOf(spec).select('__key__').order('__key__').limit(ENUMERATE_CAP));
      if (keys.length === 0) return [];
      const count = Math.min(shards, keys.length);
      const points: KeyPath[] = [];
      for (let i = 1; i < count; i += 1) {
        const point = keys[Math.floor((i * keys.length) / count)]!;
        const previous = points[points.length - 1] ?? keys[0]!;
        // Equal points would make an empty shard; the first key starts no range (shard 0 does).
        if (compareKeyPaths(point, previous) > 0) points.push(point);
      }
      return Array.from(
        { length: points.length + 1 },
        (_, i): DatastoreKeyRange => ({
          ...spec,
          ...(i > 0 ? { start: points[i - 1]! } : {}),
          ...(i < points.length ? { end: points[i]! } : {}),
        }),
      );
    },
    async read(range, after, limit): Promise<SourcePage> {
      if (inequalityProperties(range).length > 0) return readByCursor(range, after, limit);
      const namespace = namespaceOf(range);
      const q = queryOf(range)
        .order('__key__')
        .limit(limit + 1);
      if (range.select === 'key' || range.select === 'id') q.select('__key__');
      if (after !== undefined) where(q, '__key__', '>', fromKeyPath(datastore, namespace, JSON.parse(after) as KeyPath));
      else if (range.start) where(q, '__key__', '>=', fromKeyPath(datastore, namespace, range.start));
      if (range.end) where(q, '__key__', '<', fromKeyPath(datastore, namespace, range.end));
      const [rows] = (await datastore.runQuery(q)) as [object[], unknown];
      const items = rows.slice(0, limit).map((row) => {
        const path = toKeyPath(keyOf(row));
        const value = range.select === 'key' ? keyOf(row) : range.select === 'id' ? keyIdentifier(path) : row;
        return { key: JSON.stringify(path), value };
      });
      return { items, done: rows.length <= limit };
    },
  };
}
