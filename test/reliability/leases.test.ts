/**
 * Issue 13.1: a run longer than its lease, with a duplicate delivery every second, is never run
 * twice at once in a process; currentTask().signal fires at the end of the lease. Real Redis.
 */
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { redisStores } from '../../adapters/redis/index.js';
import { createCodec, encodeEnvelope } from '../../src/core/codec.js';
import { createDeferred, currentTask } from '../../src/index.js';
import { deleteKeys, REDIS_HOST, REDIS_PORT, testPrefix } from '../redis/harness.js';
import { freePort, startEmulatorProcess } from './helpers/processes.js';

describe('reliability: leases that follow the run (issue 13.1)', function () {
  this.timeout(60_000);

  it('runs a task 3x longer than its lease once, with a duplicate delivery every second, and aborts its signal at the lease end', async () => {
    const emulator = await startEmulatorProcess(await freePort());
    emulator.useFromEnv();
    const client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    const prefix = testPrefix();
    const leaseMs = 1_000;
    const deferred = createDeferred({
      stores: redisStores({ client, prefix }),
      queues: [{ name: 'default' }],
      leaseMs,
      logger: false,
      target: { url: 'http://127.0.0.1:9/unused' },
    });
    let abortedAt: number | undefined;
    const task = deferred.task('long-run', async () => {
      const started = Date.now();
      const running = await client.incr(`${prefix}:t:running`);
      await client.incr(`${prefix}:t:runs`);
      await client.set(`${prefix}:t:max`, String(Math.max(running, Number((await client.get(`${prefix}:t:max`)) ?? 0))));
      currentTask()!.signal.addEventListener('abort', () => {
        abortedAt = Date.now() - started;
      });
      await new Promise((resolve) => setTimeout(resolve, 3 * leaseMs + 200));
      await client.decr(`${prefix}:t:running`);
    });
    try {
      // Scheduled an hour ahead, so only the deliveries below reach it.
      const info = await task.with({ countdown: 3600 }).defer();
      const body = encodeEnvelope({ task: 'long-run', id: info.id, argsText: Buffer.from(createCodec().encodeArgs([])).toString('utf8') });
      const delivery = { body, targetKind: 'http' as const, queueName: 'default', retryCount: 0, executionCount: 0, verified: true };
      const first = deferred.engine.run(delivery);
      const duplicates = [];
      for (let i = 1; i <= 3; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        duplicates.push(await deferred.engine.run({ ...delivery, retryCount: i }));
      }
      assert.equal((await first).kind, 'succeeded');
      assert.deepEqual(
        duplicates.map((d) => d.kind),
        ['busy', 'busy', 'busy'],
      );
      assert.equal(await client.get(`${prefix}:t:runs`), '1');
      assert.equal(await client.get(`${prefix}:t:max`), '1');
      assert.ok(abortedAt !== undefined && abortedAt >= leaseMs - 50, `signal fired at the lease end (${abortedAt} ms)`);
      assert.equal((await deferred.getTask(info.id))?.status, 'succeeded');
    } finally {
      await deferred.close({ graceMs: 0 });
      await emulator.kill();
      delete process.env.CLOUD_TASKS_EMULATOR_HOST;
      delete process.env.CLOUD_TASKS_EMULATOR_JWKS_URI;
      await deleteKeys(client, prefix);
      client.disconnect();
    }
  });
});
