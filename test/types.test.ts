/** defer() arguments are checked by TypeScript against the task's signature: run tsc on a fixture. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const fixture = path.join(root, 'test', 'fixtures', 'typed-defer.ts');

describe('typed task handles', () => {
  it('tsc refuses exactly the calls whose arguments do not match the task', async function () {
    this.timeout(60_000);
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const output = await new Promise<string>((resolve) => {
      execFile(
        process.execPath,
        [
          tsc,
          '--ignoreConfig',
          '--noEmit',
          '--strict',
          '--module',
          'nodenext',
          '--moduleResolution',
          'nodenext',
          '--target',
          'es2022',
          '--types',
          'node',
          '--skipLibCheck',
          fixture,
        ],
        { cwd: root },
        (_err, stdout, stderr) => resolve(stdout + stderr),
      );
    });
    const lines = readFileSync(fixture, 'utf8').split('\n');
    const expected = lines.flatMap((line, i) => (line.includes('// BAD') ? [i + 1] : []));
    const reported = [...output.matchAll(/typed-defer\.ts\((\d+),\d+\): error TS\d+/g)].map((m) => Number(m[1]));
    assert.equal(expected.length, 5);
    assert.deepEqual(
      [...new Set(reported)].sort((a, b) => a - b),
      expected,
      output,
    );
  });
});
