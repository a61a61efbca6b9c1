/**
 * Watching tasks settle: the settle log drain() counts from, waitFor() (TaskInfo.wait), and
 * drain(), the helper tests and scripts use to run a queue dry.
 */
import { CloudDeferError } from './errors.js';
import { isFinished, type TaskRecord } from './records.js';
import type { QueueTransport } from './transport.js';

export interface DrainOptions {
  timeoutMs?: number;
  /** Dispatch tasks scheduled in the future (and those waiting out a backoff) now. Default true. */
  runScheduled?: boolean;
  /** Reject when a counted task ended failed (before or during the call). Default false. */
  throwOnFailure?: boolean;
  /** Count only tasks settled after this mark (from engine.mark()). Default: since the engine started. */
  since?: DrainMark;
}

/** A point in this engine's settle log; drain({ since }) counts what settled after it. */
export interface DrainMark {
  readonly succeeded: number;
  readonly failed: number;
}

export interface DrainResult {
  succeeded: number;
  failed: TaskRecord[];
}

export type SettledListener = (record: TaskRecord) => void;

/** Every settle since start, so drain() also sees tasks that finished before it was called. */
export class SettleWatch {
  readonly listeners = new Set<SettledListener>();
  readonly log = new SettleLog();

  emit(record: TaskRecord): void {
    this.log.add(record);
    for (const listener of this.listeners) listener(record);
  }

  /** Resolve with the record once the task has finished. */
  async waitFor(getTask: (id: string) => Promise<TaskRecord | undefined>, id: string, options: { timeoutMs?: number } = {}): Promise<TaskRecord> {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    let delay = 5;
    for (;;) {
      const record = await getTask(id);
      if (record && isFinished(record.status)) return record;
      if (Date.now() >= deadline) {
        throw new CloudDeferError('TIMEOUT', `Task ${id} did not finish in time (status: ${record?.status ?? 'unknown'}).`);
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.listeners.delete(listener);
          resolve();
        };
        const listener: SettledListener = (settled) => {
          if (settled.id === id) done();
        };
        const timer = setTimeout(done, Math.min(delay, Math.max(deadline - Date.now(), 0)));
        this.listeners.add(listener);
      });
      delay = Math.min(delay * 2, 200);
    }
  }
}

/** What drain() looks at. */
export interface DrainSubject {
  transport: () => Promise<QueueTransport>;
  queues: () => Iterable<string>;
  inFlight: () => number;
  log: SettleLog;
}

/**
 * Tests and scripts: run until every queue the engine uses is empty and no run is in flight.
 * Tasks scheduled later (or backing off) are dispatched now with RunTask unless asked not to.
 */
export async function drain(subject: DrainSubject, options: DrainOptions = {}): Promise<DrainResult> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const since = options.since ?? { succeeded: 0, failed: 0 };
  const transport = await subject.transport();
  let quietRounds = 0;
  while (quietRounds < 2) {
    if (Date.now() > deadline) {
      throw new CloudDeferError('TIMEOUT', 'drain() timed out with tasks still queued or running.');
    }
    let pending = 0;
    for (const queue of subject.queues()) {
      const tasks = await transport.listTasks(queue).catch((err: unknown) => {
        if (err instanceof CloudDeferError && err.code === 'NOT_FOUND') return [];
        throw err;
      });
      pending += tasks.length;
      if (options.runScheduled === false) continue;
      const now = Date.now();
      for (const task of tasks) {
        if ((task.scheduleTime ?? 0) > now + 5) await transport.runTask(task.name).catch(() => undefined);
      }
    }
    quietRounds = pending === 0 && subject.inFlight() === 0 ? quietRounds + 1 : 0;
    await new Promise((resolve) => setTimeout(resolve, quietRounds > 0 ? 2 : 10));
  }
  const result = subject.log.since(since);
  if (options.throwOnFailure && result.failed.length > 0) {
    const first = result.failed[0]!;
    throw new CloudDeferError(
      'INVALID_STATE',
      `${result.failed.length} task(s) failed during drain; first: ${first.taskName} (${first.id}): ${first.lastError?.message ?? 'failed'}`,
    );
  }
  return result;
}

/** Settle counts since the engine started; failed records kept up to a bound (the newest win). */
export class SettleLog {
  private succeeded = 0;
  private failedCount = 0;
  private readonly failed: TaskRecord[] = [];
  private static readonly MAX_FAILED_KEPT = 10_000;

  add(record: TaskRecord): void {
    if (record.status === 'succeeded') this.succeeded += 1;
    else if (record.status === 'failed') {
      this.failedCount += 1;
      this.failed.push(record);
      if (this.failed.length > SettleLog.MAX_FAILED_KEPT) this.failed.shift();
    }
  }

  mark(): DrainMark {
    return { succeeded: this.succeeded, failed: this.failedCount };
  }

  since(mark: DrainMark): DrainResult {
    const newFailed = Math.max(0, this.failedCount - mark.failed);
    return { succeeded: Math.max(0, this.succeeded - mark.succeeded), failed: this.failed.slice(Math.max(0, this.failed.length - newFailed)) };
  }
}
