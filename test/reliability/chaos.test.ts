/**
 * Issue 13 acceptance, the record follows Cloud Tasks: the app process SIGKILLed 20 times while
 * 1,000 tasks run (queue maxAttempts 3), a queue that gives up, and an emulator restarted with
 * 100 queued tasks. sweep() runs from this process as Cloud Scheduler would call it. Real Redis,
 * the emulator and the app in their own processes.
 */
import assert from 'node:assert/strict';
import { redisStores } from '../../adapters/redis/index.js';
import { createDeferred, type Deferred, type DeferredTask } from '../../src/index.js';
import { eventually, startApp } from '../helpers/app.js';
import { appProcessHarness, killApp as kill, standbyApp, startAppProcess } from './helpers/app-process.js';
import { freePort, startEmulatorProcess } from './helpers/processes.js';

const HEARTBEAT_MS = 1_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('reliability: the record follows Cloud Tasks (issue 13 acceptance)', function () {
  this.timeout(240_000);
  const h = appProcessHarness();

  /** The defers and the sweeps come from this process, on the same Redis and emulator as the app. */
  function controlInstance(port: number, maxAttempts: number): { deferred: Deferred; count: DeferredTask<[string, number]> } {
    h.emulator.useFromEnv();
    const deferred = createDeferred({
      stores: redisStores({ client: h.client.duplicate(), prefix: h.prefix }),
      queues: [{ name: 'default', retryConfig: { minBackoffSeconds: 0.1, maxBackoffSeconds: 0.5, maxAttempts } }],
      logger: false,
      target: { url: `http://127.0.0.1:${port}/_ah/queue/deferred` },
    });
    // Registered so defers are typed; only the app child runs it.
    const count = deferred.task('count', async (_key: string, _runMs: number) => {});
    h.control = deferred;
    return { deferred, count };
  }

  async function counts(ids: readonly string[], what: 'started' | 'completed'): Promise<number[]> {
    const values = await h.client.mget(ids.map((id) => `${h.prefix}:${what}:${id}`));
    return values.map((v) => Number(v ?? 0));
  }

  // About 40 s on an idle 2-core machine.
  it('1,000 tasks, queue maxAttempts 3, the app SIGKILLed 20 times and restarted: 1,000 succeeded, none lost, none completed twice, every record finished', async () => {
    const port = await freePort();
    const { deferred, count } = controlInstance(port, 3);
    h.app = await startAppProcess({ port, prefix: h.prefix, emulator: h.emulator, maxAttempts: 3, heartbeatMs: HEARTBEAT_MS });
    const ids: string[] = [];
    let stop = false;
    // Cloud Scheduler's part: a sweep every 2 s; records younger than 2 s are left alone.
    const sweeper = (async () => {
      while (!stop) {
        const swept = await deferred.sweep({ graceMs: 2 * HEARTBEAT_MS, limit: 1000 }).catch((err: unknown) => err);
        if (process.env.CHAOS_DEBUG) process.stderr.write(`sweep ${JSON.stringify(swept)}\n`);
        await sleep(2_000);
      }
    })();
    const deferring = (async () => {
      for (let i = 0; i < 1_000; i += 50) {
        const batch = await Promise.all(Array.from({ length: 50 }, (_, j) => count.defer(`k${i + j}`, 40 + ((i + j) % 7) * 20)));
        ids.push(...batch.map((info) => info.id));
        await sleep(150);
      }
    })();
    let kills = 0;
    const started = Date.now();
    let next = standbyApp({ port, prefix: h.prefix, emulator: h.emulator, maxAttempts: 3, heartbeatMs: HEARTBEAT_MS });
    while (kills < 20) {
      await sleep(1_000 + Math.random() * 1_500);
      await kill(h.app);
      kills += 1;
      if (process.env.CHAOS_DEBUG) process.stderr.write(`kill ${kills} at ${Date.now() - started} ms, ${ids.length} deferred\n`);
      h.app = await next.go();
      next = standbyApp({ port, prefix: h.prefix, emulator: h.emulator, maxAttempts: 3, heartbeatMs: HEARTBEAT_MS });
    }
    await kill(next.child);
    await deferring;
    const keys = ids.map((_, n) => `k${n}`);
    const deadline = Date.now() + 90_000;
    for (;;) {
      const page = await Promise.all(ids.map((id) => deferred.getTask(id)));
      const unfinished = page.filter((r) => !r || !['succeeded', 'failed', 'cancelled'].includes(r.status));
      if (unfinished.length === 0) break;
      if (process.env.CHAOS_DEBUG) {
        const by: Record<string, number> = {};
        for (const r of unfinished) by[r?.status ?? 'missing'] = (by[r?.status ?? 'missing'] ?? 0) + 1;
        process.stderr.write(`unfinished ${JSON.stringify(by)} at ${Date.now() - started} ms\n`);
      }
      if (Date.now() > deadline) assert.fail(`${unfinished.length} records unfinished, e.g. ${JSON.stringify(unfinished[0])}`);
      await sleep(2_000);
    }
    stop = true;
    await sweeper;
    const records = await Promise.all(ids.map((id) => deferred.getTask(id)));
    const succeeded = records.filter((r) => r?.status === 'succeeded').length;
    const completed = await counts(keys, 'completed');
    const started1 = await counts(keys, 'started');
    assert.equal(kills, 20);
    assert.equal(succeeded, 1_000, `failed: ${JSON.stringify(records.find((r) => r?.status !== 'succeeded'))}`);
    assert.equal(completed.filter((c) => c === 0).length, 0, 'none lost');
    // The task commits its completion with its `succeeded` record (recordSuccessIn): a kill after
    // that commit leaves the record finished, so no task completes twice.
    const twice = keys.filter((_, n) => completed[n]! > 1);
    const by = await Promise.all(twice.map(async (key) => `${key} by ${(await h.client.lrange(`${h.prefix}:completedBy:${key}`, 0, -1)).join(',')}`));
    assert.deepEqual(by, [], 'no task completed twice');
    const recordedTwice = records.filter((r) => (r?.history ?? []).filter((a) => a.outcome === 'succeeded').length > 1);
    assert.equal(recordedTwice.length, 0, 'no record holds two successful attempts');
    assert.ok(
      started1.some((c) => c > 1),
      'some runs were killed and run again (the kills hit runs)',
    );
    // Tasks cut three times or more would have used up maxAttempts 3 had cut-short runs counted.
    const cutTwice = started1.filter((c) => c > 2).length;
    const cutThrice = started1.filter((c) => c > 3).length;
    process.stdout.write(
      `      (${kills} kills, ${started1.filter((c) => c > 1).length} runs cut and run again, ${cutTwice} of them twice or more, ${cutThrice} three times or more, ${Date.now() - started} ms)\n`,
    );
  });

  it('a queue that gives up (maxAttempts 2, a task that always fails) unknown to the app: failed ABANDONED within one sweep, the reference free again', async () => {
    const { deferred } = controlInstance(9, 2);
    await deferred.ready(); // the queue exists on the emulator with retryConfig.maxAttempts 2
    // The app's own configuration does not say the limit, so its records do not know it.
    let fails!: DeferredTask<[]>;
    const served = await startApp('express', { stores: redisStores({ client: h.client.duplicate(), prefix: h.prefix }), logger: false }, (d) => {
      fails = d.task('always-fails', async () => {
        throw new Error('always');
      });
    });
    try {
      const info = await fails.with({ reference: 'gives-up-ref' }).defer();
      const transport = (await deferred.ready()).transport;
      await eventually(async () => (await transport.listTasks('default')).length === 0 || undefined, 'the queue gives up', 20_000);
      const before = await deferred.getTask(info.id);
      assert.equal(before?.status, 'retrying', 'the record alone does not know the queue gave up');
      assert.equal(before?.attempts, 2);
      const result = await deferred.sweep({ graceMs: 0 });
      assert.equal(result.abandoned, 1);
      const after = await deferred.getTask(info.id);
      assert.equal(after?.status, 'failed');
      assert.equal(after?.lastError?.code, 'ABANDONED');
      const again = await fails.with({ reference: 'gives-up-ref', onDuplicate: 'throw' }).defer();
      assert.equal(again.duplicate, false);
      assert.notEqual(again.id, info.id);
    } finally {
      await served.close();
    }
  });

  it('the emulator restarted with 100 queued tasks: after one sweep all 100 are enqueued again and each runs once', async () => {
    const port = await freePort();
    const { deferred, count } = controlInstance(port, 3);
    // Scheduled 3 s ahead, so all 100 are still queued when the emulator dies; they keep that ETA.
    const infos = await Promise.all(Array.from({ length: 100 }, (_, n) => count.with({ countdown: 3 }).defer(`r${n}`, 10)));
    const emulatorPort = Number(h.emulator.address.split(':')[1]);
    await h.emulator.kill();
    h.emulator = await startEmulatorProcess(emulatorPort);
    h.app = await startAppProcess({ port, prefix: h.prefix, emulator: h.emulator, maxAttempts: 3, heartbeatMs: HEARTBEAT_MS });
    await eventually(
      async () =>
        (await deferred
          .ready()
          .then(({ transport }) => transport.listQueues())
          .catch(() => undefined)) ?? undefined,
      'the transport is back',
      20_000,
    );
    const result = await deferred.sweep({ graceMs: 0 });
    assert.equal(result.reenqueued, 100);
    const records = await Promise.all(infos.map((info) => info.wait({ timeoutMs: 30_000 })));
    assert.deepEqual(new Set(records.map((r) => r.status)), new Set(['succeeded']));
    const completed = await counts(
      infos.map((_, n) => `r${n}`),
      'completed',
    );
    assert.deepEqual(new Set(completed), new Set([1]), 'each ran once');
  });
});
