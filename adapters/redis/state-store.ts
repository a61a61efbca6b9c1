import type { ChainableCommander } from 'ioredis';
import { CloudDeferError } from '../../src/core/errors.js';
import { canTransition, isFinished, MAX_HISTORY, type TaskRecord, type TaskStatus } from '../../src/core/records.js';
import type { AcquireLeaseInput, CreateTaskResult, LeaseOutcome, OutboxEntry, SettleInput, StateStore, TaskPage, TaskQuery } from '../../src/core/stores.js';
import { encodeError, encodeField, fieldsToRecord, type RecordBookkeeping } from './codec.js';
import type { AdapterContext } from './context.js';
import { createTaskCall, parseCreateTaskReply } from './create-task.js';
import { expiryDeadline } from './indexes.js';
import { newTaskId } from './keys.js';
import type { ScriptName } from './scripts.js';

type Patch = Parameters<StateStore['transition']>[3];
/** Patch fields a transition may clear by passing undefined; the others are required fields. */
const CLEARABLE: ReadonlySet<string> = new Set(['lastError', 'finishedAt', 'cloudTaskName', 'uniqueUntil']);

/** A status-changing script's answer: outcome, the status before, then the record's fields. */
interface StatusReply {
  outcome: string;
  previousStatus?: TaskStatus;
  record?: TaskRecord;
  bookkeeping?: RecordBookkeeping;
}

function parseStatusReply(reply: unknown): StatusReply {
  const [outcome, previousStatus, ...fields] = reply as string[];
  const decoded = fieldsToRecord(fields);
  return { outcome: outcome!, previousStatus: previousStatus as TaskStatus | undefined, record: decoded?.record, bookkeeping: decoded?.bookkeeping };
}

/** EXEC answers each command's error in its results instead of rejecting: surface the first. */
async function execOrThrow(transaction: ChainableCommander): Promise<void> {
  const results = await transaction.exec();
  const failed = results?.find(([error]) => error);
  if (failed) throw failed[0];
}

export class RedisStateStore implements StateStore {
  /** Called after every created task; the stores use it to start a background sweep now and then. */
  onTaskCreated: () => void = () => {};

  constructor(private readonly ctx: AdapterContext) {}

  newTaskId(reference: string | undefined): string {
    return newTaskId(reference);
  }

  async createTask(record: TaskRecord, now: number): Promise<CreateTaskResult> {
    const call = createTaskCall(this.ctx, record, now);
    const reply = parseCreateTaskReply(await this.ctx.guard('create a task record', () => this.ctx.scripts.run('createTask', call.keys, call.args)));
    if (reply.kind === 'exists') throw new CloudDeferError('TASK_ALREADY_EXISTS', `A task record with id ${record.id} already exists.`);
    if (reply.kind === 'held') return { created: false, existing: reply.existing };
    if (this.ctx.cluster) await this.ctx.guard('index a task record', () => this.ctx.indexes.added(record));
    this.onTaskCreated();
    return { created: true };
  }

  async getTask(id: string): Promise<TaskRecord | undefined> {
    return this.ctx.guard('read a task record', () => this.ctx.indexes.readRecord(id));
  }

  async findByReference(reference: string): Promise<TaskRecord | undefined> {
    if (!reference) return undefined;
    const reply = await this.ctx.guard('read a task reference', () => this.ctx.scripts.run('findByReference', [this.ctx.layout.reference(reference)], []));
    return fieldsToRecord(reply as string[])?.record;
  }

  async acquireLease(id: string, input: AcquireLeaseInput): Promise<LeaseOutcome> {
    const reply = await this.runStatusScript('acquire a task lease', 'acquireLease', id, [
      input.owner,
      input.now,
      input.now + input.leaseMs,
      input.executionCount,
    ]);
    if (reply.outcome === 'missing' || !reply.record) return { kind: 'missing' };
    if (reply.outcome === 'acquired') await this.followUp(reply, false);
    return { kind: reply.outcome as 'acquired' | 'finished' | 'busy', record: reply.record };
  }

  async settle(id: string, input: SettleInput): Promise<TaskRecord | undefined> {
    const reply = await this.runStatusScript('settle a task', 'settle', id, [
      input.owner,
      input.status,
      input.now,
      JSON.stringify(input.attempt),
      input.error ? encodeError(input.error) : '',
      input.expiresAt,
      input.attempt.durationMs,
      MAX_HISTORY,
      isFinished(input.status) ? '1' : '0',
      expiryDeadline(input.expiresAt),
    ]);
    if (reply.outcome !== 'settled' || !reply.record) return undefined;
    await this.followUp(reply, true);
    return reply.record;
  }

  async transition(id: string, from: readonly TaskStatus[], to: TaskStatus, patch: Patch, now: number): Promise<TaskRecord | undefined> {
    // The lifecycle check happens here; the script only compares the current status.
    const allowedFrom = from.filter((status) => canTransition(status, to));
    if (allowedFrom.length === 0) return undefined;
    const set: string[] = [];
    const clear: string[] = [];
    for (const [name, value] of Object.entries(patch) as Array<[keyof TaskRecord, unknown]>) {
      if (value !== undefined) set.push(name, encodeField(name, value));
      else if (CLEARABLE.has(name)) clear.push(name);
    }
    const newExpiresAt = patch.expiresAt !== undefined ? expiryDeadline(patch.expiresAt) : '';
    const reply = await this.runStatusScript('change a task status', 'transition', id, [
      allowedFrom.join(' '),
      to,
      now,
      isFinished(to) ? '1' : '0',
      newExpiresAt,
      set.length / 2,
      ...set,
      ...clear,
    ]);
    if (reply.outcome !== 'moved' || !reply.record) return undefined;
    await this.followUp(reply, newExpiresAt !== '');
    return reply.record;
  }

  listTasks(query: TaskQuery): Promise<TaskPage> {
    return this.ctx.guard('list task records', () => this.ctx.indexes.list(query));
  }

  /**
   * The record and its reference go in one script; its index entries right after, from the
   * record the script returns (their keys depend on its fields, which only the script knows).
   */
  async deleteTask(id: string): Promise<void> {
    const fields = await this.ctx.guard('delete a task record', () => this.ctx.scripts.run('deleteTask', [this.ctx.layout.task(id)], [id]));
    const deleted = fieldsToRecord(fields as string[]);
    if (deleted) await this.ctx.guard('unindex a task record', () => this.ctx.indexes.removed(deleted.record, deleted.bookkeeping));
  }

  async addOutbox(entry: OutboxEntry): Promise<void> {
    const { client, layout, cluster } = this.ctx;
    const keys = layout.outboxKeys(entry.taskId);
    await this.ctx.guard('write an outbox entry', async () => {
      if (cluster) await client.sadd(layout.outboxSlots(), keys.tag);
      await execOrThrow(client.multi().hset(keys.entries, entry.taskId, JSON.stringify(entry)).zadd(keys.index, entry.createdAt, entry.taskId));
    });
  }

  async listOutbox(createdBefore: number, limit: number): Promise<OutboxEntry[]> {
    if (limit <= 0) return [];
    const { client, layout, cluster } = this.ctx;
    return this.ctx.guard('list outbox entries', async () => {
      const tags: Array<string | undefined> = cluster ? await client.smembers(layout.outboxSlots()) : [undefined];
      const perSlot = await Promise.all(
        tags.map(async (tag) => {
          const keys = layout.outboxKeysForTag(tag);
          const taskIds = await client.zrange(keys.index, '-inf', `(${createdBefore}`, 'BYSCORE', 'LIMIT', 0, limit);
          if (taskIds.length === 0) return [];
          const texts = await client.hmget(keys.entries, ...taskIds);
          return texts.filter((text): text is string => text !== null).map((text) => JSON.parse(text) as OutboxEntry);
        }),
      );
      const entries = perSlot.flat();
      entries.sort((a, b) => a.createdAt - b.createdAt || (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0));
      return entries.slice(0, limit);
    });
  }

  async removeOutbox(taskId: string): Promise<void> {
    const keys = this.ctx.layout.outboxKeys(taskId);
    await this.ctx.guard('remove an outbox entry', () => execOrThrow(this.ctx.client.multi().zrem(keys.index, taskId).hdel(keys.entries, taskId)));
  }

  private async runStatusScript(action: string, name: ScriptName, id: string, args: Array<string | number>): Promise<StatusReply> {
    const { layout, indexes, cluster, scripts } = this.ctx;
    const keys = cluster ? [layout.task(id)] : [layout.task(id), ...indexes.updateScriptKeys()];
    return parseStatusReply(await this.ctx.guard(action, () => scripts.run(name, keys, args)));
  }

  /** Cluster: bring the indexes in line with what the script changed. */
  private async followUp(reply: StatusReply, retentionChanged: boolean): Promise<void> {
    if (!this.ctx.cluster || !reply.record || !reply.previousStatus) return;
    const { record, bookkeeping, previousStatus } = reply;
    await this.ctx.guard('index a task record', () => this.ctx.indexes.changed(record, bookkeeping ?? {}, previousStatus, retentionChanged));
  }
}
