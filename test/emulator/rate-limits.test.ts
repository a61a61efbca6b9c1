/** RateLimits as seen at the target: the token bucket (burst, refill) and max_concurrent_dispatches. */
import * as assert from 'node:assert/strict';
import { deferred, PARENT, queuePath, startTestContext, uniqueQueueId, type TestContext } from './helpers.js';

describe('emulator: rate limits', () => {
  let ctx: TestContext;
  beforeEach(async () => {
    ctx = await startTestContext();
  });
  afterEach(async () => {
    await ctx.close();
  });

  /** A paused queue holding `count` due tasks. */
  async function pausedQueueWithTasks(rateLimits: Record<string, number>, count: number): Promise<string> {
    const name = queuePath(uniqueQueueId());
    await ctx.client.createQueue({ parent: PARENT, queue: { name, rateLimits } });
    await ctx.client.pauseQueue({ name });
    for (let i = 0; i < count; i++) {
      await ctx.client.createTask({ parent: name, task: { httpRequest: { url: ctx.target.url(`/t${i}`) } } });
    }
    return name;
  }

  it('sends a burst of max_burst_size, then refills at max_dispatches_per_second', async () => {
    const name = await pausedQueueWithTasks({ maxDispatchesPerSecond: 50 }, 30);
    const [queue] = await ctx.client.getQueue({ name });
    assert.equal(queue.rateLimits?.maxBurstSize, 10);

    await ctx.client.resumeQueue({ name });
    await ctx.target.waitForRequests(10);
    await ctx.emulator.idle();
    assert.equal(ctx.target.requests.length, 10, 'the bucket starts full: one burst');

    await ctx.clock.advance(100);
    await ctx.emulator.idle();
    assert.equal(ctx.target.requests.length, 15, '50/s refills 5 tokens in 100 ms');

    await ctx.clock.advance(19);
    await ctx.emulator.idle();
    assert.equal(ctx.target.requests.length, 15, 'not a whole token yet');
    await ctx.clock.advance(1);
    await ctx.emulator.idle();
    assert.equal(ctx.target.requests.length, 16);

    const counts: number[] = [];
    for (let step = 0; step < 15; step++) {
      await ctx.clock.advance(20);
      await ctx.emulator.idle();
      counts.push(ctx.target.requests.length);
    }
    assert.deepEqual(counts, [17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 30], 'one every 20 ms, then done');
  });

  it('refills the bucket while idle, up to max_burst_size', async () => {
    const name = await pausedQueueWithTasks({ maxDispatchesPerSecond: 10 }, 6);
    await ctx.client.resumeQueue({ name });
    await ctx.target.waitForRequests(2);
    await ctx.emulator.idle();
    assert.equal(ctx.target.requests.length, 2, '10/s gives a burst of 2');
    await ctx.clock.advance(60_000);
    await ctx.emulator.idle();
    assert.equal(ctx.target.requests.length, 6);
  });

  it('keeps at most max_concurrent_dispatches requests in flight at the target', async () => {
    const name = queuePath(uniqueQueueId());
    await ctx.client.createQueue({ parent: PARENT, queue: { name, rateLimits: { maxConcurrentDispatches: 3 } } });
    const holds = Array.from({ length: 8 }, () => deferred<{ status: number }>());
    ctx.target.responder = (_request, index) => holds[index]!.promise;
    for (let i = 0; i < 8; i++) {
      await ctx.client.createTask({ parent: name, task: { httpRequest: { url: ctx.target.url(`/c${i}`) } } });
    }
    await ctx.target.waitForRequests(3);
    const [tasks] = await ctx.client.listTasks({ parent: name });
    assert.equal(tasks.filter((t) => t.dispatchCount === 1).length, 3, 'three dispatched, five waiting');
    assert.equal(ctx.target.inFlight, 3);

    for (let answered = 0; answered < 8; answered++) {
      holds[answered]!.resolve({ status: 200 });
      await ctx.target.waitForRequests(Math.min(8, answered + 4));
    }
    await ctx.emulator.idle();
    assert.equal(ctx.target.requests.length, 8);
    assert.equal(ctx.target.maxInFlight, 3, 'never more than three at once');
  });

  it('RunTask ignores the rate limit', async () => {
    const name = await pausedQueueWithTasks({ maxDispatchesPerSecond: 1 }, 3);
    await ctx.client.resumeQueue({ name });
    await ctx.target.waitForRequests(1);
    await ctx.emulator.idle();
    assert.equal(ctx.target.requests.length, 1, 'burst of 1 at 1/s');
    const [waiting] = await ctx.client.listTasks({ parent: name });
    await ctx.client.runTask({ name: waiting[0]!.name });
    await ctx.target.waitForRequests(2);
    await ctx.emulator.idle();
    assert.equal(ctx.target.requests.length, 2);
  });
});
