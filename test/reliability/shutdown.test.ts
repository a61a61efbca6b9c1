/**
 * Issue 13.2: SIGTERM of a real app process during 50 in-flight runs. Runs that fit in the grace
 * period finish; the others' leases are released, so the next delivery (to a restarted app) runs
 * them at once instead of waiting out the 10.5-minute lease. Real Redis, emulator in its own process.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import Redis from 'ioredis';
import { redisStores } from '../../adapters/redis/index.js';
import { createDeferred } from '../../src/index.js';
import { eventually } from '../helpers/app.js';
import { deleteKeys, REDIS_HOST, REDIS_PORT, testPrefix } from '../redis/harness.js';
import { startAppProcess } from './helpers/app-process.js';
import { freePort, startEmulatorProcess } from './helpers/processes.js';

describe('reliability: graceful shutdown (issue 13.2)', function () {
  this.timeout(60_000);

  it('SIGTERM during 50 in-flight runs: short ones finish, long ones are released and re-run at once', async () => {
    const emulator = await startEmulatorProcess(await freePort());
    const client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    const prefix = testPrefix();
    const appPort = await freePort();
    const handler = `http://127.0.0.1:${appPort}/_ah/queue/deferred`;
    emulator.useFromEnv();
    const deferrer = createDeferred({ stores: redisStores({ client, prefix }), queues: [{ name: 'default' }], logger: false, target: { url: handler } });
    const work = deferrer.task('work', (_key: string, _first: number, _later: number) => undefined);
    let app = await startAppProcess({ port: appPort, prefix, emulator, graceMs: 1_500 });
    try {
      const short = await Promise.all(Array.from({ length: 25 }, (_, i) => work.defer(`s${i}`, 300, 300)));
      const long = await Promise.all(Array.from({ length: 25 }, (_, i) => work.defer(`l${i}`, 30_000, 50)));
      const runsStarted = async () =>
        (await Promise.all([...short, ...long].map((_, i) => client.get(`${prefix}:runs:${i < 25 ? `s${i}` : `l${i - 25}`}`)))).filter(Boolean).length;
      await eventually(async () => (await runsStarted()) === 50, '50 runs in flight', 20_000);
      const exited = once(app, 'exit');
      app.kill('SIGTERM');
      const [code] = await exited;
      assert.equal(code, 0, 'the app exits by itself within the grace period');

      const afterTerm = await Promise.all(long.map((info) => deferrer.getTask(info.id)));
      assert.deepEqual(
        afterTerm.map((r) => [r?.status, r?.leaseUntil]),
        Array(25).fill(['retrying', undefined]),
        'long runs released',
      );
      const shortRecords = await Promise.all(short.map((info) => deferrer.getTask(info.id)));
      assert.deepEqual(
        shortRecords.map((r) => r?.status),
        Array(25).fill('succeeded'),
        'short runs finished in the grace period',
      );

      const restartedAt = Date.now();
      app = await startAppProcess({ port: appPort, prefix, emulator, graceMs: 1_500 });
      const records = await Promise.all(long.map((info) => info.wait({ timeoutMs: 30_000 })));
      assert.deepEqual(
        records.map((r) => r.status),
        Array(25).fill('succeeded'),
      );
      // Far below the 630 s lease a killed run used to hold: nothing waited for an old lease.
      assert.ok(Date.now() - restartedAt < 30_000);
      for (let i = 0; i < 25; i += 1) {
        assert.equal(await client.get(`${prefix}:runs:s${i}`), '1');
        assert.equal(await client.get(`${prefix}:runs:l${i}`), '2');
        assert.equal(await client.get(`${prefix}:done:l${i}`), '1', 'the released run never completed');
      }
    } finally {
      if (app.exitCode === null && app.signalCode === null) {
        const exited = once(app, 'exit');
        app.kill('SIGKILL');
        await exited;
      }
      await deferrer.close({ graceMs: 0 });
      await emulator.kill();
      delete process.env.CLOUD_TASKS_EMULATOR_HOST;
      delete process.env.CLOUD_TASKS_EMULATOR_JWKS_URI;
      await deleteKeys(client, prefix);
      client.disconnect();
    }
  });
});
