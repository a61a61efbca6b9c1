/**
 * @opentelemetry/api is an optional peer: with it missing, cloud-defer loads, defers and runs a
 * task (real child process, its own node_modules without @opentelemetry, the compiled library).
 * With it present, importing cloud-defer does not load it either; createDeferred() does.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const BUILD = path.resolve(__dirname, '..', '..');
const ROOT_MODULES = path.resolve(BUILD, '..', 'node_modules');

const SCRIPT = `
const http = require('node:http');
const { createDeferred, deferredMiddleware } = require('./build/src/index.js');
(async () => {
  const deferred = createDeferred({ logger: false });
  let ran = 0;
  deferred.task('hello', () => { ran += 1; });
  const server = http.createServer(deferredMiddleware(deferred));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  deferred.setTargetUrl('http://127.0.0.1:' + server.address().port + deferred.handlerPath);
  const info = await deferred.defer('hello', []);
  const record = await info.wait({ timeoutMs: 10000 });
  await deferred.close();
  server.close();
  const otel = Object.keys(require.cache).filter((f) => f.includes('@opentelemetry'));
  console.log(JSON.stringify({ status: record.status, ran, otel }));
  process.exit(0);
})().catch((err) => { console.error(err); process.exit(1); });
`;

describe('OpenTelemetry absent', function () {
  this.timeout(60_000);
  let dir: string;

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'cloud-defer-no-otel-'));
    mkdirSync(path.join(dir, 'node_modules'));
    for (const entry of readdirSync(ROOT_MODULES)) {
      if (entry === '@opentelemetry' || entry === '.bin') continue;
      symlinkSync(path.join(ROOT_MODULES, entry), path.join(dir, 'node_modules', entry));
    }
    cpSync(path.join(BUILD, 'src'), path.join(dir, 'build', 'src'), { recursive: true });
    cpSync(path.join(BUILD, 'adapters'), path.join(dir, 'build', 'adapters'), { recursive: true });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('defers and runs a task with no @opentelemetry package installed', () => {
    const out = execFileSync(process.execPath, ['-e', SCRIPT], { cwd: dir, env: { ...process.env, METADATA_SERVER_DETECTION: 'none' }, encoding: 'utf8' });
    const result = JSON.parse(out.trim().split('\n').pop()!) as { status: string; ran: number; otel: string[] };
    assert.deepEqual(result, { status: 'succeeded', ran: 1, otel: [] });
  });

  it('with it installed, importing cloud-defer does not load it; creating an engine does', () => {
    const script =
      "require('./src/index.js'); const before = Object.keys(require.cache).some((f) => f.includes('@opentelemetry')); require('./src/index.js').createDeferred({ logger: false }); const after = Object.keys(require.cache).some((f) => f.includes('@opentelemetry')); console.log(JSON.stringify({ before, after }));";
    const out = execFileSync(process.execPath, ['-e', script], { cwd: BUILD, env: { ...process.env, METADATA_SERVER_DETECTION: 'none' }, encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out.trim()), { before: false, after: true });
  });
});
