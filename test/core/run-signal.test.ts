/**
 * currentTask().signal is made on first use (issue 18: most tasks never read it, and an
 * AbortController plus a deadline timer per delivery cost CPU on every run). What fired before
 * the task first asked for it must still show: a run past its deadline, or one the app is
 * shutting down under, gets a signal that is already aborted, with the reason it would have had.
 */
import assert from 'node:assert/strict';
import { memoryStores } from '../../adapters/memory/index.js';
import { createCodec, encodeEnvelope } from '../../src/core/codec.js';
import { createDeferred, currentTask, type Deferred } from '../../src/index.js';

describe('core: a run signal made on first use', () => {
  const made: Deferred[] = [];
  afterEach(async () => {
    for (const d of made.splice(0)) await d.close({ graceMs: 0 });
  });

  function instance(leaseMs: number, body: () => Promise<void>) {
    const deferred = createDeferred({
      mode: 'embedded',
      stores: memoryStores(),
      leaseMs,
      heartbeatLeaseMs: 0,
      logger: false,
    });
    deferred.setTargetUrl('http://127.0.0.1:9/unused');
    made.push(deferred);
    const task = deferred.task('waits', body);
    const deliveryOf = (id: string) => ({
      body: encodeEnvelope({ task: 'waits', id, argsText: Buffer.from(createCodec().encodeArgs([])).toString('utf8') }),
      targetKind: 'http' as const,
      queueName: 'default',
      retryCount: 0,
      executionCount: 0,
      verified: true,
    });
    return { deferred, task, deliveryOf };
  }

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('first read after the deadline: already aborted with a TimeoutError', async () => {
    let seen: { aborted: boolean; reason: unknown } | undefined;
    const { deferred, task, deliveryOf } = instance(150, async () => {
      await sleep(300);
      const signal = currentTask()!.signal;
      seen = { aborted: signal.aborted, reason: signal.reason };
    });
    const info = await task.with({ countdown: 3600 }).defer();
    await deferred.engine.run(deliveryOf(info.id));
    assert.equal(seen?.aborted, true);
    assert.equal((seen?.reason as DOMException | undefined)?.name, 'TimeoutError');
  });

  it('first read before the deadline: not aborted, then fires at the deadline', async () => {
    let firedAfterMs = -1;
    let abortedAtFirstRead: boolean | undefined;
    const { deferred, task, deliveryOf } = instance(400, async () => {
      const started = Date.now();
      const signal = currentTask()!.signal;
      abortedAtFirstRead = signal.aborted;
      await new Promise<void>((resolve) => {
        signal.addEventListener('abort', () => {
          firedAfterMs = Date.now() - started;
          resolve();
        });
        setTimeout(resolve, 3_000);
      });
    });
    const info = await task.with({ countdown: 3600 }).defer();
    await deferred.engine.run(deliveryOf(info.id));
    assert.equal(abortedAtFirstRead, false);
    assert.ok(firedAfterMs >= 300 && firedAfterMs < 2_000, `fired ${firedAfterMs} ms after the run started (lease 400 ms)`);
  });

  it('the app shuts down (grace spent) before the task first reads it: the signal it then gets is aborted', async () => {
    let aborted: boolean | undefined;
    let reason: unknown;
    let release!: () => void;
    const started = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { deferred, task, deliveryOf } = instance(60_000, async () => {
      release();
      await sleep(300);
      aborted = currentTask()!.signal.aborted;
      reason = currentTask()!.signal.reason;
    });
    const info = await task.with({ countdown: 3600 }).defer();
    const run = deferred.engine.run(deliveryOf(info.id));
    await started;
    await deferred.close({ graceMs: 50 });
    await run;
    assert.equal(aborted, true);
    assert.match(String((reason as DOMException).message), /shutting down/);
  });

  it('a signal read twice is the same signal', async () => {
    let same: boolean | undefined;
    const { deferred, task, deliveryOf } = instance(60_000, async () => {
      const first = currentTask()!.signal;
      same = currentTask()!.signal === first;
    });
    const info = await task.with({ countdown: 3600 }).defer();
    await deferred.engine.run(deliveryOf(info.id));
    assert.equal(same, true);
  });
});
