/**
 * The default instance, as a new user writes it in a fresh app with cloud-defer installed from its
 * packed tarball: `app.use(deferredMiddleware())` with no createDeferred() call.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { freshApp, typeCheck } from './helpers/fresh-app.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Runs `file` in the app (PORT set, plus `env`) until it prints `done`; returns its output. */
async function runUntil(app: string, file: string, done: RegExp, env: Record<string, string> = {}): Promise<string> {
  const port = await freePort();
  const child = spawn(process.execPath, [file], { cwd: app, env: { ...process.env, PORT: String(port), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out:\n${output}`)), 20_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (done.test(output)) {
          clearTimeout(timer);
          resolve(output);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`exited ${code}:\n${output}`));
      });
    });
  } finally {
    child.kill('SIGTERM');
  }
}

const commonJs = `
const express = require('express');
const { task, deferredMiddleware } = require('cloud-defer');
const hello = task('hello', (name) => console.log('hello ran for ' + name));
const app = express();
app.use(deferredMiddleware());
app.get('/', (req, res) => res.send('home page'));
app.listen(Number(process.env.PORT), async () => {
  const home = await fetch('http://127.0.0.1:' + process.env.PORT + '/');
  console.log('GET / ' + home.status + ' ' + (await home.text()));
  await hello.defer('ada');
});
`;

const typeScript = `
import express from 'express';
import { configure, defer, deferredMiddleware, task } from 'cloud-defer';
import { memoryStores } from 'cloud-defer/memory';

configure({ stores: memoryStores() });
export const greet = task('greet', async (name: string, times: number) => console.log(name, times));
const app = express();
app.use(deferredMiddleware());
export const ok = defer(greet, ['ada', 2]);
// @ts-expect-error the argument types come from the task
export const wrong = defer(greet, [2, 'ada']);
`;

describe('the default instance (fresh app, packed tarball)', () => {
  let app: string;
  before(function () {
    this.timeout(120_000);
    app = freshApp();
  });

  it('app.use(deferredMiddleware()) runs a task deferred with the default task(); other routes are untouched', async () => {
    writeFileSync(path.join(app, 'default.cjs'), commonJs);
    const output = await runUntil(app, 'default.cjs', /hello ran for ada/);
    assert.match(output, /GET \/ 200 home page/);
  });

  it('import { task, defer, deferredMiddleware, configure } type-checks with tsc --strict (nodenext and bundler)', function () {
    this.timeout(120_000);
    writeFileSync(path.join(app, 'default.ts'), typeScript);
    assert.equal(typeCheck(app, ['default.ts'], 'nodenext'), '');
    assert.equal(typeCheck(app, ['default.ts'], 'bundler'), '');
  });

  it('a start-up error is logged once, clearly, and every defer() and ready() rejects with it', async () => {
    // An external emulator whose key set cannot be fetched: start-up (at mount) is refused.
    writeFileSync(
      path.join(app, 'bad-start.cjs'),
      `
const express = require('express');
const { task, deferredMiddleware, ready } = require('cloud-defer');
const hello = task('hello', () => {});
const app = express();
app.use(deferredMiddleware());
app.listen(Number(process.env.PORT), async () => {
  for (let i = 1; i <= 3; i++) await hello.defer().then(() => console.log('defer ' + i + ' ran'), (e) => console.log('defer ' + i + ' rejected ' + e.code));
  await ready().catch((e) => console.log('ready rejected ' + e.code));
  setTimeout(() => console.log('done'), 300);
});
`,
    );
    const closed = await freePort();
    const output = await runUntil(app, 'bad-start.cjs', /done/, {
      CLOUD_TASKS_EMULATOR_HOST: `127.0.0.1:${closed}`,
      CLOUD_TASKS_EMULATOR_JWKS_URI: `http://127.0.0.1:${closed}/jwks`,
    });
    for (const n of [1, 2, 3]) assert.match(output, new RegExp(`defer ${n} rejected UNSAFE_CONFIGURATION`));
    assert.match(output, /ready rejected UNSAFE_CONFIGURATION/);
    const logged = output.split('\n').filter((line) => /could not start/.test(line));
    assert.equal(logged.length, 1, output);
    assert.match(
      logged[0]!,
      /could not start: Refusing to start: the emulator's key set could not be fetched .*CLOUD_TASKS_EMULATOR_JWKS_URI.*every defer fails with this error until it is fixed/,
    );
  });

  it('the start-up warm-up leaves nothing a user sees: no task record, no task in the queue, no warning', async () => {
    writeFileSync(
      path.join(app, 'warm.cjs'),
      `
const express = require('express');
const { task, deferredMiddleware, ready, defaultDeferred } = require('cloud-defer');
const hello = task('hello', (name) => console.log('hello ran for ' + name));
const app = express();
app.use(deferredMiddleware());
app.listen(Number(process.env.PORT), async () => {
  await ready();
  const d = defaultDeferred();
  console.log('records ' + (await d.listTasks()).records.length + ', queued ' + (await d.queuedTasks('default')).length);
  await hello.defer('ada');
});
`,
    );
    const output = await runUntil(app, 'warm.cjs', /hello ran for ada/);
    assert.match(output, /records 0, queued 0/);
    assert.equal(output.split('\n').filter((l) => l.startsWith('[cloud-defer]')).length, 1, `only the start-up line:\n${output}`);
    assert.doesNotMatch(output, /refused|warn|error/i);
  });

  it('configure() after the default is in use is refused with a clear error', async () => {
    writeFileSync(
      path.join(app, 'late.cjs'),
      "const { deferredMiddleware, configure } = require('cloud-defer'); deferredMiddleware(); try { configure({}); } catch (e) { console.log('refused ' + e.code + ': ' + e.message); process.exit(0); }",
    );
    const output = await runUntil(app, 'late.cjs', /refused/);
    assert.match(output, /refused INVALID_OPTION: configure\(\) was called after/);
  });
});
