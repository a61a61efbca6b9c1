/** HTTP target dispatch as a handler sees it: method, body, headers, outcomes and the task's attempt record. */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { assertGrpcError, deferred, PARENT, queuePath, seconds, startTestContext, toMs, uniqueQueueId, type TestContext } from './helpers.js';

describe('emulator: HTTP target dispatch', () => {
  let ctx: TestContext;
  beforeEach(async () => {
    ctx = await startTestContext();
  });
  afterEach(async () => {
    await ctx.close();
  });

  async function queue(retryConfig: Record<string, unknown> = {}): Promise<{ id: string; name: string }> {
    const id = uniqueQueueId();
    const name = queuePath(id);
    await ctx.client.createQueue({ parent: PARENT, queue: { name, retryConfig } });
    return { id, name };
  }

  it('sends the method, body and headers, plus the X-CloudTasks-* headers', async () => {
    const q = await queue();
    const [task] = await ctx.client.createTask({
      parent: q.name,
      task: {
        name: `${q.name}/tasks/hello-1`,
        httpRequest: {
          url: ctx.target.url('/handler?x=1'),
          httpMethod: 'PUT',
          body: Buffer.from('{"a":1}'),
          headers: { 'Content-Type': 'application/json', 'X-Custom': 'yes', 'User-Agent': 'overridden' },
        },
      },
    });
    const [request] = await ctx.target.waitForRequests(1);
    assert.equal(request!.method, 'PUT');
    assert.equal(request!.url, '/handler?x=1');
    assert.equal(request!.body.toString(), '{"a":1}');
    const h = request!.headers;
    assert.equal(h['content-type'], 'application/json');
    assert.equal(h['x-custom'], 'yes');
    assert.equal(h['user-agent'], 'Google-Cloud-Tasks');
    assert.equal(h['x-cloudtasks-queuename'], q.id);
    assert.equal(h['x-cloudtasks-taskname'], 'hello-1');
    assert.equal(h['x-cloudtasks-taskretrycount'], '0');
    assert.equal(h['x-cloudtasks-taskexecutioncount'], '0');
    assert.equal(h['x-cloudtasks-tasketa'], (toMs(task.scheduleTime) / 1000).toFixed(6));
    assert.equal(h['x-cloudtasks-taskpreviousresponse'], undefined, 'no previous attempt');
    assert.equal(h['x-cloudtasks-taskretryreason'], undefined);
    assert.equal(h['authorization'], undefined, 'no token unless asked');
  });

  it('sends no body and no Content-Type of its own for GET', async () => {
    const q = await queue();
    await ctx.client.createTask({ parent: q.name, task: { httpRequest: { url: ctx.target.url('/get'), httpMethod: 'GET' } } });
    const [request] = await ctx.target.waitForRequests(1);
    assert.equal(request!.method, 'GET');
    assert.equal(request!.body.length, 0);
    assert.equal(request!.headers['content-type'], undefined, 'Cloud Tasks does not set Content-Type');
  });

  it('removes the task after a 2xx: GetTask answers NOT_FOUND', async () => {
    const q = await queue();
    ctx.target.responder = () => ({ status: 204 });
    const [task] = await ctx.client.createTask({ parent: q.name, task: { httpRequest: { url: ctx.target.url() } } });
    await ctx.target.waitForRequests(1);
    await ctx.emulator.idle();
    await assertGrpcError(ctx.client.getTask({ name: task.name }), status.NOT_FOUND, /successfully completed or was deleted/);
    const [tasks] = await ctx.client.listTasks({ parent: q.name });
    assert.equal(tasks.length, 0);
  });

  it('retries failures with retry headers and keeps the attempt record as the API reports it', async () => {
    const q = await queue({ minBackoff: seconds(1), maxBackoff: seconds(10) });
    const replies = [404, 503, 200];
    ctx.target.responder = (_request, index) => ({ status: replies[index] ?? 200 });
    const createdAt = ctx.clock.now();
    const [task] = await ctx.client.createTask({ parent: q.name, task: { httpRequest: { url: ctx.target.url() } } });
    await ctx.target.waitForRequests(1);
    await ctx.emulator.idle();

    const [afterFirst] = await ctx.client.getTask({ name: task.name });
    assert.equal(afterFirst.dispatchCount, 1);
    assert.equal(afterFirst.responseCount, 1);
    assert.equal(toMs(afterFirst.firstAttempt?.dispatchTime), createdAt);
    assert.equal(afterFirst.firstAttempt?.responseStatus ?? null, null, 'first_attempt keeps only the dispatch time');
    assert.equal(toMs(afterFirst.lastAttempt?.scheduleTime), createdAt);
    assert.equal(toMs(afterFirst.lastAttempt?.dispatchTime), createdAt);
    assert.equal(toMs(afterFirst.lastAttempt?.responseTime), createdAt);
    assert.equal(afterFirst.lastAttempt?.responseStatus?.code, status.NOT_FOUND, 'HTTP 404 -> google.rpc NOT_FOUND');
    assert.equal(toMs(afterFirst.scheduleTime), createdAt + 1000, 'rescheduled min_backoff later');

    await ctx.clock.advance(1000);
    const second = (await ctx.target.waitForRequests(2))[1]!;
    assert.equal(second.headers['x-cloudtasks-taskretrycount'], '1');
    assert.equal(second.headers['x-cloudtasks-taskexecutioncount'], '1', 'the 404 was an answered execution');
    assert.equal(second.headers['x-cloudtasks-taskpreviousresponse'], '404');
    assert.equal(second.headers['x-cloudtasks-taskretryreason'], '', 'recorded: present and empty after a 404');
    assert.equal(second.headers['x-cloudtasks-tasketa'], ((createdAt + 1000) / 1000).toFixed(6));
    await ctx.emulator.idle();
    const [afterSecond] = await ctx.client.getTask({ name: task.name });
    assert.equal(afterSecond.lastAttempt?.responseStatus?.code, status.UNAVAILABLE, 'HTTP 503 -> UNAVAILABLE');

    await ctx.clock.advance(4000);
    const third = (await ctx.target.waitForRequests(3))[2]!;
    assert.equal(third.headers['x-cloudtasks-taskretrycount'], '2');
    assert.equal(third.headers['x-cloudtasks-taskexecutioncount'], '1', '5xx answers are not counted as executions');
    assert.equal(third.headers['x-cloudtasks-taskpreviousresponse'], '503');
    await ctx.emulator.idle();
    await assertGrpcError(ctx.client.getTask({ name: task.name }), status.NOT_FOUND);
  });

  it('counts a refused connection as a failed attempt without a response', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const q = await queue({ minBackoff: seconds(5), maxBackoff: seconds(5) });
    const [task] = await ctx.client.createTask({ parent: q.name, task: { httpRequest: { url: `http://127.0.0.1:${port}/gone` } } });
    await ctx.emulator.idle();
    const [read] = await ctx.client.getTask({ name: task.name });
    assert.equal(read.dispatchCount, 1);
    assert.equal(read.responseCount, 0);
    assert.equal(read.lastAttempt?.responseStatus?.code, status.UNAVAILABLE);
    assert.equal(toMs(read.scheduleTime), toMs(task.scheduleTime) + 5000, 'retried after the backoff');
  });

  it('fails an attempt that exceeds the dispatch deadline, and retries it', async () => {
    const q = await queue({ minBackoff: seconds(10), maxBackoff: seconds(10) });
    const hold = deferred<{ status: number }>();
    ctx.target.responder = (_request, index) => (index === 0 ? hold.promise : { status: 200 });
    const [task] = await ctx.client.createTask({
      parent: q.name,
      task: { httpRequest: { url: ctx.target.url('/slow') }, dispatchDeadline: seconds(15) },
    });
    await ctx.target.waitForRequests(1);
    await ctx.clock.advance(14_999);
    const [stillRunning] = await ctx.client.getTask({ name: task.name });
    assert.equal(stillRunning.lastAttempt?.responseTime ?? null, null, 'still waiting for the answer');

    await ctx.clock.advance(1);
    await ctx.emulator.idle();
    const [timedOut] = await ctx.client.getTask({ name: task.name });
    assert.equal(timedOut.dispatchCount, 1);
    assert.equal(timedOut.responseCount, 0);
    assert.equal(timedOut.lastAttempt?.responseStatus?.code, status.DEADLINE_EXCEEDED);
    assert.equal(toMs(timedOut.scheduleTime), ctx.clock.now() + 10_000);
    hold.resolve({ status: 200 }); // too late: the emulator stopped listening

    await ctx.clock.advance(10_000);
    const second = (await ctx.target.waitForRequests(2))[1]!;
    assert.equal(second.headers['x-cloudtasks-taskretrycount'], '1');
    assert.equal(second.headers['x-cloudtasks-taskpreviousresponse'], undefined, 'the timed-out attempt had no response');
    await ctx.emulator.idle();
    await assertGrpcError(ctx.client.getTask({ name: task.name }), status.NOT_FOUND);
  });

  it('dispatches a scheduled task at its schedule_time, not before', async () => {
    const q = await queue();
    const due = ctx.clock.now() + 60_000;
    await ctx.client.createTask({ parent: q.name, task: { httpRequest: { url: ctx.target.url() }, scheduleTime: seconds(due / 1000) } });
    await ctx.clock.advance(59_999);
    await ctx.emulator.idle();
    assert.equal(ctx.target.requests.length, 0);
    await ctx.clock.advance(1);
    const [request] = await ctx.target.waitForRequests(1);
    assert.equal(request!.receivedAt, due);
    assert.equal(request!.headers['x-cloudtasks-tasketa'], (due / 1000).toFixed(6));
  });

  it('DeleteTask stops retries, also while an attempt is under way', async () => {
    const q = await queue({ minBackoff: seconds(1), maxBackoff: seconds(1) });
    ctx.target.responder = () => ({ status: 500 });
    const [failing] = await ctx.client.createTask({ parent: q.name, task: { httpRequest: { url: ctx.target.url('/a') } } });
    await ctx.target.waitForRequests(1);
    await ctx.emulator.idle();
    await ctx.client.deleteTask({ name: failing.name });

    const hold = deferred<{ status: number }>();
    ctx.target.responder = () => hold.promise;
    const [running] = await ctx.client.createTask({ parent: q.name, task: { httpRequest: { url: ctx.target.url('/b') } } });
    await ctx.target.waitForRequests(2);
    await ctx.client.deleteTask({ name: running.name });
    hold.resolve({ status: 500 });
    await ctx.emulator.idle();

    await ctx.clock.advance(3600_000);
    await ctx.emulator.idle();
    assert.equal(ctx.target.requests.length, 2, 'no retries after DeleteTask');
    await assertGrpcError(ctx.client.getTask({ name: running.name }), status.NOT_FOUND);
  });

  it('RunTask dispatches at once, even on a paused queue, and answers before the target does', async () => {
    const q = await queue();
    await ctx.client.pauseQueue({ name: q.name });
    const [task] = await ctx.client.createTask({
      parent: q.name,
      task: { httpRequest: { url: ctx.target.url() }, scheduleTime: seconds(ctx.clock.now() / 1000 + 3600) },
    });
    await ctx.clock.advance(1000);
    assert.equal(ctx.target.requests.length, 0, 'paused');

    const hold = deferred<{ status: number }>();
    ctx.target.responder = () => hold.promise;
    const [ran] = await ctx.client.runTask({ name: task.name });
    assert.equal(ran.dispatchCount, 1);
    assert.equal(ran.responseCount, 0);
    assert.equal(toMs(ran.lastAttempt?.dispatchTime), ctx.clock.now());
    assert.equal(ran.lastAttempt?.responseTime ?? null, null, 'the target has not answered yet');
    await ctx.target.waitForRequests(1);
    hold.resolve({ status: 200 });
    await ctx.emulator.idle();
    await assertGrpcError(ctx.client.getTask({ name: task.name }), status.NOT_FOUND);
    await assertGrpcError(ctx.client.runTask({ name: task.name }), status.NOT_FOUND);
  });

  it('pauses dispatch on PauseQueue and resumes it on ResumeQueue; PurgeQueue drops earlier tasks', async () => {
    const q = await queue();
    await ctx.client.pauseQueue({ name: q.name });
    for (let i = 0; i < 3; i++) {
      await ctx.client.createTask({ parent: q.name, task: { httpRequest: { url: ctx.target.url(`/old-${i}`) } } });
    }
    await ctx.clock.advance(60_000);
    await ctx.emulator.idle();
    assert.equal(ctx.target.requests.length, 0, 'a paused queue accepts tasks and dispatches none');

    const [purged] = await ctx.client.purgeQueue({ name: q.name });
    assert.equal(toMs(purged.purgeTime), ctx.clock.now());
    assert.equal((await ctx.client.listTasks({ parent: q.name }))[0].length, 0);

    await ctx.client.createTask({ parent: q.name, task: { httpRequest: { url: ctx.target.url('/new') } } });
    await ctx.client.resumeQueue({ name: q.name });
    await ctx.target.waitForRequests(1);
    await ctx.emulator.idle();
    await ctx.clock.advance(60_000);
    await ctx.emulator.idle();
    assert.deepEqual(
      ctx.target.requests.map((r) => r.url),
      ['/new'],
      'only the task created after the purge ran',
    );
  });
});
