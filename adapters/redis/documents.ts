/**
 * The storage primitives of src/core/documents.ts on Redis: each document a hash (keys.ts), read
 * in one round trip, written by one script (lua/commit.lua) that checks every expected version
 * and applies all writes or none, with each document's PEXPIREAT and the listing indexes.
 *
 * The adapter decides which index entries a value needs (opsOf); the script only compares each
 * document's status and expiresAt before the write to know which of them to apply. On a single
 * node the indexes change in the same script, exactly. On Cluster they live in another slot
 * ({idx}): the script returns the state before, and one pipeline to the index node follows (a
 * second round trip, after the commit, for task and iteration writes). Either way a listing
 * re-reads every record it returns and drops entries whose record is gone or elsewhere.
 *
 * Records expire on their own (PEXPIREAT), silently; each also has an entry in the expiry index
 * (scored by its deadline) naming its index entries, so sweep() can remove them afterwards.
 */
import { decodeCursor, pageLimit, pageOf } from '../../src/core/cursor.js';
import type { DocumentKey, DocumentKind, DocumentStore, DocumentWrite, IterationHeader, Versioned } from '../../src/core/documents.js';
import { CloudDeferError } from '../../src/core/errors.js';
import { TASK_STATUSES, type TaskRecord } from '../../src/core/records.js';
import type { OutboxEntry, TaskPage, TaskQuery } from '../../src/core/stores.js';
import { guarded } from './errors.js';
import { hashSlot, idOfMember, indexMember, type KeyLayout, newTaskId, tagOfId } from './keys.js';
import { type RedisClient, type ScriptArg, scriptCommand } from './scripts.js';

/** An index (or payload) change of a commit, applied when `cond` holds (see lua/commit.lua). */
export interface CommitOp {
  write: number;
  cond: string;
  command: 'a' | 'r' | 'p';
  key: string;
  score: number | string;
  member: string | Buffer;
  /** In the documents' slot: always inside the script, also on Cluster. */
  local?: boolean;
}

/** A commit ready to send, as a script call or into a MULTI; `later` is Cluster's index pipeline. */
export interface PreparedCommit {
  keys: string[];
  args: ScriptArg[];
  after: Array<{ status: string; expiresAt: string }>;
  later: CommitOp[];
}

type Indexed = Pick<TaskRecord, 'queue' | 'taskName' | 'reference' | 'iterationId'>;
type Verdict = 'match' | 'skip' | 'stale';

/** The indexes a record is listed in besides its status's; their values never change. */
const fixedIndexes = (r: Indexed): string[] => [
  'all',
  `queue:${r.queue}`,
  `task:${r.taskName}`,
  ...(r.reference ? [`ref:${r.reference}`] : []),
  ...(r.iterationId ? [`iteration:${r.iterationId}`] : []),
];
const indexesOf = (r: TaskRecord): string[] => [...fixedIndexes(r), `status:${r.status}`];

/** The index names a query filters by. */
function filtersOf(q: TaskQuery): string[] {
  const pairs: Array<[string, string | undefined]> = [
    ['ref', q.reference],
    ['iteration', q.iterationId],
    ['status', q.status],
    ['task', q.taskName],
    ['queue', q.queue],
  ];
  return pairs.flatMap(([name, value]) => (value ? [`${name}:${value}`] : []));
}

/** PEXPIREAT wants whole milliseconds; never expire a document before its time. */
function deadline(expiresAt: number): string {
  if (!Number.isFinite(expiresAt)) throw new CloudDeferError('INVALID_OPTION', `expiresAt must be a finite epoch-milliseconds time (got ${expiresAt}).`);
  return String(Math.ceil(expiresAt));
}

/** What the sweeper needs once the record itself has expired: [createdAt, id, queue, taskName, reference, iterationId]. */
const sweepEntry = (r: TaskRecord): string => JSON.stringify([r.createdAt, r.id, r.queue, r.taskName, r.reference || null, r.iterationId || null]);

function parseSweepEntry(text: string): { createdAt: number; id: string; indexed: Indexed } | undefined {
  try {
    const [createdAt, id, queue, taskName, reference, iterationId] = JSON.parse(text) as unknown[];
    if (typeof createdAt !== 'number' || typeof id !== 'string') return undefined;
    return { createdAt, id, indexed: { queue, taskName, reference: reference ?? undefined, iterationId: iterationId ?? undefined } as Indexed };
  } catch {
    return undefined; // not one of ours: dropped by the caller
  }
}

/** Throws the first error of a pipeline's results. */
function unwrap(results: Array<[Error | null, unknown]> | null): unknown[] {
  return (results ?? []).map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}

export class RedisDocuments implements DocumentStore {
  readonly kind = 'redis';
  readonly newTaskId = newTaskId;
  private readonly commitScript: ReturnType<typeof scriptCommand>;

  constructor(
    readonly client: RedisClient,
    readonly layout: KeyLayout,
  ) {
    this.commitScript = scriptCommand(client, 'commit');
  }

  guard<T>(action: string, work: () => Promise<T>): Promise<T> {
    return guarded(this.client, action, work);
  }

  read(keys: readonly DocumentKey[]): Promise<Array<Versioned<unknown> | undefined>> {
    return this.guard('read documents', () => this.readKeys(keys.map((k) => this.layout.doc(k.kind, k.id))));
  }

  /** One round trip: a pipeline on a single node; on Cluster the commands go out together, one per key. */
  private async readKeys(keys: string[]): Promise<Array<Versioned<unknown> | undefined>> {
    let replies: Array<Array<string | null>>;
    if (keys.length <= 1) replies = keys.length ? [await this.client.hmget(keys[0]!, 'v', 'd')] : [];
    else if (this.layout.cluster) replies = await Promise.all(keys.map((key) => this.client.hmget(key, 'v', 'd')));
    else {
      const pipeline = this.client.pipeline();
      for (const key of keys) pipeline.hmget(key, 'v', 'd');
      replies = unwrap(await pipeline.exec()) as Array<Array<string | null>>;
    }
    return replies.map(([v, d]) => (v == null || d == null ? undefined : { version: Number(v), value: JSON.parse(d) as unknown }));
  }

  commit(writes: readonly DocumentWrite[]): Promise<boolean> {
    return this.guard('commit documents', async () => {
      const prepared = this.prepare(writes);
      await this.registerOutboxSlots(writes);
      return this.finish(prepared, await this.commitScript.call(this.client, prepared.keys.length, ...prepared.keys, ...prepared.args));
    });
  }

  /** Cluster: the outbox sweeper lists the per-slot outbox indexes named here, so this goes first. */
  async registerOutboxSlots(writes: readonly DocumentWrite[]): Promise<void> {
    const tags = writes.flatMap((w) => (this.layout.cluster && w.kind === 'outbox' && w.value ? [tagOfId(w.id)] : []));
    if (tags.length) await this.client.sadd(this.layout.index('outbox-slots'), ...tags);
  }

  /** The script's keys and arguments for `writes`, plus `extra` ops in their slot (a staged payload). */
  prepare(writes: readonly DocumentWrite[], extra: CommitOp[] = []): PreparedCommit {
    const keys = writes.map((w) => this.layout.doc(w.kind, w.id));
    if (this.layout.cluster && keys.some((key) => hashSlot(key) !== hashSlot(keys[0]!))) {
      throw new CloudDeferError(
        'INVALID_OPTION',
        `On Redis Cluster the documents of one change must share a hash slot (${keys.join(', ')}): take task ids from stores.state.newTaskId(reference) and name a stored payload after its task id.`,
      );
    }
    const args: ScriptArg[] = [writes.length];
    const after: PreparedCommit['after'] = [];
    const ops = [...extra];
    writes.forEach((w, i) => {
      const expiresAt = w.expiresAt === undefined ? '' : deadline(w.expiresAt);
      const status = w.kind === 'task' && w.value ? w.value.status : '';
      args.push(w.expect === 'absent' ? '0' : String(w.expect), w.value === null ? '' : JSON.stringify(w.value), expiresAt, status);
      after.push({ status, expiresAt });
      ops.push(...this.opsOf(i + 1, w, expiresAt));
    });
    const now = this.layout.cluster ? ops.filter((op) => op.local) : ops;
    for (const op of now) args.push(op.write, op.cond, op.command, op.score, op.member);
    return { keys: [...keys, ...now.map((op) => op.key)], args, after, later: this.layout.cluster ? ops.filter((op) => !op.local) : [] };
  }

  /** Whether the script applied the commit; on Cluster, then writes the index entries that followed from it. */
  async finish(prepared: PreparedCommit, reply: unknown): Promise<boolean> {
    const fields = reply as Array<string | number>;
    if (Number(fields[0]) !== 1) return false;
    const due = prepared.later.filter((op) => {
      const [status, expiresAt, absent] = fields.slice(op.write * 3 - 2, op.write * 3 + 1).map(String);
      const next = prepared.after[op.write - 1]!;
      if (op.cond === '*') return true;
      if (op.cond === 'c') return absent === '1';
      if (op.cond === 's') return status !== next.status;
      if (op.cond === 'e') return expiresAt !== next.expiresAt;
      return status === op.cond && next.status !== op.cond;
    });
    if (due.length) {
      const pipeline = this.client.pipeline();
      for (const op of due) op.command === 'a' ? pipeline.zadd(op.key, op.score, op.member) : pipeline.zrem(op.key, op.member);
      unwrap(await pipeline.exec());
    }
    return true;
  }

  /** The index entries a written value needs, each under the condition that makes it change. */
  private opsOf(write: number, w: DocumentWrite, expiresAt: string): CommitOp[] {
    if (w.kind === 'outbox') {
      const key = this.layout.outbox(this.layout.cluster ? tagOfId(w.id) : undefined);
      return [{ write, cond: '*', command: w.value ? 'a' : 'r', key, score: w.value?.createdAt ?? 0, member: w.id, local: true }];
    }
    if (w.kind === 'iteration' && w.value) {
      return [{ write, cond: 'c', command: 'a', key: this.layout.index('iterations'), score: 0, member: indexMember(w.value.createdAt, w.id) }];
    }
    // A deleted task's entries stay until a listing or the sweep finds its record gone.
    if (w.kind !== 'task' || !w.value) return [];
    const record = w.value;
    const member = indexMember(record.createdAt, record.id);
    const op = (cond: string, command: 'a' | 'r', name: string, score: number | string = 0, entry = member): CommitOp => ({
      write,
      cond,
      command,
      key: this.layout.index(name),
      score,
      member: entry,
    });
    // A new document was in no index; an expected version means it exists (so 'c' cannot hold).
    const created = w.expect === 'absent';
    return [
      ...(created ? fixedIndexes(record).map((name) => op('c', 'a', name)) : []),
      op('s', 'a', `status:${record.status}`),
      ...(created ? [] : TASK_STATUSES.filter((status) => status !== record.status).map((status) => op(status, 'r', `status:${status}`))),
      ...(expiresAt ? [op('e', 'a', 'expiry', expiresAt, sweepEntry(record))] : []),
    ];
  }

  listTasks(query: TaskQuery): Promise<TaskPage> {
    return this.guard('list task records', async () => {
      const filters = filtersOf(query);
      let name = filters[0] ?? 'all';
      if (filters.length > 1) {
        // The smallest index that covers one of the filters; the others are checked per record.
        const sizes = await Promise.all(filters.map((filter) => this.client.zcard(this.layout.index(filter))));
        name = filters[sizes.indexOf(Math.min(...sizes))]!;
      }
      return this.scan<TaskRecord>('task', name, query, (record) => {
        const names = indexesOf(record);
        if (name !== 'all' && !names.includes(name)) return 'stale';
        return filters.every((filter) => names.includes(filter)) ? 'match' : 'skip';
      });
    });
  }

  listIterations(query: { cursor?: string; limit?: number }): Promise<{ records: IterationHeader[]; nextCursor?: string }> {
    return this.guard('list iterations', () => this.scan<IterationHeader>('iteration', 'iterations', query, () => 'match'));
  }

  /**
   * Newest first through one index (ZRANGE BYLEX REV; a cursor is an exclusive bound, so pages
   * stay stable while records are added), reading each document back and judging it.
   */
  private async scan<T extends { createdAt: number; id: string }>(
    kind: DocumentKind,
    name: string,
    query: { cursor?: string; limit?: number },
    judge: (value: T) => Verdict,
  ): Promise<{ records: T[]; nextCursor?: string }> {
    const limit = pageLimit(query.limit);
    const after = query.cursor ? decodeCursor(query.cursor) : undefined;
    let upper = after ? `(${indexMember(after.createdAt, after.id)}` : '+';
    const matches: T[] = [];
    const stale: string[] = [];
    for (;;) {
      const want = Math.min(1000, Math.max(limit + 1 - matches.length, 100));
      const members = await this.client.zrange(this.layout.index(name), upper, '-', 'BYLEX', 'REV', 'LIMIT', 0, want);
      if (members.length === 0) break;
      const docs = await this.readKeys(members.map((member) => this.layout.doc(kind, idOfMember(member))));
      let examined = 0;
      for (const [i, member] of members.entries()) {
        examined = i + 1;
        const value = docs[i]?.value as T | undefined;
        const verdict = value && indexMember(value.createdAt, value.id) === member ? judge(value) : 'stale';
        if (verdict === 'stale') stale.push(member);
        else if (verdict === 'match' && matches.push(value!) > limit) break;
      }
      upper = `(${members[examined - 1]!}`;
      if (matches.length > limit || members.length < want) break;
    }
    if (stale.length > 0) await this.prune(kind, name, stale, judge);
    return pageOf(matches, limit);
  }

  /**
   * Drop entries whose document is gone or elsewhere. A writer may move it back between our read
   * and our ZREM, so each is read again and put back if it belongs; a task found in the wrong
   * status index goes to its own (on Cluster a writer that died before its index pipeline leaves that).
   */
  private async prune<T extends { createdAt: number; id: string }>(
    kind: DocumentKind,
    name: string,
    members: string[],
    judge: (value: T) => Verdict,
  ): Promise<void> {
    const key = this.layout.index(name);
    await this.client.zrem(key, ...members);
    const docs = await this.readKeys(members.map((member) => this.layout.doc(kind, idOfMember(member))));
    await Promise.all(
      docs.map((doc, i) => {
        const value = doc?.value as T | undefined;
        if (!value || indexMember(value.createdAt, value.id) !== members[i]) return undefined;
        if (judge(value) !== 'stale') return this.client.zadd(key, 0, members[i]!);
        const status = (value as Partial<TaskRecord>).status;
        return name.startsWith('status:') && status ? this.client.zadd(this.layout.index(`status:${status}`), 0, members[i]!) : undefined;
      }),
    );
  }

  listOutbox(createdBefore: number, limit: number): Promise<OutboxEntry[]> {
    return this.guard('list outbox entries', async () => {
      if (limit <= 0) return [];
      const tags: Array<string | undefined> = this.layout.cluster ? await this.client.smembers(this.layout.index('outbox-slots')) : [undefined];
      const perSlot = await Promise.all(
        tags.map(async (tag) => {
          const ids = await this.client.zrange(this.layout.outbox(tag), '-inf', `(${createdBefore}`, 'BYSCORE', 'LIMIT', 0, limit);
          return (await this.readKeys(ids.map((id) => this.layout.doc('outbox', id)))).flatMap((doc) => (doc ? [doc.value as OutboxEntry] : []));
        }),
      );
      const entries = perSlot.flat().sort((a, b) => a.createdAt - b.createdAt || (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0));
      return entries.slice(0, limit);
    });
  }

  /** Remove the index entries of up to `limit` records whose retention has passed; returns how many. */
  sweep(limit: number, now = Date.now()): Promise<number> {
    return this.guard('sweep expired index entries', async () => {
      const expiry = this.layout.index('expiry');
      const due = await this.client.zrange(expiry, '-inf', String(now), 'BYSCORE', 'LIMIT', 0, limit);
      const removed = await Promise.all(
        due.map(async (text) => {
          const entry = parseSweepEntry(text);
          const kept = entry ? Number(await this.client.pexpiretime(this.layout.doc('task', entry.id))) : -2;
          // Still kept: its retention moved and the expiry index missed it (Cluster). Catch up.
          if (kept > 0) await this.client.zadd(expiry, kept, text);
          if (kept !== -2) return 0;
          const pipeline = this.client.pipeline().zrem(expiry, text);
          if (entry) {
            const member = indexMember(entry.createdAt, entry.id);
            for (const name of [...fixedIndexes(entry.indexed), ...TASK_STATUSES.map((s) => `status:${s}`)]) pipeline.zrem(this.layout.index(name), member);
          }
          unwrap(await pipeline.exec());
          return entry ? 1 : 0;
        }),
      );
      return removed.reduce<number>((sum, n) => sum + n, 0);
    });
  }
}
