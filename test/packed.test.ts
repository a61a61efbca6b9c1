/** What npm shows and ships: links resolve, no source maps pointing at unshipped sources. */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { freshApp } from './helpers/fresh-app.js';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}

describe('the packed package', () => {
  let installed: string;
  before(function () {
    this.timeout(120_000);
    installed = path.join(freshApp(), 'node_modules', 'cloud-defer');
  });

  it('names its repository, homepage and issue tracker', () => {
    const pkg = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8')) as Record<string, unknown>;
    assert.match(JSON.stringify(pkg.repository), /^\{"type":"git","url":"git\+https:\/\/github\.com\/[^"]+\.git"\}$/);
    assert.match(String(pkg.homepage), /^https:\/\//);
    assert.match(JSON.stringify(pkg.bugs), /https:\/\/github\.com\/.+\/issues/);
  });

  it('ships no source map that points at a source file it does not ship', () => {
    for (const file of filesUnder(installed).filter((f) => f.endsWith('.map'))) {
      const map = JSON.parse(readFileSync(file, 'utf8')) as { sources: string[]; sourcesContent?: unknown[] };
      const missing = map.sources.filter((s, i) => !map.sourcesContent?.[i] && !existsSync(path.resolve(path.dirname(file), s)));
      assert.deepEqual(missing, [], `${path.relative(installed, file)} points at unshipped sources`);
    }
  });

  it('every image and relative link in README.md and docs/*.md resolves to a shipped file', () => {
    const docs = [
      'README.md',
      ...readdirSync(path.join(installed, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
    ];
    for (const doc of docs) {
      const text = readFileSync(path.join(installed, doc), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/i.test(target!)) continue;
        assert.ok(existsSync(path.resolve(path.dirname(path.join(installed, doc)), target!)), `${doc} links to ${target}, which is not in the package`);
      }
    }
  });
});
