/**
 * What the stores of one datastoreStores() call share: the client, the namespace and kind names,
 * key and read helpers, error mapping, and the transaction runner that retries ABORTED.
 */
import type { Datastore, Key, Query, Transaction } from '@google-cloud/datastore';
import { isAborted, toStoreError } from './errors.js';
import type { KindNames } from './kinds.js';

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

export interface RetryPolicy {
  /** Attempts per transaction, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** What a transaction's work decided: its value, and whether the writes it staged must commit. */
export interface TxOutcome<T> {
  value: T;
  write: boolean;
}

export const commitWith = <T>(value: T): TxOutcome<T> => ({ value, write: true });
export const readOnly = <T>(value: T): TxOutcome<T> => ({ value, write: false });

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

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
    readonly retry: RetryPolicy,
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

  /** Lookup that answers in the order asked, undefined for missing entities. */
  async read(reader: Reader, keys: readonly Key[]): Promise<Array<EntityData | undefined>> {
    if (keys.length === 0) return [];
    const [found] = (await reader.get([...keys])) as [EntityData[]];
    const byKey = new Map(found.map((entity) => [keyString(this.keyOf(entity)), entity]));
    return keys.map((key) => byKey.get(keyString(key)));
  }

  async runQuery(query: Query): Promise<EntityData[]> {
    const [entities] = (await this.datastore.runQuery(query)) as [EntityData[], unknown];
    return entities;
  }

  describe(): string {
    const { servicePath, port } = this.datastore.options as { servicePath?: string; port?: number };
    const where = servicePath ? `${servicePath}${port ? `:${port}` : ''}` : (this.datastore.baseUrl_ ?? 'datastore.googleapis.com');
    return `Datastore at ${where}${this.namespace ? ` (namespace "${this.namespace}")` : ''}`;
  }

  /** Run a backend call; failures to reach Datastore become STORE_UNAVAILABLE. */
  async guard<T>(action: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw toStoreError(this.describe(), action, error);
    }
  }

  /**
   * Run `work` in a fresh transaction and commit what it staged, retrying the whole of it on
   * ABORTED with jittered exponential backoff: the Node client never retries a commit itself,
   * and under contention the first committer wins while the others abort.
   */
  transact<T>(action: string, work: (tx: Transaction) => Promise<TxOutcome<T>>): Promise<T> {
    return this.guard(action, async () => {
      for (let attempt = 1; ; attempt += 1) {
        // Reads begin the transaction lazily (Lookup with new_transaction): one round trip less.
        const tx = this.datastore.transaction();
        try {
          const outcome = await work(tx);
          if (outcome.write) await tx.commit();
          else void tx.rollback().catch(() => undefined); // frees locks on pessimistic databases
          return outcome.value;
        } catch (error) {
          // A failed commit has rolled back already; a failed read has not.
          void tx.rollback().catch(() => undefined);
          if (!isAborted(error) || attempt >= this.retry.attempts) throw error;
          const ceiling = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
          await sleep(Math.random() * ceiling);
        }
      }
    });
  }
}
