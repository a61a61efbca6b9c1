/**
 * The StateStore on Datastore. Every compare-and-set (reservation, execution guard, settle,
 * transition, delete) reads and writes in one transaction, retried on ABORTED by
 * AdapterContext.transact. Retention: an expired record reads as absent; sweep.ts removes it.
 */
import { canTransition, isFinished, MAX_HISTORY, type TaskRecord, type TaskStatus } from '../../src/core/records.js';
import type { AcquireLeaseInput, CreateTaskResult, LeaseOutcome, OutboxEntry, SettleInput, StateStore, TaskPage, TaskQuery } from '../../src/core/stores.js';
import { commitWith, readOnly, where, type AdapterContext } from './context.js';
import { GRPC, grpcCode } from './errors.js';
import { listTasks } from './listing.js';
import { outboxKey, outboxWrite, parseOutbox } from './outbox.js';
import { readRecord, recordWrite, referenceHolder, referenceKey, stageCreate, taskKey } from './records.js';

type Patch = Parameters<StateStore['transition']>[3];
/** Patch fields a transition may clear by passing undefined; the others are required fields. */
const CLEARABLE: ReadonlySet<string> = new Set(['lastError', 'finishedAt', 'cloudTaskName', 'uniqueUntil']);

export class DatastoreStateStore implements StateStore {
  constructor(private readonly ctx: AdapterContext) {}

  async createTask(record: TaskRecord, now: number): Promise<CreateTaskResult> {
    if (record.reference === undefined) {
      // No reference to check: a plain insert (one round trip) refuses a taken id by itself.
      try {
        await this.ctx.guard('create a task record', () => this.ctx.datastore.insert(recordWrite(this.ctx, record)));
        return { created: true };
      } catch (error) {
        // Taken, perhaps by an expired record the sweep has not removed yet: decide in a transaction.
        if (grpcCode(error) !== GRPC.ALREADY_EXISTS) throw error;
      }
    }
    return this.ctx.transact<CreateTaskResult>('create a task record', async (tx) => {
      const result = await stageCreate(this.ctx, tx, record, now);
      return result.created ? commitWith(result) : readOnly(result);
    });
  }

  getTask(id: string): Promise<TaskRecord | undefined> {
    return this.ctx.guard('read a task record', () => readRecord(this.ctx, this.ctx.datastore, id));
  }

  findByReference(reference: string): Promise<TaskRecord | undefined> {
    return this.ctx.guard('read a task reference', () => referenceHolder(this.ctx, this.ctx.datastore, reference));
  }

  acquireLease(id: string, input: AcquireLeaseInput): Promise<LeaseOutcome> {
    return this.ctx.transact('acquire a task lease', async (tx) => {
      const record = await readRecord(this.ctx, tx, id);
      if (!record) return readOnly<LeaseOutcome>({ kind: 'missing' });
      if (isFinished(record.status)) return readOnly<LeaseOutcome>({ kind: 'finished', record });
      // The same caller asking again (its first reply was lost): it already holds the lease.
      if (record.status === 'running' && record.leaseOwner === input.owner) return readOnly<LeaseOutcome>({ kind: 'acquired', record });
      if (record.status === 'running' && (record.leaseUntil ?? 0) > input.now) return readOnly<LeaseOutcome>({ kind: 'busy', record });
      const next: TaskRecord = {
        ...record,
        status: 'running',
        leaseOwner: input.owner,
        leaseUntil: input.now + input.leaseMs,
        attempts: record.attempts + 1,
        executionCount: input.executionCount,
        startedAt: record.startedAt ?? input.now,
        updatedAt: input.now,
        version: record.version + 1,
      };
      tx.upsert(recordWrite(this.ctx, next));
      return commitWith<LeaseOutcome>({ kind: 'acquired', record: next });
    });
  }

  settle(id: string, input: SettleInput): Promise<TaskRecord | undefined> {
    return this.ctx.transact('settle a task', async (tx) => {
      const record = await readRecord(this.ctx, tx, id);
      if (!record || record.status !== 'running' || record.leaseOwner !== input.owner) return readOnly(undefined);
      const { leaseOwner: _owner, leaseUntil: _until, ...rest } = record;
      const next: TaskRecord = {
        ...rest,
        status: input.status,
        durationMs: input.attempt.durationMs,
        updatedAt: input.now,
        expiresAt: input.expiresAt,
        history: [...record.history, input.attempt].slice(-MAX_HISTORY),
        version: record.version + 1,
        ...(input.error ? { lastError: input.error } : {}),
        // A finished holder stops holding its reference: the reservation checks the holder's status.
        ...(isFinished(input.status) ? { finishedAt: input.now } : {}),
      };
      tx.upsert(recordWrite(this.ctx, next));
      return commitWith<TaskRecord | undefined>(next);
    });
  }

  async transition(id: string, from: readonly TaskStatus[], to: TaskStatus, patch: Patch, now: number): Promise<TaskRecord | undefined> {
    if (!from.some((status) => canTransition(status, to))) return undefined;
    return this.ctx.transact('change a task status', async (tx) => {
      const record = await readRecord(this.ctx, tx, id);
      if (!record || !from.includes(record.status) || !canTransition(record.status, to)) return readOnly(undefined);
      const next: Record<string, unknown> = { ...record };
      for (const [name, value] of Object.entries(patch)) {
        if (value !== undefined) next[name] = value;
        else if (CLEARABLE.has(name)) delete next[name];
      }
      Object.assign(next, { status: to, updatedAt: now, version: record.version + 1 });
      if (to !== 'running') {
        delete next.leaseOwner;
        delete next.leaseUntil;
      }
      if (isFinished(to)) next.finishedAt ??= now;
      const moved = next as unknown as TaskRecord;
      tx.upsert(recordWrite(this.ctx, moved));
      return commitWith<TaskRecord | undefined>(moved);
    });
  }

  listTasks(query: TaskQuery): Promise<TaskPage> {
    return this.ctx.guard('list task records', () => listTasks(this.ctx, query));
  }

  deleteTask(id: string): Promise<void> {
    return this.ctx.transact('delete a task record', async (tx) => {
      const [entity] = await this.ctx.read(tx, [taskKey(this.ctx, id)]);
      if (!entity) return readOnly(undefined);
      const reference = entity.reference;
      if (typeof reference === 'string') {
        const key = referenceKey(this.ctx, reference);
        const [claim] = await this.ctx.read(tx, [key]);
        if (claim?.taskId === id) tx.delete(key);
      }
      tx.delete(taskKey(this.ctx, id));
      return commitWith(undefined);
    });
  }

  async addOutbox(entry: OutboxEntry): Promise<void> {
    await this.ctx.guard('write an outbox entry', () => this.ctx.datastore.upsert(outboxWrite(this.ctx, entry)));
  }

  async listOutbox(createdBefore: number, limit: number): Promise<OutboxEntry[]> {
    if (limit <= 0) return [];
    return this.ctx.guard('list outbox entries', async () => {
      const q = where(this.ctx.query(this.ctx.kinds.outbox), 'createdAt', '<', createdBefore).order('createdAt').limit(limit);
      return (await this.ctx.runQuery(q)).map(parseOutbox);
    });
  }

  async removeOutbox(taskId: string): Promise<void> {
    await this.ctx.guard('remove an outbox entry', () => this.ctx.datastore.delete(outboxKey(this.ctx, taskId)));
  }
}
