/**
 * Renamed tasks: a task deferred under its old name by the previous release (same stores, same
 * queue) is delivered over real HTTP to the new release, which runs it under the new name.
 */
import assert from 'node:assert/strict';
import { memoryStores } from '../../adapters/memory/index.js';
import { createDeferred, currentTask, type Deferred } from '../../src/index.js';
import { createEmulatorClient } from '../../src/emulator/index.js';
import { CloudTasksTransport } from '../../src/queue/cloud-tasks.js';
import { startApp, type TestApp } from '../helpers/app.js';

const SERVICE_ACCOUNT = 'cloud-defer-tasks@local-project.iam.gserviceaccount.com';

describe('task aliases: renamed tasks keep running', () => {
  const stores = memoryStores();
  let next: TestApp;
  let previous: Deferred;
  const ran: Array<{ args: unknown[]; name?: string }> = [];

  before(async () => {
    // The new release: the task is now sendWelcomeEmail, and remembers its old name.
    next = await startApp('express', { stores }, (deferred) => {
      deferred.task(
        'sendWelcomeEmail',
        (to: string, locale: string) => {
          ran.push({ args: [to, locale], name: currentTask()?.name });
        },
        { aliases: ['sendWelcome'] },
      );
      deferred.task('report', () => undefined);
    });
    // The previous release, still deferring under the old name during the rollout.
    previous = createDeferred({
      logger: false,
      stores,
      transport: new CloudTasksTransport({ client: createEmulatorClient(next.deferred.emulator!), projectId: 'local-project', location: 'us-central1' }),
      target: { url: next.handlerUrl, serviceAccountEmail: SERVICE_ACCOUNT },
    });
    previous.task('sendWelcome', (_to: string, _locale: string) => {
      throw new Error('the old code must not be what runs here');
    });
    previous.task('oldReport', () => undefined);
  });
  after(async () => {
    await previous.close();
    await next.close();
  });

  it('a task deferred under the old name runs under the new one', async () => {
    const info = await previous.defer('sendWelcome', ['ada@example.com', 'en']);
    const record = await next.deferred.engine.waitFor(info.id, { timeoutMs: 10_000 });
    assert.equal(record.status, 'succeeded');
    assert.deepEqual(ran, [{ args: ['ada@example.com', 'en'], name: 'sendWelcomeEmail' }]);
  });

  it('an unknown task name is recorded failed with the registered names and how to add an alias', async () => {
    next.logger.lines.length = 0;
    const info = await previous.defer('oldReport', []);
    const record = await next.deferred.engine.waitFor(info.id, { timeoutMs: 10_000 });
    assert.equal(record.status, 'failed');
    assert.equal(record.lastError?.code, 'UNREGISTERED_TASK');
    const message = record.lastError?.message ?? '';
    assert.match(message, /No task named "oldReport"/);
    assert.match(message, /registered: "report", "sendWelcomeEmail"/);
    assert.doesNotMatch(message, /cloud-defer\.iteration/, "the library's own tasks are not listed");
    assert.match(message, /task\('newName', fn, \{ aliases: \['oldReport'\] \}\)/);
    const logged = next.logger.lines.find((l) => l.level === 'error' && l.fields?.taskId === info.id);
    assert.ok(logged, 'logged with the task id');
    assert.match(logged.message, /aliases: \['oldReport'\]/);
    assert.equal(logged.fields?.taskName, 'oldReport');
  });

  it("refuses an alias that is already a task name or another task's alias, and invalid aliases", () => {
    const deferred = createDeferred({ logger: false });
    deferred.task('a', () => undefined, { aliases: ['legacyA'] });
    assert.throws(() => deferred.task('b', () => undefined, { aliases: ['a'] }), { code: 'DUPLICATE_TASK_NAME' });
    assert.throws(
      () => deferred.task('c', () => undefined, { aliases: ['legacyA'] }),
      (err: Error & { code?: string }) => err.code === 'DUPLICATE_TASK_NAME' && /alias of "a"/.test(err.message),
    );
    assert.throws(() => deferred.task('legacyA', () => undefined), { code: 'DUPLICATE_TASK_NAME' });
    assert.throws(() => deferred.task('d', () => undefined, { aliases: ['has space'] }), { code: 'INVALID_OPTION' });
    assert.throws(() => deferred.task('e', () => undefined, { aliases: ['e'] }), { code: 'DUPLICATE_TASK_NAME' });
  });
});
