// PartitionQuery: split points for a collection-group query ordered by `__name__`. Like Firestore,
// it answers with up to partition_count document references, in order, that cut the results into
// partition_count + 1 similar-sized ranges (fewer when there are too few documents), paged.
import { invalidArgument } from './errors.js';
import { isDocumentNamePath } from './field-paths.js';
import { type CompiledQuery, executeQuery } from './query.js';
import type { StoredDocument } from './store.js';
import type { WireCursor } from './wire.js';

export function checkPartitionable(query: CompiledQuery): void {
  const byNameAscending = query.orderings.length === 1 && isDocumentNamePath(query.orderings[0]!.path) && !query.orderings[0]!.descending;
  if (!query.allDescendants || !byNameAscending) {
    throw invalidArgument('PartitionQuery needs a collection group query ordered by __name__ ascending.');
  }
  if (query.hasFiltersOrOrders || query.startAt || query.endAt || query.offset > 0 || query.limit !== undefined) {
    throw invalidArgument('PartitionQuery does not support filters, other orders, cursors, offset or limit.');
  }
}

/** Evenly spaced split points: document i*n/(k+1) for i = 1..k, never the first document. */
export function splitPoints(query: CompiledQuery, documents: Iterable<StoredDocument>, partitionCount: number): string[] {
  const names = executeQuery(query, documents).map((document) => document.name);
  const count = Math.min(partitionCount, names.length - 1);
  const points: string[] = [];
  for (let i = 1; i <= count; i++) points.push(names[Math.floor((i * names.length) / (count + 1))]!);
  return points;
}

export interface PartitionPage {
  readonly partitions: WireCursor[];
  readonly nextPageToken: string;
}

/** One page of cursors; the page token is the index of the next split point. */
export function partitionPage(points: readonly string[], pageToken: string | undefined, pageSize: number | undefined): PartitionPage {
  const start = pageToken ? Number(Buffer.from(pageToken, 'base64').toString('utf8')) : 0;
  if (!Number.isInteger(start) || start < 0) throw invalidArgument('Invalid page token.');
  const end = pageSize && pageSize > 0 ? Math.min(points.length, start + pageSize) : points.length;
  return {
    partitions: points.slice(start, end).map((name) => ({ values: [{ referenceValue: name }] })),
    nextPageToken: end < points.length ? Buffer.from(String(end), 'utf8').toString('base64') : '',
  };
}
