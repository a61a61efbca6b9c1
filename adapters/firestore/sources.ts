/**
 * An iteration source over a Firestore collection or collection group, with filters:
 *
 *   const stores = firestoreStores({ firestore });
 *   createDeferred({ stores, sources: [stores.source] });
 *   deferred.deferIteration(firestoreQuery('users', { where: [['active', '==', true]] }), visit, done);
 *
 * The spec is plain data (path, filters, what to hand the callback), so the shard tasks carry it
 * and any process can rebuild the query. split() asks Firestore for split points with
 * getPartitions(n) on the collection group (PartitionQuery wants it unfiltered and ordered by
 * __name__ only; the filters apply within each range). When that fails or gives fewer points than
 * asked (a small collection, a group shared with other collections, a backend without
 * PartitionQuery), it reads the query's document names instead (at most SCAN_CAP) and cuts them
 * into equal runs. Each shard is a name range [startAt, endBefore); read() walks it ordered by
 * __name__, from the last document processed (startAfter), a page at a time, never by offset.
 *
 * Inequality filters (`<`, `<=`, `>`, `>=`, `!=`, `not-in`) are applied by Firestore, not here:
 * the real service refuses an order that puts __name__ before an inequality field, so such a
 * query is ordered by its inequality fields (by field path, as Firestore's implicit order is),
 * then __name__, and its shards are cut at scanned (field values, name) cursors; PartitionQuery's
 * name-only points do not fit that order, so it is not used for them. Filtering client-side
 * instead would read every document the equality filters let through and would have to copy
 * Firestore's cross-type ordering and its null, missing-field and NaN rules; the server already
 * has them right and uses an index for the range.
 *
 * Indexes: equality filters are served by the automatic single-field indexes; an inequality
 * combined with equality filters, or on several fields, needs a composite index, which
 * Firestore's error message links to.
 */
import type { CollectionReference, DocumentSnapshot, Firestore, Query, WhereFilterOp } from '@google-cloud/firestore';
import { CloudDeferError } from '../../src/core/errors.js';
import type { IterationSource, SourcePage, SourceSpec } from '../../src/core/iteration.js';
import { loadLibrary, type FirestoreLibrary } from './library.js';

export const FIRESTORE_QUERY = 'firestore-query';
/** Most document names read to cut shards when Firestore gives no split points. */
const SCAN_CAP = 100_000;

type Scalar = string | number | boolean | null | Date;
export type WhereValue = Scalar | readonly Scalar[];
/** [field path, operator, value]: every filter must hold. Values travel inside tasks: plain data and Dates. */
export type FirestoreWhere = readonly [field: string, op: WhereFilterOp, value: WhereValue];

export interface FirestoreQuerySpec {
  /** A collection path ("users", "orgs/acme/users"); with collectionGroup, a collection id. */
  collection: string;
  collectionGroup?: boolean;
  where?: readonly FirestoreWhere[];
  /**
   * What the callback gets: the QueryDocumentSnapshot (default), its data(), its id, or its path.
   * 'id' and 'path' read document names only.
   */
  select?: 'snapshot' | 'data' | 'id' | 'path';
}

/** An inequality field's value at a cursor, as plain data (a Timestamp keeps its nanoseconds). */
export type CursorValue = string | number | boolean | null | { readonly timestamp: readonly [seconds: number, nanoseconds: number] } | { readonly nan: true };

/**
 * One shard: documents of the query from startAt (included) to endBefore (excluded), either end
 * open when absent. Without inequality filters the order is by name; with them, by the
 * inequality fields' values (startAtValues, endBeforeValues) and then the name.
 */
export interface FirestoreQueryRange extends FirestoreQuerySpec {
  /** Document paths relative to the database ("users/u1"). */
  startAt?: string;
  endBefore?: string;
  startAtValues?: readonly CursorValue[];
  endBeforeValues?: readonly CursorValue[];
}

const INEQUALITIES: ReadonlySet<string> = new Set(['<', '<=', '>', '>=', '!=', 'not-in']);

/** The fields a query must be ordered by before __name__: its inequality fields, by field path. */
export function inequalityFields(spec: FirestoreQuerySpec): string[] {
  return [...new Set((spec.where ?? []).filter(([, op]) => INEQUALITIES.has(op)).map(([field]) => field))].sort();
}

/** deferIteration(firestoreQuery('users', { where: [['plan', '==', 'pro']] }), ...) */
export function firestoreQuery(collection: string | CollectionReference, options: Omit<FirestoreQuerySpec, 'collection'> = {}): SourceSpec<FirestoreQuerySpec> {
  const path = typeof collection === 'string' ? collection : collection.path;
  const segments = path.split('/');
  if (!path || segments.some((s) => !s) || (options.collectionGroup ? segments.length !== 1 : segments.length % 2 !== 1)) {
    throw new CloudDeferError('INVALID_OPTION', `"${path}" is not a collection path (or, with collectionGroup, a collection id).`);
  }
  return { kind: FIRESTORE_QUERY, spec: { collection: path, ...options } };
}

/** The source for `firestore`'s database; `library` as in firestoreStores() (default: the one cloud-defer resolves). */
export function firestoreQuerySource(firestore: Firestore, library?: FirestoreLibrary): IterationSource<FirestoreQuerySpec, FirestoreQueryRange, unknown> {
  const lib = loadLibrary(firestore, library);
  const byName = lib.FieldPath.documentId();
  const collectionId = (spec: FirestoreQuerySpec): string => spec.collection.split('/').pop()!;

  const queryOf = (spec: FirestoreQuerySpec): Query => {
    let query: Query = spec.collectionGroup ? firestore.collectionGroup(spec.collection) : firestore.collection(spec.collection);
    for (const [field, op, value] of spec.where ?? []) query = query.where(field, op, value);
    const ordered = inequalityFields(spec);
    // The cursor fields must be read even when the callback only wants names.
    if (spec.select === 'id' || spec.select === 'path') query = query.select(...ordered);
    for (const field of ordered) query = query.orderBy(field);
    return query.orderBy(byName);
  };

  const toCursorValue = (value: unknown, field: string): CursorValue => {
    // JSON has no NaN (a `!=` filter lets NaN through).
    if (typeof value === 'number' && Number.isNaN(value)) return { nan: true };
    if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
    if (value instanceof lib.Timestamp) return { timestamp: [value.seconds, value.nanoseconds] };
    throw new CloudDeferError(
      'INVALID_OPTION',
      `deferIteration cannot keep a cursor on "${field}": its value is neither a string, number, boolean, null nor a timestamp. Filter with an inequality on a scalar or timestamp field.`,
    );
  };
  const fromCursorValue = (value: CursorValue): unknown => {
    if (value === null || typeof value !== 'object') return value;
    return 'nan' in value ? Number.NaN : new lib.Timestamp(value.timestamp[0], value.timestamp[1]);
  };
  /** The cursor of a document: its inequality field values, then its path. */
  const cursorOf = (spec: FirestoreQuerySpec, document: DocumentSnapshot): { values: CursorValue[]; path: string } => ({
    values: inequalityFields(spec).map((field) => toCursorValue(document.get(field), field)),
    path: document.ref.path,
  });
  const cursorArgs = (values: readonly CursorValue[] | undefined, path: string): unknown[] => [...(values ?? []).map(fromCursorValue), firestore.doc(path)];

  /** Split points from PartitionQuery, kept only where they fall inside this collection. */
  const partitionPoints = async (spec: FirestoreQuerySpec, shards: number): Promise<string[]> => {
    const points: string[] = [];
    try {
      for await (const partition of firestore.collectionGroup(collectionId(spec)).getPartitions(shards)) {
        const end = partition.endBefore?.[0] as { path?: string; parent?: { path?: string } } | undefined;
        if (end?.path && (spec.collectionGroup || end.parent?.path === spec.collection)) points.push(end.path);
      }
    } catch {
      return []; // no PartitionQuery here: scan instead
    }
    return points;
  };

  /** Evenly spaced cursors of the query's own documents, in the query's order. */
  const scannedPoints = async (spec: FirestoreQuerySpec, shards: number): Promise<Array<{ values: CursorValue[]; path: string }>> => {
    const snapshot = await queryOf({ ...spec, select: 'path' })
      .limit(SCAN_CAP)
      .get();
    const count = Math.min(shards, snapshot.size);
    const points: Array<{ values: CursorValue[]; path: string }> = [];
    for (let i = 1; i < count; i += 1) points.push(cursorOf(spec, snapshot.docs[Math.floor((i * snapshot.size) / count)]!));
    return points;
  };

  const valueOf = (spec: FirestoreQuerySpec, document: DocumentSnapshot): unknown => {
    switch (spec.select) {
      case 'id':
        return document.id;
      case 'path':
        return document.ref.path;
      case 'data':
        return document.data();
      default:
        return document;
    }
  };

  return {
    kind: FIRESTORE_QUERY,
    async split(spec, shards) {
      const byValue = inequalityFields(spec).length > 0;
      let points: Array<{ values: CursorValue[]; path: string }> =
        shards > 1 && !byValue ? (await partitionPoints(spec, shards)).map((path) => ({ values: [], path })) : [];
      if (points.length < shards - 1) points = await scannedPoints(spec, shards);
      return Array.from({ length: points.length + 1 }, (_, i): FirestoreQueryRange => {
        const start = points[i - 1];
        const end = points[i];
        return {
          ...spec,
          ...(start ? { startAt: start.path, ...(byValue ? { startAtValues: start.values } : {}) } : {}),
          ...(end ? { endBefore: end.path, ...(byValue ? { endBeforeValues: end.values } : {}) } : {}),
        };
      });
    },
    async read(range, after, limit): Promise<SourcePage> {
      const byValue = inequalityFields(range).length > 0;
      let query = queryOf(range);
      if (after !== undefined) {
        // Keys are the path alone (name order) or [values, path] as JSON (value order).
        const cursor = byValue ? (JSON.parse(after) as [CursorValue[], string]) : ([[], after] as const);
        query = query.startAfter(...cursorArgs(cursor[0], cursor[1]));
      } else if (range.startAt !== undefined) query = query.startAt(...cursorArgs(range.startAtValues, range.startAt));
      if (range.endBefore !== undefined) query = query.endBefore(...cursorArgs(range.endBeforeValues, range.endBefore));
      const snapshot = await query.limit(limit).get();
      const keyOf = (document: DocumentSnapshot): string => {
        if (!byValue) return document.ref.path;
        const cursor = cursorOf(range, document);
        return JSON.stringify([cursor.values, cursor.path]);
      };
      return {
        items: snapshot.docs.map((document) => ({ key: keyOf(document), value: valueOf(range, document) })),
        done: snapshot.size < limit,
      };
    },
  };
}
