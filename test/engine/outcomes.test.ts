/**
 * A deferred call end to end, on Express and on Koa: defer -> embedded emulator (official client,
 * gRPC) -> real HTTP delivery -> handler -> run -> recorded outcome.
 */
import assert from 'node:assert/strict';
import { currentTask, PermanentTaskFailure, SingularTaskFailure, type TaskContext } from '../../src/index.js';
import { startApp, type Framework, type TestApp } from '../helpers/app.js';

for (const framework of ['express', 'koa'] as Framework[]) {
  describe(`task outcomes (${framework})`, () => {
    let app: TestApp;
    const calls: Array<{ name: string; args: unknown[]; context: TaskContext | undefined }> = [];
    let failuresLeft = 0;

    before(async () => {
      app = await startApp(framework, {}, (deferred) => {
        deferred.task('greet', async (name: string, times: number) => {
          calls.push({ name: 'greet', args: [name, times], context: currentTask() });
        });
        deferred.task('permanent', () => {
          calls.push({ name: 'permanent', args: [], context: currentTask() });
          throw new PermanentTaskFailure('the account is gone');
        });
        deferred.task('singular', () => {
          calls.push({ name: 'singular', args: [], context: currentTask() });
          if (failuresLeft-- > 0) throw new SingularTaskFailure('not yet');
        });
        deferred.task('flaky', () => {
          calls.push({ name: 'flaky', args: [], context: currentTask() });
          if (failuresLeft-- > 0) throw new Error('database timeout');
        });
        deferred.task(
          'alwaysFails',
          () => {
            calls.push({ name: 'alwaysFails', args: [], context: currentTask() });
            throw new Error('still broken');
          },
          { maxAttempts: 2 },
        );
      });
    });
    after(() => app.close());
    beforeEach(() => {
      calls.length = 0;
      app.logger.lines.length = 0;
    });

    it('runs the task with its arguments once and records it succeeded', async () => {
      const info = await app.deferred.defer('greet', ['Ada', 2]);
      assert.equal(info.status, 'queued');
      const record = await info.wait({ timeoutMs: 10_000 });
      assert.equal(record.status, 'succeeded');
      assert.equal(record.attempts, 1);
      assert.equal(record.history.length, 1);
      assert.equal(record.history[0]!.statusCode, 200);
      assert.ok(record.finishedAt! >= record.createdAt);
      assert.ok(typeof record.durationMs === 'number');
      await app.deferred.drain();
      assert.deepEqual(
        calls.map((c) => c.args),
        [['Ada', 2]],
      );
    });

    it('exposes currentTask() inside the task and undefined outside', async () => {
      assert.equal(currentTask(), undefined);
      const info = await app.deferred.defer('greet', ['Grace', 1]);
      await info.wait();
      const context = calls[0]!.context!;
      assert.equal(context.id, info.id);
      assert.equal(context.name, 'greet');
      assert.equal(context.queue, 'default');
      assert.equal(context.attempt, 0);
      assert.equal(context.executionCount, 0);
      assert.ok(context.eta instanceof Date);
      assert.ok(Math.abs(context.eta.getTime() - info.eta.getTime()) < 1000);
      assert.equal(currentTask(), undefined);
    });

    it('PermanentTaskFailure: recorded failed, answered 200, never retried', async () => {
      const info = await app.deferred.defer('permanent', []);
      const record = await info.wait();
      assert.equal(record.status, 'failed');
      assert.equal(record.lastError?.message, 'the account is gone');
      assert.equal(record.history.at(-1)!.statusCode, 200);
      await app.deferred.drain();
      assert.equal(calls.length, 1);
    });

    it('SingularTaskFailure: retried without an error log', async () => {
      failuresLeft = 1;
      const info = await app.deferred.defer('singular', []);
      await app.deferred.drain();
      const record = await info.wait();
      assert.equal(record.status, 'succeeded');
      assert.equal(calls.length, 2);
      assert.equal(calls[1]!.context!.attempt, 1, 'the retry count reaches the task');
      assert.deepEqual(
        app.logger.lines.filter((l) => l.level === 'error'),
        [],
      );
      assert.equal(record.history[0]!.statusCode, 503, 'SingularTaskFailure answers 503 on HTTP targets');
    });

    it('other errors: recorded, logged, retried by the queue until success', async () => {
      failuresLeft = 2;
      const info = await app.deferred.defer('flaky', []);
      await app.deferred.drain();
      const record = await info.wait();
      assert.equal(record.status, 'succeeded');
      assert.equal(record.attempts, 3);
      assert.deepEqual(
        record.history.map((h) => h.statusCode),
        [500, 500, 200],
      );
      assert.equal(record.history[0]!.error?.message, 'database timeout');
      assert.equal(app.logger.lines.filter((l) => l.level === 'error').length, 2);
      assert.deepEqual(
        calls.map((c) => c.context!.attempt),
        [0, 1, 2],
      );
    });

    it('a task that keeps failing stops at its maxAttempts: failed and acknowledged', async () => {
      const info = await app.deferred.defer('alwaysFails', []);
      await app.deferred.drain();
      const record = await info.wait();
      assert.equal(record.status, 'failed');
      assert.equal(record.attempts, 2);
      assert.deepEqual(
        record.history.map((h) => h.statusCode),
        [500, 200],
      );
      assert.equal(calls.length, 2, 'no third run: Cloud Tasks was told to stop');
    });

    it('per-defer maxAttempts overrides the task default', async () => {
      const info = await app.deferred.defer('alwaysFails', [], { maxAttempts: 1 });
      await app.deferred.drain();
      assert.equal((await info.wait()).status, 'failed');
      assert.equal(calls.length, 1);
    });
  });
}
