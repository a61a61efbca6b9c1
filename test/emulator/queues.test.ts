/** Queue administration through the official client: create, read, list, update, pause, purge, delete. */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { assertGrpcError, PARENT, queuePath, seconds, startTestContext, toMs, uniqueQueueId, type TestContext } from './helpers.js';

describe('emulator: queues', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await startTestContext();
  });
  after(async () => {
    await ctx.close();
  });

  it('creates a queue with Cloud Tasks defaults and reads it back', async () => {
    const name = queuePath(uniqueQueueId());
    const [created] = await ctx.client.createQueue({ parent: PARENT, queue: { name } });
    assert.equal(created.name, name);
    assert.equal(created.state, 'RUNNING');
    assert.equal(created.rateLimits?.maxDispatchesPerSecond, 500);
    assert.equal(created.rateLimits?.maxBurstSize, 100);
    assert.equal(created.rateLimits?.maxConcurrentDispatches, 1000);
    assert.equal(created.retryConfig?.maxAttempts, 100);
    assert.equal(toMs(created.retryConfig?.minBackoff), 100);
    assert.equal(toMs(created.retryConfig?.maxBackoff), 3_600_000);
    assert.equal(created.retryConfig?.maxDoublings, 16);
    assert.equal(toMs(created.retryConfig?.maxRetryDuration), 0);
    const [read] = await ctx.client.getQueue({ name });
    assert.deepEqual(read, created);
  });

  it('keeps the rate, concurrency and retry settings given, and derives max_burst_size from the rate', async () => {
    const name = queuePath(uniqueQueueId());
    const [queue] = await ctx.client.createQueue({
      parent: PARENT,
      queue: {
        name,
        rateLimits: { maxDispatchesPerSecond: 50, maxConcurrentDispatches: 7, maxBurstSize: 9999 },
        retryConfig: {
          maxAttempts: -1,
          minBackoff: seconds(2),
          maxBackoff: seconds(60),
          maxDoublings: 4,
          maxRetryDuration: seconds(3600),
        },
      },
    });
    assert.equal(queue.rateLimits?.maxDispatchesPerSecond, 50);
    assert.equal(queue.rateLimits?.maxBurstSize, 10, 'output only: derived from the rate, the value sent is ignored');
    assert.equal(queue.rateLimits?.maxConcurrentDispatches, 7);
    assert.equal(queue.retryConfig?.maxAttempts, -1);
    assert.equal(toMs(queue.retryConfig?.minBackoff), 2000);
    assert.equal(toMs(queue.retryConfig?.maxBackoff), 60_000);
    assert.equal(queue.retryConfig?.maxDoublings, 4);
    assert.equal(toMs(queue.retryConfig?.maxRetryDuration), 3_600_000);
  });

  it('answers ALREADY_EXISTS for a second queue of the same name', async () => {
    const name = queuePath(uniqueQueueId());
    await ctx.client.createQueue({ parent: PARENT, queue: { name } });
    await assertGrpcError(ctx.client.createQueue({ parent: PARENT, queue: { name } }), status.ALREADY_EXISTS, /Queue already exists/);
  });

  it('answers NOT_FOUND for a queue that does not exist', async () => {
    await assertGrpcError(ctx.client.getQueue({ name: queuePath('never-made') }), status.NOT_FOUND, /Queue does not exist/);
    await assertGrpcError(ctx.client.pauseQueue({ name: queuePath('never-made') }), status.NOT_FOUND);
    await assertGrpcError(ctx.client.deleteQueue({ name: queuePath('never-made') }), status.NOT_FOUND);
  });

  describe('validation (INVALID_ARGUMENT)', () => {
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['a queue id with a space', { name: queuePath('bad id') }, /Queue ID "bad id" can contain only letters/],
      ['a queue id with an underscore', { name: queuePath('bad_id') }, /can contain only letters/],
      ['a queue id of 101 characters', { name: queuePath('a'.repeat(101)) }, /between 1 and 100 characters/],
      ['a name that is not a queue name', { name: `${PARENT}/topics/x` }, /Queue name must be formatted/],
      ['a queue under another location', { name: 'projects/test-project/locations/europe-west1/queues/q' }, /parent/],
      ['a rate over 500', { rateLimits: { maxDispatchesPerSecond: 501 } }, /maxDispatchesPerSecond must be less than or equal to 500/],
      ['a negative rate', { rateLimits: { maxDispatchesPerSecond: -1 } }, /maxDispatchesPerSecond cannot be negative/],
      ['concurrency over 5000', { rateLimits: { maxConcurrentDispatches: 5001 } }, /maxConcurrentDispatches must be less than or equal to 5000/],
      ['max_attempts below -1', { retryConfig: { maxAttempts: -2 } }, /maxAttempts must be greater or equal to -1/],
      ['negative max_doublings', { retryConfig: { maxDoublings: -1 } }, /maxDoublings cannot be negative/],
      ['negative min_backoff', { retryConfig: { minBackoff: { seconds: -1 } } }, /minBackoff cannot be negative/],
      [
        'min_backoff above max_backoff',
        { retryConfig: { minBackoff: seconds(20), maxBackoff: seconds(10) } },
        /minBackoff must be less than or equal to RetryConfig.maxBackoff/,
      ],
    ];
    for (const [what, fields, message] of cases) {
      it(`refuses ${what}`, async () => {
        const queue = { name: queuePath(uniqueQueueId()), ...fields };
        await assertGrpcError(ctx.client.createQueue({ parent: PARENT, queue }), status.INVALID_ARGUMENT, message);
      });
    }

    it('refuses a malformed parent with PERMISSION_DENIED, as recorded from Cloud Tasks', async () => {
      await assertGrpcError(
        ctx.client.createQueue({ parent: 'projects/test-project', queue: { name: queuePath(uniqueQueueId()) } }),
        status.PERMISSION_DENIED,
        /cloudtasks\.queues\.create.*projects\/test-project/,
      );
    });

    it('accepts the limits themselves: 500/s and 5000 concurrent', async () => {
      const [queue] = await ctx.client.createQueue({
        parent: PARENT,
        queue: {
          name: queuePath(uniqueQueueId()),
          rateLimits: { maxDispatchesPerSecond: 500, maxConcurrentDispatches: 5000 },
        },
      });
      assert.equal(queue.rateLimits?.maxConcurrentDispatches, 5000);
    });
  });

  it('lists queues in name order, page by page, and filters on state', async () => {
    const location = 'projects/list-project/locations/us-east1';
    const ids = ['delta', 'alpha', 'echo', 'charlie', 'bravo'];
    for (const id of ids) await ctx.client.createQueue({ parent: location, queue: { name: `${location}/queues/${id}` } });
    await ctx.client.pauseQueue({ name: `${location}/queues/charlie` });

    const seen: string[] = [];
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const [queues, , response] = await ctx.client.listQueues({ parent: location, pageSize: 2, pageToken }, { autoPaginate: false });
      assert.ok(queues.length <= 2);
      seen.push(...queues.map((q) => q.name!.split('/').pop()!));
      pageToken = response?.nextPageToken || undefined;
      pages++;
    } while (pageToken);
    assert.deepEqual(seen, [...ids].sort());
    assert.equal(pages, 3);

    const [paused] = await ctx.client.listQueues({ parent: location, filter: 'state: PAUSED' });
    assert.deepEqual(
      paused.map((q) => q.name),
      [`${location}/queues/charlie`],
    );
    const [all] = await ctx.client.listQueues({ parent: location });
    assert.equal(all.length, 5, 'the client pages through everything');
  });

  it('UpdateQueue changes only the fields in the update mask', async () => {
    const name = queuePath(uniqueQueueId());
    await ctx.client.createQueue({
      parent: PARENT,
      queue: { name, rateLimits: { maxConcurrentDispatches: 20 }, retryConfig: { maxAttempts: 5 } },
    });
    const [updated] = await ctx.client.updateQueue({
      queue: { name, rateLimits: { maxDispatchesPerSecond: 10, maxConcurrentDispatches: 99 }, retryConfig: { maxAttempts: 8 } },
      updateMask: { paths: ['rate_limits.max_dispatches_per_second', 'retry_config.max_attempts'] },
    });
    assert.equal(updated.rateLimits?.maxDispatchesPerSecond, 10);
    assert.equal(updated.rateLimits?.maxBurstSize, 2, 'burst follows the new rate');
    assert.equal(updated.rateLimits?.maxConcurrentDispatches, 20, 'not in the mask: unchanged');
    assert.equal(updated.retryConfig?.maxAttempts, 8);
  });

  it('UpdateQueue creates the queue when it does not exist', async () => {
    const name = queuePath(uniqueQueueId());
    const [queue] = await ctx.client.updateQueue({
      queue: { name, rateLimits: { maxDispatchesPerSecond: 5 } },
      updateMask: { paths: ['rate_limits.max_dispatches_per_second'] },
    });
    assert.equal(queue.rateLimits?.maxDispatchesPerSecond, 5);
    assert.equal(queue.rateLimits?.maxConcurrentDispatches, 1000, 'defaults for the rest');
    const [read] = await ctx.client.getQueue({ name });
    assert.equal(read.state, 'RUNNING');
  });

  it('UpdateQueue refuses unknown mask paths and out-of-range values', async () => {
    const name = queuePath(uniqueQueueId());
    await ctx.client.createQueue({ parent: PARENT, queue: { name } });
    await assertGrpcError(ctx.client.updateQueue({ queue: { name }, updateMask: { paths: ['rate_limits.no_such_field'] } }), status.INVALID_ARGUMENT);
    await assertGrpcError(
      ctx.client.updateQueue({
        queue: { name, rateLimits: { maxDispatchesPerSecond: 1000 } },
        updateMask: { paths: ['rate_limits'] },
      }),
      status.INVALID_ARGUMENT,
      /less than or equal to 500/,
    );
  });

  it('pauses and resumes: the state reads PAUSED, then RUNNING', async () => {
    const name = queuePath(uniqueQueueId());
    await ctx.client.createQueue({ parent: PARENT, queue: { name } });
    const [paused] = await ctx.client.pauseQueue({ name });
    assert.equal(paused.state, 'PAUSED');
    assert.equal((await ctx.client.getQueue({ name }))[0].state, 'PAUSED');
    const [resumed] = await ctx.client.resumeQueue({ name });
    assert.equal(resumed.state, 'RUNNING');
  });

  it('blocks a deleted queue name for the reuse window, then allows it again', async () => {
    const name = queuePath(uniqueQueueId());
    await ctx.client.createQueue({ parent: PARENT, queue: { name } });
    await ctx.client.deleteQueue({ name });
    await assertGrpcError(ctx.client.getQueue({ name }), status.NOT_FOUND);
    await assertGrpcError(ctx.client.createQueue({ parent: PARENT, queue: { name } }), status.FAILED_PRECONDITION, /existed too recently/);
    await assertGrpcError(ctx.client.updateQueue({ queue: { name } }), status.FAILED_PRECONDITION);
    await ctx.clock.advance(7 * 24 * 3600 * 1000 - 1000);
    await assertGrpcError(ctx.client.createQueue({ parent: PARENT, queue: { name } }), status.FAILED_PRECONDITION);
    await ctx.clock.advance(1000);
    const [again] = await ctx.client.createQueue({ parent: PARENT, queue: { name } });
    assert.equal(again.name, name);
  });

  it('answers the Locations mixin with the locations in use', async () => {
    const locations = await collect(ctx.client.listLocationsAsync({ name: 'projects/test-project' }, { autoPaginate: false }));
    assert.ok(locations.some((l) => l.locationId === 'us-central1'));
  });
});

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}
