// The documents, in memory, with enough history to read them as they were at an earlier time
// (read_time, read-only transactions). Versions older than the retention window are dropped.
import type { Micros } from './clock.js';
import type { Fields } from './values.js';

export interface StoredDocument {
  readonly name: string;
  readonly fields: Fields;
  readonly createTime: Micros;
  readonly updateTime: Micros;
}

interface Version {
  readonly time: Micros;
  /** null: the document was deleted at `time`. */
  readonly document: StoredDocument | null;
}

/** Firestore serves read_time up to an hour back (without point-in-time recovery). */
const RETENTION_MICROS = 60 * 60 * 1_000_000;

export class DocumentStore {
  private readonly histories = new Map<string, Version[]>();
  /** Names by the collection path they sit in (the name up to its last "/"), so a query reads its collection only. */
  private readonly byCollection = new Map<string, Set<string>>();

  /** The document now, or at `readTime` when given. */
  get(name: string, readTime?: Micros): StoredDocument | null {
    const history = this.histories.get(name);
    if (!history) return null;
    if (readTime === undefined) return history[history.length - 1]!.document;
    for (let i = history.length - 1; i >= 0; i--) {
      if (history[i]!.time <= readTime) return history[i]!.document;
    }
    return null;
  }

  /** Every document that exists (now, or at `readTime`), or only those of one collection path. */
  *documents(readTime?: Micros, collectionPath?: string): IterableIterator<StoredDocument> {
    const names = collectionPath === undefined ? this.histories.keys() : (this.byCollection.get(collectionPath) ?? []);
    for (const name of names) {
      const document = this.get(name, readTime);
      if (document) yield document;
    }
  }

  /** Records the document's new state (null: deleted) as of `time`. */
  put(name: string, document: StoredDocument | null, time: Micros): void {
    const history = this.histories.get(name) ?? [];
    history.push({ time, document });
    // Keep the newest version older than the window: it is what reads inside the window see.
    const cutoff = time - RETENTION_MICROS;
    while (history.length > 1 && history[1]!.time <= cutoff) history.shift();
    if (history.length === 1) {
      const collection = name.slice(0, name.lastIndexOf('/'));
      let names = this.byCollection.get(collection);
      if (!names) this.byCollection.set(collection, (names = new Set()));
      names.add(name);
    }
    this.histories.set(name, history);
  }

  clear(): void {
    this.histories.clear();
    this.byCollection.clear();
  }
}
