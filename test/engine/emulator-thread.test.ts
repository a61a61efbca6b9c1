/** The embedded default runs its Cloud Tasks emulator on a worker thread, off the app's event loop. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createDeferred } from '../../src/index.js';
import { ManualClock } from '../../src/emulator/index.js';
import { startApp } from '../helpers/app.js';

/** Blocks this thread's event loop for `ms`. */
function busy(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // spin: nothing on this thread can run meanwhile
  }
}

describe('the embedded emulator thread', () => {
  it('answers while the app thread is blocked (it runs on a worker thread)', async () => {
    const deferred = createDeferred({ logger: false });
    try {
      await deferred.ready();
      const { jwksUri } = deferred.emulator!;
      // A child process asks the emulator's JWKS server for its keys once it is running, and prints
      // when the answer came; the app thread is blocked for the whole of that time.
      const child = spawn(
        process.execPath,
        [
          '-e',
          `process.stdout.write('ready\\n'); setTimeout(async () => { const r = await fetch(${JSON.stringify(jwksUri)}); const keys = await r.json(); process.stdout.write(JSON.stringify({ at: Date.now(), keys: keys.keys.length }) + '\\n'); }, 300);`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      while (!output.includes('ready')) await new Promise((r) => setTimeout(r, 10));
      busy(4000);
      const blockedUntil = Date.now();
      await once(child, 'exit');
      const answer = JSON.parse(output.split('\n')[1]!) as { at: number; keys: number };
      assert.equal(answer.keys, 1);
      assert.ok(answer.at < blockedUntil, `the emulator answered ${blockedUntil - answer.at} ms before the app thread was free again`);
    } finally {
      await deferred.close();
    }
  });

  it('runs tasks end to end, waits for idle and stops with the app', async () => {
    let ran = 0;
    const app = await startApp('express', {}, (d) =>
      d.task('count', () => {
        ran += 1;
      }),
    );
    try {
      const infos = await Promise.all(Array.from({ length: 20 }, () => app.deferred.defer('count', [])));
      for (const info of infos) assert.equal((await info.wait()).status, 'succeeded');
      await app.deferred.emulator!.idle();
      assert.equal(ran, 20);
    } finally {
      await app.close();
    }
  });

  it("forwards the emulator's log lines to the given logger", async () => {
    const lines: string[] = [];
    const deferred = createDeferred({ logger: false, emulator: { logger: { info: (m) => lines.push(m) } } });
    await deferred.ready();
    await deferred.close();
    assert.ok(
      lines.some((l) => /listening on/.test(l)),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => /stopped/.test(l)),
      'stop is reported too',
    );
  });

  it('stays on the app thread when a test drives it with a manual clock', async () => {
    const clock = new ManualClock(Date.now());
    const deferred = createDeferred({ logger: false, emulator: { clock } });
    try {
      await deferred.ready();
      assert.equal(deferred.emulator!.clock, clock, "the manual clock is the emulator's own");
    } finally {
      await deferred.close();
    }
  });
});
