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
  it('examples/express starts on the embedded default and runs a deferred task', async () => {
    const output = await runExample('examples/express/app.cjs');
    assert.match(output, /embedded Cloud Tasks emulator/);
    assert.match(output, /sending the welcome mail to demo-user/);
  });

  it('examples/koa starts on the embedded default and runs a deferred task', async () => {
    const output = await runExample('examples/koa/app.cjs');
    assert.match(output, /resizing demo-image/);
  });
});
