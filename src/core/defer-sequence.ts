/**
 * The defer sequence and its undo: store a large payload, create the record (with its reference
 * check), enqueue on Cloud Tasks; a failing step undoes the earlier ones. In a transaction the
 * record and an outbox entry are staged through the backend's hook and the enqueue runs after
 * commit (outbox.ts).
 */
import { enqueueWithRetry } from './defer-many.js';
import type { DeferOptions, DeferPlan, InternalDeferOptions, TaskInfo } from './defer-plan.js';
import { CloudDeferError, DuplicateTaskError } from './errors.js';
import type { OutboxRelay } from './outbox.js';
import { isFinished, type TaskRecord } from './records.js';
import { errorInfo, type StoreCalls } from './store-calls.js';
import type { OutboxEntry, Stores } from './stores.js';
import type { EnqueueRequest, QueueTransport } from './transport.js';

export interface DeferSequenceOptions {
  stores: Stores;
  calls: StoreCalls;
  outbox: OutboxRelay;
  /** The transport once resolved (defer() is hot), else undefined. */
  resolvedTransport: () => QueueTransport | undefined;
  transport: () => Promise<QueueTransport>;
  now: () => number;
  info: (record: TaskRecord, flags: { duplicate: boolean; pendingCommit?: boolean; cloudTaskName?: string }) => TaskInfo;
  getTask: (id: string) => Promise<TaskRecord | undefined>;
  queueUsed: (queue: string) => void;
}

export class DeferSequence {
  constructor(private readonly options: DeferSequenceOptions) {}

  async run(plan: DeferPlan, options: DeferOptions, internal: InternalDeferOptions): Promise<TaskInfo> {
    const { record, request, payload, payloadTtl, now } = plan;
    const { stores, calls } = this.options;
    const id = record.id;
    const stored = payload !== undefined;
    if (options.transaction !== undefined) {
      return this.inTransaction(options.transaction, record, request, payload, payloadTtl);
    }

    if (stored) await calls.call(() => stores.payloads.put(id, payload, payloadTtl));
    let created;
    try {
      created = await calls.call(() => stores.state.createTask(record, now));
    } catch (err) {
      if (internal.idempotent && err instanceof CloudDeferError && err.code === 'TASK_ALREADY_EXISTS') {
        return this.reenqueue(record, request);
      }
      if (stored) await calls.bestEffort(() => stores.payloads.delete(id));
      throw err;
    }
    if (!created.created) {
      if (stored) await calls.bestEffort(() => stores.payloads.delete(id));
      if (options.onDuplicate === 'throw') throw new DuplicateTaskError(options.reference ?? '', created.existing.id);
      return this.options.info(created.existing, { duplicate: true });
    }
    let cloudTaskName: string;
    try {
      const transport = this.options.resolvedTransport() ?? (await this.options.transport());
      cloudTaskName = (internal.enqueueRetry ? await enqueueWithRetry(transport, request, internal.enqueueRetry) : await transport.enqueue(request)).name;
    } catch (err) {
      await this.undo(record, err);
      throw err;
    }
    this.options.queueUsed(record.queue);
    return this.options.info(record, { duplicate: false, cloudTaskName });
  }

  /** Finish an idempotent defer whose record exists: enqueue under the same name; a clash means it is queued. */
  private async reenqueue(record: TaskRecord, request: EnqueueRequest): Promise<TaskInfo> {
    const existing = (await this.options.getTask(record.id)) ?? record;
    if (!isFinished(existing.status)) {
      const transport = await this.options.transport();
      try {
        await transport.enqueue(request);
      } catch (err) {
        if (!(err instanceof CloudDeferError && err.code === 'TASK_ALREADY_EXISTS')) throw err;
      }
    }
    return this.options.info(existing, { duplicate: true });
  }

  private async inTransaction(
    transaction: unknown,
    record: TaskRecord,
    request: EnqueueRequest,
    payload: Uint8Array | undefined,
    payloadTtl: number,
  ): Promise<TaskInfo> {
    const { stores } = this.options;
    const hook = stores.transactions.find((h) => h.accepts(transaction));
    if (!hook) {
      const kinds = stores.transactions.map((h) => h.name).join(', ') || 'none';
      throw new CloudDeferError(
        'INVALID_OPTION',
        `The transaction passed to defer() is not one the ${stores.kind} stores can join (they accept: ${kinds}). Pass a transaction of the store you configured.`,
      );
    }
    const outbox: OutboxEntry = { taskId: record.id, createdAt: record.createdAt, request };
    await hook.stage(transaction, { record, outbox, ...(payload ? { payload: { id: record.id, data: payload, ttlMs: payloadTtl } } : {}) }, () =>
      this.options.outbox.enqueueEntry(outbox),
    );
    this.options.queueUsed(record.queue);
    return this.options.info(record, { duplicate: false, pendingCommit: true });
  }

  /** The enqueue failed after the record was written: leave no payload, and no record that looks queued. */
  private async undo(record: TaskRecord, err: unknown): Promise<void> {
    const { stores, calls } = this.options;
    if (record.payloadRef) await calls.bestEffort(() => stores.payloads.delete(record.id));
    if (err instanceof CloudDeferError && err.code === 'TASK_ALREADY_EXISTS') {
      // The named task exists already: this defer made nothing, so it leaves nothing.
      await calls.bestEffort(() => stores.state.deleteTask(record.id));
      return;
    }
    await calls.bestEffort(() => stores.state.transition(record.id, ['queued'], 'failed', { lastError: errorInfo(err) }, this.options.now()));
  }
}
