/**
 * The Redis figures of two builds in one run, interleaved (issue 12: "within 10% of the code
 * before the change, measured in the same run"): each round runs `run.js <suite>` of build A,
 * then of build B, in child processes, and prints each figure's median per build and B / A.
 *
 *   node .build/bench/redis-ab.js <build A dir> <build B dir> [rounds=3] [suites=redis,cpu]
 *
 * A build dir is a compiled tsconfig.test.json tree (holding bench/run.js), e.g. a worktree of
 * the previous commit compiled with `npx tsc -p tsconfig.test.json --outDir .build-ab`.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { median } from './common.js';

const [dirA, dirB, rounds = '3', suites = 'redis,cpu'] = process.argv.slice(2);
if (!dirA || !dirB) throw new Error('usage: redis-ab.js <build A dir> <build B dir> [rounds] [suites]');

/** "  <name>: <value> <unit> | ..." lines of run.js, as name -> value. */
function figures(dir: string, suite: string): Map<string, number> {
  const out = execFileSync(process.execPath, ['--expose-gc', path.join(dir, 'bench', 'run.js'), suite], {
    cwd: path.resolve(dir, '..'),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  const found = new Map<string, number>();
  for (const line of out.split('\n')) {
    const match = /^ {2}(.+?): (-?[\d.]+) \S+/.exec(line);
    if (match) found.set(`${suite}: ${match[1]!}`, Number(match[2]));
    const ratio = / \| ratio (-?[\d.]+)/.exec(line);
    if (match && ratio) found.set(`${suite}: ${match[1]!} (ratio to its baseline)`, Number(ratio[1]));
  }
  return found;
}

const seen = new Map<string, { a: number[]; b: number[] }>();
for (let round = 0; round < Number(rounds); round += 1) {
  for (const suite of suites.split(',')) {
    for (const [side, dir] of [
      ['a', dirA],
      ['b', dirB],
    ] as const) {
      process.stdout.write(`round ${round + 1}: ${suite} on ${dir} ...\n`);
      for (const [name, value] of figures(dir, suite)) {
        process.stdout.write(`  ${name}: ${value}\n`);
        const entry = seen.get(name) ?? { a: [], b: [] };
        entry[side].push(value);
        seen.set(name, entry);
      }
    }
  }
}
for (const [name, { a, b }] of seen) {
  const [ma, mb] = [median(a), median(b)];
  process.stdout.write(`${name}\n  A ${ma} [${a.join(', ')}] | B ${mb} [${b.join(', ')}] | B/A ${(mb / ma).toFixed(3)}\n`);
}
