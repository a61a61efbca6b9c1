/**
 * A run cut short by its instance (SIGKILL here) is not the task's failure: up to maxAttempts - 1
 * such runs do not use up one of the queue's attempts, so instance deaths alone do not make a task
 * fail; maxAttempts 1 still means one run, and a task that kills its instance on every run ends.
 * Real Redis, the emulator and the app in their own processes; sweep() from this process.
 */
import assert from 'node:assert/strict';
import { memoryStores } from '../../adapters/memory/index.js';
import { redisStores } from '../../adapters/redis/index.js';
import { createDeferred, type DeferredTask, type TaskRecord } from '../../src/index.js';
import { eventually, startApp } from '../helpers/app.js';
import { appProcessHarness, killApp, startAppProcess } from './helpers/app-process.js';
import { freePort } from './helpers/processes.js';

const HEARTBEAT_MS = 1_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('reliability: runs cut short by their instance do not use up the queue’s attempts', function () {
  this.timeout(90_000);
  const h = appProcessHarness();

  const runs = async (key: string) => Number((await h.client.get(`${h.prefix}:runs:${key}`)) ?? 0);
  const done = async (key: string) => Number((await h.client.get(`${h.prefix}:done:${key}`)) ?? 0);

  /**
   * Defers cut(key, cutRuns) on a queue with `maxAttempts`, SIGKILLs the app under each of its
   * first `kills` runs and starts it again, with sweep() every 500 ms as Cloud Scheduler would
   * call it; resolves with the finished record.
   */
  async function killRuns(key: string, maxAttempts: number, cutRuns: number, kills: number): Promise<TaskRecord> {
    const port = await freePort();
    h.emulator.useFromEnv();
    h.control = createDeferred({
      stores: redisStores({ client: h.client.duplicate(), prefix: h.prefix }),
      queues: [{ name: 'default', retryConfig: { minBackoffSeconds: 0.1, maxBackoffSeconds: 0.5, maxAttempts } }],
      logger: false,
      target: { url: `http://127.0.0.1:${port}/_ah/queue/deferred` },
    });
    // Registered so the defer is typed; only the app child runs it.
    const cut: DeferredTask<[string, number]> = h.control.task('cut', async (_key: string, _cutRuns: number) => {});
    const deferred = h.control;
    const appOptions = { port, prefix: h.prefix, emulator: h.emulator, maxAttempts, heartbeatMs: HEARTBEAT_MS };
    h.app = await startAppProcess(appOptions);
    let stop = false;
    const sweeper = (async () => {
      while (!stop) {
        await deferred.sweep({ graceMs: HEARTBEAT_MS }).catch(() => undefined);
        await sleep(500);
      }
    })();
    try {
      const info = await cut.defer(key, cutRuns);
      for (let kill = 1; kill <= kills; kill += 1) {
        await eventually(async () => (await runs(key)) >= kill || undefined, `run ${kill} started`, 30_000);
        await killApp(h.app);
        h.app = await startAppProcess(appOptions);
      }
      return await info.wait({ timeoutMs: 30_000 });
    } finally {
      stop = true;
      await sweeper;
    }
  }

  it('queue maxAttempts 2, the app SIGKILLed under the first two runs: the third run succeeds, and the record says two were cut short', async () => {
    const record = await killRuns('twice', 2, 2, 2);
    assert.equal(record.status, 'succeeded', `the task did not fail: ${JSON.stringify(record.lastError)}`);
    assert.equal(await runs('twice'), 3);
    assert.equal(await done('twice'), 1);
    assert.equal(record.attempts, 3);
    assert.equal(record.interruptedRuns, 2);
  });

  it('queue maxAttempts 1: a run cut short is not run again; the record ends failed ABANDONED', async () => {
    const record = await killRuns('once', 1, 1, 1);
    assert.equal(record.status, 'failed');
    assert.equal(record.lastError?.code, 'ABANDONED');
    assert.match(record.lastError?.message ?? '', /1 runs, 1 of them cut short by their instance/);
    // Sweeps went on until the record finished; nothing may run it after that either.
    await sleep(1_500);
    assert.equal(await runs('once'), 1, 'maxAttempts 1 means one run');
    assert.equal(await done('once'), 0);
  });

  it('a task that dies with its instance on every run (maxAttempts 2) is given up after 3 runs, 2 x maxAttempts - 1', async () => {
    const record = await killRuns('always', 2, 99, 3);
    assert.equal(record.status, 'failed');
    assert.equal(record.lastError?.code, 'ABANDONED');
    assert.equal(record.attempts, 3);
    await sleep(1_500);
    assert.equal(await runs('always'), 3, 'no fourth run');
  });
});

describe('reliability: a delivery after runs cut short, on the embedded default', function () {
  this.timeout(30_000);

  /**
   * A task (queue maxAttempts 2) whose first `deadRuns` runs were leased by instances that died:
   * their leases, taken one after another, all ran out without a settle. Then its Cloud Task is delivered.
   */
  async function afterDeadRuns(deadRuns: number): Promise<{ record: TaskRecord; ran: number }> {
    const stores = memoryStores();
    let ran = 0;
    let task!: DeferredTask<[]>;
    const app = await startApp('express', { stores, queues: [{ name: 'default', retryConfig: { maxAttempts: 2 } }], logger: false }, (d) => {
      task = d.task('counts-runs', () => {
        ran += 1;
      });
    });
    try {
      const info = await task.with({ countdown: 1 }).defer();
      const past = Date.now() - 60_000;
      for (let n = 0; n < deadRuns; n += 1) {
        const lease = await stores.state.acquireLease(info.id, { owner: `dead-${n}`, now: past + n * 10, leaseMs: 5, executionCount: 0 });
        assert.equal(lease.kind, 'acquired');
      }
      return { record: await info.wait({ timeoutMs: 20_000 }), ran };
    } finally {
      await app.close();
    }
  }

  it('two runs cut short of maxAttempts 2: the delivery runs the task (one cut-short run is forgiven)', async () => {
    const { record, ran } = await afterDeadRuns(2);
    assert.equal(record.status, 'succeeded');
    assert.equal(ran, 1);
    assert.equal(record.attempts, 3);
    assert.equal(record.interruptedRuns, 2);
  });

  it('three runs cut short of maxAttempts 2: the delivery records it failed ABANDONED and does not run it', async () => {
    const { record, ran } = await afterDeadRuns(3);
    assert.equal(ran, 0, 'not run a fourth time');
    assert.equal(record.status, 'failed');
    assert.equal(record.lastError?.code, 'ABANDONED');
    assert.match(record.lastError?.message ?? '', /3 runs, 3 of them cut short by their instance/);
  });
});
