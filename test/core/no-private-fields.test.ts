/**
 * No adapter or core file reads a client library's private fields: a minor release of ioredis or
 * a Google client may rename them without a type error, and transactional defer would break
 * silently. The scan reads the TypeScript sources (comments removed) for the fields issue 12
 * names and for any `._x` / `.x_` property access or `['_x']` / `['x_']` lookup.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/** The fields the old transaction hooks read (ioredis, @google-cloud/datastore, @google-cloud/firestore). */
const NAMED = ['_queue', 'isPipeline', 'modifiedEntities_', 'skipCommit', '_firestore', '_writeBatch'];

/** The repository root: the tests run from the compiled folder, so walk up to package.json. */
function root(): string {
  let dir = __dirname;
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'cloud-defer') return dir;
    } catch {
      // not here; go up
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json of cloud-defer not found above the test');
    dir = up;
  }
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' || name === 'static' ? [] : sources(path);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Code without comments, keeping line numbers. A `//` after a quote or colon (a URL) is kept. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, (block) => block.replace(/[^\n]/g, ' ')).replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

interface Finding {
  line: number;
  text: string;
}

const NAMED_PATTERN = new RegExp(`(?<![\\w$])(${NAMED.map((name) => name.replace(/[$]/g, '\\$&')).join('|')})(?![\\w$])`, 'g');
/** `.x_` / `._x` after an expression (not a spread, not a number), and `['_x']` / `["x_"]` lookups. */
const ACCESS_PATTERN = /(?<=[\w$)\]]\??)\.(_[\w$]+|[A-Za-z$][\w$]*_)(?![\w$])|\[\s*(['"`])(_[\w$]+|[A-Za-z$][\w$]*_)\2\s*\]/g;

function scan(text: string, pattern: RegExp): Finding[] {
  const findings: Finding[] = [];
  code(text)
    .split('\n')
    .forEach((line, i) => {
      for (const match of line.matchAll(pattern)) findings.push({ line: i + 1, text: match[0] });
    });
  return findings;
}

function report(pattern: RegExp): string[] {
  const base = root();
  return [...sources(join(base, 'src')), ...sources(join(base, 'adapters'))].flatMap((file) =>
    scan(readFileSync(file, 'utf8'), pattern).map((f) => `${relative(base, file)}:${f.line}: ${f.text}`),
  );
}

describe('no private fields of client libraries', function () {
  it('the scan finds private-field reads and ignores comments, strings and destructured names', function () {
    assert.deepEqual(
      scan("const first = pipeline._queue[0];\nif (tx['skipCommit']) x();\nreturn shape.modifiedEntities_;", ACCESS_PATTERN).map((f) => f.text),
      ['._queue', '.modifiedEntities_'],
    );
    assert.deepEqual(
      scan("if (tx['skipCommit']) x();", NAMED_PATTERN).map((f) => f.text),
      ['skipCommit'],
    );
    assert.deepEqual(
      scan("if (tx['_writeBatch'] === undefined) x();\nconst a = (b as C)?._firestore;", ACCESS_PATTERN).map((f) => f.text),
      ["['_writeBatch']", '._firestore'],
    );
    assert.deepEqual(
      scan('interface Shape { isPipeline?: unknown; skipCommit?: boolean }\nconst { isPipeline } = p;', NAMED_PATTERN).map((f) => f.line),
      [1, 1, 2],
    );
    const harmless = [
      '// the client keeps its queue in _queue and marks itself with isPipeline',
      '/* skipCommit, modifiedEntities_ */',
      "const url = 'https://example.com/_queue';",
      'const { shardsDone: _done, ...rest } = header;',
      'const n = 1_000;',
      'const copy = { ...record };',
      'const path = /^(\\/[A-Za-z0-9._~-]+)+$/;',
    ].join('\n');
    assert.deepEqual(scan(harmless, ACCESS_PATTERN), []);
    assert.deepEqual(
      scan(harmless, NAMED_PATTERN).map((f) => f.text),
      ['_queue'],
      'a name inside a string still counts (it could be a lookup key)',
    );
  });

  it(`no file in src/ or adapters/ names ${NAMED.join(', ')}`, function () {
    const found = report(NAMED_PATTERN);
    assert.deepEqual(found, [], `these read client internals; use the client's public API instead:\n${found.join('\n')}`);
  });

  it('no file in src/ or adapters/ reads a `._x` or `.x_` property or looks up `["_x"]` / `["x_"]`', function () {
    const found = report(ACCESS_PATTERN);
    assert.deepEqual(found, [], `private-looking properties (of a client, most likely):\n${found.join('\n')}`);
  });
});
