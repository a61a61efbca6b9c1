/**
 * Each difference found between the emulator and recordings made against real Cloud Tasks (the
 * aertje/cloud-tasks-emulator v2 conformance goldens, summarised in /work/shared/REFERENCE.md),
 * with the recorded value it now matches.
 */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import {
  advanceUntilRequests,
  assertGrpcError,
  deferred,
  PARENT,
  queuePath,
  seconds,
  startTestContext,
  toMs,
  uniqueQueueId,
  type TestContext,
} from './helpers.js';

const DAY_MS = 86_400_000;

describe('emulator: recorded Cloud Tasks behaviour', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await startTestContext();
  });
  after(async () => {
    await ctx.close();
  });
  beforeEach(() => {
    ctx.target.requests.length = 0;
    ctx.target.responder = () => ({ status: 200 });
  });

  async function queue(extra: Record<string, unknown> = {}): Promise<string> {
    const name = queuePath(uniqueQueueId('rec'));
    await ctx.client.createQueue({
      parent: PARENT,
      queue: { name, retryConfig: { minBackoff: seconds(1), maxBackoff: seconds(1), maxAttempts: 10 }, ...extra },
    });
    return name;
  }

  it('X-CloudTasks-TaskRetryReason: present and empty after a 503 and after a 404 (recorded: "")', async () => {
    const q = await queue();
    const replies = [503, 404, 200];
    ctx.target.responder = (_r, i) => ({ status: replies[i] ?? 200 });
    await ctx.client.createTask({ parent: q, task: { httpRequest: { url: ctx.target.url('/reason') } } });
    await advanceUntilRequests(ctx, 3, { stepMs: 500 });
    const [, afterServiceUnavailable, afterNotFound] = ctx.target.requests;
    assert.equal(afterServiceUnavailable!.headers['x-cloudtasks-taskretryreason'], '');
    assert.equal(afterNotFound!.headers['x-cloudtasks-taskretryreason'], '');
  });

  it('App Engine: X-AppEngine-TaskRetryReason "App Error"; X-AppEngine-TaskExecutionCount 1 after a 503, 2 after 503 then 404 (recorded)', async () => {
    const appEngine = await startTestContext();
    const routed = await startTestContext({ clock: appEngine.clock, appEngineBaseUrl: appEngine.target.baseUrl });
    try {
      const q = queuePath(uniqueQueueId('rec-ae'));
      await routed.client.createQueue({ parent: PARENT, queue: { name: q, retryConfig: { minBackoff: seconds(1), maxBackoff: seconds(1) } } });
      const replies = [503, 404, 200];
      appEngine.target.responder = (_r, i) => ({ status: replies[i] ?? 200 });
      await routed.client.createTask({ parent: q, task: { appEngineHttpRequest: { relativeUri: '/ae' } } });
      await appEngine.target.waitForRequests(1);
      for (let i = 0; appEngine.target.requests.length < 3 && i < 100; i++) {
        await appEngine.clock.advance(500);
        await routed.emulator.idle();
      }
      const [, second, third] = appEngine.target.requests;
      assert.equal(second!.headers['x-appengine-taskretryreason'], 'App Error');
      assert.equal(second!.headers['x-appengine-taskexecutioncount'], '1');
      assert.equal(third!.headers['x-appengine-taskexecutioncount'], '2');
      assert.equal(third!.headers['x-appengine-taskretryreason'], 'App Error');
    } finally {
      await routed.close();
      await appEngine.close();
    }
  });

  it('after a failed RunTask the next schedule_time is the call time plus the retry delay (recorded)', async () => {
    const q = await queue({ retryConfig: { minBackoff: seconds(10), maxBackoff: seconds(10), maxAttempts: 5 } });
    await ctx.client.pauseQueue({ name: q });
    const answer = deferred<{ status: number }>();
    ctx.target.responder = () => answer.promise;
    const [task] = await ctx.client.createTask({ parent: q, task: { httpRequest: { url: ctx.target.url('/slow') } } });
    const calledAt = ctx.clock.now();
    await ctx.client.runTask({ name: task.name });
    await ctx.target.waitForRequests(1);
    await ctx.clock.advance(4000); // the target takes 4 s to fail
    answer.resolve({ status: 500 });
    await ctx.emulator.idle();
    const [after] = await ctx.client.getTask({ name: task.name });
    assert.equal(toMs(after.scheduleTime), calledAt + 10_000, 'counted from the RunTask call, not from the answer');
  });

  it('DeleteQueue of a missing queue: NOT_FOUND "Requested entity was not found." (recorded)', async () => {
    await assertGrpcError(ctx.client.deleteQueue({ name: queuePath('never-made-rec') }), status.NOT_FOUND, /^Requested entity was not found\.$/);
  });

  it('schedule_time keeps microseconds (recorded)', async () => {
    const q = await queue();
    await ctx.client.pauseQueue({ name: q });
    const secondsAhead = Math.floor(ctx.clock.now() / 1000) + 3600;
    const [task] = await ctx.client.createTask({
      parent: q,
      task: { scheduleTime: { seconds: secondsAhead, nanos: 654_321_987 }, httpRequest: { url: ctx.target.url() } },
    });
    assert.equal(Number(task.scheduleTime?.seconds), secondsAhead);
    assert.equal(task.scheduleTime?.nanos, 654_321_000, 'truncated to the microsecond, not the millisecond');
    const [read] = await ctx.client.getTask({ name: task.name });
    assert.equal(read.scheduleTime?.nanos, 654_321_000);
  });

  it('HTTP target 3xx: the Location is followed and the redirect is not an attempt (recorded); App Engine does not follow', async () => {
    const q = await queue();
    ctx.target.responder = (request) => (request.url === '/old' ? { status: 302, headers: { Location: '/new' } } : { status: 200 });
    const [task] = await ctx.client.createTask({
      parent: q,
      task: { httpRequest: { url: ctx.target.url('/old'), body: Buffer.from('payload') } },
    });
    await ctx.target.waitForRequests(2);
    await ctx.emulator.idle();
    assert.deepEqual(
      ctx.target.requests.map((r) => r.url),
      ['/old', '/new'],
    );
    assert.equal(ctx.target.requests[1]!.body.toString(), 'payload');
    assert.equal(ctx.target.requests[1]!.headers['x-cloudtasks-taskretrycount'], '0', 'still the first attempt');
    await assertGrpcError(ctx.client.getTask({ name: task.name }), status.NOT_FOUND); // succeeded

    const routed = await startTestContext({ clock: ctx.clock, appEngineBaseUrl: ctx.target.baseUrl });
    try {
      const aeQueue = queuePath(uniqueQueueId('rec-ae-redirect'));
      await routed.client.createQueue({ parent: PARENT, queue: { name: aeQueue } });
      await routed.client.pauseQueue({ name: aeQueue });
      const [aeTask] = await routed.client.createTask({ parent: aeQueue, task: { appEngineHttpRequest: { relativeUri: '/old' } } });
      await routed.client.runTask({ name: aeTask.name });
      await ctx.target.waitForRequests(3);
      await routed.emulator.idle();
      const [after] = await routed.client.getTask({ name: aeTask.name });
      assert.equal(after.dispatchCount, 1);
      assert.equal(after.lastAttempt?.responseStatus?.code, status.UNKNOWN, 'the 302 is a failed attempt');
      assert.equal(ctx.target.requests.length, 3, 'no request to /new');
    } finally {
      await routed.close();
    }
  });

  it('a task on a paused queue is deleted at its 31-day retention, not dispatched after (recorded)', async () => {
    const q = await queue();
    await ctx.client.pauseQueue({ name: q });
    const [task] = await ctx.client.createTask({ parent: q, task: { httpRequest: { url: ctx.target.url('/old-task') } } });
    await ctx.clock.advance(31 * DAY_MS + 1000);
    await assertGrpcError(ctx.client.getTask({ name: task.name }), status.NOT_FOUND);
    await ctx.client.resumeQueue({ name: q });
    await ctx.clock.advance(1000);
    await ctx.emulator.idle();
    assert.equal(ctx.target.requests.length, 0);
  });

  it('a paused queue holding an expired task dispatches the next task once resumed', async () => {
    const q = await queue();
    await ctx.client.pauseQueue({ name: q });
    await ctx.client.createTask({ parent: q, task: { httpRequest: { url: ctx.target.url('/expired') } } });
    await ctx.clock.advance(31 * DAY_MS + 1000);
    await ctx.client.createTask({ parent: q, task: { httpRequest: { url: ctx.target.url('/fresh') } } });
    await ctx.client.resumeQueue({ name: q });
    await ctx.target.waitForRequests(1);
    await ctx.emulator.idle();
    assert.deepEqual(
      ctx.target.requests.map((r) => r.url),
      ['/fresh'],
    );
  });
});
