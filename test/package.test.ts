/** The published package: CommonJS and ESM entry points, subpaths, and the layering rule. */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const node = (args: string[]) => execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: { ...process.env } });

describe('package cloud-defer', () => {
  it('require() and import both work, with the same module instance', () => {
    const cjs = node([
      '-e',
      "const m = require('cloud-defer'); console.log(typeof m.createDeferred, typeof m.deferredMiddleware, typeof m.PermanentTaskFailure, typeof m.currentTask)",
    ]);
    assert.equal(cjs.trim(), 'function function function function');
    const esm = node([
      '--input-type=module',
      '-e',
      "import { createDeferred, PermanentTaskFailure } from 'cloud-defer'; import { createRequire } from 'node:module'; const require = createRequire(import.meta.url); console.log(typeof createDeferred, PermanentTaskFailure === require('cloud-defer').PermanentTaskFailure)",
    ]);
    assert.equal(esm.trim(), 'function true');
  });

  it('has subpath entry points for koa, memory, emulator, redis, datastore and firestore, in both formats', () => {
    const out = node([
      '-e',
      "console.log(typeof require('cloud-defer/koa').koaDeferredMiddleware, typeof require('cloud-defer/memory').memoryStores, typeof require('cloud-defer/emulator').startEmulator, typeof require('cloud-defer/redis').redisStores, typeof require('cloud-defer/datastore').datastoreStores, typeof require('cloud-defer/firestore').firestoreStores)",
    ]);
    assert.equal(out.trim(), 'function function function function function function');
    const esm = node([
      '--input-type=module',
      '-e',
      "import { koaDeferredMiddleware } from 'cloud-defer/koa'; import { memoryStores } from 'cloud-defer/memory'; import { startEmulator } from 'cloud-defer/emulator'; console.log(typeof koaDeferredMiddleware, typeof memoryStores, typeof startEmulator)",
    ]);
    assert.equal(esm.trim(), 'function function function');
  });

  it('ships type declarations for every entry point', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { exports: Record<string, { types?: string }> };
    for (const [subpath, entry] of Object.entries(pkg.exports)) {
      if (typeof entry !== 'object') continue;
      assert.ok(entry.types, `${subpath} has types`);
      assert.ok(readFileSync(path.join(root, entry.types), 'utf8').length > 0, `${entry.types} exists`);
    }
  });

  it('npx cloud-defer emulator --port 0 starts one and prints CLOUD_TASKS_EMULATOR_HOST', async () => {
    const child = spawn(process.execPath, [path.join(root, 'bin', 'cloud-defer.cjs'), 'emulator', '--port', '0'], { cwd: root });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const m = /CLOUD_TASKS_EMULATOR_HOST=(\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      assert.match(line, /^127\.0\.0\.1:\d+$/);
      const { createEmulatorClient } = await import('../src/emulator/index.js');
      const client = createEmulatorClient(line);
      const [queue] = await client.createQueue({ parent: 'projects/p/locations/l', queue: { name: 'projects/p/locations/l/queues/cli' } });
      assert.equal(queue.state, 'RUNNING');
      await client.close();
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('src/core imports no backend, no framework and no Google client', () => {
    const dir = path.join(root, 'src', 'core');
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const source = readFileSync(path.join(dir, file), 'utf8');
      const specifiers = [...source.matchAll(/(?:from|import|require)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!);
      for (const spec of specifiers) {
        assert.ok(spec.startsWith('./') || spec.startsWith('node:'), `${file} imports ${spec}`);
      }
    }
  });

  it('loading cloud-defer and its adapters does not load ioredis, koa, express or the database clients', () => {
    const out = node([
      '-e',
      "for (const m of ['cloud-defer', 'cloud-defer/koa', 'cloud-defer/redis', 'cloud-defer/datastore', 'cloud-defer/firestore']) require(m); const loaded = Object.keys(require.cache).filter((f) => /node_modules[\\\\/](ioredis|koa|express|@google-cloud[\\\\/](datastore|firestore))[\\\\/]/.test(f)); console.log(loaded.length)",
    ]);
    assert.equal(out.trim(), '0');
  });
});
