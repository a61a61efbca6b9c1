/**
 * Every code block in README.md and docs/*.md, checked against the packed package in a fresh app:
 * JavaScript blocks RUN with Node on the embedded default (a real Cloud Tasks emulator in process,
 * Redis on 127.0.0.1:6379) and type-check (checkJs); TypeScript blocks type-check with tsc --strict
 * under module nodenext and under bundler resolution; JSON blocks parse.
 * HTML comments just above a block (invisible on GitHub and npm) say what it needs:
 * `<!-- docs-test: setup NAME -->` names the set-up a fragment assumes (below), and
 * `<!-- docs-test: no-run needs ... -->` marks a JavaScript block that cannot run here, with the reason.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { freshApp, repoRoot, typeCheck } from './helpers/fresh-app.js';

interface Block {
  doc: string;
  line: number;
  lang: string;
  code: string;
  setup?: string;
  /** Why a JavaScript block cannot run here (`<!-- docs-test: no-run needs ... -->`). */
  noRun?: string;
}

function blocksOf(doc: string): Block[] {
  const lines = readFileSync(path.join(repoRoot, doc), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    const notes: string[] = [];
    for (let j = i - 1; j >= 0; j--) {
      const note = /^<!-- docs-test: (.*) -->$/.exec(lines[j]!);
      if (!note) break;
      notes.push(note[1]!.trim());
    }
    const setup = notes.map((n) => /^setup (\S+)$/.exec(n)?.[1]).find((x) => x !== undefined);
    const noRun = notes.map((n) => /^no-run (.*)$/.exec(n)?.[1]).find((x) => x !== undefined);
    blocks.push({ doc, line: i + 1, lang: open[1]!, code: lines.slice(i + 1, end).join('\n'), ...(setup ? { setup } : {}), ...(noRun ? { noRun } : {}) });
    i = end;
  }
  return blocks;
}

/**
 * What a fragment assumes exists; `import` set-ups for ESM blocks, `require` ones for CommonJS,
 * `after` what a run does once the block is done (close what it opened). Set-ups that serve
 * deliveries listen on $PORT (the test gives each run a free one) with the block's own engine.
 */
const setups: Record<string, { esm: string; cjs?: string; ts?: string; after?: string }> = {
  deferred: {
    esm: [
      "import * as http from 'node:http';",
      "import { createDeferred, deferredMiddleware } from 'cloud-defer';",
      'const deferred = createDeferred();',
      'const tasks = deferredMiddleware(deferred);',
      'const server = http.createServer((req, res) => tasks(req, res, () => res.writeHead(404).end())).listen(Number(process.env.PORT));',
      "/** @type {string} */ const id = 'task-id';",
      '/** @type {string | undefined} */ const cursor = undefined;',
      "const info = await deferred.defer(deferred.task('t', () => {}), []);",
      '',
    ].join('\n'),
    after: 'server.close();\nawait deferred.close();\n',
  },
  redis: {
    esm: [
      "import * as http from 'node:http';",
      "import { Redis } from 'ioredis';",
      "import { createDeferred, deferredMiddleware } from 'cloud-defer';",
      "import { redisStores } from 'cloud-defer/redis';",
      'const client = new Redis();',
      // Our own keys in the shared Redis: a prefix of this run, removed after it.
      "const prefix = 'docs-test-' + process.pid + '-' + Date.now();",
      'const stores = redisStores({ client, prefix });',
      'const deferred = createDeferred({ stores });',
      'const tasks = deferredMiddleware(deferred);',
      'const server = http.createServer((req, res) => tasks(req, res, () => res.writeHead(404).end())).listen(Number(process.env.PORT));',
      "const id = prefix + '-order-1';",
      '/** @type {string[]} */ const receipts = [];',
      "const sendReceipt = deferred.task('sendReceipt', (/** @type {string} */ orderId) => { receipts.push(orderId); });",
      '',
    ].join('\n'),
    after: [
      'const waitUntil = Date.now() + 10000;',
      'while (receipts.length === 0 && Date.now() < waitUntil) await new Promise((r) => setTimeout(r, 50));',
      "if (receipts[0] !== id) throw new Error('the transactional defer did not run after EXEC');",
      'server.close();',
      'await deferred.close();',
      "const keys = [...(await client.keys('*' + prefix + '*')), 'order:' + id];",
      'await client.del(...keys);',
      'await client.quit();',
      '',
    ].join('\n'),
  },
  shutdown: {
    esm: "import express from 'express';\nimport { createDeferred } from 'cloud-defer';\nconst deferred = createDeferred();\nconst app = express();\n",
  },
  'cjs-deferred': { esm: '', cjs: "const { createDeferred } = require('cloud-defer');\n" },
  datastore: { esm: '', cjs: "const { createDeferred } = require('cloud-defer');\nconst { Datastore } = require('@google-cloud/datastore');\n" },
  firestore: { esm: '', cjs: "const { createDeferred } = require('cloud-defer');\nconst { Firestore } = require('@google-cloud/firestore');\n" },
  iteration: {
    esm: [
      "import * as http from 'node:http';",
      "import { Redis } from 'ioredis';",
      "import { createDeferred, deferredMiddleware } from 'cloud-defer';",
      "import { redisSources, sortedSet } from 'cloud-defer/redis';",
      'const client = new Redis();',
      'const deferred = createDeferred({ sources: redisSources(client) });',
      'const tasks = deferredMiddleware(deferred);',
      'const server = http.createServer((req, res) => tasks(req, res, () => res.writeHead(404).end())).listen(Number(process.env.PORT));',
      "const userIds = ['u1', 'u2'];",
      '',
    ].join('\n'),
    after: 'server.close();\nawait deferred.close();\nawait client.quit();\n',
  },
  app: {
    esm: "import express from 'express';\nimport { createDeferred, deferredMiddleware } from 'cloud-defer';\nconst app = express();\nconst ADMINS = ['admin@example.com'];\n",
  },
  'datastore-ts': {
    esm: '',
    ts: "import { Datastore } from '@google-cloud/datastore';\nimport { createDeferred } from 'cloud-defer';\nimport { datastoreQuery } from 'cloud-defer/datastore';\nconst datastore = new Datastore();\nconst deferred = createDeferred();\nconst orderKey = datastore.key(['Order', 'o1']);\nconst sendReceipt = deferred.task('sendReceipt', (orderId: string) => {});\nconst visitUser = deferred.task('visitUser', (user: unknown) => {});\nconst done = deferred.task('done', () => {});\n",
  },
  'firestore-ts': {
    esm: '',
    ts: "import { Firestore, type QueryDocumentSnapshot } from '@google-cloud/firestore';\nimport { createDeferred } from 'cloud-defer';\nimport { firestoreQuery } from 'cloud-defer/firestore';\nconst firestore = new Firestore();\nconst deferred = createDeferred();\nconst orderRef = firestore.doc('orders/o1');\nconst sendReceipt = deferred.task('sendReceipt', (orderId: string) => {});\nconst visitUser = deferred.task('visitUser', (doc: QueryDocumentSnapshot) => {});\nconst finished = deferred.task('finished', () => {});\n",
  },
  'emulator-ts': {
    esm: '',
    ts: "import { CloudTasksClient } from '@google-cloud/tasks';\nimport * as grpc from '@grpc/grpc-js';\nimport { startEmulator } from 'cloud-defer/emulator';\nconst host = '127.0.0.1';\nconst port = 8123;\nconst emulator = await startEmulator({ port: 0 });\nconst token = '';\nconst expectedAudience = 'http://127.0.0.1:3000/_ah/queue/deferred';\n",
  },
};

const docs = [
  'README.md',
  ...readdirSync(path.join(repoRoot, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const blocks = docs.flatMap(blocksOf);
const CODE = new Set(['js', 'javascript', 'cjs', 'mjs', 'ts', 'typescript']);

const END = 'docs-test: end of block';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Runs one block's program in the fresh app, PORT set. It passes when it prints END and then, given
 * a moment for what it started (the engine starts at mount), stops on SIGTERM (its own handler or
 * Node's default), with nothing on stderr that reads like an error. Returns what went wrong, or ''.
 */
async function runBlock(app: string, file: string): Promise<string> {
  const child = spawn(process.execPath, [file], { cwd: app, env: { ...process.env, PORT: String(await freePort()) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let ended = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (!ended && stdout.includes(END)) {
      ended = true;
      setTimeout(() => child.kill('SIGTERM'), 1500);
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const { code, signal } = await exit;
  clearTimeout(timer);
  const output = `${stdout}${stderr}`.split('\n').slice(-15).join('\n');
  if (!ended) return `stopped (${signal ?? code}) before the end of the block:\n${output}`;
  if (signal === 'SIGKILL') return `did not stop on SIGTERM:\n${output}`;
  if (code !== null && code !== 0) return `exited ${code}:\n${output}`;
  if (/\b(\w*Error|could not start|Refusing|refused)\b/.test(stderr)) return `reported an error:\n${output}`;
  return '';
}

describe('README and docs code blocks', () => {
  let app: string;
  const written: { block: Block; file: string }[] = [];
  before(function () {
    this.timeout(180_000);
    app = freshApp();
    blocks.forEach((block, n) => {
      if (!CODE.has(block.lang)) return;
      const setup = block.setup ? setups[block.setup] : undefined;
      if (block.setup) assert.ok(setup, `${block.doc}:${block.line} names an unknown set-up ${block.setup}`);
      const ts = block.lang === 'ts' || block.lang === 'typescript';
      const commonJs = !ts && (/\brequire\(/.test(block.code) || (setup !== undefined && setup.esm === '' && setup.cjs !== undefined));
      const prelude = ts ? (setup?.ts ?? '') : commonJs ? (setup?.cjs ?? '') : (setup?.esm ?? '');
      // ESM for import blocks and fragments with top-level await; CommonJS where the block uses require.
      const file = `doc-${n}${ts ? '.mts' : commonJs ? '.cjs' : '.mjs'}`;
      // A run prints END once the block (and its set-up's `after`) got through, top-level awaits included.
      const after = ts ? '' : `${commonJs ? '' : (setup?.after ?? '')}console.log(${JSON.stringify(END)});\n`;
      writeFileSync(path.join(app, file), `${prelude}${block.code}\n${after}${ts || commonJs ? '' : 'export {};\n'}`);
      written.push({ block, file });
    });
  });

  it('finds the code blocks (a broken extractor must not pass vacuously)', () => {
    assert.ok(written.length >= 20, `found ${written.length}`);
  });

  it('JavaScript blocks are JavaScript: Node parses each one', () => {
    const failures: string[] = [];
    for (const { block, file } of written.filter((w) => w.file.endsWith('js'))) {
      try {
        execFileSync(process.execPath, ['--check', file], { cwd: app, stdio: 'pipe' });
      } catch (err) {
        failures.push(
          `${block.doc}:${block.line}: ${String((err as { stderr?: Buffer }).stderr ?? err)
            .split('\n')
            .slice(0, 5)
            .join('\n')}`,
        );
      }
    }
    assert.deepEqual(failures, []);
  });

  it('JavaScript blocks run with Node on the embedded default, or say what they need', async function () {
    this.timeout(240_000);
    const js = written.filter((w) => w.file.endsWith('js'));
    const failures: string[] = [];
    for (const { block } of js.filter((w) => w.block.noRun !== undefined)) {
      if (!/^needs \S+ \S+/.test(block.noRun!)) failures.push(`${block.doc}:${block.line}: no-run without a reason ("needs ..."): ${block.noRun}`);
    }
    const runnable = js.filter((w) => w.block.noRun === undefined);
    assert.ok(runnable.length >= 8, `only ${runnable.length} runnable blocks`);
    // Two at a time: each starts an emulator, and the machine has two cores.
    const queue = [...runnable];
    await Promise.all(
      [0, 1].map(async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          const problem = await runBlock(app, next.file);
          if (problem) failures.push(`${next.block.doc}:${next.block.line} (${next.file}): ${problem}`);
        }
      }),
    );
    assert.deepEqual(failures, []);
  });

  for (const resolution of ['nodenext', 'bundler'] as const) {
    it(`every JavaScript and TypeScript block type-checks with tsc --strict (${resolution})`, function () {
      this.timeout(180_000);
      const out = typeCheck(
        app,
        written.map((w) => w.file),
        resolution,
      );
      const located = out.replace(/doc-\d+\.\w+/g, (f) => {
        const w = written.find((x) => x.file === f)!;
        return `${w.block.doc}:${w.block.line} (${f})`;
      });
      assert.equal(located, '');
    });
  }

  it('JSON blocks parse', () => {
    for (const block of blocks.filter((b) => b.lang === 'json')) assert.doesNotThrow(() => JSON.parse(block.code), `${block.doc}:${block.line}`);
  });
});
