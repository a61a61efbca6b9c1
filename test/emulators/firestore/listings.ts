// ListDocuments and ListCollectionIds over the documents visible at one read time.
import type { Micros } from './clock.js';
import { invalidArgument } from './errors.js';
import { parseFieldPath } from './field-paths.js';
import { compareDocumentNames, compareUtf8, parseParent, rootOf, segmentsOf } from './names.js';
import { type Ordering, valueAt } from './query.js';
import type { DocumentStore, StoredDocument } from './store.js';
import { compareValues } from './values.js';
import type * as wire from './wire.js';
import { decodePageToken, encodePageToken, maskPaths, toWireDocument } from './wire-documents.js';

/** Parses ListDocuments' `order_by`, e.g. `priority desc, __name__`, and ends it with `__name__`. */
function parseOrderBy(text: string | undefined): Ordering[] {
  const orderings: Ordering[] = [];
  for (const part of (text ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const match = /^(.*?)(?:\s+(asc|desc))?$/i.exec(part)!;
    orderings.push({ path: parseFieldPath(match[1]!.trim()), descending: match[2]?.toLowerCase() === 'desc' });
  }
  if (!orderings.some((o) => o.path.length === 1 && o.path[0] === '__name__')) {
    orderings.push({ path: ['__name__'], descending: orderings.at(-1)?.descending ?? false });
  }
  return orderings;
}

interface Listed {
  readonly name: string;
  /** null: a "missing" document, which does not exist but has documents below it. */
  readonly document: StoredDocument | null;
}

function pageSize(requested: number | undefined): number {
  return requested && requested > 0 ? requested : Infinity;
}

export function listDocuments(store: DocumentStore, readTime: Micros, request: wire.ListDocumentsRequest): wire.ListDocumentsResponse {
  const { database, segments: parent } = parseParent(request.parent);
  if (request.showMissing && request.orderBy) throw invalidArgument('show_missing cannot be combined with order_by.');
  const orderings = parseOrderBy(request.orderBy);
  const root = rootOf(database);
  const depth = parent.length + 2;
  const existing: StoredDocument[] = [];
  const namesBelow = new Set<string>();
  for (const document of store.documents(readTime)) {
    const segments = segmentsOf(document.name);
    const inCollection =
      document.name.startsWith(`${root}/`) &&
      segments.length >= depth &&
      parent.every((id, i) => segments[i] === id) &&
      (!request.collectionId || segments[parent.length] === request.collectionId);
    if (!inCollection) continue;
    if (segments.length === depth) existing.push(document);
    else namesBelow.add(`${root}/${segments.slice(0, depth).join('/')}`);
  }
  const existingNames = new Set(existing.map((document) => document.name));
  const missing = request.showMissing ? [...namesBelow].filter((name) => !existingNames.has(name)) : [];
  const entries: Listed[] = [
    ...existing.filter((document) => orderings.every((o) => valueAt(document, o.path) !== undefined)).map((document) => ({ name: document.name, document })),
    ...missing.map((name) => ({ name, document: null })),
  ];
  entries.sort((a, b) => {
    if (!a.document || !b.document) return compareDocumentNames(a.name, b.name);
    for (const { path, descending } of orderings) {
      const order = compareValues(valueAt(a.document, path)!, valueAt(b.document, path)!);
      if (order !== 0) return descending ? -order : order;
    }
    return 0;
  });

  // The page token is the last name returned; a page resumes after it (by name when the order is
  // by name alone, so that deleting that document meanwhile does not restart the listing).
  const after = decodePageToken(request.pageToken);
  let start = 0;
  if (after !== undefined && orderings.length === 1) {
    const direction = orderings[0]!.descending ? -1 : 1;
    start = entries.findIndex((entry) => compareDocumentNames(entry.name, after) * direction > 0);
    if (start < 0) start = entries.length;
  } else if (after !== undefined) {
    start = entries.findIndex((entry) => entry.name === after) + 1;
  }
  const end = Math.min(entries.length, start + pageSize(request.pageSize));
  const mask = maskPaths(request.mask);
  return {
    documents: entries.slice(start, end).map(({ name, document }) => (document ? toWireDocument(document, mask) : { name })),
    nextPageToken: end < entries.length ? encodePageToken(entries[end - 1]!.name) : '',
  };
}

export function listCollectionIds(store: DocumentStore, readTime: Micros, request: wire.ListCollectionIdsRequest): wire.ListCollectionIdsResponse {
  const { database, segments: parent } = parseParent(request.parent);
  const ids = new Set<string>();
  for (const document of store.documents(readTime)) {
    const segments = segmentsOf(document.name);
    if (!document.name.startsWith(`${rootOf(database)}/`) || segments.length < parent.length + 2) continue;
    if (parent.every((id, i) => segments[i] === id)) ids.add(segments[parent.length]!);
  }
  const sorted = [...ids].sort(compareUtf8);
  const after = decodePageToken(request.pageToken);
  let start = after === undefined ? 0 : sorted.findIndex((id) => compareUtf8(id, after) > 0);
  if (start < 0) start = sorted.length;
  const end = Math.min(sorted.length, start + pageSize(request.pageSize));
  return {
    collectionIds: sorted.slice(start, end),
    nextPageToken: end < sorted.length ? encodePageToken(sorted[end - 1]!) : '',
  };
}
