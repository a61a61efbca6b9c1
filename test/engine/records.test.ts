/** Task records: lifecycle, cancel, duplicate and concurrent deliveries, retention. */
import assert from 'node:assert/strict';
import type { CloudTasksClient } from '@google-cloud/tasks';
import { memoryStores } from '../../adapters/memory/index.js';
import { createEmulatorClient } from '../../src/emulator/index.js';
import { eventually, startApp, type TestApp } from '../helpers/app.js';

const HELD = 'projects/local-project/locations/us-central1/queues/held';

describe('task records', () => {
  let app: TestApp;
  let client: CloudTasksClient;
  let runs = 0;
  let release: (() => void) | undefined;

  before(async () => {
    app = await startApp('express', { queues: [{ name: 'held' }] }, (deferred) => {
      deferred.task('count', () => {
        runs += 1;
      });
      deferred.task('slow', () => new Promise<void>((resolve) => (release = resolve)));
    });
    client = createEmulatorClient(app.deferred.emulator!);
  });
  after(async () => {
    await client.close();
    await app.close();
  });
  beforeEach(async () => {
    runs = 0;
    await client.pauseQueue({ name: HELD });
  });

  it('moves queued -> running -> succeeded, with times, attempts and execution count', async () => {
    const info = await app.deferred.defer('slow', [], { queue: 'held' });
    const queued = await app.deferred.getTask(info.id);
    assert.equal(queued?.status, 'queued');
    await client.resumeQueue({ name: HELD });
    const running = await eventually(async () => {
      const r = await app.deferred.getTask(info.id);
      return r?.status === 'running' ? r : undefined;
    }, 'running');
    assert.ok(running.startedAt! >= running.createdAt);
    release!();
    const done = await info.wait();
    assert.equal(done.status, 'succeeded');
    assert.ok(done.finishedAt! >= done.startedAt!);
    assert.equal(done.attempts, 1);
    assert.ok(Math.abs(done.expiresAt - done.finishedAt! - 7 * 86_400_000) < 5_000, 'kept 7 days by default');
  });

  it('cancel: a pending task is acknowledged without running; a finished one cannot be cancelled', async () => {
    const info = await app.deferred.defer('count', [], { queue: 'held' });
    const cancelled = await app.deferred.cancel(info.id);
    assert.equal(cancelled?.status, 'cancelled');
    await client.resumeQueue({ name: HELD });
    await eventually(async () => (await client.listTasks({ parent: HELD }))[0].length === 0, 'the queue to empty');
    assert.equal(runs, 0);
    assert.equal((await app.deferred.getTask(info.id))?.status, 'cancelled');
    assert.equal(await app.deferred.cancel(info.id), undefined);
  });

  it('a duplicate delivery of a task that succeeded is answered 200 and not run again', async () => {
    const info = await app.deferred.defer('count', [], { queue: 'held' });
    const [[held]] = await client.listTasks({ parent: HELD, responseView: 'FULL' });
    await client.resumeQueue({ name: HELD });
    await info.wait();
    // Cloud Tasks delivers at least once: deliver the very same request again.
    await client.createTask({ parent: HELD, task: { httpRequest: held!.httpRequest! } });
    await eventually(async () => (await client.listTasks({ parent: HELD }))[0].length === 0, 'the redelivery');
    assert.equal(runs, 1);
    const record = await app.deferred.getTask(info.id);
    assert.equal(record?.attempts, 1);
  });

  it('20 concurrent deliveries of one task run it exactly once', async () => {
    const info = await app.deferred.defer('count', [], { queue: 'held' });
    const [[held]] = await client.listTasks({ parent: HELD, responseView: 'FULL' });
    await client.deleteTask({ name: held!.name! });
    for (let i = 0; i < 20; i += 1) await client.createTask({ parent: HELD, task: { httpRequest: held!.httpRequest! } });
    await client.resumeQueue({ name: HELD });
    await eventually(async () => (await client.listTasks({ parent: HELD }))[0].length === 0, 'all deliveries');
    assert.equal(runs, 1);
    assert.equal((await app.deferred.getTask(info.id))?.status, 'succeeded');
  });

  it('an undecodable envelope is recorded failed-and-acknowledged, not retried forever', async () => {
    const url = app.handlerUrl;
    await client.createTask({
      parent: HELD,
      task: {
        httpRequest: {
          url,
          httpMethod: 'POST',
          body: Buffer.from('{"v":1,"task":"count"'),
          oidcToken: { serviceAccountEmail: 'cloud-defer-tasks@local-project.iam.gserviceaccount.com', audience: url },
        },
      },
    });
    await client.resumeQueue({ name: HELD });
    await eventually(async () => (await client.listTasks({ parent: HELD }))[0].length === 0, 'the acknowledgement');
    assert.ok(app.logger.lines.some((l) => l.level === 'error' && /undecodable/.test(l.message)));
    assert.equal(runs, 0);
  });

  it('a task name this app does not know is recorded failed and acknowledged', async () => {
    const info = await app.deferred.defer('count', [], { queue: 'held' });
    const [[held]] = await client.listTasks({ parent: HELD, responseView: 'FULL' });
    await client.deleteTask({ name: held!.name! });
    // A task deferred by an older deploy whose record has expired: the verified delivery rebuilds it.
    const retiredId = `retired-${info.id}`;
    const body = Buffer.from(held!.httpRequest!.body as Uint8Array)
      .toString('utf8')
      .replace('"task":"count"', '"task":"retired-task"')
      .replace(`"id":"${info.id}"`, `"id":"${retiredId}"`);
    await client.createTask({ parent: HELD, task: { httpRequest: { ...held!.httpRequest!, body: Buffer.from(body) } } });
    await client.resumeQueue({ name: HELD });
    const record = await eventually(async () => {
      const r = await app.deferred.getTask(retiredId);
      return r?.status === 'failed' ? r : undefined;
    }, 'the rebuilt record, failed');
    assert.equal(record.status, 'failed');
    assert.equal(record.lastError?.code, 'UNREGISTERED_TASK');
    assert.equal(record.history[0]!.statusCode, 200);
    assert.equal(runs, 0);
  });

  it('records expire after the retention period', async () => {
    let now = Date.now();
    const stores = memoryStores({ now: () => now });
    const short = await startApp('express', { stores, retentionMs: 60_000, now: () => now }, (d) => d.task('noop', () => undefined));
    try {
      const info = await short.deferred.defer('noop', []);
      await info.wait();
      assert.ok(await short.deferred.getTask(info.id));
      now += 61_000;
      assert.equal(await short.deferred.getTask(info.id), undefined);
    } finally {
      await short.close();
    }
  });
});
