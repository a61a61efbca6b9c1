/**
 * What npm shows and ships: the images are PNGs in the package, relative links and their anchors
 * resolve inside it, links to unshipped repository files name files the repository has, and no
 * source map points at sources it does not ship.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { freshApp, repoRoot } from './helpers/fresh-app.js';

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

  /** README.md and docs/*.md as shipped, with their links (`](target#anchor)`) and headings. */
  function shippedDocs(): { doc: string; text: string; links: { target: string; anchor?: string }[] }[] {
    const docs = [
      'README.md',
      ...readdirSync(path.join(installed, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
    ];
    return docs.map((doc) => {
      const text = readFileSync(path.join(installed, doc), 'utf8');
      const links = [...text.matchAll(/\]\(([^)\s#]*)(?:#([^)\s]*))?\)/g)].map(([, target, anchor]) => ({ target: target!, ...(anchor ? { anchor } : {}) }));
      return { doc, text, links };
    });
  }

  /** GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens. */
  function anchorsOf(markdown: string): Set<string> {
    const anchors = new Set<string>();
    for (const [, heading] of markdown.matchAll(/^#{1,6} +(.+?) *$/gm)) {
      anchors.add(
        heading!
          .toLowerCase()
          .replace(/[^\p{L}\p{N} _-]/gu, '')
          .replace(/ /g, '-'),
      );
    }
    return anchors;
  }

  it('every image in README.md and docs/*.md is a real PNG in the package (not a missing file or an LFS pointer)', () => {
    const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    let images = 0;
    for (const { doc, text } of shippedDocs()) {
      for (const [, target] of text.matchAll(/!\[[^\]]*\]\(([^)\s]+)\)/g)) {
        assert.doesNotMatch(target!, /^[a-z]+:/i, `${doc}: image ${target} is not shipped with the package`);
        const file = path.resolve(path.dirname(path.join(installed, doc)), target!);
        assert.ok(existsSync(file), `${doc} shows ${target}, which is not in the package`);
        const bytes = readFileSync(file);
        assert.ok(bytes.subarray(0, 8).equals(PNG) && bytes.length > 1000, `${doc}: ${target} is not a PNG image`);
        images += 1;
      }
    }
    assert.ok(images >= 10, `found ${images} images`);
  });

  it('every anchor (#section) in a link names a heading of its target', () => {
    for (const { doc, text, links } of shippedDocs()) {
      for (const { target, anchor } of links) {
        if (!anchor || /^[a-z]+:/i.test(target)) continue;
        const file = target === '' ? path.join(installed, doc) : path.resolve(path.dirname(path.join(installed, doc)), target);
        const anchors = anchorsOf(target === '' ? text : readFileSync(file, 'utf8'));
        assert.ok(anchors.has(anchor), `${doc} links to ${target}#${anchor}: no such heading`);
      }
    }
  });

  it("links to the repository's own files that npm does not ship name files the repository has", () => {
    const pkg = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8')) as { repository: { url: string } };
    const repo = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
    for (const { doc, links } of shippedDocs()) {
      for (const { target } of links) {
        if (!target.startsWith(`${repo}/blob/main/`)) continue;
        const inRepo = target.slice(`${repo}/blob/main/`.length);
        assert.ok(existsSync(path.join(repoRoot, inRepo)), `${doc} links to ${inRepo} in the repository, which does not exist`);
      }
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
