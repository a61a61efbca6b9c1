/**
 * deferIteration with finalize (djangae's defer_iteration_with_finalize, made robust): a start
 * task splits the source into shards and records a marker per shard; each shard walks its range
 * from a cursor, re-deferring itself before its deadline or after a callback error; the shard
 * that completes the last marker defers finalize under a fixed id, so it runs exactly once.
 */
import { currentTask } from '../core/context.js';
import type { DeferOptions, DeferredEngine, DeferredTask, TaskInfo } from '../core/engine.js';
import { errorInfo } from '../core/engine.js';
import { CloudDeferError } from '../core/errors.js';
import type { IterationRecord, IterationSource, IterationStore, SourceSpec } from '../core/iteration.js';
import type { Logger } from '../core/logger.js';
import { ARRAY_SOURCE_KIND, arraySource } from './array-source.js';
import { assertOptionKeys } from '../core/option-keys.js';

const START_TASK = 'cloud-defer.iteration.start';
const SHARD_TASK = 'cloud-defer.iteration.shard';
const FINALIZE_TASK = 'cloud-defer.iteration.finalize';
const DEFAULT_DEADLINE_SECONDS = 600;
/**
 * A running shard reads its iteration record for a cancel before an item when this long has
 * passed since its last look (a read per item made 100,000-item walks on Datastore crawl).
 */
const CANCEL_CHECK_MS = 200;

export interface DeferIterationOptions<A extends unknown[]> {
  /** Extra arguments for callback (after the item) and finalize. */
  args?: A;
  /** Default 5. */
  shards?: number;
  queue?: string;
  /** Delete the iteration record once finalize has run (default true; false keeps it as a log). */
  deleteMarker?: boolean;
  /** Seconds kept free before the deadline; default: the longest callback so far x 1.1. */
  bufferTime?: number;
  /** The shard tasks' dispatch deadline in seconds (default 600, as Cloud Tasks). */
  dispatchDeadline?: number;
  /** Items read per page (default 200). */
  pageSize?: number;
  /** Seconds before a shard re-deferred after a callback error runs again (default 1). */
  retryCountdown?: number;
  /** Callbacks slower than this many ms are logged with their duration (default 30 000). */
  slowCallbackMs?: number;
  /** Defer the start inside this backend transaction. */
  transaction?: unknown;
}

const iterationKeys: Record<keyof DeferIterationOptions<unknown[]>, true> = {
  args: true,
  shards: true,
  queue: true,
  deleteMarker: true,
  bufferTime: true,
  dispatchDeadline: true,
  pageSize: true,
  retryCountdown: true,
  slowCallbackMs: true,
  transaction: true,
};
const ITERATION_OPTION_KEYS = Object.keys(iterationKeys);

export interface IterationInfo {
  id: string;
  /** Resolves once finalize has run (polls the record; with deleteMarker the record is gone then). */
  wait(options?: { timeoutMs?: number }): Promise<void>;
}

interface ShardPlan {
  iterationId: string;
  callbackTask: string;
  finalizeTask: string;
  sourceKind: string;
  args: unknown[];
  queue: string;
  deadlineMs: number;
  bufferMs?: number;
  pageSize: number;
  retryCountdown: number;
  slowCallbackMs: number;
  deleteMarker: boolean;
}

interface StartArgs extends Omit<ShardPlan, 'iterationId'> {
  shards: number;
  spec: unknown;
}

export class Iterations {
  private readonly sources = new Map<string, IterationSource>();
  private readonly startTask: DeferredTask<[string, StartArgs]>;
  private readonly shardTask: DeferredTask<[ShardPlan, number, unknown, string | undefined]>;
  private readonly finalizeTask: DeferredTask<[string, string, unknown[], boolean]>;

  constructor(
    private readonly engine: DeferredEngine,
    private readonly logger: Logger,
    private readonly retentionMs: number,
    private readonly now: () => number,
  ) {
    this.register(arraySource as IterationSource);
    this.startTask = engine.task(START_TASK, (id: string, plan: StartArgs) => this.start(id, plan));
    this.shardTask = engine.task(SHARD_TASK, (plan: ShardPlan, shard: number, range: unknown, after: string | undefined) =>
      this.runShard(plan, shard, range, after),
    );
    this.finalizeTask = engine.task(FINALIZE_TASK, (id: string, finalize: string, args: unknown[], deleteMarker: boolean) =>
      this.finalize(id, finalize, args, deleteMarker),
    );
  }

  /** Make a source kind available to the shards that run in this process. */
  register(source: IterationSource): void {
    this.sources.set(source.kind, source);
  }

  private store(): IterationStore {
    const store = this.engine.stores.iterations;
    if (!store) {
      throw new CloudDeferError('INVALID_OPTION', `The ${this.engine.stores.kind} stores do not support deferIteration; use the memory or Redis stores.`);
    }
    return store;
  }

  async deferIteration<Item, A extends unknown[]>(
    source: readonly Item[] | SourceSpec,
    callback: DeferredTask<[Item, ...A]>,
    finalize: DeferredTask<A>,
    options: DeferIterationOptions<A> = {},
  ): Promise<IterationInfo> {
    assertOptionKeys('deferIteration()', options, ITERATION_OPTION_KEYS);
    this.store();
    const spec: SourceSpec = Array.isArray(source) ? { kind: ARRAY_SOURCE_KIND, spec: source } : (source as SourceSpec);
    if (!this.sources.has(spec.kind)) {
      throw new CloudDeferError(
        'INVALID_OPTION',
        `No iteration source of kind "${spec.kind}" is registered; pass an array, or register the source with deferred.registerSource(...).`,
      );
    }
    const shards = options.shards ?? 5;
    if (!Number.isInteger(shards) || shards < 1 || shards > 1000) {
      throw new CloudDeferError('INVALID_OPTION', 'shards must be a whole number from 1 to 1000.');
    }
    const deadline = options.dispatchDeadline ?? DEFAULT_DEADLINE_SECONDS;
    const plan: StartArgs = {
      callbackTask: this.engine.registry.resolve(callback).name,
      finalizeTask: this.engine.registry.resolve(finalize).name,
      sourceKind: spec.kind,
      spec: spec.spec,
      shards,
      args: options.args ?? [],
      queue: options.queue ?? 'default',
      deadlineMs: deadline * 1000,
      ...(options.bufferTime !== undefined ? { bufferMs: options.bufferTime * 1000 } : {}),
      pageSize: options.pageSize ?? 200,
      retryCountdown: options.retryCountdown ?? 1,
      slowCallbackMs: options.slowCallbackMs ?? 30_000,
      deleteMarker: options.deleteMarker ?? true,
    };
    const id = `it-${crypto.randomUUID().replace(/-/g, '')}`;
    const deferOptions: DeferOptions = {
      queue: plan.queue,
      dispatchDeadline: deadline,
      ...(options.transaction !== undefined ? { transaction: options.transaction } : {}),
    };
    await this.startTask.with(deferOptions).defer(id, plan);
    return { id, wait: (o) => this.waitFor(id, o) };
  }

  private async waitFor(id: string, options: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    const finalizeRecord = `${id}-finalize`;
    for (;;) {
      const record = await this.engine.getTask(finalizeRecord);
      if (record?.status === 'succeeded') return;
      if (record?.status === 'failed') throw new CloudDeferError('INVALID_STATE', `Iteration ${id}: finalize failed: ${record.lastError?.message ?? ''}`);
      if (Date.now() > deadline) throw new CloudDeferError('TIMEOUT', `Iteration ${id} did not finish in time.`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The start task: split once, write the marker, defer one task per shard. */
  private async start(id: string, plan: StartArgs): Promise<void> {
    const store = this.store();
    const source = this.sourceOf(plan.sourceKind);
    const now = this.now();
    const existing = await store.getIteration(id);
    if (!existing) {
      const record: IterationRecord = {
        id,
        callbackTask: plan.callbackTask,
        finalizeTask: plan.finalizeTask,
        queue: plan.queue,
        shardCount: 0,
        status: 'splitting',
        createdAt: now,
        updatedAt: now,
        shards: [],
        deleteMarker: plan.deleteMarker,
        expiresAt: now + this.retentionMs,
      };
      await store.createIteration(record);
    }
    const ranges = await source.split(plan.spec, plan.shards);
    await store.startIteration(id, ranges.length, now);
    const { spec: _spec, shards: _shards, ...shared } = plan;
    const shardPlan: ShardPlan = { ...shared, iterationId: id };
    if (ranges.length === 0) {
      // Nothing to walk: finalize straight away.
      await this.deferFinalize(shardPlan);
      return;
    }
    await Promise.all(
      ranges.map((range, index) =>
        this.engine.deferWith(
          this.shardTask,
          [shardPlan, index, range, undefined],
          { queue: plan.queue, dispatchDeadline: plan.deadlineMs / 1000 },
          // Fixed ids: a retried start task re-defers the same shards instead of new ones.
          { id: `${id}-s${index}-0`, idempotent: true, iterationId: id, shardIndex: index },
        ),
      ),
    );
  }

  private async runShard(plan: ShardPlan, shardIndex: number, range: unknown, after: string | undefined): Promise<void> {
    const store = this.store();
    const source = this.sourceOf(plan.sourceKind);
    const callback = this.engine.registry.get(plan.callbackTask);
    if (!callback) throw new CloudDeferError('UNREGISTERED_TASK', `Iteration callback "${plan.callbackTask}" is not registered in this app.`);
    const started = this.now();
    const deadline = started + plan.deadlineMs;
    let longest = 0;
    let cursor = after;
    let processedInRun = 0;
    let unsaved = 0;
    let checkedAt = 0;
    const cancelled = async (): Promise<boolean> => {
      checkedAt = this.now();
      return (await store.getIteration(plan.iterationId))?.status === 'cancelled';
    };
    if (await cancelled()) return;
    const flush = async (extra: { errorsDelta?: number; lastError?: ReturnType<typeof errorInfo> } = {}) => {
      if (unsaved === 0 && !extra.errorsDelta) return;
      await store.recordShardProgress(plan.iterationId, shardIndex, {
        processedDelta: unsaved,
        errorsDelta: extra.errorsDelta ?? 0,
        now: this.now(),
        ...(extra.lastError ? { lastError: extra.lastError } : {}),
      });
      unsaved = 0;
    };
    for (;;) {
      const page = await source.read(range, cursor, plan.pageSize);
      for (const item of page.items) {
        if (this.now() - checkedAt >= CANCEL_CHECK_MS && (await cancelled())) {
          await flush();
          return;
        }
        const buffer = plan.bufferMs ?? longest * 1.1;
        if (processedInRun > 0 && this.now() + buffer >= deadline) {
          await flush();
          await this.continueShard(plan, shardIndex, range, cursor, 0);
          return;
        }
        const t0 = this.now();
        try {
          const result = (callback.fn as (...a: unknown[]) => unknown)(item.value, ...plan.args);
          // Awaited only when it is a promise: an await per synchronous item costs a microtask
          // (more with AsyncLocalStorage on), which was a fifth of a no-op iteration's time.
          if (isPromiseLike(result)) await result;
        } catch (err) {
          await flush({ errorsDelta: 1, lastError: errorInfo(err) });
          // An error on the first item of a run goes to the queue's retry policy; otherwise
          // continue from the failing item (it is retried, those before it are not).
          if (processedInRun === 0) throw err;
          this.logger.warn(`iteration ${plan.iterationId} shard ${shardIndex}: callback failed; re-deferring from the failing item`, {
            error: errorInfo(err).message,
          });
          await this.continueShard(plan, shardIndex, range, cursor, plan.retryCountdown);
          return;
        }
        const took = this.now() - t0;
        if (took > longest) longest = took;
        if (took > plan.slowCallbackMs) {
          this.logger.warn(`iteration ${plan.iterationId} shard ${shardIndex}: slow callback (${took} ms) on item ${item.key}`, { durationMs: took });
        }
        cursor = item.key;
        processedInRun += 1;
        unsaved += 1;
      }
      await flush();
      if (page.done) break;
    }
    if (await cancelled()) return;
    const { allDone } = await store.completeShard(plan.iterationId, shardIndex, this.now());
    if (allDone) await this.deferFinalize(plan);
  }

  private async deferFinalize(plan: ShardPlan): Promise<void> {
    if ((await this.store().getIteration(plan.iterationId))?.status === 'cancelled') return;
    await this.store().finishIteration(plan.iterationId, 'finalizing', this.now());
    // Fixed id + idempotent: whichever shard (or retry) gets here first creates it; others
    // re-enqueue the same one, and the execution guard runs it once.
    await this.engine.deferWith(
      this.finalizeTask,
      [plan.iterationId, plan.finalizeTask, plan.args, plan.deleteMarker],
      { queue: plan.queue },
      { id: `${plan.iterationId}-finalize`, idempotent: true, iterationId: plan.iterationId },
    );
  }

  private continueShard(plan: ShardPlan, shardIndex: number, range: unknown, cursor: string | undefined, countdown: number): Promise<TaskInfo> {
    return this.engine.deferWith(
      this.shardTask,
      [plan, shardIndex, range, cursor],
      { queue: plan.queue, dispatchDeadline: plan.deadlineMs / 1000, ...(countdown > 0 ? { countdown } : {}) },
      { iterationId: plan.iterationId, shardIndex },
    );
  }

  private async finalize(id: string, finalizeTask: string, args: unknown[], deleteMarker: boolean): Promise<void> {
    const finalize = this.engine.registry.get(finalizeTask);
    if (!finalize) throw new CloudDeferError('UNREGISTERED_TASK', `Iteration finalize "${finalizeTask}" is not registered in this app.`);
    if ((await this.store().getIteration(id))?.status === 'cancelled') return;
    await (finalize.fn as (...a: unknown[]) => unknown)(...args);
    const store = this.store();
    if (deleteMarker) await store.deleteIteration(id);
    else await store.finishIteration(id, 'succeeded', this.now());
  }

  /**
   * Cancel an iteration (the console's action): its record says cancelled, its waiting shard tasks
   * are cancelled, a running shard stops at its next item, and finalize never runs.
   */
  async cancel(id: string): Promise<{ cancelledTasks: number }> {
    const store = this.store();
    const record = await store.getIteration(id);
    if (!record) throw new CloudDeferError('NOT_FOUND', `No iteration ${id} (it may have finished and been deleted).`);
    if (!['splitting', 'running'].includes(record.status)) {
      throw new CloudDeferError('INVALID_STATE', `Iteration ${id} is ${record.status}; only a splitting or running iteration can be cancelled.`);
    }
    await store.finishIteration(id, 'cancelled', this.now());
    let cancelledTasks = 0;
    for (const task of await this.pendingTasks(id)) if (await this.engine.cancel(task.id)) cancelledTasks += 1;
    return { cancelledTasks };
  }

  /**
   * Skip the item a shard is stuck on: only while the shard waits for a retry (its task queued or
   * retrying, not running). The waiting task is cancelled and the shard re-deferred after the
   * item; the skip is recorded as the shard's last error (code SKIPPED).
   */
  async skipItem(id: string, shardIndex: number): Promise<{ skippedKey: string; taskId: string }> {
    const store = this.store();
    const record = await store.getIteration(id);
    if (!record) throw new CloudDeferError('NOT_FOUND', `No iteration ${id} (it may have finished and been deleted).`);
    if (record.status !== 'running') throw new CloudDeferError('INVALID_STATE', `Iteration ${id} is ${record.status}; items are skipped only while it runs.`);
    const waiting = (await this.pendingTasks(id)).find((t) => t.taskName === SHARD_TASK && t.shardIndex === shardIndex);
    if (!waiting || waiting.argsJson === undefined) {
      throw new CloudDeferError('INVALID_STATE', `Shard ${shardIndex} of ${id} is not waiting for a retry (it is running or done); try again when it is.`);
    }
    const [plan, , range, after] = this.engine.codec.decodeArgs(Buffer.from(waiting.argsJson, 'utf8')) as [ShardPlan, number, unknown, string | undefined];
    const page = await this.sourceOf(plan.sourceKind).read(range, after, 1);
    const item = page.items[0];
    if (!item) throw new CloudDeferError('INVALID_STATE', `Shard ${shardIndex} of ${id} has no item left to skip.`);
    // The cancel is the claim: a shard that started meanwhile is left alone.
    if (!(await this.engine.cancel(waiting.id)))
      throw new CloudDeferError('INVALID_STATE', `Shard ${shardIndex} of ${id} started meanwhile; nothing was skipped.`);
    const previous = record.shards.find((s) => s.index === shardIndex)?.lastError?.message;
    await store.recordShardProgress(id, shardIndex, {
      processedDelta: 0,
      errorsDelta: 0,
      lastError: { message: `Item ${item.key} skipped from the console${previous ? ` (it failed with: ${previous})` : ''}`, code: 'SKIPPED' },
      now: this.now(),
    });
    const next = await this.continueShard(plan, shardIndex, range, item.key, 0);
    this.logger.warn(`iteration ${id} shard ${shardIndex}: item ${item.key} skipped`, { taskId: next.id });
    return { skippedKey: item.key, taskId: next.id };
  }

  /** Items over all shards, when the source can count its ranges (arrays can); undefined otherwise. */
  async itemTotal(id: string): Promise<number | undefined> {
    const record = await this.store().getIteration(id);
    if (!record || record.shardCount === 0) return undefined;
    let total = 0;
    for (let index = 0; index < record.shardCount; index += 1) {
      const first = await this.engine.getTask(`${id}-s${index}-0`);
      if (first?.argsJson === undefined) return undefined;
      const [plan, , range] = this.engine.codec.decodeArgs(Buffer.from(first.argsJson, 'utf8')) as [ShardPlan, number, unknown];
      const size = this.sources.get(plan.sourceKind)?.size?.(range);
      if (size === undefined) return undefined;
      total += size;
    }
    return total;
  }

  private async pendingTasks(id: string): Promise<Awaited<ReturnType<DeferredEngine['listTasks']>>['records']> {
    const out = [];
    for (const status of ['queued', 'retrying'] as const) {
      let cursor: string | undefined;
      do {
        const page = await this.engine.listTasks({ iterationId: id, status, limit: 1000, ...(cursor ? { cursor } : {}) });
        out.push(...page.records);
        cursor = page.nextCursor;
      } while (cursor);
    }
    return out;
  }

  private sourceOf(kind: string): IterationSource {
    const source = this.sources.get(kind);
    if (!source) throw new CloudDeferError('INVALID_OPTION', `No iteration source of kind "${kind}" is registered in this process.`);
    return source;
  }
}

/** The shard index inside an iteration callback; undefined anywhere else. */
export function currentShardIndex(): number | undefined {
  return currentTask()?.shardIndex;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}
