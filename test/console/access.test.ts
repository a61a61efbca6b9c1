/**
 * Who gets in: every console path (page, assets, API reads and actions) answers 401/403 and
 * reveals nothing when the authorize hook refuses, or, on the embedded default without a hook,
 * when the request is not from this machine. Off by default elsewhere. Both frameworks.
 */
import assert from 'node:assert/strict';
import request from 'supertest';
import { header } from '../../src/http/auth.js';
import type { DeferredTask } from '../../src/index.js';
import { startApp, type Framework, type TestApp } from '../helpers/app.js';
import { API, CONSOLE, consolePaths, startOpenApp, type OpenApp } from './helpers.js';

/** What a refused answer may contain: a bare status word. No queue, task or page content. */
function assertRevealsNothing(res: request.Response, status: number, what: string): void {
  assert.equal(res.status, status, `${what}: status`);
  assert.equal(res.text, status === 401 ? 'Unauthorized' : 'Forbidden', `${what}: body`);
  assert.match(res.headers['content-type'] ?? '', /^text\/plain/, `${what}: content type`);
  assert.equal(res.headers['set-cookie'], undefined, `${what}: no cookie`);
  assert.equal(res.headers.location, undefined, `${what}: no redirect`);
}

async function send(baseUrl: string, method: 'GET' | 'POST', path: string, headers: Record<string, string>): Promise<request.Response> {
  const agent = request(baseUrl);
  const req = method === 'GET' ? agent.get(path) : agent.post(path).set('Origin', baseUrl).set('Sec-Fetch-Site', 'same-origin');
  return req.set(headers);
}

/** A pending task, an iteration and a queue, so a leak would have something to leak. */
async function seed(deferred: TestApp['deferred'], touch: DeferredTask<[string]>, finish: DeferredTask<[]>): Promise<{ taskId: string; iterationId: string }> {
  await deferred.pauseQueue('secret-queue');
  const task = await deferred.defer('secretTask', ['classified'], { queue: 'secret-queue' });
  const iteration = await deferred.deferIteration(['a', 'b'], touch, finish, { shards: 1, deleteMarker: false });
  await iteration.wait({ timeoutMs: 10_000 });
  return { taskId: task.id, iterationId: iteration.id };
}

function register(deferred: TestApp['deferred']): { touch: DeferredTask<[string]>; finish: DeferredTask<[]> } {
  deferred.task('secretTask', (_x: string) => undefined);
  return { touch: deferred.task('touch', (_item: string) => undefined), finish: deferred.task('finish', () => undefined) };
}

for (const framework of ['express', 'koa'] as Framework[]) {
  describe(`console access (${framework})`, function () {
    this.timeout(60_000);

    describe('with an authorize hook', () => {
      let app: TestApp;
      let ids: { taskId: string; iterationId: string };
      before(async () => {
        let handles!: ReturnType<typeof register>;
        app = await startApp(
          framework,
          {
            queues: [{ name: 'secret-queue' }],
            console: {
              authorize: (req) => {
                const user = header(req.headers, 'x-user');
                if (user === 'boom') throw new Error('identity provider down');
                return user === 'ada' ? 'ada' : user === 'mallory' ? false : undefined;
              },
            },
          },
          (deferred) => (handles = register(deferred)),
        );
        ids = await seed(app.deferred, handles.touch, handles.finish);
      });
      after(async () => {
        await app.close();
      });

      it('answers 401 on every path when the hook finds no user, and reveals nothing', async () => {
        for (const { method, path } of consolePaths(ids.taskId, ids.iterationId, 'secret-queue')) {
          assertRevealsNothing(await send(app.baseUrl, method, path, {}), 401, `${method} ${path}`);
        }
      });

      it('answers 403 on every path when the hook refuses or throws, and reveals nothing', async () => {
        for (const user of ['mallory', 'boom']) {
          for (const { method, path } of consolePaths(ids.taskId, ids.iterationId, 'secret-queue')) {
            assertRevealsNothing(await send(app.baseUrl, method, path, { 'x-user': user }), 403, `${user}: ${method} ${path}`);
          }
        }
        assert.ok(app.logger.lines.some((l) => l.message.startsWith('console authorize hook threw')));
      });

      it('refused actions changed nothing and were not audited', async () => {
        assert.equal((await app.deferred.getTask(ids.taskId))?.status, 'queued');
        const [queue] = (await app.deferred.listQueues()).filter((q) => q.name === 'secret-queue');
        assert.equal(queue?.state, 'PAUSED');
        assert.equal((await app.deferred.queuedTasks('secret-queue')).length, 1);
        assert.ok(!app.logger.lines.some((l) => l.message === 'console action'));
      });

      it('lets the allowed user in', async () => {
        await request(app.baseUrl).get(`${API}/queues`).set('x-user', 'ada').expect(200);
      });
    });

    describe('on the embedded default without a hook (loopback only)', () => {
      let app: OpenApp;
      let ids: { taskId: string; iterationId: string };
      before(async () => {
        app = await startOpenApp(framework, { queues: [{ name: 'secret-queue' }] });
        const handles = register(app.deferred);
        ids = await seed(app.deferred, handles.touch, handles.finish);
      });
      after(async () => {
        await app.close();
      });

      it('is on for a request from this machine', async () => {
        assert.equal(app.deferred.mode, 'embedded');
        const res = await request(app.baseUrl).get(`${API}/session`).expect(200);
        assert.match(res.body.principal, /^local \(/);
        await request(app.baseUrl).get(`${CONSOLE}/`).expect(200);
      });

      it('answers 403 on every path to a request from another machine, and reveals nothing', async () => {
        for (const { method, path } of consolePaths(ids.taskId, ids.iterationId, 'secret-queue')) {
          assertRevealsNothing(await send(app.lanUrl, method, path, {}), 403, `${method} ${path} from ${app.lanUrl}`);
        }
      });

      it('answers 403 on every path to a page that rebinds its DNS name to 127.0.0.1 (Host is not this machine), and reveals nothing', async () => {
        const port = new URL(app.baseUrl).port;
        for (const host of [`rebind.attacker.example:${port}`, `127.0.0.1.nip.io:${port}`, 'attacker.example']) {
          for (const { method, path } of consolePaths(ids.taskId, ids.iterationId, 'secret-queue')) {
            assertRevealsNothing(await send(app.baseUrl, method, path, { Host: host, Origin: `http://${host}` }), 403, `${method} ${path} with Host ${host}`);
          }
        }
        assert.equal((await app.deferred.getTask(ids.taskId))?.status, 'queued', 'nothing cancelled or run');
        const [queue] = (await app.deferred.listQueues()).filter((q) => q.name === 'secret-queue');
        assert.equal(queue?.state, 'PAUSED', 'nothing resumed');
      });

      it('serves Host: localhost and loopback literals', async () => {
        const port = new URL(app.baseUrl).port;
        for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) {
          await request(app.baseUrl).get(`${API}/session`).set('Host', host).expect(200);
        }
      });

      it('answers 403 on every path to a request forwarded by a local proxy or tunnel', async () => {
        const proxied: Array<Record<string, string>> = [{ 'X-Forwarded-For': '203.0.113.9' }, { Forwarded: 'for=203.0.113.9' }, { 'X-Real-IP': '203.0.113.9' }];
        for (const forwarded of proxied) {
          for (const { method, path } of consolePaths(ids.taskId, ids.iterationId, 'secret-queue')) {
            assertRevealsNothing(await send(app.baseUrl, method, path, forwarded), 403, `${method} ${path} with ${Object.keys(forwarded)[0]}`);
          }
        }
        assert.equal((await app.deferred.getTask(ids.taskId))?.status, 'queued');
      });
    });

    describe('off', () => {
      const assertNotServed = async (baseUrl: string): Promise<void> => {
        for (const { method, path } of consolePaths('some-task', 'some-iteration', 'some-queue')) {
          const res = await send(baseUrl, method, path, {});
          assert.equal(res.status, 404, `${method} ${path} falls through to the app`);
          assert.doesNotMatch(res.text, /secret-queue|cloud-defer|csrf/i);
        }
      };

      it('is not mounted when `console: false`, even on the embedded default', async () => {
        const app = await startApp(framework, { queues: [{ name: 'secret-queue' }], console: false });
        try {
          assert.equal(app.deferred.consoleHandler, undefined);
          await assertNotServed(app.baseUrl);
        } finally {
          await app.close();
        }
      });

      it('is not mounted outside the embedded default unless an authorize hook is given', async () => {
        const app = await startOpenApp(
          framework,
          {
            mode: 'emulator',
            queues: [{ name: 'secret-queue' }],
            // Never fetched: the engine is not started.
            auth: { mode: 'oidc', serviceAccountEmail: 'tasks@local-project.iam.gserviceaccount.com', jwks: 'http://127.0.0.1:9/oauth2/v3/certs' },
          },
          false,
        );
        try {
          assert.equal(app.deferred.consoleHandler, undefined);
          await assertNotServed(app.baseUrl);
        } finally {
          await app.close();
        }
      });

      it('accepts actions from an origin listed in `console.allowedOrigins` (a proxy that rewrites Host)', async () => {
        const app = await startApp(framework, { console: { authorize: () => 'ops', allowedOrigins: ['https://admin.example.com'] } });
        try {
          const agent = request.agent(app.baseUrl);
          const { csrfToken } = (await agent.get(`${API}/session`).expect(200)).body as { csrfToken: string };
          const act = (origin: string) => agent.post(`${API}/queues/default/pause`).set('Origin', origin).set('X-Cloud-Defer-CSRF', csrfToken);
          await act('https://other.example.com').expect(403);
          await act('https://admin.example.com').expect(200);
          assert.equal((await app.deferred.listQueues()).find((q) => q.name === 'default')?.state, 'PAUSED');
        } finally {
          await app.close();
        }
      });

      it('moves to `console.path` when one is given', async () => {
        const app = await startApp(framework, { console: { authorize: () => 'ops', path: '/ops/deferred/' } });
        try {
          await request(app.baseUrl).get('/ops/deferred/api/session').expect(200);
          await request(app.baseUrl).get('/ops/deferred').expect(302).expect('Location', 'deferred/');
          await request(app.baseUrl).get(`${API}/session`).expect(404);
        } finally {
          await app.close();
        }
      });
    });
  });
}
