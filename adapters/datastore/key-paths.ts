/**
 * Datastore keys as plain data, so that key ranges can travel inside shard tasks (the codec knows
 * nothing of the client's Key class), and compared in Datastore's own key order.
 */
import type { Datastore, Key } from '@google-cloud/datastore';

/** A key's path from the root; a numeric id is kept as a string (int64). */
export type KeyPath = ReadonlyArray<{ readonly kind: string; readonly id?: string; readonly name?: string }>;

export function toKeyPath(key: Key): KeyPath {
  const path: Array<{ kind: string; id?: string; name?: string }> = [];
  for (let k: Key | undefined = key; k; k = k.parent) {
    path.unshift({ kind: k.kind, ...(k.id !== undefined ? { id: String(k.id) } : {}), ...(k.name !== undefined ? { name: k.name } : {}) });
  }
  return path;
}

export function fromKeyPath(datastore: Datastore, namespace: string | undefined, path: KeyPath): Key {
  return datastore.key({
    namespace,
    path: path.flatMap((element) => [element.kind, element.name ?? datastore.int(element.id ?? '0')]),
  });
}

const utf8Compare = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/**
 * Datastore's key order: element by element from the root; within an element the kind (UTF-8
 * bytes), then numeric ids before names, ids by value and names by UTF-8 bytes; an ancestor
 * comes before its descendants.
 */
export function compareKeyPaths(a: KeyPath, b: KeyPath): number {
  for (let i = 0; i < Math.min(a.length, b.length); i += 1) {
    const x = a[i]!;
    const y = b[i]!;
    const byKind = utf8Compare(x.kind, y.kind);
    if (byKind !== 0) return byKind;
    if (x.id !== undefined && y.id !== undefined) {
      const [p, q] = [BigInt(x.id), BigInt(y.id)];
      if (p !== q) return p < q ? -1 : 1;
    } else if (x.id !== undefined || y.id !== undefined) {
      return x.id !== undefined ? -1 : 1;
    } else {
      const byName = utf8Compare(x.name ?? '', y.name ?? '');
      if (byName !== 0) return byName;
    }
  }
  return a.length - b.length;
}

/** The identifier of a key's last element: its name, or its numeric id as a string. */
export function keyIdentifier(path: KeyPath): string {
  const last = path[path.length - 1];
  return last?.name ?? last?.id ?? '';
}
