/**
 * What the stores of one datastoreStores() call share: the client, the namespace and kind names,
 * key and read helpers, and error mapping.
 */
import type { Datastore, Key, Query, Transaction } from '@google-cloud/datastore';
import { rethrownAs } from '../../src/core/errors.js';
import { toStoreError } from './errors.js';
import type { KindNames } from './kinds.js';

/** Keys per Lookup: Datastore answers at most 1,000. */
const LOOKUP_KEYS = 1000;

/** An entity's properties as the client hands them over (its key sits under datastore.KEY). */
export type EntityData = Record<string, unknown>;

/** A mutation in the shape the client's save/insert/upsert take. */
export interface EntityWrite {
  key: Key;
  data: EntityData;
  excludeFromIndexes?: string[];
}

/** Where reads may come from: the client itself, or a transaction (its reads join it). */
export type Reader = Pick<Datastore, 'get'> | Pick<Transaction, 'get'>;

/**
 * Adds a property filter (ANDed with the others). Through the query's plain `filters` list, not
 * the client's PropertyFilter class: importing that class would load the library from this
 * package, and the client checks filter objects with instanceof, which fails across two copies.
 */
export function where(query: Query, name: string, op: Query['filters'][number]['op'], val: unknown): Query {
  query.filters.push({ name, op, val });
  return query;
}

/** A stable string for a key (kind and identifier of every path element). */
export function keyString(key: Key): string {
  const parts: string[] = [];
  for (let k: Key | undefined = key; k; k = k.parent) parts.unshift(`${k.kind}\u0000${k.id ?? ''}\u0000${k.name ?? ''}`);
  return parts.join('\u0001');
}

export class AdapterContext {
  constructor(
    readonly datastore: Datastore,
    readonly namespace: string | undefined,
    readonly kinds: KindNames,
    readonly now: () => number,
  ) {}

  key(kind: string, name: string): Key {
    return this.datastore.key({ namespace: this.namespace, path: [kind, name] });
  }

  childKey(parent: Key, kind: string, idOrName: string | number): Key {
    return this.datastore.key({ namespace: this.namespace, path: [...parent.path, kind, idOrName] });
  }

  keyOf(entity: EntityData): Key {
    return (entity as Record<symbol, Key>)[this.datastore.KEY]!;
  }

  query(kind: string): Query {
    // An empty namespace means the default one.
    return this.datastore.createQuery(this.namespace ?? '', kind);
  }

  /** Lookup that answers in the order asked, undefined for missing entities; LOOKUP_KEYS keys per call. */
  async read(reader: Reader, keys: readonly Key[]): Promise<Array<EntityData | undefined>> {
    const found: EntityData[] = [];
    for (let i = 0; i < keys.length; i += LOOKUP_KEYS) found.push(...((await reader.get(keys.slice(i, i + LOOKUP_KEYS))) as [EntityData[]])[0]);
    const byKey = new Map(found.map((entity) => [keyString(this.keyOf(entity)), entity]));
    return keys.map((key) => byKey.get(keyString(key)));
  }

  async runQuery(query: Query): Promise<EntityData[]> {
    const [entities] = (await this.datastore.runQuery(query)) as [EntityData[], unknown];
    return entities;
  }

  describe(): string {
    const { servicePath, port } = this.datastore.options as { servicePath?: string; port?: number };
    const where = `${servicePath ?? 'datastore.googleapis.com'}${port ? `:${port}` : ''}`;
    return `Datastore at ${where}${this.namespace ? ` (namespace "${this.namespace}")` : ''}`;
  }

  /** Run a backend call; failures to reach Datastore become STORE_UNAVAILABLE. */
  guard<T>(action: string, work: () => Promise<T>): Promise<T> {
    return rethrownAs(work, (error) => this.storeError(action, error));
  }

  storeError(action: string, error: unknown): unknown {
    return toStoreError(this.describe(), action, error);
  }
}
