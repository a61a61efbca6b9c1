/**
 * The console's newer API over real HTTP on Express and Koa: Run now with the next attempt from
 * Cloud Tasks, bulk actions, hidden internal tasks, search, and the per-queue totals and series
 * (from the counters, and rebuilt from records when a store has none). Every new action is
 * refused without authorisation (401/403) and without the CSRF token or same-origin proof (403).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import request from 'supertest';
import { redisCounters, redisStores } from '../../adapters/redis/index.js';
import { header } from '../../src/http/auth.js';
import type { DeferredTask } from '../../src/index.js';
import { eventually, startApp, type Framework, type TestApp } from '../helpers/app.js';
import { API, signIn, type ConsoleClient } from './helpers.js';

interface Summary {
  id: string;
  taskName: string;
  status: string;
}

interface StatsBody {
  stats: {
    source: string;
    approximate: boolean;
    pending: number;
    oldestPendingAgeMs?: number;
    hour: {
      series: Array<{ succeeded: number; failed: number; retrying: number }>;
      totals: { runs: number; failures: number; retries: number; succeeded: number; p50Ms?: number; p95Ms?: number };
    };
    day: { series: Array<{ succeeded: number; failed: number; retrying: number }>; totals: { runs: number; failures: number; retries: number } };
  };
}

const authorize = async (req: { headers: Record<string, string | string[] | undefined> }) => {
  const user = header(req.headers, 'x-user');
  return user === 'ada' ? { email: 'ada@example.com' } : user === 'mallory' ? false : undefined;
};

for (const framework of ['express', 'koa'] as Framework[]) {
  describe(`console actions: run now, bulk, search, stats (${framework})`, function () {
    this.timeout(90_000);
    let app: TestApp;
    let ada: ConsoleClient;
    let boomFails = true;
    let stuckFails = true;
    let touch: DeferredTask<[string]>;
    let finish: DeferredTask<[]>;
    let visit: DeferredTask<[string]>;
    let wrapUp: DeferredTask<[]>;
    const visited: string[] = [];
    let finalized = 0;
    let hold: Promise<void> = Promise.resolve();

    before(async () => {
      app = await startApp(
        framework,
        {
          queues: [
            // A long backoff: a retrying task's next attempt is a minute away unless run now.
            { name: 'slow', retryConfig: { minBackoffSeconds: 60, maxBackoffSeconds: 60 } },
            { name: 'bulk' },
            { name: 'later' },
            { name: 'stat' },
            { name: 'walk' },
            { name: 'poison', retryConfig: { minBackoffSeconds: 1, maxBackoffSeconds: 2 } },
          ],
          console: { authorize },
        },
        (deferred) => {
          deferred.task(
            'boom',
            (n: number) => {
              if (boomFails) throw new Error(`boom ${n}`);
            },
            { maxAttempts: 1 },
          );
          deferred.task('stuck', (label: string) => {
            if (stuckFails) throw new Error(`not yet: ${label}`);
          });
          deferred.task('ok', async (ms: number) => {
            await new Promise((r) => setTimeout(r, ms));
          });
          deferred.task('remind', (_who: string) => undefined);
          touch = deferred.task('touch', (_item: string) => undefined);
          finish = deferred.task('finish', () => undefined);
          visit = deferred.task('visit', async (item: string) => {
            if (item === 'poison') throw new Error('poison item');
            if (item === 'c1') await hold;
            visited.push(item);
          });
          wrapUp = deferred.task('wrapUp', () => {
            finalized += 1;
          });
        },
      );
      ada = await signIn(app.baseUrl, { 'x-user': 'ada' });
    });
    after(async () => {
      await app.close();
    });

    const task = async (id: string) =>
      (await ada.get(`/tasks/${id}`).expect(200)).body.task as Summary & {
        canRunNow: boolean;
        cloudTask?: { name: string; scheduleTime?: number; dispatchCount: number };
        attempts: number;
      };

    it('refuses every new action without authorisation (401/403) or without the CSRF token or same-origin proof (403), and changes nothing', async () => {
      const pending = await app.deferred.defer('remind', ['guard'], { queue: 'later', countdown: 3600 });
      const actions = [
        `/tasks/${pending.id}/run`,
        '/bulk/rerun-failed?queue=later',
        '/bulk/cancel-pending?queue=later',
        '/bulk/delete-finished?queue=later',
        '/iterations/it-none/cancel',
        '/iterations/it-none/skip?shard=0',
      ];
      for (const path of actions) {
        await request(app.baseUrl).post(`${API}${path}`).expect(401);
        await request(app.baseUrl).post(`${API}${path}`).set('x-user', 'mallory').expect(403);
        const noToken = await ada.agent.post(`${API}${path}`).set('x-user', 'ada').set('Origin', app.baseUrl).set('Sec-Fetch-Site', 'same-origin').expect(403);
        assert.equal(noToken.body.error.code, 'CSRF', path);
        const wrongToken = await ada.agent
          .post(`${API}${path}`)
          .set('x-user', 'ada')
          .set('Origin', app.baseUrl)
          .set('X-Cloud-Defer-CSRF', 'x'.repeat(43))
          .expect(403);
        assert.equal(wrongToken.body.error.code, 'CSRF', path);
        const crossSite = await ada.agent
          .post(`${API}${path}`)
          .set('x-user', 'ada')
          .set('Origin', 'https://evil.example')
          .set('X-Cloud-Defer-CSRF', ada.token)
          .expect(403);
        assert.equal(crossSite.body.error.code, 'CROSS_SITE', path);
      }
      for (const path of ['/queues/later/stats', `/tasks?q=${pending.id}`]) {
        await request(app.baseUrl).get(`${API}${path}`).expect(401);
        await request(app.baseUrl).get(`${API}${path}`).set('x-user', 'mallory').expect(403);
      }
      assert.equal((await app.deferred.getTask(pending.id))?.status, 'queued');
      const held = await app.deferred.queuedTasks('later');
      assert.equal(held.length, 1, 'the task is still waiting in Cloud Tasks');
      await ada.post('/bulk/cancel-pending?queue=later').expect(200);
    });

    it('a retrying task shows its next attempt from Cloud Tasks and runs at once on Run now (attempts stay 1-based)', async () => {
      stuckFails = true;
      const info = await app.deferred.defer('stuck', ['run-now'], { queue: 'slow' });
      const retrying = await eventually(async () => {
        const t = await task(info.id);
        return t.status === 'retrying' && t.cloudTask ? t : undefined;
      }, 'the task to be retrying');
      assert.equal(retrying.attempts, 1);
      assert.equal(retrying.canRunNow, true);
      assert.ok(retrying.cloudTask!.scheduleTime! > Date.now() + 30_000, 'the next attempt is the backoff away');
      assert.equal(retrying.cloudTask!.dispatchCount, 1);
      stuckFails = false;
      const ran = await ada.post(`/tasks/${info.id}/run`).expect(202);
      assert.equal(ran.body.cloudTaskName, retrying.cloudTask!.name);
      const done = await info.wait({ timeoutMs: 15_000 });
      assert.equal(done.status, 'succeeded');
      assert.equal(done.attempts, 2);
      assert.deepEqual(
        done.history.map((a) => a.retryCount! + 1),
        [1, 2],
        'attempts numbered 1-based from X-CloudTasks-TaskRetryCount',
      );
      const after = await ada.post(`/tasks/${info.id}/run`).expect(400);
      assert.equal(after.body.error.code, 'NOT_PENDING');
      assert.equal((await task(info.id)).canRunNow, false);
    });

    it('bulk: reruns 20 failed tasks in bounded calls (each counted once), cancels all pending, deletes finished records', async () => {
      boomFails = true;
      const failed = await Promise.all(Array.from({ length: 20 }, (_, i) => app.deferred.defer('boom', [i], { queue: 'bulk' })));
      for (const f of failed) assert.equal((await f.wait()).status, 'failed');
      boomFails = false;
      const first = await ada.post('/bulk/rerun-failed?queue=bulk&limit=15').expect(200);
      assert.equal(first.body.done, 15);
      assert.equal(first.body.more, true);
      const second = await ada.post(`/bulk/rerun-failed?queue=bulk&limit=15&cursor=${encodeURIComponent(first.body.nextCursor)}`).expect(200);
      assert.equal(second.body.done, 5);
      assert.equal(second.body.more, false);
      await app.deferred.drain();
      const succeeded = await app.deferred.listTasks({ queue: 'bulk', status: 'succeeded', limit: 100 });
      assert.equal(succeeded.records.length, 20, 'twenty reruns, each failed task rerun once');
      assert.equal((await app.deferred.listTasks({ queue: 'bulk', status: 'failed', limit: 100 })).records.length, 20, 'the failed records stay as history');

      const pending = await Promise.all(Array.from({ length: 3 }, (_, i) => app.deferred.defer('remind', [`p${i}`], { queue: 'later', countdown: 3600 })));
      const cancelled = await ada.post('/bulk/cancel-pending?queue=later').expect(200);
      assert.equal(cancelled.body.done, 3);
      for (const p of pending) assert.equal((await app.deferred.getTask(p.id))?.status, 'cancelled');

      const refused = await ada.post('/bulk/delete-finished?queue=later&status=queued').expect(400);
      assert.equal(refused.body.error.code, 'BAD_REQUEST');
      const deleted = await ada.post('/bulk/delete-finished?queue=later&status=cancelled').expect(200);
      assert.ok(deleted.body.done >= 3);
      for (const p of pending) assert.equal(await app.deferred.getTask(p.id), undefined);
      const audit = app.logger.lines.filter((l) => l.message === 'console action').map((l) => l.fields?.action);
      for (const action of ['rerun-failed', 'cancel-pending', 'delete-finished', 'run']) assert.ok(audit.includes(action), `${action} audited`);
    });

    it('hides internal iteration tasks unless asked, and the iteration lists them grouped', async () => {
      const it = await app.deferred.deferIteration(['a', 'b', 'c'], touch, finish, { shards: 2, queue: 'walk', deleteMarker: false });
      await it.wait({ timeoutMs: 20_000 });
      const plain = await ada.get('/queues/walk/tasks?limit=100').expect(200);
      assert.ok(plain.body.tasks.every((t: Summary) => !t.taskName.startsWith('cloud-defer.')));
      assert.ok(plain.body.hiddenInternal >= 4, 'start, two shards and finalize hidden');
      const all = await ada.get('/queues/walk/tasks?limit=100&internal=1').expect(200);
      const names = new Set(all.body.tasks.map((t: Summary) => t.taskName));
      for (const n of ['cloud-defer.iteration.start', 'cloud-defer.iteration.shard', 'cloud-defer.iteration.finalize']) assert.ok(names.has(n), n);
      const detail = await ada.get(`/iterations/${it.id}`).expect(200);
      const kinds = detail.body.tasks.map((t: Summary) => t.taskName);
      assert.equal(kinds.filter((n: string) => n === 'cloud-defer.iteration.finalize').length, 1);
      assert.equal(kinds.filter((n: string) => n === 'cloud-defer.iteration.shard').length, 2);
    });

    it('cancels an iteration: its shard stops at the next item and finalize never runs', async () => {
      visited.length = 0;
      finalized = 0;
      let release: () => void = () => {};
      hold = new Promise<void>((r) => (release = r));
      const it = await app.deferred.deferIteration(['c0', 'c1', 'c2', 'c3'], visit, wrapUp, { shards: 1, queue: 'walk', deleteMarker: false });
      // c0 done, c1 held in its callback (progress is saved per page, so the record does not show it yet).
      await eventually(() => visited.length === 1, 'the shard past its first item');
      await eventually(async () => (await app.deferred.getTask(`${it.id}-s0-0`))?.status === 'running', 'the shard task running');
      const res = await ada.post(`/iterations/${it.id}/cancel`).expect(200);
      assert.equal(res.body.iteration, it.id);
      // The shard looks for a cancel before an item once 200 ms have passed since it last looked;
      // c1 is held longer than that, so the look before c2 is certain.
      await new Promise((r) => setTimeout(r, 500));
      release();
      await eventually(async () => {
        const shard = await app.deferred.getTask(`${it.id}-s0-0`);
        return shard?.status === 'succeeded';
      }, 'the shard task to end');
      await app.deferred.drain();
      assert.deepEqual(visited, ['c0', 'c1'], 'the items started before the cancel, and no other');
      assert.ok(!visited.includes('c2') && !visited.includes('c3'), `stopped at the next item (visited ${visited.join(',')})`);
      assert.equal(finalized, 0, 'finalize never runs');
      assert.equal((await app.deferred.getIteration(it.id))?.status, 'cancelled');
      const again = await ada.post(`/iterations/${it.id}/cancel`).expect(409);
      assert.equal(again.body.error.code, 'WRONG_STATE');
    });

    it('skips the poison item a shard is stuck on (recorded), then finalize runs once; items progress is reported', async () => {
      visited.length = 0;
      finalized = 0;
      const it = await app.deferred.deferIteration(['p0', 'poison', 'p2', 'p3'], visit, wrapUp, {
        shards: 1,
        queue: 'poison',
        deleteMarker: false,
        retryCountdown: 1,
      });
      await eventually(async () => ((await app.deferred.getIteration(it.id))?.shards[0]?.errors ?? 0) >= 1, 'the shard to hit the poison item', 20_000);
      const skipped = await eventually(
        async () => {
          const res = await ada.post(`/iterations/${it.id}/skip?shard=0`);
          return res.status === 200 ? res.body : undefined;
        },
        'a skip while the shard waits for its retry',
        20_000,
      );
      assert.equal(skipped.skippedKey, '000000000001');
      await it.wait({ timeoutMs: 20_000 });
      await app.deferred.drain();
      assert.equal(finalized, 1, 'finalize ran once');
      assert.deepEqual(visited, ['p0', 'p2', 'p3']);
      const detail = await ada.get(`/iterations/${it.id}`).expect(200);
      assert.equal(detail.body.iteration.status, 'succeeded');
      assert.equal(detail.body.iteration.shards[0].lastError.code, 'SKIPPED');
      assert.match(detail.body.iteration.shards[0].lastError.message, /Item 000000000001 skipped from the console \(it failed with: poison item\)/);
      assert.equal(detail.body.itemTotal, 4);
      assert.equal(detail.body.iteration.processed, 3);
      const late = await ada.post(`/iterations/${it.id}/skip?shard=0`).expect(409);
      assert.equal(late.body.error.code, 'WRONG_STATE');
      const audit = app.logger.lines.filter((l) => l.message === 'console action').map((l) => l.fields?.action);
      assert.ok(audit.includes('skip-item') && audit.includes('cancel-iteration'));
    });

    it('search: exact task id, reference and Cloud Task name; argument text within a bound it reports', async () => {
      const a = await app.deferred.defer('remind', ['grace-hopper'], { queue: 'later', countdown: 3600, reference: `${framework}-ref-1` });
      await app.deferred.defer('remind', ['alan'], { queue: 'later', countdown: 3600 });
      const byId = await ada.get(`/tasks?q=${a.id}`).expect(200);
      assert.deepEqual(
        byId.body.tasks.map((t: Summary) => t.id),
        [a.id],
      );
      const byRef = await ada.get(`/tasks?q=${framework}-ref-1`).expect(200);
      assert.deepEqual(
        byRef.body.tasks.map((t: Summary) => t.id),
        [a.id],
      );
      const cloudName = (await task(a.id)).cloudTask!.name;
      const byCloudName = await ada.get(`/tasks?q=${encodeURIComponent(cloudName)}`).expect(200);
      assert.deepEqual(
        byCloudName.body.tasks.map((t: Summary) => t.id),
        [a.id],
      );
      const byShortName = await ada.get(`/queues/later/tasks?q=${cloudName.split('/').pop()}`).expect(200);
      assert.deepEqual(
        byShortName.body.tasks.map((t: Summary) => t.id),
        [a.id],
      );
      const byArgs = await ada.get('/tasks?args=grace-hop').expect(200);
      assert.deepEqual(
        byArgs.body.tasks.map((t: Summary) => t.id),
        [a.id],
      );
      assert.equal(byArgs.body.search.complete, true);
      assert.ok(byArgs.body.search.scanned > 1);
      assert.deepEqual((await ada.get('/tasks?q=no-such-thing').expect(200)).body.tasks, []);
      await ada.post('/bulk/cancel-pending?queue=later').expect(200);
    });

    it('stats: totals and per-minute series from the counters match the seeded runs', async () => {
      boomFails = true;
      for (const ms of [1, 30, 300]) await (await app.deferred.defer('ok', [ms], { queue: 'stat' })).wait();
      for (const n of [1, 2]) await (await app.deferred.defer('boom', [n], { queue: 'stat' })).wait();
      await app.deferred.defer('remind', ['pending'], { queue: 'stat', countdown: 3600 });
      const { stats } = (await ada.get('/queues/stat/stats').expect(200)).body as StatsBody;
      assert.equal(stats.source, 'counters');
      assert.equal(stats.hour.series.length, 60);
      assert.equal(stats.day.series.length, 24);
      assert.deepEqual(stats.hour.totals.runs, 5);
      assert.equal(stats.hour.totals.failures, 2);
      assert.equal(stats.hour.totals.succeeded, 3);
      assert.equal(stats.day.totals.runs, 5);
      assert.equal(
        stats.hour.series.reduce((n, p) => n + p.succeeded + p.failed + p.retrying, 0),
        5,
      );
      assert.ok(stats.hour.totals.p95Ms! >= 300, `p95 covers the 300 ms run (${stats.hour.totals.p95Ms})`);
      assert.ok(stats.hour.totals.p50Ms! <= stats.hour.totals.p95Ms!);
      assert.equal(stats.pending, 1);
      assert.ok(stats.oldestPendingAgeMs !== undefined && stats.oldestPendingAgeMs < 60_000);
    });
  });
}

describe('console stats without counters (rebuilt from the records, bounded)', function () {
  this.timeout(60_000);
  let app: TestApp;
  before(async () => {
    app = await startApp('express', { queues: [{ name: 'plain' }], counters: false, console: { authorize } }, (deferred) => {
      deferred.task('ok', () => undefined);
      deferred.task(
        'bad',
        () => {
          throw new Error('bad');
        },
        { maxAttempts: 1 },
      );
    });
  });
  after(async () => {
    await app.close();
  });

  it('answers the same figures from the records, and says where they come from', async () => {
    const ada = await signIn(app.baseUrl, { 'x-user': 'ada' });
    for (let i = 0; i < 4; i += 1) await (await app.deferred.defer('ok', [], { queue: 'plain' })).wait();
    await (await app.deferred.defer('bad', [], { queue: 'plain' })).wait();
    const { stats } = (await ada.get('/queues/plain/stats').expect(200)).body as StatsBody;
    assert.equal(stats.source, 'records');
    assert.equal(stats.approximate, false);
    assert.equal(stats.hour.totals.runs, 5);
    assert.equal(stats.hour.totals.failures, 1);
    assert.equal(stats.day.totals.runs, 5);
  });
});

describe('console stats on the Redis stores with Redis counters', function () {
  this.timeout(60_000);
  let app: TestApp;
  let client: Redis;
  const prefix = `cd-test-console-${randomUUID().slice(0, 8)}`;
  before(async () => {
    client = new Redis({ host: process.env.REDIS_HOST ?? '127.0.0.1', port: Number(process.env.REDIS_PORT ?? 6379) });
    app = await startApp(
      'koa',
      { stores: redisStores({ client, prefix }), counters: redisCounters({ client, prefix }), queues: [{ name: 'r' }], console: { authorize } },
      (deferred) => {
        deferred.task('ok', () => undefined);
        deferred.task(
          'bad',
          () => {
            throw new Error('bad');
          },
          { maxAttempts: 1 },
        );
      },
    );
  });
  after(async () => {
    await app?.close();
    const keys = await client.keys(`${prefix}*`);
    if (keys.length) await client.del(...keys);
    client.disconnect();
  });

  it('reads the totals from the counters kept in Redis', async () => {
    const ada = await signIn(app.baseUrl, { 'x-user': 'ada' });
    for (let i = 0; i < 3; i += 1) await (await app.deferred.defer('ok', [], { queue: 'r' })).wait();
    await (await app.deferred.defer('bad', [], { queue: 'r' })).wait();
    const { stats } = (await ada.get('/queues/r/stats').expect(200)).body as StatsBody;
    assert.equal(stats.source, 'counters');
    assert.equal(stats.hour.totals.runs, 4);
    assert.equal(stats.hour.totals.failures, 1);
    assert.equal(stats.day.totals.runs, 4);
    assert.ok((await client.keys(`${prefix}:{counters:r}:*`)).length >= 2, 'minute and hour buckets in Redis');
  });
});
