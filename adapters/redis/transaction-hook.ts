/**
 * Joins a defer to the user's MULTI (ioredis `client.multi()`, pipeline mode, the default).
 *
 * stage() queues ONE conditional command into the MULTI: lua/createTask.lua with the outbox entry
 * and the payload. MULTI cannot read, and a WATCH on the reference would abort the user's whole
 * transaction whenever another defer touched it; the script instead makes the reference check
 * when EXEC runs it, and writes the record, the reference claim, the outbox entry and the payload
 * only if the reference is free. Its reply says which.
 *
 * afterCommit is arranged by wrapping this MULTI's own `exec` once (the first stage() on it): the
 * wrapper calls ioredis' exec, and when it resolves with results and none of them is an error,
 * runs each staged afterCommit exactly once, for the defers whose script reply is "created", and
 * only then resolves the user's promise (or calls their callback) with the same results. It never
 * runs it when EXEC is refused (EXECABORT, rejected), aborted by a WATCH (null), or never sent
 * (the MULTI dropped or DISCARDed). A failing afterCommit rejects exec(), as the memory store's
 * commit() does; the transaction itself has committed, and the outbox entry lets the sweeper
 * enqueue the task later. If another command of the transaction failed, Redis has still applied
 * the rest (it has no rollback): the task is written but not enqueued now; the outbox sweeper
 * enqueues it. If the reference was taken, nothing of the defer is written and afterCommit does
 * not run.
 *
 * Redis Cluster: a MULTI must stay in one hash slot. The defer's keys share the task's slot and,
 * there, the outbox is kept per slot, so it works when the user's own keys in the MULTI are in
 * that slot too: give the task a reference carrying the same hash tag as those keys (e.g.
 * reference "{order:42}:receipt" with keys "{order:42}:..."), and name a stored payload after the
 * task id. The listing indexes live in other slots and are written after EXEC succeeds.
 */
import type { ChainableCommander } from 'ioredis';
import type { StagedDefer, TransactionHook } from '../../src/core/stores.js';
import { CloudDeferError } from '../../src/core/errors.js';
import type { AdapterContext } from './context.js';
import { createTaskCall, parseCreateTaskReply } from './create-task.js';

type ExecResults = Awaited<ReturnType<ChainableCommander['exec']>>;
type ExecCallback = Parameters<ChainableCommander['exec']>[0];

interface StagedCommit {
  /** Index of the script's reply in EXEC's results. */
  position: number;
  staged: StagedDefer;
  afterCommit: () => Promise<void>;
}

interface TransactionState {
  commits: StagedCommit[];
  execStarted: boolean;
}

/** ioredis internals relied on (stable since ioredis 4): a MULTI is a Pipeline queueing MULTI first. */
interface PipelineShape {
  isPipeline?: unknown;
  redis?: unknown;
  _queue?: unknown;
}

export class RedisTransactionHook implements TransactionHook<ChainableCommander> {
  readonly name = 'redis';
  private readonly transactions = new WeakMap<object, TransactionState>();

  constructor(private readonly ctx: AdapterContext) {}

  /** A MULTI (pipeline mode) created by this stores' client. */
  accepts(transaction: unknown): transaction is ChainableCommander {
    if (typeof transaction !== 'object' || transaction === null) return false;
    const pipeline = transaction as PipelineShape;
    if (pipeline.isPipeline !== true || pipeline.redis !== this.ctx.client || !Array.isArray(pipeline._queue)) return false;
    const first: unknown = pipeline._queue[0];
    return typeof first === 'object' && first !== null && (first as { name?: unknown }).name === 'multi';
  }

  async stage(transaction: ChainableCommander, staged: StagedDefer, afterCommit: () => Promise<void>): Promise<void> {
    const state = this.stateOf(transaction);
    const refuseIfExecuted = (): void => {
      if (state.execStarted) {
        throw new CloudDeferError('INVALID_STATE', 'This MULTI has already been executed; start a new one to defer in a transaction.');
      }
    };
    refuseIfExecuted();
    const call = createTaskCall(this.ctx, staged.record, Date.now(), { outbox: staged.outbox, payload: staged.payload });
    if (this.ctx.cluster) {
      // Registered before EXEC so that the outbox sweeper finds this slot even if we die right after it.
      const { client, layout } = this.ctx;
      await this.ctx.guard('register an outbox slot', () => client.sadd(layout.outboxSlots(), layout.outboxKeys(staged.outbox.taskId).tag));
      refuseIfExecuted(); // exec() may have been called while we waited
    }
    // MULTI is the pipeline's first queued command, so EXEC's results start one later.
    const position = transaction.length - 1;
    this.ctx.scripts.queue(transaction, 'createTask', call.keys, call.args);
    state.commits.push({ position, staged, afterCommit });
  }

  private stateOf(transaction: ChainableCommander): TransactionState {
    let state = this.transactions.get(transaction);
    if (!state) {
      state = { commits: [], execStarted: false };
      this.transactions.set(transaction, state);
      this.wrapExec(transaction, state);
    }
    return state;
  }

  private wrapExec(transaction: ChainableCommander, state: TransactionState): void {
    const originalExec = transaction.exec;
    const hook = this;
    transaction.exec = function execThenCommitHooks(this: ChainableCommander, callback?: ExecCallback) {
      // ioredis calls exec again itself when it retries a redirected Cluster pipeline.
      if (state.execStarted) return originalExec.call(this, callback);
      state.execStarted = true;
      const done = originalExec.call(this).then(async (results) => {
        await hook.afterExec(results, state.commits);
        return results;
      });
      if (callback)
        done.then(
          (results) => callback(null, results),
          (error: Error) => callback(error),
        );
      return done;
    };
  }

  private async afterExec(results: ExecResults, commits: readonly StagedCommit[]): Promise<void> {
    if (!results || results.some(([error]) => error)) return;
    const failures: unknown[] = [];
    for (const commit of commits) {
      const reply = parseCreateTaskReply(results[commit.position]?.[1]);
      if (reply.kind !== 'created') continue;
      try {
        await commit.afterCommit();
      } catch (error) {
        failures.push(error);
      }
      if (this.ctx.cluster) {
        await this.ctx.guard('index a task record', () => this.ctx.indexes.added(commit.staged.record)).catch((error: unknown) => failures.push(error));
      }
    }
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, 'Several deferred enqueues failed after the Redis transaction committed.');
  }
}
