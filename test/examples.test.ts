/** The examples a newcomer starts: each runs as written and shows a deferred task succeeding. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

function runExample(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], { cwd: root, env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`example did not finish its demo task:\n${output}`));
    }, 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (/demo task \S+ succeeded/.test(output)) {
        clearTimeout(timer);
        child.kill('SIGTERM');
        child.once('exit', () => resolve(output));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      if (!/succeeded/.test(output)) {
        clearTimeout(timer);
        reject(new Error(`example exited (${code}) before its demo task succeeded:\n${output}`));
      }
    });
  });
}

describe('examples', () => {
  it('examples/express reports a busy port and exits 1 instead of crashing', async () => {
    const { createServer } = await import('node:net');
    const busy = createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => busy.once('listening', resolve));
    const port = String((busy.address() as { port: number }).port);
    try {
      const child = spawn(process.execPath, ['examples/express/app.cjs'], {
        cwd: root,
        env: { ...process.env, PORT: port },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr.on('data', (c: Buffer) => (output += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', (c: number | null) => resolve(c)));
      assert.equal(code, 1, output);
      assert.match(output, new RegExp(`port ${port} is busy`));
      assert.doesNotMatch(output, /TypeError/);
    } finally {
      busy.close();
    }
  });

  it('examples/express starts on the embedded default and runs a deferred task', async () => {
    const output = await runExample('examples/express/app.cjs');
    assert.match(output, /embedded Cloud Tasks emulator/);
    assert.match(output, /sending the welcome mail to demo-user .*attempt 1\b/);
    assert.match(output, /console: http:\/\/127\.0\.0\.1:\d+\/_ah\/deferred\/console\//);
    assert.match(output, /Ctrl-C to stop/);
  });

  it('examples/koa starts on the embedded default and runs a deferred task', async () => {
    const output = await runExample('examples/koa/app.cjs');
    assert.match(output, /resizing demo-image/);
  });
});
