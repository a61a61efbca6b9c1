/** What a running task can learn about itself, through AsyncLocalStorage. */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface TaskContext {
  /** cloud-defer's task id (the record id). */
  readonly id: string;
  /** The registered task name. */
  readonly name: string;
  readonly queue: string;
  /** X-CloudTasks-TaskRetryCount: 0 on the first attempt. */
  readonly attempt: number;
  /** X-CloudTasks-TaskExecutionCount: attempts that got an answer from the handler. */
  readonly executionCount: number;
  readonly eta: Date;
  readonly reference?: string;
  /** Set inside an iteration shard's callback. */
  readonly shardIndex?: number;
  readonly iterationId?: string;
  /**
   * Fires when the run should stop: at the end of its lease (the dispatch deadline, after which
   * Cloud Tasks has given up on this attempt) and when the app shuts down (deferred.close()).
   * Pass it to fetch() and friends, or check `signal.aborted` between steps.
   */
  readonly signal: AbortSignal;
  /**
   * Writes this run's `succeeded` record in `transaction` (a MULTI of the Redis stores' client, a
   * Datastore or Firestore transaction of the stores' client, a memory transaction, or the one
   * stores.transaction() hands you), so the task's own writes in it and its outcome commit
   * together: a process killed after that commit does not have the task run again, and a run
   * that has lost its lease (another delivery took over) fails the transaction instead of
   * committing twice. On Firestore call it before the transaction's own writes (it reads).
   */
  recordSuccessIn(transaction: unknown): Promise<void>;
}

const storage = new AsyncLocalStorage<TaskContext>();

/** The task this code runs in, or undefined outside a deferred task. */
export function currentTask(): TaskContext | undefined {
  return storage.getStore();
}

export function runInTaskContext<T>(context: TaskContext, fn: () => T): T {
  return storage.run(context, fn);
}
