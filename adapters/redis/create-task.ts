/** The arguments of lua/createTask.lua, shared by StateStore.createTask and the TransactionHook. */
import { CloudDeferError } from '../../src/core/errors.js';
import type { TaskRecord } from '../../src/core/records.js';
import type { OutboxEntry } from '../../src/core/stores.js';
import { fieldsToRecord, recordToFields } from './codec.js';
import type { AdapterContext } from './context.js';
import { expiryDeadline } from './indexes.js';
import { tagOfId, tagOfReference } from './keys.js';
import type { ScriptArg } from './scripts.js';

/** Written by the same script, only when the record is: a defer staged inside a MULTI. */
export interface CreateTaskExtras {
  outbox?: OutboxEntry;
  payload?: { id: string; data: Uint8Array; ttlMs: number };
}

export interface ScriptCall {
  keys: string[];
  args: ScriptArg[];
}

export function createTaskCall(ctx: AdapterContext, record: TaskRecord, now: number, extras: CreateTaskExtras = {}): ScriptCall {
  const { layout, indexes, cluster } = ctx;
  const tag = tagOfId(record.id);
  const sameSlot = (what: string, otherTag: string): void => {
    if (cluster && otherTag !== tag) {
      throw new CloudDeferError(
        'INVALID_OPTION',
        `On Redis Cluster, task ${record.id} and its ${what} must share a hash slot: take task ids from stores.state.newTaskId(reference)` +
          (what === 'payload' ? ' and name the payload after the task id.' : '.'),
      );
    }
  };

  const recordKey = layout.task(record.id);
  const keys = [recordKey];
  let parts = '';
  let referenceKey = '';
  if (record.reference) {
    sameSlot('reference', tagOfReference(record.reference));
    referenceKey = layout.reference(record.reference);
    keys.push(referenceKey);
    parts += 'r';
  }
  const { outbox, payload } = extras;
  if (outbox) {
    sameSlot('outbox entry', tagOfId(outbox.taskId));
    const outboxKeys = layout.outboxKeys(outbox.taskId);
    keys.push(outboxKeys.index, outboxKeys.entries);
    parts += 'o';
  }
  // A payload whose time-to-live has already run out is no payload (PayloadStore.put does the same).
  const storePayload = payload !== undefined && payload.ttlMs > 0;
  if (storePayload) {
    sameSlot('payload', tagOfId(payload.id));
    keys.push(layout.payload(payload.id));
    parts += 'p';
  }
  if (!cluster) {
    keys.push(...indexes.createScriptKeys(record));
    parts += 'i';
  }

  const args: ScriptArg[] = [
    parts,
    record.id,
    now,
    expiryDeadline(record.expiresAt),
    layout.stored(recordKey),
    referenceKey && layout.stored(referenceKey),
    indexes.member(record),
    indexes.sweepMember(record),
    outbox ? outbox.createdAt : '',
    outbox ? JSON.stringify(outbox) : '',
    storePayload ? Math.ceil(payload.ttlMs) : '',
    storePayload ? Buffer.from(payload.data.buffer, payload.data.byteOffset, payload.data.byteLength) : '',
    ...recordToFields(record),
  ];
  return { keys, args };
}

export type CreateTaskReply = { kind: 'created' } | { kind: 'exists' } | { kind: 'held'; existing: TaskRecord };

export function parseCreateTaskReply(reply: unknown): CreateTaskReply {
  const list = reply as string[];
  if (list[0] === 'created') return { kind: 'created' };
  if (list[0] === 'exists') return { kind: 'exists' };
  const holder = list[0] === 'held' ? fieldsToRecord(list.slice(1)) : undefined;
  if (!holder) throw new Error(`cloud-defer/redis: unexpected createTask reply ${JSON.stringify(list)}`);
  return { kind: 'held', existing: holder.record };
}
