/**
 * Listing indexes. One sorted set per filter value (all, status, queue, task name, reference,
 * iteration) with members "<createdAt, 15 digits>:<id>" and score 0, read with ZRANGE BYLEX REV:
 * newest first, ties broken by id descending, exactly the order of src/core/cursor.ts, and a
 * cursor is an exclusive lexicographic bound, so pages stay stable while records are added.
 *
 * On a single node the scripts update these sets in the same atomic step as the record. On
 * Cluster they live in other slots, so the adapter writes them right after the script, from its
 * answer. Either way a listing re-reads every record it returns, checks it against the filter,
 * and drops entries whose record is gone (expired or deleted) or no longer belongs there.
 *
 * Records expire on their own (PEXPIREAT), silently. So that their index entries do not pile up,
 * each record also has an entry in the expiry index (score: its retention deadline) naming
 * everything needed to find its index entries once the record is gone; sweep() removes them.
 */
import { CloudDeferError } from '../../src/core/errors.js';
import { decodeCursor, encodeCursor } from '../../src/core/cursor.js';
import type { TaskRecord, TaskStatus } from '../../src/core/records.js';
import type { TaskPage, TaskQuery } from '../../src/core/stores.js';
import { fieldsToRecord, type RecordBookkeeping } from './codec.js';
import { indexMember, parseIndexMember, type IndexKind, type KeyLayout } from './keys.js';
import type { RedisClient } from './scripts.js';

/** PEXPIREAT wants whole milliseconds; never expire a record before its time. */
export function expiryDeadline(expiresAt: number): number {
  if (!Number.isFinite(expiresAt)) {
    throw new CloudDeferError('INVALID_OPTION', `expiresAt must be a finite epoch-milliseconds time (got ${expiresAt}).`);
  }
  return Math.ceil(expiresAt);
}

/** What the sweeper needs once the record itself has expired. */
type SweepEntry = [createdAt: number, id: string, queue: string, taskName: string, reference: string | null, iterationId: string | null];

interface ScannedIndex {
  kind: IndexKind;
  value?: string;
  key: string;
}

const MAX_LIMIT = 1000;

export class Indexes {
  constructor(
    private readonly client: RedisClient,
    private readonly layout: KeyLayout,
  ) {}

  member(record: Pick<TaskRecord, 'createdAt' | 'id'>): string {
    return indexMember(record.createdAt, record.id);
  }

  sweepMember(record: TaskRecord): string {
    const entry: SweepEntry = [record.createdAt, record.id, record.queue, record.taskName, record.reference || null, record.iterationId || null];
    return JSON.stringify(entry);
  }

  /** The indexes a record is listed in, its status index aside (their values never change). */
  private fixedIndexKeys(record: Pick<TaskRecord, 'queue' | 'taskName' | 'reference' | 'iterationId'>): string[] {
    const keys = [this.layout.index('all'), this.layout.index('queue', record.queue), this.layout.index('task', record.taskName)];
    if (record.reference) keys.push(this.layout.index('ref', record.reference));
    if (record.iterationId) keys.push(this.layout.index('iteration', record.iterationId));
    return keys;
  }

  /** Index keys createTask's script fills on a single node: expiry, status, then the fixed ones. */
  createScriptKeys(record: TaskRecord): string[] {
    return [this.layout.expiryIndex(), this.layout.index('status', record.status), ...this.fixedIndexKeys(record)];
  }

  /** Index keys the status-changing scripts get on a single node (lua/includes/indexes.lua). */
  updateScriptKeys(): string[] {
    return [this.layout.expiryIndex(), ...this.layout.statusIndexes()];
  }

  // --- Cluster: index writes that follow a script -------------------------------------------

  async added(record: TaskRecord): Promise<void> {
    const member = this.member(record);
    const keys = [this.layout.index('status', record.status), ...this.fixedIndexKeys(record)];
    await Promise.all([
      ...keys.map((key) => this.client.zadd(key, 0, member)),
      this.client.zadd(this.layout.expiryIndex(), expiryDeadline(record.expiresAt), this.sweepMember(record)),
    ]);
  }

  async changed(record: TaskRecord, bookkeeping: RecordBookkeeping, previousStatus: TaskStatus, retentionChanged: boolean): Promise<void> {
    const member = this.member(record);
    const writes: Array<Promise<unknown>> = [];
    if (previousStatus !== record.status) {
      writes.push(this.client.zrem(this.layout.index('status', previousStatus), member));
      writes.push(this.client.zadd(this.layout.index('status', record.status), 0, member));
    }
    if (retentionChanged) {
      writes.push(this.client.zadd(this.layout.expiryIndex(), expiryDeadline(record.expiresAt), bookkeeping.sweepMember ?? this.sweepMember(record)));
    }
    await Promise.all(writes);
  }

  async removed(record: TaskRecord, bookkeeping: RecordBookkeeping): Promise<void> {
    const member = this.member(record);
    await Promise.all([
      ...[...this.fixedIndexKeys(record), ...this.layout.statusIndexes()].map((key) => this.client.zrem(key, member)),
      this.client.zrem(this.layout.expiryIndex(), bookkeeping.sweepMember ?? this.sweepMember(record)),
    ]);
  }

  // --- Listing -------------------------------------------------------------------------------

  async readRecord(id: string): Promise<TaskRecord | undefined> {
    return fieldsToRecord(await this.client.hgetall(this.layout.task(id)))?.record;
  }

  async list(query: TaskQuery): Promise<TaskPage> {
    const limit = Math.min(Math.max(query.limit ?? 50, 1), MAX_LIMIT);
    const after = query.cursor ? decodeCursor(query.cursor) : undefined;
    const scanned = await this.pickIndex(query);
    let upper = after ? `(${indexMember(after.createdAt, after.id)}` : '+';
    const matches: TaskRecord[] = [];
    const suspects: string[] = [];

    for (;;) {
      const want = Math.min(MAX_LIMIT, Math.max(limit + 1 - matches.length, 100));
      const members = await this.client.zrange(scanned.key, upper, '-', 'BYLEX', 'REV', 'LIMIT', 0, want);
      if (members.length === 0) break;
      const records = await Promise.all(members.map((member) => this.readRecord(parseIndexMember(member).id)));
      let examined = 0;
      for (const [i, member] of members.entries()) {
        examined = i + 1;
        const record = records[i];
        if (!record || !this.belongs(record, scanned) || this.member(record) !== member) {
          suspects.push(member);
          continue;
        }
        if (!matchesQuery(record, query)) continue;
        matches.push(record);
        if (matches.length > limit) break;
      }
      upper = `(${members[examined - 1]!}`;
      if (matches.length > limit || members.length < want) break;
    }

    if (suspects.length > 0) await this.prune(scanned, suspects);
    const records = matches.slice(0, limit);
    const last = records[records.length - 1];
    return { records, nextCursor: matches.length > limit && last ? encodeCursor(last) : undefined };
  }

  /** The smallest index that covers one of the filters; the others are checked per record. */
  private async pickIndex(query: TaskQuery): Promise<ScannedIndex> {
    const candidates: ScannedIndex[] = [];
    const add = (kind: IndexKind, value: string | undefined): void => {
      if (value) candidates.push({ kind, value, key: this.layout.index(kind, value) });
    };
    add('ref', query.reference);
    add('iteration', query.iterationId);
    add('status', query.status);
    add('task', query.taskName);
    add('queue', query.queue);
    if (candidates.length === 0) return { kind: 'all', key: this.layout.index('all') };
    if (candidates.length === 1) return candidates[0]!;
    const sizes = await Promise.all(candidates.map((candidate) => this.client.zcard(candidate.key)));
    let best = 0;
    for (let i = 1; i < candidates.length; i += 1) if (Number(sizes[i]) < Number(sizes[best])) best = i;
    return candidates[best]!;
  }

  private belongs(record: TaskRecord, index: ScannedIndex): boolean {
    switch (index.kind) {
      case 'all':
        return true;
      case 'status':
        return record.status === index.value;
      case 'queue':
        return record.queue === index.value;
      case 'task':
        return record.taskName === index.value;
      case 'ref':
        return record.reference === index.value;
      case 'iteration':
        return record.iterationId === index.value;
    }
  }

  /**
   * Drop entries whose record is gone or elsewhere. A writer may move the record back into this
   * index between our read and our ZREM, so each one is read again afterwards and put back if it
   * belongs; a record found in the wrong status index is also added to its own (on Cluster a
   * writer that died between its script and its index writes leaves that behind).
   */
  private async prune(index: ScannedIndex, members: readonly string[]): Promise<void> {
    await Promise.all(members.map((member) => this.client.zrem(index.key, member)));
    const records = await Promise.all(members.map((member) => this.readRecord(parseIndexMember(member).id)));
    const repairs: Array<Promise<unknown>> = [];
    for (const [i, record] of records.entries()) {
      const member = members[i]!;
      if (!record || this.member(record) !== member) continue;
      if (this.belongs(record, index)) repairs.push(this.client.zadd(index.key, 0, member));
      else if (index.kind === 'status') repairs.push(this.client.zadd(this.layout.index('status', record.status), 0, member));
    }
    await Promise.all(repairs);
  }

  // --- Sweeping ------------------------------------------------------------------------------

  /** Remove the index entries of up to `limit` records whose retention has passed. */
  async sweep(limit: number, now = Date.now()): Promise<number> {
    const expiryIndex = this.layout.expiryIndex();
    const due = await this.client.zrange(expiryIndex, '-inf', String(now), 'BYSCORE', 'LIMIT', 0, limit);
    const outcomes = await Promise.all(
      due.map(async (sweepMember) => {
        const entry = parseSweepEntry(sweepMember);
        if (!entry) {
          await this.client.zrem(expiryIndex, sweepMember);
          return 0;
        }
        const [createdAt, id, queue, taskName, reference, iterationId] = entry;
        const recordKey = this.layout.task(id);
        if (Number(await this.client.exists(recordKey)) > 0) {
          // Still kept: its retention moved and the expiry index missed it (Cluster). Catch up.
          const deadline = Number(await this.client.pexpiretime(recordKey));
          if (deadline > 0) await this.client.zadd(expiryIndex, deadline, sweepMember);
          return 0;
        }
        const member = indexMember(createdAt, id);
        const keys = [
          ...this.fixedIndexKeys({ queue, taskName, reference: reference ?? undefined, iterationId: iterationId ?? undefined }),
          ...this.layout.statusIndexes(),
        ];
        await Promise.all(keys.map((key) => this.client.zrem(key, member)));
        await this.client.zrem(expiryIndex, sweepMember);
        return 1;
      }),
    );
    return outcomes.reduce<number>((sum, n) => sum + n, 0);
  }
}

function parseSweepEntry(text: string): SweepEntry | undefined {
  try {
    const entry: unknown = JSON.parse(text);
    if (Array.isArray(entry) && entry.length === 6 && typeof entry[0] === 'number' && typeof entry[1] === 'string') return entry as SweepEntry;
  } catch {
    // Not one of ours: dropped by the caller.
  }
  return undefined;
}

export function matchesQuery(record: TaskRecord, query: TaskQuery): boolean {
  if (query.status && record.status !== query.status) return false;
  if (query.queue && record.queue !== query.queue) return false;
  if (query.taskName && record.taskName !== query.taskName) return false;
  if (query.reference && record.reference !== query.reference) return false;
  if (query.iterationId && record.iterationId !== query.iterationId) return false;
  return true;
}
