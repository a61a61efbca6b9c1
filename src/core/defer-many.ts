/**
 * deferMany: many defers of one task with bounded concurrency (as BullMQ's addBulk, over Cloud
 * Tasks, which has no batch create). Each item is a full defer (its own reference check and
 * record) and gets its own result; transient enqueue errors are retried under a deterministic
 * Cloud Tasks name, so a retry after a lost reply cannot make a second task.
 */
import { CloudDeferError } from './errors.js';
import type { DeferOptions, DeferredTask, InternalDeferOptions, TaskInfo } from './engine.js';
import type { EnqueueRequest, QueueTransport } from './transport.js';

export interface DeferManyOptions extends DeferOptions {
  /** Defers in flight at once. Default 16. */
  concurrency?: number;
  /** Extra enqueue attempts per item on a transient error (UNAVAILABLE, DEADLINE_EXCEEDED, ...). Default 5. */
  retries?: number;
  /** Wait before the first retry, doubled for each next one. Default 200 ms. */
  retryDelayMs?: number;
}

/** The arguments of one defer, or the arguments with options of its own (merged over the shared ones). */
export type DeferManyItem<A extends unknown[]> = A | { args: A; options?: DeferOptions };

export type DeferManyResult = { ok: true; index: number; task: TaskInfo } | { ok: false; index: number; error: Error };

export interface EnqueueRetry {
  retries: number;
  delayMs: number;
}

/** The part of the engine deferMany drives. */
export interface BulkDeferrer {
  deferWith<A extends unknown[]>(
    task: DeferredTask<A> | ((...args: A) => unknown) | string,
    args: A,
    options: DeferOptions,
    internal: InternalDeferOptions,
  ): Promise<TaskInfo>;
  readonly registry: { resolve(ref: unknown): unknown };
}

// gRPC codes worth another try: DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE.
const TRANSIENT_GRPC_CODES = new Set([4, 8, 10, 13, 14]);

export function isTransientEnqueueError(err: unknown): boolean {
  if (!(err instanceof CloudDeferError) || err.code !== 'ENQUEUE_FAILED') return false;
  const code = (err.cause as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' && TRANSIENT_GRPC_CODES.has(code);
}

/**
 * Enqueue, retrying transient errors. The request must carry a task id: on a retry, ALREADY_EXISTS
 * means an earlier try did create the task and only its answer was lost.
 */
export async function enqueueWithRetry(transport: QueueTransport, request: EnqueueRequest, retry: EnqueueRetry): Promise<{ name: string }> {
  let delay = retry.delayMs;
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await transport.enqueue(request);
    } catch (err) {
      if (attempt > 0 && err instanceof CloudDeferError && err.code === 'TASK_ALREADY_EXISTS' && request.taskId) {
        return { name: request.taskId };
      }
      if (attempt >= retry.retries || !isTransientEnqueueError(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay *= 2;
    }
  }
}

function itemOf<A extends unknown[]>(item: DeferManyItem<A>, index: number): { args: A; options?: DeferOptions } {
  if (Array.isArray(item)) return { args: item as A };
  if (item && typeof item === 'object' && Array.isArray((item as { args?: unknown }).args)) return item as { args: A; options?: DeferOptions };
  throw new CloudDeferError('INVALID_OPTION', `deferMany item ${index} must be an array of arguments or { args: [...], options }.`);
}

export async function deferMany<A extends unknown[]>(
  engine: BulkDeferrer,
  task: DeferredTask<A> | ((...args: A) => unknown) | string,
  items: readonly DeferManyItem<A>[],
  options: DeferManyOptions = {},
): Promise<DeferManyResult[]> {
  const { concurrency = 16, retries = 5, retryDelayMs = 200, ...shared } = options;
  if (!Array.isArray(items)) throw new CloudDeferError('INVALID_OPTION', 'deferMany(task, items) needs the items as an array.');
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new CloudDeferError('INVALID_OPTION', 'concurrency must be a whole number >= 1.');
  if (!Number.isInteger(retries) || retries < 0) throw new CloudDeferError('INVALID_OPTION', 'retries must be a whole number >= 0.');
  // An unregistered task fails the call, not each item.
  engine.registry.resolve(task);
  const retry: EnqueueRetry = { retries, delayMs: retryDelayMs };
  const results = new Array<DeferManyResult>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      try {
        const { args, options: own } = itemOf(items[index]!, index);
        const info = await engine.deferWith(task, args, own ? { ...shared, ...own } : shared, { enqueueRetry: retry });
        results[index] = { ok: true, index, task: info };
      } catch (err) {
        results[index] = { ok: false, index, error: err instanceof Error ? err : new Error(String(err)) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}
