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
 * Indexes: equality filters need none (the built-in indexes serve `=` with a key range and key
 * order); an inequality filter on a property combined with the key range needs a composite index
 * (the property, then __key__) on a database that supports inequalities on several properties.
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

/** One shard: keys in [start, end) of the query, either end open when absent. */
export interface DatastoreKeyRange extends DatastoreQuerySpec {
  start?: KeyPath;
  end?: KeyPath;
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

  return {
    kind: DATASTORE_QUERY,
    async split(spec, shards) {
      const sample = await keysOf(datastore.createQuery(namespaceOf(spec) ?? '', spec.kind).select('__key__').order('__scatter__').limit(shards * OVERSAMPLING));
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
      return Array.from({ length: points.length + 1 }, (_, i): DatastoreKeyRange => ({
        ...spec,
        ...(i > 0 ? { start: points[i - 1]! } : {}),
        ...(i < points.length ? { end: points[i]! } : {}),
      }));
    },
    async read(range, after, limit): Promise<SourcePage> {
      const namespace = namespaceOf(range);
      const q = queryOf(range).order('__key__').limit(limit + 1);
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
