/** RetryConfig as documented: the backoff curve, when a task is given up, and harder backoff on throttling. */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { advanceUntilRequests, assertGrpcError, PARENT, queuePath, seconds, startTestContext, uniqueQueueId, type TestContext } from './helpers.js';

describe('emulator: retries', () => {
  let ctx: TestContext;
  beforeEach(async () => {
    ctx = await startTestContext();
  });
  afterEach(async () => {
    await ctx.close();
  });

  async function failingTask(retryConfig: Record<string, unknown>, reply = 500): Promise<string> {
    const name = queuePath(uniqueQueueId());
    await ctx.client.createQueue({ parent: PARENT, queue: { name, retryConfig } });
    ctx.target.responder = () => ({ status: reply });
    const [task] = await ctx.client.createTask({ parent: name, task: { httpRequest: { url: ctx.target.url() } } });
    return task.name!;
  }

  /** Gaps in seconds between the arrivals at the target. */
  function arrivalGaps(): number[] {
    const times = ctx.target.requests.map((r) => r.receivedAt);
    return times.slice(1).map((t, i) => (t - times[i]!) / 1000);
  }

  /**
   * Runs the clock for `totalMs` in steps no longer than the shortest backoff (so each step holds at
   * most one attempt, settled before the next) and returns how many attempts arrived in all.
   */
  async function attemptsInAll(stepMs: number, totalMs = 24 * 3600_000): Promise<number> {
    for (let elapsed = 0; elapsed < totalMs; elapsed += stepMs) {
      await ctx.clock.advance(stepMs);
      await ctx.emulator.idle();
    }
    return ctx.target.requests.length;
  }

  it('follows the documented curve: 10 s / 300 s / 3 doublings gives 10, 20, 40, 80, 160, 240, 300, 300 s', async () => {
    const name = await failingTask({ minBackoff: seconds(10), maxBackoff: seconds(300), maxDoublings: 3, maxAttempts: 9 });
    await ctx.target.waitForRequests(1);
    await advanceUntilRequests(ctx, 9);
    assert.deepEqual(arrivalGaps(), [10, 20, 40, 80, 160, 240, 300, 300]);
    const etas = ctx.target.requests.map((r) => Number(r.headers['x-cloudtasks-tasketa']) * 1000);
    assert.deepEqual(
      etas,
      ctx.target.requests.map((r) => r.receivedAt),
      'each attempt at its ETA',
    );
    assert.equal(await attemptsInAll(300_000), 9, 'max_attempts 9, no max_retry_duration: given up after the 9th');
    await assertGrpcError(ctx.client.getTask({ name }), status.NOT_FOUND);
  });

  it('doubles from the default 0.1 s minimum backoff', async () => {
    await failingTask({ maxAttempts: 5 });
    await ctx.target.waitForRequests(1);
    await advanceUntilRequests(ctx, 5, { stepMs: 100 });
    assert.deepEqual(arrivalGaps(), [0.1, 0.2, 0.4, 0.8]);
  });

  it('with max_attempts and no max_retry_duration, stops after max_attempts', async () => {
    const name = await failingTask({ minBackoff: seconds(1), maxBackoff: seconds(10), maxAttempts: 3 });
    await ctx.target.waitForRequests(1);
    assert.equal(await attemptsInAll(1000, 600_000), 3);
    await assertGrpcError(ctx.client.getTask({ name }), status.NOT_FOUND);
  });

  it('with both limits, keeps retrying past max_attempts until max_retry_duration has passed', async () => {
    await failingTask({
      minBackoff: seconds(2),
      maxBackoff: seconds(2),
      maxAttempts: 3,
      maxRetryDuration: seconds(20),
    });
    await ctx.target.waitForRequests(1);
    // Attempts at 0, 2, 4, ... 20 s: at 20 s both limits are reached.
    assert.equal(await attemptsInAll(1000, 600_000), 11);
    assert.deepEqual(arrivalGaps(), Array(10).fill(2));
  });

  it('with both limits, keeps retrying past max_retry_duration until max_attempts is reached', async () => {
    await failingTask({
      minBackoff: seconds(1),
      maxBackoff: seconds(1),
      maxAttempts: 6,
      maxRetryDuration: seconds(2),
    });
    await ctx.target.waitForRequests(1);
    assert.equal(await attemptsInAll(1000, 600_000), 6);
  });

  it('with unlimited attempts (-1), stops once max_retry_duration has passed', async () => {
    await failingTask({ minBackoff: seconds(2), maxBackoff: seconds(2), maxAttempts: -1, maxRetryDuration: seconds(10) });
    await ctx.target.waitForRequests(1);
    assert.equal(await attemptsInAll(1000, 600_000), 6, 'attempts at 0, 2, 4, 6, 8, 10 s');
  });

  it('with unlimited attempts and no duration limit, never gives up', async () => {
    const name = await failingTask({ minBackoff: seconds(600), maxBackoff: seconds(600), maxAttempts: -1 });
    await ctx.target.waitForRequests(1);
    assert.equal(await attemptsInAll(600_000), 1 + 24 * 6);
    const [task] = await ctx.client.getTask({ name });
    assert.equal(task.dispatchCount, 145);
  });

  describe('429, 503 and Retry-After', () => {
    async function gapAfter(reply: { status: number; headers?: Record<string, string> }): Promise<number> {
      const name = queuePath(uniqueQueueId());
      await ctx.client.createQueue({
        parent: PARENT,
        queue: { name, retryConfig: { minBackoff: seconds(10), maxBackoff: seconds(1000) } },
      });
      ctx.target.responder = (_request, index) => (index === 0 ? reply : { status: 200 });
      await ctx.client.createTask({ parent: name, task: { httpRequest: { url: ctx.target.url() } } });
      await ctx.target.waitForRequests(1);
      await advanceUntilRequests(ctx, 2);
      return arrivalGaps()[0]!;
    }

    it('retries a 500 after min_backoff', async () => {
      assert.equal(await gapAfter({ status: 500 }), 10);
    });

    it('backs off harder after a 429', async () => {
      assert.equal(await gapAfter({ status: 429 }), 20);
    });

    it('backs off harder after a 503', async () => {
      assert.equal(await gapAfter({ status: 503 }), 20);
    });

    it('honours Retry-After in seconds', async () => {
      assert.equal(await gapAfter({ status: 503, headers: { 'Retry-After': '120' } }), 120);
    });

    it('honours Retry-After as an HTTP date', async () => {
      const when = new Date(ctx.clock.now() + 300_000).toUTCString();
      assert.equal(await gapAfter({ status: 429, headers: { 'Retry-After': when } }), 300);
    });

    it('never retries sooner than the backoff, whatever Retry-After says', async () => {
      assert.equal(await gapAfter({ status: 500, headers: { 'Retry-After': '1' } }), 10);
    });
  });
});
