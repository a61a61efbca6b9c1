/**
 * Mounting the middleware every way Express and Koa users mount things, with the package as users
 * get it (the packed tarball installed in a fresh app, loaded through its `exports` map, not src/):
 * tasks deferred from the app run, the console is served under the same mount, other routes are
 * untouched, and a delivery that reaches the middleware at a path it does not serve is logged once
 * with the fix.
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Koa from 'koa';
import Router from '@koa/router';
import mount from 'koa-mount';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { CreateDeferredOptions, Deferred } from '../src/index.js';
import { eventually, recordingLogger } from './helpers/app.js';
import { freshApp } from './helpers/fresh-app.js';

type Package = typeof import('../src/index.js');
type KoaPackage = typeof import('../src/http/koa.js');
let pkg: Package;
let koaPkg: KoaPackage;

before(function () {
  this.timeout(120_000);
  // require('cloud-defer') and require('cloud-defer/koa') as the fresh app would resolve them.
  const requireFromApp = createRequire(path.join(freshApp(), 'package.json'));
  pkg = requireFromApp('cloud-defer') as Package;
  koaPkg = requireFromApp('cloud-defer/koa') as KoaPackage;
  assert.ok(requireFromApp.resolve('cloud-defer').includes(`${path.sep}node_modules${path.sep}cloud-defer${path.sep}dist${path.sep}`));
});

const createDeferred = (options: CreateDeferredOptions): Deferred => pkg.createDeferred(options);
const deferredMiddleware = (d: Deferred) => pkg.deferredMiddleware(d);
const koaDeferred = (d: Deferred) => koaPkg.koaDeferred(d);
const koaDeferredMiddleware = (d: Deferred) => koaPkg.koaDeferredMiddleware(d);

const CONSOLE = '/_ah/deferred/console';

interface Mounted {
  deferred: Deferred;
  base: string;
  logger: ReturnType<typeof recordingLogger>;
  runs: string[];
  close(): Promise<void>;
}

/**
 * Listens first, then builds the engine with PORT set, so the engine's default target URL
 * (http://127.0.0.1:$PORT + mountPath + handlerPath) is the one a user gets: nothing is overridden.
 */
async function mounted(options: CreateDeferredOptions, build: (deferred: Deferred) => http.RequestListener): Promise<Mounted> {
  let listener: http.RequestListener = (_req, res) => res.end();
  const server = http.createServer((req, res) => listener(req, res));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const previousPort = process.env.PORT;
  process.env.PORT = String(port);
  const logger = recordingLogger();
  const deferred = createDeferred({ logger, ...options });
  const runs: string[] = [];
  deferred.task('record', (what: string) => {
    runs.push(what);
  });
  listener = build(deferred);
  await deferred.ready();
  return {
    deferred,
    base: `http://127.0.0.1:${port}`,
    logger,
    runs,
    close: async () => {
      if (previousPort === undefined) delete process.env.PORT;
      else process.env.PORT = previousPort;
      server.close();
      server.closeAllConnections();
      await deferred.close();
    },
  };
}

/** A task deferred through the app runs, the console page and API answer at `consoleAt`, /other is the app's. */
async function assertServed(app: Mounted, consoleAt: string): Promise<void> {
  await app.deferred.defer('record', ['hello']);
  await eventually(() => app.runs.includes('hello'), 'the deferred task to run');
  const page = await fetch(`${app.base}${consoleAt}/`);
  assert.equal(page.status, 200, `console page at ${consoleAt}/`);
  assert.match(await page.text(), /<html/i);
  const redirect = await fetch(`${app.base}${consoleAt}`, { redirect: 'manual' });
  assert.equal(redirect.status, 302);
  assert.equal(new URL(redirect.headers.get('location')!, `${app.base}${consoleAt}`).pathname, `${consoleAt}/`);
  const tasks = await fetch(`${app.base}${consoleAt}/api/tasks`);
  assert.equal(tasks.status, 200, `console API at ${consoleAt}/api/tasks`);
  const other = await fetch(`${app.base}/other`);
  assert.equal(await other.text(), 'the app itself');
}

function expressApp(use: (app: express.Express) => void): http.RequestListener {
  const app = express();
  use(app);
  app.get('/other', (_req, res) => {
    res.send('the app itself');
  });
  return app;
}

function koaApp(use: (app: Koa) => void): http.RequestListener {
  const app = new Koa();
  use(app);
  app.use(async (ctx) => {
    if (ctx.path === '/other') ctx.body = 'the app itself';
  });
  return app.callback();
}

describe('mounting: Express', () => {
  let app: Mounted | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('app.use(mw) at the root', async () => {
    app = await mounted({}, (d) => expressApp((a) => a.use(deferredMiddleware(d))));
    await assertServed(app, CONSOLE);
  });

  it("app.use('/tasks', mw) with mountPath: the target URL Cloud Tasks gets includes /tasks", async () => {
    // The app serves nothing at /_ah/queue/deferred: the task runs only if it was sent to /tasks/...
    app = await mounted({ mountPath: '/tasks' }, (d) => expressApp((a) => a.use('/tasks', deferredMiddleware(d))));
    await assertServed(app, `/tasks${CONSOLE}`);
    assert.equal((await fetch(`${app.base}/_ah/queue/deferred`, { method: 'POST' })).status, 404);
  });

  it("app.use('/tasks', mw) with the full handlerPath '/tasks/_ah/queue/deferred'", async () => {
    app = await mounted({ handlerPath: '/tasks/_ah/queue/deferred' }, (d) => expressApp((a) => a.use('/tasks', deferredMiddleware(d))));
    await assertServed(app, `/tasks${CONSOLE}`);
  });

  it('inside an express.Router() mounted at /api', async () => {
    app = await mounted({ mountPath: '/api' }, (d) =>
      expressApp((a) => {
        const router = express.Router();
        router.use(deferredMiddleware(d));
        a.use('/api', router);
      }),
    );
    await assertServed(app, `/api${CONSOLE}`);
  });

  it('a delivery that reaches the middleware at a path it does not serve is logged once, with the fix', async () => {
    // Mounted at /tasks but not told so: Cloud Tasks is given /_ah/queue/deferred; a proxy rewrites
    // it to /tasks/jobs/_ah/queue/deferred, which the middleware sees and cannot serve.
    app = await mounted({}, (d) => expressApp((a) => a.use('/tasks', deferredMiddleware(d))));
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${app.base}/tasks/jobs/_ah/queue/deferred`, { method: 'POST', headers: { 'X-CloudTasks-TaskName': 't1' }, body: '{}' });
      assert.equal(res.status, 404);
    }
    const warnings = app.logger.lines.filter((l) => /matched no handler path/.test(l.message));
    assert.equal(warnings.length, 1, 'logged once');
    assert.match(warnings[0]!.message, /handlerPath: '\/jobs\/_ah\/queue\/deferred'/);
  });

  it('passing something that is not an engine fails at app.use time, not at request time', () => {
    const app = express();
    assert.throws(
      () => app.use(deferredMiddleware({} as Deferred)),
      (err: Error & { code?: string }) => err.code === 'INVALID_OPTION' && /createDeferred/.test(err.message),
    );
    assert.throws(() => app.use(deferredMiddleware('default' as unknown as Deferred)), { code: 'INVALID_OPTION' });
  });
});

describe('mounting: Koa', () => {
  let app: Mounted | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('app.use(middleware) at the root', async () => {
    app = await mounted({}, (d) => koaApp((a) => a.use(koaDeferred(d).middleware)));
    await assertServed(app, CONSOLE);
  });

  it('@koa/router: router.use(tasks.router.routes()) in an app router', async () => {
    app = await mounted({}, (d) =>
      koaApp((a) => {
        const router = new Router();
        router.get('/unrelated', (ctx) => {
          ctx.body = 'x';
        });
        router.use(koaDeferred(d).router.routes());
        a.use(router.routes()).use(router.allowedMethods());
      }),
    );
    await assertServed(app, CONSOLE);
  });

  it("@koa/router: router.use('/prefix', tasks.router.routes()) with mountPath", async () => {
    app = await mounted({ mountPath: '/prefix' }, (d) =>
      koaApp((a) => {
        const router = new Router();
        router.use('/prefix', koaDeferred(d).router.routes());
        a.use(router.routes());
      }),
    );
    await assertServed(app, `/prefix${CONSOLE}`);
  });

  it("@koa/router: nested routers (prefix /api, then /v1) and the middleware's own .routes()", async () => {
    app = await mounted({ mountPath: '/api/v1' }, (d) =>
      koaApp((a) => {
        const outer = new Router({ prefix: '/api' });
        const inner = new Router();
        inner.use(koaDeferredMiddleware(d).routes());
        outer.use('/v1', inner.routes());
        a.use(outer.routes());
      }),
    );
    await assertServed(app, `/api/v1${CONSOLE}`);
  });

  it("koa-mount: app.use(mount('/tasks', middleware)) and mount('/jobs', router.routes())", async () => {
    app = await mounted({ mountPath: '/tasks' }, (d) =>
      koaApp((a) => {
        const tasks = koaDeferred(d);
        a.use(mount('/tasks', tasks.middleware));
        a.use(mount('/jobs', tasks.router.routes()));
      }),
    );
    await assertServed(app, `/tasks${CONSOLE}`);
    const viaRouter = await fetch(`${app.base}/jobs${CONSOLE}/`);
    assert.equal(viaRouter.status, 200);
  });

  it('a delivery that reaches the router at a path it does not serve is logged once, with the fix', async () => {
    // Mounted under koa-mount at /tasks but not told so; a proxy sends /tasks/jobs/_ah/queue/deferred.
    app = await mounted({}, (d) => koaApp((a) => a.use(mount('/tasks', koaDeferred(d).middleware))));
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${app.base}/tasks/jobs/_ah/queue/deferred`, { method: 'POST', headers: { 'X-CloudTasks-TaskName': 't1' }, body: '{}' });
      assert.equal(res.status, 404);
    }
    const warnings = app.logger.lines.filter((l) => /matched no handler path/.test(l.message));
    assert.equal(warnings.length, 1, 'logged once');
    assert.match(warnings[0]!.message, /handlerPath: '\/jobs\/_ah\/queue\/deferred'/);
  });

  it('passing something that is not an engine fails when the middleware is built', () => {
    assert.throws(() => koaDeferred({ handler: {} } as unknown as Deferred), { code: 'INVALID_OPTION' });
  });
});
