/**
 * The console's JSON API over real HTTP, on Express and on Koa: queues with live figures, task
 * lists and details, iterations, and the actions with their cross-site protection and audit log.
 */
import assert from 'node:assert/strict';
import request from 'supertest';
import type { ConsoleRequest } from '../../src/console/console.js';
import { header } from '../../src/http/auth.js';
import type { DeferredTask } from '../../src/index.js';
import { eventually, startApp, type Framework, type TestApp } from '../helpers/app.js';
import { API, CONSOLE, signIn, type ConsoleClient } from './helpers.js';

const ADA = { email: 'ada@example.com' };

interface TaskBody {
  task: {
    id: string;
    status: string;
    reference?: string;
    args: { available: boolean; json?: string; truncated?: boolean; bytes?: number; limitBytes?: number; decoded?: boolean; reason?: string };
    lastError?: { message: string; stack?: string };
    history: Array<{ outcome: string; statusCode: number; durationMs: number }>;
    startedAt?: number;
    finishedAt?: number;
    durationMs?: number;
    eta: number;
    canRerun: boolean;
    canCancel: boolean;
  };
}

interface QueueBody {
  name: string;
  state: string;
  paused: boolean;
  rateLimits?: { maxDispatchesPerSecond?: number };
  retryConfig?: { maxAttempts?: number };
  figures: {
    pending: number;
    running: number;
    executedLastMinute: number;
    failedLastHour: number;
    oldestEta?: number;
    inCloudTasks: number;
    approximate: boolean;
  };
}

for (const framework of ['express', 'koa'] as Framework[]) {
  describe(`console API (${framework})`, function () {
    this.timeout(60_000);
    let app: TestApp;
    let ada: ConsoleClient;
    let failuresLeft = 0;
    const seen: ConsoleRequest[] = [];
    let touch: DeferredTask<[string]>;
    let finish: DeferredTask<[]>;

    before(async () => {
      app = await startApp(
        framework,
        {
          queues: [
            { name: 'mail', rateLimits: { maxDispatchesPerSecond: 7 }, retryConfig: { maxAttempts: 4 } },
            { name: 'held' },
            { name: 'parked' },
            { name: 'listing' },
            { name: 'spare' },
          ],
          console: {
            authorize: async (req) => {
              seen.push(req);
              const user = header(req.headers, 'x-user');
              return user === 'ada' ? ADA : user === 'mallory' ? false : undefined;
            },
          },
        },
        (deferred) => {
          deferred.task('greet', (..._args: unknown[]) => undefined);
          deferred.task('other', () => undefined);
          deferred.task(
            'flaky',
            (label: string) => {
              if (failuresLeft > 0) {
                failuresLeft -= 1;
                throw new Error(`smtp down for ${label}`);
              }
            },
            { maxAttempts: 1 },
          );
          touch = deferred.task('touch', async (_item: string) => {
            await new Promise((r) => setTimeout(r, 5));
          });
          finish = deferred.task('finish', () => undefined);
        },
      );
      for (const queue of ['held', 'parked', 'listing']) await app.deferred.pauseQueue(queue);
      ada = await signIn(app.baseUrl, { 'x-user': 'ada' });
    });
    after(async () => {
      await app.close();
    });

    const queueOf = async (name: string): Promise<QueueBody> => {
      const res = await ada.get('/queues').expect(200);
      const queue = (res.body as { queues: QueueBody[] }).queues.find((q) => q.name === name);
      assert.ok(queue, `queue ${name} listed`);
      return queue;
    };

    it('serves the page (with a redirect to its folder), its assets with ETags, and a strict content policy', async () => {
      const redirect = await request(app.baseUrl).get(CONSOLE).set('x-user', 'ada').expect(302);
      assert.equal(redirect.headers.location, 'console/');
      const page = await request(app.baseUrl).get(`${CONSOLE}/`).set('x-user', 'ada').expect(200);
      assert.match(page.headers['content-type'], /^text\/html/);
      assert.match(page.text, /<script src="assets\/console\.js" defer><\/script>/);
      assert.match(page.headers['content-security-policy'], /script-src 'self'/);
      assert.match(page.headers['content-security-policy'], /frame-ancestors 'none'/);
      assert.equal(page.headers['x-frame-options'], 'DENY');
      const js = await request(app.baseUrl).get(`${CONSOLE}/assets/console.js`).set('x-user', 'ada').expect(200);
      assert.match(js.headers['content-type'], /^text\/javascript/);
      const css = await request(app.baseUrl).get(`${CONSOLE}/assets/console.css`).set('x-user', 'ada').expect(200);
      assert.match(css.headers['content-type'], /^text\/css/);
      await request(app.baseUrl).get(`${CONSOLE}/assets/console.css`).set('x-user', 'ada').set('If-None-Match', css.headers.etag).expect(304);
      await request(app.baseUrl).get(`${CONSOLE}/assets/../../package.json`).set('x-user', 'ada').expect(404);
      const bytes = Buffer.byteLength(page.text) + Buffer.byteLength(js.text) + Buffer.byteLength(css.text);
      assert.ok(bytes < 40 * 1024, `page + CSS + JS stay under 40 KiB (now ${bytes} bytes)`);
    });

    it('gives the authorize hook the request: method, path, query, headers and remote address', async () => {
      seen.length = 0;
      await ada.get('/tasks?status=failed').expect(200);
      const call = seen.at(-1)!;
      assert.equal(call.method, 'GET');
      assert.equal(call.path, `${API}/tasks`);
      assert.equal(call.query, 'status=failed');
      assert.equal(header(call.headers, 'x-user'), 'ada');
      assert.match(call.remoteAddress ?? '', /127\.0\.0\.1/);
    });

    it('session: says who is signed in and hands out a CSRF token kept in an HttpOnly, SameSite=Strict cookie', async () => {
      const res = await request(app.baseUrl).get(`${API}/session`).set('x-user', 'ada').expect(200);
      assert.equal(res.body.principal, 'ada@example.com');
      assert.match(res.body.csrfToken, /^[A-Za-z0-9_-]{43}$/);
      const cookie = String(res.headers['set-cookie']);
      assert.match(cookie, new RegExp(`cloud_defer_csrf=${res.body.csrfToken}`));
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /SameSite=Strict/);
      assert.equal(res.headers['cache-control'], 'no-store');
      // The same browser session keeps its token.
      const again = await ada.get('/session').expect(200);
      assert.equal(again.body.csrfToken, ada.token);
      assert.equal(again.headers['set-cookie'], undefined);
    });

    it('queues: configuration and live figures (pending, running, run in the last minute, failed in the last hour, oldest ETA, paused)', async () => {
      const first = await app.deferred.defer('greet', ['now'], { queue: 'held' });
      await app.deferred.defer('greet', ['later'], { queue: 'held', countdown: 600 });
      failuresLeft = 1;
      await (await app.deferred.defer('flaky', ['figures'], { queue: 'mail' })).wait();
      await (await app.deferred.defer('greet', ['ok'], { queue: 'mail' })).wait();
      const held = await eventually(async () => {
        const q = await queueOf('held');
        return q.figures.pending === 2 ? q : undefined;
      }, 'two pending tasks on held');
      assert.equal(held.paused, true);
      assert.equal(held.state, 'PAUSED');
      assert.equal(held.figures.inCloudTasks, 2);
      assert.equal(held.figures.running, 0);
      assert.ok(Math.abs(held.figures.oldestEta! - first.eta.getTime()) < 2000, "oldest ETA is the first task's");
      assert.equal(held.figures.approximate, false);
      const mail = await eventually(async () => {
        const q = await queueOf('mail');
        return q.figures.failedLastHour >= 1 && q.figures.executedLastMinute >= 2 ? q : undefined;
      }, 'mail figures');
      assert.equal(mail.paused, false);
      assert.equal(mail.rateLimits?.maxDispatchesPerSecond, 7);
      assert.equal(mail.retryConfig?.maxAttempts, 4);
      assert.equal(mail.figures.pending, 0);
      const names = (await ada.get('/queues?figures=0').expect(200)).body.queues as Array<{ name: string; figures?: unknown }>;
      assert.deepEqual(names.map((q) => q.name).sort(), ['default', 'held', 'listing', 'mail', 'parked', 'spare']);
      assert.equal(names[0]!.figures, undefined);
    });

    it('tasks of a queue: filtered by status, task name and reference, newest first, cursor-paged', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i += 1) ids.push((await app.deferred.defer('greet', [i], { queue: 'listing', reference: `${framework}-list-${i}` })).id);
      for (let i = 0; i < 2; i += 1) ids.push((await app.deferred.defer('other', [], { queue: 'listing' })).id);
      const collected: Array<{ id: string; createdAt: number }> = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const res = await ada.get(`/queues/listing/tasks?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`).expect(200);
        collected.push(...res.body.tasks);
        cursor = res.body.nextCursor;
        pages += 1;
      } while (cursor);
      assert.equal(pages, 3);
      // Newest first; tasks created in the same millisecond come in descending id order.
      const expected = await Promise.all(ids.map(async (id) => ({ id, createdAt: (await app.deferred.getTask(id))!.createdAt })));
      expected.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
      assert.deepEqual(
        collected.map((t) => t.id),
        expected.map((t) => t.id),
        'every task once, newest first',
      );
      const byName = await ada.get('/queues/listing/tasks?taskName=other').expect(200);
      assert.deepEqual(byName.body.tasks.map((t: { id: string }) => t.id).sort(), ids.slice(5).sort());
      const byRef = await ada.get(`/queues/listing/tasks?reference=${framework}-list-3`).expect(200);
      assert.deepEqual(
        byRef.body.tasks.map((t: { id: string }) => t.id),
        [ids[3]],
      );
      const queued = await ada.get('/queues/listing/tasks?status=queued&limit=100').expect(200);
      assert.equal(queued.body.tasks.length, 7);
      assert.equal((await ada.get('/queues/listing/tasks?status=succeeded').expect(200)).body.tasks.length, 0);
      const across = await ada.get('/tasks?queue=listing&taskName=other').expect(200);
      assert.equal(across.body.tasks.length, 2);
      assert.equal((await ada.get('/tasks?status=nope').expect(400)).body.error.code, 'BAD_REQUEST');
      await ada.get('/queues/listing/tasks?limit=0').expect(400);
      await ada.get('/queues/listing/tasks?cursor=garbage').expect(400);
      await ada.get('/queues/bad_name/tasks').expect(400);
    });

    it('one task: decoded arguments in a safe display form, ETA and timings, and no actions a pending task cannot take', async () => {
      const info = await app.deferred.defer(
        'greet',
        [
          { n: 12n, when: new Date(0), tags: new Set(['a']), map: new Map([['k', 1]]), bytes: Buffer.from('hello'), nothing: undefined, nan: NaN },
          { $type: 'user data' },
        ],
        { queue: 'parked', countdown: 30 },
      );
      const { task } = (await ada.get(`/tasks/${info.id}`).expect(200)).body as TaskBody;
      assert.equal(task.status, 'queued');
      assert.equal(task.canCancel, true);
      assert.equal(task.canRerun, false);
      assert.ok(task.eta >= Date.now() + 25_000);
      assert.equal(task.args.available, true);
      assert.equal(task.args.decoded, true);
      assert.equal(task.args.truncated, false);
      assert.deepEqual(JSON.parse(task.args.json!), [
        {
          n: { $type: 'BigInt', value: '12' },
          when: { $type: 'Date', value: '1970-01-01T00:00:00.000Z' },
          tags: { $type: 'Set', size: 1, values: ['a'] },
          map: { $type: 'Map', size: 1, entries: [['k', 1]] },
          bytes: { $type: 'Buffer', bytes: 5, hex: '68656c6c6f' },
          nothing: { $type: 'undefined' },
          nan: { $type: 'number', value: 'NaN' },
        },
        // A user's own "$type" key is wrapped, so it cannot pass for a marker.
        { $type: 'Object', value: { $type: 'user data' } },
      ]);
      await ada.get('/tasks/no-such-task').expect(404);
    });

    it('one task: runs cut short by their instance are in interruptedRuns', async () => {
      const info = await app.deferred.defer('greet', ['cut'], { queue: 'parked', countdown: 30 });
      const plain = (await ada.get(`/tasks/${info.id}`).expect(200)).body as TaskBody & { task: { interruptedRuns?: number } };
      assert.equal(plain.task.interruptedRuns, undefined, 'absent while no run was cut short');
      // Two instances leased it and died: the second took over the first's lease after it ran out.
      const past = Date.now() - 60_000;
      await app.deferred.stores.state.acquireLease(info.id, { owner: 'dead-1', now: past, leaseMs: 5, executionCount: 0 });
      await app.deferred.stores.state.acquireLease(info.id, { owner: 'dead-2', now: past + 10, leaseMs: 5, executionCount: 0 });
      const { task } = (await ada.get(`/tasks/${info.id}`).expect(200)).body as TaskBody & { task: { interruptedRuns?: number; attempts: number } };
      assert.equal(task.attempts, 2);
      assert.equal(task.interruptedRuns, 1);
    });

    it('one task: the last error with its stack and the attempts history of a failed task', async () => {
      failuresLeft = 1;
      const info = await app.deferred.defer('flaky', ['detail'], { queue: 'mail' });
      await info.wait();
      const { task } = (await ada.get(`/tasks/${info.id}`).expect(200)).body as TaskBody;
      assert.equal(task.status, 'failed');
      assert.equal(task.lastError?.message, 'smtp down for detail');
      assert.match(task.lastError?.stack ?? '', /^Error: smtp down for detail\n\s+at /);
      assert.equal(task.history.length, 1);
      assert.equal(task.history[0]!.outcome, 'failed');
      assert.equal(task.history[0]!.statusCode, 200);
      assert.ok(task.startedAt! <= task.finishedAt!);
      assert.equal(typeof task.durationMs, 'number');
      assert.equal(task.canRerun, true);
      assert.deepEqual(JSON.parse(task.args.json!), ['detail']);
    });

    it('one task: arguments over 16 KiB of pretty JSON are cut and flagged; payload-store arguments are not loaded', async () => {
      const many = Array.from({ length: 3000 }, (_, i) => `item-${String(i).padStart(5, '0')}`);
      const info = await app.deferred.defer('greet', [many], { queue: 'parked' });
      const { task } = (await ada.get(`/tasks/${info.id}`).expect(200)).body as TaskBody;
      assert.equal(task.args.truncated, true);
      assert.equal(task.args.limitBytes, 16 * 1024);
      assert.ok(task.args.bytes! > 16 * 1024);
      assert.ok(Buffer.byteLength(task.args.json!) <= 16 * 1024);
      assert.ok(task.args.json!.startsWith('[\n  [\n    "item-00000"'));
      const large = await app.deferred.defer('greet', ['x'.repeat(200 * 1024)], { queue: 'parked' });
      const stored = ((await ada.get(`/tasks/${large.id}`).expect(200)).body as TaskBody).task;
      assert.equal(stored.args.available, false);
      assert.match(stored.args.reason!, /payload store/);
    });

    it('rerun: 400 while the task is unfinished, 409 while its reference is held, 201 and it runs again once free', async () => {
      const reference = `${framework}-rerun`;
      failuresLeft = 1;
      const failed = await app.deferred.defer('flaky', ['rerun'], { queue: 'mail', reference });
      assert.equal((await failed.wait()).status, 'failed');
      const holder = await app.deferred.defer('greet', ['holder'], { queue: 'parked', reference });
      assert.equal(holder.duplicate, false);
      const notFinished = await ada.post(`/tasks/${holder.id}/rerun`).expect(400);
      assert.equal(notFinished.body.error.code, 'NOT_FINISHED');
      const held = await ada.post(`/tasks/${failed.id}/rerun`).expect(409);
      assert.equal(held.body.error.code, 'REFERENCE_HELD');
      await ada.post(`/tasks/${holder.id}/cancel`).expect(200);
      const rerun = await ada.post(`/tasks/${failed.id}/rerun`).expect(201);
      assert.equal(rerun.body.rerunOf, failed.id);
      assert.notEqual(rerun.body.task.id, failed.id);
      assert.equal(rerun.body.task.reference, reference);
      const done = await app.deferred.engine.waitFor(rerun.body.task.id, { timeoutMs: 10_000 });
      assert.equal(done.status, 'succeeded');
      await ada.post('/tasks/no-such-task/rerun').expect(404);
    });

    it('cancel: a pending task is cancelled; a finished one is 400; an unknown one 404', async () => {
      const info = await app.deferred.defer('greet', ['cancel me'], { queue: 'parked', countdown: 3600 });
      const res = await ada.post(`/tasks/${info.id}/cancel`).expect(200);
      assert.equal(res.body.task.status, 'cancelled');
      assert.equal((await app.deferred.getTask(info.id))?.status, 'cancelled');
      const again = await ada.post(`/tasks/${info.id}/cancel`).expect(400);
      assert.equal(again.body.error.code, 'NOT_PENDING');
      await ada.post('/tasks/no-such-task/cancel').expect(404);
    });

    it("pause and resume a queue; only the app's own queues", async () => {
      const paused = await ada.post('/queues/spare/pause').expect(200);
      assert.equal(paused.body.queue.paused, true);
      assert.equal((await queueOf('spare')).state, 'PAUSED');
      const resumed = await ada.post('/queues/spare/resume').expect(200);
      assert.equal(resumed.body.queue.state, 'RUNNING');
      await ada.post('/queues/not-ours/pause').expect(404);
      await ada.get('/queues/spare/pause').expect(405);
    });

    it('purge a queue: its tasks are marked cancelled and their references freed', async () => {
      const refs = [`${framework}-purge-1`, `${framework}-purge-2`];
      const infos = await Promise.all(refs.map((reference) => app.deferred.defer('greet', [reference], { queue: 'parked', reference })));
      const res = await ada.post('/queues/parked/purge').expect(200);
      assert.ok(res.body.marked >= 2);
      for (const info of infos) assert.equal((await app.deferred.getTask(info.id))?.status, 'cancelled');
      const again = await app.deferred.defer('greet', ['again'], { queue: 'parked', reference: refs[0] });
      assert.equal(again.duplicate, false, 'the reference was freed');
      assert.equal((await queueOf('parked')).paused, true, 'purging does not resume the queue');
    });

    it('audits every action in the log with the principal the authorize hook returned', async () => {
      const before = app.logger.lines.length;
      await ada.post('/queues/spare/pause').expect(200);
      await ada.post('/queues/spare/resume').expect(200);
      const audit = app.logger.lines.slice(before).filter((l) => l.message === 'console action');
      assert.deepEqual(
        audit.map((l) => l.fields),
        [
          { action: 'pause', principal: ADA, target: 'queue:spare' },
          { action: 'resume', principal: ADA, target: 'queue:spare' },
        ],
      );
    });

    describe('cross-site protection of actions', () => {
      const pause = '/queues/spare/pause';
      const refused = async (res: request.Response, code: string): Promise<void> => {
        assert.equal(res.status, 403);
        assert.equal(res.body.error.code, code);
        assert.equal((await queueOf('spare')).paused, false, 'nothing changed');
      };

      it('refuses an action with neither Origin nor Sec-Fetch-Site', async () => {
        const res = await ada.agent.post(`${API}${pause}`).set('x-user', 'ada').set('X-Cloud-Defer-CSRF', ada.token);
        await refused(res, 'CROSS_SITE');
      });

      it('refuses an action from another origin, or that the browser calls cross-site or same-site', async () => {
        const fromEvil = await ada.agent.post(`${API}${pause}`).set('x-user', 'ada').set('Origin', 'http://evil.example').set('X-Cloud-Defer-CSRF', ada.token);
        await refused(fromEvil, 'CROSS_SITE');
        for (const site of ['cross-site', 'same-site', 'none']) {
          const res = await ada.post(pause).set('Sec-Fetch-Site', site);
          await refused(res, 'CROSS_SITE');
        }
      });

      it('refuses a same-origin action without the CSRF token, with a wrong one, or without the cookie', async () => {
        const noHeader = await ada.agent.post(`${API}${pause}`).set('x-user', 'ada').set('Origin', app.baseUrl);
        await refused(noHeader, 'CSRF');
        await refused(await ada.post(pause).set('X-Cloud-Defer-CSRF', 'A'.repeat(43)), 'CSRF');
        const noCookie = await request(app.baseUrl).post(`${API}${pause}`).set('x-user', 'ada').set('Origin', app.baseUrl).set('X-Cloud-Defer-CSRF', ada.token);
        await refused(noCookie, 'CSRF');
        assert.ok(app.logger.lines.some((l) => l.message === 'console action refused' && l.level === 'warn'));
      });

      it('accepts the same action from the page (same origin, token and cookie)', async () => {
        await ada.post(pause).expect(200);
        await ada.post('/queues/spare/resume').expect(200);
      });
    });

    it('iterations: listed newest first with per-shard progress, up to 100% once finished', async () => {
      const items = Array.from({ length: 10 }, (_, i) => `it-${i}`);
      const iteration = await app.deferred.deferIteration(items, touch, finish, { shards: 3, deleteMarker: false, queue: 'mail' });
      await iteration.wait({ timeoutMs: 20_000 });
      const list = await ada.get('/iterations').expect(200);
      const listed = list.body.iterations.find((i: { id: string }) => i.id === iteration.id);
      assert.ok(listed, 'the iteration is listed');
      assert.equal(listed.percent, 100);
      assert.equal(listed.shardsDone, 3);
      assert.equal(listed.processed, 10);
      assert.equal(listed.callbackTask, 'touch');
      const detail = await ada.get(`/iterations/${iteration.id}`).expect(200);
      assert.equal(detail.body.iteration.status, 'succeeded');
      assert.equal(detail.body.iteration.shards.length, 3);
      assert.ok(detail.body.iteration.shards.every((s: { done: boolean }) => s.done));
      assert.equal(
        detail.body.iteration.shards.reduce((n: number, s: { processed: number }) => n + s.processed, 0),
        10,
      );
      await ada.get('/iterations/it-missing').expect(404);
    });

    it('answers 404 for unknown API paths and 405 for a wrong method', async () => {
      assert.equal((await ada.get('/nothing-here').expect(404)).body.error.code, 'NOT_FOUND');
      await ada.get('/tasks/x/y/z').expect(404);
      await ada.post('/queues').expect(405);
      await request(app.baseUrl).post(`${CONSOLE}/`).set('x-user', 'ada').expect(405);
    });
  });
}
