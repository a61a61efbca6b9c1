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
 * Indexes: equality filters are served by the automatic single-field indexes; a range or
 * inequality filter combined with the __name__ order may need a composite index, which
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

/** One shard: documents of the query with names in [startAt, endBefore), either end open when absent. */
export interface FirestoreQueryRange extends FirestoreQuerySpec {
  /** Document paths relative to the database ("users/u1"). */
  startAt?: string;
  endBefore?: string;
}

/** deferIteration(firestoreQuery('users', { where: [['plan', '==', 'pro']] }), ...) */
export function firestoreQuery(
  collection: string | CollectionReference,
  options: Omit<FirestoreQuerySpec, 'collection'> = {},
): SourceSpec<FirestoreQuerySpec> {
  const path = typeof collection === 'string' ? collection : collection.path;
  const segments = path.split('/');
  if (!path || segments.some((s) => !s) || (options.collectionGroup ? segments.length !== 1 : segments.length % 2 !== 1)) {
    throw new CloudDeferError('INVALID_OPTION', `"${path}" is not a collection path (or, with collectionGroup, a collection id).`);
  }
  return { kind: FIRESTORE_QUERY, spec: { collection: path, ...options } };
}

/** The source for `firestore`'s database; `library` as in firestoreStores() (default: the one cloud-defer resolves). */
export function firestoreQuerySource(firestore: Firestore, library?: FirestoreLibrary): IterationSource<FirestoreQuerySpec, FirestoreQueryRange, unknown> {
  const byName = loadLibrary(firestore, library).FieldPath.documentId();
  const collectionId = (spec: FirestoreQuerySpec): string => spec.collection.split('/').pop()!;

  const queryOf = (spec: FirestoreQuerySpec): Query => {
    let query: Query = spec.collectionGroup ? firestore.collectionGroup(spec.collection) : firestore.collection(spec.collection);
    for (const [field, op, value] of spec.where ?? []) query = query.where(field, op, value);
    if (spec.select === 'id' || spec.select === 'path') query = query.select();
    return query.orderBy(byName);
  };

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

  /** Evenly spaced names of the query's own documents. */
  const scannedPoints = async (spec: FirestoreQuerySpec, shards: number): Promise<string[]> => {
    const snapshot = await queryOf({ ...spec, select: 'path' }).limit(SCAN_CAP).get();
    const names = snapshot.docs.map((document) => document.ref.path);
    const count = Math.min(shards, names.length);
    const points: string[] = [];
    for (let i = 1; i < count; i += 1) points.push(names[Math.floor((i * names.length) / count)]!);
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
      let points = shards > 1 ? await partitionPoints(spec, shards) : [];
      if (points.length < shards - 1) points = await scannedPoints(spec, shards);
      return Array.from({ length: points.length + 1 }, (_, i) => ({
        ...spec,
        ...(i > 0 ? { startAt: points[i - 1]! } : {}),
        ...(i < points.length ? { endBefore: points[i]! } : {}),
      }));
    },
    async read(range, after, limit): Promise<SourcePage> {
      let query = queryOf(range);
      if (after !== undefined) query = query.startAfter(firestore.doc(after));
      else if (range.startAt !== undefined) query = query.startAt(firestore.doc(range.startAt));
      if (range.endBefore !== undefined) query = query.endBefore(firestore.doc(range.endBefore));
      const snapshot = await query.limit(limit).get();
      return {
        items: snapshot.docs.map((document) => ({ key: document.ref.path, value: valueOf(range, document) })),
        done: snapshot.size < limit,
      };
    },
  };
}
