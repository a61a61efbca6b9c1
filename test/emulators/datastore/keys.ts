import { invalidArgument } from './errors.js';
import type { Key, PartitionId, PathElement } from './types.js';

/** Where entities live: one project, database and namespace. */
export interface Partition {
  projectId: string;
  databaseId: string;
  namespaceId: string;
}

export const MAX_PATH_ELEMENTS = 100;
export const MAX_KEY_BYTES = 6 * 1024;
export const MAX_NAME_BYTES = 1500;
const RESERVED = /^__.*__$/;
const NAMESPACE_PATTERN = /^[A-Za-z\d.\-_]{0,100}$/;

export const isReservedName = (name: string): boolean => RESERVED.test(name);
export const utf8Length = (text: string): number => Buffer.byteLength(text, 'utf8');

/** Datastore orders kinds, names and strings by their UTF-8 bytes, not by UTF-16 code units. */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function partitionId(partition: Partition): string {
  return JSON.stringify([partition.projectId, partition.databaseId, partition.namespaceId]);
}

/** The partition a request addresses, checking a key's or query's own partition against it. */
export function resolvePartition(scope: { projectId?: string; databaseId?: string }, given: PartitionId | undefined): Partition {
  const projectId = scope.projectId ?? '';
  const databaseId = scope.databaseId ?? '';
  if (!projectId) throw invalidArgument('The project ID is required.');
  if (given?.projectId && given.projectId !== projectId) {
    throw invalidArgument(`mismatched projects: "${given.projectId}" in a key or partition, "${projectId}" in the request`);
  }
  if (given?.databaseId && given.databaseId !== databaseId) {
    throw invalidArgument(`mismatched databases: "${given.databaseId}" in a key or partition, "${databaseId}" in the request`);
  }
  const namespaceId = given?.namespaceId ?? '';
  if (!NAMESPACE_PATTERN.test(namespaceId)) throw invalidArgument(`Invalid namespace "${namespaceId}".`);
  return { projectId, databaseId, namespaceId };
}

export function hasId(element: PathElement): boolean {
  return element.idType ? element.idType === 'id' : element.id !== undefined;
}

function hasName(element: PathElement): boolean {
  return element.idType ? element.idType === 'name' : element.name !== undefined;
}

export const isElementComplete = (element: PathElement): boolean => hasId(element) || hasName(element);

export function isComplete(key: Key): boolean {
  const path = key.path ?? [];
  return path.length > 0 && path.every(isElementComplete);
}

/** A stable identity for a key path inside one partition. */
export function pathId(path: PathElement[]): string {
  return JSON.stringify(path.map((e) => (hasId(e) ? [e.kind, 'i', e.id] : [e.kind, 'n', e.name])));
}

export function kindOf(key: Key): string {
  const path = key.path ?? [];
  return path[path.length - 1]?.kind ?? '';
}

/**
 * Key order: element by element, kind (bytes), then numeric ids before names, ids numerically,
 * names by bytes; an ancestor sorts before its descendants.
 */
export function compareKeys(a: Key, b: Key): number {
  const left = a.path ?? [];
  const right = b.path ?? [];
  const shared = Math.min(left.length, right.length);
  for (let i = 0; i < shared; i++) {
    const order = compareElements(left[i], right[i]);
    if (order !== 0) return order;
  }
  return left.length - right.length;
}

function compareElements(a: PathElement, b: PathElement): number {
  const byKind = compareUtf8(a.kind ?? '', b.kind ?? '');
  if (byKind !== 0) return byKind;
  const aId = hasId(a);
  const bId = hasId(b);
  if (aId !== bId) return aId ? -1 : 1;
  if (aId) {
    const x = BigInt(a.id ?? '0');
    const y = BigInt(b.id ?? '0');
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return compareUtf8(a.name ?? '', b.name ?? '');
}

export function isAncestorOrSelf(ancestor: Key, key: Key): boolean {
  const top = ancestor.path ?? [];
  const path = key.path ?? [];
  if (top.length > path.length) return false;
  return top.every((element, i) => compareElements(element, path[i]) === 0);
}

/** Storage size as Google documents it: path strings (+1 each), 8 per id, namespace, plus 16. */
export function keyStorageSize(key: Key, namespaceId: string): number {
  let size = 16 + (namespaceId ? utf8Length(namespaceId) + 1 : 0);
  for (const element of key.path ?? []) {
    size += utf8Length(element.kind ?? '') + 1;
    if (hasId(element)) size += 8;
    else if (hasName(element)) size += utf8Length(element.name ?? '') + 1;
  }
  return size;
}

export interface KeyRules {
  /** Insert and upsert may leave the last element without an id (one gets allocated). */
  allowIncompleteLast: boolean;
  /** Writes may not touch reserved (`__x__`) kinds, names or namespaces. */
  forWrite: boolean;
}

/** Checks a key the way the service does; returns the canonical form in the given partition. */
export function validateKey(key: Key | undefined, partition: Partition, rules: KeyRules): Key {
  const path = key?.path ?? [];
  if (path.length === 0) throw invalidArgument('A key path must not be empty.');
  if (path.length > MAX_PATH_ELEMENTS) throw invalidArgument(`A key path has more than ${MAX_PATH_ELEMENTS} elements.`);
  if (rules.forWrite && isReservedName(partition.namespaceId)) {
    throw invalidArgument(`The namespace "${partition.namespaceId}" is reserved.`);
  }
  path.forEach((element, index) => {
    const kind = element.kind ?? '';
    if (!kind) throw invalidArgument('A key path element must have a kind.');
    if (utf8Length(kind) > MAX_NAME_BYTES) throw invalidArgument(`The kind "${kind.slice(0, 40)}..." is longer than 1500 bytes.`);
    if (rules.forWrite && isReservedName(kind)) throw invalidArgument(`The key path element kind "${kind}" is reserved.`);
    const last = index === path.length - 1;
    if (!isElementComplete(element)) {
      if (!(last && rules.allowIncompleteLast)) throw invalidArgument('The key path element must not be incomplete.');
      return;
    }
    if (hasId(element)) {
      if (BigInt(element.id ?? '0') === 0n) throw invalidArgument('A key path element id must not be 0.');
    } else {
      const name = element.name ?? '';
      if (!name) throw invalidArgument('A key path element name must not be empty.');
      if (utf8Length(name) > MAX_NAME_BYTES) throw invalidArgument('A key name is longer than 1500 bytes.');
      if (rules.forWrite && isReservedName(name)) throw invalidArgument(`The key path element name "${name}" is reserved.`);
    }
  });
  const canonical = canonicalKey(path, partition);
  if (keyStorageSize(canonical, partition.namespaceId) > MAX_KEY_BYTES) {
    throw invalidArgument(`The key is larger than ${MAX_KEY_BYTES} bytes.`);
  }
  return canonical;
}

/** The key as the service returns it: full partition, and each element's id or name only. */
export function canonicalKey(path: PathElement[], partition: Partition): Key {
  const partitionId: PartitionId = { projectId: partition.projectId };
  if (partition.databaseId) partitionId.databaseId = partition.databaseId;
  if (partition.namespaceId) partitionId.namespaceId = partition.namespaceId;
  return {
    partitionId,
    path: path.map((element) => {
      if (hasId(element)) return { kind: element.kind, id: element.id };
      if (hasName(element)) return { kind: element.kind, name: element.name };
      return { kind: element.kind };
    }),
  };
}

export function withLastId(key: Key, id: string): Key {
  const path = [...(key.path ?? [])];
  path[path.length - 1] = { kind: path[path.length - 1].kind, id };
  return { ...key, path };
}
