/**
 * The operator's actions on tasks: cancel, rerun and purge a queue (the console and scripts reach
 * them through DeferredAdmin, admin.ts).
 */
import type { Codec } from './codec.js';
import type { DeferOptions, TaskInfo } from './defer-plan.js';
import { CloudDeferError } from './errors.js';
import { isFinished, PENDING_STATUSES, type TaskRecord } from './records.js';
import type { StoreCalls } from './store-calls.js';
import type { Stores, TaskPage, TaskQuery } from './stores.js';
import type { QueueTransport } from './transport.js';

export interface TaskActionsOptions {
  stores: Stores;
  calls: StoreCalls;
  codec: Codec;
  now: () => number;
  transport: () => Promise<QueueTransport>;
  defer: (taskName: string, args: unknown[], options: DeferOptions) => Promise<TaskInfo>;
  getTask: (id: string) => Promise<TaskRecord | undefined>;
  listTasks: (query: TaskQuery) => Promise<TaskPage>;
  emitSettled: (record: TaskRecord) => void;
}

export class TaskActions {
  constructor(private readonly options: TaskActionsOptions) {}

  /** Cancel a task that has not run yet: it is acknowledged without running when delivered. */
  async cancel(id: string): Promise<TaskRecord | undefined> {
    const record = await this.options.calls.call(() => this.options.stores.state.transition(id, PENDING_STATUSES, 'cancelled', {}, this.options.now()));
    if (record) {
      if (record.payloadRef) await this.options.calls.bestEffort(() => this.options.stores.payloads.delete(record.id));
      this.options.emitSettled(record);
    }
    return record;
  }

  /**
   * Defer a finished task again with the same arguments (a new task; its reference must be free).
   * Refused while the task is unfinished, and for large payloads already deleted after success.
   */
  async rerun(id: string): Promise<TaskInfo> {
    const record = await this.options.getTask(id);
    if (!record) throw new CloudDeferError('NOT_FOUND', `No task ${id} (it may have expired).`);
    if (!isFinished(record.status)) {
      throw new CloudDeferError('INVALID_STATE', `Task ${id} is ${record.status}; only a finished task can be rerun.`);
    }
    let args: unknown[];
    if (record.argsJson !== undefined) {
      args = this.options.codec.decodeArgs(Buffer.from(record.argsJson, 'utf8'));
    } else {
      const bytes = record.payloadRef ? await this.options.calls.call(() => this.options.stores.payloads.get(record.payloadRef!)) : undefined;
      if (!bytes)
        throw new CloudDeferError('PAYLOAD_MISSING', `The arguments of task ${id} are no longer stored (large payloads are deleted once a task finishes).`);
      args = this.options.codec.decodeArgs(bytes);
    }
    return this.options.defer(record.taskName, args, {
      queue: record.queue,
      ...(record.maxAttempts !== undefined ? { maxAttempts: record.maxAttempts } : {}),
      ...(record.reference !== undefined ? { reference: record.reference, onDuplicate: 'throw' as const } : {}),
    });
  }

  /**
   * Purge a queue: Cloud Tasks drops its tasks, and their records are marked cancelled (which
   * frees their references). Returns how many records were marked.
   */
  async purgeQueue(queue: string): Promise<{ marked: number }> {
    const transport = await this.options.transport();
    await transport.purgeQueue(queue);
    let marked = 0;
    for (const status of PENDING_STATUSES) {
      let cursor: string | undefined;
      do {
        const page = await this.options.listTasks({ queue, status, limit: 500, ...(cursor ? { cursor } : {}) });
        for (const record of page.records) {
          const purged = await this.options.calls.call(() =>
            this.options.stores.state.transition(
              record.id,
              PENDING_STATUSES,
              'cancelled',
              { lastError: { message: 'Purged from the queue', code: 'PURGED' } },
              this.options.now(),
            ),
          );
          if (purged) {
            marked += 1;
            if (purged.payloadRef) await this.options.calls.bestEffort(() => this.options.stores.payloads.delete(purged.payloadRef!));
            this.options.emitSettled(purged);
          }
        }
        cursor = page.nextCursor;
      } while (cursor);
    }
    return { marked };
  }
}
