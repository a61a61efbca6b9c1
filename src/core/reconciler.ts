/**
 * The reconciler (part of sweep(), the Cloud Scheduler path): the record follows Cloud Tasks.
 * An unfinished record with no Cloud Task left for it (the queue gave up, the emulator restarted
 * and forgot its tasks, a delivery was acknowledged while another instance ran it and then died)
 * whose lease has run out is either enqueued again, when it has attempts left, or recorded
 * `failed` with code ABANDONED, which frees its reference.
 *
 * Presence is read with ListTasks (FULL view: the envelope names the record) per queue that has
 * a candidate, so a defer costs nothing extra (no task name to store, no named CreateTask).
 */
import { outboxTaskName, requestForRecord, type EngineTarget } from './defer-plan.js';
import { CloudDeferError } from './errors.js';
import { countedAttempts } from './lifecycle.js';
import type { Logger } from './logger.js';
import type { TaskRecord, TaskStatus } from './records.js';
import { errorInfo, type StoreCalls } from './store-calls.js';
import type { Stores } from './stores.js';
import type { QueueTransport } from './transport.js';

export interface ReconcilerOptions {
  stores: Stores;
  calls: StoreCalls;
  logger: Logger;
  transport: () => Promise<QueueTransport>;
  target: () => EngineTarget;
  now: () => number;
  queueMaxRetryMs?: ((queue: string) => number | undefined) | undefined;
  emitSettled: (record: TaskRecord) => void;
}

export interface ReconcileResult {
  /** Records enqueued again under a new Cloud Tasks name. */
  reenqueued: number;
  /** Records recorded failed with code ABANDONED (no attempts left). */
  abandoned: number;
}

/** The runs a limit is checked against: started, and of those cut short by their instance. */
export interface RunsSoFar {
  attempts: number;
  interruptedRuns: number;
}

/**
 * Whether Cloud Tasks retries this task no more, by its rules: with only maxAttempts, after that
 * many; with maxRetryDuration too, only once both are reached (Cloud Tasks' default maxAttempts
 * is 100; -1 means time alone decides). Runs cut short count as countedAttempts says.
 * `runs` defaults to the record's own.
 */
export function retriesExhausted(
  record: TaskRecord,
  maxAttempts: number | undefined,
  maxRetryMs: number | undefined,
  now: number,
  runs: RunsSoFar = { attempts: record.attempts, interruptedRuns: record.interruptedRuns ?? 0 },
): boolean {
  const used = (limit: number) => countedAttempts(runs.attempts, runs.interruptedRuns, limit);
  if (maxRetryMs === undefined || maxRetryMs <= 0) return maxAttempts !== undefined && maxAttempts !== -1 && used(maxAttempts) >= maxAttempts;
  const outOfTime = now - (record.startedAt ?? record.createdAt) >= maxRetryMs;
  return outOfTime && (maxAttempts === -1 || used(maxAttempts ?? 100) >= (maxAttempts ?? 100));
}

interface QueueLimits {
  maxAttempts?: number;
  maxRetryMs?: number;
}

const UNFINISHED: readonly TaskStatus[] = ['queued', 'retrying', 'running'];

export class Reconciler {
  constructor(private readonly options: ReconcilerOptions) {}

  /**
   * `graceMs`: a record written more recently is left alone (its defer may still be enqueueing).
   * `limit`: at most this many records are acted on.
   */
  async run(options: { graceMs?: number; limit?: number } = {}): Promise<ReconcileResult> {
    const graceMs = options.graceMs ?? 60_000;
    const limit = options.limit ?? 500;
    const { calls, stores } = this.options;
    const now = this.options.now();
    const candidates: TaskRecord[] = [];
    for (const status of UNFINISHED) {
      let cursor: string | undefined;
      let seen = 0;
      do {
        const page = await calls.call(() => stores.state.listTasks({ status, limit: 1000, ...(cursor ? { cursor } : {}) }));
        for (const record of page.records) {
          if (now - record.updatedAt < graceMs) continue;
          if (record.status === 'running' && (record.leaseUntil ?? 0) > now) continue;
          candidates.push(record);
        }
        seen += page.records.length;
        cursor = page.nextCursor;
      } while (cursor && seen < limit * 20);
    }
    if (candidates.length === 0) return { reenqueued: 0, abandoned: 0 };

    const transport = await this.options.transport();
    const pending = new Map<string, Set<string> | undefined>();
    const limits = new Map<string, QueueLimits>();
    for (const queue of new Set(candidates.map((r) => r.queue))) {
      pending.set(queue, await this.pendingIds(transport, queue));
      limits.set(queue, await this.limitsOf(transport, queue));
    }

    let reenqueued = 0;
    let abandoned = 0;
    // A queue whose tasks cannot be matched to records is left alone: absence is not known.
    const orphans = candidates
      .filter((record) => {
        const ids = pending.get(record.queue);
        return ids !== undefined && !ids.has(record.id);
      })
      .slice(0, limit);
    // A few at once: after an outage there may be hundreds, each one enqueue.
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < orphans.length) {
        const record = orphans[next++]!;
        const outcome = await this.settleOne(transport, record, now, limits.get(record.queue) ?? {}).catch(() => 'skipped' as const);
        if (outcome === 'reenqueued') reenqueued += 1;
        else if (outcome === 'abandoned') abandoned += 1;
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, orphans.length) }, worker));
    return { reenqueued, abandoned };
  }

  /** The record ids that still have a Cloud Task in `queue`, or undefined when they cannot be read. */
  private async pendingIds(transport: QueueTransport, queue: string): Promise<Set<string> | undefined> {
    let tasks;
    try {
      tasks = await transport.listTasks(queue);
    } catch (err) {
      if (err instanceof CloudDeferError && err.code === 'NOT_FOUND') return new Set();
      this.options.logger.warn('sweep could not list a queue; its records are reconciled later', { queue, error: errorInfo(err) });
      return undefined;
    }
    const ids = new Set<string>();
    for (const task of tasks) {
      if (task.taskId === undefined) return undefined;
      ids.add(task.taskId);
    }
    return ids;
  }

  /** The queue's own retry limits as Cloud Tasks has them (they may differ from this app's configuration). */
  private async limitsOf(transport: QueueTransport, queue: string): Promise<QueueLimits> {
    const retry = (await transport.getQueue(queue).catch(() => undefined))?.retryConfig;
    const configuredMs = this.options.queueMaxRetryMs?.(queue);
    const seconds = retry?.maxRetryDurationSeconds;
    return {
      ...(retry?.maxAttempts !== undefined && retry.maxAttempts >= 1 ? { maxAttempts: retry.maxAttempts } : {}),
      ...(seconds !== undefined && seconds > 0 ? { maxRetryMs: seconds * 1000 } : configuredMs !== undefined ? { maxRetryMs: configuredMs } : {}),
    };
  }

  private async settleOne(transport: QueueTransport, record: TaskRecord, now: number, limits: QueueLimits): Promise<'reenqueued' | 'abandoned' | 'skipped'> {
    const { calls, stores } = this.options;
    // The record's own limit, else the queue's: a queue that gave up after its maxAttempts has no more to give.
    const maxAttempts = record.maxAttempts ?? limits.maxAttempts;
    // A `running` record here has a lease that ran out: its own run was cut short too.
    const interrupted = (record.interruptedRuns ?? 0) + (record.status === 'running' ? 1 : 0);
    if (retriesExhausted(record, maxAttempts, limits.maxRetryMs, now, { attempts: record.attempts, interruptedRuns: interrupted })) {
      const counted = countedAttempts(record.attempts, interrupted, maxAttempts);
      const cut = interrupted > 0 ? `; ${record.attempts} runs, ${interrupted} of them cut short by their instance` : '';
      const error = {
        code: 'ABANDONED',
        message: `No Cloud Task is left for this ${record.status} task and it has no attempts left (${counted}/${maxAttempts ?? '-'}${limits.maxRetryMs ? `, maxRetryDuration ${limits.maxRetryMs / 1000} s` : ''}${cut}); recorded failed by sweep().`,
      };
      const failed = await calls.call(() => stores.state.transition(record.id, [record.status], 'failed', { lastError: error }, now));
      if (!failed) return 'skipped';
      if (failed.payloadRef) await calls.bestEffort(() => stores.payloads.delete(failed.payloadRef!));
      this.options.emitSettled(failed);
      return 'abandoned';
    }
    // A new name per sweep: Cloud Tasks refuses a name used in the last hour, and a record that
    // never ran keeps its version. Two sweeps at once may both enqueue; the execution guard runs it once.
    const taskId = outboxTaskName(`${record.id}:${record.version}:${now}`);
    if (record.status === 'running') {
      // The run stopped renewing its lease (its process died) and nothing will deliver it again.
      const error = { code: 'LEASE_EXPIRED', message: 'The run stopped renewing its lease before it settled; sweep() enqueued the task again.' };
      const moved = await calls.call(() => stores.state.transition(record.id, ['running'], 'retrying', { lastError: error }, now));
      if (!moved) return 'skipped';
    }
    try {
      await transport.enqueue(requestForRecord(record, this.options.target(), taskId, now));
    } catch (err) {
      if (!(err instanceof CloudDeferError && err.code === 'TASK_ALREADY_EXISTS')) {
        this.options.logger.warn('sweep could not enqueue a task again; the next sweep retries', { taskId: record.id, error: errorInfo(err) });
        return 'skipped';
      }
    }
    this.options.logger.info('sweep enqueued again a task that had no Cloud Task left', { taskId: record.id, queue: record.queue, status: record.status });
    return 'reenqueued';
  }
}
