/**
 * Every code block in README.md and docs/*.md, checked against the packed package in a fresh app:
 * JavaScript blocks must parse with Node and type-check (checkJs), TypeScript blocks type-check
 * with tsc --strict under module nodenext and under bundler resolution, JSON blocks parse.
 * A fragment names the set-up it assumes in an HTML comment just above it
 * (`<!-- docs-test: setup NAME -->`, invisible on GitHub and npm); the set-ups are below.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { freshApp, repoRoot, typeCheck } from './helpers/fresh-app.js';

interface Block {
  doc: string;
  line: number;
  lang: string;
  code: string;
  setup?: string;
}

function blocksOf(doc: string): Block[] {
  const lines = readFileSync(path.join(repoRoot, doc), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    const setup = /<!-- docs-test: setup (\S+) -->/.exec(lines[i - 1] ?? '')?.[1];
    blocks.push({ doc, line: i + 1, lang: open[1]!, code: lines.slice(i + 1, end).join('\n'), ...(setup ? { setup } : {}) });
    i = end;
  }
  return blocks;
}

/** What a fragment assumes exists; `import` set-ups for ESM blocks, `require` ones for CommonJS. */
const setups: Record<string, { esm: string; cjs?: string; ts?: string }> = {
  deferred: {
    esm: "import { createDeferred } from 'cloud-defer';\nconst deferred = createDeferred();\n/** @type {string} */ const id = 'task-id';\n/** @type {string | undefined} */ const cursor = undefined;\nconst info = await deferred.defer(deferred.task('t', () => {}), []);\n",
  },
  redis: {
    esm: "import { Redis } from 'ioredis';\nimport { createDeferred } from 'cloud-defer';\nconst client = new Redis();\nconst deferred = createDeferred();\nconst id = 'order-1';\nconst sendReceipt = deferred.task('sendReceipt', (/** @type {string} */ orderId) => {});\n",
  },
  shutdown: {
    esm: "import express from 'express';\nimport { createDeferred } from 'cloud-defer';\nconst deferred = createDeferred();\nconst app = express();\n",
  },
  'cjs-deferred': { esm: '', cjs: "const { createDeferred } = require('cloud-defer');\n" },
  datastore: { esm: '', cjs: "const { createDeferred } = require('cloud-defer');\nconst { Datastore } = require('@google-cloud/datastore');\n" },
  firestore: { esm: '', cjs: "const { createDeferred } = require('cloud-defer');\nconst { Firestore } = require('@google-cloud/firestore');\n" },
  iteration: {
    esm: "import { createDeferred } from 'cloud-defer';\nimport { sortedSet } from 'cloud-defer/redis';\nconst deferred = createDeferred();\nconst userIds = ['u1', 'u2'];\n",
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
      writeFileSync(path.join(app, file), `${prelude}${block.code}\n${ts || commonJs ? '' : 'export {};\n'}`);
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
