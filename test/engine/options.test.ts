/** Every defer option, honoured end to end through the emulator (read back with the official client). */
import assert from 'node:assert/strict';
import type { CloudTasksClient } from '@google-cloud/tasks';
import { CloudDeferError, currentTask, type TaskContext } from '../../src/index.js';
import { createEmulatorClient, ManualClock } from '../../src/emulator/index.js';
import { eventually, startApp, type TestApp } from '../helpers/app.js';

describe('defer options end to end', () => {
  let app: TestApp;
  let clock: ManualClock;
  let client: CloudTasksClient;
  const runs: Array<{ args: unknown[]; context: TaskContext }> = [];
  const queuePath = (queue: string) => `projects/local-project/locations/us-central1/queues/${queue}`;

  before(async () => {
    clock = new ManualClock(Date.now());
    app = await startApp(
      'express',
      {
        emulator: { clock },
        now: () => clock.now(),
        queues: [{ name: 'mail' }, { name: 'held' }],
      },
      (deferred) => {
        deferred.task('record', (...args: unknown[]) => {
          runs.push({ args, context: currentTask()! });
        });
      },
    );
    client = createEmulatorClient(app.deferred.emulator!);
    await client.pauseQueue({ name: queuePath('held') });
  });
  after(async () => {
    await client.close();
    await app.close();
  });
  beforeEach(() => {
    runs.length = 0;
  });

  /** The task as Cloud Tasks holds it (FULL view), from the paused queue. */
  async function heldTask(name?: string) {
    const [tasks] = await client.listTasks({ parent: queuePath('held'), responseView: 'FULL' });
    const task = name ? tasks.find((t) => t.name === name) : tasks.at(-1);
    assert.ok(task, 'the task is in the paused queue');
    return task;
  }

  it('queue: the task goes to that queue and runs there', async () => {
    const info = await app.deferred.defer('record', [1], { queue: 'mail' });
    assert.equal(info.queue, 'mail');
    await eventually(() => runs.length === 1, 'the run');
    assert.equal(runs[0]!.context.queue, 'mail');
  });

  it('countdown: not dispatched before it is due, dispatched after', async () => {
    const info = await app.deferred.defer('record', ['later'], { countdown: 60 });
    assert.equal(info.eta.getTime(), clock.now() + 60_000);
    await clock.advance(59_000);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(runs.length, 0);
    await clock.advance(1_000);
    await eventually(() => runs.length === 1, 'the countdown task');
    assert.equal((await info.wait()).status, 'succeeded');
  });

  it('eta: honoured; countdown wins over eta', async () => {
    const eta = new Date(clock.now() + 30_000);
    const byEta = await app.deferred.defer('record', ['eta'], { eta });
    const byCountdown = await app.deferred.defer('record', ['countdown'], { eta, countdown: 10 });
    assert.equal(byEta.eta.getTime(), eta.getTime());
    assert.equal(byCountdown.eta.getTime(), clock.now() + 10_000);
    await clock.advance(10_000);
    await eventually(() => runs.length === 1, 'the countdown task');
    assert.deepEqual(runs[0]!.args, ['countdown']);
    await clock.advance(20_000);
    await eventually(() => runs.length === 2, 'the eta task');
    assert.deepEqual(runs[1]!.args, ['eta']);
  });

  it('eta in the past runs now; more than 30 days ahead is refused', async () => {
    await app.deferred.defer('record', ['past'], { eta: clock.now() - 60_000 });
    await eventually(() => runs.length === 1, 'the past-eta task');
    await assert.rejects(app.deferred.defer('record', [], { countdown: 31 * 86_400 }), { code: 'INVALID_OPTION' });
  });

  it('name: Cloud Tasks de-duplicates a second task with the same name', async () => {
    const first = await app.deferred.defer('record', ['once'], { name: 'welcome-42', queue: 'held' });
    assert.match(first.cloudTaskName!, /\/tasks\/welcome-42$/);
    const recordsBefore = (await app.deferred.listTasks({ queue: 'held', limit: 1000 })).records.length;
    const second = app.deferred.defer('record', ['twice'], { name: 'welcome-42', queue: 'held' });
    await assert.rejects(second, (err: unknown) => err instanceof CloudDeferError && err.code === 'TASK_ALREADY_EXISTS');
    const recordsAfter = (await app.deferred.listTasks({ queue: 'held', limit: 1000 })).records.length;
    assert.equal(recordsAfter, recordsBefore, 'the refused defer left no record');
  });

  it('App Engine routing: service, version and instance reach Cloud Tasks; version "default" means none', async () => {
    const routed = await app.deferred.defer('record', [], { queue: 'held', service: 'worker', version: 'v2', instance: '3' });
    const task = await heldTask(routed.cloudTaskName);
    assert.equal(task.appEngineHttpRequest?.relativeUri, '/_ah/queue/deferred');
    assert.equal(task.appEngineHttpRequest?.appEngineRouting?.service, 'worker');
    assert.equal(task.appEngineHttpRequest?.appEngineRouting?.version, 'v2');
    assert.equal(task.appEngineHttpRequest?.appEngineRouting?.instance, '3');
    const unversioned = await app.deferred.defer('record', [], { queue: 'held', service: 'worker', version: 'default' });
    const task2 = await heldTask(unversioned.cloudTaskName);
    assert.ok(!task2.appEngineHttpRequest?.appEngineRouting?.version, 'no version sent');
  });

  it('App Engine target: delivered with X-AppEngine-* headers and run', async () => {
    await app.deferred.defer('record', ['appengine'], { service: 'default' });
    await eventually(() => runs.length === 1, 'the App Engine delivery');
    assert.equal(runs[0]!.context.queue, 'default');
  });

  it('HTTP target: URL, OIDC service account and audience reach Cloud Tasks', async () => {
    const info = await app.deferred.defer('record', [], {
      queue: 'held',
      url: 'https://worker.example.run.app/_ah/queue/deferred',
      serviceAccountEmail: 'tasks@proj.iam.gserviceaccount.com',
      audience: 'https://worker.example.run.app',
    });
    const task = await heldTask(info.cloudTaskName);
    assert.equal(task.httpRequest?.url, 'https://worker.example.run.app/_ah/queue/deferred');
    assert.equal(task.httpRequest?.httpMethod, 'POST');
    assert.equal(task.httpRequest?.oidcToken?.serviceAccountEmail, 'tasks@proj.iam.gserviceaccount.com');
    assert.equal(task.httpRequest?.oidcToken?.audience, 'https://worker.example.run.app');
  });

  it('dispatchDeadline: sent to Cloud Tasks; out of range refused', async () => {
    const info = await app.deferred.defer('record', [], { queue: 'held', dispatchDeadline: 45 });
    const task = await heldTask(info.cloudTaskName);
    assert.equal(Number(task.dispatchDeadline?.seconds), 45);
    await assert.rejects(app.deferred.defer('record', [], { dispatchDeadline: 5 }), { code: 'INVALID_OPTION' });
    await assert.rejects(app.deferred.defer('record', [], { dispatchDeadline: 3600 }), { code: 'INVALID_OPTION' });
  });

  it('reference + uniqueUntil: a second defer returns the existing task and enqueues nothing', async () => {
    const until = clock.now() + 60_000;
    const first = await app.deferred.defer('record', ['r1'], { queue: 'held', reference: 'invoice-7', uniqueUntil: until });
    const [before] = await client.listTasks({ parent: queuePath('held') });
    const second = await app.deferred.defer('record', ['r2'], { queue: 'held', reference: 'invoice-7', uniqueUntil: until });
    assert.equal(second.duplicate, true);
    assert.equal(second.id, first.id);
    const [afterSecond] = await client.listTasks({ parent: queuePath('held') });
    assert.equal(afterSecond.length, before.length, 'nothing enqueued');
    await assert.rejects(app.deferred.defer('record', ['r3'], { queue: 'held', reference: 'invoice-7', uniqueUntil: until, onDuplicate: 'throw' }), {
      code: 'DUPLICATE_REFERENCE',
    });
    await clock.advance(60_001);
    const third = await app.deferred.defer('record', ['r4'], { queue: 'held', reference: 'invoice-7' });
    assert.equal(third.duplicate, false, 'after uniqueUntil a new task is accepted');
  });

  it('reference: once the first task finished, a new defer is accepted', async () => {
    const first = await app.deferred.defer('record', ['a'], { reference: 'report-1', uniqueUntil: clock.now() + 3_600_000 });
    await first.wait();
    const second = await app.deferred.defer('record', ['b'], { reference: 'report-1', uniqueUntil: clock.now() + 3_600_000 });
    assert.equal(second.duplicate, false);
    assert.notEqual(second.id, first.id);
    assert.equal((await app.deferred.findTask({ reference: 'report-1' }))?.id, second.id);
  });

  it('typed handles: task.with(options).defer(...)', async () => {
    const handle = app.deferred.task('handle', async (name: string, n: number) => {
      runs.push({ args: [name, n], context: currentTask()! });
    });
    const info = await handle.with({ queue: 'mail' }).defer('Ada', 3);
    await info.wait();
    assert.deepEqual(runs[0]!.args, ['Ada', 3]);
    assert.equal(runs[0]!.context.queue, 'mail');
    // deferred.defer also accepts the original function once registered.
    const direct = await app.deferred.defer(handle.fn, ['Bob', 1]);
    await direct.wait();
    assert.deepEqual(runs[1]!.args, ['Bob', 1]);
  });

  it('bad input is refused at defer time with a code and a message that says what to do', async () => {
    const stray = async (x: number) => x;
    await assert.rejects(app.deferred.defer(stray, [1]), (err: unknown) => {
      assert.ok(err instanceof CloudDeferError);
      assert.equal(err.code, 'UNREGISTERED_TASK');
      assert.match(err.message, /deferred\.task\(/);
      return true;
    });
    await assert.rejects(app.deferred.defer('record', [() => 1]), { code: 'UNSERIALIZABLE_ARGUMENT' });
    await assert.rejects(app.deferred.defer('record', [Symbol('s')]), { code: 'UNSERIALIZABLE_ARGUMENT' });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await assert.rejects(app.deferred.defer('record', [cyclic]), { code: 'UNSERIALIZABLE_ARGUMENT' });
    class Money {
      constructor(readonly cents: number) {}
    }
    await assert.rejects(app.deferred.defer('record', [new Money(5)]), { code: 'UNSERIALIZABLE_ARGUMENT' });
    await assert.rejects(app.deferred.defer('record', [], { queue: 'bad queue!' }), { code: 'INVALID_OPTION' });
    await assert.rejects(app.deferred.defer('record', [], { countdown: -1 }), { code: 'INVALID_OPTION' });
    await assert.rejects(app.deferred.defer('record', [], { name: 'has spaces' }), { code: 'INVALID_OPTION' });
    await assert.rejects(app.deferred.defer('record', [], { maxAttempts: 0 }), { code: 'INVALID_OPTION' });
    await assert.rejects(app.deferred.defer('record', [], { queue: 'no-such-queue' }), { code: 'NOT_FOUND' });
    assert.equal(runs.length, 0);
  });
});
