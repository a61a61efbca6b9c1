import { kindOf, partitionId, pathId, withLastId, type Partition } from './keys.js';
import type { Entity, Key } from './types.js';

/** One committed state of one key; `entity: null` records a delete. */
interface Revision {
  version: number;
  entity: Entity | null;
  createVersion: number;
}

/** An entity as some snapshot sees it. */
export interface LiveEntity {
  entity: Entity;
  version: number;
  createVersion: number;
}

export interface Change {
  before?: Entity;
  after?: Entity;
}

type KindTable = Map<string, Revision[]>;

const ID_BITS = 52n;

/**
 * Multi-version in-memory storage. Each key keeps its recent revisions so that a transaction
 * reads one consistent snapshot and commit can tell what changed since; revisions no snapshot
 * can see any more are dropped as keys are written.
 */
export class EntityStore {
  private readonly partitions = new Map<string, Map<string, KindTable>>();
  // Starts at the current time so versions and read times look like the service's.
  private clock = Date.now() * 1000;
  private allocations = 0n;
  private readonly reservedIds = new Set<string>();

  /** The version of the newest commit: a read at this version sees everything committed. */
  get currentVersion(): number {
    return this.clock;
  }

  /** Versions are commit times in microseconds, strictly increasing, as the service's are. */
  nextCommitVersion(): number {
    this.clock = Math.max(this.clock + 1, Date.now() * 1000);
    return this.clock;
  }

  get(partition: Partition, key: Key, atVersion: number): LiveEntity | undefined {
    const history = this.kindTable(partition, kindOf(key))?.get(pathId(key.path ?? []));
    return live(history && revisionAt(history, atVersion));
  }

  /** Version of the last commit that wrote or deleted the key; 0 if none is remembered. */
  lastChange(partition: Partition, key: Key): number {
    const history = this.kindTable(partition, kindOf(key))?.get(pathId(key.path ?? []));
    return history ? history[history.length - 1].version : 0;
  }

  *entities(partition: Partition, kind: string | undefined, atVersion: number): Generator<LiveEntity> {
    for (const table of this.tables(partition, kind)) {
      for (const history of table.values()) {
        const found = live(revisionAt(history, atVersion));
        if (found) yield found;
      }
    }
  }

  /** Keys written after `version`, with what a reader at `version` saw and what is there now. */
  *changesSince(partition: Partition, kind: string | undefined, version: number): Generator<Change> {
    for (const table of this.tables(partition, kind)) {
      for (const history of table.values()) {
        const last = history[history.length - 1];
        if (last.version <= version) continue;
        yield { before: revisionAt(history, version)?.entity ?? undefined, after: last.entity ?? undefined };
      }
    }
  }

  /**
   * Records a write (`entity`) or delete (`null`) at `version`. Revisions older than the newest
   * one visible at `oldestSnapshot` can no longer be read, so they go.
   */
  write(partition: Partition, key: Key, entity: Entity | null, version: number, oldestSnapshot: number): void {
    const table = this.kindTable(partition, kindOf(key), true);
    const id = pathId(key.path ?? []);
    const history = table.get(id) ?? [];
    const previous = live(history[history.length - 1]);
    history.push({ version, entity, createVersion: previous?.createVersion ?? version });
    let visible = 0;
    for (let i = 0; i < history.length; i++) if (history[i].version <= oldestSnapshot) visible = i;
    history.splice(0, visible);
    if (history.length === 1 && history[0].entity === null && history[0].version <= oldestSnapshot) table.delete(id);
    else table.set(id, history);
  }

  /**
   * Completes a key with a new id. Ids are scattered (the bits of a counter reversed), like the
   * service's, never handed out twice, and skip ids that are reserved or already in use.
   */
  allocateId(partition: Partition, key: Key): Key {
    for (;;) {
      this.allocations += 1n;
      const id = reverseBits(this.allocations).toString();
      const candidate = withLastId(key, id);
      if (this.reservedIds.has(id)) continue;
      if (this.kindTable(partition, kindOf(key))?.has(pathId(candidate.path ?? []))) continue;
      return candidate;
    }
  }

  reserveId(id: string): void {
    this.reservedIds.add(id);
  }

  clear(): void {
    this.partitions.clear();
    this.reservedIds.clear();
  }

  private tables(partition: Partition, kind: string | undefined): KindTable[] {
    const kinds = this.partitions.get(partitionId(partition));
    if (!kinds) return [];
    if (kind === undefined) return [...kinds.values()];
    const table = kinds.get(kind);
    return table ? [table] : [];
  }

  private kindTable(partition: Partition, kind: string, create: true): KindTable;
  private kindTable(partition: Partition, kind: string, create?: boolean): KindTable | undefined;
  private kindTable(partition: Partition, kind: string, create = false): KindTable | undefined {
    const id = partitionId(partition);
    let kinds = this.partitions.get(id);
    if (!kinds && create) this.partitions.set(id, (kinds = new Map()));
    let table = kinds?.get(kind);
    if (kinds && !table && create) kinds.set(kind, (table = new Map()));
    return table;
  }
}

function revisionAt(history: Revision[], version: number): Revision | undefined {
  for (let i = history.length - 1; i >= 0; i--) if (history[i].version <= version) return history[i];
  return undefined;
}

function live(revision: Revision | undefined): LiveEntity | undefined {
  if (!revision?.entity) return undefined;
  return { entity: revision.entity, version: revision.version, createVersion: revision.createVersion };
}

function reverseBits(counter: bigint): bigint {
  let reversed = 0n;
  for (let bit = 0n; bit < ID_BITS; bit++) if (counter & (1n << bit)) reversed |= 1n << (ID_BITS - 1n - bit);
  return reversed;
}
