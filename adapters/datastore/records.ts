/**
 * Task and reference entities, and the reference reservation shared by StateStore.createTask and
 * the TransactionHook: both read the reference and its holder inside a transaction and stage the
 * writes there, so two defers racing for one reference conflict and exactly one commits.
 */
import { createHash } from 'node:crypto';
import type { Key, Transaction } from '@google-cloud/datastore';
import { CloudDeferError } from '../../src/core/errors.js';
import { isFinished, type TaskRecord } from '../../src/core/records.js';
import type { CreateTaskResult } from '../../src/core/stores.js';
import { entityToRecord, recordToEntity, UNINDEXED_FIELDS } from './codec.js';
import type { AdapterContext, EntityData, EntityWrite, Reader } from './context.js';

export function taskKey(ctx: AdapterContext, id: string): Key {
  return ctx.key(ctx.kinds.task, id);
}

/** References can be 500 characters of any script; a hash always makes a valid key name. */
export function referenceKey(ctx: AdapterContext, reference: string): Key {
  return ctx.key(ctx.kinds.reference, createHash('sha256').update(reference, 'utf8').digest('hex'));
}

export function recordWrite(ctx: AdapterContext, record: TaskRecord): EntityWrite {
  return { key: taskKey(ctx, record.id), data: recordToEntity(record), excludeFromIndexes: [...UNINDEXED_FIELDS] };
}

export function referenceWrite(ctx: AdapterContext, record: TaskRecord & { reference: string }): EntityWrite {
  return {
    key: referenceKey(ctx, record.reference),
    data: { reference: record.reference, taskId: record.id },
    excludeFromIndexes: ['reference', 'taskId'],
  };
}

/** The record an entity holds, unless its retention has passed (Datastore has no TTL: reads hide it). */
export function liveRecord(ctx: AdapterContext, entity: EntityData | undefined): TaskRecord | undefined {
  if (!entity) return undefined;
  const record = entityToRecord(entity);
  return record.expiresAt > ctx.now() ? record : undefined;
}

export async function readRecord(ctx: AdapterContext, reader: Reader, id: string): Promise<TaskRecord | undefined> {
  const [entity] = await ctx.read(reader, [taskKey(ctx, id)]);
  return liveRecord(ctx, entity);
}

/** The live task a reference claim points to, read through `reader`. */
async function claimHolder(ctx: AdapterContext, reader: Reader, claim: EntityData | undefined): Promise<TaskRecord | undefined> {
  const holderId = claim?.taskId;
  return typeof holderId === 'string' ? readRecord(ctx, reader, holderId) : undefined;
}

export async function referenceHolder(ctx: AdapterContext, reader: Reader, reference: string): Promise<TaskRecord | undefined> {
  const [claim] = await ctx.read(reader, [referenceKey(ctx, reference)]);
  return claimHolder(ctx, reader, claim);
}

/** Whether `holder` still keeps its reference from another task at `now`. */
export function holds(holder: TaskRecord | undefined, now: number): holder is TaskRecord {
  return holder !== undefined && !isFinished(holder.status) && (holder.uniqueUntil === undefined || holder.uniqueUntil > now);
}

/**
 * Inside `tx`: refuse an id that is taken, answer the holder when the reference is held, or stage
 * the record and its reference claim. The caller commits.
 */
export async function stageCreate(ctx: AdapterContext, tx: Transaction, record: TaskRecord, now: number): Promise<CreateTaskResult> {
  const { reference } = record;
  // The record and the claim in one Lookup; the holder, when there is one, in a second.
  const [existing, claim] = await ctx.read(tx, [taskKey(ctx, record.id), ...(reference !== undefined ? [referenceKey(ctx, reference)] : [])]);
  if (liveRecord(ctx, existing)) {
    throw new CloudDeferError('TASK_ALREADY_EXISTS', `A task record with id ${record.id} already exists.`);
  }
  if (reference !== undefined) {
    const holder = await claimHolder(ctx, tx, claim);
    if (holds(holder, now)) return { created: false, existing: holder };
    tx.upsert(referenceWrite(ctx, { ...record, reference }));
  }
  // Upsert: an expired record under this id may still be there, waiting for the sweep.
  tx.upsert(recordWrite(ctx, record));
  return { created: true };
}
