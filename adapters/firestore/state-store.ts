/**
 * Task records and the outbox. Which mechanism makes each promise atomic:
 *
 * - createTask: a plain `create` (exists: false) when there is no reference; with one, a
 *   transaction that reads the claim and its holder and writes claim and record, so two
 *   defers with one reference cannot both take it. An id held by an expired record that TTL has
 *   not deleted yet is also taken over in a transaction.
 * - acquireLease, settle, transition: compare-and-set (read, decide as the memory store does,
 *   write with a lastUpdateTime precondition; decide again if another writer came first).
 * - deleteTask: a transaction over the record and its claim.
 */
import type { DocumentReference, Query, WriteBatch } from '@google-cloud/firestore';
import { CloudDeferError } from '../../src/core/errors.js';
import { canTransition, isFinished, MAX_HISTORY, type TaskRecord, type TaskStatus } from '../../src/core/records.js';
import type { AcquireLeaseInput, CreateTaskResult, LeaseOutcome, OutboxEntry, SettleInput, StateStore, TaskPage, TaskQuery } from '../../src/core/stores.js';
import { liveRecord, recordToDocument, recordUpdate } from './codec.js';
import { checkDocId } from './collections.js';
import { unchangedSince, type AdapterContext, type CasDecision } from './context.js';
import { GRPC, grpcCode } from './errors.js';
import { newestFirstPage } from './listing.js';
import { documentToOutbox, outboxDocument } from './outbox.js';
import { claimDocument, claimHolderId, followRetention, holds } from './references.js';

type Patch = Parameters<StateStore['transition']>[3];

/** Listing filters, each an equality on the record field of the same name. */
const FILTERS = ['status', 'queue', 'taskName', 'reference', 'iterationId'] as const;

export class FirestoreStateStore implements StateStore {
  constructor(private readonly ctx: AdapterContext) {}

  async createTask(record: TaskRecord, now: number): Promise<CreateTaskResult> {
    const ref = this.ctx.task(record.id);
    if (record.reference === undefined) {
      try {
        await this.ctx.guard('create a task record', () => ref.create(recordToDocument(this.ctx, record)));
        return { created: true };
      } catch (error) {
        // Taken, or held by an expired record TTL has not removed yet: the transaction decides.
        if (grpcCode(error) !== GRPC.ALREADY_EXISTS) throw error;
      }
    }
    return this.ctx.transact('create a task record', async (tx) => {
      const reference = record.reference;
      const [existing, claim] = await tx.getAll(ref, ...(reference !== undefined ? [this.ctx.claim(reference)] : []));
      if (liveRecord(this.ctx, existing!)) {
        throw new CloudDeferError('TASK_ALREADY_EXISTS', `A task record with id ${record.id} already exists.`);
      }
      if (reference !== undefined) {
        const holderId = claimHolderId(claim!);
        const holder = holderId && holderId !== record.id ? liveRecord(this.ctx, await tx.get(this.ctx.task(holderId))) : undefined;
        if (holds(holder, now)) return { created: false, existing: holder };
        tx.set(claim!.ref, claimDocument(this.ctx, { ...record, reference }));
      }
      tx.set(ref, recordToDocument(this.ctx, record));
      return { created: true };
    });
  }

  async getTask(id: string): Promise<TaskRecord | undefined> {
    return this.ctx.guard('read a task record', async () => liveRecord(this.ctx, await this.ctx.task(id).get()));
  }

  async findByReference(reference: string): Promise<TaskRecord | undefined> {
    if (!reference) return undefined;
    const holderId = await this.ctx.guard('read a task reference', async () => claimHolderId(await this.ctx.claim(reference).get()));
    return holderId === undefined ? undefined : this.getTask(holderId);
  }

  acquireLease(id: string, input: AcquireLeaseInput): Promise<LeaseOutcome> {
    return this.change<LeaseOutcome>('acquire a task lease', id, false, (record) => {
      if (!record) return { value: { kind: 'missing' } };
      if (isFinished(record.status)) return { value: { kind: 'finished', record } };
      // The same caller asking again (its first reply was lost): it already holds the lease.
      if (record.status === 'running' && record.leaseOwner === input.owner) return { value: { kind: 'acquired', record } };
      if (record.status === 'running' && (record.leaseUntil ?? 0) > input.now) return { value: { kind: 'busy', record } };
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
      return { value: { kind: 'acquired', record: next }, next };
    });
  }

  settle(id: string, input: SettleInput): Promise<TaskRecord | undefined> {
    return this.change('settle a task', id, true, (record) => {
      if (!record || record.status !== 'running' || record.leaseOwner !== input.owner) return { value: undefined };
      const history = [...record.history, input.attempt].slice(-MAX_HISTORY);
      const next: TaskRecord = {
        ...record,
        status: input.status,
        leaseOwner: undefined,
        leaseUntil: undefined,
        durationMs: input.attempt.durationMs,
        updatedAt: input.now,
        expiresAt: input.expiresAt,
        history,
        version: record.version + 1,
        ...(input.error ? { lastError: input.error } : {}),
        ...(isFinished(input.status) ? { finishedAt: input.now } : {}),
      };
      return { value: next, next };
    });
  }

  transition(id: string, from: readonly TaskStatus[], to: TaskStatus, patch: Patch, now: number): Promise<TaskRecord | undefined> {
    return this.change('change a task status', id, patch.expiresAt !== undefined, (record) => {
      if (!record || !from.includes(record.status) || !canTransition(record.status, to)) return { value: undefined };
      const next: TaskRecord = { ...record, ...patch, status: to, updatedAt: now, version: record.version + 1 };
      if (to !== 'running') {
        next.leaseOwner = undefined;
        next.leaseUntil = undefined;
      }
      if (isFinished(to)) next.finishedAt ??= now;
      return { value: next, next };
    });
  }

  listTasks(query: TaskQuery): Promise<TaskPage> {
    return this.ctx.guard('list task records', async () => {
      let filtered: Query = this.ctx.collection(this.ctx.names.tasks);
      for (const field of FILTERS) {
        const value = query[field];
        if (value) filtered = filtered.where(field, '==', value);
      }
      return newestFirstPage(this.ctx, filtered, query, (snapshot) => liveRecord(this.ctx, snapshot));
    });
  }

  async deleteTask(id: string): Promise<void> {
    const ref = this.ctx.task(id);
    await this.ctx.transact('delete a task record', async (tx) => {
      const snapshot = await tx.get(ref);
      const reference = snapshot.exists ? (snapshot.get('reference') as string | undefined) : undefined;
      const claim = reference !== undefined ? await tx.get(this.ctx.claim(reference)) : undefined;
      if (claim && claimHolderId(claim) === id) tx.delete(claim.ref);
      if (snapshot.exists) tx.delete(ref);
    });
  }

  async addOutbox(entry: OutboxEntry): Promise<void> {
    await this.ctx.guard('write an outbox entry', () => this.outboxRef(entry.taskId).set(outboxDocument(entry)));
  }

  async listOutbox(createdBefore: number, limit: number): Promise<OutboxEntry[]> {
    if (limit <= 0) return [];
    return this.ctx.guard('list outbox entries', async () => {
      const snapshot = await this.ctx
        .collection(this.ctx.names.outbox)
        .where('createdAt', '<', createdBefore)
        .orderBy('createdAt')
        .orderBy(this.ctx.library.FieldPath.documentId())
        .limit(limit)
        .get();
      return snapshot.docs.map(documentToOutbox);
    });
  }

  async removeOutbox(taskId: string): Promise<void> {
    await this.ctx.guard('remove an outbox entry', () => this.outboxRef(taskId).delete());
  }

  private outboxRef(taskId: string): DocumentReference {
    return this.ctx.collection(this.ctx.names.outbox).doc(checkDocId(taskId, 'Task id'));
  }

  /**
   * A compare-and-set on one record: `decide` sees the live record (or undefined) and answers
   * with the value to return and, to write, the next record. With `retention`, the record's
   * reference claim is read too and follows a move of its expiresAt in the same batch.
   */
  private change<T>(action: string, id: string, retention: boolean, decide: (record: TaskRecord | undefined) => { value: T; next?: TaskRecord }): Promise<T> {
    const ref = this.ctx.task(id);
    const read = async () => {
      const snapshot = await ref.get();
      const record = liveRecord(this.ctx, snapshot);
      const claim = retention && record?.reference !== undefined ? await this.ctx.claim(record.reference).get() : undefined;
      return { snapshot, record, claim };
    };
    return this.ctx.compareAndSet(action, read, ({ snapshot, record, claim }): CasDecision<T> => {
      const { value, next } = decide(record);
      if (!record || !next) return { value };
      return {
        value,
        write: (batch: WriteBatch) => {
          batch.update(ref, recordUpdate(this.ctx, record, next), unchangedSince(snapshot));
          followRetention(this.ctx, batch, claim, next);
        },
      };
    });
  }
}
